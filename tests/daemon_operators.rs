//! What an operator does to a running daemon: start it paused, look at the queue, cancel,
//! retry, resume, and cancel a job while it runs.
#![cfg(feature = "ffmpeg")]

mod daemon_common;

use std::time::Duration;

use daemon_common::*;

const QUICK: &str = r#"{"version": 1, "prompt": "a red ball", "model": "tiny", "steps": 2, "frames": 9, "seed": 31, "inputs": {"video": "source.mp4", "mask": "mask.png"}}"#;
const SLOW: &str = r#"{"version": 1, "prompt": "a red ball", "model": "tiny", "steps": 400, "frames": 17, "seed": 32, "inputs": {"video": "source.mp4", "mask": "mask.png"}}"#;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pause_status_cancel_retry_resume() {
    let env = Env::new("start_paused = true\n");
    let daemon = env.start(&[]);
    let state = env.state.to_str().unwrap().to_owned();
    env.submit(&env.job_folder("ball", "inpainting", QUICK), "ball");
    wait_for("ball to be queued", Duration::from_secs(30), || {
        env.job("ball").is_some_and(|j| j["state"] == "queued")
    });
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.outbox.join("ball.status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (status["state"].as_str(), status["queue_position"].as_u64()),
        (Some("queued"), Some(1))
    );
    let table = ok(env.vaced(&["status", "--state", &state]));
    assert!(
        table.contains("PAUSED") && table.contains("ball") && table.contains("queued"),
        "{table}"
    );

    ok(env.vaced(&["cancel", "job-000001", "--state", &state]));
    let error = env.wait_failed("ball", Duration::from_secs(30));
    assert_eq!(error["state"], "cancelled");
    assert!(!env.outbox.join("ball.status.json").exists());

    ok(env.vaced(&["retry", "1", "--state", &state]));
    wait_for("ball to be queued again", Duration::from_secs(30), || {
        env.job("ball").is_some_and(|j| j["state"] == "queued")
    });
    assert!(
        !env.failed.join("ball").exists(),
        "the job's files stayed in the failed folder"
    );
    ok(env.vaced(&["resume", "--state", &state]));
    env.wait_done("ball", Duration::from_secs(120));

    // A running job stops at its next step when cancelled; the worker goes on to the next.
    env.submit(&env.job_folder("long", "inpainting", SLOW), "long");
    let status_file = env.outbox.join("long.status.json");
    wait_for("long to denoise", Duration::from_secs(120), || {
        std::fs::read_to_string(&status_file).is_ok_and(|t| t.contains("\"denoise\""))
    });
    ok(env.vaced(&["cancel", "job-000002", "--state", &state]));
    let error = env.wait_failed("long", Duration::from_secs(60));
    assert_eq!(error["state"], "cancelled");
    env.submit(
        &env.job_folder("after", "inpainting", &QUICK.replace("31", "33")),
        "after",
    );
    env.wait_done("after", Duration::from_secs(120));

    let refused = env.vaced(&["retry", "job-000003", "--state", &state]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only failed or cancelled jobs"));
    assert!(daemon.stop());
    // With the daemon stopped, status still reads the recorded jobs.
    let table = ok(env.vaced(&["status", "--state", &state]));
    assert!(
        table.contains("daemon not running") && table.contains("after"),
        "{table}"
    );
}
