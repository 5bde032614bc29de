//! Loading and planning a job folder for `validate` and `render`, with every problem of the
//! manifest and its media reported in one error.

use std::path::Path;

use super::job_model::{self, ChosenModel};
use crate::manifest::{self, ManifestError, Problem};
use crate::preprocess::AnnotatorDir;
use crate::render::{self, JobPlan};

/// The job's plan and the model it runs with, or all that is wrong with it.
pub fn load(
    job: &Path,
    model_arg: Option<&str>,
    annotators: &AnnotatorDir,
) -> anyhow::Result<(JobPlan, ChosenModel)> {
    let (manifest, mut problems) = manifest::load_with_problems(job)?;
    let invalid = |problems| ManifestError::Invalid {
        path: job.join(manifest::MANIFEST_FILE),
        problems: sorted(problems),
    };
    let model = match job_model::choose(model_arg, &manifest) {
        Ok(model) => model,
        Err(e) if !problems.is_empty() => {
            problems.push(Problem::new("model", format!("{e:#}")));
            return Err(invalid(problems).into());
        }
        Err(e) => return Err(e),
    };
    let plan = render::plan(job, &manifest, model.name, annotators);
    match plan {
        Ok(plan) if problems.is_empty() => return Ok((plan, model)),
        Ok(_) => {}
        Err(more) => {
            for problem in more {
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    Err(invalid(problems).into())
}

/// Problems in manifest order: top-level keys first, inputs after.
fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| p.field.starts_with("inputs"));
    problems
}
