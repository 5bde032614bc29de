//! `vaced check-model DIR`: validates a checkpoint folder without loading the weights.

use std::path::PathBuf;

use anyhow::Context;

use crate::engine::checkpoint::ModelDir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Wan2.1-VACE folder as downloaded (config.json, diffusion_pytorch_model*.safetensors,
    /// models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth, google/umt5-xxl/).
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = ModelDir::open(&args.dir).context("checking the model folder")?;
    dir.verify().context("checking the model folder")?;
    let cfg = dir.dit_config();
    println!(
        "{}: ok — {} (dim {}, {} layers, {} heads, VACE layers {:?})",
        dir.root().display(),
        dir.preset_name().unwrap_or("custom VACE model"),
        cfg.dim,
        cfg.num_layers,
        cfg.num_heads,
        cfg.vace_layers()
    );
    Ok(())
}
