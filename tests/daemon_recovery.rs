//! Crashes: the daemon killed with SIGKILL while a job generates, or a worker killed under
//! its job. The job is finished by a later attempt, exactly once; a job that keeps killing
//! its worker fails as a suspected poison pill; the daemon never goes down with a worker.
#![cfg(feature = "ffmpeg")]

mod daemon_common;

use std::time::Duration;

use daemon_common::*;

/// Long enough to be caught mid-denoise on a slow machine (a few seconds of steps).
const SLOW: &str = r#"{"version": 1, "prompt": "a red ball rolling across a meadow", "model": "tiny", "steps": 120, "frames": 17, "seed": 9, "inputs": {"video": "source.mp4", "mask": "mask.png"}}"#;

/// Waits until the job's status file says it is denoising.
fn wait_generating(env: &Env, name: &str) {
    let status = env.outbox.join(format!("{name}.status.json"));
    wait_for(
        &format!("{name} to be denoising"),
        Duration::from_secs(120),
        || {
            std::fs::read_to_string(&status)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|s| {
                    s["state"] == "generating" && s["step"].as_u64().is_some_and(|step| step >= 2)
                })
        },
    );
}

/// Result folders of `name` in the outbox (the name itself or a suffixed copy).
fn results_of(env: &Env, name: &str) -> Vec<String> {
    std::fs::read_dir(&env.outbox)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(name) && !n.ends_with(".status.json"))
        .collect()
}

fn history(record: &serde_json::Value) -> Vec<String> {
    record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_daemon_killed_while_generating_finishes_the_job_after_restart() {
    let env = Env::new("");
    let daemon = env.start(&[]);
    let workers = worker_pids(daemon.pid());
    env.submit(&env.job_folder("slow", "inpainting", SLOW), "slow");
    wait_generating(&env, "slow");
    daemon.kill();
    // Its worker dies with it rather than finishing the job on its own.
    wait_for("the old worker to die", Duration::from_secs(10), || {
        workers
            .iter()
            .all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    });

    let daemon = env.start(&[]);
    let out = env.wait_done("slow", Duration::from_secs(240));
    assert_eq!(
        results_of(&env, "slow"),
        ["slow"],
        "the job ran more than once"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["plan"]["seed"], 9);
    let record = env.record("job-000001");
    assert_eq!(
        record["attempts"], 1,
        "the run after the crash is attempt 2"
    );
    let states = history(&record);
    assert!(
        states.windows(2).any(|w| w == ["interrupted", "queued"]),
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "done").count(),
        1,
        "{states:?}"
    );
    assert!(daemon.stop());
}

#[test]
fn a_killed_worker_costs_its_job_one_attempt_and_the_daemon_stays_up() {
    let env = Env::new("");
    let daemon = env.start(&[]);
    env.submit(&env.job_folder("slow", "inpainting", SLOW), "slow");
    wait_generating(&env, "slow");
    let workers = worker_pids(daemon.pid());
    assert_eq!(workers.len(), 1, "one worker per device");
    unsafe { libc::kill(workers[0] as i32, libc::SIGKILL) };

    env.wait_done("slow", Duration::from_secs(240));
    assert_eq!(results_of(&env, "slow"), ["slow"]);
    let record = env.record("job-000001");
    assert_eq!(record["attempts"], 1);
    assert!(history(&record).contains(&"interrupted".to_owned()));
    // A new worker took over; the daemon answers as before.
    let replacement = worker_pids(daemon.pid());
    assert_eq!(replacement.len(), 1);
    assert_ne!(replacement[0], workers[0]);
    assert!(
        daemon.log_text().contains("died"),
        "the crash was not logged"
    );
    assert!(daemon.stop());
}

#[test]
fn a_job_that_keeps_killing_its_worker_fails_as_a_poison_pill() {
    let env = Env::new("max_attempts = 2\n");
    let daemon = env.start(&[]);
    env.submit(&env.job_folder("poison", "inpainting", SLOW), "poison");
    for _ in 0..2 {
        wait_generating(&env, "poison");
        let workers = worker_pids(daemon.pid());
        unsafe { libc::kill(workers[0] as i32, libc::SIGKILL) };
        wait_for("the worker to be replaced", Duration::from_secs(60), || {
            worker_pids(daemon.pid())
                .first()
                .is_some_and(|pid| *pid != workers[0])
        });
    }
    let error = env.wait_failed("poison", Duration::from_secs(60));
    assert!(
        error["what"]
            .as_str()
            .unwrap()
            .contains("interrupted too often"),
        "{error}"
    );
    assert!(
        error["log_tail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("died")),
        "{error}"
    );
    assert!(error["history"].as_array().unwrap().len() >= 5, "{error}");
    assert!(
        env.failed.join("poison").join("source.mp4").is_file(),
        "the media should be kept"
    );
}

#[test]
fn sigterm_requeues_a_running_job_without_using_an_attempt() {
    let env = Env::new("");
    let daemon = env.start(&[]);
    env.submit(&env.job_folder("slow", "inpainting", SLOW), "slow");
    wait_generating(&env, "slow");
    assert!(daemon.stop(), "SIGTERM should end the daemon cleanly");
    let record = env.record("job-000001");
    assert_eq!(record["state"], "queued");
    assert_eq!(record["attempts"], 0);
    let daemon = env.start(&[]);
    env.wait_done("slow", Duration::from_secs(240));
    assert_eq!(env.record("job-000001")["attempts"], 0);
    assert!(daemon.stop());
}
