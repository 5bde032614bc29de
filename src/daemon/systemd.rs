//! systemd integration: `READY=1` once the queue is recovered, `STATUS=` lines, `STOPPING=1`,
//! and watchdog pings that stop when the core stops handling messages, so a hung daemon is
//! restarted. Outside systemd every call is a no-op.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Tells systemd the daemon is ready.
pub fn ready(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(
        false,
        &[NotifyState::Stopping, NotifyState::Status("stopping")],
    );
}

/// Pings the watchdog at half its interval while the core's heartbeat is fresh.
pub async fn watchdog(heartbeat: Arc<AtomicU64>, stop: CancellationToken) {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let interval = Duration::from_micros(usec / 2);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
        let now = crate::queue::now_secs() as u64;
        // The core handles a tick every second; a stale heartbeat means it is stuck.
        if now.saturating_sub(heartbeat.load(Ordering::Relaxed)) <= usec / 1_000_000 {
            let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
        } else {
            tracing::error!("the daemon's core is not responding; letting the watchdog restart it");
        }
    }
}
