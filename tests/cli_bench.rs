//! `vaced bench` driven as a user would: the real binary on the CPU with the tiny model.

use std::process::Command;

#[test]
fn bench_prints_json_that_says_how_the_dit_computed() {
    // The 8-bit switches apply to CUDA bf16 runs only: on a CPU they change nothing, and the
    // JSON says what actually ran instead of echoing the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_vaced"))
        .args([
            "bench", "--model", "tiny", "--device", "cpu", "--size", "64x48", "--frames", "5",
            "--only", "step", "--repeat", "1",
        ])
        .env("VACED_ATTENTION_PRECISION", "8bit")
        .env("VACED_LINEAR_PRECISION", "fp8")
        .output()
        .expect("running vaced bench");
    assert!(
        out.status.success(),
        "vaced bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(report["model"], "tiny");
    assert_eq!(report["dtype"], "f32");
    assert_eq!(
        report["numerics"],
        serde_json::json!({"attention": "f32", "linear_products": "f32"})
    );
    let step = &report["dit_step"];
    assert!(
        step["median_secs"].as_f64().is_some_and(|s| s > 0.0),
        "no step timing in {report}"
    );
    assert!(
        report["vae_encode"].is_null(),
        "--only step measured the VAE"
    );
}
