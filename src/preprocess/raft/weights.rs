//! Reading RAFT's checkpoint: `raft-things.pth` as the reference ships it (a zip `torch.save`
//! with DataParallel's `module.` on every key) or a `.safetensors` conversion.
//!
//! Not through the annotators' shared `Checkpoint`: the engine's `TensorFiles` refuses a
//! file that holds any integer tensor, and RAFT's state dict holds one per batch norm
//! (`num_batches_tracked`, int64), which the network never reads. The file is 21 MB, so it
//! is read whole with candle's readers and the float tensors kept. Messages follow
//! `Checkpoint`'s: they name the file, the tensor, and where to download the weights.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Error, Result, Tensor};
use candle_nn::VarBuilder;

/// Name used in load errors.
const MODEL_NAME: &str = "RAFT";
/// Where the weights VACE uses come from (`vace/configs/video_preproccess.py`).
const DOWNLOAD_HINT: &str = "download flow/raft-things.pth of ali-vilab/VACE-Annotators";
/// What the reference removes from every key (`k.replace('module.', '')`).
const DATA_PARALLEL_PREFIX: &str = "module.";

/// Builds a model from the checkpoint at `path` with weights as f32 on `device`; `build`
/// gets names without the `module.` prefix.
pub(super) fn load<T>(
    path: &Path,
    device: &Device,
    build: impl FnOnce(VarBuilder) -> Result<T>,
) -> Result<T> {
    let shown = path.display();
    if !path.is_file() {
        // A plain message (no backtrace): this is the user's mistake, not a bug.
        return Err(Error::Msg(format!(
            "{shown}: {MODEL_NAME} checkpoint not found; {DOWNLOAD_HINT}"
        )));
    }
    let tensors = read(path).map_err(|err| {
        Error::Msg(format!(
            "{shown}: cannot read the file as a {MODEL_NAME} checkpoint (.pth or .safetensors): \
             {err}; {DOWNLOAD_HINT}"
        ))
    })?;
    let weights: HashMap<String, Tensor> = tensors
        .into_iter()
        .filter(|(_, tensor)| tensor.dtype().is_float())
        .map(|(name, tensor)| (name.replace(DATA_PARALLEL_PREFIX, ""), tensor))
        .collect();
    build(VarBuilder::from_tensors(weights, DType::F32, device)).map_err(
        |err| match missing_tensor(&err) {
            Some(name) => Error::Msg(format!(
                "{shown}: tensor `{name}` (`{DATA_PARALLEL_PREFIX}{name}` in raft-things.pth) \
                 is missing; the file is incomplete or is not a {MODEL_NAME} checkpoint \
                 ({DOWNLOAD_HINT})"
            )),
            None => Error::Msg(format!("{shown}: {err}")),
        },
    )
}

/// Every tensor of a zip torch pickle (it starts with `PK`, whatever its name) or of a
/// safetensors file, on the CPU.
fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if is_zip(path) {
        candle_core::pickle::read_all(path)
    } else {
        Ok(candle_core::safetensors::load(path, &Device::Cpu)?
            .into_iter()
            .collect())
    }
}

/// The name in candle's "cannot find tensor" error, under any backtrace or context.
fn missing_tensor(err: &Error) -> Option<&str> {
    match err {
        Error::CannotFindTensor { path } => Some(path),
        Error::WithBacktrace { inner, .. } | Error::Context { inner, .. } => missing_tensor(inner),
        _ => None,
    }
}

/// Whether the file starts with the zip signature, as `torch.save` files do.
fn is_zip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"PK")
}
