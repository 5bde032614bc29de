//! The inbox watcher: a change inside a job folder (not only at the inbox's top) hints that
//! a scan is due, and the daemon's own reading and its hidden folders do not.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;
use vaced::intake::watch;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(500);

async fn next_hint(rx: &mut Receiver<PathBuf>) -> PathBuf {
    timeout(WAIT, rx.recv())
        .await
        .expect("no scan hint within the time limit")
        .expect("the watcher hung up")
}

/// Waits for stray hints to stop, then drops them.
async fn drain(rx: &mut Receiver<PathBuf>) {
    while timeout(QUIET, rx.recv()).await.is_ok() {}
}

async fn assert_no_hint(rx: &mut Receiver<PathBuf>, what: &str) {
    if let Ok(hint) = timeout(QUIET, rx.recv()).await {
        panic!("{what} gave a hint: {hint:?}");
    }
}

fn inbox_with_job() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let job = root.path().join("job");
    std::fs::create_dir(&job).unwrap();
    std::fs::write(job.join("job.json"), b"{}").unwrap();
    (root, job)
}

#[tokio::test]
async fn a_file_written_into_an_existing_job_folder_gives_a_hint() {
    let (root, job) = inbox_with_job();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let _watcher = watch(&[root.path().to_owned()], tx).unwrap();
    drain(&mut rx).await;

    std::fs::write(job.join("source.mp4"), b"video").unwrap();

    assert_eq!(next_hint(&mut rx).await, root.path());
}

#[tokio::test]
async fn a_job_folder_created_after_the_start_is_watched_too() {
    let root = tempfile::tempdir().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let _watcher = watch(&[root.path().to_owned()], tx).unwrap();

    let job = root.path().join("job");
    std::fs::create_dir(&job).unwrap();
    assert_eq!(next_hint(&mut rx).await, root.path());
    drain(&mut rx).await;

    std::fs::write(job.join("source.mp4"), b"video").unwrap();
    assert_eq!(next_hint(&mut rx).await, root.path());
}

#[tokio::test]
async fn reading_files_and_hidden_folders_give_no_hints() {
    let (root, job) = inbox_with_job();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let _watcher = watch(&[root.path().to_owned()], tx).unwrap();
    drain(&mut rx).await;

    // What every scan does: list and read. Hints from it would make scans run forever.
    let _ = std::fs::read_dir(root.path()).unwrap().count();
    let _ = std::fs::read_dir(&job).unwrap().count();
    let _ = std::fs::read(job.join("job.json")).unwrap();
    assert_no_hint(&mut rx, "reading").await;

    std::fs::create_dir_all(root.path().join(".vaced/claimed/me")).unwrap();
    assert_no_hint(&mut rx, "the daemon's hidden folder").await;

    std::fs::write(job.join("mask.png"), b"mask").unwrap();
    assert_eq!(next_hint(&mut rx).await, root.path());
}

#[tokio::test]
async fn hints_name_the_inbox_that_changed() {
    let first = tempfile::tempdir().unwrap();
    let (second, job) = inbox_with_job();
    let inboxes = [first.path().to_owned(), second.path().to_owned()];
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let _watcher = watch(&inboxes, tx).unwrap();
    drain(&mut rx).await;

    std::fs::write(job.join("source.mp4"), b"video").unwrap();

    assert_eq!(next_hint(&mut rx).await, second.path());
    drain(&mut rx).await;
    std::fs::write(first.path().join("loose.txt"), b"top level").unwrap();
    assert_eq!(next_hint(&mut rx).await, first.path());
}

#[test]
fn watching_a_missing_inbox_fails_with_its_path() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let err = watch(std::slice::from_ref(&missing), tx).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}
