//! Checks the fake NVML library (`tests/support/fake_nvml.c`) through
//! nvml-wrapper, the same FFI path the GPU sampler takes, so tests that rely on
//! the fake rely on a library whose symbols, layouts and error codes match
//! what nvml-wrapper expects of the real one.
//!
//! The script path is a process-wide environment variable and the library a
//! process-wide singleton, so the scenarios run in order in one test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_ulonglong, c_void};
use std::path::Path;
use std::time::Duration;

use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use support::{SCRIPT_ENV, fake_nvml_calls, fake_nvml_library, nvml_env_lock, write_nvml_script};

const MIB: u64 = 1024 * 1024;

const TWO_GPUS: &str = "
# A two-GPU box: gpu0 fully scripted, gpu1 a card that reports little.
driver_version = 555.42.06
cuda_driver_version = 12050
device_count = 2

gpu0.name = NVIDIA H100 80GB HBM3
gpu0.uuid = GPU-0b3f5a52-8c1e-4f0e-9d7a-000000000000
gpu0.memory_total_mib = 81559
gpu0.memory_used_mib = 1024
gpu0.memory_ramp_mib_per_s = 1000
gpu0.util_gpu = 87
gpu0.util_memory = 41
gpu0.power_mw = 350000
gpu0.energy_start_mj = 1000000
gpu0.temperature_c = 64
gpu0.sm_clock_mhz = 1980
gpu0.throttle_reasons = 0x4   # SW power cap
gpu0.power_limit_mw = 700000
gpu0.persistence = 1
gpu0.mig = 0
gpu0.ecc = 1
gpu0.app_clock_sm_mhz = 1755
gpu0.default_app_clock_sm_mhz = 1980

  gpu1.name   =   NVIDIA L4
gpu1.uuid = GPU-9e2d1c40-7b6a-4c3d-8e1f-111111111111
gpu1.memory_total_mib = 23034
gpu1.memory_used_mib = 2048
gpu1.power_mw = unsupported
gpu1.energy_start_mj = unsupported
gpu1.temperature_c = 40
gpu1.persistence = 0
gpu1.mig = 1
gpu1.ecc = 0
";

#[test]
fn fake_nvml_answers_through_nvml_wrapper() {
    let _env = nvml_env_lock();
    let library = fake_nvml_library();
    let dir = tempfile::tempdir().unwrap();

    no_script_is_a_machine_without_gpus(&library);
    two_scripted_gpus(&library, &write_nvml_script(dir.path(), TWO_GPUS));
    failed_inits(&library, dir.path());
    memory_used_is_clamped_to_total(&library, dir.path());
    raw_calls_get_nvml_error_codes(&library, &write_nvml_script(dir.path(), TWO_GPUS));
}

/// Points the fake at `script` (or at none) for the next init.
fn use_script(script: Option<&Path>) {
    // SAFETY: the only test in this binary holds `nvml_env_lock`, and nothing
    // else in the process reads the environment while it runs.
    unsafe {
        match script {
            Some(path) => std::env::set_var(SCRIPT_ENV, path),
            None => std::env::remove_var(SCRIPT_ENV),
        }
    }
}

fn init(library: &Path, script: Option<&Path>) -> Result<Nvml, NvmlError> {
    use_script(script);
    Nvml::builder().lib_path(library.as_os_str()).init()
}

fn no_script_is_a_machine_without_gpus(library: &Path) {
    let nvml = init(library, None).unwrap();
    assert_eq!(nvml.device_count().unwrap(), 0);
    assert_eq!(nvml.sys_driver_version().unwrap(), "550.54.15");
    assert_eq!(nvml.sys_cuda_driver_version().unwrap(), 12040);
    assert!(matches!(nvml.device_by_index(0), Err(NvmlError::InvalidArg)));
    drop(nvml);

    let nvml = init(library, Some(Path::new("/nonexistent/nvml-script.txt"))).unwrap();
    assert_eq!(nvml.device_count().unwrap(), 0);
}

fn two_scripted_gpus(library: &Path, script: &Path) {
    let nvml = init(library, Some(script)).unwrap();
    assert_eq!(nvml.sys_driver_version().unwrap(), "555.42.06");
    assert_eq!(nvml.sys_nvml_version().unwrap(), "12.555.42.06");
    assert_eq!(nvml.sys_cuda_driver_version().unwrap(), 12050);
    assert_eq!(nvml.device_count().unwrap(), 2);

    let gpu0 = nvml.device_by_index(0).unwrap();
    let gpu1 = nvml.device_by_index(1).unwrap();
    assert_eq!(gpu0.name().unwrap(), "NVIDIA H100 80GB HBM3");
    assert_eq!(gpu0.uuid().unwrap(), "GPU-0b3f5a52-8c1e-4f0e-9d7a-000000000000");
    assert_eq!(gpu0.index().unwrap(), 0);
    assert_eq!(gpu1.name().unwrap(), "NVIDIA L4");
    assert_eq!(gpu1.uuid().unwrap(), "GPU-9e2d1c40-7b6a-4c3d-8e1f-111111111111");
    assert_eq!(gpu1.index().unwrap(), 1);
    assert!(matches!(nvml.device_by_index(2), Err(NvmlError::InvalidArg)));

    let by_uuid = nvml.device_by_uuid("GPU-9e2d1c40-7b6a-4c3d-8e1f-111111111111").unwrap();
    assert_eq!(by_uuid.name().unwrap(), "NVIDIA L4");
    assert!(matches!(nvml.device_by_uuid("GPU-not-here"), Err(NvmlError::NotFound)));

    let utilization = gpu0.utilization_rates().unwrap();
    assert_eq!((utilization.gpu, utilization.memory), (87, 41));
    assert_eq!(gpu0.power_usage().unwrap(), 350_000);
    assert_eq!(gpu0.temperature(TemperatureSensor::Gpu).unwrap(), 64);
    assert_eq!(gpu0.clock_info(Clock::SM).unwrap(), 1980);
    assert!(matches!(gpu0.clock_info(Clock::Memory), Err(NvmlError::NotSupported)));
    assert_eq!(gpu0.current_throttle_reasons().unwrap(), ThrottleReasons::SW_POWER_CAP);
    assert_eq!(gpu0.enforced_power_limit().unwrap(), 700_000);
    assert_eq!(gpu0.power_management_limit().unwrap(), 700_000);
    assert!(gpu0.is_in_persistent_mode().unwrap());
    let mig = gpu0.mig_mode().unwrap();
    assert_eq!((mig.current, mig.pending), (0, 0));
    let ecc = gpu0.is_ecc_enabled().unwrap();
    assert!(ecc.currently_enabled && ecc.pending_enabled);
    assert_eq!(gpu0.applications_clock(Clock::SM).unwrap(), 1755);
    assert_eq!(gpu0.default_applications_clock(Clock::SM).unwrap(), 1980);

    // gpu1: `unsupported` and absent keys both read as NotSupported.
    assert!(matches!(gpu1.power_usage(), Err(NvmlError::NotSupported)));
    assert!(matches!(gpu1.total_energy_consumption(), Err(NvmlError::NotSupported)));
    assert!(matches!(gpu1.utilization_rates(), Err(NvmlError::NotSupported)));
    assert!(matches!(gpu1.clock_info(Clock::SM), Err(NvmlError::NotSupported)));
    assert!(matches!(gpu1.enforced_power_limit(), Err(NvmlError::NotSupported)));
    assert_eq!(gpu1.temperature(TemperatureSensor::Gpu).unwrap(), 40);
    assert!(!gpu1.is_in_persistent_mode().unwrap());
    assert_eq!(gpu1.mig_mode().unwrap().current, 1);
    assert!(!gpu1.is_ecc_enabled().unwrap().currently_enabled);
    let memory = gpu1.memory_info().unwrap();
    assert_eq!((memory.total, memory.used, memory.free), (23034 * MIB, 2048 * MIB, (23034 - 2048) * MIB));

    // gpu0's memory ramps and its energy counter integrates its power; only
    // lower bounds, since a busy machine may sleep longer than asked.
    let memory_before = gpu0.memory_info().unwrap();
    let energy_before = gpu0.total_energy_consumption().unwrap();
    assert_eq!(memory_before.total, 81559 * MIB);
    assert!(memory_before.used >= 1024 * MIB, "{memory_before:?}");
    assert_eq!(memory_before.free + memory_before.used, memory_before.total);
    assert!(energy_before >= 1_000_000, "{energy_before}");
    std::thread::sleep(Duration::from_millis(300));
    let memory_after = gpu0.memory_info().unwrap();
    let energy_after = gpu0.total_energy_consumption().unwrap();
    assert!(memory_after.used >= memory_before.used + 200 * MIB, "{memory_before:?} then {memory_after:?}");
    // 350 W for at least 0.3 s is at least 105 J.
    assert!(energy_after >= energy_before + 100_000, "{energy_before} mJ then {energy_after} mJ");

    let calls = fake_nvml_calls(library).expect("the fake is loaded while an Nvml is alive");
    gpu0.power_usage().unwrap();
    assert_eq!(fake_nvml_calls(library), Some(calls + 1));
}

fn failed_inits(library: &Path, dir: &Path) {
    let script = write_nvml_script(dir, "init = driver_not_loaded\ndevice_count = 1\n");
    assert!(matches!(init(library, Some(&script)), Err(NvmlError::DriverNotLoaded)));
    let script = write_nvml_script(dir, "init = no_permission\n");
    assert!(matches!(init(library, Some(&script)), Err(NvmlError::NoPermission)));
    // A typo in a script fails init loudly rather than reading as "not supported".
    let script = write_nvml_script(dir, "device_count = 1\ngpu0.power_watts = 300\n");
    assert!(matches!(init(library, Some(&script)), Err(NvmlError::Unknown)));
    let script = write_nvml_script(dir, "device_count = 9\n");
    assert!(matches!(init(library, Some(&script)), Err(NvmlError::Unknown)));
}

fn memory_used_is_clamped_to_total(library: &Path, dir: &Path) {
    let script = write_nvml_script(
        dir,
        "device_count = 1\ngpu0.memory_total_mib = 1000\ngpu0.memory_used_mib = 900\ngpu0.memory_ramp_mib_per_s = 1000000\n",
    );
    let nvml = init(library, Some(&script)).unwrap();
    let gpu = nvml.device_by_index(0).unwrap();
    assert_eq!(gpu.name().unwrap(), "Fake GPU 0");
    assert_eq!(gpu.uuid().unwrap(), "GPU-fake-0");
    std::thread::sleep(Duration::from_millis(10));
    let memory = gpu.memory_info().unwrap();
    assert_eq!((memory.total, memory.used, memory.free), (1000 * MIB, 1000 * MIB, 0));
}

/// The library opened with `dlopen`, to make the calls nvml-wrapper never makes
/// (before init, bad arguments, small buffers).
struct RawLibrary(*mut c_void);

impl RawLibrary {
    fn open(path: &Path) -> RawLibrary {
        let path = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: loading the fake runs no initialisers beyond libc's own.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!handle.is_null(), "dlopen failed");
        RawLibrary(handle)
    }

    /// # Safety
    /// `F` must be the C signature of `name` in fake_nvml.c.
    unsafe fn get<F: Copy>(&self, name: &CStr) -> F {
        assert_eq!(size_of::<F>(), size_of::<*mut c_void>());
        // SAFETY: the caller names the symbol's true type; a null symbol fails the assertion.
        unsafe {
            let symbol = libc::dlsym(self.0, name.as_ptr());
            assert!(!symbol.is_null(), "{name:?} is not exported");
            std::mem::transmute_copy::<*mut c_void, F>(&symbol)
        }
    }
}

impl Drop for RawLibrary {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and no function pointer from it outlives self.
        unsafe { libc::dlclose(self.0) };
    }
}

type Device = *mut c_void;

#[repr(C)]
struct MemoryV1 {
    total: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

#[repr(C)]
struct MemoryV2 {
    version: c_uint,
    total: c_ulonglong,
    reserved: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

fn raw_calls_get_nvml_error_codes(library: &Path, script: &Path) {
    let lib = RawLibrary::open(library);
    // SAFETY: each type below is the function's C signature in fake_nvml.c, and
    // every pointer passed points at live, large-enough memory (or is null on purpose).
    unsafe {
        let nvml_init: unsafe extern "C" fn() -> c_int = lib.get(c"nvmlInit_v2");
        let shutdown: unsafe extern "C" fn() -> c_int = lib.get(c"nvmlShutdown");
        let error_string: unsafe extern "C" fn(c_int) -> *const c_char = lib.get(c"nvmlErrorString");
        let count: unsafe extern "C" fn(*mut c_uint) -> c_int = lib.get(c"nvmlDeviceGetCount_v2");
        let driver_version: unsafe extern "C" fn(*mut c_char, c_uint) -> c_int = lib.get(c"nvmlSystemGetDriverVersion");
        let by_index: unsafe extern "C" fn(c_uint, *mut Device) -> c_int = lib.get(c"nvmlDeviceGetHandleByIndex_v2");
        let by_uuid: unsafe extern "C" fn(*const c_char, *mut Device) -> c_int = lib.get(c"nvmlDeviceGetHandleByUUID");
        let name: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> c_int = lib.get(c"nvmlDeviceGetName");
        let power: unsafe extern "C" fn(Device, *mut c_uint) -> c_int = lib.get(c"nvmlDeviceGetPowerUsage");
        let clock: unsafe extern "C" fn(Device, c_int, *mut c_uint) -> c_int = lib.get(c"nvmlDeviceGetClockInfo");
        let temperature: unsafe extern "C" fn(Device, c_int, *mut c_uint) -> c_int =
            lib.get(c"nvmlDeviceGetTemperature");
        let memory_v1: unsafe extern "C" fn(Device, *mut MemoryV1) -> c_int = lib.get(c"nvmlDeviceGetMemoryInfo");
        let memory_v2: unsafe extern "C" fn(Device, *mut MemoryV2) -> c_int = lib.get(c"nvmlDeviceGetMemoryInfo_v2");

        let mut n: c_uint = 0;
        assert_eq!(count(&mut n), 1, "UNINITIALIZED before init");
        assert_eq!(shutdown(), 1, "UNINITIALIZED shutdown before init");
        assert_eq!(CStr::from_ptr(error_string(3)).to_str().unwrap(), "Not Supported");

        use_script(Some(script));
        assert_eq!(nvml_init(), 0);
        assert_eq!(count(std::ptr::null_mut()), 2, "INVALID_ARGUMENT for a null count");
        let mut buf = [0 as c_char; 96];
        assert_eq!(driver_version(buf.as_mut_ptr(), 4), 7, "INSUFFICIENT_SIZE for a short buffer");
        assert_eq!(driver_version(buf.as_mut_ptr(), 10), 0);

        let mut gpu0: Device = std::ptr::null_mut();
        assert_eq!(by_index(2, &mut gpu0), 2, "INVALID_ARGUMENT for an index past the count");
        assert_eq!(by_index(0, std::ptr::null_mut()), 2);
        assert_eq!(by_uuid(c"GPU-not-here".as_ptr(), &mut gpu0), 6, "NOT_FOUND for an unknown uuid");
        assert_eq!(by_index(0, &mut gpu0), 0);
        assert_eq!(name(gpu0, buf.as_mut_ptr(), 5), 7);
        let mut value: c_uint = 0;
        let mut not_a_device = 0_u64;
        assert_eq!(power((&raw mut not_a_device).cast(), &mut value), 2, "INVALID_ARGUMENT for a stray handle");
        assert_eq!(power(gpu0, std::ptr::null_mut()), 2);
        assert_eq!(clock(gpu0, 0, &mut value), 3, "only the SM clock is scripted");
        assert_eq!(clock(gpu0, 7, &mut value), 2);
        assert_eq!(temperature(gpu0, 1, &mut value), 2);

        let mut v1 = MemoryV1 { total: 0, free: 0, used: 0 };
        assert_eq!(memory_v1(gpu0, &mut v1), 0);
        assert_eq!(v1.total, 81559 * MIB);
        assert_eq!(v1.free + v1.used, v1.total);
        let mut v2 = MemoryV2 { version: 1 << 24, total: 0, reserved: 0, free: 0, used: 0 };
        assert_eq!(memory_v2(gpu0, &mut v2), 25, "ARGUMENT_VERSION_MISMATCH for a v1 version tag");
        v2.version = (size_of::<MemoryV2>() as c_uint) | (2 << 24);
        assert_eq!(memory_v2(gpu0, &mut v2), 0);
        assert_eq!((v2.total, v2.reserved), (81559 * MIB, 0));

        assert_eq!(shutdown(), 0);
        assert_eq!(count(&mut n), 1, "UNINITIALIZED after the last shutdown");
    }
}
