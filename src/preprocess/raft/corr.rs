//! `CorrBlock` of RAFT's `core/corr.py`: the all-pairs correlation volume of the two feature
//! maps, its 4-level average-pooled pyramid, and the lookup of a 9×9 window around each
//! pixel's current match at every level, through `bilinear_sampler` (`grid_sample`,
//! bilinear, zero padding, `align_corners=True`), which candle lacks and is written here
//! from gathers so it runs on any device.

use candle_core::{D, DType, IndexOp, Result, Tensor};

/// `corr_levels` of the large model.
pub(super) const LEVELS: usize = 4;
/// `corr_radius` of the large model.
const RADIUS: usize = 4;
/// Side of the lookup window.
const WINDOW: usize = 2 * RADIUS + 1;
/// Channels of a lookup: every level's window, `cor_planes` in `update.py`.
pub(super) const CORR_PLANES: usize = LEVELS * WINDOW * WINDOW;

/// One pyramid level: each query pixel's correlations with the pooled second map.
#[derive(Debug)]
struct Level {
    /// `(h * w, height * width)`, row-major over the pooled map.
    corr: Tensor,
    height: usize,
    width: usize,
}

/// The correlation pyramid of one frame pair, built once and looked up every iteration.
#[derive(Debug)]
pub(super) struct CorrBlock {
    levels: Vec<Level>,
    /// `(1, 81)` x and y offsets of the window's samples, in the reference's order: its
    /// `delta` stacks `meshgrid(dy, dx)` as (x, y), so the first window axis moves x.
    offset_x: Tensor,
    offset_y: Tensor,
    height: usize,
    width: usize,
}

impl CorrBlock {
    /// `CorrBlock(fmap1, fmap2)` for `(1, c, h, w)` maps. The pooled sides must stay at least
    /// 2 (the caller checks the frame size): 1 makes the reference divide by zero.
    pub(super) fn new(fmap1: &Tensor, fmap2: &Tensor) -> Result<Self> {
        let (_, channels, height, width) = fmap1.dims4()?;
        let n = height * width;
        let device = fmap1.device();
        let f1 = fmap1.reshape((channels, n))?.t()?;
        let f2 = fmap2.reshape((channels, n))?;
        // `/ torch.sqrt(torch.tensor(dim).float())`: a true division by an f32.
        let norm = Tensor::new((channels as f32).sqrt(), device)?;
        let mut corr = f1.matmul(&f2)?.broadcast_div(&norm)?;
        corr = corr.reshape((n, 1, height, width))?;
        let mut levels = Vec::with_capacity(LEVELS);
        for i in 0..LEVELS {
            if i > 0 {
                corr = corr.avg_pool2d(2)?;
            }
            let (_, _, h, w) = corr.dims4()?;
            levels.push(Level {
                corr: corr.reshape((n, h * w))?,
                height: h,
                width: w,
            });
        }
        let r = RADIUS as f32;
        let offsets = |major: bool| -> Result<Tensor> {
            let values: Vec<f32> = (0..WINDOW * WINDOW)
                .map(|k| {
                    let step = if major { k / WINDOW } else { k % WINDOW };
                    step as f32 - r
                })
                .collect();
            Tensor::from_vec(values, (1, WINDOW * WINDOW), device)
        };
        Ok(Self {
            levels,
            offset_x: offsets(true)?,
            offset_y: offsets(false)?,
            height,
            width,
        })
    }

    /// `corr_fn(coords1)`: `(1, 2, h, w)` pixel coordinates (x, y) in the first map's grid →
    /// `(1, 324, h, w)` correlations, level after level, each a 9×9 window.
    pub(super) fn lookup(&self, coords: &Tensor) -> Result<Tensor> {
        let n = self.height * self.width;
        let cx = coords.i((0, 0))?.reshape((n, 1))?;
        let cy = coords.i((0, 1))?.reshape((n, 1))?;
        let mut windows = Vec::with_capacity(LEVELS);
        for (i, level) in self.levels.iter().enumerate() {
            // `coords / 2**i`: exact as a multiplication by the power of two's inverse.
            let inverse_scale = 1.0 / (1u32 << i) as f64;
            let x = cx
                .affine(inverse_scale, 0.0)?
                .broadcast_add(&self.offset_x)?;
            let y = cy
                .affine(inverse_scale, 0.0)?
                .broadcast_add(&self.offset_y)?;
            windows.push(level.sample(&x, &y)?); // (n, 81)
        }
        Tensor::cat(&windows, D::Minus1)? // (n, 324)
            .t()?
            .contiguous()?
            .reshape((1, CORR_PLANES, self.height, self.width))
    }
}

impl Level {
    /// `bilinear_sampler(corr, coords)` for `(n, k)` coordinates: each row samples its own
    /// map. Follows PyTorch's CPU `grid_sample` kernel: corner weights from the floor,
    /// out-of-map corners read as 0, the four terms summed nw, ne, sw, se.
    fn sample(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let x = through_grid(x, self.width)?;
        let y = through_grid(y, self.height)?;
        let x0 = x.floor()?;
        let y0 = y.floor()?;
        let west = (x - &x0)?; // distance to the west column
        let east = west.affine(-1.0, 1.0)?;
        let north = (y - &y0)?;
        let south = north.affine(-1.0, 1.0)?;
        let x1 = x0.affine(1.0, 1.0)?;
        let y1 = y0.affine(1.0, 1.0)?;
        let term = |cx: &Tensor, cy: &Tensor, weight: Tensor| self.read(cx, cy)? * weight;
        let nw = term(&x0, &y0, (&south * &east)?)?;
        let ne = term(&x1, &y0, (&south * &west)?)?;
        let sw = term(&x0, &y1, (&north * &east)?)?;
        let se = term(&x1, &y1, (&north * &west)?)?;
        ((nw + ne)? + sw)? + se
    }

    /// The map at integer-valued `(x, y)`, 0 outside it (NaN coordinates included).
    fn read(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let inside = |v: &Tensor, size: usize| -> Result<Tensor> {
            v.ge(0.0)?.mul(&v.le((size - 1) as f64)?)
        };
        let valid = inside(x, self.width)?.mul(&inside(y, self.height)?)?;
        let zeros = x.zeros_like()?;
        let flat = (y.affine(self.width as f64, 0.0)? + x)?;
        // Indices of cells outside the map are replaced before the cast, so every gather
        // reads inside the row (flat indices are exact in f32 below 2^24 cells).
        let index = valid.where_cond(&flat, &zeros)?.to_dtype(DType::U32)?;
        let values = self.corr.gather(&index, 1)?;
        valid.where_cond(&values, &zeros)
    }
}

/// `bilinear_sampler`'s normalisation `2 * v / (size - 1) - 1` followed by `grid_sample`'s
/// `(g + 1) * ((size - 1) / 2)`, rounded step by step as the reference does (the round
/// trip is not the identity in f32).
fn through_grid(v: &Tensor, size: usize) -> Result<Tensor> {
    let span = Tensor::new((size - 1) as f32, v.device())?;
    let grid = v
        .affine(2.0, 0.0)?
        .broadcast_div(&span)?
        .affine(1.0, -1.0)?;
    grid.affine(1.0, 1.0)?.affine((size - 1) as f64 / 2.0, 0.0)
}
