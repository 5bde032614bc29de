//! The configuration file as written: every key optional, unknown keys refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// `vaced.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub state_dir: Option<PathBuf>,
    pub outbox: Option<PathBuf>,
    pub failed: Option<PathBuf>,
    #[serde(default)]
    pub devices: Vec<String>,
    pub max_attempts: Option<u32>,
    pub start_paused: Option<bool>,
    pub log_tail_lines: Option<usize>,
    #[serde(default)]
    pub inbox: Vec<RawInbox>,
    #[serde(default)]
    pub models: RawModels,
    pub mail: Option<RawMail>,
    /// The annotator weights folder (VACE-Annotators layout).
    pub annotators: Option<PathBuf>,
    /// The file this was read from (not a key), so that messages can name it.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// One `[[inbox]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInbox {
    pub path: Option<PathBuf>,
    pub poll_interval: Option<String>,
    pub settle: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
}

/// `[models]`: `default = "vace-1.3b"` and one `"name" = "/folder"` per model.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawModels {
    pub default: Option<String>,
    #[serde(flatten)]
    pub paths: BTreeMap<String, String>,
}

/// `[mail]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    pub smtp: Option<String>,
    pub password_file: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub from: Option<String>,
    pub retry_initial: Option<String>,
    pub retry_max: Option<String>,
}
