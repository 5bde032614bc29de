//! ONNX element types and constant tensors as candle tensors.
//!
//! Inside the runner every integer type is an `i64` tensor and `bool` a `u8` tensor of 0
//! and 1: candle has few integer types, and the graphs use integers only for shapes and
//! indices, where the width does not matter.

use candle_core::{DType, Device, Tensor};

use super::proto::{TensorProto, data_type as dt};

/// The candle dtype of ONNX element type `t`, or `None` when the runner has none.
pub(crate) fn dtype_of(t: i32) -> Option<DType> {
    Some(match t {
        dt::FLOAT => DType::F32,
        dt::DOUBLE => DType::F64,
        dt::FLOAT16 => DType::F16,
        dt::BFLOAT16 => DType::BF16,
        dt::BOOL => DType::U8,
        dt::UINT8
        | dt::INT8
        | dt::UINT16
        | dt::INT16
        | dt::INT32
        | dt::INT64
        | dt::UINT32
        | dt::UINT64 => DType::I64,
        _ => return None,
    })
}

/// The name of ONNX element type `t`, for messages.
pub(crate) fn type_name(t: i32) -> String {
    match t {
        dt::FLOAT => "float".into(),
        dt::UINT8 => "uint8".into(),
        dt::INT8 => "int8".into(),
        dt::UINT16 => "uint16".into(),
        dt::INT16 => "int16".into(),
        dt::INT32 => "int32".into(),
        dt::INT64 => "int64".into(),
        dt::STRING => "string".into(),
        dt::BOOL => "bool".into(),
        dt::FLOAT16 => "float16".into(),
        dt::DOUBLE => "double".into(),
        dt::UINT32 => "uint32".into(),
        dt::UINT64 => "uint64".into(),
        dt::BFLOAT16 => "bfloat16".into(),
        other => format!("element type {other}"),
    }
}

/// Reads a constant tensor onto the CPU. Errors name the problem, not the tensor (the
/// caller adds where it came from).
pub(crate) fn read_tensor(t: &TensorProto) -> Result<Tensor, String> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        let file = t
            .external_data
            .iter()
            .find(|e| e.key == "location")
            .map(|e| e.value.as_str())
            .unwrap_or("?");
        return Err(format!(
            "its data is stored outside the .onnx file (external data in '{file}'), which \
             the runner does not read; save the model with its weights inside \
             (onnx.save_model(model, path, save_as_external_data=False))"
        ));
    }
    if t.segment.is_some() {
        return Err("it is a segment of a larger tensor, which the runner does not read".into());
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("it has a negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let n: usize = dims.iter().product();
    let cpu = &Device::Cpu;
    let raw = &t.raw_data;
    let have_raw = !raw.is_empty();
    let count = |got: usize| -> Result<(), String> {
        if got == n {
            Ok(())
        } else {
            Err(format!(
                "it holds {got} values for dimensions {dims:?} ({n} values)"
            ))
        }
    };
    let ints: Vec<i64> = match t.data_type {
        dt::FLOAT => {
            let v: Vec<f32> = if have_raw {
                le_chunks::<4>(raw, n)?.map(f32::from_le_bytes).collect()
            } else {
                t.float_data.clone()
            };
            count(v.len())?;
            return Tensor::from_vec(v, dims, cpu).map_err(|e| e.to_string());
        }
        dt::DOUBLE => {
            let v: Vec<f64> = if have_raw {
                le_chunks::<8>(raw, n)?.map(f64::from_le_bytes).collect()
            } else {
                t.double_data.clone()
            };
            count(v.len())?;
            return Tensor::from_vec(v, dims, cpu).map_err(|e| e.to_string());
        }
        dt::FLOAT16 | dt::BFLOAT16 => {
            let bits: Vec<u16> = if have_raw {
                le_chunks::<2>(raw, n)?.map(u16::from_le_bytes).collect()
            } else {
                t.int32_data.iter().map(|&b| b as u16).collect()
            };
            count(bits.len())?;
            return if t.data_type == dt::FLOAT16 {
                let v: Vec<half::f16> = bits.into_iter().map(half::f16::from_bits).collect();
                Tensor::from_vec(v, dims, cpu).map_err(|e| e.to_string())
            } else {
                let v: Vec<half::bf16> = bits.into_iter().map(half::bf16::from_bits).collect();
                Tensor::from_vec(v, dims, cpu).map_err(|e| e.to_string())
            };
        }
        dt::INT64 => {
            if have_raw {
                le_chunks::<8>(raw, n)?.map(i64::from_le_bytes).collect()
            } else {
                t.int64_data.clone()
            }
        }
        dt::INT32 => {
            if have_raw {
                le_chunks::<4>(raw, n)?
                    .map(|b| i64::from(i32::from_le_bytes(b)))
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            }
        }
        dt::INT16 => {
            if have_raw {
                le_chunks::<2>(raw, n)?
                    .map(|b| i64::from(i16::from_le_bytes(b)))
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            }
        }
        dt::UINT16 => {
            if have_raw {
                le_chunks::<2>(raw, n)?
                    .map(|b| i64::from(u16::from_le_bytes(b)))
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            }
        }
        dt::INT8 => {
            if have_raw {
                raw.iter().map(|&b| i64::from(b as i8)).collect()
            } else {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            }
        }
        dt::UINT8 | dt::BOOL => {
            let v: Vec<i64> = if have_raw {
                raw.iter().map(|&b| i64::from(b)).collect()
            } else {
                t.int32_data.iter().map(|&v| i64::from(v)).collect()
            };
            if t.data_type == dt::BOOL {
                count(v.len())?;
                let b: Vec<u8> = v.into_iter().map(|x| u8::from(x != 0)).collect();
                return Tensor::from_vec(b, dims, cpu).map_err(|e| e.to_string());
            }
            v
        }
        dt::UINT32 => {
            if have_raw {
                le_chunks::<4>(raw, n)?
                    .map(|b| i64::from(u32::from_le_bytes(b)))
                    .collect()
            } else {
                t.uint64_data.iter().map(|&v| v as i64).collect()
            }
        }
        dt::UINT64 => {
            // Values past i64::MAX wrap; graphs use uint64 for sizes far below that.
            if have_raw {
                le_chunks::<8>(raw, n)?
                    .map(|b| u64::from_le_bytes(b) as i64)
                    .collect()
            } else {
                t.uint64_data.iter().map(|&v| v as i64).collect()
            }
        }
        other => {
            return Err(format!(
                "its element type {} is not implemented",
                type_name(other)
            ));
        }
    };
    count(ints.len())?;
    Tensor::from_vec(ints, dims, cpu).map_err(|e| e.to_string())
}

/// `raw` as `n` little-endian values of `N` bytes.
fn le_chunks<const N: usize>(
    raw: &[u8],
    n: usize,
) -> Result<impl Iterator<Item = [u8; N]> + '_, String> {
    if raw.len() != n * N {
        return Err(format!(
            "its raw data has {} bytes, not {} ({n} values of {N} bytes)",
            raw.len(),
            n * N
        ));
    }
    Ok(raw.chunks_exact(N).map(|c| {
        let mut b = [0u8; N];
        b.copy_from_slice(c);
        b
    }))
}
