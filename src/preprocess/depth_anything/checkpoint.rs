//! Opening an annotator checkpoint: a `.pth` as the reference ships it (a `torch.save`d state
//! dict) or its `.safetensors` conversion, through the engine's memory-mapped `TensorFiles`,
//! so that failures name the file and the tensor. Shared with the scribble network.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Result};
use candle_nn::VarBuilder;

use crate::engine::checkpoint::{Access, LoadError, TensorFiles};

/// An opened checkpoint of one annotator model.
pub(crate) struct Checkpoint {
    files: Arc<TensorFiles>,
    model: &'static str,
    /// What to tell the user when the file is missing or not this model's.
    hint: &'static str,
}

impl Checkpoint {
    /// Opens `path`: a torch zip pickle (it starts with the zip signature `PK`, whatever its
    /// name), otherwise safetensors.
    pub(crate) fn open(path: &Path, model: &'static str, hint: &'static str) -> Result<Self> {
        if !path.is_file() {
            // A plain message (no backtrace): this is the user's mistake, not a bug.
            return Err(candle_core::Error::Msg(format!(
                "{}: {model} checkpoint not found; {hint}",
                path.display()
            )));
        }
        let files = if is_zip(path) {
            TensorFiles::pth(path, model)
        } else {
            TensorFiles::safetensors(&[path.to_path_buf()], model)
        };
        let files = files.map_err(|e| candle_core::Error::Msg(format!("{model}: {e}")))?;
        Ok(Self {
            files: Arc::new(files),
            model,
            hint,
        })
    }

    /// The stored shape of `name`, if the checkpoint has it.
    pub(crate) fn shape(&self, name: &str) -> Option<&[usize]> {
        self.files.shape(name)
    }

    /// The file's weights as f32 on `device`.
    pub(crate) fn var_builder(&self, device: &Device) -> VarBuilder<'static> {
        self.files.var_builder(Access::Load, DType::F32, device)
    }

    /// Builds a model with [`Self::var_builder`], reporting a missing or misshapen tensor with
    /// its file and name rather than candle's bare message.
    pub(crate) fn build<T>(
        &self,
        device: &Device,
        build: impl FnOnce(VarBuilder) -> Result<T>,
    ) -> Result<T> {
        build(self.var_builder(device)).map_err(|err| match self.files.take_error() {
            Some(LoadError::MissingTensor { file, tensor, .. }) => {
                let (model, hint) = (self.model, self.hint);
                candle_core::Error::Msg(format!(
                    "{}: tensor `{tensor}` is missing; the file is incomplete or is not a {model} checkpoint ({hint})",
                    file.display()
                ))
            }
            Some(other) => candle_core::Error::Msg(format!("{}: {other}", self.model)),
            None => err,
        })
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
