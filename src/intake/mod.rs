//! Intake: finding job folders that people copy into inbox folders (often NFS or SMB
//! shares), deciding when a copy is complete, claiming a folder so that exactly one daemon
//! renders it, and fingerprinting it. Scans poll; change events ([`watch`]) only make a scan
//! come sooner, as network file systems do not report other machines' writes.
//!
//! # When a job folder is ready
//!
//! - Candidates are the folders at an inbox's top level whose name does not start with `.`
//!   (claims and the daemon's own files live there) and is not temporary or junk
//!   ([`is_temporary_name`], [`is_junk_name`]). Files and links at the top level are ignored.
//! - Each scan takes a snapshot of a candidate: every entry below it, recursively, with size
//!   and modification time for files (junk left out). The folder is *stable* when the
//!   snapshot is unchanged since a scan at least `poll_interval` earlier (so it was seen at
//!   least twice); the scan that first saw the current snapshot is its last change.
//! - Never ready while any entry below it has a temporary name: a copy is still running.
//! - Ready when stable and, in this order:
//!   1. a `READY` file (any case, or `READY.txt`) is at its top: [`Readiness::ReadyFile`];
//!   2. `job.json` is at least as new as every other file, parses, and every path it names
//!      (video, mask, reference images) exists: [`Readiness::ManifestLast`];
//!   3. nothing changed for `settle`: [`Readiness::Settled`], with or without `job.json`
//!      (the daemon then reports what is wrong, so the user sees why).
//! - A folder is reported once; if it changes afterwards (it was not claimed) the rules
//!   apply again. Folders that disappear are forgotten, but only after a complete listing
//!   of an inbox root that is still on its device: a missing, unreadable or remounted root
//!   is [`IntakeError::Unavailable`] and everything seen is kept.
//!
//! On NFS, attributes are cached (`actimeo`, up to a minute by default): a `poll_interval`
//! shorter than that sees changes late, so choose `settle` well above it.

mod claim;
mod error;
mod fingerprint;
mod fs_kind;
mod inbox;
mod move_dir;
mod names;
mod readiness;
mod snapshot;
mod watch;

pub use claim::CLAIM_FILE;
pub use error::IntakeError;
pub use fingerprint::fingerprint;
pub use fs_kind::FsKind;
pub use inbox::{Inbox, InboxSettings, ReadyFolder};
pub use move_dir::move_dir;
pub use names::{is_junk_name, is_temporary_name};
pub use readiness::Readiness;
pub use watch::watch;
