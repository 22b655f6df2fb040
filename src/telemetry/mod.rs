//! WHAT the GPU did while the suite ran.
//!
//! A [`Sampler`] reads the GPUs (one real implementation: NVML, in
//! [`nvml`]); a [`Recorder`] runs it on its own thread at a fixed interval
//! and keeps the samples with their time; the runner asks for the samples of
//! each phase's window and [`summarize_phase`] (in the core crate, with the
//! data types) turns them into the figures the report and the gate use.

pub mod nvml;

pub use infergate_core::telemetry::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(mem: f64) -> GpuSample {
        GpuSample {
            t_ms: 0.0,
            device: 0,
            memory_used_mib: Some(mem),
            memory_used_pct: None,
            gpu_util_pct: None,
            mem_util_pct: None,
            power_w: None,
            energy_j: None,
            temperature_c: None,
            sm_clock_mhz: None,
            throttle_reasons: None,
        }
    }

    struct Counting(u32);
    impl Sampler for Counting {
        fn sample(&mut self) -> Vec<GpuSample> {
            self.0 += 1;
            vec![s(f64::from(self.0))]
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
