//! Text from outside (a server's answer, a file, a URL the user typed) made
//! inert before it reaches a terminal or a CI log.
//!
//! Two dangers: control characters (a newline starts a new log line, a
//! carriage return overwrites one, an ANSI escape recolours or moves the
//! cursor) and GitHub's workflow commands, which the runner reads from any
//! output line that begins with `::` after leading whitespace (`::error::`,
//! `::add-mask::`, `::stop-commands::`). And one leak: the password of a
//! URL's userinfo (`http://user:secret@host`), which error messages would
//! otherwise quote with the URL.
//!
//! [`inert`] is for a quote inside a message (it stays on its line);
//! [`for_log`] is for a whole message about to be printed (its own line
//! breaks are kept, each line made safe). Both redact userinfo.

use std::borrow::Cow;

/// A zero-width space: put between the two colons of a line's leading `::`,
/// it keeps the text readable and no longer a workflow command.
const BREAK: char = '\u{200B}';

/// `text` on one line: every control character escaped as Rust would
/// (`\n`, `\r`, `\u{1b}`), Unicode line and paragraph separators and
/// bidirectional overrides too, and URL userinfo redacted.
pub fn inert(text: &str) -> Cow<'_, str> {
    let text = redact_userinfo(text);
    if !text.chars().any(needs_escape) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A whole message for stderr or a CI log: its lines stay lines, but in each
/// every other control character is escaped, a leading `::` (after
/// whitespace) is broken, and URL userinfo is redacted.
pub fn for_log(text: &str) -> Cow<'_, str> {
    let text = redact_userinfo(text);
    let unsafe_line = |l: &str| l.chars().any(|c| c != '\t' && needs_escape(c)) || l.trim_start().starts_with("::");
    if !text.split('\n').any(unsafe_line) {
        return text;
    }
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let mut out = String::with_capacity(line.len() + 4);
            for c in line.chars() {
                if c != '\t' && needs_escape(c) {
                    out.extend(c.escape_default());
                } else {
                    out.push(c);
                }
            }
            let lead = out.len() - out.trim_start().len();
            if out[lead..].starts_with("::") {
                out.insert(lead + 1, BREAK);
            }
            out
        })
        .collect();
    Cow::Owned(lines.join("\n"))
}

/// Whether `c` must not reach a terminal as it is.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// `text` with the userinfo of every URL in it replaced: `scheme://user:pw@host`
/// becomes `scheme://<redacted>@host`. A URL is `LETTERS://`; its userinfo
/// is what comes before an `@` within the authority (up to the first `/`,
/// `?`, `#` or whitespace).
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(i) if i > 0 => {
                out.push_str("<redacted>");
                out.push_str(&authority[i..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed { Cow::Owned(out) } else { Cow::Borrowed(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_stays_on_its_line() {
        assert_eq!(inert("llama-3"), "llama-3");
        assert_eq!(inert("a\n::error::pwned\r\u{1b}[31m"), "a\\n::error::pwned\\r\\u{1b}[31m");
        assert_eq!(inert("x\u{202E}y\u{2028}"), "x\\u{202e}y\\u{2028}");
        assert!(matches!(inert("plain text: fine"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_message_keeps_its_lines_but_no_line_is_a_workflow_command() {
        let m = for_log("error: model `x` is not served\n::error::forged\n  ::add-mask::x\n\tindented\u{1b}[2J");
        assert_eq!(
            m,
            "error: model `x` is not served\n:\u{200B}:error::forged\n  :\u{200B}:add-mask::x\n\tindented\\u{1b}[2J"
        );
        assert!(for_log(&m).lines().all(|l| !l.trim_start().starts_with("::")));
        assert!(matches!(for_log("ok\nfine: yes"), Cow::Borrowed(_)));
    }

    #[test]
    fn userinfo_is_redacted_wherever_a_url_appears() {
        assert_eq!(
            redact_userinfo("cannot reach http://bob:hunter2@10.0.0.1:8000/v1/models (refused)"),
            "cannot reach http://<redacted>@10.0.0.1:8000/v1/models (refused)"
        );
        assert_eq!(
            redact_userinfo("https://tok@h and ftp://a:b@c?x=@y"),
            "https://<redacted>@h and ftp://<redacted>@c?x=@y"
        );
        assert_eq!(redact_userinfo("mail me: a@b, see http://host/x@y"), "mail me: a@b, see http://host/x@y");
        assert_eq!(inert("http://u:p@h\n"), "http://<redacted>@h\\n");
    }
}
