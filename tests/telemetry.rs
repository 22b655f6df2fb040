//! GPU telemetry end to end: `infergate` against the simulator with a fake
//! `libnvidia-ml.so` (built from C by the test) on the real NVML FFI path.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::results::PhaseName;
use infergate::sim::SimConfig;
use predicates::prelude::*;
use support::Sim;

const TWO_GPUS: &str = "
driver_version = 550.54.15
cuda_driver_version = 12040
device_count = 2
gpu0.name = NVIDIA H200
gpu0.uuid = GPU-11111111-2222-3333-4444-555555555555
gpu0.memory_total_mib = 143771
gpu0.memory_used_mib = 80000
gpu0.memory_ramp_mib_per_s = 1000
gpu0.util_gpu = 87
gpu0.util_memory = 40
gpu0.power_mw = 450000
gpu0.energy_start_mj = 1000000
gpu0.temperature_c = 61
gpu0.sm_clock_mhz = 1980
gpu0.throttle_reasons = 0x4
gpu0.power_limit_mw = 700000
gpu0.persistence = 1
gpu0.mig = 0
gpu0.ecc = 1
gpu0.app_clock_sm_mhz = 1980
gpu0.default_app_clock_sm_mhz = 1980
# The second GPU cannot report power or energy.
gpu1.name = NVIDIA H200
gpu1.uuid = GPU-66666666-7777-8888-9999-000000000000
gpu1.memory_total_mib = 143771
gpu1.memory_used_mib = 40000
gpu1.util_gpu = 50
gpu1.util_memory = 20
gpu1.power_mw = unsupported
gpu1.temperature_c = 55
";

/// `infergate` with the fake NVML library and `script`.
fn infergate(dir: &Path, script: &str) -> Command {
    let script = support::write_nvml_script(dir, script);
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir)
        .env("INFERGATE_NVML_LIBRARY", support::fake_nvml_library())
        .env("FAKE_NVML_SCRIPT", script)
        .env_remove("CUDA_VISIBLE_DEVICES")
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(120));
    cmd
}

fn run_args(sim: &Sim, out: &str) -> Vec<String> {
    ["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--repetitions", "6", "--gpu", "require", "--out", out].iter().map(|s| s.to_string()))
        .collect()
}

#[test]
fn run_records_the_scripted_gpu_figures() {
    let sim = Sim::start(SimConfig { itl_ms: 3.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    infergate(d, TWO_GPUS).args(run_args(&sim, "r.json")).assert().code(exit::PASS);
    let r = infergate::results::load(&d.join("r.json")).unwrap();
    let gpu = &r.environment.gpu;
    assert_eq!(gpu.status, "ok");
    assert_eq!(gpu.driver_version.as_deref(), Some("550.54.15"));
    assert_eq!(gpu.cuda_driver_version.as_deref(), Some("12.4"));
    assert_eq!(gpu.devices.len(), 2);
    let d0 = &gpu.devices[0];
    assert_eq!(d0.name.as_deref(), Some("NVIDIA H200"));
    assert_eq!(d0.memory_total_mib, Some(143771.0));
    assert_eq!(d0.power_limit_w, Some(700.0));
    assert_eq!(
        (d0.persistence_mode, d0.mig_mode, d0.ecc, d0.clocks_locked),
        (Some(true), Some(false), Some(true), Some(false))
    );
    assert!(d0.readable.contains(&"energy".to_string()));
    assert!(!gpu.devices[1].readable.contains(&"power".to_string()), "{:?}", gpu.devices[1].readable);

    let warm = r.cases[0].phases[&PhaseName::Warm].gpu.as_ref().expect("GPU figures of the warm phase");
    let g0 = &warm.devices[0];
    let g1 = &warm.devices[1];
    assert!(g0.samples >= 2, "{g0:?}");
    assert_eq!(g0.gpu_util_pct.unwrap().mean, 87.0);
    assert_eq!(g0.power_w.unwrap().mean, 450.0);
    assert_eq!(g0.temperature_c.unwrap().max, 61.0);
    assert_eq!(g0.sm_clock_mhz.unwrap().median, 1980.0);
    assert_eq!(g0.throttle_reasons, ["sw_power_cap"]);
    // Memory rises 1000 MiB/s from 80000 MiB: the peak is above the start.
    let peak = g0.memory_peak_mib.unwrap();
    assert!(peak > 80_000.0 && peak < 143_771.0, "{peak}");
    let pct = g0.memory_used_pct.unwrap().mean;
    assert!(pct > 55.6 && pct < 100.0, "{pct}");
    // Energy from the counter: 450 W over the phase.
    assert_eq!(g0.energy_source.as_deref(), Some("counter"));
    let span_s = (warm.samples.last().unwrap().t_ms - warm.samples.first().unwrap().t_ms) / 1000.0;
    let expected = 450.0 * span_s;
    assert!((g0.energy_j.unwrap() - expected).abs() <= 0.1 * expected + 5.0, "{} vs {expected}", g0.energy_j.unwrap());
    // The second device: unsupported readings are absent, never zero.
    assert!(g1.power_w.is_none() && g1.energy_j.is_none() && g1.sm_clock_mhz.is_none());
    assert_eq!(g1.memory_peak_mib, Some(40_000.0));
    // Without energy for every device there is no honest per-token figure.
    assert_eq!(warm.energy_j, None);
    assert_eq!(warm.energy_per_token_j, None);
    assert_eq!(warm.memory_peak_mib, Some(peak));
    // Memory after load: both devices, read before the first request, so
    // below what gpu0's ramp reached during the run.
    let after_load = r.environment.gpu.memory_after_load_mib.expect("memory after load");
    assert!((120_000.0..peak + 40_000.0).contains(&after_load), "{after_load} (gpu0 peak {peak})");

    // One device selected: energy per token is known.
    let single = TWO_GPUS.to_string();
    infergate(d, &single).env("CUDA_VISIBLE_DEVICES", "0").args(run_args(&sim, "one.json")).assert().code(exit::PASS);
    let r = infergate::results::load(&d.join("one.json")).unwrap();
    assert_eq!(r.environment.gpu.devices.len(), 1);
    let warm = r.cases[0].phases[&PhaseName::Warm].gpu.clone().unwrap();
    let tokens = r.cases[0].phases[&PhaseName::Warm].summary.total_output_tokens as f64;
    let per_token = warm.energy_per_token_j.unwrap();
    assert!((per_token - warm.energy_j.unwrap() / tokens).abs() < 1e-9);
    assert!(per_token > 0.0);
}

#[test]
fn failing_nvml_init_with_require_exits_3_and_auto_records_unavailable() {
    let sim = Sim::start(SimConfig { itl_ms: 3.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    infergate(d, "init = driver_not_loaded\n").args(run_args(&sim, "r.json")).assert().code(exit::RUN_FAILED).stderr(
        predicate::str::contains("GPU telemetry is required").and(predicate::str::contains("driver is not loaded")),
    );
    assert!(!d.join("r.json").exists());
    // auto without any library: recorded once, the run goes on.
    let mut args = run_args(&sim, "auto.json");
    let pos = args.iter().position(|a| a == "require").unwrap();
    args[pos] = "auto".into();
    infergate(d, TWO_GPUS)
        .env("INFERGATE_NVML_LIBRARY", d.join("no-such-libnvidia-ml.so.1"))
        .args(&args)
        .assert()
        .code(exit::PASS);
    let r = infergate::results::load(&d.join("auto.json")).unwrap();
    assert_eq!(r.environment.gpu.status, "unavailable");
    assert!(r.environment.gpu.reason.as_deref().unwrap().contains("no-such-libnvidia-ml.so.1"));
    assert_eq!(r.warnings.iter().filter(|w| w.starts_with("GPU telemetry unavailable")).count(), 1);
    assert!(r.cases[0].phases[&PhaseName::Warm].gpu.is_none());
}

#[test]
fn injected_memory_regression_fails_check_naming_the_metric() {
    let sim = Sim::start(SimConfig { itl_ms: 3.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let steady = TWO_GPUS.replace("gpu0.memory_ramp_mib_per_s = 1000", "gpu0.memory_ramp_mib_per_s = 0");
    infergate(d, &steady).args(run_args(&sim, "base.json")).assert().code(exit::PASS);
    infergate(d, &steady)
        .args(["baseline", "update", "--results", "base.json", "--baseline", "gpu"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("gpu_memory_peak_mib = 80000"));
    // The same, unchanged: passes.
    let check = |script: &str, out: &str| {
        let mut args = run_args(&sim, out);
        args[1] = "check".into();
        args.extend(["--baseline".to_string(), "gpu".to_string()]);
        infergate(d, script).args(args).assert()
    };
    check(&steady, "same.json").code(exit::PASS);
    // 2.5 GB more memory on GPU 0: +3.1%, beyond +2% and the 256 MiB floor.
    let bigger = steady.replace("gpu0.memory_used_mib = 80000", "gpu0.memory_used_mib = 82500");
    check(&bigger, "cur.json")
        .code(exit::REGRESSION)
        .stdout(predicate::str::contains("gpu_memory_peak_mib").and(predicate::str::contains("GPU per phase:")));
    // The Markdown report shows the GPU figures per phase too.
    let md = std::fs::read_to_string(d.join("comparison.md")).unwrap();
    assert!(md.contains("GPU per phase") && md.contains("| debugging/256 | warm | 82500 MiB |"), "{md}");
    let c: infergate::gate::Comparison =
        serde_json::from_str(&std::fs::read_to_string(d.join("comparison.json")).unwrap()).unwrap();
    let row = c.cases[0].metrics.iter().find(|m| m.metric == "gpu_memory_peak_mib").unwrap();
    assert_eq!(row.status, infergate::gate::MetricStatus::Regressed);
    assert_eq!((row.baseline, row.current), (80_000.0, 82_500.0));
    // A different GPU is refused.
    let other = steady.replace("NVIDIA H200", "NVIDIA H100 80GB HBM3");
    check(&other, "other.json").code(exit::RUN_FAILED).stdout(predicate::str::contains("GPU"));
    // So is the same GPU with another power limit.
    let capped = steady.replace("gpu0.power_limit_mw = 700000", "gpu0.power_limit_mw = 600000");
    check(&capped, "capped.json").code(exit::RUN_FAILED).stdout(predicate::str::contains("GPU power limit"));
}

#[test]
fn doctor_lists_devices_and_what_the_sampler_reads() {
    let dir = tempfile::tempdir().unwrap();
    infergate(dir.path(), TWO_GPUS).args(["doctor", "--gpu-only"]).assert().code(exit::PASS).stdout(
        predicate::str::contains("NVML works (driver 550.54.15, CUDA 12.4), 2 device(s)")
            .and(predicate::str::contains("GPU 0: NVIDIA H200 GPU-11111111"))
            .and(predicate::str::contains("power limit 700 W"))
            .and(predicate::str::contains("sampler reads: memory, utilization, power, energy")),
    );
    std::fs::write(dir.path().join("infergate.toml"), "[gpu]\nmode = \"require\"\n").unwrap();
    infergate(dir.path(), "init = no_permission\n")
        .args(["doctor", "--gpu-only"])
        .assert()
        .code(exit::RUN_FAILED)
        .stdout(predicate::str::contains("FAIL  gpu: NVML: no permission"));
}
