//! Shared helpers of the daemon tests: a scratch inbox/outbox/state set-up, the real
//! `vaced run` binary started and stopped (or killed) as systemd would, job folders made
//! from the samples, a real SMTP server on loopback, and waiting with a deadline.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");

/// A scratch daemon set-up under one temp folder.
pub struct Env {
    pub root: TempDir,
    pub inbox: PathBuf,
    pub outbox: PathBuf,
    pub failed: PathBuf,
    pub state: PathBuf,
    pub config: PathBuf,
}

impl Env {
    /// Folders and a config with fast polling; `extra` is appended to the config file.
    pub fn new(extra: &str) -> Self {
        Self::with_inbox(None, extra)
    }

    /// As [`Env::new`], sharing `inbox` (another Env's) instead of making one.
    pub fn with_inbox(inbox: Option<&Path>, extra: &str) -> Self {
        let root = TempDir::new().unwrap();
        let inbox = inbox
            .map(Path::to_owned)
            .unwrap_or_else(|| root.path().join("inbox"));
        let (outbox, failed, state) = (
            root.path().join("outbox"),
            root.path().join("failed"),
            root.path().join("state"),
        );
        std::fs::create_dir_all(&inbox).unwrap();
        let config = root.path().join("vaced.toml");
        // Top-level keys of `extra` must come before the first table; its tables go last.
        let (top, tables) = match extra.find('[') {
            Some(cut) => extra.split_at(cut),
            None => (extra, ""),
        };
        let text = format!(
            "{top}\nstate_dir = \"{}\"\noutbox = \"{}\"\nfailed = \"{}\"\ndevices = [\"cpu\"]\n\n[models]\ndefault = \"tiny\"\n\n[[inbox]]\npath = \"{}\"\npoll_interval = \"200ms\"\nsettle = \"1500ms\"\nnotify = [\"ops@studio.example\"]\n\n{tables}\n",
            state.display(),
            outbox.display(),
            failed.display(),
            inbox.display()
        );
        std::fs::write(&config, text).unwrap();
        Self {
            root,
            inbox,
            outbox,
            failed,
            state,
            config,
        }
    }

    /// Starts `vaced run --config …` with `args` added; its log goes to `daemon-N.log`.
    pub fn start(&self, args: &[&str]) -> Daemon {
        self.start_with_env(args, &[])
    }

    /// As [`Env::start`], with `vars` added to the daemon's environment.
    pub fn start_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Daemon {
        let n = std::fs::read_dir(self.root.path()).unwrap().count();
        let log_path = self.root.path().join(format!("daemon-{n}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vaced"))
            .args(["run", "--config", self.config.to_str().unwrap()])
            .args(args)
            .envs(vars.iter().copied())
            .env("RUST_LOG", "vaced=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let daemon = Daemon {
            child: Some(child),
            log: log_path,
        };
        let socket = self.state.join("control.sock");
        wait_for(
            "the daemon's control socket",
            Duration::from_secs(60),
            || socket.exists() && std::os::unix::net::UnixStream::connect(&socket).is_ok(),
        );
        daemon
    }

    /// Runs the vaced binary with `args`.
    pub fn vaced(&self, args: &[&str]) -> Output {
        self.vaced_with_env(args, &[])
    }

    /// Runs the vaced binary with `args` and `vars` added to its environment.
    pub fn vaced_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vaced"))
            .args(args)
            .envs(vars.iter().copied())
            .output()
            .unwrap()
    }

    /// The daemon's status as JSON.
    pub fn status(&self) -> serde_json::Value {
        let out = self.vaced(&["status", "--json", "--state", self.state.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The status line of the job named `name`, if the daemon knows it.
    pub fn job(&self, name: &str) -> Option<serde_json::Value> {
        self.status()["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["name"] == name)
            .cloned()
    }

    /// A job's record as mirrored in the state folder.
    pub fn record(&self, id: &str) -> serde_json::Value {
        let path = self.state.join("jobs").join(id).join("record.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Makes a job folder outside the inbox from a sample's media and `manifest`.
    pub fn job_folder(&self, name: &str, sample: &str, manifest: &str) -> PathBuf {
        let dir = self.root.path().join("jobs").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(Path::new(SAMPLES).join(sample)).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() != "job.json" {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
        }
        std::fs::write(dir.join("job.json"), manifest).unwrap();
        dir
    }

    /// Drops a job folder into the inbox with `vaced submit`.
    pub fn submit(&self, job: &Path, name: &str) {
        let out = self.vaced(&[
            "submit",
            job.to_str().unwrap(),
            "--inbox",
            self.inbox.to_str().unwrap(),
            "--name",
            name,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits for `outbox/<name>/result.mp4`.
    pub fn wait_done(&self, name: &str, timeout: Duration) -> PathBuf {
        let dir = self.outbox.join(name);
        wait_for(&format!("{name} in the outbox"), timeout, || {
            dir.join("result.mp4").is_file()
        });
        dir
    }

    /// Waits for `failed/<name>/error.json` and returns it.
    pub fn wait_failed(&self, name: &str, timeout: Duration) -> serde_json::Value {
        let path = self.failed.join(name).join("error.json");
        wait_for(&format!("{name} in the failed folder"), timeout, || {
            path.is_file()
        });
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
}

impl Drop for Env {
    /// A failing test shows what the daemons logged.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(self.root.path()) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                eprintln!("---- {} (last lines) ----", entry.path().display());
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// A running daemon; killed (SIGKILL) if still running when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGTERM, as systemd stops it; returns once it exited and whether it exited cleanly.
    pub fn stop(mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop within 90 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to clean up, like a power cut. Its workers die with their pipes.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `ready` holds, polling; fails the test after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pids of `vaced worker` processes whose parent is `daemon`.
pub fn worker_pids(daemon: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        // Field 4 of stat is the parent pid (after the command name in parentheses).
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(daemon) && String::from_utf8_lossy(&cmdline).contains("worker") {
            pids.push(pid);
        }
    }
    pids
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server (aiosmtpd via `tests/support/smtp_server.py`) storing mail in a Maildir.
pub struct Smtp {
    child: Child,
    pub maildir: PathBuf,
}

impl Smtp {
    pub fn start(port: u16, maildir: &Path) -> Self {
        std::fs::create_dir_all(maildir).unwrap();
        let child = Command::new("/usr/bin/python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py"))
            .args([
                "--port",
                &port.to_string(),
                "--maildir",
                maildir.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "starting the SMTP server (needs python3-aiosmtpd; scripts/install-build-deps)",
            );
        wait_for("the SMTP server", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            child,
            maildir: maildir.to_owned(),
        }
    }

    /// The raw messages received.
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return vec![];
        };
        entries
            .flatten()
            .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
