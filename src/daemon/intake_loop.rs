//! The intake thread: scans every inbox at its poll interval (sooner when a file-system
//! event hints at a change), claims the folders that are completely copied, and hands them
//! to the core. An inbox that is unmounted or unreadable pauses with a warning and resumes
//! when it is back; nothing in it is forgotten or cancelled.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::core::CoreMsg;
use crate::config::InboxConfig;
use crate::intake::{self, Inbox, InboxSettings};

/// Where this daemon's claims live inside an inbox (same file system, hidden from scans).
pub fn claim_dir(inbox: &Path, daemon_id: &str) -> PathBuf {
    inbox.join(".vaced").join("claimed").join(daemon_id)
}

/// How long the thread sleeps between looks at its hint channel.
const HINT_POLL: Duration = Duration::from_millis(100);

/// One inbox as the thread follows it.
struct Watched {
    config: InboxConfig,
    inbox: Option<Inbox>,
    next_scan: Instant,
    /// The last problem reported, so a long outage is logged once.
    unavailable: Option<String>,
}

/// Runs intake until `stop`; claimed folders go to `core`.
pub fn run(
    inboxes: Vec<InboxConfig>,
    daemon_id: String,
    core: mpsc::Sender<CoreMsg>,
    stop: CancellationToken,
) {
    let (hint_tx, mut hint_rx) = mpsc::channel::<PathBuf>(64);
    let mut watched: Vec<Watched> = inboxes
        .into_iter()
        .map(|config| Watched {
            config,
            inbox: None,
            next_scan: Instant::now(),
            unavailable: None,
        })
        .collect();
    let mut watcher = None;
    while !stop.is_cancelled() {
        let now = Instant::now();
        for (index, w) in watched.iter_mut().enumerate() {
            if w.next_scan > now {
                continue;
            }
            w.next_scan = now + w.config.poll_interval;
            if w.inbox.is_none() {
                match Inbox::open(InboxSettings {
                    path: w.config.path.clone(),
                    poll_interval: w.config.poll_interval,
                    settle: w.config.settle,
                }) {
                    Ok(inbox) => {
                        if !inbox.fs_kind().events_are_reliable() {
                            tracing::info!(inbox = %w.config.path.display(), kind = %inbox.fs_kind(), "inbox is on a network or FUSE file system: polling only, every {:?}", w.config.poll_interval);
                        }
                        w.inbox = Some(inbox);
                        w.unavailable = None;
                    }
                    Err(e) => {
                        report_unavailable(w, e.to_string());
                        continue;
                    }
                }
            }
            let Some(inbox) = w.inbox.as_mut() else {
                continue;
            };
            match inbox.scan(now) {
                Ok(ready) => {
                    if w.unavailable.take().is_some() {
                        tracing::info!(inbox = %w.config.path.display(), "inbox is back; intake resumes");
                    }
                    for folder in ready {
                        let claim_to = claim_dir(&w.config.path, &daemon_id);
                        match inbox.claim(&folder, &claim_to, &daemon_id) {
                            Ok(Some(path)) => {
                                tracing::info!(folder = %folder.path.display(), readiness = %folder.readiness, "claimed a job folder");
                                if core
                                    .blocking_send(CoreMsg::Claimed { inbox: index, path })
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Ok(None) => {
                                tracing::info!(folder = %folder.path.display(), "another daemon took the folder first")
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot claim a job folder"),
                        }
                    }
                }
                Err(e) => report_unavailable(w, e.to_string()),
            }
        }
        if watcher.is_none() {
            // Events only hint; the scans above are the truth. Watch local inboxes only.
            let local: Vec<PathBuf> = watched
                .iter()
                .filter(|w| {
                    w.inbox
                        .as_ref()
                        .is_some_and(|i| i.fs_kind().events_are_reliable())
                })
                .map(|w| w.config.path.clone())
                .collect();
            if !local.is_empty() {
                match intake::watch(&local, hint_tx.clone()) {
                    Ok(w) => watcher = Some(w),
                    Err(e) => tracing::warn!(error = %e, "file events unavailable; polling only"),
                }
            }
        }
        // Sleep until the next scan is due or an event arrives.
        let next = watched
            .iter()
            .map(|w| w.next_scan)
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        while Instant::now() < next && !stop.is_cancelled() {
            match hint_rx.try_recv() {
                Ok(path) => {
                    for w in watched
                        .iter_mut()
                        .filter(|w| path.starts_with(&w.config.path))
                    {
                        w.next_scan = Instant::now();
                    }
                    break;
                }
                Err(_) => std::thread::sleep(
                    HINT_POLL.min(next.saturating_duration_since(Instant::now())),
                ),
            }
        }
    }
}

fn report_unavailable(w: &mut Watched, message: String) {
    if w.unavailable.as_deref() != Some(message.as_str()) {
        tracing::warn!(inbox = %w.config.path.display(), "{message}");
        w.unavailable = Some(message);
    }
}
