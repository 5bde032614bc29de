//! The `devices` key (or `--device`): which workers the daemon starts. `cpu` may repeat,
//! one worker each; a GPU is `cuda:N`, listed once, or `all` for one worker per GPU the
//! daemon can see. `all` is expanded when the daemon starts (`worker::placement`), so a
//! configuration stays valid when GPUs are added.

use std::fmt;

/// One entry of `devices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    Cpu,
    /// `cuda:N`: the N-th GPU the daemon sees (the N-th entry of its `CUDA_VISIBLE_DEVICES`
    /// when that is set, as CUDA counts).
    Cuda(usize),
    /// `all`: every GPU the daemon sees.
    AllGpus,
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::AllGpus => f.write_str("all"),
        }
    }
}

/// The checked `devices` list and where it was written, for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceList {
    pub specs: Vec<DeviceSpec>,
    /// "`devices` in /etc/vaced/vaced.toml", "--device", or "the default `devices`".
    pub origin: String,
}

/// A `devices` list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct DeviceListError {
    pub origin: String,
    pub problem: String,
}

impl DeviceList {
    /// Parses and checks `entries`; an empty list means one CPU worker.
    pub fn parse(entries: &[String], origin: &str) -> Result<Self, DeviceListError> {
        let fail = |problem: String| DeviceListError {
            origin: origin.to_owned(),
            problem,
        };
        if entries.is_empty() {
            return Ok(Self {
                specs: vec![DeviceSpec::Cpu],
                origin: "the default `devices`".into(),
            });
        }
        let mut specs = Vec::with_capacity(entries.len());
        for entry in entries {
            let spec = parse_spec(entry).ok_or_else(|| {
                fail(format!(
                    "`{entry}` is not a device; use `cpu`, `cuda:N` (e.g. cuda:0) or `all` (every GPU)"
                ))
            })?;
            if spec != DeviceSpec::Cpu && specs.contains(&spec) {
                return Err(fail(match spec {
                    DeviceSpec::AllGpus => "`all` is listed twice; once covers every GPU".into(),
                    _ => format!(
                        "{spec} is listed twice; a GPU gets one worker, so list it once \
                         (repeat `cpu` for several CPU workers)"
                    ),
                }));
            }
            specs.push(spec);
        }
        if specs.contains(&DeviceSpec::AllGpus)
            && let Some(gpu) = specs.iter().find(|s| matches!(s, DeviceSpec::Cuda(_)))
        {
            return Err(fail(format!(
                "`all` already includes {gpu}; list either `all` or single GPUs, not both"
            )));
        }
        Ok(Self {
            specs,
            origin: origin.to_owned(),
        })
    }

    /// Whether any worker needs a GPU.
    pub fn has_gpus(&self) -> bool {
        self.specs.iter().any(|s| *s != DeviceSpec::Cpu)
    }
}

/// `cpu`, `cuda:N` or `all`; `None` for anything else.
fn parse_spec(text: &str) -> Option<DeviceSpec> {
    match text {
        "cpu" => Some(DeviceSpec::Cpu),
        "all" => Some(DeviceSpec::AllGpus),
        _ => text
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .map(DeviceSpec::Cuda),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceSpec::{AllGpus, Cpu, Cuda};

    fn parse(entries: &[&str]) -> Result<Vec<DeviceSpec>, String> {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        DeviceList::parse(&entries, "`devices` in /etc/vaced/vaced.toml")
            .map(|list| list.specs)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn good_lists_parse() {
        let cases: &[(&[&str], &[DeviceSpec])] = &[
            (&[], &[Cpu]),
            (&["cpu"], &[Cpu]),
            (&["cpu", "cpu", "cpu"], &[Cpu, Cpu, Cpu]),
            (&["cuda:0", "cuda:1"], &[Cuda(0), Cuda(1)]),
            (&["all"], &[AllGpus]),
            (&["all", "cpu"], &[AllGpus, Cpu]),
            (&["cuda:3", "cpu"], &[Cuda(3), Cpu]),
        ];
        for (entries, specs) in cases {
            assert_eq!(parse(entries).as_deref(), Ok(*specs), "{entries:?}");
        }
    }

    #[test]
    fn mistakes_name_the_list_and_say_what_to_do() {
        let cases: &[(&[&str], &str)] = &[
            (&["gpu0"], "`gpu0` is not a device; use `cpu`, `cuda:N`"),
            (&["cuda:x"], "`cuda:x` is not a device"),
            (&["CUDA:0"], "`CUDA:0` is not a device"),
            (
                &["cuda:1", "cuda:1"],
                "cuda:1 is listed twice; a GPU gets one worker",
            ),
            (&["all", "all"], "`all` is listed twice"),
            (
                &["all", "cuda:1"],
                "`all` already includes cuda:1; list either",
            ),
            (&["cuda:0", "cpu", "all"], "`all` already includes cuda:0"),
        ];
        for (entries, message) in cases {
            let err = parse(entries).unwrap_err();
            assert!(
                err.starts_with("`devices` in /etc/vaced/vaced.toml: ") && err.contains(message),
                "{entries:?}: {err}"
            );
        }
    }

    #[test]
    fn specs_print_as_written() {
        for text in ["cpu", "cuda:7", "all"] {
            assert_eq!(
                parse_spec(text).map(|s| s.to_string()).as_deref(),
                Some(text)
            );
        }
    }
}
