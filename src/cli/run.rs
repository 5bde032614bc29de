//! `vaced run`: the daemon, configured by a file and/or flags for the common keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::config::{self, Config, Overrides, RawConfig};

/// Flags shared by `run` and `config check`.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Configuration file (see config/vaced.toml); flags override its keys.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Inbox folder; repeat for several (replaces the file's inboxes).
    #[arg(long = "inbox")]
    pub inboxes: Vec<PathBuf>,
    #[arg(long)]
    pub outbox: Option<PathBuf>,
    #[arg(long)]
    pub failed: Option<PathBuf>,
    /// Local folder for the queue database and job work files.
    #[arg(long = "state")]
    pub state_dir: Option<PathBuf>,
    /// Default model: `tiny` or a downloaded Wan2.1-VACE folder.
    #[arg(long)]
    pub model: Option<String>,
    /// Worker device (`cpu`, `cuda:N`, or `all` for one worker per GPU); repeat for one
    /// worker each.
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// Inbox scan interval, e.g. 5s.
    #[arg(long, value_parser = config::parse_duration)]
    pub poll_interval: Option<Duration>,
    /// Quiet time after which a folder counts as copied, e.g. 30s.
    #[arg(long, value_parser = config::parse_duration)]
    pub settle: Option<Duration>,
    /// SMTP server URL, e.g. smtp://relay:25 or smtps://user@host.
    #[arg(long)]
    pub smtp: Option<String>,
    /// Annotator weights folder for preprocessing tasks (the VACE-Annotators download).
    #[arg(long, env = "VACED_ANNOTATORS")]
    pub annotators: Option<PathBuf>,
}

impl DaemonArgs {
    /// The validated configuration.
    pub fn config(&self) -> anyhow::Result<Config> {
        let (raw, base) = match &self.config {
            Some(path) => {
                let base = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_owned();
                (Config::read(path)?, base)
            }
            None => (RawConfig::default(), PathBuf::from(".")),
        };
        let base = std::path::absolute(&base).context("resolving the configuration's folder")?;
        let overrides = Overrides {
            inboxes: self.inboxes.clone(),
            outbox: self.outbox.clone(),
            failed: self.failed.clone(),
            state_dir: self.state_dir.clone(),
            model: self.model.clone(),
            devices: self.devices.clone(),
            poll_interval: self.poll_interval,
            settle: self.settle,
            smtp: self.smtp.clone(),
            annotators: self.annotators.clone(),
        };
        Ok(Config::build(raw, &overrides, &base)?)
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon would not stop cleanly; wait forever instead of
        // stopping right away.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

pub fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(crate::daemon::run(config, shutdown_signal()))
}
