//! Test support shared by integration tests: a fake NVML library built from
//! `fake_nvml.c`, so the GPU sampler's real FFI path runs on machines without a
//! GPU. The fake's behaviour is scripted through the file named by
//! [`SCRIPT_ENV`]; `fake_nvml.c` documents the script's keys.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The environment variable the fake reads its script path from, in `nvmlInit`.
#[allow(dead_code, reason = "not every test binary scripts the fake through the environment")]
pub const SCRIPT_ENV: &str = "FAKE_NVML_SCRIPT";

const SOURCE: &str = include_str!("fake_nvml.c");
const CFLAGS: &[&str] = &["-std=c11", "-shared", "-fPIC", "-O2", "-pthread"];

/// Compiles the fake NVML once per test process and returns the path of its
/// `libnvidia-ml.so.1` (a `libnvidia-ml.so` link sits beside it).
///
/// The library lives under cargo's per-target temporary directory, in a folder
/// named after a hash of the source, compiler and flags, so test processes
/// running at once share one build and an edited source gets a fresh one.
/// Panics, with the compiler's output, when the source does not compile.
#[allow(dead_code, reason = "not every test binary uses the fake NVML")]
pub fn fake_nvml_library() -> PathBuf {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(compile_fake_nvml).clone()
}

fn compile_fake_nvml() -> PathBuf {
    let compiler = std::env::var("CC").ok().filter(|cc| !cc.is_empty()).unwrap_or_else(|| "cc".to_owned());
    let mut hasher = DefaultHasher::new();
    (SOURCE, &compiler, CFLAGS).hash(&mut hasher);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fake-nvml-{:016x}", hasher.finish()));
    let library = dir.join("libnvidia-ml.so.1");
    if library.is_file() {
        return library;
    }
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    // Written and built under names private to this process, then renamed into
    // place, so a concurrent test process never reads a half-written file.
    let pid = std::process::id();
    let source = dir.join(format!("fake_nvml.{pid}.c"));
    fs::write(&source, SOURCE).unwrap_or_else(|e| panic!("cannot write {}: {e}", source.display()));
    let partial = dir.join(format!("libnvidia-ml.so.1.{pid}.tmp"));
    let output = Command::new(&compiler)
        .args(CFLAGS)
        .arg("-o")
        .arg(&partial)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{compiler}` (set $CC to choose another): {e}"));
    if !output.status.success() {
        panic!(
            "`{compiler}` failed to compile {} ({}):\n{}{}",
            source.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = fs::remove_file(&source);
    fs::rename(&partial, &library).unwrap_or_else(|e| panic!("cannot move the fake NVML into place: {e}"));
    // For code that loads NVML by its unversioned name from a library path.
    match std::os::unix::fs::symlink("libnvidia-ml.so.1", dir.join("libnvidia-ml.so")) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => panic!("cannot link libnvidia-ml.so in {}: {e}", dir.display()),
    }
    library
}

/// Writes a fake NVML script to a new file in `dir` and returns its path.
#[allow(dead_code, reason = "not every test binary uses the fake NVML")]
pub fn write_nvml_script(dir: &Path, text: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let path = dir.join(format!("nvml-script-{}-{}.txt", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                return path;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", path.display()),
        }
    }
}

/// Serializes the tests of one binary that set [`SCRIPT_ENV`] and initialise
/// the fake in-process: the variable and the loaded library are process-wide.
/// A panic in another holder does not poison it for the rest.
#[allow(dead_code, reason = "not every test binary initialises the fake in-process")]
pub fn nvml_env_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many NVML getters the fake at `library` has answered since this process
/// loaded it, or `None` when it is not loaded now (it unloads when the last
/// `Nvml` using it is dropped, and the count starts again from zero).
#[allow(dead_code, reason = "not every test binary counts NVML calls")]
pub fn fake_nvml_calls(library: &Path) -> Option<u64> {
    let path = CString::new(library.as_os_str().as_bytes()).expect("library path contains a NUL byte");
    // SAFETY: RTLD_NOLOAD only takes a new reference to a library already
    // loaded, so no initialiser runs; the symbol is `unsigned long long
    // fake_nvml_calls(void)` in fake_nvml.c, and the handle is closed after the
    // call, leaving the library as loaded as it was.
    unsafe {
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if handle.is_null() {
            return None;
        }
        let symbol = libc::dlsym(handle, c"fake_nvml_calls".as_ptr());
        let calls = if symbol.is_null() {
            None
        } else {
            let function: unsafe extern "C" fn() -> u64 =
                std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn() -> u64>(symbol);
            Some(function())
        };
        libc::dlclose(handle);
        calls
    }
}

/// The built-in simulator on its own runtime, stopped when dropped; tests can
/// read its ground truth.
#[allow(dead_code, reason = "not every test binary uses the simulator")]
pub struct Sim {
    server: Option<infergate::sim::SimServer>,
    runtime: tokio::runtime::Runtime,
}

#[allow(dead_code, reason = "not every test binary uses every method")]
impl Sim {
    /// Starts a simulator with `config` on a free loopback port.
    pub fn start(config: infergate::sim::SimConfig) -> Sim {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime for the simulator");
        let server = runtime
            .block_on(infergate::sim::start(config, ([127, 0, 0, 1], 0).into()))
            .expect("the simulator starts on a free port");
        Sim { server: Some(server), runtime }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        self.server.as_ref().map(|s| s.base_url()).unwrap_or_default()
    }

    /// The ground truth of the requests it finished.
    pub fn truth(&self) -> Vec<infergate::sim::TruthRecord> {
        self.server.as_ref().map(|s| s.truth()).unwrap_or_default()
    }

    /// How many requests an injected fault has hit.
    pub fn faults_injected(&self) -> u64 {
        self.server.as_ref().map_or(0, |s| s.faults_injected())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.shutdown());
        }
    }
}

/// Sets the GitHub Actions environment of pull request #5 into `org/repo`
/// from `head_repo` (a fork when it differs) on `cmd`: event payload, API
/// URL, job summary and outputs files in `dir`, and `token`.
#[allow(dead_code, reason = "only the Actions and security tests run as a workflow step")]
pub fn actions_pr_env(cmd: &mut assert_cmd::Command, dir: &Path, api: &str, head_repo: &str, token: &str) {
    let event = dir.join("event.json");
    let payload = serde_json::json!({"pull_request": {"number": 5, "head": {"repo": {"full_name": head_repo}}, "base": {"repo": {"full_name": "org/repo"}}}});
    fs::write(&event, payload.to_string()).unwrap();
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "org/repo")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_API_URL", api)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "1234")
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("GITHUB_OUTPUT", dir.join("outputs.txt"))
        .env("GITHUB_TOKEN", token);
}
