//! The one error type of the mail module. Settings and enqueue errors go back to the
//! caller; delivery errors are only logged by the sender loop, which decides from them
//! whether to retry or drop a notification.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, storing or sending mail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SMTP URL could not be understood.
    #[error(
        "SMTP URL `{url}`: {reason}; accepted forms: smtp://host[:port] (plain, port 25), \
         smtp://user@host[:port]?tls=starttls (STARTTLS required, port 587), \
         smtps://user@host[:port] (implicit TLS, port 465)"
    )]
    Url {
        /// The URL with any password replaced by `<redacted>`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The SMTP password file could not be read or is unusable.
    #[error("SMTP password file {}: {reason}; check the path and its permissions", path.display())]
    PasswordFile {
        /// The file named in the settings.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A mail address does not parse.
    #[error(
        "mail address `{address}` is invalid ({reason}); write it as `name@example.org` or `Name <name@example.org>`"
    )]
    Address {
        /// The address as given.
        address: String,
        /// Why lettre rejected it.
        reason: String,
    },
    /// A notification cannot become a message (no recipient, inconsistent headers).
    #[error("notification `{key}` cannot be turned into a mail: {reason}")]
    Message {
        /// The notification's idempotency key.
        key: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The mail settings are inconsistent.
    #[error("mail settings: {0}")]
    Settings(String),
    /// The spool folder could not be created.
    #[error("mail spool folder {}: {source}; create it or choose a writable folder", path.display())]
    SpoolDir {
        /// The spool folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The outbox database failed.
    #[error(
        "mail outbox database: {0}; check the disk under the state folder (space, permissions)"
    )]
    Store(#[from] sled::Error),
    /// A stored outbox record is not valid JSON of the expected shape.
    #[error(
        "mail outbox record `{key}` is unreadable ({source}); it was written by an incompatible version"
    )]
    Record {
        /// The record's database key, printed readably.
        key: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The SMTP server refused or could not be reached.
    #[error("sending mail via {server}: {source}")]
    Smtp {
        /// `host:port` of the server.
        server: String,
        /// lettre's error, with the SMTP code when there was one.
        source: lettre::transport::smtp::Error,
    },
    /// Writing a message into the spool folder failed.
    #[error("writing mail into spool folder {}: {source}", dir.display())]
    Spool {
        /// The spool folder.
        dir: PathBuf,
        /// lettre's error.
        source: lettre::transport::file::Error,
    },
}
