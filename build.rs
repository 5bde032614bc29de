//! Records the versions of key dependencies from Cargo.lock, for run reports; for
//! `--features cuda` builds, compiles the fused attention kernels (kernels/*.py, Triton).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"candle-core\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=VACED_CANDLE_VERSION={version}");

    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        attention_kernels(&out_dir);
    }
}

/// Runs kernels/flash_attention.py with the Python that has Triton (`VACED_TRITON_PYTHON`,
/// set by scripts/build-cuda, else `python3`) for `CUDA_COMPUTE_CAP` (default 90). Without
/// Triton the table is empty and attention takes the portable path, with a warning.
fn attention_kernels(out_dir: &Path) {
    let script = "kernels/flash_attention.py";
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rerun-if-env-changed=VACED_TRITON_PYTHON");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let python = std::env::var("VACED_TRITON_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let arch = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".to_owned());
    let kernels_dir = out_dir.join("attention");
    let status = Command::new(&python)
        .arg(script)
        .arg(&kernels_dir)
        .arg(&arch)
        .status();
    let table = kernels_dir.join("attention_kernels.rs");
    let generated = out_dir.join("attention_kernels.rs");
    match status {
        Ok(s) if s.success() && table.exists() => {
            std::fs::copy(&table, &generated).expect("copy the kernel table into OUT_DIR");
        }
        outcome => {
            println!(
                "cargo:warning=fused attention kernels not built ({python} {script}: {outcome:?}); \
                 attention uses the portable path. Install triton==3.6.0 for that Python or set \
                 VACED_TRITON_PYTHON (scripts/build-cuda does both)."
            );
            std::fs::write(&generated, "pub const KERNELS: &[KernelImage] = &[];\n")
                .expect("write the empty kernel table");
        }
    }
}
