//! The command line: parsing, logging set-up and dispatch to one module per command.

mod check_model;
mod device;
mod generate;
mod job_model;
mod job_plan;
mod progress;
mod render;
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

/// Runs the command line; the binary maps the error to an exit code.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match cli.command {
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
