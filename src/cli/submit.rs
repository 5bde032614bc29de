//! `vaced submit DIR --inbox INBOX`: copies a job folder into an inbox the safe way: into a
//! hidden folder first (the daemon ignores it), `job.json` last, then one rename makes the
//! complete folder appear.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job folder to submit.
    job: PathBuf,
    /// The inbox to drop it into.
    #[arg(long)]
    inbox: PathBuf,
    /// Name in the inbox (default: the folder's name).
    #[arg(long)]
    name: Option<String>,
}

fn copy_tree(from: &Path, to: &Path, skip: Option<&str>) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if skip.is_some_and(|s| entry.file_name() == s) {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest, None)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Copies `job` into `inbox` under `name`, appearing whole; returns the new path.
pub fn submit(job: &Path, inbox: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let manifest = job.join(crate::manifest::MANIFEST_FILE);
    if !manifest.is_file() {
        bail!(
            "{}: no job.json; a job folder holds job.json and its media",
            job.display()
        );
    }
    if !inbox.is_dir() {
        bail!("inbox {}: not a folder", inbox.display());
    }
    let dest = inbox.join(name);
    if dest.exists() {
        bail!(
            "{}: already in the inbox; pass --name to submit it under another name",
            dest.display()
        );
    }
    let staging = inbox.join(format!(".vaced-submit-{name}-{}", std::process::id()));
    let copied = (|| -> std::io::Result<()> {
        copy_tree(job, &staging, Some(crate::manifest::MANIFEST_FILE))?;
        std::fs::copy(&manifest, staging.join(crate::manifest::MANIFEST_FILE))?;
        std::fs::rename(&staging, &dest)
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e)
            .with_context(|| format!("copying {} into {}", job.display(), inbox.display()));
    }
    Ok(dest)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => std::path::absolute(&args.job)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("the job folder needs a name")?,
    };
    let dest = submit(&args.job, &args.inbox, &name)?;
    println!("submitted {}", dest.display());
    Ok(())
}
