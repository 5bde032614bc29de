//! What a notification says and how it becomes a mail: one plain-text message per finished
//! or failed job, with the job's paths, settings and timings (or the error and how to fix
//! it), and the poster frame attached on success. Notifications are serde values because
//! the outbox stores them until they are delivered.

use std::fmt::Write as _;
use std::path::PathBuf;

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use serde::{Deserialize, Serialize};

use super::Error;

/// One mail about one job outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Idempotency key, e.g. `job-000042/done`: enqueueing the same key twice sends one mail.
    pub key: String,
    /// Recipients, each `name@example.org` or `Name <name@example.org>`.
    pub to: Vec<String>,
    /// The job's id, e.g. `job-000042`.
    pub job_id: String,
    /// The job folder's name.
    pub job_name: String,
    /// How the job ended.
    pub outcome: Outcome,
    /// A PNG attached as `poster.png` on success, if the file exists when the mail is sent.
    pub poster_png: Option<PathBuf>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The video was rendered and published.
    Done {
        /// The published result folder.
        output_dir: String,
        /// Frames in the video.
        frames: usize,
        /// Frame size, `WIDTHxHEIGHT`.
        size: String,
        /// Frame rate of the video.
        fps: u32,
        /// Noise seed, to render the same video again.
        seed: u64,
        /// Wall time of each stage, in seconds, in order.
        timings: Vec<(String, f64)>,
    },
    /// The job failed and was moved aside.
    Failed {
        /// Where the failed job folder now is.
        failed_dir: String,
        /// What went wrong.
        error: String,
        /// What the user can do about it, when known.
        how_to_fix: Option<String>,
        /// How many times the job was tried.
        attempts: u32,
    },
}

/// File name of the attached poster frame.
pub const POSTER_FILE_NAME: &str = "poster.png";

impl Notification {
    /// The subject line: `[vaced] done: <job_name> (<job_id>)` or `[vaced] FAILED: …`.
    pub fn subject(&self) -> String {
        let verdict = match self.outcome {
            Outcome::Done { .. } => "done",
            Outcome::Failed { .. } => "FAILED",
        };
        format!("[vaced] {verdict}: {} ({})", self.job_name, self.job_id)
    }

    /// The plain-text body.
    pub fn body_text(&self) -> String {
        let mut body = String::new();
        // Writing to a String cannot fail; `let _` keeps the builder readable.
        match &self.outcome {
            Outcome::Done {
                output_dir,
                frames,
                size,
                fps,
                seed,
                timings,
            } => {
                let _ = writeln!(body, "Job {} ({}) finished.\n", self.job_name, self.job_id);
                let _ = writeln!(body, "Output:  {output_dir}");
                let _ = writeln!(body, "Frames:  {frames}");
                let _ = writeln!(body, "Size:    {size}");
                let _ = writeln!(body, "FPS:     {fps}");
                let _ = writeln!(body, "Seed:    {seed}");
                if !timings.is_empty() {
                    let _ = writeln!(body, "\nStage timings (seconds):");
                    let width = timings.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
                    for (stage, secs) in timings {
                        let _ = writeln!(body, "  {stage:<width$}  {secs:>9.1}");
                    }
                    let total: f64 = timings.iter().map(|(_, secs)| secs).sum();
                    let _ = writeln!(body, "  {:<width$}  {total:>9.1}", "total");
                }
                if self.poster_png.is_some() {
                    let _ = writeln!(body, "\nA poster frame is attached.");
                }
            }
            Outcome::Failed {
                failed_dir,
                error,
                how_to_fix,
                attempts,
            } => {
                let tries = if *attempts == 1 {
                    "attempt"
                } else {
                    "attempts"
                };
                let _ = writeln!(
                    body,
                    "Job {} ({}) FAILED after {attempts} {tries}.\n",
                    self.job_name, self.job_id
                );
                let _ = writeln!(body, "Job folder: {failed_dir}\n");
                let _ = writeln!(body, "Error:\n{}", indent(error));
                if let Some(fix) = how_to_fix {
                    let _ = writeln!(body, "\nHow to fix:\n{}", indent(fix));
                }
            }
        }
        let _ = write!(body, "\n-- \nvaced, the render daemon\n");
        body
    }

    /// The recipients as mailboxes; the first invalid one is an error naming it.
    pub fn recipients(&self) -> Result<Vec<Mailbox>, Error> {
        if self.to.is_empty() {
            return Err(Error::Message {
                key: self.key.clone(),
                reason: "it has no recipient; add at least one address to `to`".to_owned(),
            });
        }
        self.to.iter().map(|a| parse_mailbox(a)).collect()
    }

    /// Reads the poster for a successful job; a missing or unreadable file means no
    /// attachment rather than no mail.
    pub async fn read_poster(&self) -> Option<Vec<u8>> {
        let Outcome::Done { .. } = self.outcome else {
            return None;
        };
        let path = self.poster_png.as_ref()?;
        match tokio::fs::read(path).await {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(key = %self.key, path = %path.display(), "no poster to attach");
                None
            }
            Err(e) => {
                tracing::warn!(
                    key = %self.key,
                    path = %path.display(),
                    error = %e,
                    "poster unreadable; sending the mail without it"
                );
                None
            }
        }
    }
}

/// Parses one address, with an error that names it.
pub fn parse_mailbox(address: &str) -> Result<Mailbox, Error> {
    address.parse::<Mailbox>().map_err(|e| Error::Address {
        address: address.to_owned(),
        reason: e.to_string(),
    })
}

/// Builds the mail for `n` from `from`, attaching `poster_png` (bytes of a PNG) when given.
pub fn build_message(
    n: &Notification,
    from: &Mailbox,
    poster_png: Option<Vec<u8>>,
) -> Result<Message, Error> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(n.subject())
        // RFC 3834: tells vacation responders not to answer a robot.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ));
    for to in n.recipients()? {
        builder = builder.to(to);
    }
    let text = SinglePart::plain(n.body_text());
    let built = match poster_png {
        Some(png) => builder.multipart(MultiPart::mixed().singlepart(text).singlepart(
            Attachment::new(POSTER_FILE_NAME.to_owned()).body(
                png,
                ContentType::parse("image/png").map_err(|e| message_error(n, e))?,
            ),
        )),
        None => builder.singlepart(text),
    };
    built.map_err(|e| message_error(n, e))
}

fn message_error(n: &Notification, e: impl std::fmt::Display) -> Error {
    Error::Message {
        key: n.key.clone(),
        reason: e.to_string(),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> Notification {
        Notification {
            key: "job-000042/done".into(),
            to: vec!["Ann <ann@example.org>".into(), "bob@example.org".into()],
            job_id: "job-000042".into(),
            job_name: "beach-sunset".into(),
            outcome: Outcome::Done {
                output_dir: "/srv/vaced/done/beach-sunset".into(),
                frames: 81,
                size: "832x480".into(),
                fps: 16,
                seed: 1234,
                timings: vec![("encode_text".into(), 2.5), ("denoise".into(), 301.25)],
            },
            poster_png: None,
        }
    }

    #[test]
    fn subjects_name_the_job() {
        let mut n = done();
        assert_eq!(n.subject(), "[vaced] done: beach-sunset (job-000042)");
        n.outcome = Outcome::Failed {
            failed_dir: "/srv/vaced/failed/beach-sunset".into(),
            error: "out of memory".into(),
            how_to_fix: None,
            attempts: 1,
        };
        assert_eq!(n.subject(), "[vaced] FAILED: beach-sunset (job-000042)");
        assert!(n.body_text().contains("after 1 attempt."));
    }

    #[test]
    fn done_body_lists_settings_and_timings() {
        let body = done().body_text();
        for needle in [
            "/srv/vaced/done/beach-sunset",
            "Frames:  81",
            "832x480",
            "FPS:     16",
            "Seed:    1234",
            "denoise",
            "301.2",
            "total",
            "303.8",
        ] {
            assert!(body.contains(needle), "{needle} missing in\n{body}");
        }
    }

    #[test]
    fn invalid_recipient_is_named() {
        let mut n = done();
        n.to.push("not an address".into());
        let from = parse_mailbox("vaced <vaced@example.org>").expect("valid from");
        let err = build_message(&n, &from, None)
            .expect_err("bad address")
            .to_string();
        assert!(err.contains("`not an address`"), "{err}");
    }

    #[test]
    fn serde_round_trip() {
        let n = done();
        let json = serde_json::to_string(&n).expect("serialize");
        let back: Notification = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, n);
    }
}
