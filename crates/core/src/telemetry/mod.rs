//! What the GPU did over a phase, as data: one reading ([`GpuSample`]), the
//! devices ([`GpuInfo`]) and the figures of a phase ([`GpuPhase`]), which
//! [`summarize_phase`] computes from the readings. Sampling itself (NVML, the
//! recorder thread) is the application's; this module never reads a device.
//! A device that cannot report a value leaves it absent: never a zero
//! pretending to be a reading.

pub mod prometheus;

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
}
