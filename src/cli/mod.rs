//! The command line: parsing, logging set-up and dispatch to one module per command.

#[cfg(feature = "ffmpeg")]
mod admin;
mod bench;
mod check_model;
#[cfg(feature = "ffmpeg")]
mod demo;
pub(crate) mod device;
mod generate;
#[cfg(feature = "ffmpeg")]
mod job_model;
#[cfg(feature = "ffmpeg")]
mod job_plan;
#[cfg(feature = "ffmpeg")]
mod operator;
#[cfg(feature = "ffmpeg")]
mod preprocess;
#[cfg(feature = "ffmpeg")]
mod progress;
#[cfg(feature = "ffmpeg")]
mod render;
#[cfg(feature = "ffmpeg")]
mod run;
mod submit;
#[cfg(feature = "ffmpeg")]
mod validate;

use clap::{Parser, Subcommand};

/// Renders AI video with Wan2.1-VACE.
#[derive(Debug, Parser)]
#[command(name = "vaced", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[cfg(feature = "ffmpeg")]
    /// Run the daemon: watch inboxes, render jobs on the workers, publish, e-mail.
    Run(run::DaemonArgs),
    #[cfg(feature = "ffmpeg")]
    /// Start a scratch daemon with the tiny model, render the sample jobs, say where they are.
    Demo(demo::Args),
    #[cfg(feature = "ffmpeg")]
    /// Show the queue of a daemon: states, progress, times.
    Status {
        #[command(flatten)]
        target: operator::Target,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "ffmpeg")]
    /// Cancel a queued or running job (running jobs stop at their next step).
    Cancel {
        #[arg(value_parser = operator::job_id)]
        job: crate::queue::JobId,
        #[command(flatten)]
        target: operator::Target,
    },
    #[cfg(feature = "ffmpeg")]
    /// Put a failed or cancelled job back in the queue.
    Retry {
        #[arg(value_parser = operator::job_id)]
        job: crate::queue::JobId,
        #[command(flatten)]
        target: operator::Target,
    },
    #[cfg(feature = "ffmpeg")]
    /// Stop starting new jobs (running ones finish).
    Pause(operator::Target),
    #[cfg(feature = "ffmpeg")]
    /// Start jobs again.
    Resume(operator::Target),
    /// Copy a job folder into an inbox so that it appears complete at once.
    Submit(submit::Args),
    #[cfg(feature = "ffmpeg")]
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    #[cfg(feature = "ffmpeg")]
    /// The queue database.
    #[command(subcommand)]
    Db(DbCommand),
    #[cfg(feature = "ffmpeg")]
    /// A GPU worker process (started by the daemon).
    #[command(hide = true)]
    Worker {
        /// The device to open: `cpu`, or `cuda:0` under the daemon's CUDA_VISIBLE_DEVICES.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// The device's name in reports and logs (e.g. `cuda:3`); default: `--device`.
        #[arg(long)]
        device_label: Option<String>,
    },
    /// Generate one video from a prompt and write its frames as PNG files.
    Generate(generate::Args),
    #[cfg(feature = "ffmpeg")]
    /// Render one job folder (job.json plus media) into a result folder.
    Render(render::Args),
    #[cfg(feature = "ffmpeg")]
    /// Check a job folder as a render would, and print what it would do.
    Validate(validate::Args),
    #[cfg(feature = "ffmpeg")]
    /// Run one preprocessing task (VACE annotator) and write its control video, mask and
    /// reference images as files.
    Preprocess(Box<preprocess::Args>),
    /// Time the engine at real shapes with random weights (JSON).
    Bench(bench::Args),
    /// Print the JSON Schema of job.json.
    Schema,
    /// Check a downloaded Wan2.1-VACE folder: every file, tensor name, shape and dtype.
    CheckModel(check_model::Args),
}

#[cfg(feature = "ffmpeg")]
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration (and flags) and print what it means.
    Check(run::DaemonArgs),
}

#[cfg(feature = "ffmpeg")]
#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Rebuild the queue database from the job folders in the state folder.
    Rebuild {
        #[arg(long = "state")]
        state_dir: std::path::PathBuf,
    },
}

/// Logs to the journal when stderr is connected to it, else readable lines on stderr.
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if journal_is_stderr()
        && let Ok(journald) = tracing_journald::layer()
    {
        tracing_subscriber::registry()
            .with(filter)
            .with(journald)
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}

/// Whether stderr is the journal stream systemd gave us (`JOURNAL_STREAM=dev:inode`).
fn journal_is_stderr() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse::<u64>().is_ok_and(|d| d == meta.dev())
        && ino.parse::<u64>().is_ok_and(|i| i == meta.ino())
}

/// Runs the command line; the binary maps the error to an exit code.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        #[cfg(feature = "ffmpeg")]
        Command::Run(args) => run::run(args),
        #[cfg(feature = "ffmpeg")]
        Command::Demo(args) => demo::run(args),
        #[cfg(feature = "ffmpeg")]
        Command::Status { target, json } => operator::status(target, json),
        #[cfg(feature = "ffmpeg")]
        Command::Cancel { job, target } => {
            operator::command(target, crate::daemon::control::Request::Cancel { job })
        }
        #[cfg(feature = "ffmpeg")]
        Command::Retry { job, target } => {
            operator::command(target, crate::daemon::control::Request::Retry { job })
        }
        #[cfg(feature = "ffmpeg")]
        Command::Pause(target) => operator::command(target, crate::daemon::control::Request::Pause),
        #[cfg(feature = "ffmpeg")]
        Command::Resume(target) => {
            operator::command(target, crate::daemon::control::Request::Resume)
        }
        Command::Submit(args) => submit::run(args),
        #[cfg(feature = "ffmpeg")]
        Command::Config(ConfigCommand::Check(args)) => admin::config_check(args),
        #[cfg(feature = "ffmpeg")]
        Command::Db(DbCommand::Rebuild { state_dir }) => admin::db_rebuild(state_dir),
        #[cfg(feature = "ffmpeg")]
        Command::Worker {
            device,
            device_label,
        } => crate::worker::process::run(&device, device_label.as_deref().unwrap_or(&device)),
        Command::Generate(args) => generate::run(args),
        #[cfg(feature = "ffmpeg")]
        Command::Render(args) => render::run(args),
        #[cfg(feature = "ffmpeg")]
        Command::Validate(args) => validate::run(args),
        #[cfg(feature = "ffmpeg")]
        Command::Preprocess(args) => preprocess::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Schema => {
            print!("{}", crate::manifest::schema_json());
            Ok(())
        }
        Command::CheckModel(args) => check_model::run(args),
    }
}
