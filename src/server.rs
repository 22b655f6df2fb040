//! Optional server lifecycle: infergate starts the server itself, waits until
//! it is ready, measures the time that took, and stops it at the end.
//!
//! The server measured must be the server started. Before launching, the
//! port of the base URL must be free: a server left over from an earlier run
//! would otherwise answer `/health` at once and be measured while the new one
//! fails to bind (exit 3 naming what answers). Readiness counts only while
//! the command started is still running: one that exited (a server that
//! could not bind exits) is exit 3 with the tail of its log.
//!
//! The command runs through `sh -c` in a process group of its own with stdout
//! and stderr in a log file, so stopping it reaches every process it started:
//! SIGTERM to the group, then SIGKILL after a grace period, then a bounded
//! wait until no process of the group is left. A server that exits early or
//! never becomes ready is an error whose message carries the last lines of
//! that log. A [`RunningServer`] dropped without [`stop`] kills the group at
//! once, so no path (error, panic) leaves a process behind.
//!
//! Nor does infergate's own death, even by SIGKILL, which no handler sees.
//! The group is led by a watchdog, a `sh` that reads a pipe whose only writer
//! is infergate; when infergate dies, however it dies, the kernel closes the
//! pipe and the watchdog kills its group (`kill -s KILL 0`): the command and
//! everything it started. `PR_SET_PDEATHSIG` would not do: it reaches only
//! the direct child (the `sh`, not a server that the command line starts in
//! the background, or after `cd dir &&`), and it fires when the spawning
//! *thread* exits, which for a thread of tokio's pool is not the process's
//! death. The pipe is closed by the process's death and nothing else. The
//! watchdog leads the group, so the group (and its id, which `stop` signals)
//! lives as long as the watchdog.
//!
//! [`stop`]: RunningServer::stop

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::anyhow;

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
    /// Environment variables the server never sees: CI credentials
    /// ([`CI_CREDENTIALS`]) and the GitHub token's variable of this command.
    pub withheld_env: Vec<String>,
}

/// Credentials a CI job holds in its environment that a server has no use
/// for: the GitHub token (and `gh`'s), the Actions runtime's tokens and the
/// OIDC token request. The server's command may come from the pull request
/// (`[server] command` in its `infergate.toml`), so it gets none of them.
pub const CI_CREDENTIALS: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_RUNTIME_URL",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_CACHE_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
];

pub use infergate_core::results::LaunchInfo;

/// A server started by infergate.
#[derive(Debug)]
pub struct RunningServer {
    child: Option<tokio::process::Child>,
    /// The group's leader, which kills the group when infergate dies.
    watchdog: Option<tokio::process::Child>,
    /// The write end of the watchdog's pipe: closing it (infergate's death,
    /// or dropping this) makes the watchdog kill the group.
    lifeline: Option<tokio::process::ChildStdin>,
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

/// How much of the end of a log is read for its last lines.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// The last lines of a log file, indented, for an error message (only its
/// last 64 KiB are read: a server's log can be any size). They are the
/// server's text: each line made inert.
pub fn log_tail(path: &Path) -> String {
    use std::io::{Read as _, Seek as _};
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map_or(0, |m| m.len());
        let _ = f.seek(std::io::SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
        let _ = f.take(LOG_TAIL_BYTES).read_to_end(&mut bytes);
    }
    let text: String =
        String::from_utf8_lossy(&bytes).lines().map(|l| crate::text::inert(l).into_owned() + "\n").collect();
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
    ensure_port_free(&client.config().base_url).await?;
    if let Some(dir) = launch.log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Failure::run(anyhow!("cannot create {}: {e}", dir.display())))?;
    }
    let log = crate::fsutil::create_log(&launch.log)
        .map_err(|e| crate::fsutil::failure(e.context("cannot create the server log")))?;
    let log_err = log.try_clone().map_err(|e| Failure::run(anyhow!("cannot share the server log: {e}")))?;
    let (mut watchdog, pgid) = spawn_watchdog()?;
    let lifeline = watchdog.stdin.take();
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&launch.command)
        .env("INFERGATE_RUN", launch.run.max(1).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    for name in CI_CREDENTIALS.iter().copied().chain(launch.withheld_env.iter().map(String::as_str)) {
        cmd.env_remove(name);
    }
    cmd.process_group(pgid);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            signal_group(pgid, libc::SIGKILL);
            let _ = watchdog.wait().await;
            return Err(Failure::run(anyhow!(
                "cannot start the server command `{}`: {e}",
                client.redact(&launch.command)
            )));
        }
    };
    let mut server = RunningServer {
        child: Some(child),
        watchdog: Some(watchdog),
        lifeline,
        pgid,
        grace: launch.stop_grace,
        log: launch.log.clone(),
        secret: client.config().api_key.clone(),
        time_to_ready: Duration::ZERO,
    };
    // A wait beyond what the clock can represent has no end; limits are
    // validated to at most `limits::MAX_DURATION`, so this is only a guard.
    let deadline = started.checked_add(launch.ready_timeout);
    let mut wrong_model_since: Option<Instant> = None;
    loop {
        server.fail_if_exited(launch, client).await?;
        match ready(client).await {
            Readiness::Ready => {
                // What answered is the server started here only while its
                // command runs: one that exited could not bind the port, and
                // whatever answers is something else.
                server.fail_if_exited(launch, client).await?;
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
        if deadline.is_some_and(|d| Instant::now() >= d) {
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
    /// An error (exit 3, with the tail of the log) when the command has
    /// exited; the group is killed and reaped first.
    async fn fail_if_exited(&mut self, launch: &Launch, client: &Client) -> Result<(), Failure> {
        let Some(child) = self.child.as_mut() else { return Ok(()) };
        let Ok(Some(status)) = child.try_wait() else { return Ok(()) };
        self.child = None;
        self.stop().await;
        Err(Failure::run(anyhow!(
            "the server command exited ({status}) before it was ready: `{}`\n{}",
            client.redact(&launch.command),
            client.redact(&log_tail(&launch.log))
        )))
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// SIGTERM to the process group, SIGKILL after the grace period, then
    /// a bounded wait until no process of the group is left (so that the
    /// port is free for the next launch).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(self.pgid, libc::SIGTERM);
            let exited = tokio::time::timeout(self.grace, child.wait()).await.is_ok();
            if !exited {
                tracing::warn!("the server ignored SIGTERM for {:?}; killing it", self.grace);
            }
            // The shell may be gone while what it started lives on: the whole group goes.
            self.kill_group();
            let _ = child.wait().await;
        } else {
            self.kill_group();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.wait().await;
        }
        self.lifeline = None;
        wait_group_gone(self.pgid, GROUP_EXIT_WAIT).await;
        self.scrub_log();
    }

    fn kill_group(&self) {
        signal_group(self.pgid, libc::SIGKILL);
    }

    /// Blanks the API key out of the log once nothing writes to it any more:
    /// servers print their arguments (`--api-key ...`) at start-up, and the
    /// log is kept beside the results, often uploaded as a CI artifact.
    /// The log is streamed (first to look, then to copy), never read whole.
    fn scrub_log(&self) {
        let Some(secret) = &self.secret else { return };
        let Ok(log) = std::fs::File::open(&self.log) else { return };
        if !secret.redact_stream(std::io::BufReader::new(log), std::io::sink()).unwrap_or(false) {
            return;
        }
        let copy = crate::fsutil::write_atomic_with(&self.log, |to| {
            let from = std::io::BufReader::new(std::fs::File::open(&self.log)?);
            secret.redact_stream(from, std::io::BufWriter::new(to))?;
            Ok(())
        });
        if let Err(e) = copy {
            tracing::warn!("cannot blank the API key out of {}: {e:#}", self.log.display());
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
        if let Some(watchdog) = self.watchdog.as_mut() {
            let _ = watchdog.start_kill();
        }
    }
}

/// The longest wait, after SIGKILL, for the group's last process to go.
const GROUP_EXIT_WAIT: Duration = Duration::from_secs(5);

/// What the watchdog runs: wait for EOF on stdin (infergate gone, or done
/// with the server), then SIGKILL its own process group.
const WATCHDOG_SCRIPT: &str = "while read -r _; do :; done; kill -s KILL 0";

/// Starts the watchdog as the leader of a new process group; returns it and
/// the group's id. Its stdin is a pipe whose write end only this process
/// holds (the standard library opens pipes close-on-exec).
fn spawn_watchdog() -> Result<(tokio::process::Child, i32), Failure> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(WATCHDOG_SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let child = cmd.spawn().map_err(|e| Failure::run(anyhow!("cannot start `sh` to watch the server: {e}")))?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok()).unwrap_or(0);
    if pgid <= 0 {
        return Err(Failure::run(anyhow!("the server's watchdog exited at once")));
    }
    Ok((child, pgid))
}

/// Waits, polling, until no live process is in group `pgid`, at most `limit`.
async fn wait_group_gone(pgid: i32, limit: Duration) {
    let until = crate::limits::after(Instant::now(), limit);
    while group_alive(pgid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process that is not a zombie is in group `pgid`. Zombies hold
/// no port, and one whose parent never reaps it (PID 1 of some containers)
/// would otherwise make every stop wait the whole limit.
#[cfg(target_os = "linux")]
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return signal_group_probe(pgid) };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { return false };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else { return false };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && !matches!(state, "Z" | "X")
    })
}

#[cfg(not(target_os = "linux"))]
fn group_alive(pgid: i32) -> bool {
    signal_group_probe(pgid)
}

/// Whether group `pgid` has any member (zombies included).
fn signal_group_probe(pgid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the group exists; no memory is involved.
    pgid > 0 && unsafe { libc::kill(-pgid, 0) } == 0
}

/// How long the port check waits for a connection, and then for an answer.
const PORT_PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Exit 3 when something already accepts connections on the base URL's
/// port: the server about to start could not bind it, and what answers
/// would be measured in its place.
async fn ensure_port_free(base_url: &str) -> Result<(), Failure> {
    let Some(target) = Target::parse(base_url) else { return Ok(()) };
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    // A name that does not resolve: the readiness wait reports the server unreachable.
    let Ok(Ok(addrs)) = tokio::time::timeout(PORT_PROBE_TIMEOUT, lookup).await else { return Ok(()) };
    for addr in addrs {
        let Ok(Ok(stream)) = tokio::time::timeout(PORT_PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
        else {
            continue;
        };
        let what = if target.https { "accepts connections".to_string() } else { identify(stream, &target).await };
        return Err(Failure::run(anyhow!(
            "port {port} is already in use before the server command starts: {addr} {what}. The command's server \
             could not bind it, and infergate would measure whatever answers there instead (a server left over \
             from an earlier run?). Stop it (`ss -ltnp 'sport = :{port}'` names the process) or give the command \
             and --base-url ([server] base_url) another port",
            port = target.port,
        )));
    }
    Ok(())
}

/// Host and port of a base URL.
#[derive(Debug, PartialEq)]
struct Target {
    host: String,
    port: u16,
    https: bool,
}

impl Target {
    /// `http(s)://[user@]host[:port][/path]`; `None` when the port is not a number.
    fn parse(base_url: &str) -> Option<Target> {
        let (scheme, rest) = base_url.split_once("://")?;
        let https = scheme.eq_ignore_ascii_case("https");
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let default = if https { 443 } else { 80 };
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        Some(Target { host: host.to_string(), port, https })
    }
}

/// What answers on `stream`, for the message: the status of `GET /health`
/// and the `Server` header, read bounded (4 KiB, one timeout) and shown
/// only as printable ASCII.
async fn identify(mut stream: tokio::net::TcpStream, target: &Target) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = if target.host.contains(':') { format!("[{}]", target.host) } else { target.host.clone() };
    let request = format!("GET /health HTTP/1.0\r\nHost: {host}:{}\r\nConnection: close\r\n\r\n", target.port);
    let read = async {
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        (&mut stream).take(4096).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let head = match tokio::time::timeout(PORT_PROBE_TIMEOUT, read).await {
        Ok(Ok(buf)) if !buf.is_empty() => String::from_utf8_lossy(&buf).into_owned(),
        _ => return "accepts connections (no HTTP answer to GET /health)".into(),
    };
    let printable = |s: &str| -> String {
        s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(80).collect::<String>().trim().to_string()
    };
    let mut lines = head.lines();
    let status = lines.next().map(printable).unwrap_or_default();
    let Some(status) = status.strip_prefix("HTTP/").and_then(|s| s.split_once(' ')).map(|(_, s)| s.to_string()) else {
        return "accepts connections (no HTTP answer to GET /health)".into();
    };
    let server = lines
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("server")).map(|(_, v)| printable(v))
        })
        .filter(|v| !v.is_empty());
    match server {
        Some(server) => format!("answers GET /health with {status} (Server: {server})"),
        None => format!("answers GET /health with {status}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_checked_is_the_base_urls() {
        let t = |u: &str| Target::parse(u).map(|t| (t.host, t.port, t.https));
        assert_eq!(t("http://127.0.0.1:8000"), Some(("127.0.0.1".into(), 8000, false)));
        assert_eq!(t("http://localhost/prefix"), Some(("localhost".into(), 80, false)));
        assert_eq!(t("https://u:p@example.com/v"), Some(("example.com".into(), 443, true)));
        assert_eq!(t("http://[::1]:9000/x"), Some(("::1".into(), 9000, false)));
        assert_eq!(t("http://[::1]"), Some(("::1".into(), 80, false)));
        assert_eq!(t("http://h:99999"), None);
        assert_eq!(t("h:80"), None);
    }

    #[tokio::test]
    async fn a_free_port_passes_and_a_taken_one_is_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = ensure_port_free(&format!("http://127.0.0.1:{port}")).await.unwrap_err();
        assert_eq!(err.code(), crate::exit::RUN_FAILED);
        let msg = format!("{err:#}");
        assert!(msg.contains(&format!("port {port} is already in use")) && msg.contains("no HTTP answer"), "{msg}");
        drop(listener);
        ensure_port_free(&format!("http://127.0.0.1:{port}")).await.unwrap();
    }
}
