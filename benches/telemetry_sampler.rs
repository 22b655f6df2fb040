//! What the GPU sampler costs: CPU time per sample, and at 10 Hz.
//!
//! `cargo bench --bench telemetry_sampler` samples two GPUs through the fake
//! `libnvidia-ml.so` (built from tests/support/fake_nvml.c) on the real NVML
//! FFI path, and, when `INFERGATE_NVML_LIBRARY` names a real library (or the
//! system has `libnvidia-ml.so.1`), the real GPUs too. It reports the CPU time
//! of one sample (all devices) in a tight loop and the share of one core the
//! recorder thread uses at the default 100 ms interval.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use infergate::telemetry::nvml::{NvmlOptions, open};
use infergate::telemetry::{Recorder, Sampler};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }
}

fn measure(label: &str, opts: NvmlOptions) {
    let (mut sampler, info) = match open(&opts) {
        Ok(s) => s,
        Err(e) => {
            println!("{label}: unavailable ({e})");
            return;
        }
    };
    let n = 20_000;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut readings = 0;
    for _ in 0..n {
        readings += sampler.sample().len();
    }
    let per_sample = (cpu_seconds() - cpu0) / f64::from(n);
    println!(
        "{label}: {} device(s); one sample of all devices: {:.2} us CPU ({:.2} us wall), {} readings",
        info.devices.len(),
        per_sample * 1e6,
        t0.elapsed().as_secs_f64() / f64::from(n) * 1e6,
        readings
    );
    drop(sampler);
    let seconds = 5.0;
    let cpu0 = cpu_seconds();
    let opts2 = opts.clone();
    let (recorder, _) = Recorder::start(move || open(&opts2), Duration::from_millis(100), Instant::now())
        .expect("the recorder starts where the sampler did");
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let samples = recorder.count();
    drop(recorder);
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{label}: recorder at 10 Hz for {seconds} s: {samples} readings, {:.3} ms CPU = {:.4}% of one core (goal < 0.5%)",
        cpu * 1000.0,
        100.0 * cpu / seconds
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = support::write_nvml_script(
        dir.path(),
        "device_count = 2\n\
         gpu0.name = Fake H200\ngpu0.memory_total_mib = 143771\ngpu0.memory_used_mib = 80000\ngpu0.util_gpu = 87\n\
         gpu0.util_memory = 40\ngpu0.power_mw = 450000\ngpu0.energy_start_mj = 0\ngpu0.temperature_c = 60\n\
         gpu0.sm_clock_mhz = 1980\ngpu0.throttle_reasons = 0\n\
         gpu1.name = Fake H200\ngpu1.memory_total_mib = 143771\ngpu1.memory_used_mib = 80000\ngpu1.util_gpu = 87\n\
         gpu1.util_memory = 40\ngpu1.power_mw = 450000\ngpu1.energy_start_mj = 0\ngpu1.temperature_c = 60\n\
         gpu1.sm_clock_mhz = 1980\ngpu1.throttle_reasons = 0\n",
    );
    // SAFETY: set before any other thread of this process exists.
    unsafe { std::env::set_var(support::SCRIPT_ENV, &script) };
    measure("fake NVML", NvmlOptions { library: Some(support::fake_nvml_library()), devices: None });
    let real = std::env::var_os("INFERGATE_NVML_LIBRARY").map(std::path::PathBuf::from);
    measure("real NVML", NvmlOptions { library: real, devices: None });
}
