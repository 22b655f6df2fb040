//! The documentation checks itself: `README.md` and the book under `docs/src/`.
//!
//! Offline (no external link is fetched), on the Markdown as mdBook parses it:
//! - every relative link and `#anchor` resolves: the file exists and the anchor
//!   is a heading id of it, made as mdBook and GitHub make them; links from the
//!   book stay inside `docs/src/`, since mdBook copies nothing else;
//! - `SUMMARY.md` lists every chapter, and every chapter it lists exists;
//! - every `infergate SUBCOMMAND --flag` written in code names a subcommand and
//!   flags that the built binary's `--help` lists, and a flag table under a
//!   command's heading lists only that command's flags;
//! - every subcommand and every flag of the binary is documented in the book;
//! - no flag is written outside code, where the book's smart punctuation would
//!   turn its `--` into a dash.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn book_src() -> PathBuf {
    root().join("docs/src")
}

/// The parser options mdBook 0.5 uses by default (mdbook-markdown's
/// `new_cmark_parser`), so headings, tables and code read as in the book.
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_SMART_PUNCTUATION
        | Options::ENABLE_DEFINITION_LIST
        | Options::ENABLE_GFM
}

/// A heading's id as mdBook 0.5 makes it (`id_from_content`): the text
/// trimmed and lowercased, letters, digits, `_` and `-` kept, whitespace made
/// `-`, everything else dropped. GitHub's slugger gives the same for the
/// headings these docs have (letters, digits, spaces and ASCII punctuation).
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// A piece of code in the docs: an inline code span, or one line of a code
/// block (with its `\` continuations joined).
#[derive(Debug)]
struct Snippet {
    line: usize,
    text: String,
    /// The subcommands named by the enclosing headings (`# \`infergate run\``).
    context: Vec<String>,
    /// In the first column of a table body: a flag table's flag cell.
    first_cell: bool,
}

/// One Markdown file, read as mdBook reads it.
#[derive(Debug)]
struct Doc {
    path: PathBuf,
    ids: HashSet<String>,
    links: Vec<(usize, String)>,
    snippets: Vec<Snippet>,
    /// `--flag` written in prose: (line, the text).
    prose_flags: Vec<(usize, String)>,
}

impl Doc {
    fn parse(path: &Path, text: &str) -> Doc {
        let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
        let mut doc = Doc {
            path: path.to_path_buf(),
            ids: HashSet::new(),
            links: Vec::new(),
            snippets: Vec::new(),
            prose_flags: Vec::new(),
        };
        // (level, subcommands the heading names)
        let mut headings: Vec<(usize, Vec<String>)> = Vec::new();
        let mut heading: Option<(usize, Option<String>, String, Vec<String>)> = None;
        let mut code_block: Option<(usize, String)> = None;
        let (mut in_table, mut in_head, mut column) = (false, false, 0usize);
        for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
            let context = || headings.iter().flat_map(|(_, names)| names.clone()).collect::<Vec<_>>();
            match event {
                Event::Start(Tag::Heading { level, id, .. }) => {
                    heading = Some((level as usize, id.map(|i| i.to_string()), String::new(), Vec::new()));
                }
                Event::End(TagEnd::Heading(_)) => {
                    let Some((level, explicit, content, names)) = heading.take() else { continue };
                    let base = explicit.unwrap_or_else(|| slug(&content));
                    // mdBook and GitHub make a repeated id unique with -1, -2, ...
                    let mut id = base.clone();
                    let mut n = 0;
                    while doc.ids.contains(&id) {
                        n += 1;
                        id = format!("{base}-{n}");
                    }
                    doc.ids.insert(id);
                    headings.retain(|(l, _)| *l < level);
                    headings.push((level, names));
                }
                Event::Start(Tag::CodeBlock(_)) => code_block = Some((line_of(range.start) + 1, String::new())),
                Event::End(TagEnd::CodeBlock) => {
                    let Some((first, body)) = code_block.take() else { continue };
                    // One snippet per command line: `\` continuations joined.
                    let mut pending: Option<(usize, String)> = None;
                    for (k, l) in body.lines().enumerate() {
                        let (line, mut text) = pending.take().unwrap_or((first + k, String::new()));
                        match l.strip_suffix('\\') {
                            Some(head) => {
                                text.push_str(head);
                                pending = Some((line, text));
                            }
                            None => {
                                text.push_str(l);
                                doc.snippets.push(Snippet { line, text, context: context(), first_cell: false });
                            }
                        }
                    }
                    if let Some((line, text)) = pending {
                        doc.snippets.push(Snippet { line, text, context: context(), first_cell: false });
                    }
                }
                Event::Start(Tag::Table(_)) => in_table = true,
                Event::End(TagEnd::Table) => in_table = false,
                Event::Start(Tag::TableHead) => (column, in_head) = (0, true),
                Event::End(TagEnd::TableHead) => in_head = false,
                Event::Start(Tag::TableRow) => column = 0,
                Event::End(TagEnd::TableCell) => column += 1,
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    doc.links.push((line_of(range.start), dest_url.to_string()));
                }
                Event::Code(code) => {
                    if let Some((_, _, content, names)) = heading.as_mut() {
                        content.push_str(&code);
                        names.extend(code.strip_prefix("infergate ").map(str::to_string));
                    } else {
                        doc.snippets.push(Snippet {
                            line: line_of(range.start),
                            text: code.to_string(),
                            context: context(),
                            first_cell: in_table && !in_head && column == 0,
                        });
                    }
                }
                Event::Text(t) => {
                    if let Some((_, body)) = code_block.as_mut() {
                        body.push_str(&t);
                        continue;
                    }
                    if let Some((_, _, content, _)) = heading.as_mut() {
                        content.push_str(&t);
                    }
                    // Smart punctuation has already made `--` a dash here (an event
                    // of its own): read the source around it.
                    let source = &text[range.clone()];
                    if source.match_indices("--").any(|(i, _)| {
                        let at = range.start + i;
                        text[at + 2..].starts_with(|c: char| c.is_ascii_lowercase())
                            && !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '<' || c == '-')
                    }) {
                        let end = text[range.start..].find('\n').map_or(text.len(), |n| range.start + n);
                        doc.prose_flags.push((line_of(range.start), text[range.start..end].to_string()));
                    }
                }
                _ => {}
            }
        }
        doc
    }
}

/// Every Markdown file of the docs: README.md and docs/src/**/*.md.
fn docs() -> &'static [Doc] {
    static DOCS: OnceLock<Vec<Doc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut paths = vec![root().join("README.md")];
        let mut dirs = vec![book_src()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "md") {
                    paths.push(path);
                }
            }
        }
        paths.sort();
        paths
            .iter()
            .map(|p| Doc::parse(p, &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))))
            .collect()
    })
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// What is wrong with the links of `docs`: one line per broken link.
fn link_errors(docs: &[Doc]) -> Vec<String> {
    let by_path: BTreeMap<PathBuf, &Doc> = docs.iter().map(|d| (d.path.clone(), d)).collect();
    let book = book_src();
    let mut errors = Vec::new();
    for doc in docs {
        let dir = doc.path.parent().unwrap_or(Path::new("."));
        for (line, dest) in &doc.links {
            let at = format!("{}:{line}: link `{dest}`", rel(&doc.path));
            if dest.starts_with("http://") || dest.starts_with("https://") || dest.starts_with("mailto:") {
                continue; // external: not fetched
            }
            if dest.contains("://") || dest.starts_with('/') {
                errors.push(format!("{at}: only relative links and http(s) URLs are checked; write it relative"));
                continue;
            }
            let (file, anchor) = dest.split_once('#').unwrap_or((dest.as_str(), ""));
            let target = if file.is_empty() { doc.path.clone() } else { normalize(&dir.join(file)) };
            if !file.is_empty() && !target.exists() {
                errors.push(format!("{at}: {} does not exist", rel(&target)));
                continue;
            }
            if doc.path.starts_with(&book) && !target.starts_with(&book) {
                errors.push(format!("{at}: leaves docs/src, which is all the built book has"));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            match by_path.get(&target) {
                Some(t) if t.ids.contains(anchor) => {}
                Some(t) => {
                    let mut ids: Vec<_> = t.ids.iter().map(String::as_str).collect();
                    ids.sort_unstable();
                    errors.push(format!(
                        "{at}: no heading `#{anchor}` in {}; its ids: {}",
                        rel(&target),
                        ids.join(", ")
                    ));
                }
                None => {
                    errors.push(format!("{at}: an anchor into {}, which is not a checked Markdown file", rel(&target)))
                }
            }
        }
    }
    errors
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let errors = link_errors(docs());
    assert!(errors.is_empty(), "{} broken link(s):\n{}", errors.len(), errors.join("\n"));
    let links: usize = docs().iter().map(|d| d.links.len()).sum();
    assert!(links > 50, "only {links} links found: is the parser reading the docs?");
}

#[test]
fn summary_lists_every_chapter_and_nothing_else() {
    let book = book_src();
    let summary = docs().iter().find(|d| d.path == book.join("SUMMARY.md")).expect("docs/src/SUMMARY.md");
    let listed: BTreeSet<PathBuf> = summary.links.iter().map(|(_, dest)| normalize(&book.join(dest))).collect();
    let chapters: BTreeSet<PathBuf> =
        docs().iter().map(|d| d.path.clone()).filter(|p| p.starts_with(&book) && !p.ends_with("SUMMARY.md")).collect();
    let unlisted: Vec<_> = chapters.difference(&listed).map(|p| rel(p)).collect();
    let missing: Vec<_> = listed.difference(&chapters).map(|p| rel(p)).collect();
    assert!(unlisted.is_empty(), "chapters that SUMMARY.md does not list (mdBook would not render them): {unlisted:?}");
    assert!(missing.is_empty(), "SUMMARY.md lists chapters that do not exist: {missing:?}");
    assert!(chapters.len() >= 20, "{chapters:?}");
}

#[test]
fn no_flag_is_written_outside_code() {
    let found: Vec<String> = docs()
        .iter()
        .flat_map(|d| d.prose_flags.iter().map(|(line, text)| format!("{}:{line}: {text:?}", rel(&d.path))))
        .collect();
    assert!(found.is_empty(), "flags outside backticks (the book would print `--` as a dash):\n{}", found.join("\n"));
}

/// What the built binary's `--help` says it takes.
#[derive(Debug, Default)]
struct Cli {
    /// Leaf subcommands ("run", "baseline update") and their flags.
    commands: BTreeMap<String, BTreeSet<String>>,
    /// Subcommands that only hold others ("baseline").
    groups: BTreeSet<String>,
    /// The flags of `infergate` itself.
    global: BTreeSet<String>,
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_infergate")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "infergate {args:?} --help: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The names in a help text's `Commands:` section, `help` left out.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The flags of a help text's option lines (`  -q, --quiet`, `      --base-url <URL>`).
fn flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|l| {
            (l.starts_with("  -") && !l.starts_with("  --")) || (l.starts_with("      --") && !l.starts_with("       "))
        })
        .flat_map(|l| {
            l.split_whitespace()
                .take_while(|w| w.starts_with('-'))
                .map(|w| w.trim_end_matches(',').trim_end_matches("...").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn cli() -> &'static Cli {
    static CLI: OnceLock<Cli> = OnceLock::new();
    CLI.get_or_init(|| {
        let top = help(&[]);
        let mut cli = Cli { global: flags(&top), ..Cli::default() };
        for name in subcommands(&top) {
            let h = help(&[&name]);
            let nested = subcommands(&h);
            if nested.is_empty() {
                cli.commands.insert(name, flags(&h));
            } else {
                for sub in nested {
                    cli.commands.insert(format!("{name} {sub}"), flags(&help(&[&name, &sub])));
                }
                cli.groups.insert(name);
            }
        }
        assert!(cli.commands.len() >= 12 && cli.global.contains("--quiet"), "{cli:?}");
        cli
    })
}

/// Shell words of a snippet: (word, whether it was quoted).
fn shell_words(s: &str) -> Vec<(String, bool)> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let (mut word, mut quoted) = (String::new(), false);
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\'' | '"' => {
                    quoted = true;
                    for q in chars.by_ref() {
                        if q == c {
                            break;
                        }
                        word.push(q);
                    }
                }
                '\\' => word.extend(chars.next()),
                c => word.push(c),
            }
        }
        words.push((word, quoted));
    }
    words
}

/// Where the command line ends: a pipe, a redirection, a list operator, a comment.
fn ends_command(word: &str) -> bool {
    matches!(word, "|" | "||" | "&&" | ";" | "&" | "<")
        || word.starts_with('>')
        || word.starts_with("2>")
        || word.starts_with('#')
}

/// The flags a word names: `--out`, `--fail-on=never`, `[--only-changed]`,
/// `[-q|--quiet]`, `-o`, `-vv`; none for values and placeholders.
fn flags_in(word: &str) -> Vec<String> {
    word.trim_start_matches(['[', '('])
        .split('|')
        .filter_map(|part| {
            if let Some(long) = part.strip_prefix("--") {
                let name: String = long.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                return (!name.is_empty()).then(|| vec![format!("--{name}")]);
            }
            let short = part.strip_prefix('-')?;
            let letters: String = short.chars().take_while(char::is_ascii_alphabetic).collect();
            (!letters.is_empty()).then(|| letters.chars().map(|c| format!("-{c}")).collect())
        })
        .flatten()
        .collect()
}

/// Where the arguments of an infergate invocation start, if words[i] begins one:
/// `infergate`, a path to it, its container image, or `cargo run [...] --`.
fn invocation_at(words: &[(String, bool)], i: usize) -> Option<usize> {
    let (w, quoted) = &words[i];
    if *quoted {
        return None;
    }
    // The binary by name or by path (`$RUNNER_TEMP/infergate/bin/infergate`,
    // `target/release/infergate`), or the container image
    // (`ghcr.io/your-org/infergate:v1`); not a repository (`your-org/infergate`),
    // a URL (`oci://ghcr.io/...`) or a chat command (`/infergate accept`).
    let path = w.ends_with("/infergate") && ["/", "./", "../", "$", "~", "target/"].iter().any(|p| w.starts_with(p));
    let image = w.contains("/infergate:") && w.split('/').next().is_some_and(|host| host.contains('.'));
    if !w.contains("://") && w != "/infergate" && (w == "infergate" || path || image) {
        return Some(i + 1);
    }
    if w == "cargo" && words.get(i + 1).is_some_and(|(n, _)| n == "run") {
        let rest = &words[i + 2..];
        let end = rest.iter().position(|(w, _)| ends_command(w)).unwrap_or(rest.len());
        let other_target =
            rest[..end].iter().any(|(w, _)| matches!(w.as_str(), "--example" | "--bin" | "--bench" | "-p"));
        let sep = rest[..end].iter().position(|(w, _)| w == "--")?;
        return (!other_target).then_some(i + 2 + sep + 1);
    }
    None
}

/// An infergate invocation found in a snippet.
#[derive(Debug, PartialEq)]
struct Invocation {
    /// "run", "baseline update"; empty for `infergate --version` and usage lines.
    command: String,
    flags: Vec<String>,
}

/// Reads every infergate invocation of a snippet (also inside quoted words,
/// such as a `--server-command 'infergate sim ...'`); an error for a
/// subcommand the binary does not have.
fn invocations(cli: &Cli, text: &str, found: &mut Vec<Invocation>, errors: &mut Vec<String>) {
    let words = shell_words(text);
    for (w, quoted) in &words {
        if *quoted && w.contains("infergate") {
            invocations(cli, w, found, errors);
        }
    }
    let mut i = 0;
    while i < words.len() {
        let Some(mut j) = invocation_at(&words, i) else {
            i += 1;
            continue;
        };
        let mut inv = Invocation { command: String::new(), flags: Vec::new() };
        while let Some((w, false)) = words.get(j).filter(|(w, _)| w.starts_with('-') || w.starts_with('[')) {
            inv.flags.extend(flags_in(w));
            j += 1;
        }
        // Whether the words after the subcommand are its arguments: not after a
        // placeholder (`SUBCOMMAND`, `<COMMAND>`), a version (`infergate 0.1.0`)
        // or an unknown subcommand (reported once, not once per flag).
        let mut checked = true;
        if let Some((w, _)) = words.get(j).filter(|(w, _)| !ends_command(w)) {
            let word = w.trim_end_matches([',', '.', ':', ')']);
            let is_name = word.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !word.is_empty();
            if cli.commands.contains_key(word) {
                inv.command = word.to_string();
                j += 1;
            } else if cli.groups.contains(word) {
                match words.get(j + 1).map(|(n, _)| format!("{word} {n}")) {
                    Some(both) if cli.commands.contains_key(&both) => {
                        inv.command = both;
                        j += 2;
                    }
                    Some(both) if both.split(' ').nth(1).is_some_and(|n| n.chars().all(|c| c.is_ascii_lowercase())) => {
                        errors.push(format!("`infergate {both}`: `{word}` has no such subcommand"));
                        checked = false;
                    }
                    _ => {
                        inv.command = word.to_string();
                        j += 1;
                    }
                }
            } else {
                if is_name {
                    errors.push(format!("`infergate {word}`: no such subcommand"));
                }
                checked = false;
            }
        }
        while let Some((w, quoted)) = words.get(j) {
            if ends_command(w) {
                break;
            }
            if checked && !quoted {
                inv.flags.extend(flags_in(w));
            }
            j += 1;
        }
        found.push(inv);
        i = j.max(i + 1);
    }
}

/// Commands the docs write wrong on purpose: the exit-code table's rows that
/// show what a mistake exits with (`tests/exit_codes.rs` runs them).
const DELIBERATELY_WRONG: &[&str] = &["infergate run --no-such-flag"];

/// What is wrong with the commands and flags the docs name.
fn command_errors<'a>(cli: &Cli, docs: impl IntoIterator<Item = &'a Doc>) -> (Vec<String>, Vec<Invocation>) {
    let mut errors = Vec::new();
    let mut all = Vec::new();
    for doc in docs {
        for s in &doc.snippets {
            let at = format!("{}:{}", rel(&doc.path), s.line);
            let mut found = Vec::new();
            let mut errs = Vec::new();
            if DELIBERATELY_WRONG.contains(&s.text.as_str()) {
                continue;
            }
            invocations(cli, &s.text, &mut found, &mut errs);
            errors.extend(errs.into_iter().map(|e| format!("{at}: {e}")));
            for inv in &found {
                let known = cli.commands.get(&inv.command);
                for flag in &inv.flags {
                    if !cli.global.contains(flag) && !known.is_some_and(|k| k.contains(flag)) {
                        let cmd = if inv.command.is_empty() { String::new() } else { format!(" {}", inv.command) };
                        errors.push(format!("{at}: `infergate{cmd}` has no flag `{flag}` (in `{}`)", s.text));
                    }
                }
            }
            all.extend(found);
            // A flag table under a command's heading: its flags are that command's.
            if s.first_cell && s.text.starts_with('-') && !s.context.is_empty() {
                let owners: Vec<&String> = s.context.iter().filter(|c| cli.commands.contains_key(*c)).collect();
                for flag in flags_in(s.text.split_whitespace().next().unwrap_or("")) {
                    if !cli.global.contains(&flag) && !owners.iter().any(|c| cli.commands[*c].contains(&flag)) {
                        errors.push(format!(
                            "{at}: flag table of {:?} lists `{flag}`, which none of them takes",
                            s.context
                        ));
                    }
                }
            }
        }
    }
    (errors, all)
}

#[test]
fn every_command_and_flag_in_the_docs_exists() {
    let (errors, found) = command_errors(cli(), docs());
    assert!(errors.is_empty(), "{} error(s):\n{}", errors.len(), errors.join("\n"));
    assert!(found.len() > 80, "only {} invocations found: is the scanner reading the docs?", found.len());
}

#[test]
fn every_command_and_flag_of_the_binary_is_documented() {
    let cli = cli();
    let book: Vec<&Doc> = docs().iter().filter(|d| d.path.starts_with(book_src())).collect();
    let (_, found) = command_errors(cli, book.iter().copied());
    let named: BTreeSet<&str> = found.iter().map(|i| i.command.as_str()).collect();
    let written: BTreeSet<String> = book
        .iter()
        .flat_map(|d| &d.snippets)
        .flat_map(|s| shell_words(&s.text).into_iter().flat_map(|(w, _)| flags_in(&w)))
        .collect();
    let undocumented_commands: Vec<_> = cli.commands.keys().filter(|c| !named.contains(c.as_str())).collect();
    let undocumented_flags: BTreeSet<_> = cli
        .commands
        .values()
        .flatten()
        .chain(&cli.global)
        .filter(|f| f.starts_with("--") && !written.contains(*f))
        .collect();
    assert!(undocumented_commands.is_empty(), "subcommands the book never shows: {undocumented_commands:?}");
    assert!(undocumented_flags.is_empty(), "flags the book never writes: {undocumented_flags:?}");
}

#[test]
fn the_checker_finds_what_is_broken() {
    let dir = book_src();
    let text = "# `infergate run`\n\n## Same\n\n## Same\n\n\
        [ok](#same-1) [gone](nosuch.md) [anchor](#nowhere) [out](../../Cargo.toml)\n\n\
        | flag | meaning |\n| --- | --- |\n| `--runs K` | ok |\n| `--slowdown F` | a sim flag |\n\n\
        `infergate run --out x --no-such-flag`, `infergate nosuch --x`, `infergate baseline nosuch`\n\n\
        ```sh\ninfergate check --baseline p \\\n  --confirm 2 --bogus | head\n\
        cargo run --release -- demo --slowdown 1.1 --nope\n\
        infergate run --server-command 'infergate sim --port 0 --not-sim' --base-url x\n```\n\n\
        a flag --outside code, and `-q` is fine\n";
    let doc = Doc::parse(&dir.join("fake.md"), text);
    let links = link_errors(std::slice::from_ref(&doc)).join("\n");
    assert!(links.contains("nosuch.md does not exist"), "{links}");
    assert!(links.contains("no heading `#nowhere`"), "{links}");
    assert!(links.contains("leaves docs/src"), "{links}");
    assert!(!links.contains("#same-1"), "{links}");
    let (errors, found) = command_errors(cli(), std::slice::from_ref(&doc));
    let errors = errors.join("\n");
    for wanted in [
        "has no flag `--no-such-flag`",
        "`infergate nosuch`: no such subcommand",
        "`infergate baseline nosuch`: `baseline` has no such subcommand",
        "lists `--slowdown`",
        "`infergate check` has no flag `--bogus`",
        "`infergate demo` has no flag `--nope`",
        "`infergate sim` has no flag `--not-sim`",
    ] {
        assert!(errors.contains(wanted), "missing {wanted:?} in:\n{errors}");
    }
    assert_eq!(errors.lines().count(), 7, "{errors}");
    assert!(found.iter().any(|i| i.command == "run" && i.flags == ["--server-command", "--base-url"]), "{found:?}");
    assert_eq!(doc.prose_flags.len(), 1, "{:?}", doc.prose_flags);
}

#[test]
fn ids_are_made_as_mdbook_makes_them() {
    assert_eq!(slug("`infergate check`, `infergate compare`"), "infergate-check-infergate-compare");
    assert_eq!(slug("Results file (`infergate.results.v1`)"), "results-file-infergateresultsv1");
    assert_eq!(slug("Rules: `[gate]` in `infergate.toml`"), "rules-gate-in-infergatetoml");
    assert_eq!(slug("The Action (`uses: your-org/infergate@v1`)"), "the-action-uses-your-orginfergatev1");
    assert_eq!(slug(" A/A: how often "), "aa-how-often");
}

/// Where the book was built (`.ci/run` builds it before `cargo test`), the
/// heading ids mdBook wrote are the ones the links were checked against.
/// Chapters edited since the build are skipped: their page is stale.
#[test]
fn ids_are_the_ones_the_built_book_has() {
    let out = root().join("docs/book");
    let mut checked = 0;
    for doc in docs().iter().filter(|d| d.path.starts_with(book_src()) && !d.path.ends_with("SUMMARY.md")) {
        let Ok(chapter) = doc.path.strip_prefix(book_src()) else { continue };
        let page = out.join(chapter.with_extension("html"));
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match (modified(&page), modified(&doc.path)) {
            (Some(built), Some(edited)) if built >= edited => {}
            _ => continue,
        }
        let html = std::fs::read_to_string(&page).unwrap();
        let built: HashSet<String> = html
            .match_indices("<h")
            .filter_map(|(i, _)| {
                let rest = html[i + 2..].strip_prefix(|c: char| ('1'..='6').contains(&c))?;
                let rest = rest.strip_prefix(" id=\"")?;
                Some(rest[..rest.find('"')?].to_string())
            })
            .collect();
        assert_eq!(built, doc.ids, "{}: heading ids differ from mdBook's", rel(&doc.path));
        checked += 1;
    }
    eprintln!("{checked} chapter(s) checked against the built book in docs/book");
}
