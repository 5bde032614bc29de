//! Row-band parallelism for the image operations: each output row is computed by the same
//! code whatever thread runs it, so the result does not depend on the split.

use std::sync::OnceLock;

/// Below this many multiply-adds a call stays on the calling thread.
const PARALLEL_WORK: usize = 1 << 18;
/// At most this many threads per call.
const MAX_THREADS: usize = 8;

/// Threads available to this process (asked once: the answer reads cgroup files).
fn available() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Calls `f(row, slice)` for every `row_len`-long row of `buf`, in bands over threads when
/// the estimated work (`work_per_row` per row) makes it worthwhile.
pub(super) fn for_each_row<T, F>(buf: &mut [T], row_len: usize, work_per_row: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let rows = buf.len().checked_div(row_len).unwrap_or(0);
    let threads = if rows.saturating_mul(work_per_row) < PARALLEL_WORK {
        1
    } else {
        available().min(MAX_THREADS)
    };
    in_bands(buf, row_len, threads, f);
}

/// `for_each_row` on a given number of threads.
fn in_bands<T, F>(buf: &mut [T], row_len: usize, threads: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    if row_len == 0 {
        return;
    }
    let rows = buf.len() / row_len;
    let threads = threads.clamp(1, rows.max(1));
    if threads == 1 {
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

#[cfg(test)]
mod tests {
    use super::in_bands;

    #[test]
    fn bands_cover_every_row_once_whatever_the_split() {
        let fill = |threads: usize| {
            let mut buf = vec![0u32; 7 * 5];
            in_bands(&mut buf, 5, threads, |y, row| {
                for (x, v) in row.iter_mut().enumerate() {
                    *v += (y * 10 + x) as u32 + 1;
                }
            });
            buf
        };
        let serial = fill(1);
        assert_eq!(serial[5 * 3 + 2], 33);
        for threads in [2, 3, 7, 20] {
            assert_eq!(fill(threads), serial, "{threads} threads");
        }
    }
}
