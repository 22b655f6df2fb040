//! The history dashboard: one self-contained HTML page with one chart per
//! case and metric over a profile's runs, the change points found in each
//! series, and the baseline's value as a line.
//!
//! Everything is decided here, when the page is built: the series, the
//! change points ([`crate::stats::changepoint::detect`], per run of equal
//! environment), the baseline values and the words of the page's language.
//! The page's own script (`dashboard.js`, hand-written, no library) only
//! draws them as inline SVG and shows the commit, time and value of a point.
//! Nothing is loaded from anywhere: the styles, the scripts, the data and,
//! for Korean, a Hangul font are in the one file, and its content security
//! policy refuses any other load, so the page works from disk (`file://`)
//! and from GitHub Pages alike.
//!
//! The data goes into a `<script type="application/json">` element, with
//! `<`, `>` and `&` written as JSON escapes, so that no case id, commit or
//! ref can end the element (`</script>`) or open a comment; the script puts
//! every text into the page as text, never as markup.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::baseline::{Baseline, round4};
use crate::gate::metrics::{CATALOGUE, Direction};
use crate::results::PhaseName;
use crate::stats::changepoint::{self, ChangePointConfig};
use infergate_core::history::HistoryRecord;

use super::words::{Lang, Words};

/// Schema identifier of the data embedded in the page.
pub const SCHEMA: &str = "infergate.dashboard.v1";

const TEMPLATE: &str = include_str!("index.html");
const CSS: &str = include_str!("dashboard.css");
const GUARD_JS: &str = include_str!("guard.js");
const JS: &str = include_str!("dashboard.js");

/// The Hangul font of Korean pages (the plots' subset, SIL Open Font License 1.1):
/// the page names the reader's own Korean fonts first and falls back to it.
static KO_FONT: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/NotoSansCJKkr-Subset.otf"));
const KO_FONT_LICENSE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fonts/NotoSansCJKkr-LICENSE.txt"));

/// The change-point settings of the page: conservative, since a dashboard
/// that marks noise teaches people to ignore its marks. One false change
/// point in about a hundred noise-only series, 999 shuffles so that
/// p-values near 0.01 are resolved, and no segment shorter than 5 runs.
pub fn detection() -> ChangePointConfig {
    ChangePointConfig { significance: 0.01, permutations: 999, min_segment: 5, ..ChangePointConfig::default() }
}

/// One profile's history, and its baseline when there is one.
#[derive(Debug, Clone)]
pub struct ProfileInput {
    /// The profile's name.
    pub name: String,
    /// Its runs, in the order they were appended (oldest first).
    pub records: Vec<HistoryRecord>,
    /// The baseline (`baselines/<profile>.toml`) and the path to show for it.
    pub baseline: Option<(String, Baseline)>,
}

/// How the page is built.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The language of its words.
    pub lang: Lang,
    /// The repository commits link to (`https://github.com/OWNER/REPO`), if any.
    pub repo_url: Option<String>,
    /// The change-point search.
    pub detection: ChangePointConfig,
    /// The infergate version that built it.
    pub tool_version: String,
}

/// The data the page draws (embedded as JSON; `dashboard.js` reads it).
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// `en` or `ko`.
    pub lang: &'static str,
    /// The infergate version that built the page.
    pub tool_version: String,
    /// Commits link to `{repo_url}/commit/{sha}` when set.
    pub repo_url: Option<String>,
    /// The words the page prints, by key: one form, or English's singular and plural.
    pub words: BTreeMap<&'static str, &'static [&'static str]>,
    /// The change-point settings used.
    pub detection: Detection,
    /// Every metric some series uses, by phase then catalogue order; series name them by index.
    pub metrics: Vec<MetricInfo>,
    /// The profiles, by name.
    pub profiles: Vec<ProfileView>,
}

/// The change-point settings, as the page states them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Detection {
    /// A split is kept at this p-value or below.
    pub significance: f64,
    /// Shuffles per test.
    pub permutations: usize,
    /// Fewest runs in a segment.
    pub min_segment: usize,
}

/// One metric of one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricInfo {
    /// `phase/metric`, e.g. `warm/tokens_per_second`: what the metric selector and the address name.
    pub key: String,
    /// `cold` or `warm`.
    pub phase: &'static str,
    /// The catalogue's name.
    pub name: String,
    /// Its unit (empty for a metric this version does not know).
    pub unit: &'static str,
    /// Which way is better; `None` for a metric this version does not know.
    pub higher_is_better: Option<bool>,
}

/// One profile on the page.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileView {
    /// The profile's name.
    pub name: String,
    /// Its runs, oldest first: the charts' x axis.
    pub runs: Vec<RunView>,
    /// The distinct environments (fingerprint and suite) of the runs; runs name them by index.
    pub environments: Vec<String>,
    /// The baseline drawn, if any.
    pub baseline: Option<BaselineInfo>,
    /// One series per case and metric.
    pub series: Vec<SeriesView>,
}

/// One run: a point on every chart of its profile.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The commit measured.
    pub commit: Option<String>,
    /// When the run finished (RFC 3339).
    pub time: String,
    /// The ref it was measured on.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The run's id.
    pub run_id: String,
    /// The infergate version that measured it.
    pub tool_version: String,
    /// Index into the profile's `environments`.
    pub environment: usize,
}

/// Where the baseline line comes from.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineInfo {
    /// The baseline file, as given.
    pub file: String,
    /// The commit it was recorded at.
    pub commit: Option<String>,
    /// When it was recorded.
    pub recorded_at: String,
}

/// One chart: a metric of a phase of a case over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesView {
    /// The case id.
    pub case: String,
    /// Index into the page's `metrics`.
    pub metric: usize,
    /// One value per run (4 significant digits), `null` where the run lacks it.
    pub values: Vec<Option<f64>>,
    /// The baseline's value of the metric (what the gate compares with), if any.
    pub baseline: Option<f64>,
    /// The change points found, by run index.
    pub changes: Vec<ChangeView>,
}

/// A change point: the run where a new segment starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChangeView {
    /// Index of the first run of the new segment.
    pub index: usize,
    /// Permutation p-value of the split.
    pub p: f64,
    /// Mean of the segment before.
    pub before: f64,
    /// Mean of the segment after.
    pub after: f64,
    /// `(after - before) / |before|`.
    pub step: Option<f64>,
}

/// The keys of the words the page uses (besides `phase.*` and
/// `dash.metric.*`); `dashboard.js` asks for no other (tested).
pub const WORD_KEYS: &[&str] = &[
    "dash.title",
    "dash.noscript",
    "dash.profile",
    "dash.metric",
    "dash.all_metrics",
    "dash.runs",
    "dash.range",
    "dash.latest",
    "dash.environment",
    "dash.environment_changed",
    "dash.baseline",
    "dash.baseline_from",
    "dash.no_baseline",
    "dash.vs_baseline",
    "dash.hint",
    "dash.detection",
    "dash.no_change_points",
    "dash.change_points",
    "dash.change_point",
    "dash.change_at",
    "dash.more",
    "dash.col.commits",
    "dash.col.case",
    "dash.col.metric",
    "dash.col.before_after",
    "dash.col.step",
    "dash.col.p",
    "dash.higher_is_better",
    "dash.lower_is_better",
    "dash.value",
    "dash.commit",
    "dash.time",
    "dash.run",
    "dash.ref",
    "dash.no_data",
];

/// What the page shows, in figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Profiles.
    pub profiles: usize,
    /// Runs over all profiles.
    pub runs: usize,
    /// Series (charts, with every metric shown) over all profiles.
    pub series: usize,
    /// Change points over all series.
    pub change_points: usize,
}

impl Page {
    /// Its figures.
    pub fn counts(&self) -> Counts {
        Counts {
            profiles: self.profiles.len(),
            runs: self.profiles.iter().map(|p| p.runs.len()).sum(),
            series: self.profiles.iter().map(|p| p.series.len()).sum(),
            change_points: self.profiles.iter().flat_map(|p| &p.series).map(|s| s.changes.len()).sum(),
        }
    }
}

/// Builds the page's data: the series of every profile and their change
/// points (the search runs on all cores; its result does not depend on
/// how many).
pub fn build(profiles: &[ProfileInput], settings: &Settings) -> Result<Page, changepoint::ConfigError> {
    settings.detection.validate()?;
    let words = Words::of(settings.lang);
    let mut page_words: BTreeMap<&'static str, &'static [&'static str]> = BTreeMap::new();
    for (key, forms) in words.with_prefix("dash.").into_iter().chain(words.with_prefix("phase.")) {
        page_words.insert(key, forms);
    }
    // The metrics the records name, known ones in phase and catalogue order, then any others by name.
    let mut named: BTreeSet<(PhaseName, String)> = BTreeSet::new();
    for p in profiles {
        for r in &p.records {
            for phases in r.cases.values() {
                for (&phase, metrics) in phases {
                    named.extend(metrics.keys().map(|m| (phase, m.clone())));
                }
            }
        }
    }
    let mut metrics: Vec<MetricInfo> = Vec::new();
    for phase in [PhaseName::Cold, PhaseName::Warm] {
        for def in CATALOGUE {
            if named.remove(&(phase, def.name.to_string())) {
                metrics.push(metric_info(phase, def.name, def.unit, Some(def.direction)));
            }
        }
    }
    for (phase, name) in named {
        metrics.push(metric_info(phase, &name, "", None));
    }
    let index: BTreeMap<(&str, &str), usize> =
        metrics.iter().enumerate().map(|(i, m)| ((m.phase, m.name.as_str()), i)).collect();

    let mut views: Vec<ProfileView> = profiles.iter().map(|p| profile_view(p, &metrics, &index)).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    // The change points, one job per series, spread over the cores.
    let mut jobs: Vec<(&[RunView], &mut SeriesView)> = Vec::new();
    for view in &mut views {
        let runs = view.runs.as_slice();
        jobs.extend(view.series.iter_mut().map(|s| (runs, s)));
    }
    let cfg = settings.detection;
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 16);
    let per = jobs.len().div_ceil(threads).max(1);
    let failed = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks_mut(per)
            .map(|chunk| {
                scope.spawn(move || {
                    for (runs, series) in chunk.iter_mut() {
                        series.changes = changes(runs, series, &cfg)?;
                    }
                    Ok::<(), changepoint::ConfigError>(())
                })
            })
            .collect();
        let mut failed = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        failed
    });
    if let Some(e) = failed {
        return Err(e);
    }
    for view in &mut views {
        for s in &mut view.series {
            for v in s.values.iter_mut().flatten() {
                *v = round4(*v);
            }
        }
    }
    Ok(Page {
        schema: SCHEMA,
        lang: settings.lang.as_str(),
        tool_version: settings.tool_version.clone(),
        repo_url: settings.repo_url.clone(),
        words: page_words,
        detection: Detection {
            significance: cfg.significance,
            permutations: cfg.permutations,
            min_segment: cfg.min_segment,
        },
        metrics,
        profiles: views,
    })
}

fn metric_info(phase: PhaseName, name: &str, unit: &'static str, direction: Option<Direction>) -> MetricInfo {
    MetricInfo {
        key: format!("{}/{name}", phase.as_str()),
        phase: phase.as_str(),
        name: name.to_string(),
        unit,
        higher_is_better: direction.map(|d| d == Direction::HigherIsBetter),
    }
}

fn profile_view(p: &ProfileInput, metrics: &[MetricInfo], index: &BTreeMap<(&str, &str), usize>) -> ProfileView {
    let mut environments: Vec<String> = Vec::new();
    let runs: Vec<RunView> = p
        .records
        .iter()
        .map(|r| {
            let env = if r.suite.is_empty() {
                r.environment.clone()
            } else {
                format!("{} · suite {}", r.environment, r.suite)
            };
            let environment = environments.iter().position(|e| *e == env).unwrap_or_else(|| {
                environments.push(env);
                environments.len() - 1
            });
            RunView {
                commit: r.commit.clone(),
                time: r.time.clone(),
                git_ref: r.git_ref.clone(),
                run_id: r.run_id.clone(),
                tool_version: r.tool_version.clone(),
                environment,
            }
        })
        .collect();
    // Case -> metric index -> one value per run.
    let mut table: BTreeMap<&str, BTreeMap<usize, Vec<Option<f64>>>> = BTreeMap::new();
    for (at, r) in p.records.iter().enumerate() {
        for (case, phases) in &r.cases {
            for (&phase, points) in phases {
                for (name, point) in points {
                    let Some(&m) = index.get(&(phase.as_str(), name.as_str())) else { continue };
                    let values = table.entry(case).or_default().entry(m).or_insert_with(|| vec![None; p.records.len()]);
                    values[at] = Some(point.value).filter(|v| v.is_finite());
                }
            }
        }
    }
    let baseline = p.baseline.as_ref();
    let series = table
        .into_iter()
        .flat_map(|(case, by_metric)| {
            by_metric.into_iter().filter(|(_, values)| values.iter().any(Option::is_some)).map(move |(m, values)| {
                let metric = &metrics[m];
                let value = baseline.and_then(|(_, b)| baseline_value(b, case, metric));
                SeriesView { case: case.to_string(), metric: m, values, baseline: value, changes: Vec::new() }
            })
        })
        .collect();
    ProfileView {
        name: p.name.clone(),
        runs,
        environments,
        baseline: baseline.map(|(file, b)| BaselineInfo {
            file: file.clone(),
            commit: b.git_commit.clone(),
            recorded_at: b.recorded_at.clone(),
        }),
        series,
    }
}

/// The baseline's value of a metric: the value the gate compares with (for
/// per-request metrics the geometric mean of its runs' statistics, for GPU
/// figures their median).
fn baseline_value(b: &Baseline, case: &str, metric: &MetricInfo) -> Option<f64> {
    let phase = match metric.phase {
        "cold" => PhaseName::Cold,
        "warm" => PhaseName::Warm,
        _ => return None,
    };
    b.cases.get(case)?.phase(phase)?.stats.get(&metric.name).copied().filter(|v| v.is_finite())
}

/// The change points of one series, searched within each stretch of runs
/// on one environment: a new GPU or driver is a step of its own, marked as
/// such on the chart, not a change point.
fn changes(
    runs: &[RunView],
    series: &SeriesView,
    cfg: &ChangePointConfig,
) -> Result<Vec<ChangeView>, changepoint::ConfigError> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < runs.len() {
        let env = runs[start].environment;
        let end = runs[start..].iter().position(|r| r.environment != env).map_or(runs.len(), |n| start + n);
        let values: Vec<f64> = series.values[start..end].iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        for c in changepoint::detect(&values, cfg)? {
            out.push(ChangeView {
                index: start + c.index,
                p: c.p_value,
                before: round4(c.mean_before),
                after: round4(c.mean_after),
                step: c.relative_step,
            });
        }
        start = end;
    }
    Ok(out)
}

/// The page: one HTML document, everything inlined.
pub fn render(page: &Page) -> Result<String, serde_json::Error> {
    let lang = if page.lang == "ko" { Lang::Ko } else { Lang::En };
    let words = Words::of(lang);
    let data = script_json(&serde_json::to_string(page)?);
    let font = match lang {
        Lang::Ko => ko_font_face(),
        Lang::En => String::new(),
    };
    let title = html_text(&words.must("dash.title", None, &[]));
    let noscript = html_text(&words.must("dash.noscript", None, &[]));
    let version = html_text(&page.tool_version);
    Ok(fill(
        TEMPLATE,
        &[
            ("LANG", page.lang),
            ("VERSION", &version),
            ("TITLE", &title),
            ("FONT", &font),
            ("CSS", CSS),
            ("GUARD", GUARD_JS),
            ("NOSCRIPT", &noscript),
            ("DATA", &data),
            ("JS", JS),
        ],
    ))
}

/// JSON made safe inside `<script type="application/json">`: `<`, `>` and
/// `&` (which JSON has only inside strings) become `\u003c`, `\u003e` and
/// `\u0026`, so no `</script>` or `<!--` survives; U+2028 and U+2029 are
/// escaped too. `JSON.parse` reads the same value back.
pub fn script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text for an HTML element or a quoted attribute.
fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `@NAME@` markers in one pass: what is filled in is not looked at again.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match values.iter().find(|(k, _)| after.strip_prefix(k).is_some_and(|tail| tail.starts_with('@'))) {
            Some((k, v)) => {
                out.push_str(v);
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('@');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The Hangul font as a CSS `@font-face` with the font inline (a `data:`
/// address: browsers refuse fonts from other `file://` paths), used only
/// for Hangul the reader's own fonts lack. Its licence goes with it, as the
/// licence asks, in a comment before it.
fn ko_font_face() -> String {
    format!(
        "/*\n{}*/\n@font-face {{ font-family: InfergateHangul; src: url(data:font/otf;base64,{}) format(\"opentype\"); \
         unicode-range: U+1100-11FF, U+3130-318F, U+AC00-D7A3; }}",
        KO_FONT_LICENSE.replace("*/", "* /"),
        base64(KO_FONT)
    )
}

/// Standard base64 with padding (RFC 4648).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use infergate_core::history::{Point, SCHEMA as HISTORY_SCHEMA};

    fn record(run: usize, env: &str, values: &[(&str, PhaseName, &str, f64)]) -> HistoryRecord {
        let mut cases: BTreeMap<String, BTreeMap<PhaseName, BTreeMap<String, Point>>> = BTreeMap::new();
        for &(case, phase, metric, value) in values {
            cases
                .entry(case.into())
                .or_default()
                .entry(phase)
                .or_default()
                .insert(metric.into(), Point { value, n: 10, spread: None });
        }
        HistoryRecord {
            schema: HISTORY_SCHEMA.into(),
            profile: "p".into(),
            run_id: format!("run{run}"),
            commit: Some(format!("{run:07x}abcdef")),
            git_ref: Some("refs/heads/main".into()),
            time: format!("2026-11-{:02}T00:00:00Z", 1 + run % 28),
            tool_version: "0.1.0".into(),
            environment: env.into(),
            suite: "s".into(),
            cases,
        }
    }

    fn settings() -> Settings {
        Settings { lang: Lang::En, repo_url: None, detection: detection(), tool_version: "test".into() }
    }

    /// A series with a 10% step, one without: the step is found where it is.
    #[test]
    fn change_points_are_found_per_series_and_the_baseline_is_the_gates_value() {
        let mut rng = crate::rng::Rng::new(7);
        let records: Vec<HistoryRecord> = (0..60)
            .map(|i| {
                let noise = 1.0 + 0.01 * (rng.unit() - 0.5);
                let step = if i >= 35 { 0.9 } else { 1.0 };
                record(
                    i,
                    "gpu",
                    &[
                        ("a/1", PhaseName::Warm, "tokens_per_second", 100.0 * step * noise),
                        ("a/1", PhaseName::Cold, "ttft_median", 250.0 * noise),
                        ("b/2", PhaseName::Warm, "tokens_per_second", 50.0 * noise),
                    ],
                )
            })
            .collect();
        let page = build(&[ProfileInput { name: "p".into(), records, baseline: None }], &settings()).unwrap();
        let keys: Vec<&str> = page.metrics.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["cold/ttft_median", "warm/tokens_per_second"]);
        let p = &page.profiles[0];
        assert_eq!(p.series.len(), 3);
        let stepped = p.series.iter().find(|s| s.case == "a/1" && s.metric == 1).unwrap();
        assert_eq!(stepped.changes.len(), 1, "{:?}", stepped.changes);
        assert_eq!(stepped.changes[0].index, 35);
        assert!(stepped.changes[0].step.is_some_and(|s| (s + 0.1).abs() < 0.01), "{:?}", stepped.changes);
        assert!(p.series.iter().filter(|s| !(s.case == "a/1" && s.metric == 1)).all(|s| s.changes.is_empty()));
        assert_eq!(page.counts(), Counts { profiles: 1, runs: 60, series: 3, change_points: 1 });
    }

    /// A new environment is not a change point: the search runs within each.
    #[test]
    fn an_environment_change_splits_the_search() {
        let records: Vec<HistoryRecord> = (0..40)
            .map(|i| {
                let (env, v) = if i < 20 { ("old", 100.0) } else { ("new", 130.0) };
                record(i, env, &[("a/1", PhaseName::Warm, "tokens_per_second", v + (i % 3) as f64)])
            })
            .collect();
        let page = build(&[ProfileInput { name: "p".into(), records, baseline: None }], &settings()).unwrap();
        let p = &page.profiles[0];
        assert_eq!(p.environments.len(), 2);
        assert_eq!((p.runs[19].environment, p.runs[20].environment), (0, 1));
        assert!(p.series[0].changes.is_empty(), "{:?}", p.series[0].changes);
    }

    #[test]
    fn data_cannot_end_its_script_element() {
        let json =
            serde_json::to_string(&serde_json::json!({"case": "</script><script>alert(1)</script><!--&\u{2028}"}))
                .unwrap();
        let safe = script_json(&json);
        assert!(!safe.contains('<') && !safe.contains('>') && !safe.contains('&') && !safe.contains('\u{2028}'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["case"], "</script><script>alert(1)</script><!--&\u{2028}");
    }

    #[test]
    fn the_page_has_everything_inline_and_every_word_the_script_asks_for() {
        for source in [JS, GUARD_JS, CSS] {
            assert!(!source.to_ascii_lowercase().contains("</script") && !source.contains("</style"));
            assert!(!source.contains("http://") || source.contains("'http://www.w3.org/2000/svg'"));
            assert!(!source.contains("https://"), "no address of anything to load");
        }
        // Every `t('key'` of the script is a page word, and every page word is in both languages.
        let mut asked = BTreeSet::new();
        for quote in ["t('", "row('"] {
            for part in JS.split(quote).skip(1) {
                let key = &part[..part.find('\'').unwrap()];
                if key.starts_with("dash.") && !key.ends_with('.') {
                    asked.insert(key.to_string());
                }
            }
        }
        for part in JS.split('\'').skip(1).step_by(2) {
            if part.starts_with("dash.") && !part.ends_with('.') {
                asked.insert(part.to_string());
            }
        }
        assert!(asked.len() > 25, "{asked:?}");
        for key in &asked {
            assert!(WORD_KEYS.contains(&key.as_str()), "dashboard.js asks for {key}, not in WORD_KEYS");
        }
        for lang in Lang::ALL {
            let words = Words::of(lang);
            for key in WORD_KEYS {
                assert!(words.get(key).is_ok(), "{lang}: no word {key}");
            }
            for def in CATALOGUE {
                assert!(words.get(&format!("dash.metric.{}", def.name)).is_ok(), "{lang}: no word for {}", def.name);
            }
        }
        let page = build(&[], &settings()).unwrap();
        let html = render(&page).unwrap();
        assert!(html.starts_with("<!doctype html>") && !html.contains("@DATA@") && !html.contains("@JS@"));
        assert!(!html.contains("InfergateHangul;"), "the English page carries no font");
        let ko = render(&build(&[], &Settings { lang: Lang::Ko, ..settings() }).unwrap()).unwrap();
        assert!(ko.contains("<html lang=\"ko\"") && ko.contains("font-family: InfergateHangul;"));
    }

    #[test]
    fn markers_are_filled_once() {
        assert_eq!(fill("a@X@b@Y@c@ @X", &[("X", "@Y@"), ("Y", "2")]), "a@Y@b2c@ @X");
    }

    #[test]
    fn base64_as_rfc_4648_writes_it() {
        for (input, want) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }
}
