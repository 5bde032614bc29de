//! The daemon: inbox → queue → GPU workers → outbox → e-mail. [`run`] reads as its
//! start-up checklist: where the workers go, folders, queue, mail, workers, the core (which
//! recovers the last run), intake, the control socket, systemd; then it waits for the shutdown signal and
//! stops in order: intake first, running jobs at their next step, workers, mail.

pub mod control;
mod core;
mod intake_loop;
mod job_log;
pub mod status;
mod systemd;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use core::CoreMsg;
pub use intake_loop::claim_dir;

use crate::config::{Config, MailTarget};
use crate::mail::{MailSettings, Mailer, SmtpSettings, Transport};
use crate::queue::Queue;
use crate::worker::{GpuView, Placement, WorkerSpec, place, supervise};

/// How long running jobs get to reach a step boundary when the daemon stops; below
/// systemd's default stop timeout of 90 s.
pub const STOP_GRACE: Duration = Duration::from_secs(60);

fn mail_settings(config: &Config) -> anyhow::Result<MailSettings> {
    let transport = match &config.mail.target {
        MailTarget::Smtp { url, password_file } => Transport::Smtp(
            SmtpSettings::from_url(url, password_file.as_deref()).context("mail settings")?,
        ),
        MailTarget::Spool(dir) => Transport::Spool(dir.clone()),
        MailTarget::Disabled => Transport::Disabled,
    };
    Ok(MailSettings {
        transport,
        from: config.mail.from.clone(),
        retry_initial_secs: config.mail.retry_initial.as_secs().max(1),
        retry_max_secs: config.mail.retry_max.as_secs().max(1),
    })
}

/// One placement per worker for `config` on this machine (`all` becomes its GPUs); reads
/// the driver's GPU list, so it is run off the async runtime.
async fn place_workers(config: &Config) -> anyhow::Result<Vec<Placement>> {
    let devices = config.devices.clone();
    let placed = tokio::task::spawn_blocking(move || place(&devices, &GpuView::detect()))
        .await
        .context("placing the workers")??;
    Ok(placed)
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let placements = place_workers(&config).await?;
    for dir in [&config.state_dir, &config.outbox, &config.failed] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let queue = Queue::open(&config.state_dir)?;
    let daemon_id = queue.daemon_id()?;
    tracing::info!(daemon = %daemon_id, state = %config.state_dir.display(), "starting");
    tracing::debug!(?config, "effective configuration");

    let root = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mailer = Arc::new(Mailer::new(mail_settings(&config)?, queue.tree("mail")?)?);
    {
        let mailer = mailer.clone();
        let stop = root.child_token();
        tracker.spawn(async move { mailer.run(stop).await });
    }

    let (core_tx, core_rx) = mpsc::channel::<CoreMsg>(1024);
    let exe = std::env::current_exe().context("finding the vaced executable for the workers")?;
    let workers_stop = root.child_token();
    let (events_tx, mut events_rx) = mpsc::channel(1024);
    let mut worker_commands = Vec::new();
    for (index, placement) in placements.iter().enumerate() {
        tracing::info!(
            worker = %placement.name,
            device = %placement.device_label,
            cuda_visible_devices = placement.cuda_visible_devices.as_deref().unwrap_or("(unchanged)"),
            "starting a worker"
        );
        let (commands_tx, commands_rx) = mpsc::channel(16);
        worker_commands.push((placement.clone(), commands_tx));
        let spec = WorkerSpec {
            index,
            placement: placement.clone(),
            exe: exe.clone(),
        };
        tracker.spawn(supervise(
            spec,
            commands_rx,
            events_tx.clone(),
            workers_stop.clone(),
        ));
    }
    drop(events_tx);
    {
        let core_tx = core_tx.clone();
        tracker.spawn(async move {
            while let Some((index, event)) = events_rx.recv().await {
                if core_tx
                    .send(CoreMsg::Worker { index, event })
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }

    let heartbeat = Arc::new(AtomicU64::new(crate::queue::now_secs() as u64));
    let core = core::Core::new(
        config.clone(),
        queue.clone(),
        mailer.clone(),
        tokio::runtime::Handle::current(),
        worker_commands,
        heartbeat.clone(),
    );
    let (recovered_tx, recovered_rx) = tokio::sync::oneshot::channel();
    let core_thread = std::thread::Builder::new()
        .name("vaced-core".into())
        .spawn(move || core.run(core_rx, recovered_tx))
        .context("starting the core thread")?;
    recovered_rx
        .await
        .context("the core stopped while recovering the queue")?;

    let intake_stop = root.child_token();
    {
        let (inboxes, core_tx, stop, id) = (
            config.inboxes.clone(),
            core_tx.clone(),
            intake_stop.clone(),
            daemon_id.clone(),
        );
        std::thread::Builder::new()
            .name("vaced-intake".into())
            .spawn(move || intake_loop::run(inboxes, id, core_tx, stop))
            .context("starting the intake thread")?;
    }

    let (control_tx, mut control_rx) = mpsc::channel(16);
    {
        let path = config.state_dir.join(control::SOCKET_FILE);
        let stop = root.child_token();
        tracker.spawn(async move {
            if let Err(e) = control::serve(path, control_tx, stop).await {
                tracing::error!(error = %e, "control socket unavailable: `vaced status` will read the database only");
            }
        });
        let core_tx = core_tx.clone();
        tracker.spawn(async move {
            while let Some(pending) = control_rx.recv().await {
                if core_tx.send(CoreMsg::Control(pending)).await.is_err() {
                    break;
                }
            }
        });
    }
    {
        let core_tx = core_tx.clone();
        let stop = root.child_token();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => if core_tx.send(CoreMsg::Tick).await.is_err() { break },
                    _ = stop.cancelled() => break,
                }
            }
        });
    }
    tracker.spawn(systemd::watchdog(heartbeat, root.child_token()));
    systemd::ready(&format!(
        "watching {} inbox(es) with {} worker(s)",
        config.inboxes.len(),
        placements.len()
    ));
    tracing::info!(
        inboxes = config.inboxes.len(),
        workers = placements.len(),
        "ready"
    );

    shutdown.await;
    systemd::stopping();
    tracing::info!("stopping: intake first, then running jobs at their next step");
    intake_stop.cancel();
    let _ = core_tx
        .send(CoreMsg::Shutdown {
            deadline: Instant::now() + STOP_GRACE,
        })
        .await;
    drop(core_tx);
    let joined = tokio::task::spawn_blocking(move || core_thread.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the core thread ended abnormally");
    }
    root.cancel();
    tracker.close();
    tracker.wait().await;
    queue.flush().context("flushing the queue")?;
    tracing::info!("stopped");
    Ok(())
}
