//! Administration: `vaced config check --config FILE` and `vaced db rebuild --state DIR`.

use std::path::PathBuf;

use super::run::DaemonArgs;
use crate::config::MailTarget;
use crate::queue::Queue;
use crate::worker::{GpuView, place};

/// `vaced config check`: validates the file (with any flags) and prints what it means on
/// this machine (`all` becomes its GPUs, as when the daemon starts here).
pub fn config_check(args: DaemonArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let workers = place(&config.devices, &GpuView::detect())?;
    println!("configuration ok");
    println!("state:   {}", config.state_dir.display());
    println!("outbox:  {}", config.outbox.display());
    println!("failed:  {}", config.failed.display());
    for inbox in &config.inboxes {
        let missing = if inbox.path.is_dir() {
            ""
        } else {
            "  (does not exist yet)"
        };
        println!(
            "inbox:   {} every {:?}, settle {:?}{missing}",
            inbox.path.display(),
            inbox.poll_interval,
            inbox.settle
        );
    }
    for worker in &workers {
        match &worker.cuda_visible_devices {
            Some(gpu) => println!(
                "worker:  {} (sees only its GPU: CUDA_VISIBLE_DEVICES={gpu})",
                worker.name
            ),
            None => println!("worker:  {}", worker.name),
        }
    }
    for (name, model) in &config.models {
        let default = if *name == config.default_model {
            " (default)"
        } else {
            ""
        };
        println!("model:   {} = {}{default}", name.as_str(), model.source);
    }
    let mail = match &config.mail.target {
        MailTarget::Smtp { url, .. } => url.split('@').next_back().unwrap_or(url).to_owned(),
        MailTarget::Spool(dir) => format!("spool {}", dir.display()),
        MailTarget::Disabled => "disabled".into(),
    };
    println!("mail:    {mail}, from {}", config.mail.from);
    println!(
        "attempts: {}, start paused: {}",
        config.max_attempts, config.start_paused
    );
    Ok(())
}

/// `vaced db rebuild`: restores the queue from the job folders' records.
pub fn db_rebuild(state_dir: PathBuf) -> anyhow::Result<()> {
    let restored = Queue::rebuild(&state_dir)?;
    println!(
        "rebuilt the queue in {} from {restored} job folder(s)",
        state_dir.display()
    );
    Ok(())
}
