//! The daemon's configuration: `vaced.toml` (every key optional, unknown keys refused),
//! command-line overrides for the common keys, validated into [`Config`] with absolute
//! paths and parsed durations. `config/vaced.toml` is the documented example.

mod devices;
mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use devices::{DeviceList, DeviceListError, DeviceSpec};
pub use raw::{RawConfig, RawInbox, RawMail};

use crate::manifest::ModelName;

/// Default interval between inbox scans.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default quiet time after which an unfinished-looking folder counts as copied.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(30);
/// Default attempts a job gets before it is failed.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot read the configuration: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("configuration: {0}")]
    Invalid(String),
    #[error(transparent)]
    Devices(#[from] DeviceListError),
}

/// One inbox folder.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxConfig {
    pub path: PathBuf,
    pub poll_interval: Duration,
    pub settle: Duration,
    /// Told about every job from this inbox.
    pub notify: Vec<String>,
}

/// Where e-mail goes.
#[derive(Debug, Clone, PartialEq)]
pub enum MailTarget {
    /// `smtp://…` or `smtps://…` URL.
    Smtp {
        url: String,
        password_file: Option<PathBuf>,
    },
    /// A folder receiving one `.eml` file per message.
    Spool(PathBuf),
    Disabled,
}

/// Mail settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MailConfig {
    pub target: MailTarget,
    pub from: String,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// A model the daemon can run: `tiny`/preset (built in) or a checkpoint folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The `--model` style source: a preset name or a folder path.
    pub source: String,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub state_dir: PathBuf,
    pub outbox: PathBuf,
    pub failed: PathBuf,
    pub inboxes: Vec<InboxConfig>,
    /// One worker per device (`cpu`, `cuda:0`, …, or `all` GPUs, expanded at start).
    pub devices: DeviceList,
    /// Models by the name jobs use.
    pub models: BTreeMap<ModelName, ModelConfig>,
    /// The model of jobs that name none.
    pub default_model: ModelName,
    pub max_attempts: u32,
    pub start_paused: bool,
    pub mail: MailConfig,
    /// Lines of a failed job's log copied into its `error.json`.
    pub log_tail_lines: usize,
    /// Annotator weights for preprocessing tasks (`annotators`, VACE-Annotators layout).
    pub annotators: Option<PathBuf>,
}

/// Overrides given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub inboxes: Vec<PathBuf>,
    pub outbox: Option<PathBuf>,
    pub failed: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub model: Option<String>,
    pub devices: Vec<String>,
    pub poll_interval: Option<Duration>,
    pub settle: Option<Duration>,
    pub smtp: Option<String>,
    pub annotators: Option<PathBuf>,
}

/// Parses `5s`, `2m`, `1h30m` (humantime).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 5s, 2m, 1h"))
}

fn absolute(path: &Path, base: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn read(path: &Path) -> Result<RawConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut raw: RawConfig = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        raw.file = Some(path.to_owned());
        Ok(raw)
    }

    /// Validates a raw configuration with command-line overrides; relative paths are taken
    /// from `base` (the config file's folder, or the working directory).
    pub fn build(raw: RawConfig, overrides: &Overrides, base: &Path) -> Result<Self, Error> {
        let invalid = |m: String| Error::Invalid(m);
        let path_of =
            |o: &Option<PathBuf>, r: &Option<PathBuf>, key: &str| -> Result<PathBuf, Error> {
                o.clone()
                    .or_else(|| r.clone())
                    .map(|p| absolute(&p, base))
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "`{key}` is not set; give it in the config file or with --{key}"
                        ))
                    })
            };
        let state_dir = path_of(&overrides.state_dir, &raw.state_dir, "state")?;
        let outbox = path_of(&overrides.outbox, &raw.outbox, "outbox")?;
        let failed = path_of(&overrides.failed, &raw.failed, "failed")?;

        let duration =
            |value: &Option<String>, key: &str, default: Duration| -> Result<Duration, Error> {
                value.as_deref().map_or(Ok(default), |v| {
                    parse_duration(v).map_err(|e| invalid(format!("`{key}`: {e}")))
                })
            };
        let mut inboxes = Vec::new();
        let raw_inboxes: Vec<RawInbox> = if overrides.inboxes.is_empty() {
            raw.inbox.clone()
        } else {
            overrides
                .inboxes
                .iter()
                .map(|p| RawInbox {
                    path: Some(p.clone()),
                    ..RawInbox::default()
                })
                .collect()
        };
        for (i, inbox) in raw_inboxes.iter().enumerate() {
            let path = inbox
                .path
                .as_ref()
                .map(|p| absolute(p, base))
                .ok_or_else(|| invalid(format!("`inbox[{i}].path` is not set")))?;
            let poll_interval = match overrides.poll_interval {
                Some(d) => d,
                None => duration(
                    &inbox.poll_interval,
                    "inbox.poll_interval",
                    DEFAULT_POLL_INTERVAL,
                )?,
            };
            let settle = match overrides.settle {
                Some(d) => d,
                None => duration(&inbox.settle, "inbox.settle", DEFAULT_SETTLE)?,
            };
            inboxes.push(InboxConfig {
                path,
                poll_interval,
                settle,
                notify: inbox.notify.clone(),
            });
        }
        if inboxes.is_empty() {
            return Err(invalid(
                "no inbox: add an [[inbox]] with a `path`, or pass --inbox DIR".into(),
            ));
        }
        for (i, a) in inboxes.iter().enumerate() {
            for b in &inboxes[i + 1..] {
                if a.path == b.path {
                    return Err(invalid(format!(
                        "inbox {} is listed twice",
                        a.path.display()
                    )));
                }
            }
            for (other, key) in [
                (&outbox, "outbox"),
                (&failed, "failed"),
                (&state_dir, "state"),
            ] {
                if other.starts_with(&a.path) || a.path.starts_with(other) {
                    return Err(invalid(format!(
                        "inbox {} and {key} {} overlap; keep them in separate folders",
                        a.path.display(),
                        other.display()
                    )));
                }
            }
        }

        let devices = if !overrides.devices.is_empty() {
            DeviceList::parse(&overrides.devices, "--device")?
        } else {
            let origin = match &raw.file {
                Some(file) => format!("`devices` in {}", file.display()),
                None => "`devices`".to_owned(),
            };
            DeviceList::parse(&raw.devices, &origin)?
        };

        let mut models = BTreeMap::new();
        models.insert(
            ModelName::Tiny,
            ModelConfig {
                source: "tiny".into(),
            },
        );
        for (name, source) in &raw.models.paths {
            let name = parse_model_name(name)?;
            let path = absolute(Path::new(source), base);
            models.insert(
                name,
                ModelConfig {
                    source: path.to_string_lossy().into_owned(),
                },
            );
        }
        let mut default_model = match &raw.models.default {
            Some(name) => parse_model_name(name)?,
            None => ModelName::Vace1_3b,
        };
        if let Some(source) = &overrides.model {
            default_model = match source.as_str() {
                "tiny" => ModelName::Tiny,
                folder => {
                    let dir = crate::engine::checkpoint::ModelDir::open(&absolute(
                        Path::new(folder),
                        base,
                    ))
                    .map_err(|e| invalid(format!("--model: {e}")))?;
                    let name = match dir.preset_name() {
                        Some("vace-14b") => ModelName::Vace14b,
                        _ => ModelName::Vace1_3b,
                    };
                    models.insert(
                        name,
                        ModelConfig {
                            source: dir.root().to_string_lossy().into_owned(),
                        },
                    );
                    name
                }
            };
        }
        if !models.contains_key(&default_model) {
            return Err(invalid(format!(
                "the default model {} has no folder; add `\"{}\" = \"/path/to/Wan2.1-VACE\"` under [models] or pass --model",
                default_model.as_str(),
                default_model.as_str()
            )));
        }

        let mail = raw.mail.clone().unwrap_or_default();
        let target = match (overrides.smtp.clone().or(mail.smtp), mail.spool) {
            (Some(url), _) => MailTarget::Smtp {
                url,
                password_file: mail.password_file.map(|p| absolute(&p, base)),
            },
            (None, Some(spool)) => MailTarget::Spool(absolute(&spool, base)),
            (None, None) => MailTarget::Disabled,
        };
        let mail = MailConfig {
            target,
            from: mail
                .from
                .unwrap_or_else(|| "vaced <vaced@localhost>".into()),
            retry_initial: duration(
                &mail.retry_initial,
                "mail.retry_initial",
                Duration::from_secs(30),
            )?,
            retry_max: duration(&mail.retry_max, "mail.retry_max", Duration::from_secs(900))?,
        };
        let max_attempts = raw.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 {
            return Err(invalid("`max_attempts` must be at least 1".into()));
        }
        Ok(Self {
            state_dir,
            outbox,
            failed,
            inboxes,
            devices,
            models,
            default_model,
            max_attempts,
            start_paused: raw.start_paused.unwrap_or(false),
            mail,
            log_tail_lines: raw.log_tail_lines.unwrap_or(200),
            annotators: overrides
                .annotators
                .clone()
                .or(raw.annotators)
                .map(|p| absolute(&p, base)),
        })
    }
}

fn parse_model_name(name: &str) -> Result<ModelName, Error> {
    match name {
        "vace-1.3b" => Ok(ModelName::Vace1_3b),
        "vace-14b" => Ok(ModelName::Vace14b),
        "tiny" => Ok(ModelName::Tiny),
        other => Err(Error::Invalid(format!(
            "model `{other}`: use vace-1.3b, vace-14b or tiny"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str, overrides: &Overrides) -> Result<Config, Error> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| Error::Invalid(e.to_string()))?;
        Config::build(raw, overrides, Path::new("/srv"))
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vaced.toml");
        let raw = Config::read(&path).unwrap();
        let config = Config::build(raw, &Overrides::default(), Path::new("/")).unwrap();
        assert_eq!(config.inboxes.len(), 2);
        assert_eq!(config.inboxes[0].poll_interval, Duration::from_secs(5));
    }

    #[test]
    fn overrides_replace_the_file_and_defaults_fill_the_rest() {
        let text = r#"
            state_dir = "state"
            outbox = "out"
            failed = "failed"
            [models]
            default = "tiny"
            [[inbox]]
            path = "in"
            settle = "10s"
        "#;
        let c = build(text, &Overrides::default()).unwrap();
        assert_eq!(c.inboxes[0].path, Path::new("/srv/in"));
        assert_eq!(
            (c.inboxes[0].poll_interval, c.inboxes[0].settle),
            (DEFAULT_POLL_INTERVAL, Duration::from_secs(10))
        );
        assert_eq!(c.devices.specs, [DeviceSpec::Cpu]);
        assert_eq!(c.mail.target, MailTarget::Disabled);
        let o = Overrides {
            inboxes: vec!["/a".into(), "/b".into()],
            settle: Some(Duration::from_secs(2)),
            smtp: Some("smtp://localhost:2525".into()),
            devices: vec!["cuda:0".into(), "cuda:1".into()],
            ..Overrides::default()
        };
        let c = build(text, &o).unwrap();
        assert_eq!(c.inboxes.len(), 2);
        assert_eq!(c.inboxes[1].settle, Duration::from_secs(2));
        assert_eq!(c.devices.specs, [DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]);
        assert_eq!(c.devices.origin, "--device");
        assert!(matches!(c.mail.target, MailTarget::Smtp { .. }));
    }

    #[test]
    fn a_device_mistake_names_the_file_or_the_flag() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("vaced.toml");
        let text = "devices = [\"all\", \"cuda:1\"]\nstate_dir = \"s\"\noutbox = \"o\"\nfailed = \"f\"\n[models]\ndefault = \"tiny\"\n[[inbox]]\npath = \"i\"\n";
        std::fs::write(&path, text).unwrap();
        let build = |overrides: &Overrides| {
            let raw = Config::read(&path).unwrap();
            Config::build(raw, overrides, dir.path())
                .unwrap_err()
                .to_string()
        };
        let err = build(&Overrides::default());
        let expected = format!(
            "`devices` in {}: `all` already includes cuda:1; list either `all` or single GPUs",
            path.display()
        );
        assert!(err.starts_with(&expected), "{err}");
        let flags = Overrides {
            devices: vec!["cuda:0".into(), "cpu".into(), "cuda:0".into()],
            ..Overrides::default()
        };
        let err = build(&flags);
        assert!(err.starts_with("--device: cuda:0 is listed twice"), "{err}");
    }

    #[test]
    fn mistakes_are_named() {
        let base =
            "state_dir = \"s\"\noutbox = \"o\"\nfailed = \"f\"\n[models]\ndefault = \"tiny\"\n";
        let cases = [
            (base.to_owned(), "no inbox"),
            (
                format!("{base}[[inbox]]\npath = \"i\"\npoll_interval = \"soon\"\n"),
                "not a duration",
            ),
            (
                format!("devices = [\"gpu0\"]\n{base}[[inbox]]\npath = \"i\"\n"),
                "cuda:N",
            ),
            (format!("{base}[[inbox]]\npath = \"o/in\"\n"), "overlap"),
            (
                "outbox = \"o\"\nfailed = \"f\"\n[[inbox]]\npath = \"i\"\n".to_owned(),
                "`state` is not set",
            ),
            (
                format!("{base}[[inbox]]\npath = \"i\"\ncolour = 1\n"),
                "unknown field",
            ),
        ];
        for (text, reason) in cases {
            let err = build(&text, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(reason), "{reason}: {err}");
        }
        let err = build(
            "state_dir = \"s\"\noutbox = \"o\"\nfailed = \"f\"\n[[inbox]]\npath = \"i\"\n",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("vace-1.3b has no folder"), "{err}");
    }
}
