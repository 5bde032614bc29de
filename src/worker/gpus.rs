//! The GPUs the daemon can give to its workers, found without CUDA (so a CPU build can
//! expand `devices = ["all"]` too): the NVIDIA driver's list in `/proc/driver/nvidia/gpus`,
//! narrowed by the daemon's own `CUDA_VISIBLE_DEVICES` when that is set, as CUDA would.

use std::path::Path;

/// Where the NVIDIA driver lists its GPUs, one folder per GPU (by PCI address). In
/// containers the NVIDIA runtime shows only the GPUs given to the container.
pub const DRIVER_GPUS_DIR: &str = "/proc/driver/nvidia/gpus";

/// The GPUs the daemon sees, in CUDA's order: `cuda:N` in the configuration is entry N.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuView {
    /// The daemon's `CUDA_VISIBLE_DEVICES`, when set.
    pub cuda_visible_devices: Option<String>,
    /// What the driver shows: the number of usable GPUs, or why it cannot be told.
    pub driver: Result<usize, String>,
}

/// One GPU a worker may be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// Its position among the GPUs the daemon sees (`cuda:N` in the configuration).
    pub ordinal: usize,
    /// Its `CUDA_VISIBLE_DEVICES` entry: a driver index (`3`) or a UUID (`GPU-…`, `MIG-…`).
    pub id: String,
}

impl Gpu {
    /// The name people see in logs, `vaced status` and report.json: `cuda:3` for the
    /// machine's GPU 3 (CUDA's numbering without `CUDA_VISIBLE_DEVICES`), or the UUID it
    /// was given by.
    pub fn label(&self) -> String {
        if self.id.bytes().all(|b| b.is_ascii_digit()) {
            format!("cuda:{}", self.id)
        } else {
            self.id.clone()
        }
    }
}

/// Why a GPU asked for is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no NVIDIA GPU was found ({reason}); list the devices explicitly, e.g. \
         devices = [\"cuda:0\", \"cuda:1\"] or --device cuda:0, or use `cpu`"
    )]
    NoGpu { reason: String },
    #[error(
        "CUDA_VISIBLE_DEVICES={env:?} in the daemon's environment hides every GPU; unset it, \
         or set it to the GPUs the daemon may use (e.g. 0,1)"
    )]
    NoneVisible { env: String },
    #[error(
        "no such GPU: {seen}, cuda:0 to cuda:{last}; use one of those or `all`",
        last = count.saturating_sub(1)
    )]
    OutOfRange {
        ordinal: usize,
        count: usize,
        /// "the driver shows 2 GPUs" or "CUDA_VISIBLE_DEVICES=2,3 shows 2 GPUs".
        seen: String,
    },
}

impl GpuView {
    /// The daemon's view: its environment and the driver's list.
    pub fn detect() -> Self {
        Self {
            cuda_visible_devices: std::env::var("CUDA_VISIBLE_DEVICES").ok(),
            driver: count_driver_gpus(Path::new(DRIVER_GPUS_DIR)),
        }
    }

    /// The entries of `CUDA_VISIBLE_DEVICES`, when set. CUDA stops at the first entry that
    /// is neither an index nor a UUID (so `-1` hides every GPU); this does the same.
    fn visible_ids(&self) -> Option<Vec<String>> {
        let env = self.cuda_visible_devices.as_deref()?;
        Some(
            env.split(',')
                .map(str::trim)
                .take_while(|id| {
                    !id.is_empty()
                        && (id.bytes().all(|b| b.is_ascii_digit())
                            || id.starts_with("GPU-")
                            || id.starts_with("MIG-"))
                })
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Every GPU the daemon sees (for `all`); an error when there is none.
    pub fn all(&self) -> Result<Vec<Gpu>, GpuError> {
        let ids: Vec<String> = match (self.visible_ids(), &self.driver) {
            (Some(ids), _) if ids.is_empty() => {
                return Err(GpuError::NoneVisible {
                    env: self.cuda_visible_devices.clone().unwrap_or_default(),
                });
            }
            (Some(ids), _) => ids,
            (None, Ok(0)) => {
                return Err(GpuError::NoGpu {
                    reason: format!("{DRIVER_GPUS_DIR} lists none"),
                });
            }
            (None, Ok(count)) => (0..*count).map(|n| n.to_string()).collect(),
            (None, Err(reason)) => {
                return Err(GpuError::NoGpu {
                    reason: reason.clone(),
                });
            }
        };
        Ok(ids
            .into_iter()
            .enumerate()
            .map(|(ordinal, id)| Gpu { ordinal, id })
            .collect())
    }

    /// The GPU `cuda:ordinal` names. Without `CUDA_VISIBLE_DEVICES` and without the driver's
    /// list (e.g. under WSL) it is taken on trust; its worker says if it cannot open it.
    pub fn get(&self, ordinal: usize) -> Result<Gpu, GpuError> {
        let (count, seen) = match (self.visible_ids(), &self.driver) {
            (Some(ids), _) => {
                if let Some(id) = ids.get(ordinal) {
                    return Ok(Gpu {
                        ordinal,
                        id: id.clone(),
                    });
                }
                let env = self.cuda_visible_devices.clone().unwrap_or_default();
                (
                    ids.len(),
                    format!("CUDA_VISIBLE_DEVICES={env:?} shows {}", gpus(ids.len())),
                )
            }
            (None, Ok(count)) if ordinal >= *count => {
                (*count, format!("the driver shows {}", gpus(*count)))
            }
            (None, _) => {
                return Ok(Gpu {
                    ordinal,
                    id: ordinal.to_string(),
                });
            }
        };
        if count == 0 {
            return Err(match self.cuda_visible_devices.clone() {
                Some(env) => GpuError::NoneVisible { env },
                None => GpuError::NoGpu {
                    reason: format!("{DRIVER_GPUS_DIR} lists none"),
                },
            });
        }
        Err(GpuError::OutOfRange {
            ordinal,
            count,
            seen,
        })
    }
}

fn gpus(count: usize) -> String {
    match count {
        1 => "1 GPU".into(),
        n => format!("{n} GPUs"),
    }
}

/// The usable GPUs in the driver's list at `dir`: one folder each, less those the driver
/// was told to leave alone (`GPU Excluded: Yes` in its `information` file, which CUDA
/// does not count either).
pub fn count_driver_gpus(dir: &Path) -> Result<usize, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!(
                "{} does not exist: is the NVIDIA driver loaded?",
                dir.display()
            )
        }
        _ => format!("cannot read {}: {e}", dir.display()),
    })?;
    let mut count = 0;
    for entry in entries.flatten() {
        let information =
            std::fs::read_to_string(entry.path().join("information")).unwrap_or_default();
        let excluded = information.lines().any(|line| {
            line.split_once(':').is_some_and(|(key, value)| {
                key.trim() == "GPU Excluded" && value.trim().eq_ignore_ascii_case("yes")
            })
        });
        if !excluded {
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the driver shows, or why it cannot be told.
    type Driver = Result<usize, &'static str>;
    /// The daemon's CUDA_VISIBLE_DEVICES, the driver, and what `all` gives.
    type AllCase = (Option<&'static str>, Driver, &'static [&'static str]);
    /// The environment, the driver, N of `cuda:N`, and its label or error.
    type GetCase = (
        Option<&'static str>,
        Driver,
        usize,
        Result<&'static str, &'static str>,
    );

    fn view(env: Option<&str>, driver: Result<usize, &str>) -> GpuView {
        GpuView {
            cuda_visible_devices: env.map(str::to_owned),
            driver: driver.map_err(str::to_owned),
        }
    }

    fn labels(gpus: Result<Vec<Gpu>, GpuError>) -> Result<Vec<String>, String> {
        gpus.map(|g| g.iter().map(Gpu::label).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn all_is_every_gpu_the_daemon_sees() {
        let missing = Err("/proc/driver/nvidia/gpus does not exist");
        let cases: &[AllCase] = &[
            (None, Ok(1), &["cuda:0"]),
            (None, Ok(4), &["cuda:0", "cuda:1", "cuda:2", "cuda:3"]),
            // CUDA_VISIBLE_DEVICES wins over the driver, even where the driver is unknown.
            (Some("2,3"), Ok(4), &["cuda:2", "cuda:3"]),
            (Some(" 5 , 7 "), missing, &["cuda:5", "cuda:7"]),
            (Some("GPU-ab12,1"), Ok(2), &["GPU-ab12", "cuda:1"]),
            // CUDA stops at the first entry it cannot read.
            (Some("0,-1,1"), Ok(2), &["cuda:0"]),
        ];
        for (env, driver, expected) in cases {
            let got = labels(view(*env, *driver).all());
            let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            assert_eq!(got, Ok(expected), "{env:?} {driver:?}");
        }
    }

    #[test]
    fn all_without_gpus_says_so_and_what_to_do() {
        let cases: &[(Option<&str>, Result<usize, &str>, &str)] = &[
            (
                None,
                Ok(0),
                "no NVIDIA GPU was found (/proc/driver/nvidia/gpus lists none)",
            ),
            (
                None,
                Err("/proc/driver/nvidia/gpus does not exist"),
                "no NVIDIA GPU was found",
            ),
            (
                Some(""),
                Ok(2),
                "CUDA_VISIBLE_DEVICES=\"\" in the daemon's environment hides",
            ),
            (Some("-1"), Ok(2), "CUDA_VISIBLE_DEVICES=\"-1\""),
        ];
        for (env, driver, message) in cases {
            let err = labels(view(*env, *driver).all()).unwrap_err();
            assert!(err.contains(message), "{env:?} {driver:?}: {err}");
        }
        let err = labels(view(None, Ok(0)).all()).unwrap_err();
        assert!(err.contains("list the devices explicitly"), "{err}");
    }

    #[test]
    fn cuda_n_goes_through_cuda_visible_devices() {
        let cases: &[GetCase] = &[
            (None, Ok(2), 1, Ok("cuda:1")),
            (None, Err("no driver list"), 6, Ok("cuda:6")),
            (Some("4,6"), Ok(8), 1, Ok("cuda:6")),
            (Some("GPU-ab12"), Ok(8), 0, Ok("GPU-ab12")),
            (
                None,
                Ok(2),
                2,
                Err("no such GPU: the driver shows 2 GPUs, cuda:0 to cuda:1; use one of those"),
            ),
            (
                Some("4,6"),
                Ok(8),
                2,
                Err("no such GPU: CUDA_VISIBLE_DEVICES=\"4,6\" shows 2 GPUs, cuda:0 to cuda:1"),
            ),
            (None, Ok(0), 0, Err("no NVIDIA GPU was found")),
            (Some(""), Ok(8), 0, Err("hides every GPU")),
        ];
        for (env, driver, ordinal, expected) in cases {
            let got = view(*env, *driver).get(*ordinal);
            match (got, expected) {
                (Ok(gpu), Ok(label)) => assert_eq!(gpu.label(), *label),
                (Err(e), Err(message)) => {
                    assert!(e.to_string().contains(message), "{ordinal}: {e}")
                }
                (got, _) => panic!("{env:?} {driver:?} cuda:{ordinal}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_driver_list_counts_usable_gpus() {
        let dir = tempfile::TempDir::new().unwrap();
        let info = |name: &str, excluded: &str| {
            let gpu = dir.path().join(name);
            std::fs::create_dir(&gpu).unwrap();
            let text = format!(
                "Model: \t\t NVIDIA H200\nBus Location: \t {name}\nDevice Minor: \t 0\nGPU Excluded:\t {excluded}\n"
            );
            std::fs::write(gpu.join("information"), text).unwrap();
        };
        assert_eq!(count_driver_gpus(dir.path()), Ok(0));
        info("0000:00:06.0", "No");
        info("0000:00:07.0", "No");
        info("0000:00:08.0", "Yes");
        assert_eq!(count_driver_gpus(dir.path()), Ok(2));
        let err = count_driver_gpus(&dir.path().join("absent")).unwrap_err();
        assert!(
            err.contains("does not exist: is the NVIDIA driver loaded?"),
            "{err}"
        );
    }
}
