//! A host-memory copy of the UMT5 weights, uploaded to the GPU only while a prompt is
//! encoded. UMT5-xxl is ~10.6 GiB in bf16 and is needed once per new prompt, so keeping it
//! resident would take VRAM the DiT and the VAE need for the whole job (the reference moves
//! it to the CPU after encoding for the same reason).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

use super::umt5::Umt5Encoder;
use crate::engine::config::T5Config;

/// The encoder's tensors in host memory, by their full names.
#[derive(Debug, Clone)]
pub struct HostEncoder {
    config: T5Config,
    weights: Arc<HashMap<String, Tensor>>,
    dtype: DType,
    /// The large tensors page-locked for the GPU they are uploaded to.
    #[cfg(feature = "cuda")]
    page_locked: Option<Arc<super::page_lock::PageLocked>>,
}

impl HostEncoder {
    /// Builds the encoder's structure over `vb` (wherever its weights are read from: a
    /// checkpoint, random weights on the GPU) and keeps a host copy of every tensor it
    /// reads. Names and shapes are checked as in a normal build.
    pub fn capture(config: &T5Config, vb: VarBuilder<'static>) -> Result<Self> {
        let dtype = vb.dtype();
        let weights: Arc<Mutex<HashMap<String, Tensor>>> = Arc::default();
        let recorder = Recorder {
            source: vb.clone(),
            weights: weights.clone(),
        };
        let recording = VarBuilder::from_backend(Box::new(recorder), dtype, vb.device().clone());
        drop(Umt5Encoder::new(config, recording)?);
        let weights = std::mem::take(&mut *weights.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(Self {
            config: config.clone(),
            weights: Arc::new(weights),
            dtype,
            #[cfg(feature = "cuda")]
            page_locked: None,
        })
    }

    /// Page-locks the host copy for uploads to `device` (a CUDA device; elsewhere nothing
    /// changes): ~10 GiB of UMT5-xxl then uploads at DMA speed.
    pub fn page_lock_for(&mut self, device: &Device) {
        #[cfg(feature = "cuda")]
        if let (Device::Cuda(cuda), None) = (device, &self.page_locked) {
            let locked = super::page_lock::PageLocked::register(cuda, self.weights.clone());
            tracing::debug!(
                bytes = locked.bytes(),
                total = self.size_bytes(),
                "text encoder's host copy page-locked"
            );
            self.page_locked = Some(Arc::new(locked));
        }
        #[cfg(not(feature = "cuda"))]
        let _ = device;
    }

    pub fn config(&self) -> &T5Config {
        &self.config
    }

    /// Bytes held in host memory.
    pub fn size_bytes(&self) -> usize {
        self.weights
            .values()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }

    /// The encoder with its weights copied onto `device`; dropping it frees the copy.
    pub fn upload(&self, device: &Device) -> Result<Umt5Encoder> {
        let vb = VarBuilder::from_tensors((*self.weights).clone(), self.dtype, device);
        Umt5Encoder::new(&self.config, vb)
    }
}

/// Forwards every lookup to the real source and keeps a host copy of what it returns.
struct Recorder {
    source: VarBuilder<'static>,
    weights: Arc<Mutex<HashMap<String, Tensor>>>,
}

impl Recorder {
    fn keep(&self, name: &str, tensor: Tensor) -> Result<Tensor> {
        let host = tensor.to_device(&Device::Cpu)?;
        self.weights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), host);
        Ok(tensor)
    }
}

impl SimpleBackend for Recorder {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, _: &Device) -> Result<Tensor> {
        let tensor = self.source.get_with_hints_dtype(s, name, h, dtype)?;
        self.keep(name, tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, _: &Device) -> Result<Tensor> {
        let tensor = self.source.get_unchecked_dtype(name, dtype)?;
        self.keep(name, tensor)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.source.contains_tensor(name)
    }
}
