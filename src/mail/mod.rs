//! E-mail notifications about finished and failed jobs, durable and retried: `Mailer`
//! stores each notification in sled before returning, and its sender loop delivers them
//! over SMTP (or into a spool folder) with exponential backoff, surviving restarts and
//! dropping only mails the server rejects for good.

mod backoff;
mod error;
mod message;
mod outbox;
mod sender;
mod settings;
mod store;

pub use error::Error;
pub use message::{Notification, Outcome, POSTER_FILE_NAME, build_message, parse_mailbox};
pub use outbox::{Mailer, SETTLED_KEY_RETENTION_SECS};
pub use settings::{
    DEFAULT_RETRY_INITIAL_SECS, DEFAULT_RETRY_MAX_SECS, MailSettings, Security, SmtpSettings,
    Transport,
};
