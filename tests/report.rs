//! `infergate report` end to end: two models measured on the simulator, the
//! Korean and English reports, the plots as files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::sim::SimConfig;
use support::Sim;

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir).timeout(Duration::from_secs(120));
    cmd
}

fn measure(dir: &Path, model: &str, itl_ms: f64, out: &str) {
    let sim = Sim::start(SimConfig { model: model.into(), itl_ms, ..SimConfig::default() });
    infergate(dir)
        .args(["-q", "run", "--base-url", &sim.url(), "--model", model, "--suite", "quick", "--repetitions", "3"])
        .args(["--gpu", "off", "--out", out])
        .assert()
        .code(exit::PASS);
}

#[test]
fn two_models_in_korean_and_english_with_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    measure(d, "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", 4.0, "qwen.json");
    measure(d, "meta-llama/Llama-3.1-8B-Instruct", 1.0, "llama.json");
    for (lang, headings) in [
        (
            "ko",
            [
                "## 1. 테스트 환경",
                "## 2. 성능 분석 요약",
                "### 2.1 초기 로딩",
                "## 3. GPU 리소스 사용량 요약",
                "## 4. 시나리오 기반 성능 분석",
                "## 5. 결론 및 권장 사항",
                "## 6. 첨부 파일",
            ],
        ),
        (
            "en",
            [
                "## 1. Test environment",
                "## 2. Performance summary",
                "### 2.1 Initial loading",
                "## 3. GPU resource usage",
                "## 4. Per-scenario analysis",
                "## 5. Conclusions and recommendations",
                "## 6. Attachments",
            ],
        ),
    ] {
        let out = format!("rep-{lang}");
        infergate(d)
            .args(["report", "--results", "qwen.json", "--results", "llama.json", "--lang", lang, "--out", &out])
            .assert()
            .code(exit::PASS);
        let md = std::fs::read_to_string(d.join(&out).join("report.md")).unwrap();
        let mut at = 0;
        for h in headings {
            let pos = md.find(h).unwrap_or_else(|| panic!("{lang}: `{h}` missing in\n{md}"));
            assert!(pos >= at, "{lang}: `{h}` out of order");
            at = pos;
        }
        // Two models: a recommendation by the numbers; the faster model wins throughput.
        let rec = &md[md.find("## 5").unwrap()..];
        assert!(rec.contains("meta-llama/Llama-3.1-8B-Instruct"), "{rec}");
        // No GPU telemetry: said, never zeros.
        assert!(!md.contains("0.00%"), "{md}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(&out).join("report.json")).unwrap()).unwrap();
        assert_eq!(json["models"].as_array().unwrap().len(), 2);
        for name in [
            "response_time_comparison",
            "gpu_memory_comparison",
            "tokens_per_second_comparison",
            "ttft_by_context",
            "gpu_memory_timeline",
        ] {
            let svg = std::fs::read_to_string(d.join(&out).join("plots").join(format!("{name}.svg"))).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{name}.svg");
            let png = std::fs::read(d.join(&out).join("plots").join(format!("{name}.png"))).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png");
            assert!(
                md.contains(&format!("plots/{name}.svg")) && md.contains(&format!("plots/{name}.png")),
                "{name} not attached"
            );
        }
        let tps = std::fs::read_to_string(d.join(&out).join("plots/tokens_per_second_comparison.svg")).unwrap();
        // The plots speak the report's language, in a font that has its letters.
        let (title, legend, family) = match lang {
            "ko" => (
                "모델 초당 토큰 처리량 비교",
                ["초기 로딩", "연속 응답"],
                "font-family=\"Noto Sans CJK KR, Noto Sans KR, sans-serif\"",
            ),
            _ => ("Model token throughput", ["initial loading", "continuous response"], "font-family=\"sans-serif\""),
        };
        assert!(tps.contains("Llama-3.1-8B-Instruct") && tps.contains(title), "{lang}: {tps}");
        assert!(legend.iter().all(|l| tps.contains(l)) && tps.contains(family), "{lang}: {tps}");
    }
    // Without --lang, `[report] lang` of ./infergate.toml (or --config) decides; --lang wins.
    std::fs::write(d.join("infergate.toml"), "[report]\nlang = \"ko\"\n").unwrap();
    std::fs::write(d.join("en.toml"), "[report]\nlang = \"en\"\n").unwrap();
    for (args, korean) in [
        (&["--out", "cfg"][..], true),
        (&["--out", "flag", "--lang", "en"][..], false),
        (&["--out", "other", "--config", "en.toml"][..], false),
    ] {
        infergate(d).args(["-q", "report", "--results", "qwen.json"]).args(args).assert().code(exit::PASS);
        let md = std::fs::read_to_string(d.join(args[1]).join("report.md")).unwrap();
        assert_eq!(md.contains("## 1. 테스트 환경"), korean, "{args:?}");
        let svg = std::fs::read_to_string(d.join(args[1]).join("plots/response_time_comparison.svg")).unwrap();
        assert_eq!(svg.contains("모델 응답 시간 비교"), korean, "{args:?}");
    }
    std::fs::write(d.join("infergate.toml"), "[report]\nlang = \"kr\"\n").unwrap();
    let out = infergate(d).args(["report", "--results", "qwen.json", "--out", "bad"]).output().unwrap();
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("infergate.toml:2") && stderr.contains("report.lang"), "{stderr}");
    std::fs::remove_file(d.join("infergate.toml")).unwrap();
    // A broken template is an input error naming its line.
    std::fs::write(d.join("t.j2"), "ok\n{{ r.models | nonsense }}\n").unwrap();
    let out =
        infergate(d).args(["report", "--results", "qwen.json", "--template", "t.j2", "--out", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"), "{}", String::from_utf8_lossy(&out.stderr));
}
