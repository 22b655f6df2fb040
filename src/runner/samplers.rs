//! The samplers that run beside the requests: the GPU recorder (NVML) and
//! the scraper of the server's Prometheus `/metrics`, on one clock (the
//! run's epoch), cut into phase windows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::RunPlan;
use crate::client::Client;
use crate::config::GpuMode;
use crate::exit::Failure;
use crate::telemetry::prometheus::{self, ServerPhase, ServerSample};
use crate::telemetry::{self, GpuInfo, GpuPhase, Recorder, nvml};

/// The samplers of a run.
pub struct Samplers {
    gpu: Option<Recorder>,
    server: Option<Scraper>,
}

struct Scraper {
    samples: Arc<Mutex<Vec<ServerSample>>>,
    task: tokio::task::JoinHandle<()>,
    epoch: Instant,
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Samplers {
    /// Starts what the plan asks for. GPU telemetry that is required but
    /// unavailable fails the run (exit 3); in `auto` mode the reason is
    /// recorded once and the run goes on.
    pub async fn start(
        plan: &RunPlan,
        client: &Client,
        epoch: Instant,
        warnings: &mut Vec<String>,
    ) -> Result<(Samplers, GpuInfo), Failure> {
        let interval = plan.gpu.interval;
        let (gpu, info) = match plan.gpu.mode {
            GpuMode::Off => (None, GpuInfo { status: "off".into(), ..GpuInfo::default() }),
            mode => {
                let opts = plan.gpu.nvml.clone();
                let started =
                    tokio::task::spawn_blocking(move || Recorder::start(move || nvml::open(&opts), interval, epoch))
                        .await
                        .map_err(|e| Failure::run(anyhow!("the GPU sampler could not start: {e}")))?;
                let started = started.and_then(|(rec, info)| {
                    if info.devices.is_empty() {
                        Err("no GPU selected (check CUDA_VISIBLE_DEVICES or [gpu] devices)".to_string())
                    } else {
                        Ok((rec, info))
                    }
                });
                match started {
                    Ok((rec, mut info)) => {
                        info.interval_ms = interval.as_secs_f64() * 1000.0;
                        let first = rec.first_reading(Duration::from_millis(500));
                        if !first.is_empty() {
                            info.memory_after_load_mib = first.iter().map(|s| s.memory_used_mib).sum();
                        }
                        (Some(rec), info)
                    }
                    Err(reason) if mode == GpuMode::Require => {
                        return Err(Failure::run(anyhow!(
                            "GPU telemetry is required (--gpu require / [gpu] mode) but unavailable: {reason}"
                        )));
                    }
                    Err(reason) => {
                        warnings.push(format!("GPU telemetry unavailable: {reason}"));
                        (None, GpuInfo { status: "unavailable".into(), reason: Some(reason), ..GpuInfo::default() })
                    }
                }
            }
        };
        let server = if plan.server_metrics { Scraper::start(client, interval, epoch).await } else { None };
        Ok((Samplers { gpu, server }, info))
    }

    /// Takes a GPU sample and a server scrape now and returns once the GPU
    /// sample is in (bounded), so phase windows start and end on a reading.
    pub async fn mark(&self) -> Instant {
        if let Some(rec) = &self.gpu {
            let before = rec.count();
            rec.sample_now();
            let deadline = Instant::now() + Duration::from_millis(250);
            while rec.count() == before && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Instant::now()
    }

    /// The GPU and server figures of the window `[from, to]`.
    pub fn phase(&self, from: Instant, to: Instant, output_tokens: u64) -> (Option<GpuPhase>, Option<ServerPhase>) {
        let gpu = self.gpu.as_ref().and_then(|rec| telemetry::summarize_phase(rec.window(from, to), output_tokens));
        let server = self.server.as_ref().and_then(|s| {
            let ms = |t: Instant| t.saturating_duration_since(s.epoch).as_secs_f64() * 1000.0;
            let (a, b) = (ms(from), ms(to));
            let window: Vec<ServerSample> = s
                .samples
                .lock()
                .map(|all| all.iter().filter(|x| x.t_ms >= a && x.t_ms <= b).cloned().collect())
                .unwrap_or_default();
            prometheus::summarize(&window)
        });
        (gpu, server)
    }
}

impl Scraper {
    /// Starts scraping `/metrics` when the server has it (with at least one
    /// metric infergate knows); `None` otherwise.
    async fn start(client: &Client, interval: Duration, epoch: Instant) -> Option<Scraper> {
        let first = client.get_text("/metrics").await.ok()?;
        let sample = prometheus::parse(&first);
        if sample == ServerSample::default() {
            return None;
        }
        let samples = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&samples);
        let client = client.clone();
        let task = tokio::spawn(async move {
            let mut next = tokio::time::Instant::now();
            loop {
                if let Ok(text) = client.get_text("/metrics").await {
                    let mut s = prometheus::parse(&text);
                    s.t_ms = Instant::now().saturating_duration_since(epoch).as_secs_f64() * 1000.0;
                    if let Ok(mut all) = shared.lock() {
                        all.push(s);
                    }
                }
                next += interval;
                tokio::time::sleep_until(next.max(tokio::time::Instant::now())).await;
            }
        });
        Some(Scraper { samples, task, epoch })
    }
}
