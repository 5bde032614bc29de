//! One daemon, several workers, driven like a user: a burst of jobs dropped at once is
//! shared by three CPU workers and each job is rendered exactly once; `devices = ["all"]`
//! becomes one worker per GPU the daemon sees, and a GPU worker is confined to its own GPU
//! yet named by it (shown without a GPU, through CUDA_VISIBLE_DEVICES).
#![cfg(feature = "ffmpeg")]

mod daemon_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use daemon_common::*;

/// A job of a second or two on the tiny model; `{seed}` keeps the burst's folders distinct
/// (identical folders would be reported as duplicates).
const QUICK: &str = r#"{"version": 1, "prompt": "a red ball rolling across a meadow", "model": "tiny", "steps": 2, "frames": 9, "seed": {seed}, "inputs": {"video": "source.mp4", "mask": "mask.png"}}"#;

/// The names of the daemon's workers, once all `count` of them are idle.
fn idle_workers(env: &Env, count: usize) -> Vec<String> {
    let mut names = Vec::new();
    wait_for("the workers to start", Duration::from_secs(60), || {
        let status = env.status();
        let workers = status["workers"].as_array().cloned().unwrap_or_default();
        names = workers
            .iter()
            .map(|w| w["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        workers.len() == count && workers.iter().all(|w| w["state"] == "idle")
    });
    names
}

/// Every job in the state folder, by name: its record and its own log.
fn jobs(env: &Env) -> BTreeMap<String, (serde_json::Value, String)> {
    std::fs::read_dir(env.state.join("jobs"))
        .unwrap()
        .flatten()
        .map(|entry| {
            let text = std::fs::read_to_string(entry.path().join("record.json")).unwrap();
            let record: serde_json::Value = serde_json::from_str(&text).unwrap();
            let log = std::fs::read_to_string(entry.path().join("log.txt")).unwrap();
            (record["name"].as_str().unwrap().to_owned(), (record, log))
        })
        .collect()
}

/// The visible entries of a folder.
fn listing(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_burst_of_jobs_is_shared_by_three_cpu_workers_and_each_is_rendered_once() {
    let env = Env::new("");
    let daemon = env.start(&["--device", "cpu", "--device", "cpu", "--device", "cpu"]);
    let workers = idle_workers(&env, 3);
    assert_eq!(workers, ["cpu#1", "cpu#2", "cpu#3"]);

    let names: Vec<String> = (1..=6).map(|i| format!("burst-{i}")).collect();
    let folders: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let manifest = QUICK.replace("{seed}", &(100 + i).to_string());
            env.job_folder(name, "inpainting", &manifest)
        })
        .collect();
    for (folder, name) in folders.iter().zip(&names) {
        env.submit(folder, name);
    }
    for name in &names {
        let out = env.wait_done(name, Duration::from_secs(300));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["model"]["device"], "cpu", "{name}: {report}");
    }

    // Exactly the six results, nothing failed, nothing left waiting.
    let expected: BTreeSet<String> = names.iter().cloned().collect();
    wait_for("the status files to go", Duration::from_secs(10), || {
        listing(&env.outbox) == expected
    });
    assert!(
        listing(&env.failed).is_empty(),
        "{:?}",
        listing(&env.failed)
    );
    assert!(listing(&env.inbox).is_empty(), "{:?}", listing(&env.inbox));

    // Each job ran once (one attempt, one start) on one of the workers.
    let jobs = jobs(&env);
    assert_eq!(jobs.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let mut ran_on = BTreeMap::new();
    let mut running = Vec::new();
    for (name, (record, log)) in &jobs {
        assert_eq!(record["state"], "done", "{name}: {record}");
        assert_eq!(record["attempts"], 0, "{name}: {record}");
        let history = record["history"].as_array().unwrap();
        let starts: Vec<&serde_json::Value> = history
            .iter()
            .filter(|t| t["to"] == "preprocessing")
            .collect();
        assert_eq!(starts.len(), 1, "{name} started more than once: {record}");
        let note = starts[0]["note"].as_str().unwrap();
        let worker = note
            .strip_prefix("attempt 1 on ")
            .unwrap_or_else(|| panic!("{name}: {note}"));
        assert!(workers.iter().any(|w| w == worker), "{name}: {note}");
        assert_eq!(
            log.matches("started, attempt").count(),
            1,
            "{name} started more than once:\n{log}"
        );
        assert!(
            log.contains(&format!("started, attempt 1, on {worker}")),
            "{name}:\n{log}"
        );
        *ran_on.entry(worker.to_owned()).or_insert(0) += 1;
        let done = history.iter().find(|t| t["to"] == "done").unwrap();
        running.push((
            starts[0]["at_secs"].as_f64().unwrap(),
            done["at_secs"].as_f64().unwrap(),
        ));
    }
    // The three jobs that came first went to the three idle workers at once.
    assert_eq!(ran_on.len(), 3, "jobs per worker: {ran_on:?}");
    let overlapping = running
        .iter()
        .enumerate()
        .any(|(i, a)| running[i + 1..].iter().any(|b| a.0 < b.1 && b.0 < a.1));
    assert!(overlapping, "no two jobs ran at the same time: {running:?}");
    assert!(daemon.stop(), "the daemon did not exit cleanly on SIGTERM");
}

#[test]
fn all_means_every_gpu_the_daemon_sees_and_mistakes_name_the_file() {
    let env = Env::new("");
    let config = env.config.to_str().unwrap();
    // The GPUs come from CUDA_VISIBLE_DEVICES when it is set, so no GPU is needed here.
    let out = env.vaced_with_env(
        &[
            "config", "check", "--config", config, "--device", "all", "--device", "cpu",
        ],
        &[("CUDA_VISIBLE_DEVICES", "5,7")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let workers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("worker:"))
        .collect();
    assert_eq!(
        workers,
        [
            "worker:  cuda:5 (sees only its GPU: CUDA_VISIBLE_DEVICES=5)",
            "worker:  cuda:7 (sees only its GPU: CUDA_VISIBLE_DEVICES=7)",
            "worker:  cpu",
        ]
    );

    let refused = |args: &[&str], vars: &[(&str, &str)]| {
        let out = env.vaced_with_env(args, vars);
        assert!(!out.status.success(), "accepted: {args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(
        &["config", "check", "--config", config, "--device", "all"],
        &[("CUDA_VISIBLE_DEVICES", "")],
    );
    assert!(
        err.contains(
            "--device: all: CUDA_VISIBLE_DEVICES=\"\" in the daemon's environment hides every GPU"
        ),
        "{err}"
    );
    let err = refused(
        &[
            "config", "check", "--config", config, "--device", "cuda:1", "--device", "cuda:1",
        ],
        &[],
    );
    assert!(err.contains("--device: cuda:1 is listed twice"), "{err}");

    // A mistake in the file names the file and the key, and the daemon does not start.
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replace("devices = [\"cpu\"]", "devices = [\"all\", \"cuda:0\"]"),
    )
    .unwrap();
    let err = refused(
        &["run", "--config", config],
        &[("CUDA_VISIBLE_DEVICES", "0,1")],
    );
    assert!(
        err.contains(&format!(
            "`devices` in {config}: `all` already includes cuda:0; list either `all` or single GPUs"
        )),
        "{err}"
    );
}

#[test]
fn a_gpu_worker_sees_only_its_gpu_and_a_cpu_worker_renders_beside_it() {
    let env = Env::new("");
    // cuda:1 of the daemon's two visible GPUs is the machine's GPU 63, which no machine
    // here has, so its worker keeps failing; it must say which GPU it was given and how,
    // and the CPU worker must go on rendering.
    let daemon = env.start_with_env(
        &["--device", "cuda:1", "--device", "cpu"],
        &[("CUDA_VISIBLE_DEVICES", "4,63")],
    );
    wait_for(
        "the GPU worker's complaint",
        Duration::from_secs(30),
        || {
            daemon.log_text().contains(
            "the worker for cuda:63 (started with CUDA_VISIBLE_DEVICES=63, so it is cuda:0 here)",
        )
        },
    );
    let status = env.status();
    let names: Vec<&str> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cuda:63", "cpu"]);

    let manifest = QUICK.replace("{seed}", "9");
    env.submit(&env.job_folder("beside", "inpainting", &manifest), "beside");
    let out = env.wait_done("beside", Duration::from_secs(120));
    let report = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(report.contains("\"device\": \"cpu\""), "{report}");
    assert!(daemon.stop(), "the daemon did not exit cleanly on SIGTERM");
}
