//! Where each worker runs: the configuration's `devices` turned into one placement per
//! worker when the daemon starts (`all` becomes one per GPU the daemon sees). A GPU worker
//! is started with `CUDA_VISIBLE_DEVICES` naming its own GPU alone and opens it as
//! `cuda:0`, so it cannot allocate on another worker's GPU; it still reports the GPU by its
//! real name, so logs, `vaced status` and report.json say which card ran a job.

use super::gpus::{Gpu, GpuError, GpuView};
use crate::config::{DeviceList, DeviceSpec};

/// How to start one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Unique among the workers; shown in logs, `vaced status` and job records: `cuda:3`,
    /// `cpu`, or `cpu#2` when several CPU workers run.
    pub name: String,
    /// The `--device` the worker opens: `cpu`, or `cuda:0` (the one GPU it can see).
    pub device: String,
    /// The device the worker reports (its `ready` message, report.json): `cpu` or `cuda:3`.
    pub device_label: String,
    /// `CUDA_VISIBLE_DEVICES` for the worker; `None` leaves the daemon's as it is.
    pub cuda_visible_devices: Option<String>,
}

/// Why the workers cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct PlacementError {
    /// Where the list was written ("`devices` in FILE", "--device").
    pub origin: String,
    pub problem: PlacementProblem,
}

/// What is wrong with the list on this machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementProblem {
    #[error("{spec}: {source}")]
    Gpu { spec: DeviceSpec, source: GpuError },
    #[error(
        "cuda:{first} and cuda:{second} are the same GPU ({gpu}) through CUDA_VISIBLE_DEVICES={env:?}; \
         give each GPU one worker"
    )]
    SameGpu {
        first: usize,
        second: usize,
        gpu: String,
        env: String,
    },
}

impl Placement {
    fn gpu(gpu: &Gpu) -> Self {
        Self {
            name: gpu.label(),
            device: "cuda:0".into(),
            device_label: gpu.label(),
            cuda_visible_devices: Some(gpu.id.clone()),
        }
    }
}

/// One placement per worker, in the list's order: `all` expands where it stands.
pub fn place(devices: &DeviceList, gpus: &GpuView) -> Result<Vec<Placement>, PlacementError> {
    let fail = |problem| PlacementError {
        origin: devices.origin.clone(),
        problem,
    };
    let cpus = devices
        .specs
        .iter()
        .filter(|s| **s == DeviceSpec::Cpu)
        .count();
    let mut placed: Vec<Placement> = Vec::with_capacity(devices.specs.len());
    let mut placed_gpus: Vec<Gpu> = Vec::new();
    for &spec in &devices.specs {
        let new_gpus = match spec {
            DeviceSpec::Cpu => {
                let name = if cpus > 1 {
                    let n = placed.iter().filter(|p| p.device == "cpu").count() + 1;
                    format!("cpu#{n}")
                } else {
                    "cpu".into()
                };
                placed.push(Placement {
                    name,
                    device: "cpu".into(),
                    device_label: "cpu".into(),
                    cuda_visible_devices: None,
                });
                continue;
            }
            DeviceSpec::Cuda(ordinal) => vec![gpus.get(ordinal)],
            DeviceSpec::AllGpus => match gpus.all() {
                Ok(all) => all.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            },
        };
        for gpu in new_gpus {
            let gpu = gpu.map_err(|source| fail(PlacementProblem::Gpu { spec, source }))?;
            // Two config entries reaching one card through CUDA_VISIBLE_DEVICES (e.g. `3,3`)
            // would make two workers share its memory.
            if let Some(twin) = placed_gpus.iter().find(|g| g.id == gpu.id) {
                return Err(fail(PlacementProblem::SameGpu {
                    first: twin.ordinal,
                    second: gpu.ordinal,
                    gpu: gpu.label(),
                    env: gpus.cuda_visible_devices.clone().unwrap_or_default(),
                }));
            }
            placed.push(Placement::gpu(&gpu));
            placed_gpus.push(gpu);
        }
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place_on(
        entries: &[&str],
        env: Option<&str>,
        driver: Result<usize, &str>,
    ) -> Result<Vec<Placement>, String> {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        let devices = DeviceList::parse(&entries, "`devices` in /etc/vaced/vaced.toml")
            .map_err(|e| e.to_string())?;
        let gpus = GpuView {
            cuda_visible_devices: env.map(str::to_owned),
            driver: driver.map_err(str::to_owned),
        };
        place(&devices, &gpus).map_err(|e| e.to_string())
    }

    /// (name, --device, reported device, CUDA_VISIBLE_DEVICES) of each worker.
    fn summary(placed: &[Placement]) -> Vec<(String, String, String, Option<String>)> {
        placed
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.device.clone(),
                    p.device_label.clone(),
                    p.cuda_visible_devices.clone(),
                )
            })
            .collect()
    }

    fn worker(
        name: &str,
        device: &str,
        label: &str,
        cvd: Option<&str>,
    ) -> (String, String, String, Option<String>) {
        (
            name.into(),
            device.into(),
            label.into(),
            cvd.map(str::to_owned),
        )
    }

    #[test]
    fn each_gpu_worker_sees_only_its_gpu_and_keeps_its_name() {
        let none = Err("/proc/driver/nvidia/gpus does not exist");
        let cases = [
            (
                &["cpu"][..],
                None,
                none,
                vec![worker("cpu", "cpu", "cpu", None)],
            ),
            (
                &["cpu", "cpu", "cpu"],
                None,
                none,
                vec![
                    worker("cpu#1", "cpu", "cpu", None),
                    worker("cpu#2", "cpu", "cpu", None),
                    worker("cpu#3", "cpu", "cpu", None),
                ],
            ),
            (
                &["all"],
                None,
                Ok(2),
                vec![
                    worker("cuda:0", "cuda:0", "cuda:0", Some("0")),
                    worker("cuda:1", "cuda:0", "cuda:1", Some("1")),
                ],
            ),
            (
                &["cuda:3", "cpu"],
                None,
                Ok(4),
                vec![
                    worker("cuda:3", "cuda:0", "cuda:3", Some("3")),
                    worker("cpu", "cpu", "cpu", None),
                ],
            ),
            // The daemon's CUDA_VISIBLE_DEVICES maps its cuda:N onto the machine's GPUs.
            (
                &["all", "cpu", "cpu"],
                Some("2,5"),
                Ok(8),
                vec![
                    worker("cuda:2", "cuda:0", "cuda:2", Some("2")),
                    worker("cuda:5", "cuda:0", "cuda:5", Some("5")),
                    worker("cpu#1", "cpu", "cpu", None),
                    worker("cpu#2", "cpu", "cpu", None),
                ],
            ),
            (
                &["cuda:1"],
                Some("GPU-aa,GPU-bb"),
                Ok(2),
                vec![worker("GPU-bb", "cuda:0", "GPU-bb", Some("GPU-bb"))],
            ),
        ];
        for (entries, env, driver, expected) in cases {
            let placed =
                place_on(entries, env, driver).unwrap_or_else(|e| panic!("{entries:?}: {e}"));
            assert_eq!(summary(&placed), expected, "{entries:?} {env:?}");
        }
    }

    #[test]
    fn gpus_that_are_not_there_or_twice_are_refused_with_the_list_named() {
        // The devices, the daemon's CUDA_VISIBLE_DEVICES, the driver, and the message.
        type Case = (
            &'static [&'static str],
            Option<&'static str>,
            Result<usize, &'static str>,
            &'static str,
        );
        let cases: &[Case] = &[
            (&["all"], None, Ok(0), "all: no NVIDIA GPU was found"),
            (
                &["cpu", "all"],
                None,
                Err("/proc/driver/nvidia/gpus does not exist: is the NVIDIA driver loaded?"),
                "all: no NVIDIA GPU was found (/proc/driver/nvidia/gpus does not exist",
            ),
            (
                &["all"],
                Some(""),
                Ok(2),
                "all: CUDA_VISIBLE_DEVICES=\"\" in the daemon's environment hides every GPU",
            ),
            (
                &["cuda:2"],
                None,
                Ok(2),
                "cuda:2: no such GPU: the driver shows 2 GPUs, cuda:0 to cuda:1",
            ),
            (
                &["cuda:0", "cuda:1"],
                Some("3,3"),
                Ok(4),
                "cuda:0 and cuda:1 are the same GPU (cuda:3)",
            ),
            (
                &["all"],
                Some("1,1"),
                Ok(4),
                "cuda:0 and cuda:1 are the same GPU (cuda:1)",
            ),
        ];
        for (entries, env, driver, message) in cases {
            let err = place_on(entries, *env, *driver).unwrap_err();
            assert!(
                err.starts_with("`devices` in /etc/vaced/vaced.toml: ") && err.contains(message),
                "{entries:?} {env:?}: {err}"
            );
        }
    }
}
