//! The wire end of the outbox: lettre's pooled async SMTP transport or its `.eml` file
//! transport, and the rule that sorts delivery errors into "retry later" and "drop now".
//! Only a permanent (5xx) answer about the message or a recipient drops a mail; anything
//! about the connection, the server or our credentials is retried.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Error, Security, Transport};

/// How long connecting, and each SMTP command, may take.
const SMTP_TIMEOUT_SECS: u64 = 30;

/// A built transport.
pub(super) enum Sender {
    /// Pooled SMTP connections to `server` (`host:port`).
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        server: String,
    },
    /// `<uuid>.eml` files in `dir`.
    Spool {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

/// What to do with a notification whose delivery failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Try again later; `whole_queue` when the failure is not about this message (server
    /// down, bad credentials), so the rest of the queue waits too instead of failing alike.
    Retry { whole_queue: bool },
    /// The server will never accept it; trying again cannot help.
    Drop,
}

impl Sender {
    /// Builds the transport; `None` when mail is disabled. Must run inside the runtime,
    /// since lettre's connection pool spawns its cleanup task on creation.
    pub fn new(transport: &Transport) -> Result<Option<Self>, Error> {
        Ok(Some(match transport {
            Transport::Disabled => return Ok(None),
            Transport::Spool(dir) => Sender::Spool {
                transport: AsyncFileTransport::new(dir),
                dir: dir.clone(),
            },
            Transport::Smtp(smtp) => {
                let server = smtp.server();
                let tls_parameters = || {
                    TlsParameters::new(smtp.host.clone()).map_err(|source| Error::Smtp {
                        server: server.clone(),
                        source,
                    })
                };
                let tls = match smtp.security {
                    Security::None => Tls::None,
                    Security::StartTls => Tls::Required(tls_parameters()?),
                    Security::Tls => Tls::Wrapper(tls_parameters()?),
                };
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
                        .port(smtp.port)
                        .tls(tls)
                        .timeout(Some(Duration::from_secs(SMTP_TIMEOUT_SECS)));
                if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Sender::Smtp {
                    transport: builder.build(),
                    server,
                }
            }
        }))
    }

    /// Hands one message to the server or writes it into the spool folder.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        match self {
            Sender::Smtp { transport, server } => {
                transport
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|source| Error::Smtp {
                        server: server.clone(),
                        source,
                    })
            }
            Sender::Spool { transport, dir } => {
                transport
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|source| Error::Spool {
                        dir: dir.clone(),
                        source,
                    })
            }
        }
    }

    /// Closes pooled SMTP connections politely (QUIT).
    pub async fn shutdown(&self) {
        match self {
            Sender::Smtp { transport, .. } => transport.shutdown().await,
            Sender::Spool { transport, .. } => transport.shutdown().await,
        }
    }

    /// Where mail goes, for logs.
    pub fn describe(&self) -> String {
        match self {
            Sender::Smtp { server, .. } => format!("smtp {server}"),
            Sender::Spool { dir, .. } => format!("spool {}", dir.display()),
        }
    }
}

/// Sorts a delivery error.
pub(super) fn classify(error: &Error) -> Verdict {
    match error {
        Error::Smtp { source, .. } => {
            let Some(code) = source.status() else {
                // lettre's own refusals (e.g. a non-ASCII address the server cannot take)
                // concern this message; network, TLS and timeouts concern the server.
                return Verdict::Retry {
                    whole_queue: !source.is_client(),
                };
            };
            match code.to_string().parse::<u16>().unwrap_or(0) {
                // Service unavailable, auth failures and protocol-level refusals: the
                // server or our configuration, not this message.
                421 | 454 | 500 | 502 | 503 | 504 | 530 | 534 | 535 | 538 => {
                    Verdict::Retry { whole_queue: true }
                }
                400..=499 => Verdict::Retry { whole_queue: false },
                _ => Verdict::Drop,
            }
        }
        // A stored notification that no longer builds will never build.
        Error::Address { .. } | Error::Message { .. } => Verdict::Drop,
        _ => Verdict::Retry { whole_queue: true },
    }
}
