//! Untrusted text made safe for where it goes: Markdown (the PR comment and
//! the job summary), the terminal (no control characters), code spans and
//! fences, and CI logs (no line may start a workflow command).

/// Escapes text from a server, a config or a baseline before it goes into
/// Markdown: Markdown punctuation is backslash-escaped (`|` too, so table
/// cells stay whole), HTML-sensitive characters become entities (so no tag
/// and no `>` quote can start), control characters and newlines become one
/// space (so text cannot leave its line, cell or callout).
///
/// GitHub links `@name` and `#123` after Markdown is rendered, so escaping
/// cannot stop them: a zero-width space after the `@` or `#` does, and the
/// text still reads the same. It also links bare URLs (`https://…`,
/// `www.…`) as it parses them: a backslash before the `:` of `://` and the
/// `.` of `www.` keeps them text. A `::` is escaped so that no line of the
/// report printed in a CI log can start a workflow command (`::error::`).
pub fn md_escape(text: &str) -> String {
    /// Zero-width space, as an entity so it shows in the source.
    const ZWSP: &str = "&#8203;";
    // Most text (numbers, units, metric names) has nothing to escape.
    if !needs_md_escape(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let line: Vec<char> = one_line(text).chars().collect();
    let at = |i: usize, s: &str| s.chars().enumerate().all(|(k, c)| line.get(i + k) == Some(&c));
    let at_www =
        |i: usize| "www.".chars().enumerate().all(|(k, c)| line.get(i + k).is_some_and(|l| l.eq_ignore_ascii_case(&c)));
    let mut i = 0;
    while let Some(&c) = line.get(i) {
        let next = line.get(i + 1).copied();
        i += 1;
        match c {
            '\\' | '*' | '_' | '[' | ']' | '|' | '`' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '#' => {
                out.push_str("\\#");
                if next.is_some_and(|n| n.is_ascii_digit()) {
                    out.push_str(ZWSP);
                }
            }
            '@' => {
                out.push('@');
                if next.is_some_and(|n| n.is_ascii_alphanumeric()) {
                    out.push_str(ZWSP);
                }
            }
            ':' if next == Some(':') || at(i, "//") => out.push_str("\\:"),
            'w' | 'W' if at_www(i - 1) => {
                out.extend(&line[i - 1..i + 2]);
                out.push_str("\\.");
                i += 3;
            }
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether [`md_escape`] would change `text`.
pub(crate) fn needs_md_escape(text: &str) -> bool {
    text.contains(|c: char| c.is_control() || "\\*_[]|`~#@:&<>".contains(c))
        || text.as_bytes().windows(4).any(|w| w.eq_ignore_ascii_case(b"www."))
}

/// Text on one line: every run of line breaks, tabs and other control
/// characters (ANSI escapes included) becomes a single space.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_gap = false;
    for c in text.chars() {
        if c.is_control() {
            if !in_gap {
                out.push(' ');
                in_gap = true;
            }
        } else {
            out.push(c);
            in_gap = false;
        }
    }
    out
}

/// Free text for a terminal: one line, no control characters, so a server's
/// message cannot move the cursor or change colours; and no `::`, which at
/// the start of a line of a CI log would be a workflow command (`::error::`),
/// so a zero-width space goes between the two colons.
pub fn clean(text: &str) -> String {
    if !needs_clean(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        if c == ':' && out.ends_with(':') {
            out.push('\u{200B}');
        }
        out.push(c);
    }
    out
}

/// Whether [`clean`] may change `text`.
pub(crate) fn needs_clean(text: &str) -> bool {
    text.contains(|c: char| c.is_control() || c == ':')
}

/// Ends the text as a sentence (a period unless it already ends in `.`, `!` or `?`).
pub(crate) fn sentence(text: &str) -> String {
    let t = text.trim_end();
    if t.is_empty() || t.ends_with(['.', '!', '?']) { t.to_string() } else { format!("{t}.") }
}

/// The longest run of `ch` in `text`.
pub(crate) fn longest_run(text: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// An inline code span that no backquote in `text` can close early.
pub(crate) fn inline_code(text: &str) -> String {
    let text = one_line(text);
    let ticks = "`".repeat(longest_run(&text, '`') + 1);
    // A span starting or ending with a backquote needs padding, which Markdown strips.
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// A fenced code block whose fence is longer than any backquote run in
/// `text`, so nothing in it can close the block, and none of whose lines can
/// start a workflow command when the report is printed in a CI log.
pub fn fenced(text: &str, lang: &str) -> String {
    let fence = "`".repeat((longest_run(text, '`') + 1).max(3));
    let lang: String = one_line(lang).chars().filter(|c| *c != '`').collect();
    let body = no_workflow_commands(text.trim_end_matches(['\n', '\r']));
    format!("{fence}{lang}\n{body}\n{fence}")
}

/// `text` with a zero-width space between the colons of every `::` that
/// starts a line (after blanks): GitHub Actions reads such a line of a log
/// as a workflow command (`::error::`, `::add-mask::`, `::stop-commands::`),
/// and it ends lines at `\r` as well as `\n`.
pub(crate) fn no_workflow_commands(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut line_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\n' || c == '\r' {
            line_start = true;
        } else if line_start && !c.is_whitespace() {
            if c == ':' && chars.peek() == Some(&':') {
                out.push('\u{200B}');
            }
            line_start = false;
        }
    }
    out
}
