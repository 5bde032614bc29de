//! The daemon's side of a worker: starts `vaced worker --device D` as a child process (a
//! GPU worker with `CUDA_VISIBLE_DEVICES` set to its GPU alone), passes it commands, turns
//! its stdout into events and its stderr into log lines, and starts it again (with a
//! growing delay) when it dies. The child dies with the daemon.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::placement::Placement;
use super::protocol::{FromWorker, ToWorker, encode};

/// Longest wait before restarting a worker that keeps dying.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A worker that stayed up this long is restarted without delay after dying.
const HEALTHY_UPTIME: Duration = Duration::from_secs(60);
/// How long a worker gets to finish after its stdin closes at shutdown.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// What a worker did, as the daemon's core sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerEvent {
    Message(FromWorker),
    /// A line the worker logged (stderr).
    Log(String),
    /// The process ended or could not start.
    Exited(String),
}

/// How to start one worker.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub index: usize,
    pub placement: Placement,
    /// The `vaced` executable.
    pub exe: PathBuf,
}

/// The worker's command line and environment.
fn worker_command(spec: &WorkerSpec) -> Command {
    let placement = &spec.placement;
    let mut command = Command::new(&spec.exe);
    command.args([
        "worker",
        "--device",
        &placement.device,
        "--device-label",
        &placement.device_label,
    ]);
    // Set before the child starts, so its CUDA runtime never sees the other GPUs.
    if let Some(gpu) = &placement.cuda_visible_devices {
        command.env("CUDA_VISIBLE_DEVICES", gpu);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a worker until `shutdown`: commands from `commands`, events to `events` tagged with
/// the worker's index.
pub async fn supervise(
    spec: WorkerSpec,
    mut commands: mpsc::Receiver<ToWorker>,
    events: mpsc::Sender<(usize, WorkerEvent)>,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_secs(1);
    let report = |event: WorkerEvent| {
        let events = events.clone();
        async move {
            let _ = events.send((spec.index, event)).await;
        }
    };
    while !shutdown.is_cancelled() {
        let started = Instant::now();
        let spawned = worker_command(&spec).spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                report(WorkerEvent::Exited(format!(
                    "cannot start {}: {e}",
                    spec.exe.display()
                )))
                .await;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(MAX_RESTART_DELAY);
                continue;
            }
        };
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            report(WorkerEvent::Exited("worker started without pipes".into())).await;
            return;
        };
        let mut stdout = BufReader::new(stdout).lines();
        let mut stderr = BufReader::new(stderr).lines();
        let (mut stdout_open, mut stderr_open) = (true, true);
        let exit = loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => {
                        if let Err(e) = stdin.write_all(encode(&command).as_bytes()).await {
                            tracing::warn!(worker = %spec.placement.name, error = %e, "cannot write to the worker");
                        }
                    }
                    // The daemon's core is gone: stop the worker.
                    None => break None,
                },
                line = stdout.next_line(), if stdout_open => match line {
                    Ok(Some(line)) => match serde_json::from_str::<FromWorker>(&line) {
                        Ok(message) => report(WorkerEvent::Message(message)).await,
                        Err(_) => report(WorkerEvent::Log(line)).await,
                    },
                    _ => stdout_open = false,
                },
                line = stderr.next_line(), if stderr_open => match line {
                    Ok(Some(line)) => report(WorkerEvent::Log(line)).await,
                    _ => stderr_open = false,
                },
                status = child.wait() => break Some(match status {
                    Ok(status) => status.to_string(),
                    Err(e) => e.to_string(),
                }),
                _ = shutdown.cancelled() => break None,
            }
        };
        match exit {
            Some(status) => report(WorkerEvent::Exited(status)).await,
            None => {
                // Closing stdin asks the worker to exit after its current job.
                drop(stdin);
                if tokio::time::timeout(EXIT_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
                return;
            }
        }
        delay = if started.elapsed() > HEALTHY_UPTIME {
            Duration::from_secs(1)
        } else {
            (delay * 2).min(MAX_RESTART_DELAY)
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    fn spec(device: &str, label: &str, gpu: Option<&str>) -> WorkerSpec {
        WorkerSpec {
            index: 0,
            placement: Placement {
                name: label.into(),
                device: device.into(),
                device_label: label.into(),
                cuda_visible_devices: gpu.map(str::to_owned),
            },
            exe: "/usr/bin/vaced".into(),
        }
    }

    fn args_and_gpu(spec: &WorkerSpec) -> (Vec<String>, Option<Option<String>>) {
        let command = worker_command(spec);
        let command = command.as_std();
        let args = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let gpu = command
            .get_envs()
            .find(|(key, _)| *key == OsStr::new("CUDA_VISIBLE_DEVICES"))
            .map(|(_, value)| value.map(|v| v.to_string_lossy().into_owned()));
        (args, gpu)
    }

    #[test]
    fn a_gpu_worker_sees_only_its_gpu_as_cuda_0_and_reports_its_real_name() {
        let (args, gpu) = args_and_gpu(&spec("cuda:0", "cuda:3", Some("3")));
        assert_eq!(
            args,
            ["worker", "--device", "cuda:0", "--device-label", "cuda:3"]
        );
        assert_eq!(gpu, Some(Some("3".into())));
    }

    #[test]
    fn a_cpu_worker_keeps_the_daemons_environment() {
        let (args, gpu) = args_and_gpu(&spec("cpu", "cpu", None));
        assert_eq!(args, ["worker", "--device", "cpu", "--device-label", "cpu"]);
        assert_eq!(gpu, None);
    }
}
