//! `vaced demo`, the README's run command: the samples go through the real daemon and come
//! out rendered and mailed.
#![cfg(feature = "ffmpeg")]

use std::process::Command;

#[test]
fn the_demo_renders_every_sample_and_writes_their_mails() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("demo");
    let run = Command::new(env!("CARGO_BIN_EXE_vaced"))
        .args(["demo", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let samples = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("job.json").is_file())
        .count();
    let done = stdout.lines().filter(|l| l.contains(" done ")).count();
    assert_eq!(done, samples, "{stdout}");
    let mails = std::fs::read_dir(dir.join("mail")).unwrap().count();
    assert_eq!(mails, samples);
    // A folder the demo did not make is left alone.
    let other = tmp.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_vaced"))
        .args(["demo", "--dir", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("was not made by `vaced demo`"));
}
