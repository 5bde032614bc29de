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
    /// Opens `path` (`.safetensors` by extension, otherwise a torch zip pickle).
    pub(crate) fn open(path: &Path, model: &'static str, hint: &'static str) -> Result<Self> {
        if !path.is_file() {
            candle_core::bail!("{}: {model} checkpoint not found; {hint}", path.display());
        }
        let files = if path.extension().is_some_and(|e| e == "safetensors") {
            TensorFiles::safetensors(&[path.to_path_buf()], model)
        } else {
            TensorFiles::pth(path, model)
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
                candle_core::Error::Msg(format!(
                    "{}: tensor `{tensor}` is missing; the file is incomplete or is not a {} \
                 checkpoint ({})",
                    file.display(),
                    self.model,
                    self.hint
                ))
            }
            Some(other) => candle_core::Error::Msg(format!("{}: {other}", self.model)),
            None => err,
        })
    }
}
