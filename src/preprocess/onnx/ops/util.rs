//! Helpers shared by the operators.

use candle_core::{DType, Device, Tensor};

/// A `candle_core::Error::Msg`.
pub(crate) fn msg(s: impl Into<String>) -> candle_core::Error {
    candle_core::Error::Msg(s.into())
}

/// Input `i`, or an error saying it is missing.
pub(crate) fn input(inputs: &[Option<Tensor>], i: usize) -> candle_core::Result<&Tensor> {
    inputs
        .get(i)
        .and_then(|t| t.as_ref())
        .ok_or_else(|| msg(format!("input {i} is missing")))
}

/// All values of `t` as integers (brought to the CPU: only for small shape values).
pub(crate) fn ints(t: &Tensor) -> candle_core::Result<Vec<i64>> {
    let t = t.flatten_all()?.to_device(&Device::Cpu)?;
    match t.dtype() {
        DType::I64 => t.to_vec1::<i64>(),
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Ok(t
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?
            .into_iter()
            .map(|v| v as i64)
            .collect()),
        _ => t.to_dtype(DType::I64)?.to_vec1::<i64>(),
    }
}

/// All values of `t` as floats (brought to the CPU: only for small values).
pub(crate) fn floats(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    t.flatten_all()?
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()
}

/// The single value of `t` as a float.
pub(crate) fn scalar_f64(t: &Tensor) -> candle_core::Result<f64> {
    let v = floats(t)?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(msg(format!(
            "expected a single value, got shape {:?}",
            t.dims()
        ))),
    }
}

/// Axis `a` (negative counts from the end) of a tensor of rank `rank`.
pub(crate) fn axis(a: i64, rank: usize) -> candle_core::Result<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r.max(1) {
        return Err(msg(format!("axis {a} is out of range for rank {rank}")));
    }
    Ok(v as usize)
}

/// Moves the CPU tensors among `ts` to the device of the others (shape arithmetic meets
/// data), so that a binary kernel can take them.
pub(crate) fn same_device(ts: &[&Tensor]) -> candle_core::Result<Vec<Tensor>> {
    let target = ts.iter().map(|t| t.device()).find(|d| !d.is_cpu());
    match target {
        None => Ok(ts.iter().map(|t| (*t).clone()).collect()),
        Some(dev) => {
            let dev = dev.clone();
            ts.iter().map(|t| t.to_device(&dev)).collect()
        }
    }
}

/// The numpy broadcast of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> candle_core::Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(msg(format!("shapes {a:?} and {b:?} do not broadcast")));
        };
    }
    Ok(out)
}

/// A one-value tensor `v` of `dtype` on `device`, made at load time so that running
/// never uploads scalars.
pub(crate) fn scalar(v: f64, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::new(&[v], &Device::Cpu)?
        .to_dtype(dtype)?
        .reshape(())?
        .to_device(device)
}

/// `t` with the dtype of `like` (a no-op when they agree).
pub(crate) fn like(t: &Tensor, like: &Tensor) -> candle_core::Result<Tensor> {
    if t.dtype() == like.dtype() {
        Ok(t.clone())
    } else {
        t.to_dtype(like.dtype())
    }
}

/// Elements `start, start + step, …` (`len` of them) of `t` along `dim`, `step >= 1`.
/// Strided views are not in candle, so a step is taken by folding the dimension into
/// `(len, step)` and keeping the first column.
pub(crate) fn strided(
    t: &Tensor,
    dim: usize,
    start: usize,
    len: usize,
    step: usize,
) -> candle_core::Result<Tensor> {
    if step == 1 || len <= 1 {
        return t.narrow(dim, start, len);
    }
    let size = t.dim(dim)?;
    let need = start + len * step;
    let t = if need > size {
        // The last block may run past the end; its padding is never kept.
        t.pad_with_zeros(dim, 0, need - size)?
    } else {
        t.clone()
    };
    let t = t.narrow(dim, start, len * step)?;
    let mut dims = t.dims().to_vec();
    dims[dim] = len;
    dims.insert(dim + 1, step);
    t.reshape(dims)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// `t` padded along `dim` with `left` and `right` copies of `value`.
pub(crate) fn pad_value(
    t: &Tensor,
    dim: usize,
    left: usize,
    right: usize,
    value: &Tensor,
) -> candle_core::Result<Tensor> {
    if left == 0 && right == 0 {
        return Ok(t.clone());
    }
    let mut parts = Vec::with_capacity(3);
    let mut dims = t.dims().to_vec();
    let v = like(value, t)?;
    if left > 0 {
        dims[dim] = left;
        parts.push(v.broadcast_as(dims.as_slice())?);
    }
    parts.push(t.clone());
    if right > 0 {
        dims[dim] = right;
        parts.push(v.broadcast_as(dims.as_slice())?);
    }
    Tensor::cat(&parts, dim)
}

/// Dimension sizes as i64 (for shape outputs).
pub(crate) fn dims_i64(t: &Tensor) -> Vec<i64> {
    t.dims().iter().map(|&d| d as i64).collect()
}

/// A 1-D i64 tensor on the CPU.
pub(crate) fn i64_tensor(v: Vec<i64>) -> candle_core::Result<Tensor> {
    let n = v.len();
    Tensor::from_vec(v, n, &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_takes_every_step_th_element() {
        let t = Tensor::arange(0i64, 10, &Device::Cpu).unwrap();
        let got = |start, len, step| {
            strided(&t, 0, start, len, step)
                .unwrap()
                .to_vec1::<i64>()
                .unwrap()
        };
        assert_eq!(got(0, 5, 2), vec![0, 2, 4, 6, 8]);
        assert_eq!(got(1, 5, 2), vec![1, 3, 5, 7, 9]);
        // The last block runs past the end.
        assert_eq!(got(1, 3, 4), vec![1, 5, 9]);
        assert_eq!(got(3, 2, 1), vec![3, 4]);
    }

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(broadcast_shape(&[2, 1, 4], &[3, 1]).unwrap(), vec![2, 3, 4]);
        assert_eq!(broadcast_shape(&[], &[5]).unwrap(), vec![5]);
        assert!(broadcast_shape(&[2, 3], &[4]).is_err());
    }
}
