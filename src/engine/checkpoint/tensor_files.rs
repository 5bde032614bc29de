//! Memory-mapped tensor files behind a candle `VarBuilder`: safetensors (one file or the
//! shards of an index) and PyTorch `.pth` zip archives as `torch.save` writes them (entries
//! stored uncompressed, so tensor bytes are read straight from the map).
//!
//! Every lookup checks the name and shape against the file's header; the first failure is
//! kept as a [`LoadError`] naming the file, since candle's own error type cannot carry it.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;
use memmap2::Mmap;

use super::error::LoadError;

/// Where one tensor's bytes live.
#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: DType,
    shape: Vec<usize>,
    /// Byte range in the mapped file.
    start: usize,
    end: usize,
}

/// Whether lookups read the weights or only check them against the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Load,
    /// Returns zero-cost placeholders of the right shape: checks a whole folder in seconds.
    Verify,
}

/// The tensors of one model, spread over one or more mapped files.
#[derive(Debug)]
pub struct TensorFiles {
    paths: Vec<PathBuf>,
    maps: Vec<Mmap>,
    entries: HashMap<String, Entry>,
    model: &'static str,
    first_error: Mutex<Option<LoadError>>,
}

fn map_file(path: &Path) -> Result<Mmap, LoadError> {
    let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    // Safety: the checkpoint is read-only input; a file truncated under us would be the
    // same kind of failure as reading past its end, which no sane setup does.
    unsafe { Mmap::map(&file) }.map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })
}

fn candle_dtype(dtype: safetensors::Dtype) -> Option<DType> {
    match dtype {
        safetensors::Dtype::F32 => Some(DType::F32),
        safetensors::Dtype::BF16 => Some(DType::BF16),
        safetensors::Dtype::F16 => Some(DType::F16),
        _ => None,
    }
}

impl TensorFiles {
    /// Maps safetensors files and indexes their headers.
    pub fn safetensors(paths: &[PathBuf], model: &'static str) -> Result<Self, LoadError> {
        let mut files = Self::empty(model);
        for path in paths {
            let map = map_file(path)?;
            let (header_len, metadata) =
                safetensors::SafeTensors::read_metadata(&map).map_err(|e| LoadError::Corrupt {
                    file: path.clone(),
                    reason: e.to_string(),
                })?;
            let data_start = 8 + header_len;
            let file = files.maps.len();
            for (name, info) in metadata.tensors() {
                let dtype =
                    candle_dtype(info.dtype).ok_or_else(|| LoadError::UnsupportedDtype {
                        file: path.clone(),
                        tensor: name.clone(),
                        dtype: format!("{:?}", info.dtype),
                    })?;
                let (start, end) = info.data_offsets;
                files.entries.insert(
                    name,
                    Entry {
                        file,
                        dtype,
                        shape: info.shape.clone(),
                        start: data_start + start,
                        end: data_start + end,
                    },
                );
            }
            files.paths.push(path.clone());
            files.maps.push(map);
        }
        Ok(files)
    }

    /// Maps a `.pth` archive and indexes the tensors of its pickled state dict.
    pub fn pth(path: &Path, model: &'static str) -> Result<Self, LoadError> {
        let corrupt = |reason: String| LoadError::Corrupt {
            file: path.to_owned(),
            reason,
        };
        let map = map_file(path)?;
        let mut archive =
            zip::ZipArchive::new(Cursor::new(&map[..])).map_err(|e| corrupt(e.to_string()))?;
        let infos = candle_core::pickle::read_pth_tensor_info(path, false, None)
            .map_err(|e| corrupt(e.to_string()))?;
        let mut files = Self::empty(model);
        let mut storages: HashMap<String, (usize, usize)> = HashMap::new();
        for info in infos {
            if !storages.contains_key(&info.path) {
                let entry = archive
                    .by_name(&info.path)
                    .map_err(|e| corrupt(format!("{}: {e}", info.path)))?;
                if entry.compression() != zip::CompressionMethod::Stored {
                    return Err(corrupt(format!(
                        "{} is compressed; save it with torch.save",
                        info.path
                    )));
                }
                let start = entry
                    .data_start()
                    .ok_or_else(|| corrupt(format!("{} has no data", info.path)))?
                    as usize;
                storages.insert(info.path.clone(), (start, start + entry.size() as usize));
            }
            let (storage_start, storage_end) = storages[&info.path];
            if !info.layout.is_contiguous() {
                return Err(corrupt(format!(
                    "tensor `{}` is not stored contiguously",
                    info.name
                )));
            }
            let start = storage_start + info.layout.start_offset() * info.dtype.size_in_bytes();
            let end = start + info.layout.shape().elem_count() * info.dtype.size_in_bytes();
            if end > storage_end || end > map.len() {
                return Err(corrupt(format!(
                    "tensor `{}` runs past the end of its storage",
                    info.name
                )));
            }
            if !matches!(info.dtype, DType::F32 | DType::BF16 | DType::F16) {
                return Err(LoadError::UnsupportedDtype {
                    file: path.to_owned(),
                    tensor: info.name,
                    dtype: format!("{:?}", info.dtype),
                });
            }
            let shape = info.layout.shape().dims().to_vec();
            files.entries.insert(
                info.name,
                Entry {
                    file: 0,
                    dtype: info.dtype,
                    shape,
                    start,
                    end,
                },
            );
        }
        drop(archive);
        files.paths.push(path.to_owned());
        files.maps.push(map);
        Ok(files)
    }

    fn empty(model: &'static str) -> Self {
        Self {
            paths: Vec::new(),
            maps: Vec::new(),
            entries: HashMap::new(),
            model,
            first_error: Mutex::new(None),
        }
    }

    /// The file holding `name`, or the first file when no file does.
    pub fn file_of(&self, name: &str) -> &Path {
        let index = self.entries.get(name).map_or(0, |e| e.file);
        &self.paths[index]
    }

    /// The stored shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The stored shape of `name`, or a missing-tensor error.
    pub fn require_shape(&self, name: &str) -> Result<&[usize], LoadError> {
        self.shape(name).ok_or_else(|| LoadError::MissingTensor {
            file: self.file_of(name).to_owned(),
            tensor: name.to_owned(),
            model: self.model,
        })
    }

    /// Bytes of one tensor, as stored.
    fn load(&self, entry: &Entry, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let bytes = &self.maps[entry.file][entry.start..entry.end];
        Tensor::from_raw_buffer(bytes, entry.dtype, &entry.shape, device)?.to_dtype(dtype)
    }

    fn fail(&self, error: LoadError) -> candle_core::Error {
        let message = error.to_string();
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        first.get_or_insert(error);
        candle_core::Error::Msg(message)
    }

    /// The first lookup failure, if any (to report instead of candle's error).
    pub fn take_error(&self) -> Option<LoadError> {
        self.first_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// A `VarBuilder` over these tensors; weights are converted to `dtype` unless a layer asks
    /// for another.
    pub fn var_builder(
        self: &Arc<Self>,
        access: Access,
        dtype: DType,
        device: &Device,
    ) -> VarBuilder<'static> {
        let backend: Box<dyn SimpleBackend> = Box::new(Backend {
            files: self.clone(),
            access,
        });
        VarBuilder::from_backend(backend, dtype, device.clone())
    }
}

struct Backend {
    files: Arc<TensorFiles>,
    access: Access,
}

impl SimpleBackend for Backend {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let files = &self.files;
        let Some(entry) = files.entries.get(name) else {
            return Err(files.fail(LoadError::MissingTensor {
                file: files.file_of(name).to_owned(),
                tensor: name.to_owned(),
                model: files.model,
            }));
        };
        if entry.shape != shape.dims() {
            return Err(files.fail(LoadError::ShapeMismatch {
                file: files.paths[entry.file].clone(),
                tensor: name.to_owned(),
                model: files.model,
                expected: shape.dims().to_vec(),
                found: entry.shape.clone(),
            }));
        }
        match self.access {
            Access::Load => files.load(entry, dtype, dev),
            Access::Verify => Tensor::zeros((), dtype, dev)?.broadcast_as(shape),
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let files = &self.files;
        match files.entries.get(name) {
            Some(entry) => match self.access {
                Access::Load => files.load(entry, dtype, dev),
                Access::Verify => {
                    Tensor::zeros((), dtype, dev)?.broadcast_as(entry.shape.as_slice())
                }
            },
            None => Err(files.fail(LoadError::MissingTensor {
                file: files.file_of(name).to_owned(),
                tensor: name.to_owned(),
                model: files.model,
            })),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.files.contains(name)
    }
}
