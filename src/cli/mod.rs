//! The command line: parsing, logging set-up and dispatch to one module per command.

mod admin;
mod check_model;
mod demo;
pub(crate) mod device;
mod generate;
mod job_model;
mod job_plan;
mod operator;
mod progress;
mod render;
mod run;
mod submit;
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
    /// Run the daemon: watch inboxes, render jobs on the workers, publish, e-mail.
    Run(run::DaemonArgs),
    /// Start a scratch daemon with the tiny model, render the sample jobs, say where they are.
    Demo(demo::Args),
    /// Show the queue of a daemon: states, progress, times.
    Status {
        #[command(flatten)]
        target: operator::Target,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running job (running jobs stop at their next step).
    Cancel {
        #[arg(value_parser = operator::job_id)]
        job: crate::queue::JobId,
        #[command(flatten)]
        target: operator::Target,
    },
    /// Put a failed or cancelled job back in the queue.
    Retry {
        #[arg(value_parser = operator::job_id)]
        job: crate::queue::JobId,
        #[command(flatten)]
        target: operator::Target,
    },
    /// Stop starting new jobs (running ones finish).
    Pause(operator::Target),
    /// Start jobs again.
    Resume(operator::Target),
    /// Copy a job folder into an inbox so that it appears complete at once.
    Submit(submit::Args),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The queue database.
    #[command(subcommand)]
    Db(DbCommand),
    /// A GPU worker process (started by the daemon).
    #[command(hide = true)]
    Worker {
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Generate one video from a prompt and write its frames as PNG files.
    Generate(generate::Args),
    /// Render one job folder (job.json plus media) into a result folder.
    Render(render::Args),
    /// Check a job folder as a render would, and print what it would do.
    Validate(validate::Args),
    /// Print the JSON Schema of job.json.
    Schema,
    /// Check a downloaded Wan2.1-VACE folder: every file, tensor name, shape and dtype.
    CheckModel(check_model::Args),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration (and flags) and print what it means.
    Check(run::DaemonArgs),
}

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
        Command::Run(args) => run::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Status { target, json } => operator::status(target, json),
        Command::Cancel { job, target } => {
            operator::command(target, crate::daemon::control::Request::Cancel { job })
        }
        Command::Retry { job, target } => {
            operator::command(target, crate::daemon::control::Request::Retry { job })
        }
        Command::Pause(target) => operator::command(target, crate::daemon::control::Request::Pause),
        Command::Resume(target) => {
            operator::command(target, crate::daemon::control::Request::Resume)
        }
        Command::Submit(args) => submit::run(args),
        Command::Config(ConfigCommand::Check(args)) => admin::config_check(args),
        Command::Db(DbCommand::Rebuild { state_dir }) => admin::db_rebuild(state_dir),
        Command::Worker { device } => crate::worker::process::run(&device),
        Command::Generate(args) => generate::run(args),
        Command::Render(args) => render::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Schema => {
            print!("{}", crate::manifest::schema_json());
            Ok(())
        }
        Command::CheckModel(args) => check_model::run(args),
    }
}
