//! Each job's own log, `<state>/jobs/<id>/log.txt`: the daemon's lines about it and its
//! worker's output while it runs. A failed job's `log.txt` and the tail in `error.json`
//! come from here.

use std::io::Write;
use std::path::Path;

use crate::queue::{JobId, Queue};

/// Appends one timestamped line to a job's log (best effort: a log must never stop a job).
pub fn append(queue: &Queue, id: JobId, source: &str, line: &str) {
    let path = queue.job_dir(id).join("log.txt");
    let stamp = crate::render::report::now_rfc3339();
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(file, "{stamp} [{source}] {line}");
    }
}

/// The last `lines` lines of a job's log.
pub fn tail(queue: &Queue, id: JobId, lines: usize) -> Vec<String> {
    let text = std::fs::read_to_string(queue.job_dir(id).join("log.txt")).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Copies a job's log to `dest` (best effort).
pub fn copy_to(queue: &Queue, id: JobId, dest: &Path) {
    let _ = std::fs::copy(queue.job_dir(id).join("log.txt"), dest);
}
