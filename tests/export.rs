//! `infergate export` end to end: results of real runs against the built-in
//! simulator (with the fake NVML, so GPU figures are in them too), exported
//! in every format by the real binary and read back by each consumer's own
//! parser: BMF against a JSON Schema written from Bencher's documentation
//! (Python `jsonschema`), OpenMetrics through `prometheus_client`'s
//! OpenMetrics parser and its Prometheus text parser (what the Pushgateway
//! and node_exporter's textfile collector read), CSV through Python's `csv`
//! module. The Python packages live in the venv `.ci/run` creates
//! (`target/ci-venv`); a test creates it when it is missing and skips,
//! loudly, only when it cannot be created.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::gate::metrics::CATALOGUE;
use infergate::history::{self, HistoryRecord};
use infergate::results::{PhaseName, Results};
use infergate::sim::SimConfig;
use predicates::prelude::*;
use serde_json::Value;
use support::Sim;

/// One GPU, enough for the GPU families.
const ONE_GPU: &str = "
driver_version = 550.54.15
cuda_driver_version = 12040
device_count = 1
gpu0.name = NVIDIA H200
gpu0.uuid = GPU-11111111-2222-3333-4444-555555555555
gpu0.memory_total_mib = 143771
gpu0.memory_used_mib = 80000
gpu0.util_gpu = 87
gpu0.util_memory = 40
gpu0.power_mw = 450000
gpu0.energy_start_mj = 1000000
gpu0.temperature_c = 61
gpu0.power_limit_mw = 700000
";

/// The Python packages the consumers' parsers come from.
const PACKAGES: [&str; 2] = ["prometheus-client", "jsonschema"];

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").timeout(Duration::from_secs(300));
    cmd
}

/// Runs two quick-suite cases against `sim` with GPU telemetry from the fake
/// NVML into `dir/name`, and loads the results.
fn run(dir: &Path, sim: &Sim, name: &str) -> Results {
    let script = support::write_nvml_script(dir, ONE_GPU);
    infergate(dir)
        .env("INFERGATE_NVML_LIBRARY", support::fake_nvml_library())
        .env("FAKE_NVML_SCRIPT", script)
        .env_remove("CUDA_VISIBLE_DEVICES")
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/*"])
        .args(["--repetitions", "12", "--gpu", "require", "--out", name])
        .assert()
        .code(exit::PASS);
    infergate::results::load(&dir.join(name)).unwrap()
}

fn sim() -> Sim {
    Sim::start(SimConfig { itl_ms: 1.0, ..SimConfig::default() })
}

/// `infergate export ARGS` in `dir`, exit 0; returns stdout.
fn export(dir: &Path, args: &[&str]) -> String {
    let out = infergate(dir).arg("export").args(args).assert().code(exit::PASS).get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

/// The venv's Python with the consumers' packages, created when missing;
/// `None` (said loudly) when it cannot be.
fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv");
            let python = venv.join("bin/python");
            let ready = || {
                StdCommand::new(&python)
                    .args(["-c", "import prometheus_client, jsonschema"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if !ready() {
                let created = python.exists()
                    || StdCommand::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success());
                if created {
                    let _ = StdCommand::new(venv.join("bin/pip")).args(["install", "--quiet"]).args(PACKAGES).status();
                }
            }
            if ready() {
                Some(python)
            } else {
                eprintln!(
                    "!!!!!!!! SKIPPED: the consumers' parsers ({}) could not be installed into {}; \
                     run .ci/run or `python3 -m venv {0} && {0}/bin/pip install {}` !!!!!!!!",
                    PACKAGES.join(", "),
                    venv.display(),
                    PACKAGES.join(" ")
                );
                None
            }
        })
        .clone()
}

/// `consumers.py ARGS`: Ok(stdout as JSON) or Err(stderr) when the parser refused the file.
fn consume(python: &Path, args: &[&Path]) -> Result<Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/consumers.py");
    let out = StdCommand::new(python).arg(script).args(args).output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bmf.schema.json")
}

fn record(r: &Results, profile: &str) -> HistoryRecord {
    history::record_of(r, profile, None, None)
}

#[test]
fn bmf_passes_the_documented_schema_and_carries_every_figure() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = sim();
    let r1 = run(d, &sim, "r1.json");
    let r2 = run(d, &sim, "r2.json");

    export(d, &["--results", "r1.json", "--format", "bmf", "--out", "one.json"]);
    assert_eq!(consume(&py, &[Path::new("bmf"), &schema(), &d.join("one.json")]).unwrap()["benchmarks"], 4);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(d.join("one.json")).unwrap()).unwrap();
    let rec = record(&r1, "p");
    let mut seen = 0;
    for (case, phases) in &rec.cases {
        for (phase, metrics) in phases {
            for (name, point) in metrics {
                let def = infergate::gate::metrics::find(name).unwrap();
                let m = &doc[format!("{case}/{}", phase.as_str())][infergate::export::bmf::slug(def)];
                assert_eq!(m["value"].as_f64(), Some(point.value), "{case} {phase:?} {name}");
                match point.spread {
                    Some(_) => assert!(m["lower_value"].as_f64().unwrap() < point.value, "{m}"),
                    None => assert!(m.get("lower_value").is_none(), "{m}"),
                }
                seen += 1;
            }
        }
    }
    assert_eq!(seen, doc.as_object().unwrap().values().map(|b| b.as_object().unwrap().len()).sum::<usize>());
    // The GPU figures are there, in the catalogue's units.
    assert_eq!(
        doc["debugging/256/warm"]["gpu-util-pct"]["value"].as_f64(),
        rec.value("debugging/256", PhaseName::Warm, "gpu_util_pct")
    );
    assert!(doc["debugging/256/warm"]["gpu-memory-peak-mib"]["value"].as_f64().unwrap() >= 80_000.0);

    // Two runs of one setup: one report, the median and the range of the runs.
    let both = export(d, &["--results", "r1.json", "--results", "r2.json", "--format", "bmf"]);
    std::fs::write(d.join("both.json"), &both).unwrap();
    consume(&py, &[Path::new("bmf"), &schema(), &d.join("both.json")]).unwrap();
    let doc: Value = serde_json::from_str(&both).unwrap();
    let v = |r: &Results| record(r, "p").value("debugging/1024", PhaseName::Warm, "e2e_median").unwrap();
    let m = &doc["debugging/1024/warm"]["e2e-median-ms"];
    assert_eq!(m["value"].as_f64(), Some((v(&r1) + v(&r2)) / 2.0));
    assert_eq!(
        (m["lower_value"].as_f64(), m["upper_value"].as_f64()),
        (Some(v(&r1).min(v(&r2))), Some(v(&r1).max(v(&r2))))
    );

    // The validator does refuse what breaks the schema.
    std::fs::write(d.join("bad.json"), r#"{"a/warm": {"tokens-per-second": {"value": "fast"}}}"#).unwrap();
    let e = consume(&py, &[Path::new("bmf"), &schema(), &d.join("bad.json")]).unwrap_err();
    assert!(e.contains("'fast' is not of type 'number'"), "{e}");
}

#[test]
fn openmetrics_reads_back_through_prometheus_client() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = sim();
    let r1 = run(d, &sim, "r1.json");
    let r2 = run(d, &sim, "r2.json");
    // Quotes, a backslash and Hangul in a label value.
    let profile = "h200 \"큐웬\" \\ vllm";
    export(
        d,
        &[
            "--results",
            "r1.json",
            "--results",
            "r2.json",
            "--format",
            "openmetrics",
            "--profile",
            profile,
            "--out",
            "m.txt",
        ],
    );
    let text = std::fs::read_to_string(d.join("m.txt")).unwrap();
    assert!(text.ends_with("# EOF\n"));
    for parser in ["openmetrics", "prometheus"] {
        let families = consume(&py, &[Path::new(parser), &d.join("m.txt")]).unwrap_or_else(|e| panic!("{parser}: {e}"));
        let families = families.as_array().unwrap();
        let names: Vec<&str> = families.iter().map(|f| f["name"].as_str().unwrap()).collect();
        let expected: Vec<String> =
            CATALOGUE.iter().map(|m| infergate::export::openmetrics::family(m).unwrap().name).collect();
        assert_eq!(names, expected, "{parser}: every catalogue metric, GPU ones included, in catalogue order");
        let mut samples = 0;
        for (fam, def) in families.iter().zip(CATALOGUE) {
            let family = infergate::export::openmetrics::family(def).unwrap();
            assert_eq!(fam["type"], "gauge");
            if parser == "openmetrics" {
                assert_eq!(fam["unit"], family.unit);
            }
            for s in fam["samples"].as_array().unwrap() {
                let labels = &s["labels"];
                assert_eq!(labels["profile"], profile, "{parser}: the label value reads back as written");
                assert_eq!((labels["model"].as_str(), labels["engine"].as_str()), (Some("sim"), Some("infergate-sim")));
                assert!(s["timestamp"].is_null());
                let r = [&r1, &r2].into_iter().find(|r| r.run_id == labels["run_id"]).unwrap();
                let phase = if labels["phase"] == "cold" { PhaseName::Cold } else { PhaseName::Warm };
                let value = record(r, profile).value(labels["case"].as_str().unwrap(), phase, def.name).unwrap();
                assert_eq!(s["value"].as_f64(), Some(family.convert(value)), "{parser}: {s}");
                samples += 1;
            }
        }
        let expected: usize = [&r1, &r2]
            .iter()
            .map(|r| record(r, profile).cases.values().flat_map(|p| p.values()).map(|m| m.len()).sum::<usize>())
            .sum();
        assert_eq!(samples, expected, "{parser}");
    }
    // The parser does refuse what breaks the format: without `# EOF`.
    std::fs::write(d.join("cut.txt"), text.trim_end_matches("# EOF\n")).unwrap();
    let e = consume(&py, &[Path::new("openmetrics"), &d.join("cut.txt")]).unwrap_err();
    assert!(e.contains("EOF"), "{e}");
}

#[test]
fn csv_reads_back_through_python_csv_with_formulas_defused() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = sim();
    let r1 = run(d, &sim, "r1.json");
    let profile = "=HYPERLINK(\"http://x\",\"y\"),1";
    export(d, &["--results", "r1.json", "--format", "csv", "--profile", profile, "--out", "cases.csv"]);
    let bytes = std::fs::read(d.join("cases.csv")).unwrap();
    assert!(bytes.ends_with(b"\r\n"));
    let rows = consume(&py, &[Path::new("csv"), &d.join("cases.csv")]).unwrap();
    let rows: Vec<Vec<String>> = serde_json::from_value(rows).unwrap();
    assert_eq!(rows[0], infergate::export::csv::CASE_COLUMNS);
    let rec = record(&r1, profile);
    let total: usize = rec.cases.values().flat_map(|p| p.values()).map(|m| m.len()).sum();
    assert_eq!(rows.len(), total + 1);
    for row in &rows[1..] {
        assert_eq!(row.len(), 9);
        assert_eq!(row[1], format!("'{profile}"), "the formula is text");
        let phase = if row[3] == "cold" { PhaseName::Cold } else { PhaseName::Warm };
        assert_eq!(row[6].parse::<f64>().ok(), rec.value(&row[2], phase, &row[4]), "{row:?}");
        assert_eq!(row[5], infergate::gate::metrics::find(&row[4]).unwrap().unit);
    }

    let requests = export(d, &["--results", "r1.json", "--format", "csv", "--level", "request"]);
    std::fs::write(d.join("requests.csv"), &requests).unwrap();
    let rows: Vec<Vec<String>> =
        serde_json::from_value(consume(&py, &[Path::new("csv"), &d.join("requests.csv")]).unwrap()).unwrap();
    assert_eq!(rows[0], infergate::export::csv::REQUEST_COLUMNS);
    let all: Vec<(&str, PhaseName, &infergate::results::RequestRecord)> = r1
        .cases
        .iter()
        .flat_map(|c| c.phases.iter().flat_map(move |(p, ph)| ph.requests.iter().map(move |r| (c.id.as_str(), *p, r))))
        .collect();
    assert_eq!(rows.len(), all.len() + 1);
    let col = |name| infergate::export::csv::REQUEST_COLUMNS.iter().position(|c| *c == name).unwrap();
    for (row, (case, phase, r)) in rows[1..].iter().zip(&all) {
        assert_eq!((row[col("case")].as_str(), row[col("phase")].as_str()), (*case, phase.as_str()));
        assert_eq!(row[col("ok")], r.ok.to_string());
        assert_eq!(row[col("ttft_ms")].parse::<f64>().ok(), r.ttft_ms);
        assert_eq!(row[col("e2e_ms")].parse::<f64>().ok(), r.e2e_ms);
        assert_eq!(row[col("tokens_per_second")].parse::<f64>().ok(), r.tokens_per_second);
        assert_eq!(row[col("output_tokens")].parse::<u32>().ok(), r.output_tokens);
    }
}

#[test]
fn jsonl_is_one_history_record_per_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = sim();
    let r1 = run(d, &sim, "r1.json");
    let r2 = run(d, &sim, "r2.json");
    let text = export(d, &["--results", "r1.json", "--results", "r2.json", "--format", "jsonl"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for (line, r) in lines.iter().zip([&r1, &r2]) {
        let back: HistoryRecord = serde_json::from_str(line).unwrap();
        // Filed as `history append` files it, so an export and an append write the same line.
        assert_eq!(back.profile, infergate::history::DEFAULT_PROFILE);
        assert_eq!(back, record(r, infergate::history::DEFAULT_PROFILE));
        // The other formats name the setup.
        assert_eq!(infergate::export::default_profile(r), "nvidia-h200-sim-infergate-sim");
    }
}

#[test]
fn partial_results_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = sim();
    let mut r = run(d, &sim, "r.json");
    r.complete = false;
    infergate::results::save(&r, &d.join("partial.json")).unwrap();
    infergate(d)
        .args(["export", "--results", "partial.json", "--format", "openmetrics", "--out", "m.txt"])
        .assert()
        .code(exit::RUN_FAILED)
        .stderr(
            predicate::str::contains("partial.json is from a run that did not complete")
                .and(predicate::str::contains("--allow-partial")),
        );
    assert!(!d.join("m.txt").exists());
    infergate(d)
        .args(["export", "--results", "partial.json", "--format", "openmetrics", "--out", "m.txt", "--allow-partial"])
        .assert()
        .code(exit::PASS)
        .stderr(predicate::str::contains("warning: partial.json is from a run that did not complete"));
    assert!(std::fs::read_to_string(d.join("m.txt")).unwrap().ends_with("# EOF\n"));
}

#[test]
fn what_cannot_be_exported_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = sim();
    let r = run(d, &sim, "r.json");
    let mut other = r.clone();
    other.run_id = "other".into();
    other.environment.server.model = "another-model".into();
    infergate::results::save(&other, &d.join("other.json")).unwrap();
    let refused = |args: &[&str], says: &str| {
        infergate(d)
            .arg("export")
            .args(args)
            .args(["--out", "x.out"])
            .assert()
            .code(exit::INVALID_INPUT)
            .stderr(predicate::str::contains(says));
        assert!(!d.join("x.out").exists(), "{args:?}");
    };
    refused(&["--results", "r.json", "--format", "bmf", "--level", "request"], "--level request is for --format csv");
    refused(&["--results", "missing.json", "--format", "csv"], "cannot read results file missing.json");
    refused(&["--results", "r.json", "--results", "r.json", "--format", "bmf"], "both give run");
    refused(&["--results", "r.json", "--results", "r.json", "--format", "openmetrics"], "labels must be unique");
    refused(&["--results", "r.json", "--results", "other.json", "--format", "bmf"], "are not runs of one setup");
    refused(&["--results", "r.json", "--format", "csv", "--profile", ""], "--profile must be a name");
    std::fs::create_dir(d.join("folder")).unwrap();
    infergate(d)
        .args(["export", "--results", "r.json", "--format", "csv", "--out", "folder"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("is a directory"));
    // Different models are fine where each sample or row says which it is.
    export(d, &["--results", "r.json", "--results", "other.json", "--format", "openmetrics"]);
}

/// The Pushgateway's and node_exporter's binaries (Debian's packages,
/// unpacked by `.ci/run` into `target/export-tools`); `None`, said loudly,
/// when they are not there.
fn prometheus_tools() -> Option<(PathBuf, PathBuf)> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/export-tools/usr/bin");
    let (gateway, exporter) = (bin.join("prometheus-pushgateway"), bin.join("prometheus-node-exporter"));
    if gateway.is_file() && exporter.is_file() {
        return Some((gateway, exporter));
    }
    eprintln!(
        "!!!!!!!! SKIPPED: {} has no prometheus-pushgateway and prometheus-node-exporter; .ci/run unpacks them there \
         from Debian's packages (apt-get download, dpkg -x) !!!!!!!!",
        bin.display()
    );
    None
}

/// A server process, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `binary ARGS` and waits until `port` answers.
fn serve(binary: &Path, args: &[String], port: u16, log: &Path) -> Server {
    let log = std::fs::File::create(log).unwrap();
    let child = StdCommand::new(binary).args(args).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    let server = Server(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{} did not listen on {port}", binary.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// One HTTP/1.0 request to the loopback `port`: (status, body).
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n", body.len())
        .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

/// The `infergate_` sample lines of an exposition, by family: (family, line).
fn infergate_samples(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| l.starts_with("infergate_"))
        .map(|l| (l[..l.find('{').unwrap_or(l.len())].to_string(), l.to_string()))
        .collect()
}

#[test]
fn the_pushgateway_and_node_exporters_textfile_collector_take_it() {
    let Some((gateway, exporter)) = prometheus_tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = sim();
    run(d, &sim, "r.json");
    let profile = "h200 \"큐웬\" \\ vllm";
    let text = export(d, &["--results", "r.json", "--format", "openmetrics", "--profile", profile]);
    let ours = infergate_samples(&text);
    assert!(ours.len() > 40, "{text}");

    // The Pushgateway, as the book says: POST the text to a group.
    let port = free_port();
    let _gateway = serve(&gateway, &[format!("--web.listen-address=127.0.0.1:{port}")], port, &d.join("gateway.log"));
    let (status, body) = http(port, "POST", "/metrics/job/infergate/instance/h200", text.as_bytes());
    assert_eq!(status, 200, "the Pushgateway refused the push: {body}");
    let (status, scraped) = http(port, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let theirs = infergate_samples(&scraped);
    assert_eq!(theirs.len(), ours.len(), "{scraped}");
    // Same families (the gateway sorts them), the grouping labels added, the label values as written.
    let families = |samples: &[(String, String)]| {
        let mut f: Vec<String> = samples.iter().map(|(f, _)| f.clone()).collect();
        f.sort();
        f
    };
    assert_eq!(families(&theirs), families(&ours));
    for (_, line) in &theirs {
        assert!(line.contains("job=\"infergate\"") && line.contains("instance=\"h200\""), "{line}");
        assert!(line.contains(r#"profile="h200 \"큐웬\" \\ vllm""#), "{line}");
    }
    let sample = text.lines().find(|l| l.starts_with("infergate_ttft_median_seconds{")).unwrap();
    let value = sample.rsplit(' ').next().unwrap();
    assert!(
        theirs.iter().any(|(f, l)| f == "infergate_ttft_median_seconds" && l.ends_with(&format!(" {value}"))),
        "{value} not in {scraped}"
    );

    // node_exporter's textfile collector, reading what `--out` wrote into its folder.
    let textfiles = d.join("textfile");
    export(
        d,
        &["--results", "r.json", "--format", "openmetrics", "--profile", profile, "--out", "textfile/infergate.prom"],
    );
    let port = free_port();
    let _exporter = serve(
        &exporter,
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--collector.disable-defaults".into(),
            "--collector.textfile".into(),
            format!("--collector.textfile.directory={}", textfiles.display()),
        ],
        port,
        &d.join("exporter.log"),
    );
    let (status, scraped) = http(port, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(scraped.contains("node_textfile_scrape_error 0"), "{scraped}");
    assert_eq!(families(&infergate_samples(&scraped)), families(&ours), "{scraped}");
}
