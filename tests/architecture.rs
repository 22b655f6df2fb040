//! The architecture, checked: data flows one way between the modules of
//! each crate, and the core crate stays pure.
//!
//! The crates' own graph is the compiler's business (`cargo tree --workspace
//! --depth 1` prints it; a crate cannot depend on one that depends on it).
//! Inside a crate, modules can import each other freely, so this test reads
//! the sources: for each top-level module, which top-level modules its
//! non-test code names through `crate::`, and fails on any cycle, naming it.
//! The core crate must also stay free of what its manifest cannot forbid:
//! files, sockets, processes, environment variables and the clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its unit tests and comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    // The unit tests: `#[cfg(test)]` then `mod tests` (`pub(crate) mod tests`, ...).
    let tests = text.match_indices("#[cfg(test)]\n").map(|(i, _)| i).find(|&i| {
        let next = text[i..].lines().nth(1).unwrap_or("");
        next.split_whitespace().any(|w| w == "mod") && next.contains("mod tests")
    });
    let text = &text[..tests.unwrap_or(text.len())];
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// Top-level module -> the top-level modules its code names.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for path in sources(src) {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = code(&path);
        let deps = graph.entry(module.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                deps.extend(group.split(',').map(|p| ident(p.trim()).to_string()));
            } else {
                deps.insert(ident(rest).to_string());
            }
        }
        deps.remove(&module);
        deps.remove("");
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    graph.keys().find_map(|n| visit(n, graph, &mut state, &mut Vec::new()))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn modules_depend_one_way_in_every_crate() {
    for src in ["src", "crates/core/src", "crates/sim/src"] {
        let graph = module_graph(&root().join(src));
        assert!(graph.len() >= 5, "{src}: found only {:?}", graph.keys());
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{src}: modules import each other in a cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g: Graph = [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec![])]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(find_cycle(&g), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    let dag: Graph = [("a", vec!["b"]), ("b", vec![])]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(find_cycle(&dag), None);
}

#[test]
fn the_core_crate_does_no_io_and_reads_no_clock() {
    const FORBIDDEN: [&str; 10] = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "std::io::stdin",
        "std::io::stdout",
        "Instant::now",
        "SystemTime::now",
        "std::thread",
        "tokio",
    ];
    let src = root().join("crates/core/src");
    let mut found = Vec::new();
    for path in sources(&src) {
        let text = code(&path);
        for word in FORBIDDEN {
            if text.contains(word) {
                found.push(format!("{}: {word}", path.strip_prefix(root()).unwrap().display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the core crate must stay pure (no files, sockets, processes, clock):\n{}",
        found.join("\n")
    );
    let manifest = std::fs::read_to_string(root().join("crates/core/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
    for heavy in ["tokio", "reqwest", "hyper", "axum", "octocrab", "nvml-wrapper", "libc", "clap"] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(heavy)),
            "crates/core depends on {heavy}: the core has no runtime, HTTP, FFI or CLI"
        );
    }
}
