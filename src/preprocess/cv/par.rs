//! Row-band parallelism for the image operations: each output row is computed by the same
//! code whatever thread runs it, so the result does not depend on the split.

/// Below this many multiply-adds a call stays on the calling thread.
const PARALLEL_WORK: usize = 1 << 18;
/// At most this many threads per call.
const MAX_THREADS: usize = 8;

/// Calls `f(row, slice)` for every `row_len`-long row of `buf`, in bands over threads when
/// the estimated work (`work_per_row` per row) makes it worthwhile.
pub(super) fn for_each_row<T, F>(buf: &mut [T], row_len: usize, work_per_row: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    if row_len == 0 {
        return;
    }
    let rows = buf.len() / row_len;
    let threads = if rows * work_per_row < PARALLEL_WORK {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
            .min(rows)
    };
    if threads <= 1 {
        for (y, row) in buf.chunks_exact_mut(row_len).enumerate() {
            f(y, row);
        }
        return;
    }
    let band = rows.div_ceil(threads);
    std::thread::scope(|scope| {
        for (b, chunk) in buf.chunks_mut(band * row_len).enumerate() {
            let f = &f;
            scope.spawn(move || {
                for (i, row) in chunk.chunks_exact_mut(row_len).enumerate() {
                    f(b * band + i, row);
                }
            });
        }
    });
}
