//! `vaced validate JOB`: every check a render makes, without rendering; prints the plan or
//! every problem found.

use std::path::PathBuf;

use super::job_plan;
use crate::preprocess::AnnotatorDir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job folder (holding job.json).
    job: PathBuf,
    /// `tiny`, a preset, or a downloaded Wan2.1-VACE folder; default: the job's model.
    #[arg(long)]
    model: Option<String>,
    /// Annotator weights folder for preprocessing tasks (the VACE-Annotators download).
    #[arg(long, env = "VACED_ANNOTATORS")]
    annotators: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let annotators = AnnotatorDir::new(args.annotators.clone());
    let (plan, model) = job_plan::load(&args.job, args.model.as_deref(), &annotators)?;
    println!(
        "{}: ok, would render with {}:\n{}",
        args.job.display(),
        model.source.describe(),
        plan.describe()
    );
    Ok(())
}
