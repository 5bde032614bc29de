//! The one layer every RAFT block is made of: a biased 2-D convolution whose padding may
//! differ between the two axes (the GRU's 1×5 and 5×1 kernels), which candle's `Conv2d`
//! config cannot express.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

/// `nn.Conv2d(cin, cout, kernel, stride, padding)` with keys `weight` and `bias`.
#[derive(Debug, Clone)]
pub(super) struct Conv {
    inner: Conv2d,
    /// Zero padding `(rows, columns)` added before the convolution when the two differ;
    /// `(0, 0)` when candle's symmetric padding does it.
    extra_padding: (usize, usize),
}

impl Conv {
    /// A square `kernel` with the same padding on both axes.
    pub(super) fn square(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::new(cin, cout, (kernel, kernel), stride, (padding, padding), vb)
    }

    /// A `(rows, columns)` kernel with `(rows, columns)` padding.
    pub(super) fn new(
        cin: usize,
        cout: usize,
        kernel: (usize, usize),
        stride: usize,
        padding: (usize, usize),
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get((cout, cin, kernel.0, kernel.1), "weight")?;
        let bias = vb.get(cout, "bias")?;
        let symmetric = padding.0 == padding.1;
        let cfg = Conv2dConfig {
            padding: if symmetric { padding.0 } else { 0 },
            stride,
            ..Default::default()
        };
        Ok(Self {
            inner: Conv2d::new(weight, Some(bias), cfg),
            extra_padding: if symmetric { (0, 0) } else { padding },
        })
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (rows, columns) = self.extra_padding;
        if rows == 0 && columns == 0 {
            return self.inner.forward(x);
        }
        let padded = x
            .pad_with_zeros(2, rows, rows)?
            .pad_with_zeros(3, columns, columns)?;
        self.inner.forward(&padded)
    }
}
