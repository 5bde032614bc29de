//! Job folders as wholes: their fingerprint (same for identical copies, whatever their place,
//! times or markers), moving them, and the kind of file system an inbox is on.

use std::path::Path;
use std::time::{Duration, SystemTime};

use vaced::intake::{FsKind, Inbox, InboxSettings, fingerprint, move_dir};

/// A job folder with a manifest, a video and a folder of frames, with file times `secs`
/// after a base.
fn job(dir: &Path, secs: u64) {
    std::fs::create_dir_all(dir.join("frames")).unwrap();
    let files: [(&str, &[u8]); 4] = [
        ("job.json", b"{\"version\": 1}"),
        ("source.mp4", b"video bytes"),
        ("frames/0001.png", b"frame one"),
        ("frames/0002.png", b"frame two"),
    ];
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
        let file = std::fs::File::options()
            .write(true)
            .open(dir.join(name))
            .unwrap();
        file.set_modified(time).unwrap();
    }
}

#[test]
fn identical_folders_have_the_same_fingerprint_wherever_and_whenever() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("inbox/job");
    let b = root.path().join("elsewhere/deeper/copy-of-job");
    job(&a, 0);
    job(&b, 86_400);
    let fp = fingerprint(&a).unwrap();
    assert_eq!(fp.len(), 64);
    assert!(fp.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(fp, fingerprint(&b).unwrap());

    // Markers and junk are not the job.
    std::fs::write(b.join("READY"), b"").unwrap();
    std::fs::write(b.join(".DS_Store"), b"junk").unwrap();
    std::fs::write(b.join("frames/Thumbs.db"), b"junk").unwrap();
    std::fs::write(b.join(".vaced-claim"), b"{\"claimer\": \"x\"}").unwrap();
    assert_eq!(fp, fingerprint(&b).unwrap());
}

#[test]
fn one_changed_byte_or_name_changes_the_fingerprint() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    job(&a, 0);
    let fp = fingerprint(&a).unwrap();

    let b = root.path().join("b");
    job(&b, 0);
    std::fs::write(b.join("frames/0002.png"), b"frame twO").unwrap();
    assert_ne!(fp, fingerprint(&b).unwrap(), "content");

    let c = root.path().join("c");
    job(&c, 0);
    std::fs::rename(c.join("frames/0002.png"), c.join("frames/0003.png")).unwrap();
    assert_ne!(fp, fingerprint(&c).unwrap(), "name");

    let d = root.path().join("d");
    job(&d, 0);
    std::fs::write(d.join("frames/0003.png"), b"").unwrap();
    assert_ne!(fp, fingerprint(&d).unwrap(), "an extra empty file");
}

#[test]
fn fingerprinting_a_missing_folder_fails_with_its_path() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let err = fingerprint(&missing).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

fn assert_moved(from: &Path, to: &Path) {
    assert!(!from.exists(), "{} still there", from.display());
    assert_eq!(
        std::fs::read(to.join("source.mp4")).unwrap(),
        b"video bytes"
    );
    assert_eq!(
        std::fs::read(to.join("frames/0002.png")).unwrap(),
        b"frame two"
    );
}

#[test]
fn move_dir_moves_a_folder_within_a_file_system() {
    let root = tempfile::tempdir().unwrap();
    let from = root.path().join("inbox/job");
    job(&from, 0);
    let fp = fingerprint(&from).unwrap();
    std::fs::create_dir(root.path().join("done")).unwrap();
    let to = root.path().join("done/job");

    move_dir(&from, &to).unwrap();

    assert_moved(&from, &to);
    assert_eq!(fingerprint(&to).unwrap(), fp);
}

#[test]
fn move_dir_moves_a_folder_to_memory_backed_storage() {
    // /dev/shm is tmpfs on Linux, usually another file system than the temp dir: this is
    // the copy path there, and a plain rename elsewhere.
    let shm = Path::new("/dev/shm");
    let target = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let root = tempfile::tempdir().unwrap();
    let from = root.path().join("job");
    job(&from, 0);
    let fp = fingerprint(&from).unwrap();
    let to = target.path().join("job");

    move_dir(&from, &to).unwrap();

    assert_moved(&from, &to);
    assert_eq!(fingerprint(&to).unwrap(), fp);
}

#[test]
fn move_dir_onto_an_occupied_name_fails_and_keeps_the_source() {
    let root = tempfile::tempdir().unwrap();
    let from = root.path().join("job");
    job(&from, 0);
    let to = root.path().join("occupied");
    std::fs::create_dir(&to).unwrap();
    std::fs::write(to.join("other"), b"x").unwrap();

    let err = move_dir(&from, &to).unwrap_err();

    assert!(
        err.to_string().contains(&from.display().to_string()),
        "{err}"
    );
    assert!(from.join("source.mp4").is_file());
}

#[test]
fn a_temp_dir_is_on_a_local_file_system_with_reliable_events() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(FsKind::detect(root.path()).unwrap(), FsKind::Local);
    let inbox = Inbox::open(InboxSettings {
        path: root.path().to_owned(),
        poll_interval: Duration::from_secs(2),
        settle: Duration::from_secs(30),
    })
    .unwrap();
    assert_eq!(inbox.fs_kind(), FsKind::Local);
    assert!(inbox.fs_kind().events_are_reliable());
    assert_eq!(inbox.path(), root.path());
}
