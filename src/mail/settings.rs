//! Where notification mail goes and how hard to try: an SMTP server (from a URL such as
//! `smtps://vaced@mail.example.org`), a spool folder of `.eml` files, or nowhere. The
//! password is best kept in a file of its own so the URL can sit in a readable config.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Error;

/// Default delay before the first retry of a failed delivery.
pub const DEFAULT_RETRY_INITIAL_SECS: u64 = 30;
/// Default cap of the exponential retry delay.
pub const DEFAULT_RETRY_MAX_SECS: u64 = 900;

/// How the mailer delivers and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// Where mail goes.
    pub transport: Transport,
    /// The sender, e.g. `vaced <vaced@render01.studio>`.
    pub from: String,
    /// Delay before the first retry of a failed delivery.
    pub retry_initial_secs: u64,
    /// Cap of the retry delay, which doubles with every failed attempt.
    pub retry_max_secs: u64,
}

impl MailSettings {
    /// Settings with the default retry delays (30 s, doubling up to 15 min).
    pub fn new(transport: Transport, from: impl Into<String>) -> Self {
        Self {
            transport,
            from: from.into(),
            retry_initial_secs: DEFAULT_RETRY_INITIAL_SECS,
            retry_max_secs: DEFAULT_RETRY_MAX_SECS,
        }
    }
}

/// Where mail goes. `Debug` of the SMTP variant hides the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A real SMTP server.
    Smtp(SmtpSettings),
    /// Each message is written as a `.eml` file into this folder (demos, no server).
    Spool(PathBuf),
    /// No mail at all; notifications are dropped with a debug log.
    Disabled,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text, for a local relay (`smtp://`).
    None,
    /// STARTTLS, required: the connection fails rather than continue unencrypted.
    StartTls,
    /// Implicit TLS from the first byte (`smtps://`).
    Tls,
}

impl Security {
    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        }
    }
}

/// One SMTP server and the account on it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Host name or IP address; also the name checked against the TLS certificate.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Plain, STARTTLS or implicit TLS.
    pub security: Security,
    /// Account for SMTP AUTH; `None` sends without logging in.
    pub username: Option<String>,
    /// Password for SMTP AUTH; never printed.
    pub password: Option<String>,
}

// Hand-written so that logging the settings can never leak the password.
impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl SmtpSettings {
    /// Parses `smtp://host[:port]`, `smtp://user@host[:port]?tls=starttls` or
    /// `smtps://user@host[:port]`; a password in `password_file` wins over one in the URL.
    pub fn from_url(url: &str, password_file: Option<&Path>) -> Result<Self, Error> {
        let fail = |reason: &str| Error::Url {
            url: redact_url(url),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| fail("no scheme; it must start with smtp:// or smtps://"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        // A trailing slash is harmless; any other path is probably a typo.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err(fail("a path after the host is not supported"));
        }

        let mut tls_param = None;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("tls", value)) => tls_param = Some(value.to_ascii_lowercase()),
                _ => return Err(fail(&format!("unknown query parameter `{pair}`"))),
            }
        }
        let security = match (scheme.to_ascii_lowercase().as_str(), tls_param.as_deref()) {
            ("smtp", None) => Security::None,
            // `required` is lettre's own spelling of the same thing.
            ("smtp", Some("starttls" | "required")) => Security::StartTls,
            ("smtps", None) => Security::Tls,
            ("smtp", Some(other)) => {
                return Err(fail(&format!(
                    "unknown `tls={other}` (only tls=starttls is accepted)"
                )));
            }
            ("smtps", Some(_)) => {
                return Err(fail("smtps:// is always TLS; drop the tls= parameter"));
            }
            (other, _) => return Err(fail(&format!("unknown scheme `{other}`"))),
        };

        // The last `@` separates the account, so an unencoded `@` in a user name survives.
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).map_err(|reason| fail(&reason))?;
        let port = port.unwrap_or_else(|| security.default_port());

        let (username, url_password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, pass) = match userinfo.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (userinfo, None),
                };
                let user = percent_decode(user).map_err(|reason| fail(&reason))?;
                if user.is_empty() {
                    return Err(fail("the user name before `@` is empty"));
                }
                let pass = pass
                    .map(percent_decode)
                    .transpose()
                    .map_err(|reason| fail(&reason))?;
                (Some(user), pass)
            }
        };

        let password = match password_file {
            Some(path) => Some(read_password_file(path)?),
            None => url_password,
        };
        match (&username, &password) {
            (Some(_), None) => {
                return Err(fail(
                    "a user is given but no password; put the password in a password file",
                ));
            }
            (None, Some(_)) => {
                return Err(fail(
                    "a password is given but no user; write the URL as scheme://user@host",
                ));
            }
            _ => {}
        }

        Ok(Self {
            host,
            port,
            security,
            username,
            password,
        })
    }

    /// `host:port`, for logs and errors.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 address misses its closing `]`")?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected `{after}` after the IPv6 address")),
            },
        }
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(format!("port `{port}` is not a number from 1 to 65535")),
        },
    };
    Ok((host.to_owned(), port))
}

/// Decodes `%XX` escapes (RFC 3986); the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a `%` in the user or password is not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded user or password is not UTF-8".to_owned())
}

/// Reads the password, dropping the trailing newline editors add.
fn read_password_file(path: &Path) -> Result<String, Error> {
    let fail = |reason: String| Error::PasswordFile {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(fail("the file is empty".to_owned()));
    }
    Ok(password.to_owned())
}

/// The URL with the password part of `user:pass@` replaced, for error messages.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:<redacted>@{hostport}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(
        host: &str,
        port: u16,
        security: Security,
        username: Option<&str>,
        password: Option<&str>,
    ) -> SmtpSettings {
        SmtpSettings {
            host: host.to_owned(),
            port,
            security,
            username: username.map(str::to_owned),
            password: password.map(str::to_owned),
        }
    }

    #[test]
    fn accepted_urls() {
        let cases = [
            (
                "smtp://localhost",
                smtp("localhost", 25, Security::None, None, None),
            ),
            (
                "smtp://relay.lan:2525",
                smtp("relay.lan", 2525, Security::None, None, None),
            ),
            (
                "smtp://vaced@mail.example.org?tls=starttls",
                smtp(
                    "mail.example.org",
                    587,
                    Security::StartTls,
                    Some("vaced"),
                    Some("pw"),
                ),
            ),
            (
                "smtp://vaced@mail.example.org:2587?tls=STARTTLS",
                smtp(
                    "mail.example.org",
                    2587,
                    Security::StartTls,
                    Some("vaced"),
                    Some("pw"),
                ),
            ),
            (
                "smtps://vaced@mail.example.org",
                smtp(
                    "mail.example.org",
                    465,
                    Security::Tls,
                    Some("vaced"),
                    Some("pw"),
                ),
            ),
            (
                "SMTPS://vaced@mail.example.org:4650/",
                smtp(
                    "mail.example.org",
                    4650,
                    Security::Tls,
                    Some("vaced"),
                    Some("pw"),
                ),
            ),
            (
                "smtp://[::1]:2525",
                smtp("::1", 2525, Security::None, None, None),
            ),
        ];
        for (url, expected) in cases {
            let password = expected.password.clone();
            let got = if password.is_some() {
                SmtpSettings::from_url(&url.replace("vaced@", "vaced:pw@"), None)
            } else {
                SmtpSettings::from_url(url, None)
            };
            assert_eq!(got.ok(), Some(expected), "{url}");
        }
    }

    #[test]
    fn password_in_url_is_percent_decoded() {
        let got = SmtpSettings::from_url("smtps://me%40corp:p%3Aw%25d%40@mail.example.org", None)
            .expect("valid URL");
        assert_eq!(got.username.as_deref(), Some("me@corp"));
        assert_eq!(got.password.as_deref(), Some("p:w%d@"));
    }

    #[test]
    fn password_file_wins_and_loses_its_newline() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("smtp-password");
        std::fs::write(&file, "from file\r\n").expect("write password");
        let got = SmtpSettings::from_url("smtps://vaced:in-url@mail.example.org", Some(&file))
            .expect("valid URL");
        assert_eq!(got.password.as_deref(), Some("from file"));
        let got = SmtpSettings::from_url("smtps://vaced@mail.example.org", Some(&file))
            .expect("valid URL");
        assert_eq!(got.password.as_deref(), Some("from file"));
    }

    #[test]
    fn rejected_urls_say_why_and_list_the_forms() {
        let cases = [
            ("mail.example.org", "no scheme"),
            ("http://mail.example.org", "unknown scheme `http`"),
            (
                "smtp://mail.example.org?tls=opportunistic",
                "tls=opportunistic",
            ),
            ("smtps://u:p@mail.example.org?tls=starttls", "drop the tls="),
            (
                "smtp://mail.example.org?ssl=1",
                "unknown query parameter `ssl=1`",
            ),
            ("smtp://mail.example.org:99999", "port `99999`"),
            ("smtp://mail.example.org:", "port ``"),
            ("smtp://", "host is empty"),
            ("smtp://vaced@mail.example.org", "no password"),
            (
                "smtp://:pw@mail.example.org",
                "user name before `@` is empty",
            ),
            ("smtp://u:p%zz@mail.example.org", "two hex digits"),
            ("smtp://mail.example.org/ehlo", "path"),
            ("smtp://[::1", "closing `]`"),
        ];
        for (url, reason) in cases {
            let err = SmtpSettings::from_url(url, None)
                .expect_err(url)
                .to_string();
            assert!(err.contains(reason), "{url}: {err}");
            assert!(err.contains("smtps://user@host[:port]"), "{url}: {err}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_the_password() {
        let err = SmtpSettings::from_url("smtp://vaced:hunter2@mail.example.org?tls=x", None)
            .expect_err("bad tls")
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("vaced:<redacted>@mail.example.org"), "{err}");

        let settings = SmtpSettings::from_url("smtps://vaced:hunter2@mail.example.org", None)
            .expect("valid URL");
        let mail = MailSettings::new(Transport::Smtp(settings), "vaced <vaced@example.org>");
        let shown = format!("{mail:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn missing_or_empty_password_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nope");
        let err = SmtpSettings::from_url("smtps://vaced@mail.example.org", Some(&missing))
            .expect_err("missing file")
            .to_string();
        assert!(err.contains("nope"), "{err}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let err = SmtpSettings::from_url("smtps://vaced@mail.example.org", Some(&empty))
            .expect_err("empty file")
            .to_string();
        assert!(err.contains("empty"), "{err}");
    }
}
