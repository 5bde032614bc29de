//! MatMul (numpy semantics: 1-D operands, broadcast batch dimensions) and Gemm.

use candle_core::Tensor;

use super::util::{broadcast_shape, input, like, msg, same_device};
use super::{Compiled, NodeCtx, Op};

/// `t` in a layout candle's matrix product takes: contiguous, or contiguous with its last
/// two dimensions swapped (a transposed view); anything else is copied.
fn mm_ready(t: &Tensor) -> candle_core::Result<Tensor> {
    let r = t.rank();
    if t.is_contiguous() || (r >= 2 && t.transpose(r - 2, r - 1)?.is_contiguous()) {
        Ok(t.clone())
    } else {
        t.contiguous()
    }
}

/// `a @ b` with numpy's matmul rules.
pub(crate) fn matmul_nd(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let (a, drop_m) = if a.rank() == 1 {
        (a.unsqueeze(0)?, true)
    } else {
        (a.clone(), false)
    };
    let (b, drop_n) = if b.rank() == 1 {
        (b.unsqueeze(1)?, true)
    } else {
        (b.clone(), false)
    };
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k) = (a.dim(ra - 2)?, a.dim(ra - 1)?);
    let (k2, n) = (b.dim(rb - 2)?, b.dim(rb - 1)?);
    if k != k2 {
        return Err(msg(format!(
            "MatMul of {:?} and {:?}: inner dimensions differ",
            a.dims(),
            b.dims()
        )));
    }
    let a_batch = a.dims()[..ra - 2].to_vec();
    let b_batch = b.dims()[..rb - 2].to_vec();
    let mut y = if b_batch.is_empty() {
        // One matrix on the right (a Linear layer): fold a's batch into its rows.
        let rows: usize = a_batch.iter().product::<usize>() * m;
        let a2 = if ra == 2 {
            mm_ready(&a)?
        } else {
            a.reshape((rows, k))?
        };
        let y = a2.matmul(&mm_ready(&b)?)?;
        let mut shape = a_batch.clone();
        shape.extend([m, n]);
        y.reshape(shape)?
    } else {
        let batch = broadcast_shape(&a_batch, &b_batch)?;
        let count: usize = batch.iter().product();
        let prep = |t: &Tensor, own: &[usize], r: usize, c: usize| -> candle_core::Result<Tensor> {
            let mut full = batch.clone();
            full.extend([r, c]);
            let t = if own == batch.as_slice() {
                t.clone()
            } else {
                t.broadcast_as(full.as_slice())?.contiguous()?
            };
            if batch.len() == 1 {
                mm_ready(&t)
            } else {
                mm_ready(&t.reshape((count, r, c))?)
            }
        };
        let a3 = prep(&a, &a_batch, m, k)?;
        let b3 = prep(&b, &b_batch, k, n)?;
        let y = a3.matmul(&b3)?;
        let mut shape = batch.clone();
        shape.extend([m, n]);
        y.reshape(shape)?
    };
    if drop_n {
        y = y.squeeze(y.rank() - 1)?;
    }
    if drop_m {
        y = y.squeeze(y.rank() - if drop_n { 1 } else { 2 })?;
    }
    Ok(y)
}

struct MatMul {
    /// The right operand, on the op's device, when constant.
    b: Option<Tensor>,
}

/// MatMul.
pub(crate) fn matmul(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    let b = ctx
        .take_const(1)
        .map(|b| b.to_device(ctx.device))
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(Box::new(MatMul { b }))
}

impl Op for MatMul {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let a = input(inputs, 0)?;
        let b = match &self.b {
            Some(b) => b.clone(),
            None => input(inputs, 1)?.clone(),
        };
        let v = same_device(&[a, &b])?;
        Ok(vec![matmul_nd(&v[0], &v[1])?])
    }
}

struct Gemm {
    alpha: f64,
    beta: f64,
    trans_a: bool,
    trans_b: bool,
    /// B, already transposed if `transB`, when constant.
    b: Option<Tensor>,
    /// `beta * C`, when constant.
    c: Option<Tensor>,
}

/// Gemm: `alpha * A' @ B' + beta * C`.
pub(crate) fn gemm(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    let alpha = f64::from(ctx.float_or("alpha", 1.0)?);
    let beta = f64::from(ctx.float_or("beta", 1.0)?);
    let trans_a = ctx.int_or("transA", 0)? != 0;
    let trans_b = ctx.int_or("transB", 0)? != 0;
    if ctx.opset < 7 {
        ctx.attr_int("broadcast")?;
    }
    let err = |e: candle_core::Error| e.to_string();
    let b = match ctx.take_const(1) {
        None => None,
        Some(b) => {
            let b = if trans_b {
                b.t().map_err(err)?
            } else {
                b.clone()
            };
            Some(
                b.contiguous()
                    .and_then(|b| b.to_device(ctx.device))
                    .map_err(err)?,
            )
        }
    };
    let c = match ctx.take_const(2) {
        None => None,
        Some(c) => Some(
            c.affine(beta, 0.0)
                .and_then(|c| c.to_device(ctx.device))
                .map_err(err)?,
        ),
    };
    Ok(Box::new(Gemm {
        alpha,
        beta,
        trans_a,
        trans_b,
        b,
        c,
    }))
}

impl Op for Gemm {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let a = input(inputs, 0)?;
        let a = if self.trans_a { a.t()? } else { a.clone() };
        let b = match &self.b {
            Some(b) => b.clone(),
            None => {
                let b = input(inputs, 1)?;
                if self.trans_b { b.t()? } else { b.clone() }
            }
        };
        let v = same_device(&[&a, &b])?;
        let mut y = mm_ready(&v[0])?.matmul(&mm_ready(&v[1])?)?;
        if self.alpha != 1.0 {
            y = y.affine(self.alpha, 0.0)?;
        }
        let c = match &self.c {
            Some(c) => Some(c.clone()),
            None => match inputs.get(2).and_then(|c| c.as_ref()) {
                Some(c) => Some(c.affine(self.beta, 0.0)?),
                None => None,
            },
        };
        if let Some(c) = c {
            let v = same_device(&[&y, &like(&c, &y)?])?;
            y = v[0].broadcast_add(&v[1])?;
        }
        Ok(vec![y])
    }
}
