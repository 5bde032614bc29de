//! Which model a command-line render uses: `--model` when given, else the manifest's model
//! when it is built in (`tiny`); checkpoint folders are opened (not loaded) to learn which
//! published model they hold, so the job's sizes can be checked before loading anything.

use anyhow::bail;

use crate::engine::checkpoint::ModelDir;
use crate::engine::preset::{ModelSource, Preset};
use crate::manifest::{JobManifest, ModelName};

/// The model chosen for a job.
#[derive(Debug, Clone)]
pub struct ChosenModel {
    pub source: ModelSource,
    /// The published model it is (or stands in for, for custom folders).
    pub name: ModelName,
}

/// Picks the model from `--model` and the manifest.
pub fn choose(arg: Option<&str>, manifest: &JobManifest) -> anyhow::Result<ChosenModel> {
    let source = match arg {
        Some(arg) => ModelSource::parse(arg),
        None => match manifest.model {
            Some(ModelName::Tiny) => ModelSource::Preset(Preset::Tiny),
            asked => {
                let what = asked.map_or("a VACE model", |m| m.as_str());
                bail!(
                    "job.json asks for {what}; pass --model with the downloaded Wan2.1-VACE folder \
                     (or --model tiny to try the pipeline with the built-in model)"
                )
            }
        },
    };
    let name = match &source {
        ModelSource::Preset(preset) => {
            if *preset != Preset::Tiny {
                tracing::warn!(
                    model = preset.name(),
                    "rendering with random weights: the video will be noise"
                );
            }
            ModelName::of_preset(*preset)
        }
        ModelSource::Dir(dir) => {
            let dir = ModelDir::open(dir)?;
            match dir.preset_name() {
                Some("vace-14b") => ModelName::Vace14b,
                Some(_) => ModelName::Vace1_3b,
                // A custom VACE model: the job's own model decides the sizes it may use.
                None => manifest.model.unwrap_or(ModelName::Vace1_3b),
            }
        }
    };
    Ok(ChosenModel { source, name })
}
