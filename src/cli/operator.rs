//! Operator commands for a running daemon: `status`, `cancel`, `retry`, `pause`, `resume`,
//! over its control socket. `status`, `pause` and `resume` also work with the daemon
//! stopped, on the queue database directly.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::daemon::control::{self, Request, Response, StatusReport};
use crate::queue::{JobId, Queue};

/// Which daemon: its state folder, given directly or through its configuration file.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The daemon's state folder.
    #[arg(long = "state", env = "VACED_STATE")]
    pub state_dir: Option<PathBuf>,
    /// The daemon's configuration file (its `state_dir` is used).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl Target {
    pub fn state_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        if let Some(path) = &self.config {
            let raw = crate::config::Config::read(path)?;
            if let Some(dir) = raw.state_dir {
                let base = path.parent().unwrap_or(std::path::Path::new("."));
                return Ok(if dir.is_absolute() {
                    dir
                } else {
                    base.join(dir)
                });
            }
            bail!("{}: no `state_dir`", path.display());
        }
        bail!("say which daemon: --state DIR, --config FILE, or VACED_STATE")
    }
}

fn ask(state_dir: &std::path::Path, request: Request) -> std::io::Result<Response> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(control::ask(state_dir, &request))
}

fn hms(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn print_status(report: &StatusReport, live: bool) {
    let workers: Vec<String> = report
        .workers
        .iter()
        .map(|w| {
            format!(
                "{} {}{}",
                if w.name.is_empty() {
                    &w.device
                } else {
                    &w.name
                },
                w.state,
                w.model
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    if live {
        println!(
            "queue {}   workers: {}   mail waiting: {}",
            if report.paused { "PAUSED" } else { "running" },
            workers.join(", "),
            report.pending_mail
        );
    } else {
        println!("daemon not running; jobs as last recorded:");
    }
    println!(
        "{:<12} {:<13} {:<24} {:<18} {:>8} {:>8} {:>8} {:>7}",
        "ID", "STATE", "JOB", "PROGRESS", "QUEUED", "RUNNING", "ETA", "ATTEMPT"
    );
    for job in &report.jobs {
        let progress = match (&job.phase, job.step, job.total_steps) {
            (Some(phase), Some(step), Some(total)) if phase == "denoise" => {
                format!("{phase} {step}/{total}")
            }
            (Some(phase), ..) => phase.clone(),
            _ => String::new(),
        };
        let name: String = job.name.chars().take(24).collect();
        println!(
            "{:<12} {:<13} {:<24} {:<18} {:>8} {:>8} {:>8} {:>7}",
            job.id.to_string(),
            job.state,
            name,
            progress,
            hms(job.queued_secs),
            hms(job.running_secs),
            job.eta_secs.map(hms).unwrap_or_default(),
            job.attempt
        );
    }
}

/// The status from the job records mirrored in the state folder, when no daemon answers.
/// The database itself is left alone: opening it would lock out a daemon starting now.
fn offline_status(state_dir: &std::path::Path) -> anyhow::Result<StatusReport> {
    let jobs_dir = state_dir.join("jobs");
    if !jobs_dir.is_dir() {
        bail!(
            "{}: no vaced state here (no jobs/ folder); check --state",
            state_dir.display()
        );
    }
    let mut records: Vec<crate::queue::JobRecord> = std::fs::read_dir(&jobs_dir)?
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join(crate::queue::RECORD_FILE)).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    records.sort_by_key(|r| r.id);
    let jobs = records
        .into_iter()
        .map(|r| control::JobLine {
            id: r.id,
            name: r.name,
            state: r.state.to_string(),
            priority: r.priority,
            attempt: r.attempts + 1,
            phase: None,
            step: None,
            total_steps: None,
            queued_secs: r.queued_secs,
            running_secs: r.running_secs,
            eta_secs: None,
            worker: r.worker,
            output: r.output,
        })
        .collect();
    Ok(StatusReport {
        paused: false,
        workers: vec![],
        jobs,
        pending_mail: 0,
    })
}

pub fn status(target: Target, json: bool) -> anyhow::Result<()> {
    let state_dir = target.state_dir()?;
    let (report, live) = match ask(&state_dir, Request::Status) {
        Ok(Response::Status(report)) => (report, true),
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(_) => (
            offline_status(&state_dir).context("reading the queue (no daemon answered)")?,
            false,
        ),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_status(&report, live);
    }
    Ok(())
}

/// `cancel`, `retry`, `pause`, `resume`.
pub fn command(target: Target, request: Request) -> anyhow::Result<()> {
    let state_dir = target.state_dir()?;
    match ask(&state_dir, request.clone()) {
        Ok(Response::Ok { message }) => {
            println!("{message}");
            Ok(())
        }
        Ok(Response::Error { message }) => bail!(message),
        Ok(other) => bail!("unexpected answer: {other:?}"),
        Err(e) => match request {
            Request::Pause | Request::Resume => {
                let queue = Queue::open(&state_dir)
                    .context("no daemon answered; changing the queue directly")?;
                queue.set_paused(request == Request::Pause)?;
                println!(
                    "{} (daemon not running; takes effect when it starts)",
                    if request == Request::Pause {
                        "paused"
                    } else {
                        "resumed"
                    }
                );
                Ok(())
            }
            _ => bail!(
                "no daemon answers at {} ({e}); start it with `vaced run`",
                state_dir.join(control::SOCKET_FILE).display()
            ),
        },
    }
}

/// Parses a job id argument.
pub fn job_id(text: &str) -> Result<JobId, String> {
    text.parse()
}
