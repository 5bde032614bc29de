//! When the inbox scan reports a job folder as completely copied: slow copies, temporary
//! names, a manifest written last, a READY file, ignored entries, and an inbox root that
//! goes away and comes back. Time is passed to `scan`, so nothing sleeps.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use vaced::intake::{Inbox, InboxSettings, IntakeError, Readiness};

const POLL: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(30);

/// A manifest naming `video` (and nothing else) as input.
fn manifest(video: &str) -> String {
    format!(
        r#"{{"version": 1, "prompt": "a red ball", "model": "tiny", "inputs": {{"video": "{video}"}}}}"#
    )
}

/// Writes `bytes` to `path` with a modification time `secs` after a fixed base, so the
/// order of writes does not depend on the clock's granularity.
fn write_at(path: &Path, bytes: &[u8], secs: u64) {
    std::fs::write(path, bytes).unwrap();
    set_mtime(path, secs);
}

fn set_mtime(path: &Path, secs: u64) {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(base + Duration::from_secs(secs))
        .unwrap();
}

fn open(path: &Path) -> Inbox {
    Inbox::open(InboxSettings {
        path: path.to_owned(),
        poll_interval: POLL,
        settle: SETTLE,
    })
    .unwrap()
}

fn job_dir(inbox: &Path, name: &str) -> PathBuf {
    let dir = inbox.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Names and rules of the folders one scan at `start + secs` reports.
fn scan_at(inbox: &mut Inbox, start: Instant, secs: u64) -> Vec<(String, Readiness)> {
    let mut ready: Vec<(String, Readiness)> = inbox
        .scan(start + Duration::from_secs(secs))
        .unwrap()
        .into_iter()
        .map(|folder| (folder.name, folder.readiness))
        .collect();
    ready.sort_by(|a, b| a.0.cmp(&b.0));
    ready
}

fn one(name: &str, readiness: Readiness) -> Vec<(String, Readiness)> {
    vec![(name.to_owned(), readiness)]
}

#[test]
fn a_slow_copy_is_ready_only_after_it_settles() {
    let root = tempfile::tempdir().unwrap();
    let job = job_dir(root.path(), "job");
    write_at(&job.join("job.json"), manifest("source.mp4").as_bytes(), 0);
    let mut inbox = open(root.path());
    let start = Instant::now();

    // The video grows between scans, as a copy over a slow share does.
    let mut video = Vec::new();
    for step in 0..5u64 {
        video.extend_from_slice(&[7u8; 1000]);
        write_at(&job.join("source.mp4"), &video, 10 + step);
        assert_eq!(
            scan_at(&mut inbox, start, step * 2),
            [],
            "still copying at scan {step}"
        );
    }
    // Last change seen at 8 s: stable from 10 s, but settled only at 38 s.
    for secs in [10, 20, 37] {
        assert_eq!(scan_at(&mut inbox, start, secs), [], "at {secs} s");
    }
    assert_eq!(
        scan_at(&mut inbox, start, 38),
        one("job", Readiness::Settled)
    );
    assert_eq!(scan_at(&mut inbox, start, 40), [], "reported once");
}

#[test]
fn a_folder_with_a_partial_file_is_never_ready_until_it_is_renamed() {
    let root = tempfile::tempdir().unwrap();
    let job = job_dir(root.path(), "job");
    write_at(&job.join("job.json"), manifest("source.mp4").as_bytes(), 0);
    write_at(&job.join("source.mp4.part"), b"video", 10);
    let mut inbox = open(root.path());
    let start = Instant::now();

    for secs in [0, 2, 40, 100, 1000] {
        assert_eq!(scan_at(&mut inbox, start, secs), [], "at {secs} s");
    }
    std::fs::rename(job.join("source.mp4.part"), job.join("source.mp4")).unwrap();
    assert_eq!(
        scan_at(&mut inbox, start, 1002),
        [],
        "the rename is a change"
    );
    assert_eq!(scan_at(&mut inbox, start, 1004), [], "stable, not settled");
    assert_eq!(
        scan_at(&mut inbox, start, 1032),
        one("job", Readiness::Settled)
    );
}

#[test]
fn a_partial_file_deep_inside_blocks_even_a_ready_file() {
    let root = tempfile::tempdir().unwrap();
    let job = job_dir(root.path(), "job");
    std::fs::create_dir(job.join("frames")).unwrap();
    write_at(&job.join("frames/0001.png.part"), b"png", 0);
    write_at(&job.join("READY"), b"", 1);
    let mut inbox = open(root.path());
    let start = Instant::now();

    for secs in [0, 2, 100] {
        assert_eq!(scan_at(&mut inbox, start, secs), [], "at {secs} s");
    }
}

#[test]
fn a_manifest_written_last_naming_present_files_is_ready_before_settle() {
    let root = tempfile::tempdir().unwrap();
    let complete = job_dir(root.path(), "complete");
    write_at(&complete.join("source.mp4"), b"video", 0);
    write_at(
        &complete.join("job.json"),
        manifest("source.mp4").as_bytes(),
        5,
    );
    // Junk written later by a desktop does not count as "written after the manifest".
    write_at(&complete.join(".DS_Store"), b"junk", 9);
    let missing = job_dir(root.path(), "missing");
    write_at(&missing.join("other.mp4"), b"video", 0);
    write_at(
        &missing.join("job.json"),
        manifest("source.mp4").as_bytes(),
        5,
    );
    let mut inbox = open(root.path());
    let start = Instant::now();

    assert_eq!(scan_at(&mut inbox, start, 0), [], "seen once");
    assert_eq!(
        scan_at(&mut inbox, start, 1),
        [],
        "seen twice, but within one poll"
    );
    assert_eq!(
        scan_at(&mut inbox, start, 2),
        one("complete", Readiness::ManifestLast)
    );
    assert_eq!(
        scan_at(&mut inbox, start, 29),
        [],
        "a named file is missing"
    );
    assert_eq!(
        scan_at(&mut inbox, start, 30),
        one("missing", Readiness::Settled)
    );
}

#[test]
fn a_manifest_written_first_waits_for_settle() {
    let root = tempfile::tempdir().unwrap();
    let job = job_dir(root.path(), "job");
    write_at(&job.join("job.json"), manifest("source.mp4").as_bytes(), 0);
    write_at(&job.join("source.mp4"), b"video", 5);
    let mut inbox = open(root.path());
    let start = Instant::now();

    for secs in [0, 2, 29] {
        assert_eq!(scan_at(&mut inbox, start, secs), [], "at {secs} s");
    }
    assert_eq!(
        scan_at(&mut inbox, start, 30),
        one("job", Readiness::Settled)
    );
}

#[test]
fn a_ready_file_makes_a_folder_ready_after_two_stable_scans() {
    let root = tempfile::tempdir().unwrap();
    let job = job_dir(root.path(), "job");
    write_at(&job.join("job.json"), manifest("source.mp4").as_bytes(), 0);
    write_at(&job.join("source.mp4"), b"video", 5);
    write_at(&job.join("READY"), b"", 6);
    let mut inbox = open(root.path());
    let start = Instant::now();

    assert_eq!(scan_at(&mut inbox, start, 0), []);
    assert_eq!(
        scan_at(&mut inbox, start, 2),
        one("job", Readiness::ReadyFile)
    );
    // Junk does not count as a change; a real file does, and the rules run again.
    std::fs::write(job.join(".DS_Store"), b"junk").unwrap();
    assert_eq!(scan_at(&mut inbox, start, 4), []);
    std::fs::write(job.join("notes.txt"), b"later").unwrap();
    assert_eq!(scan_at(&mut inbox, start, 6), [], "changed");
    assert_eq!(
        scan_at(&mut inbox, start, 8),
        one("job", Readiness::ReadyFile)
    );
}

#[test]
fn hidden_temporary_and_loose_top_level_entries_are_never_reported() {
    let root = tempfile::tempdir().unwrap();
    for name in ["incoming.part", ".hidden", ".vaced", "~$lock", "Thumbs.db"] {
        let dir = job_dir(root.path(), name);
        write_at(&dir.join("job.json"), manifest("source.mp4").as_bytes(), 0);
        write_at(&dir.join("READY"), b"", 1);
    }
    write_at(&root.path().join("loose.mp4"), b"video", 0);
    write_at(&root.path().join("job.json"), b"{}", 0);
    std::os::unix::fs::symlink(root.path().join(".hidden"), root.path().join("link")).unwrap();
    let real = job_dir(root.path(), "real");
    write_at(&real.join("READY"), b"", 0);
    let mut inbox = open(root.path());
    let start = Instant::now();

    let mut reported = Vec::new();
    for secs in [0, 2, 100, 1000] {
        reported.extend(scan_at(&mut inbox, start, secs));
    }
    assert_eq!(reported, one("real", Readiness::ReadyFile));
}

#[test]
fn a_vanished_inbox_root_pauses_intake_and_keeps_what_was_seen() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("inbox");
    let job = job_dir(&path, "job");
    write_at(&job.join("READY"), b"", 0);
    let mut inbox = open(&path);
    let start = Instant::now();
    assert_eq!(scan_at(&mut inbox, start, 0), []);

    let away = root.path().join("inbox-away");
    std::fs::rename(&path, &away).unwrap();
    let err = inbox.scan(start + Duration::from_secs(2)).unwrap_err();
    assert!(matches!(err, IntakeError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    std::fs::rename(&away, &path).unwrap();
    // Seen at 0 s and again now: the observation from before the outage still counts.
    assert_eq!(
        scan_at(&mut inbox, start, 4),
        one("job", Readiness::ReadyFile)
    );
}

#[test]
fn a_folder_that_disappears_is_forgotten() {
    let root = tempfile::tempdir().unwrap();
    let job = job_dir(root.path(), "job");
    write_at(&job.join("READY"), b"", 0);
    let mut inbox = open(root.path());
    let start = Instant::now();
    assert_eq!(scan_at(&mut inbox, start, 0), []);

    std::fs::remove_dir_all(&job).unwrap();
    assert_eq!(scan_at(&mut inbox, start, 2), []);
    // The same folder again, identical down to the times: a new folder, seen once.
    let job = job_dir(root.path(), "job");
    write_at(&job.join("READY"), b"", 0);
    assert_eq!(
        scan_at(&mut inbox, start, 4),
        [],
        "seen once since it came back"
    );
    assert_eq!(
        scan_at(&mut inbox, start, 6),
        one("job", Readiness::ReadyFile)
    );
}

#[test]
fn opening_a_missing_inbox_or_a_file_fails_with_the_path() {
    let root = tempfile::tempdir().unwrap();
    let settings = |path: PathBuf| InboxSettings {
        path,
        poll_interval: POLL,
        settle: SETTLE,
    };
    let missing = root.path().join("missing");
    let err = Inbox::open(settings(missing.clone())).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let file = root.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let err = Inbox::open(settings(file)).unwrap_err();
    assert!(matches!(err, IntakeError::NotAFolder { .. }), "{err:?}");
}
