//! Records the versions of key dependencies from Cargo.lock, for run reports; for
//! `--features cuda` builds, compiles the CUDA kernels written in Triton (kernels/*.py).

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
        triton_kernels(&out_dir);
    }
}

/// Runs kernels/compile.py with the Python that has Triton (`VACED_TRITON_PYTHON`, set by
/// scripts/build-cuda, else `python3`) for `CUDA_COMPUTE_CAP` (default 90). Without Triton
/// the tables are empty and the engine takes its portable path, with a warning.
fn triton_kernels(out_dir: &Path) {
    let script = "kernels/compile.py";
    // Every kernel source, listed rather than named one by one: a kernel file missing from a
    // hand-kept list left stale cubins in the build.
    let mut sources: Vec<PathBuf> = std::fs::read_dir("kernels")
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    sources.retain(|p| p.extension().is_some_and(|e| e == "py"));
    sources.sort();
    for source in sources {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!("cargo:rerun-if-env-changed=VACED_TRITON_PYTHON");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let python = std::env::var("VACED_TRITON_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let arch = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".to_owned());
    let kernels_dir = out_dir.join("kernels");
    let status = Command::new(&python)
        .arg(script)
        .arg(&kernels_dir)
        .arg(&arch)
        .status();
    let table = kernels_dir.join("kernels.rs");
    let generated = out_dir.join("kernels.rs");
    match status {
        Ok(s) if s.success() && table.exists() => {
            std::fs::copy(&table, &generated).expect("copy the kernel table into OUT_DIR");
        }
        outcome => {
            println!(
                "cargo:warning=fused CUDA kernels not built ({python} {script}: {outcome:?}); \
                 the engine uses its portable (slower) path. Install triton==3.6.0 for that \
                 Python or set VACED_TRITON_PYTHON (scripts/build-cuda does both)."
            );
            let empty = "pub const ATTENTION: &[AttentionKernel] = &[];\n\
                         pub const FUSED: &[KernelImage] = &[];\n\
                         pub const CONV: &[ConvKernel] = &[];\n\
                         pub const QUANTIZED_ATTENTION: &[AttentionKernel] = &[];\n";
            std::fs::write(&generated, empty).expect("write the empty kernel table");
        }
    }
}
