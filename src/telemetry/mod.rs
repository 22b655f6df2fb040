//! WHAT the GPU did while the suite ran.
//!
//! A [`Sampler`] reads the GPUs (one real implementation: NVML, in
//! [`nvml`]); a [`Recorder`] runs it on its own thread at a fixed interval
//! and keeps the samples with their time; the runner asks for the samples of
//! each phase's window and [`summarize_phase`] turns them into the figures the
//! report and the gate use. A device that cannot report a value (NVML's
//! NOT_SUPPORTED) leaves it absent: never a zero pretending to be a reading.

pub mod nvml;
pub mod prometheus;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::stats::{self, Summary};

/// One reading of one GPU. Absent values were not supported or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSample {
    /// Milliseconds since the run's epoch.
    pub t_ms: f64,
    /// Index of the device (NVML index).
    pub device: u32,
    /// Memory in use, MiB.
    pub memory_used_mib: Option<f64>,
    /// Memory in use, % of total.
    pub memory_used_pct: Option<f64>,
    /// GPU utilisation, %.
    pub gpu_util_pct: Option<f64>,
    /// Memory-controller utilisation, %.
    pub mem_util_pct: Option<f64>,
    /// Power draw, W.
    pub power_w: Option<f64>,
    /// Total-energy counter, J (absolute; differences are energy).
    pub energy_j: Option<f64>,
    /// Temperature, °C.
    pub temperature_c: Option<f64>,
    /// SM clock, MHz.
    pub sm_clock_mhz: Option<f64>,
    /// Clock throttle reason bits (NVML's nvmlClocksThrottleReasons).
    pub throttle_reasons: Option<u64>,
}

/// A GPU's identity and settings: the environment fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuDevice {
    /// NVML index.
    pub index: u32,
    /// Product name, e.g. `NVIDIA H200`.
    pub name: Option<String>,
    /// UUID.
    pub uuid: Option<String>,
    /// Total memory, MiB.
    pub memory_total_mib: Option<f64>,
    /// Enforced power limit, W.
    pub power_limit_w: Option<f64>,
    /// Persistence mode on.
    pub persistence_mode: Option<bool>,
    /// MIG mode on.
    pub mig_mode: Option<bool>,
    /// ECC on.
    pub ecc: Option<bool>,
    /// Application SM clock, MHz.
    pub app_clock_sm_mhz: Option<u32>,
    /// Default application SM clock, MHz.
    pub default_app_clock_sm_mhz: Option<u32>,
    /// Application clocks differ from the default (locked or raised by an admin).
    pub clocks_locked: Option<bool>,
    /// What the sampler can read on this device.
    pub readable: Vec<String>,
}

/// GPU facts of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuInfo {
    /// `ok`, `unavailable` or `off`.
    pub status: String,
    /// Why telemetry is unavailable (NVML's reason).
    pub reason: Option<String>,
    /// Driver version.
    pub driver_version: Option<String>,
    /// CUDA driver version, e.g. `12.4`.
    pub cuda_driver_version: Option<String>,
    /// Sampling interval, ms.
    pub interval_ms: f64,
    /// GPU memory in use on the sampled devices together, MiB, read once
    /// before the first request (after a launched server became ready): what
    /// loading the model took, weights and pre-allocated KV cache included.
    #[serde(default)]
    pub memory_after_load_mib: Option<f64>,
    /// The sampled devices.
    pub devices: Vec<GpuDevice>,
}

/// Reads GPUs.
pub trait Sampler {
    /// One reading of every selected device; `t_ms` is filled in by the caller.
    fn sample(&mut self) -> Vec<GpuSample>;
}

/// Runs a sampler on its own thread at a fixed interval.
pub struct Recorder {
    epoch: Instant,
    samples: Arc<Mutex<Vec<GpuSample>>>,
    stop: Arc<AtomicBool>,
    now: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// Starts a thread that builds its sampler with `make` (NVML's handles
    /// borrow the library, so the sampler must live on the thread that uses
    /// it), reports the build result, then samples every `interval`.
    pub fn start<S, F, T>(make: F, interval: Duration, epoch: Instant) -> Result<(Recorder, T), String>
    where
        S: Sampler,
        F: FnOnce() -> Result<(S, T), String> + Send + 'static,
        T: Send + 'static,
    {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (now_tx, now_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<T, String>>();
        let (shared, halt) = (Arc::clone(&samples), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("infergate-gpu".into())
            .spawn(move || {
                let mut sampler = match make() {
                    Ok((s, info)) => {
                        let _ = ready_tx.send(Ok(info));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut next = Instant::now();
                while !halt.load(Ordering::Relaxed) {
                    let t_ms = Instant::now().saturating_duration_since(epoch).as_secs_f64() * 1000.0;
                    let mut batch = sampler.sample();
                    for s in &mut batch {
                        s.t_ms = t_ms;
                    }
                    if let Ok(mut all) = shared.lock() {
                        all.extend(batch);
                    }
                    next += interval;
                    let wait = next.saturating_duration_since(Instant::now());
                    if wait.is_zero() {
                        // Fell behind (a slow driver call): don't try to catch up in a burst.
                        next = Instant::now();
                    }
                    match now_rx.recv_timeout(wait) {
                        Ok(()) => next = Instant::now(),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .map_err(|e| format!("cannot start the GPU sampling thread: {e}"))?;
        let info = match ready_rx.recv() {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err("the GPU sampling thread stopped during start-up".into()),
        };
        Ok((Recorder { epoch, samples, stop, now: now_tx, thread: Some(thread) }, info))
    }

    /// Takes a sample now (at a phase boundary), without waiting for it.
    pub fn sample_now(&self) {
        let _ = self.now.send(());
    }

    /// The samples taken between two instants (inclusive).
    pub fn window(&self, from: Instant, to: Instant) -> Vec<GpuSample> {
        let ms = |t: Instant| t.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0;
        let (a, b) = (ms(from), ms(to));
        self.samples
            .lock()
            .map(|all| all.iter().filter(|s| s.t_ms >= a && s.t_ms <= b).cloned().collect())
            .unwrap_or_default()
    }

    /// The first reading of every device (the sampler takes it as soon as it
    /// starts), waiting for it up to `wait`.
    pub fn first_reading(&self, wait: Duration) -> Vec<GpuSample> {
        let deadline = Instant::now() + wait;
        loop {
            let first: Vec<GpuSample> = self
                .samples
                .lock()
                .map(|all| {
                    let t = all.first().map(|s| s.t_ms);
                    all.iter().take_while(|s| Some(s.t_ms) == t).cloned().collect()
                })
                .unwrap_or_default();
            if !first.is_empty() || Instant::now() >= deadline {
                return first;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Samples taken so far.
    pub fn count(&self) -> usize {
        self.samples.lock().map_or(0, |s| s.len())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.now.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// GPU figures of one device over one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicePhase {
    /// NVML index.
    pub device: u32,
    /// Samples in the phase.
    pub samples: u32,
    /// Memory in use, MiB.
    pub memory_used_mib: Option<Summary>,
    /// Memory in use, % of total (the user's report's `gpu_memory_util`).
    pub memory_used_pct: Option<Summary>,
    /// GPU utilisation, % (`gpu_util`).
    pub gpu_util_pct: Option<Summary>,
    /// Memory-controller utilisation, %.
    pub mem_util_pct: Option<Summary>,
    /// Power draw, W.
    pub power_w: Option<Summary>,
    /// Temperature, °C.
    pub temperature_c: Option<Summary>,
    /// SM clock, MHz.
    pub sm_clock_mhz: Option<Summary>,
    /// Highest memory in use, MiB.
    pub memory_peak_mib: Option<f64>,
    /// Energy used over the phase, J.
    pub energy_j: Option<f64>,
    /// `counter` (the total-energy counter) or `power` (power integrated over time).
    pub energy_source: Option<String>,
    /// Throttle reasons seen during the phase.
    pub throttle_reasons: Vec<String>,
}

/// GPU figures of one phase over all devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuPhase {
    /// Per device.
    pub devices: Vec<DevicePhase>,
    /// Highest memory in use on any device, MiB.
    pub memory_peak_mib: Option<f64>,
    /// Highest mean memory use of any device, % of its total.
    pub memory_used_pct: Option<f64>,
    /// Mean GPU utilisation over devices, %.
    pub gpu_util_pct: Option<f64>,
    /// Energy over all devices, J.
    pub energy_j: Option<f64>,
    /// Energy per output token of the completed requests, J.
    pub energy_per_token_j: Option<f64>,
    /// The raw samples of the phase, for timelines.
    pub samples: Vec<GpuSample>,
}

/// Names of NVML's throttle reason bits.
const THROTTLE_REASONS: &[(u64, &str)] = &[
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
];

/// Summarises one phase's samples; `output_tokens` is the phase's total of
/// completed requests (for energy per token). `None` when there are no samples.
pub fn summarize_phase(samples: Vec<GpuSample>, output_tokens: u64) -> Option<GpuPhase> {
    if samples.is_empty() {
        return None;
    }
    let mut ids: Vec<u32> = samples.iter().map(|s| s.device).collect();
    ids.sort_unstable();
    ids.dedup();
    let devices: Vec<DevicePhase> = ids
        .iter()
        .map(|&d| {
            let mine: Vec<&GpuSample> = samples.iter().filter(|s| s.device == d).collect();
            let col = |f: fn(&GpuSample) -> Option<f64>| -> Vec<f64> { mine.iter().filter_map(|s| f(s)).collect() };
            let memory = col(|s| s.memory_used_mib);
            let (energy_j, energy_source) = energy(&mine);
            let bits = mine.iter().filter_map(|s| s.throttle_reasons).fold(0u64, |a, b| a | b);
            DevicePhase {
                device: d,
                samples: mine.len() as u32,
                memory_used_mib: stats::summarize(&memory),
                memory_used_pct: stats::summarize(&col(|s| s.memory_used_pct)),
                gpu_util_pct: stats::summarize(&col(|s| s.gpu_util_pct)),
                mem_util_pct: stats::summarize(&col(|s| s.mem_util_pct)),
                power_w: stats::summarize(&col(|s| s.power_w)),
                temperature_c: stats::summarize(&col(|s| s.temperature_c)),
                sm_clock_mhz: stats::summarize(&col(|s| s.sm_clock_mhz)),
                memory_peak_mib: memory.iter().copied().reduce(f64::max),
                energy_j,
                energy_source,
                throttle_reasons: THROTTLE_REASONS
                    .iter()
                    .filter(|(bit, _)| bits & bit != 0)
                    .map(|(_, n)| (*n).to_string())
                    .collect(),
            }
        })
        .collect();
    let max = |f: fn(&DevicePhase) -> Option<f64>| devices.iter().filter_map(f).reduce(f64::max);
    let energies: Vec<f64> = devices.iter().filter_map(|d| d.energy_j).collect();
    let energy_j = (!energies.is_empty() && energies.len() == devices.len()).then(|| energies.iter().sum::<f64>());
    Some(GpuPhase {
        memory_peak_mib: max(|d| d.memory_peak_mib),
        memory_used_pct: max(|d| d.memory_used_pct.map(|s| s.mean)),
        gpu_util_pct: stats::mean(&devices.iter().filter_map(|d| d.gpu_util_pct.map(|s| s.mean)).collect::<Vec<_>>()),
        energy_j,
        energy_per_token_j: energy_j.filter(|_| output_tokens > 0).map(|e| e / output_tokens as f64),
        devices,
        samples,
    })
}

/// Energy over the samples: the counter's difference where the device has
/// one, else power integrated over time (trapezoids).
fn energy(samples: &[&GpuSample]) -> (Option<f64>, Option<String>) {
    let counter: Vec<(f64, f64)> = samples.iter().filter_map(|s| s.energy_j.map(|e| (s.t_ms, e))).collect();
    if counter.len() >= 2 {
        let (first, last) = (counter[0].1, counter[counter.len() - 1].1);
        if last >= first {
            return (Some(last - first), Some("counter".into()));
        }
    }
    let power: Vec<(f64, f64)> = samples.iter().filter_map(|s| s.power_w.map(|p| (s.t_ms, p))).collect();
    if power.len() >= 2 {
        let joules = power.windows(2).map(|w| (w[1].0 - w[0].0) / 1000.0 * (w[0].1 + w[1].1) / 2.0).sum();
        return (Some(joules), Some("power".into()));
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t_ms: f64, device: u32, mem: f64, power: Option<f64>, energy: Option<f64>) -> GpuSample {
        GpuSample {
            t_ms,
            device,
            memory_used_mib: Some(mem),
            memory_used_pct: Some(mem / 1000.0),
            gpu_util_pct: Some(90.0),
            mem_util_pct: None,
            power_w: power,
            energy_j: energy,
            temperature_c: Some(60.0),
            sm_clock_mhz: None,
            throttle_reasons: Some(0x4),
        }
    }

    #[test]
    fn phase_figures_from_samples() {
        let samples = vec![
            s(0.0, 0, 1000.0, Some(300.0), Some(5000.0)),
            s(1000.0, 0, 1200.0, Some(300.0), Some(5300.0)),
            s(2000.0, 0, 1100.0, Some(300.0), Some(5600.0)),
            // Device 1 has no energy counter: power is integrated instead.
            s(0.0, 1, 500.0, Some(100.0), None),
            s(1000.0, 1, 700.0, Some(200.0), None),
            s(2000.0, 1, 600.0, Some(100.0), None),
        ];
        let p = summarize_phase(samples, 100).unwrap();
        assert_eq!(p.devices.len(), 2);
        assert_eq!(p.devices[0].memory_peak_mib, Some(1200.0));
        assert_eq!(p.devices[0].energy_j, Some(600.0));
        assert_eq!(p.devices[0].energy_source.as_deref(), Some("counter"));
        assert_eq!(p.devices[1].energy_j, Some(300.0));
        assert_eq!(p.devices[1].energy_source.as_deref(), Some("power"));
        assert_eq!(p.energy_j, Some(900.0));
        assert_eq!(p.energy_per_token_j, Some(9.0));
        assert_eq!(p.memory_peak_mib, Some(1200.0));
        assert_eq!(p.devices[0].throttle_reasons, ["sw_power_cap"]);
        assert!(p.devices[0].sm_clock_mhz.is_none(), "unsupported stays absent");
    }

    #[test]
    fn missing_readings_are_absent_not_zero() {
        let mut a = s(0.0, 0, 1000.0, None, None);
        a.memory_used_mib = None;
        let p = summarize_phase(vec![a.clone(), a], 10).unwrap();
        assert_eq!(p.memory_peak_mib, None);
        assert_eq!(p.energy_j, None);
        assert_eq!(p.energy_per_token_j, None);
        assert!(summarize_phase(Vec::new(), 10).is_none());
    }

    struct Counting(u32);
    impl Sampler for Counting {
        fn sample(&mut self) -> Vec<GpuSample> {
            self.0 += 1;
            vec![s(0.0, 0, f64::from(self.0), None, None)]
        }
    }

    #[test]
    fn recorder_samples_on_its_thread_and_on_demand() {
        let epoch = Instant::now();
        let (rec, info) = Recorder::start(|| Ok((Counting(0), 7u8)), Duration::from_secs(3600), epoch).unwrap();
        assert_eq!(info, 7);
        let start = Instant::now();
        rec.sample_now();
        // The on-demand sample arrives without waiting an hour.
        while rec.count() < 2 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(rec.count() >= 2);
        assert_eq!(rec.window(epoch, Instant::now()).len(), rec.count());
        let failed =
            Recorder::start(|| Err::<(Counting, ()), _>("no driver".to_string()), Duration::from_millis(10), epoch);
        assert_eq!(failed.err().as_deref(), Some("no driver"));
    }
}
