//! Two daemons on one machine watching the same inbox: every job is rendered by exactly
//! one of them.
#![cfg(feature = "ffmpeg")]

mod daemon_common;

use std::time::Duration;

use daemon_common::*;

#[test]
fn two_daemons_sharing_an_inbox_never_run_the_same_job() {
    let a = Env::new("");
    let b = Env::with_inbox(Some(&a.inbox), "");
    let _da = a.start(&[]);
    let _db = b.start(&[]);
    let names: Vec<String> = (0..6).map(|i| format!("job{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let manifest = format!(
            r#"{{"version": 1, "prompt": "a red ball", "model": "tiny", "steps": 2, "frames": 9, "seed": {}, "inputs": {{"video": "source.mp4", "mask": "mask.png"}}}}"#,
            100 + i
        );
        a.submit(&a.job_folder(name, "inpainting", &manifest), name);
    }
    let rendered_by = |name: &str| -> Vec<&str> {
        [("a", &a), ("b", &b)]
            .into_iter()
            .filter(|(_, env)| env.outbox.join(name).join("result.mp4").is_file())
            .map(|(n, _)| n)
            .collect()
    };
    wait_for("all six jobs", Duration::from_secs(240), || {
        names.iter().all(|n| !rendered_by(n).is_empty())
    });
    for name in &names {
        assert_eq!(
            rendered_by(name).len(),
            1,
            "{name} was rendered by {:?}",
            rendered_by(name)
        );
        for env in [&a, &b] {
            assert!(!env.failed.join(name).exists(), "{name} failed");
        }
    }
}
