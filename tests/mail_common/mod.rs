//! Shared helpers for the mail tests: a real SMTP server (aiosmtpd, run by
//! `tests/support/smtp_server.py` with the system Python) on a free loopback port, reading
//! back what it stored, just enough MIME and base64 to check an attachment, and sample
//! notifications.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vaced::mail::{MailSettings, Mailer, Notification, Outcome, SmtpSettings, Transport};

/// A 1×1 red PNG.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xdd, 0x8d, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Prints the mailer's logs with the test's output (shown for failing tests).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("vaced=debug")
        .with_test_writer()
        .try_init();
}

/// Log lines captured from the current thread, for asserting what an operator would see.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Captures this thread's logs until the guard is dropped; use a current-thread
    /// runtime so that the mailer's tasks log on this thread.
    pub fn start(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("vaced=debug")
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

/// A running SMTP server, killed when dropped.
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: Child,
}

impl SmtpServer {
    /// Starts a server on `port` storing mail in `maildir`; `auth` = (user, password) makes
    /// AUTH mandatory. Returns once the port accepts connections.
    pub async fn start(port: u16, maildir: &Path, auth: Option<(&str, &str)>) -> Self {
        Self::launch(port, maildir, auth, Duration::ZERO).await
    }

    /// A server that stores each message, then waits `reply_delay` before its "250 OK":
    /// the moment in which the message is the server's but the client does not know it.
    pub async fn start_replying_late(port: u16, maildir: &Path, reply_delay: Duration) -> Self {
        Self::launch(port, maildir, None, reply_delay).await
    }

    async fn launch(
        port: u16,
        maildir: &Path,
        auth: Option<(&str, &str)>,
        reply_delay: Duration,
    ) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        std::fs::create_dir_all(maildir).expect("creating the maildir");
        let log = std::fs::File::create(maildir.with_extension("log")).expect("server log");
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(script)
            .args(["--port", &port.to_string()])
            .arg("--maildir")
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(log);
        if let Some((user, password)) = auth {
            command.args(["--auth", &format!("{user}:{password}")]);
        }
        if !reply_delay.is_zero() {
            command.args(["--reply-delay-secs", &reply_delay.as_secs_f64().to_string()]);
        }
        let child = command.spawn().expect(
            "starting /usr/bin/python3 tests/support/smtp_server.py (needs python3-aiosmtpd)",
        );
        let server = Self {
            port,
            maildir: maildir.to_owned(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "SMTP server on port {port} did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings for a plain SMTP server on loopback with short retry delays (1 s, max 2 s).
pub fn smtp_settings(port: u16, credentials: Option<(&str, &Path)>) -> MailSettings {
    let url = match credentials {
        Some((user, _)) => format!("smtp://{user}@127.0.0.1:{port}"),
        None => format!("smtp://127.0.0.1:{port}"),
    };
    let smtp = SmtpSettings::from_url(&url, credentials.map(|(_, file)| file))
        .expect("valid test SMTP URL");
    quick_retries(Transport::Smtp(smtp))
}

/// Settings for `transport` with short retry delays (1 s, max 2 s).
pub fn quick_retries(transport: Transport) -> MailSettings {
    MailSettings {
        retry_initial_secs: 1,
        retry_max_secs: 2,
        ..MailSettings::new(transport, "vaced <vaced@render01.studio>")
    }
}

/// A mailer whose sender loop runs in the background until `stop`.
pub struct Running {
    pub mailer: Arc<Mailer>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Starts the sender loop of a new mailer on `tree`.
    pub fn start(settings: MailSettings, tree: sled::Tree) -> Self {
        let mailer = Arc::new(Mailer::new(settings, tree).expect("valid mail settings"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let mailer = Arc::clone(&mailer);
            let shutdown = shutdown.clone();
            async move { mailer.run(shutdown).await }
        });
        Self {
            mailer,
            shutdown,
            task,
        }
    }

    /// Cancels the loop, waits for it (it must stop promptly) and gives the mailer back.
    pub async fn stop(self) -> Arc<Mailer> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the sender loop stops within 5 s of shutdown")
            .expect("the sender loop does not panic");
        self.mailer
    }
}

/// The raw messages in `maildir/new`, in no particular order.
pub fn mails(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .map(|e| std::fs::read(e.expect("maildir entry").path()).expect("reading a stored mail"))
        .map(|bytes| String::from_utf8(bytes).expect("mail is UTF-8"))
        .collect()
}

/// Waits up to `timeout` until `maildir` holds at least `count` messages and returns them.
pub async fn wait_for_mails(maildir: &Path, count: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = mails(maildir);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} mail(s) in {} within {timeout:?}, found {}",
            maildir.display(),
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message split into unfolded headers and body.
pub struct Parsed {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Parsed {
    /// Parses a raw message (CRLF or LF).
    pub fn new(raw: &str) -> Self {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Self {
            headers,
            body: body.to_owned(),
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The parts of a multipart body.
    pub fn parts(&self) -> Vec<Parsed> {
        let content_type = self.header("Content-Type").expect("a Content-Type header");
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .expect("a multipart boundary")
            .trim_matches('"');
        self.body
            .split(&format!("--{boundary}"))
            .skip(1)
            .filter(|part| !part.starts_with("--"))
            .map(|part| Parsed::new(part.trim_start_matches('\n')))
            .collect()
    }
}

/// Decodes standard base64, ignoring line breaks.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
    {
        let value = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .expect("a base64 character") as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// A successful job's notification.
pub fn done(key: &str, to: &[&str], poster_png: Option<PathBuf>) -> Notification {
    Notification {
        key: key.to_owned(),
        to: to.iter().map(|s| s.to_string()).collect(),
        job_id: "job-000042".to_owned(),
        job_name: "beach-sunset".to_owned(),
        outcome: Outcome::Done {
            output_dir: "/srv/vaced/done/beach-sunset".to_owned(),
            frames: 81,
            size: "832x480".to_owned(),
            fps: 16,
            seed: 1234,
            timings: vec![
                ("encode_text".to_owned(), 2.5),
                ("denoise".to_owned(), 301.25),
                ("decode".to_owned(), 12.0),
            ],
        },
        poster_png,
    }
}

/// A failed job's notification.
pub fn failed(key: &str, to: &[&str]) -> Notification {
    Notification {
        key: key.to_owned(),
        to: to.iter().map(|s| s.to_string()).collect(),
        job_id: "job-000043".to_owned(),
        job_name: "city-night".to_owned(),
        outcome: Outcome::Failed {
            failed_dir: "/srv/vaced/failed/city-night".to_owned(),
            error: "source.mp4: no video stream found".to_owned(),
            how_to_fix: Some(
                "re-export the clip as H.264 MP4 and drop the job in again".to_owned(),
            ),
            attempts: 2,
        },
        poster_png: None,
    }
}

/// A fresh sled tree in `dir`.
pub fn open_tree(dir: &Path) -> (sled::Db, sled::Tree) {
    let db = sled::open(dir.join("state")).expect("opening the sled database");
    let tree = db.open_tree("mail").expect("opening the mail tree");
    (db, tree)
}
