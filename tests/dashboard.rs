//! `infergate history dashboard` in a real browser: a store of synthetic
//! runs (the simulator's performance model) with a known step, a baseline
//! and a torn last line; the page built by the binary; headless Chromium
//! loads it from disk and its DOM, as the page's own script left it, is
//! checked: the number of charts, the change points, the baseline lines,
//! the pinned tooltip of one run, no error of any kind (guard.js counts
//! script errors, console.error, blocked loads; and Chromium's own console
//! log must be empty). Screenshots are kept under
//! `target/tmp/dashboard/` to be looked at.
//!
//! The browser is `$INFERGATE_BROWSER`, else `chromium`, `chromium-browser`,
//! `google-chrome` or `google-chrome-stable` on the PATH. Without one, the
//! browser checks are skipped with a loud message, unless
//! `INFERGATE_REQUIRE_BROWSER` is set (as `.ci/run` does): then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test or run, not a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::history::{HistoryRecord, record_of};
use infergate::sim::SimConfig;

/// Runs of profile alpha; from run STEP_AT on, the server is 25% slower.
const ALPHA_RUNS: usize = 30;
const STEP_AT: usize = 18;
const BETA_RUNS: usize = 12;
/// A case id that tries to end the data's script element and run its own.
const HOSTILE_CASE: &str = "</script><script>window.infergateFail('injected')</script><!--";
const REPO: &str = "https://github.com/example/infergate";

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir)
        .timeout(Duration::from_secs(300))
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_REPOSITORY");
    cmd
}

fn commit(profile: &str, run: usize) -> String {
    let seed = infergate::rng::Rng::from_parts(&[profile.as_bytes(), &run.to_le_bytes()]).next_u64();
    format!("{seed:016x}{:024x}", run)
}

/// The records of `runs` synthetic runs of the quick suite, 2% drift between
/// runs; from run `step_at` on, `slowdown` slower.
fn records(
    profile: &str,
    runs: usize,
    step_at: usize,
    slowdown: f64,
) -> (Vec<HistoryRecord>, Vec<infergate::results::Results>) {
    let suite = infergate::suite::load("quick").unwrap();
    let mut recs = Vec::new();
    let mut results = Vec::new();
    for run in 0..runs {
        let config = SimConfig {
            run_drift: 0.02,
            request_cv: 0.05,
            slowdown: if run >= step_at { slowdown } else { 1.0 },
            seed: 7,
            ..SimConfig::default()
        };
        let r = infergate::sim::synthetic::run(&config, &suite, 5, run as u64 + 1);
        let mut rec = record_of(&r, profile, Some(&commit(profile, run)), Some("refs/heads/main"));
        rec.time = format!("2026-11-{:02}T{:02}:30:00Z", 1 + run / 2, 8 + 6 * (run % 2));
        results.push(r);
        recs.push(rec);
    }
    (recs, results)
}

fn write_store(path: &Path, records: &[HistoryRecord], tail: &str) {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).unwrap());
        text.push('\n');
    }
    text.push_str(tail);
    std::fs::write(path, text).unwrap();
}

/// The store: alpha with a step, a baseline and the hostile case; beta flat,
/// its last line torn.
fn store(dir: &Path) -> (usize, usize) {
    std::fs::create_dir_all(dir.join("history")).unwrap();
    std::fs::create_dir_all(dir.join("baselines")).unwrap();
    let (mut alpha, alpha_results) = records("alpha", ALPHA_RUNS, STEP_AT, 1.25);
    for rec in &mut alpha {
        let copy = rec.cases["code-review/256"].clone();
        rec.cases.insert(HOSTILE_CASE.into(), copy);
    }
    alpha[3].git_ref = Some("refs/heads/</script><!--".into());
    write_store(&dir.join("history/alpha.jsonl"), &alpha, "");
    let baseline = infergate::baseline::Baseline::from_runs(&alpha_results[..3], "alpha");
    std::fs::write(dir.join("baselines/alpha.toml"), baseline.to_toml().unwrap()).unwrap();
    let (beta, _) = records("beta", BETA_RUNS, usize::MAX, 1.0);
    let torn = serde_json::to_string(&beta[0]).unwrap();
    write_store(&dir.join("history/beta.jsonl"), &beta, &torn[..torn.len() / 2]);
    // Charts with every metric shown: one per case and phase/metric the records hold.
    let count = |recs: &[HistoryRecord]| {
        let mut keys = BTreeMap::new();
        for r in recs {
            for (case, phases) in &r.cases {
                for (phase, metrics) in phases {
                    for m in metrics.keys() {
                        keys.insert((case.clone(), *phase, m.clone()), ());
                    }
                }
            }
        }
        keys.len()
    };
    (count(&alpha), count(&beta))
}

fn browser() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("INFERGATE_BROWSER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The browser, or `None` after saying loudly that the browser checks are skipped.
fn browser_or_skip(test: &str) -> Option<PathBuf> {
    let found = browser();
    if found.is_none() {
        assert!(
            std::env::var_os("INFERGATE_REQUIRE_BROWSER").is_none(),
            "INFERGATE_REQUIRE_BROWSER is set but no browser was found: install Debian's chromium \
             (apt-get install chromium) or set INFERGATE_BROWSER to a Chromium or Chrome binary"
        );
        eprintln!(
            "\n!!!!!!!! {test}: SKIPPED, NOT TESTED: no chromium here (apt-get install chromium, or set \
             INFERGATE_BROWSER); the dashboard was built but not loaded in a browser !!!!!!!!\n"
        );
    }
    found
}

/// Headless Chromium on `page` with `args` (`--dump-dom`, `--screenshot=...`); returns stdout.
/// The browser's own log of the page's console is a second witness beside guard.js: it holds
/// what the page logged, or threw, even before guard.js ran; the page logs nothing.
fn chromium(browser: &Path, profile: &Path, page: &str, args: &[&str]) -> String {
    let out = Command::new(browser)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--no-default-browser-check"])
        .args(["--disable-extensions", "--hide-scrollbars", "--mute-audio", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(page)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} failed: {log}", browser.display());
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "{page}: the page wrote to the console:\n{}", console.join("\n"));
    String::from_utf8(out.stdout).unwrap()
}

/// An attribute of the dumped page's `<html>` element.
fn html_attr(dom: &str, name: &str) -> String {
    let start = dom.find("<html").expect("an <html> element");
    let tag = &dom[start..start + dom[start..].find('>').unwrap()];
    let key = format!(" {name}=\"");
    let at = tag.find(&key).unwrap_or_else(|| panic!("no {name} on {tag}")) + key.len();
    tag[at..at + tag[at..].find('"').unwrap()].to_string()
}

/// The page loaded, drew `charts` charts and met no error.
fn assert_drawn(dom: &str, charts: usize, what: &str) {
    assert_eq!(html_attr(dom, "data-state"), "ready", "{what}: the script did not finish");
    let errors =
        dom.find("<pre id=\"errors\"").map(|i| &dom[i..i + dom[i..].find("</pre>").unwrap_or(0)]).unwrap_or("");
    assert_eq!(html_attr(dom, "data-errors"), "0", "{what}: errors on the page: {errors}");
    assert_eq!(html_attr(dom, "data-charts"), charts.to_string(), "{what}");
    assert_eq!(dom.matches("<figure class=\"chart\"").count(), charts, "{what}");
    assert_eq!(dom.matches("<svg viewBox=").count(), charts, "{what}: one SVG per chart");
}

/// The `data-index` of every change-point mark in `dom`.
fn change_marks(dom: &str) -> Vec<usize> {
    dom.split("<g class=\"cp\" data-index=\"").skip(1).map(|s| s[..s.find('"').unwrap()].parse().unwrap()).collect()
}

#[test]
fn the_page_draws_every_chart_in_a_real_browser_without_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (alpha_series, beta_series) = store(d);
    // 8 cases of the quick suite and the hostile copy; 8 metrics of each of two phases.
    assert_eq!((alpha_series, beta_series), (9 * 16, 8 * 16));
    let out = infergate(d)
        .args(["history", "dashboard", "--store", "history", "--out", "page", "--repo-url", REPO])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::PASS), "{stderr}");
    assert!(stderr.contains("beta.jsonl line 13: the last line is incomplete"), "{stderr}");
    assert!(stderr.contains("2 profile(s), 42 run(s), 272 chart(s)"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), Path::new("page").join("index.html").to_str().unwrap());
    let page = d.join("page/index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains(HOSTILE_CASE) && !html.contains("</script><!--"), "the data is escaped in the file");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "nothing to load in the file");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&page).unwrap().permissions().mode() & 0o777, 0o644, "a web server can read it");

    let Some(browser) = browser_or_skip("the_page_draws_every_chart_in_a_real_browser_without_an_error") else {
        return;
    };
    let profile = d.join("chromium-profile");
    let url = format!("file://{}", page.display());
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();

    // The default view: alpha's continuous-response tokens per second, one chart per case.
    let dom = chromium(&browser, &profile, &url, &["--dump-dom"]);
    assert_drawn(&dom, 9, "default view");
    assert_eq!(html_attr(&dom, "data-profile"), "alpha");
    assert_eq!(html_attr(&dom, "data-metric"), "warm/tokens_per_second");
    // Every case stepped at run STEP_AT; each chart marks it, and nothing else.
    let marks = change_marks(&dom);
    assert_eq!(marks.len(), 9, "one change point per chart: {marks:?}");
    assert!(marks.iter().all(|&i| i.abs_diff(STEP_AT) <= 1), "{marks:?}");
    assert_eq!(html_attr(&dom, "data-change-points"), "9");
    // The baseline's line on the eight cases it has; none on the hostile copy.
    assert_eq!(dom.matches("<g class=\"baseline\">").count(), 8);
    // The hostile case id is text on the page, not markup.
    assert!(dom.contains("&lt;/script&gt;&lt;script&gt;window.infergateFail('injected')"), "its caption is text");
    assert!(!dom.contains("<script>window.infergateFail"), "no element was made from data");
    assert!(
        dom.contains(&format!("href=\"{REPO}/commit/{}\"", commit("alpha", ALPHA_RUNS - 1))),
        "latest commit links"
    );

    // Every metric: one chart per case and metric.
    let all = chromium(&browser, &profile, &format!("{url}#metric=all"), &["--dump-dom"]);
    assert_drawn(&all, alpha_series, "alpha, all metrics");
    // Throughput and latency step together; the step shows in most series.
    assert!(change_marks(&all).len() >= alpha_series / 2, "{}", change_marks(&all).len());
    let beta = chromium(&browser, &profile, &format!("{url}#profile=beta&metric=all"), &["--dump-dom"]);
    assert_drawn(&beta, beta_series, "beta, all metrics");
    // At significance 0.01, about one false change point in a hundred flat series; but a case's
    // throughput, decode rate, TPOT and total time are one measurement seen four ways, so one
    // chance split shows in several charts of a case. Counted by case and phase, it is rare.
    let marked: std::collections::BTreeSet<(&str, &str)> = beta
        .split("<figure class=\"chart\" data-case=\"")
        .skip(1)
        .filter(|f| !f[..f.find('>').unwrap()].contains("data-change-points=\"0\""))
        .map(|f| {
            (&f[..f.find('"').unwrap()], if f[..f.find('>').unwrap()].contains("\"cold/") { "cold" } else { "warm" })
        })
        .collect();
    assert!(marked.len() <= 3, "false change points in {} of 16 flat case phases: {marked:?}", marked.len());
    assert_eq!(beta.matches("<g class=\"baseline\">").count(), 0, "beta has no baseline");

    // One run's tooltip, pinned from the address: commit (linked), time, value.
    let run = 20;
    let pinned = chromium(
        &browser,
        &profile,
        &format!("{url}#profile=alpha&metric=warm/e2e_median&case=code-review/1024&run={run}"),
        &["--dump-dom"],
    );
    assert_drawn(&pinned, 9, "pinned tooltip");
    let tip = &pinned[pinned.find("<div id=\"tip\"").unwrap()..];
    let tip = &tip[..tip.find("</dl>").unwrap()];
    assert!(tip.contains("class=\"pinned\"") && !tip.contains("hidden"), "{tip}");
    assert!(
        tip.contains("data-case=\"code-review/1024\"") && tip.contains(&format!("data-index=\"{}\"", run - 1)),
        "{tip}"
    );
    assert!(tip.contains(&format!("href=\"{REPO}/commit/{}\"", commit("alpha", run - 1))), "{tip}");
    assert!(tip.contains("2026-11-10 14:30:00 UTC") && tip.contains(" ms</dd>"), "{tip}");
    assert!(tip.contains(&format!("#{run} · synthetic-{run}")), "{tip}");

    // Korean: the words and the embedded Hangul font.
    let out = infergate(d)
        .args(["history", "dashboard", "--store", "history", "--out", "page-ko", "--lang", "ko", "--repo-url", REPO])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::PASS), "{}", String::from_utf8_lossy(&out.stderr));
    let ko_url = format!("file://{}", d.join("page-ko/index.html").display());
    let ko = chromium(&browser, &profile, &ko_url, &["--dump-dom"]);
    assert_drawn(&ko, 9, "Korean");
    assert!(ko.contains("연속 응답 · 초당 토큰 (중앙값)") && ko.contains("변화점 9개"), "Korean words");

    // Screenshots, to be looked at.
    for (name, address) in [
        ("alpha-en.png", url.clone()),
        ("alpha-ko.png", ko_url.clone()),
        ("alpha-pinned-en.png", format!("{url}#profile=alpha&metric=warm/tokens_per_second&case=debugging/256&run=24")),
    ] {
        let shot = shots.join(name);
        let _ = std::fs::remove_file(&shot);
        chromium(
            &browser,
            &profile,
            &address,
            &[&format!("--screenshot={}", shot.display()), "--window-size=1400,2000"],
        );
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 50_000, "{}: {size} bytes", shot.display());
        eprintln!("screenshot: {}", shot.display());
    }
}

#[test]
fn wrong_inputs_exit_2_naming_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fails = |args: &[&str], want: &str| {
        let out = infergate(d).args(["history", "dashboard"]).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    };
    fails(&["--store", "none"], "cannot read the history store none (from --store)");
    std::fs::create_dir_all(d.join("history")).unwrap();
    fails(&["--store", "history", "--repo-url", "javascript:alert(1)"], "--repo-url must be an http(s) address");
    let (recs, _) = records("alpha", 2, usize::MAX, 1.0);
    let line = serde_json::to_string(&recs[0]).unwrap();
    std::fs::write(d.join("history/alpha.jsonl"), format!("{line}\n{{\"schema\":\n{line}\n")).unwrap();
    fails(&["--store", "history"], "alpha.jsonl line 2: not a history record");
    std::fs::write(d.join("history/alpha.jsonl"), format!("{line}\n")).unwrap();
    std::fs::create_dir_all(d.join("baselines")).unwrap();
    std::fs::write(d.join("baselines/alpha.toml"), "schema = 1\n").unwrap();
    fails(&["--store", "history"], "the baseline of profile alpha (from --baseline-dir)");
    // An empty store is a page that says so.
    std::fs::remove_file(d.join("history/alpha.jsonl")).unwrap();
    infergate(d).args(["history", "dashboard", "--store", "history", "--out", "empty"]).assert().code(exit::PASS);
    let html = std::fs::read_to_string(d.join("empty/index.html")).unwrap();
    assert!(html.contains("\"profiles\":[]"), "no profiles");
}
