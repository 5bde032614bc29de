//! The operator's channel to a running daemon: a Unix socket `<state>/control.sock` taking
//! one JSON request per connection (`status`, `cancel`, `retry`, `pause`, `resume`) and
//! answering with one JSON line. Only users who can reach the state folder can connect.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::queue::JobId;

/// File name of the socket in the state folder.
pub const SOCKET_FILE: &str = "control.sock";

/// What an operator asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    Cancel { job: JobId },
    Retry { job: JobId },
    Pause,
    Resume,
}

/// One job in the status table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobLine {
    pub id: JobId,
    pub name: String,
    pub state: String,
    pub priority: i32,
    pub attempt: u32,
    pub phase: Option<String>,
    pub step: Option<usize>,
    pub total_steps: Option<usize>,
    pub queued_secs: f64,
    pub running_secs: f64,
    pub eta_secs: Option<f64>,
    pub worker: Option<String>,
    pub output: Option<PathBuf>,
}

/// One worker in the status table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerLine {
    /// Unique among the workers: `cuda:3`, `cpu`, or `cpu#2` when several CPU workers run
    /// (empty from a daemon older than names).
    #[serde(default)]
    pub name: String,
    /// The device it renders on: `cuda:3` or `cpu`.
    pub device: String,
    pub state: String,
    pub model: Option<String>,
}

/// The answer to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub paused: bool,
    pub workers: Vec<WorkerLine>,
    pub jobs: Vec<JobLine>,
    pub pending_mail: usize,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Status(StatusReport),
    Ok { message: String },
    Error { message: String },
}

/// A request on its way to the daemon's core, with where to answer.
#[derive(Debug)]
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

/// Serves the socket until `shutdown`, passing requests to the core.
pub async fn serve(
    path: PathBuf,
    core: mpsc::Sender<Pending>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // A socket file left by a daemon that died is stale: the queue database lock proves no
    // other daemon runs on this state folder.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let core = core.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, core).await {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

async fn answer(stream: UnixStream, core: mpsc::Sender<Pending>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let (reply, answer) = oneshot::channel();
            if core.send(Pending { request, reply }).await.is_err() {
                Response::Error {
                    message: "the daemon is shutting down".into(),
                }
            } else {
                answer.await.unwrap_or(Response::Error {
                    message: "the daemon is shutting down".into(),
                })
            }
        }
        Err(e) => Response::Error {
            message: format!("unreadable request: {e}"),
        },
    };
    let mut text = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

/// Sends one request to the daemon whose state folder is `state_dir` (for the CLI).
pub async fn ask(state_dir: &Path, request: &Request) -> std::io::Result<Response> {
    let stream = UnixStream::connect(state_dir.join(SOCKET_FILE)).await?;
    let (read, mut write) = stream.into_split();
    let mut text = serde_json::to_string(request).map_err(std::io::Error::other)?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}
