//! Claiming ready job folders: of two daemons claiming the same folder exactly one wins,
//! the folder lands in the winner's claim folder with a record naming it, and names already
//! taken in a claim folder get a number.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use vaced::intake::{CLAIM_FILE, Inbox, InboxSettings, ReadyFolder};

fn open(path: &Path) -> Inbox {
    Inbox::open(InboxSettings {
        path: path.to_owned(),
        poll_interval: Duration::from_secs(2),
        settle: Duration::from_secs(30),
    })
    .unwrap()
}

/// A job folder with a video and a READY file.
fn ready_job(inbox: &Path, name: &str, video: &[u8]) {
    let dir = inbox.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("source.mp4"), video).unwrap();
    std::fs::write(dir.join("READY"), b"").unwrap();
}

/// Scans twice, a poll apart, and returns what became ready, sorted by name.
fn scan_until_ready(inbox: &mut Inbox) -> Vec<ReadyFolder> {
    let start = Instant::now();
    assert!(inbox.scan(start).unwrap().is_empty());
    let mut ready = inbox.scan(start + Duration::from_secs(2)).unwrap();
    ready.sort_by(|a, b| a.name.cmp(&b.name));
    ready
}

fn claimer_in(claimed: &Path) -> String {
    let text = std::fs::read_to_string(claimed.join(CLAIM_FILE)).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    record["claimer"].as_str().unwrap().to_owned()
}

#[test]
fn of_two_daemons_claiming_the_same_folder_exactly_one_wins() {
    let root = tempfile::tempdir().unwrap();
    let jobs = 20;
    for i in 0..jobs {
        ready_job(
            root.path(),
            &format!("job-{i:02}"),
            format!("video {i}").as_bytes(),
        );
    }
    let daemons = ["daemon-a", "daemon-b"];
    let mut ready_lists = Vec::new();
    let mut inboxes = Vec::new();
    for _ in daemons {
        let mut inbox = open(root.path());
        ready_lists.push(scan_until_ready(&mut inbox));
        inboxes.push(inbox);
    }
    assert_eq!(ready_lists[0].len(), jobs);
    assert_eq!(ready_lists[0], ready_lists[1]);

    // Both daemons claim each folder at the same moment.
    let barrier = Arc::new(Barrier::new(daemons.len()));
    let handles: Vec<_> = inboxes
        .into_iter()
        .zip(ready_lists)
        .zip(daemons)
        .map(|((mut inbox, ready), daemon)| {
            let barrier = barrier.clone();
            let claim_dir = root.path().join(".vaced/claimed").join(daemon);
            std::thread::spawn(move || {
                let mut results: Vec<Option<PathBuf>> = Vec::new();
                for folder in &ready {
                    barrier.wait();
                    results.push(inbox.claim(folder, &claim_dir, daemon).unwrap());
                }
                results
            })
        })
        .collect();
    let results: Vec<Vec<Option<PathBuf>>> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();

    for i in 0..jobs {
        let name = format!("job-{i:02}");
        let claims: Vec<(&str, &Option<PathBuf>)> = daemons
            .iter()
            .zip(&results)
            .map(|(daemon, claimed)| (*daemon, &claimed[i]))
            .filter(|(_, claimed)| claimed.is_some())
            .collect();
        assert_eq!(claims.len(), 1, "{name}: claimed by {claims:?}");
        let (winner, answer) = claims[0];
        let claimed = root.path().join(".vaced/claimed").join(winner).join(&name);
        assert_eq!(answer.as_deref(), Some(claimed.as_path()));
        assert_eq!(
            std::fs::read(claimed.join("source.mp4")).unwrap(),
            format!("video {i}").as_bytes()
        );
        assert_eq!(claimer_in(&claimed), winner);
        assert!(
            !root.path().join(&name).exists(),
            "{name} left in the inbox"
        );
        for loser in daemons.iter().filter(|&&d| d != winner) {
            let elsewhere = root.path().join(".vaced/claimed").join(loser).join(&name);
            assert!(!elsewhere.exists(), "{name} also under {loser}");
        }
    }
}

#[test]
fn a_claimed_name_already_taken_gets_a_number_and_claimed_folders_are_not_scanned() {
    let root = tempfile::tempdir().unwrap();
    let claim_dir = root.path().join(".vaced/claimed/me");
    let mut inbox = open(root.path());

    ready_job(root.path(), "job", b"first");
    let first = scan_until_ready(&mut inbox);
    assert_eq!(first.len(), 1);
    let claimed_first = inbox.claim(&first[0], &claim_dir, "me").unwrap();
    assert_eq!(claimed_first, Some(claim_dir.join("job")));

    ready_job(root.path(), "job", b"second");
    let second = scan_until_ready(&mut inbox);
    assert_eq!(second.len(), 1, "the claimed folder's name is free again");
    let claimed_second = inbox.claim(&second[0], &claim_dir, "me").unwrap();
    assert_eq!(claimed_second, Some(claim_dir.join("job-2")));

    assert_eq!(
        std::fs::read(claim_dir.join("job/source.mp4")).unwrap(),
        b"first"
    );
    assert_eq!(
        std::fs::read(claim_dir.join("job-2/source.mp4")).unwrap(),
        b"second"
    );
    let later = Instant::now() + Duration::from_secs(100);
    assert!(
        inbox.scan(later).unwrap().is_empty(),
        "claims live in a hidden folder"
    );
}

#[test]
fn claiming_a_folder_that_is_gone_answers_none() {
    let root = tempfile::tempdir().unwrap();
    let mut inbox = open(root.path());
    ready_job(root.path(), "job", b"video");
    let ready = scan_until_ready(&mut inbox);
    std::fs::remove_dir_all(root.path().join("job")).unwrap();

    let claim_dir = root.path().join(".vaced/claimed/me");
    assert_eq!(inbox.claim(&ready[0], &claim_dir, "me").unwrap(), None);
    assert!(!claim_dir.join("job").exists());
}
