//! Where a `[B, H, L, D]` attention input lies in memory as rows of one matrix: the shape
//! the warp-specialised kernels' TMA descriptors (`tma.rs`) describe.

use candle_core::Layout;

/// How a `[B, H, L, D]` view lies in memory as rows of one matrix: every (batch, head) starts
/// at a row of `row_stride` elements, at a column where its `D` values fit in the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowView {
    /// Elements between consecutive sequence positions.
    pub row_stride: usize,
    /// Rows spanned by the view, the last one included.
    pub rows: usize,
}

impl RowView {
    /// The row view of `layout`, or why there is none (the kernels then are not used).
    pub fn of(layout: &Layout) -> std::result::Result<Self, String> {
        let dims = layout.dims();
        let stride = layout.stride();
        let (b, h, l, d) = (dims[0], dims[1], dims[2], dims[3]);
        if b * h * l * d == 0 {
            return Err(format!("empty shape {dims:?}"));
        }
        let row_stride = stride[2];
        // Strides of size-1 dimensions are never used and may be anything in a view.
        let s_b = if b == 1 { 0 } else { stride[0] };
        let s_h = if h == 1 { 0 } else { stride[1] };
        if row_stride < d || row_stride % 8 != 0 || stride[3] != 1 {
            return Err(format!("row stride {row_stride} for head width {d}"));
        }
        if s_b % row_stride != 0 {
            return Err(format!(
                "batch stride {s_b} is not whole rows of {row_stride}"
            ));
        }
        // Heads either start on their own rows or sit side by side within one row.
        let heads_in_row = s_h < row_stride && (h - 1) * s_h + d <= row_stride;
        if s_h % row_stride != 0 && !heads_in_row {
            return Err(format!("head stride {s_h} with row stride {row_stride}"));
        }
        let last = (b - 1) * s_b + (h - 1) * s_h + (l - 1) * row_stride;
        let rows = last / row_stride + 1;
        if rows > i32::MAX as usize || row_stride > u32::MAX as usize {
            return Err(format!("{rows} rows of {row_stride}: too large for TMA"));
        }
        Ok(Self { row_stride, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Shape;

    fn layout(dims: [usize; 4], stride: [usize; 4]) -> Layout {
        Layout::new(Shape::from(dims.to_vec()), stride.to_vec(), 0)
    }

    #[test]
    fn heads_split_off_a_projection_share_rows() {
        // [B, L, H·D] viewed as [B, H, L, D]: row stride H·D, heads side by side.
        let view = RowView::of(&layout([2, 12, 100, 128], [100 * 1536, 128, 1536, 1])).unwrap();
        assert_eq!(
            view,
            RowView {
                row_stride: 1536,
                rows: 200
            }
        );
    }

    #[test]
    fn contiguous_heads_have_their_own_rows() {
        let view = RowView::of(&layout([2, 3, 10, 128], [3 * 10 * 128, 10 * 128, 128, 1])).unwrap();
        assert_eq!(
            view,
            RowView {
                row_stride: 128,
                rows: 60
            }
        );
    }

    #[test]
    fn views_that_are_not_rows_are_refused() {
        // Heads overlapping the next row.
        assert!(RowView::of(&layout([1, 12, 10, 128], [0, 200, 1536, 1])).is_err());
        // A batch stride that is not whole rows.
        assert!(RowView::of(&layout([2, 1, 10, 128], [1288, 0, 128, 1])).is_err());
    }
}
