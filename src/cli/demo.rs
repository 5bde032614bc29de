//! `vaced demo`: the newcomer's one command. It makes a scratch inbox, outbox and mail
//! spool, starts the daemon with the built-in `tiny` model on the CPU, drops the sample
//! jobs in, waits for them, and says where the results and the mails are.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::{Config, Overrides, RawConfig, RawInbox, RawMail};
use crate::daemon::control::{self, Request, Response};

/// Marks a folder the demo made, so a later demo may clear it and nothing else.
const MARKER: &str = ".vaced-demo";
/// Longest the demo waits for its jobs.
const TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the demo's inbox, outbox, failed, state and mail.
    #[arg(long, default_value = "vaced-demo")]
    dir: PathBuf,
    /// The sample jobs to drop in.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/samples"))]
    samples: PathBuf,
}

fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by `vaced demo`; pass --dir with a new folder",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("clearing the last demo in {}", dir.display()))?;
    }
    for sub in ["inbox", "outbox", "failed", "state", "mail"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    std::fs::write(dir.join(MARKER), b"made by vaced demo\n")?;
    Ok(())
}

fn config(dir: &Path) -> anyhow::Result<Config> {
    let raw = RawConfig {
        state_dir: Some(dir.join("state")),
        outbox: Some(dir.join("outbox")),
        failed: Some(dir.join("failed")),
        devices: vec!["cpu".into()],
        inbox: vec![RawInbox {
            path: Some(dir.join("inbox")),
            poll_interval: Some("250ms".into()),
            settle: Some("2s".into()),
            notify: vec!["you@example.com".into()],
        }],
        mail: Some(RawMail {
            spool: Some(dir.join("mail")),
            from: Some("vaced demo <vaced@localhost>".into()),
            ..RawMail::default()
        }),
        ..RawConfig::default()
    };
    let overrides = Overrides {
        model: Some("tiny".into()),
        ..Overrides::default()
    };
    Ok(Config::build(raw, &overrides, dir)?)
}

/// Samples: the sub-folders of `samples` holding a job.json.
fn samples(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut jobs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the samples in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(crate::manifest::MANIFEST_FILE).is_file())
        .collect();
    jobs.sort();
    if jobs.is_empty() {
        bail!(
            "{} holds no sample job; pass --samples with the repository's samples/ folder",
            dir.display()
        );
    }
    Ok(jobs)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)?;
    let jobs = samples(&args.samples)?;
    prepare(&dir)?;
    let config = config(&dir)?;
    let state_dir = config.state_dir.clone();
    let inbox = config.inboxes[0].path.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let expected = jobs.len();
    let waited = runtime.block_on(async move {
        let (done_tx, done_rx) =
            tokio::sync::oneshot::channel::<anyhow::Result<Vec<control::JobLine>>>();
        let watcher = tokio::spawn(async move {
            // Submit once the daemon is up, then wait until every job has ended.
            let started = Instant::now();
            let mut submitted = false;
            let result = loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if started.elapsed() > TIMEOUT {
                    break Err(anyhow::anyhow!(
                        "the sample jobs did not finish within {TIMEOUT:?}"
                    ));
                }
                let Ok(Response::Status(report)) = control::ask(&state_dir, &Request::Status).await
                else {
                    continue;
                };
                if !submitted {
                    for job in &jobs {
                        let name = job
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        match super::submit::submit(job, &inbox, &name) {
                            Ok(_) => println!("dropped {} into {}", name, inbox.display()),
                            Err(e) => tracing::error!("cannot drop {name}: {e:#}"),
                        }
                    }
                    submitted = true;
                    continue;
                }
                let ended = report
                    .jobs
                    .iter()
                    .filter(|j| matches!(j.state.as_str(), "done" | "failed" | "cancelled"))
                    .count();
                if ended >= expected && report.pending_mail == 0 {
                    break Ok(report.jobs);
                }
            };
            let _ = done_tx.send(result);
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let daemon = tokio::spawn(crate::daemon::run(config, async move {
            let _ = stop_rx.await;
        }));
        let result = done_rx
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the demo stopped early")));
        let _ = stop_tx.send(());
        daemon.await??;
        let _ = watcher.await;
        result
    })?;
    println!();
    for job in &waited {
        let place = job
            .output
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        println!(
            "{:<12} {:<9} {:<24} {}",
            job.id.to_string(),
            job.state,
            job.name,
            place
        );
    }
    println!(
        "\nresults: {}\nfailed:  {}\nmails:   {} (one .eml per message)",
        dir.join("outbox").display(),
        dir.join("failed").display(),
        dir.join("mail").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demo_folder_is_cleared_and_any_other_folder_refused() {
        let tmp = tempfile::TempDir::new().unwrap();
        let dir = tmp.path().join("demo");
        prepare(&dir).unwrap();
        std::fs::write(dir.join("outbox/old-result"), b"x").unwrap();
        prepare(&dir).unwrap();
        assert!(!dir.join("outbox/old-result").exists());
        assert!(dir.join("inbox").is_dir() && dir.join(MARKER).is_file());
        let mine = tmp.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("precious"), b"x").unwrap();
        assert!(
            prepare(&mine)
                .unwrap_err()
                .to_string()
                .contains("not made by `vaced demo`")
        );
        assert!(mine.join("precious").exists());
    }
}
