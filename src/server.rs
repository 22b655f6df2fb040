//! Optional server lifecycle: infergate starts the server itself, waits until
//! it is ready, measures the time that took, and stops it at the end.
//!
//! The command runs through `sh -c` in its own process group with stdout and
//! stderr in a log file, so stopping it reaches every process it started:
//! SIGTERM to the group, then SIGKILL after a grace period. A server that
//! exits early or never becomes ready is an error whose message carries the
//! last lines of that log. A [`RunningServer`] dropped without [`stop`] kills
//! the group at once, so no path (error, panic) leaves a process behind.
//!
//! [`stop`]: RunningServer::stop

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Secret};
use crate::exit::Failure;

/// How to launch the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// Shell command line (`sh -c`).
    pub command: String,
    /// Longest wait for `/health` and the model in `/v1/models`.
    pub ready_timeout: Duration,
    /// Wait between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
    /// Where the server's stdout and stderr go.
    pub log: PathBuf,
    /// Which run of several this launch is for (1-based), given to the
    /// command as `INFERGATE_RUN` (e.g. to seed a simulator differently per launch).
    pub run: u32,
}

/// What the results record about a server infergate launched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchInfo {
    /// The command line.
    pub command: String,
    /// Seconds from start to ready (`/health` answers and the model is listed).
    pub time_to_ready_s: f64,
    /// The server's log file.
    pub log: String,
}

/// A server started by infergate.
#[derive(Debug)]
pub struct RunningServer {
    child: Option<tokio::process::Child>,
    pgid: i32,
    grace: Duration,
    log: PathBuf,
    /// The API key, blanked out of the log once the server is gone.
    secret: Option<Secret>,
    /// Start to ready.
    pub time_to_ready: Duration,
}

/// Lines of the log shown in error messages.
const LOG_TAIL_LINES: usize = 20;

/// The last lines of a log file, indented, for an error message.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    if tail.is_empty() {
        format!("(the log {} is empty)", path.display())
    } else {
        format!("last lines of {}:\n    {}", path.display(), tail.join("\n    "))
    }
}

/// Starts the server and waits until it is ready.
pub async fn start(launch: &Launch, client: &Client) -> Result<RunningServer, Failure> {
    if let Some(dir) = launch.log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Failure::run(anyhow!("cannot create {}: {e}", dir.display())))?;
    }
    let log = crate::fsutil::create_log(&launch.log)
        .map_err(|e| crate::fsutil::failure(e.context("cannot create the server log")))?;
    let log_err = log.try_clone().map_err(|e| Failure::run(anyhow!("cannot share the server log: {e}")))?;
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&launch.command)
        .env("INFERGATE_RUN", launch.run.max(1).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    #[cfg(unix)]
    cmd.process_group(0);
    let child = cmd.spawn().map_err(|e| {
        Failure::run(anyhow!("cannot start the server command `{}`: {e}", client.redact(&launch.command)))
    })?;
    let pgid = child.id().map_or(0, |id| id as i32);
    let mut server = RunningServer {
        child: Some(child),
        pgid,
        grace: launch.stop_grace,
        log: launch.log.clone(),
        secret: client.config().api_key.clone(),
        time_to_ready: Duration::ZERO,
    };
    let deadline = started + launch.ready_timeout;
    let mut wrong_model_since: Option<Instant> = None;
    loop {
        if let Some(child) = server.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                server.child = None;
                server.kill_group();
                server.scrub_log();
                return Err(Failure::run(anyhow!(
                    "the server command exited ({status}) before it was ready: `{}`\n{}",
                    client.redact(&launch.command),
                    client.redact(&log_tail(&launch.log))
                )));
            }
        }
        match ready(client).await {
            Readiness::Ready => {
                server.time_to_ready = started.elapsed();
                return Ok(server);
            }
            Readiness::OtherModels(served) => {
                // Up and answering, but not with our model: waiting will not help.
                let since = *wrong_model_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= WRONG_MODEL_GRACE {
                    server.stop().await;
                    return Err(Failure::invalid(anyhow!(
                        "the started server serves {} but not `{}`; fix --model ([server] model) to one of them",
                        if served.is_empty() { "no model".to_string() } else { served.join(", ") },
                        client.config().model
                    )));
                }
            }
            Readiness::NotYet => {}
        }
        if Instant::now() >= deadline {
            server.stop().await;
            return Err(Failure::run(anyhow!(
                "the server was not ready within {:?} (GET /health and the model in GET /v1/models at {}); \
                 raise [server] ready_timeout if it loads slowly\n{}",
                launch.ready_timeout,
                client.config().base_url,
                client.redact(&log_tail(&launch.log))
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long a server that is up may list other models before that is final.
const WRONG_MODEL_GRACE: Duration = Duration::from_secs(5);

enum Readiness {
    Ready,
    NotYet,
    /// Healthy and listing models, but not ours.
    OtherModels(Vec<String>),
}

async fn ready(client: &Client) -> Readiness {
    if client.get_json("/health").await.is_err() && client.get_text("/health").await.is_err() {
        return Readiness::NotYet;
    }
    let Ok(models) = client.get_json("/v1/models").await else { return Readiness::NotYet };
    let served: Vec<String> = models
        .get("data")
        .and_then(|d| d.as_array())
        .map(|list| list.iter().filter_map(|m| m.get("id").and_then(|v| v.as_str()).map(str::to_string)).collect())
        .unwrap_or_default();
    if served.iter().any(|m| m == &client.config().model) {
        Readiness::Ready
    } else if served.is_empty() {
        Readiness::NotYet
    } else {
        Readiness::OtherModels(served)
    }
}

impl RunningServer {
    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// SIGTERM to the process group, SIGKILL after the grace period.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            self.kill_group();
            return;
        };
        signal_group(self.pgid, libc::SIGTERM);
        let exited = tokio::time::timeout(self.grace, child.wait()).await.is_ok();
        if !exited {
            tracing::warn!("the server ignored SIGTERM for {:?}; killing it", self.grace);
        }
        // The shell may be gone while what it started lives on: the whole group goes.
        self.kill_group();
        let _ = child.wait().await;
        self.scrub_log();
    }

    fn kill_group(&self) {
        signal_group(self.pgid, libc::SIGKILL);
    }

    /// Blanks the API key out of the log once nothing writes to it any more:
    /// servers print their arguments (`--api-key ...`) at start-up, and the
    /// log is kept beside the results, often uploaded as a CI artifact.
    fn scrub_log(&self) {
        let Some(secret) = &self.secret else { return };
        let Ok(bytes) = std::fs::read(&self.log) else { return };
        if let Some(clean) = secret.redact_bytes(&bytes) {
            if let Err(e) = crate::fsutil::write_atomic(&self.log, &clean) {
                tracing::warn!("cannot blank the API key out of {}: {e:#}", self.log.display());
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            signal_group(self.pgid, libc::SIGKILL);
            let _ = child.start_kill();
            self.scrub_log();
        }
    }
}

fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group we created; no memory is involved.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}
