//! The book's table of documented errors (`docs/src/exit-codes.md`), run row
//! by row through the binary: each command as written, each exit code as
//! documented.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use infergate::sim::SimConfig;
use support::Sim;

/// The book chapter that holds the table.
const DOC: &str = "docs/src/exit-codes.md";

/// The rows between the chapter's `exit-codes` markers: (error, command, exit code).
fn rows() -> Vec<(String, String, i32)> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC)).unwrap();
    let start = doc.find("<!-- exit-codes: begin -->").expect("docs/src/exit-codes.md has the exit-code table");
    let end = doc.find("<!-- exit-codes: end -->").expect("the table ends");
    doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("`infergate "))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 3, "{l}");
            let command = cells[1].trim_matches('`').to_string();
            (cells[0].to_string(), command, cells[2].parse().unwrap_or_else(|_| panic!("exit code in {l}")))
        })
        .collect()
}

fn infergate(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("infergate")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .timeout(Duration::from_secs(120))
        .args(args)
        .output()
        .unwrap()
}

fn quick_run(dir: &Path, sim: &Sim, cases: &str, out: &str) {
    let args = ["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", cases];
    let o = infergate(dir, &[&args[..], &["--repetitions", "8", "--out", out]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn every_documented_error_exits_with_its_documented_code() {
    let rows = rows();
    assert!(rows.len() >= 15, "{rows:?}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
    let slow = Sim::start(SimConfig { itl_ms: 8.0, ..SimConfig::default() });
    quick_run(d, &sim, "debugging/*", "r.json");
    quick_run(d, &slow, "debugging/*", "slow.json");
    quick_run(d, &sim, "code-review/1024", "other.json");
    assert!(infergate(d, &["baseline", "update", "--results", "r.json", "--baseline", "p"]).status.success());
    let good = std::fs::read_to_string(d.join("baselines/p.toml")).unwrap();
    let emptied: Vec<&str> =
        good.lines().map(|l| if l.starts_with("ttft_ms = ") { "ttft_ms = []" } else { l }).collect();
    std::fs::write(d.join("baselines/emptied.toml"), emptied.join("\n")).unwrap();
    let mut cut: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    cut["cases"][0]["phases"]["warm"]["requests"] = serde_json::json!([]);
    std::fs::write(d.join("cut.json"), cut.to_string()).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken.toml"), d.join("broken.toml"))
        .unwrap();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let long = "a".repeat(300);

    let mut wrong = Vec::new();
    for (what, command, code) in &rows {
        let line = command.replace("$SIM", &sim.url()).replace("$DEAD", &dead).replace("$LONG", &long);
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = infergate(d, &args);
        if out.status.code() != Some(*code) {
            wrong.push(format!(
                "{what}: `{command}` exited {:?}, {DOC} says {code}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
