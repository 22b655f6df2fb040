//! The NVML sampler: `libnvidia-ml.so.1`, opened at run time.
//!
//! Nothing about NVML is needed at build time, so the binary builds and runs
//! where there is no driver; without one, opening fails with NVML's own
//! reason, which the run records. `[gpu] nvml_library` (or
//! `INFERGATE_NVML_LIBRARY`) points at another library file: the tests use
//! a fake one built from C to exercise this real FFI path without a GPU.

use std::ffi::OsStr;
use std::path::PathBuf;

use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use super::{GpuDevice, GpuInfo, GpuSample, Sampler};

/// How to open NVML and which devices to sample.
#[derive(Debug, Clone, Default)]
pub struct NvmlOptions {
    /// Library file instead of the system's `libnvidia-ml.so.1`.
    pub library: Option<PathBuf>,
    /// Devices by index or UUID; `None`: `CUDA_VISIBLE_DEVICES`, else all.
    pub devices: Option<Vec<String>>,
}

/// Samples NVML devices.
pub struct NvmlSampler {
    nvml: Nvml,
    devices: Vec<(u32, Option<f64>)>,
}

/// Opens NVML, selects devices, reads their fingerprints.
pub fn open(opts: &NvmlOptions) -> Result<(NvmlSampler, GpuInfo), String> {
    let nvml = match &opts.library {
        Some(path) => Nvml::builder().lib_path(OsStr::new(path)).init(),
        None => Nvml::init(),
    }
    .map_err(|e| describe_init_error(&e, opts.library.as_ref()))?;
    let count = nvml.device_count().map_err(|e| format!("NVML cannot count the GPUs: {e}"))?;
    let selection = match &opts.devices {
        Some(list) => Some(list.clone()),
        None => std::env::var("CUDA_VISIBLE_DEVICES").ok().map(|v| parse_visible_devices(&v)),
    };
    let mut indices = Vec::new();
    match selection {
        None => indices.extend(0..count),
        Some(list) => {
            for entry in list {
                let index = match entry.parse::<u32>() {
                    Ok(i) if i < count => i,
                    Ok(i) => return Err(format!("GPU {i} does not exist: NVML sees {count} GPU(s)")),
                    Err(_) => nvml
                        .device_by_uuid(entry.as_str())
                        .and_then(|d| d.index())
                        .map_err(|e| format!("GPU `{entry}` not found by UUID: {e}"))?,
                };
                if !indices.contains(&index) {
                    indices.push(index);
                }
            }
        }
    }
    let mut devices = Vec::new();
    let mut totals = Vec::new();
    for &i in &indices {
        let d = nvml.device_by_index(i).map_err(|e| format!("NVML cannot open GPU {i}: {e}"))?;
        let fp = fingerprint(i, &d);
        totals.push((i, fp.memory_total_mib));
        devices.push(fp);
    }
    let cuda = nvml.sys_cuda_driver_version().ok().map(|v| {
        format!("{}.{}", nvml_wrapper::cuda_driver_version_major(v), nvml_wrapper::cuda_driver_version_minor(v))
    });
    let info = GpuInfo {
        status: "ok".into(),
        reason: None,
        driver_version: nvml.sys_driver_version().ok(),
        cuda_driver_version: cuda,
        interval_ms: 0.0,
        memory_after_load_mib: None,
        devices,
    };
    Ok((NvmlSampler { nvml, devices: totals }, info))
}

/// `CUDA_VISIBLE_DEVICES`: comma-separated indices or UUIDs; empty means none.
pub fn parse_visible_devices(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn describe_init_error(e: &NvmlError, library: Option<&PathBuf>) -> String {
    let lib = library.map_or_else(|| "libnvidia-ml.so.1".to_string(), |p| p.display().to_string());
    match e {
        NvmlError::LibloadingError(inner) => format!("cannot load {lib}: {inner}"),
        NvmlError::DriverNotLoaded => "NVML: the NVIDIA driver is not loaded".into(),
        NvmlError::NoPermission => "NVML: no permission to talk to the driver".into(),
        other => format!("NVML initialisation failed ({lib}): {other}"),
    }
}

fn opt<T>(r: Result<T, NvmlError>) -> Option<T> {
    // NOT_SUPPORTED (and any other failure) leaves the value absent.
    r.ok()
}

fn fingerprint(index: u32, d: &Device<'_>) -> GpuDevice {
    let memory_total_mib = opt(d.memory_info()).map(|m| m.total as f64 / MIB);
    let app = opt(d.applications_clock(Clock::SM));
    let default_app = opt(d.default_applications_clock(Clock::SM));
    let mut readable = Vec::new();
    let mut can = |name: &str, ok: bool| {
        if ok {
            readable.push(name.to_string());
        }
    };
    can("memory", d.memory_info().is_ok());
    can("utilization", d.utilization_rates().is_ok());
    can("power", d.power_usage().is_ok());
    can("energy", d.total_energy_consumption().is_ok());
    can("temperature", d.temperature(TemperatureSensor::Gpu).is_ok());
    can("sm_clock", d.clock_info(Clock::SM).is_ok());
    can("throttle_reasons", d.current_throttle_reasons().is_ok());
    GpuDevice {
        index,
        name: opt(d.name()),
        uuid: opt(d.uuid()),
        memory_total_mib,
        power_limit_w: opt(d.enforced_power_limit()).map(|mw| f64::from(mw) / 1000.0),
        persistence_mode: opt(d.is_in_persistent_mode()),
        mig_mode: opt(d.mig_mode()).map(|m| m.current != 0),
        ecc: opt(d.is_ecc_enabled()).map(|e| e.currently_enabled),
        app_clock_sm_mhz: app,
        default_app_clock_sm_mhz: default_app,
        clocks_locked: app.zip(default_app).map(|(a, b)| a != b),
        readable,
    }
}

const MIB: f64 = 1024.0 * 1024.0;

impl Sampler for NvmlSampler {
    fn sample(&mut self) -> Vec<GpuSample> {
        let mut out = Vec::with_capacity(self.devices.len());
        for &(index, total) in &self.devices {
            let Ok(d) = self.nvml.device_by_index(index) else { continue };
            let memory = opt(d.memory_info());
            let used = memory.as_ref().map(|m| m.used as f64 / MIB);
            let total = memory.as_ref().map(|m| m.total as f64 / MIB).or(total);
            let util = opt(d.utilization_rates());
            out.push(GpuSample {
                t_ms: 0.0,
                device: index,
                memory_used_mib: used,
                memory_used_pct: used.zip(total).filter(|(_, t)| *t > 0.0).map(|(u, t)| 100.0 * u / t),
                gpu_util_pct: util.as_ref().map(|u| f64::from(u.gpu)),
                mem_util_pct: util.as_ref().map(|u| f64::from(u.memory)),
                power_w: opt(d.power_usage()).map(|mw| f64::from(mw) / 1000.0),
                energy_j: opt(d.total_energy_consumption()).map(|mj| mj as f64 / 1000.0),
                temperature_c: opt(d.temperature(TemperatureSensor::Gpu)).map(f64::from),
                sm_clock_mhz: opt(d.clock_info(Clock::SM)).map(f64::from),
                throttle_reasons: opt(d.current_throttle_reasons()).map(|r| r.bits()),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_devices_parsing() {
        assert_eq!(parse_visible_devices("0, 2"), ["0", "2"]);
        assert_eq!(parse_visible_devices("GPU-abc,1"), ["GPU-abc", "1"]);
        assert!(parse_visible_devices("").is_empty());
    }

    #[test]
    fn a_missing_library_is_a_clear_reason() {
        let opts = NvmlOptions { library: Some(PathBuf::from("/nonexistent/libnvidia-ml.so.1")), devices: None };
        let err = open(&opts).err().unwrap();
        assert!(err.contains("cannot load /nonexistent/libnvidia-ml.so.1"), "{err}");
    }
}
