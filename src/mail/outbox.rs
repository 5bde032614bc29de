//! The mailer: a durable outbox with one sender loop. `enqueue` writes a notification to
//! sled and flushes before returning, so a crash right after cannot lose it; `run` sends
//! what is due, oldest first, removes what was delivered and reschedules what failed with
//! exponential backoff. Delivery is at least once: a crash between the server's "250 OK"
//! and the removal sends that mail again on restart. A shutdown lets a message already
//! being sent finish (for a moment), so an orderly stop does not.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::Mailbox;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::backoff::Backoff;
use super::sender::{Sender, Verdict, classify};
use super::store::{Settlement, Store};
use super::{Error, MailSettings, Notification, Transport, build_message, parse_mailbox};

/// How long delivered and dropped keys are remembered against re-enqueueing.
pub const SETTLED_KEY_RETENTION_SECS: u64 = 30 * 24 * 3600;

/// Sleep bound when nothing is pending; `enqueue` wakes the loop earlier.
const IDLE_WAKE_SECS: u64 = 3600;

/// How long a shutdown waits for a message already being sent. The server may hold the
/// message by now; cutting the transaction off before its answer would send it again
/// after the restart, so a reply that is a moment away is worth waiting for.
const SHUTDOWN_SEND_GRACE_SECS: u64 = 2;

/// Sends job notifications, durably and with retries.
pub struct Mailer {
    settings: MailSettings,
    from: Mailbox,
    backoff: Backoff,
    store: Store,
    wake: Notify,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `MailSettings`' Debug already redacts the SMTP password.
        f.debug_struct("Mailer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Outcome of one delivery pass.
struct Pass {
    /// Set when a failure concerned the server: nothing is tried before this time.
    hold_until_unix_ms: Option<u64>,
}

impl Mailer {
    /// A mailer storing its outbox in `tree` (one mailer per tree). Checks the sender
    /// address and retry delays, and creates the spool folder.
    pub fn new(settings: MailSettings, tree: sled::Tree) -> Result<Self, Error> {
        let from = parse_mailbox(&settings.from)?;
        if settings.retry_initial_secs == 0 {
            return Err(Error::Settings(
                "retry_initial_secs is 0; set it to 1 or more so a down server is not hammered"
                    .to_owned(),
            ));
        }
        if settings.retry_max_secs < settings.retry_initial_secs {
            return Err(Error::Settings(format!(
                "retry_max_secs ({}) is below retry_initial_secs ({}); raise it",
                settings.retry_max_secs, settings.retry_initial_secs
            )));
        }
        if let Transport::Spool(dir) = &settings.transport {
            std::fs::create_dir_all(dir).map_err(|source| Error::SpoolDir {
                path: dir.clone(),
                source,
            })?;
        }
        let backoff = Backoff {
            initial_secs: settings.retry_initial_secs,
            max_secs: settings.retry_max_secs,
        };
        Ok(Self {
            settings,
            from,
            backoff,
            store: Store::open(tree)?,
            wake: Notify::new(),
        })
    }

    /// Stores the notification durably (sled insert + flush) unless its key was already
    /// stored or delivered; returns whether it was new, and wakes the sender. Invalid
    /// addresses are refused here. With mail disabled nothing is stored and `false` comes back.
    pub async fn enqueue(&self, n: Notification) -> Result<bool, Error> {
        // Building the message now reports bad addresses to the caller, not to a log later.
        build_message(&n, &self.from, None)?;
        if matches!(self.settings.transport, Transport::Disabled) {
            debug!(key = %n.key, subject = %n.subject(), "mail disabled; notification dropped");
            return Ok(false);
        }
        let new = self.store.insert_new(&n, now_unix_ms())?;
        if new {
            self.store.flush().await?;
            debug!(key = %n.key, "notification queued");
            self.wake.notify_one();
        } else {
            debug!(key = %n.key, "notification already queued or sent; not queued again");
        }
        Ok(new)
    }

    /// Notifications not yet delivered.
    pub fn pending(&self) -> Result<usize, Error> {
        self.store.pending()
    }

    /// Delivers stored notifications until `shutdown` is cancelled: oldest first; a
    /// delivered one is removed (and flushed); a failed one stays, with its attempt count
    /// and next-attempt time stored, retried with exponential backoff (initial, ×2, capped,
    /// small jitter). Permanent rejections (SMTP 5xx for a recipient/message) are logged at
    /// error level and dropped so one bad address cannot block the queue; connection
    /// failures, timeouts and 4xx are retried. Survives restarts: what is in the tree at
    /// start is sent. Run one loop per mailer.
    pub async fn run(&self, shutdown: CancellationToken) {
        let sender = match Sender::new(&self.settings.transport) {
            Ok(Some(sender)) => sender,
            Ok(None) => {
                debug!(
                    pending = self.pending().unwrap_or(0),
                    "mail disabled; the mail sender is idle and stored mail stays queued"
                );
                shutdown.cancelled().await;
                return;
            }
            Err(e) => {
                error!(error = %e, "mail sender cannot start; no mail will be sent");
                shutdown.cancelled().await;
                return;
            }
        };
        let horizon = now_unix_ms().saturating_sub(SETTLED_KEY_RETENTION_SECS * 1000);
        if let Err(e) = self.store.prune_settled(horizon) {
            warn!(error = %e, "could not prune old sent-mail keys");
        }
        info!(
            transport = %sender.describe(),
            pending = self.pending().unwrap_or(0),
            "mail sender started"
        );

        let mut hold_until_unix_ms = 0;
        loop {
            if now_unix_ms() >= hold_until_unix_ms {
                match self.deliver_due(&sender, &shutdown).await {
                    Ok(pass) => hold_until_unix_ms = pass.hold_until_unix_ms.unwrap_or(0),
                    Err(e) => {
                        error!(error = %e, "mail outbox failed; trying again later");
                        hold_until_unix_ms =
                            now_unix_ms() + self.backoff.initial_secs.saturating_mul(1000);
                    }
                }
            }
            let next_due = match self.store.next_due_unix_ms() {
                Ok(next_due) => next_due,
                Err(e) => {
                    error!(error = %e, "mail outbox unreadable; trying again later");
                    Some(now_unix_ms() + self.backoff.initial_secs.saturating_mul(1000))
                }
            };
            let sleep = match next_due {
                Some(due) => {
                    Duration::from_millis(due.max(hold_until_unix_ms).saturating_sub(now_unix_ms()))
                }
                None => Duration::from_secs(IDLE_WAKE_SECS),
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        sender.shutdown().await;
        debug!("mail sender stopped");
    }

    /// Tries every due record once, oldest first, stopping early on shutdown or when the
    /// server itself is failing.
    async fn deliver_due(
        &self,
        sender: &Sender,
        shutdown: &CancellationToken,
    ) -> Result<Pass, Error> {
        let started_unix_ms = now_unix_ms();
        for (id, mut record) in self.store.records()? {
            if shutdown.is_cancelled() {
                break;
            }
            if record.next_attempt_unix_ms > started_unix_ms {
                continue;
            }
            let n = &record.notification;
            let poster = n.read_poster().await;
            let sent = match build_message(n, &self.from, poster) {
                Ok(message) => {
                    let send = sender.send(message);
                    tokio::pin!(send);
                    tokio::select! {
                        sent = &mut send => sent,
                        _ = shutdown.cancelled() => {
                            let grace = Duration::from_secs(SHUTDOWN_SEND_GRACE_SECS);
                            match tokio::time::timeout(grace, &mut send).await {
                                Ok(sent) => sent,
                                Err(_) => {
                                    // Abandoned mid-send: the record stays and goes out
                                    // after the restart.
                                    warn!(
                                        key = %n.key,
                                        grace_secs = SHUTDOWN_SEND_GRACE_SECS,
                                        "shutting down in the middle of sending a mail; \
                                         it is sent again after the restart"
                                    );
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => Err(e),
            };
            let now = now_unix_ms();
            let verdict = match &sent {
                Ok(()) => {
                    self.store.settle(id, &n.key, Settlement::Sent, now)?;
                    info!(
                        key = %n.key,
                        to = %n.to.join(", "),
                        subject = %n.subject(),
                        attempts = record.attempts + 1,
                        "mail delivered"
                    );
                    None
                }
                Err(e) => Some((classify(e), e)),
            };
            match verdict {
                None => {}
                Some((Verdict::Drop, e)) => {
                    self.store.settle(id, &n.key, Settlement::Dropped, now)?;
                    error!(
                        key = %n.key,
                        to = %n.to.join(", "),
                        subject = %n.subject(),
                        error = %e,
                        "mail permanently rejected; dropped, it will not be retried"
                    );
                }
                Some((Verdict::Retry { whole_queue }, e)) => {
                    record.attempts += 1;
                    let delay = self.backoff.delay(record.attempts);
                    record.next_attempt_unix_ms = now + delay.as_millis() as u64;
                    record.last_error = Some(e.to_string());
                    self.store.reschedule(id, &record)?;
                    warn!(
                        key = %record.notification.key,
                        error = %e,
                        attempts = record.attempts,
                        next_attempt = %humantime::format_rfc3339_seconds(
                            UNIX_EPOCH + Duration::from_millis(record.next_attempt_unix_ms)
                        ),
                        in_secs = (delay.as_secs_f64() * 10.0).round() / 10.0,
                        "mail delivery failed; will retry"
                    );
                    if whole_queue {
                        self.store.flush().await?;
                        return Ok(Pass {
                            hold_until_unix_ms: Some(record.next_attempt_unix_ms),
                        });
                    }
                }
            }
            self.store.flush().await?;
        }
        Ok(Pass {
            hold_until_unix_ms: None,
        })
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
