//! 3-D rotary position embedding of the DiT (`rope_params` / `rope_apply` in
//! `wan/modules/model.py`).
//!
//! A head of width `hd` is rotated as `hd/2` complex numbers made of adjacent pairs
//! (interleaved layout). The first `c − 2⌊c/3⌋` pairs (c = hd/2) turn with the frame index,
//! the next `⌊c/3⌋` with the row and the last `⌊c/3⌋` with the column. Angles are computed in
//! f64 as the reference does, then stored as f32 cos/sin tables.

use candle_core::{Device, Result, Tensor};

/// Base of the rotary frequencies (`theta` in `rope_params`).
const ROPE_THETA: f64 = 10000.0;
/// Positions per axis the reference precomputes; grids beyond it are rejected.
pub const MAX_POSITIONS: usize = 1024;

/// The token grid `(frames, rows, columns)` in patch units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrid {
    pub frames: usize,
    pub rows: usize,
    pub cols: usize,
}

impl TokenGrid {
    /// Number of tokens, frame-major then row then column.
    pub fn len(&self) -> usize {
        self.frames * self.rows * self.cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// cos/sin tables `[L, hd/2]` for every token of a grid.
#[derive(Debug, Clone)]
pub struct Rope {
    pub grid: TokenGrid,
    cos: Tensor,
    sin: Tensor,
}

/// Inverse frequencies of one axis whose rotary width is `axis_dim` (an even number).
fn inverse_frequencies(axis_dim: usize) -> Vec<f64> {
    (0..axis_dim)
        .step_by(2)
        .map(|j| 1.0 / ROPE_THETA.powf(j as f64 / axis_dim as f64))
        .collect()
}

impl Rope {
    /// Builds the tables for `grid` and heads of width `head_dim`.
    pub fn new(grid: TokenGrid, head_dim: usize, device: &Device) -> Result<Self> {
        let axes = [grid.frames, grid.rows, grid.cols];
        if let Some(&n) = axes.iter().find(|&&n| n > MAX_POSITIONS) {
            candle_core::bail!(
                "token grid {axes:?} has an axis of {n} > {MAX_POSITIONS} positions"
            );
        }
        let pairs = head_dim / 2;
        let spatial_pairs = pairs / 3;
        let freqs = [
            inverse_frequencies(2 * (pairs - 2 * spatial_pairs)),
            inverse_frequencies(2 * spatial_pairs),
            inverse_frequencies(2 * spatial_pairs),
        ];
        let mut cos = Vec::with_capacity(grid.len() * pairs);
        let mut sin = Vec::with_capacity(grid.len() * pairs);
        for f in 0..grid.frames {
            for y in 0..grid.rows {
                for x in 0..grid.cols {
                    for (position, axis) in [f, y, x].into_iter().zip(&freqs) {
                        for w in axis {
                            let angle = position as f64 * w;
                            cos.push(angle.cos() as f32);
                            sin.push(angle.sin() as f32);
                        }
                    }
                }
            }
        }
        let shape = (grid.len(), pairs);
        Ok(Self {
            grid,
            cos: Tensor::from_vec(cos, shape, device)?,
            sin: Tensor::from_vec(sin, shape, device)?,
        })
    }

    /// The cos and sin tables `[L, hd/2]`, f32.
    pub fn tables(&self) -> (&Tensor, &Tensor) {
        (&self.cos, &self.sin)
    }

    /// Rotates `x: [B, H, L, hd]` (contiguous) token by token.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let cos = self.cos.to_dtype(x.dtype())?;
        let sin = self.sin.to_dtype(x.dtype())?;
        candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_split_matches_the_reference_for_head_128() {
        // hd 128: 22 pairs turn with the frame, 21 with the row, 21 with the column.
        let grid = TokenGrid {
            frames: 2,
            rows: 2,
            cols: 2,
        };
        let rope = Rope::new(grid, 128, &Device::Cpu).unwrap();
        let sin: Vec<Vec<f32>> = rope.sin.to_vec2().unwrap();
        let turning =
            |token: usize| -> Vec<usize> { (0..64).filter(|&p| sin[token][p] != 0.0).collect() };
        // Tokens are frame-major: (f, y, x) -> f*4 + y*2 + x.
        assert_eq!(turning(4), (0..22).collect::<Vec<_>>());
        assert_eq!(turning(2), (22..43).collect::<Vec<_>>());
        assert_eq!(turning(1), (43..64).collect::<Vec<_>>());
        let w21 = 1.0 / 10000f64.powf(42.0 / 44.0);
        assert_eq!(sin[4][21], w21.sin() as f32);
        assert_eq!(sin[4][0], 1f64.sin() as f32);
    }
}
