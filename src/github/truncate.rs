//! GitHub's size limits: a comment body or a job summary too long for
//! GitHub is shortened here, dropping whole `<details>` sections before
//! cutting lines, so the verdict, the callouts and the accept command stay.

/// Truncates Markdown to at most `max_chars` characters (GitHub's comment
/// limit is 65,536), keeping what matters and leaving valid Markdown.
///
/// First whole top-level `<details>` sections are dropped, largest first,
/// and `note` takes the place of the first one dropped; everything outside
/// them (the verdict, the callouts, the table of regressions, the accept
/// command) stays. If that is not enough, the text is cut at a line
/// boundary, any open code fence and `<details>` are closed, and `note` is
/// appended.
pub fn truncate_markdown(md: &str, max_chars: usize, note: &str) -> String {
    let len = |s: &str| s.chars().count();
    if len(md) <= max_chars {
        return md.to_string();
    }
    let note_block = format!("{}\n", note.trim_end());

    // Split into top-level blocks: whole <details> sections and the rest.
    let blocks = top_level_blocks(md);
    let mut dropped = vec![false; blocks.len()];
    let mut order: Vec<usize> = (0..blocks.len()).filter(|&i| blocks[i].1).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(len(blocks[i].0)));
    let assemble = |dropped: &[bool]| -> String {
        let mut out = String::new();
        let mut noted = false;
        for (i, (text, _)) in blocks.iter().enumerate() {
            if !dropped[i] {
                out.push_str(text);
            } else if !noted {
                out.push_str(&note_block);
                noted = true;
            }
        }
        out
    };
    for i in order {
        dropped[i] = true;
        let out = assemble(&dropped);
        if len(&out) <= max_chars {
            return out;
        }
    }
    // Not enough: cut what is left line by line.
    let rest = if dropped.iter().any(|d| *d) {
        let mut none_noted = String::new();
        for (i, (text, _)) in blocks.iter().enumerate() {
            if !dropped[i] {
                none_noted.push_str(text);
            }
        }
        none_noted
    } else {
        md.to_string()
    };
    cut_lines(&rest, max_chars, &note_block)
}

/// Top-level blocks of `md` with whether each is a `<details>` section.
/// Every block ends with its newline, so concatenating them gives `md` back.
pub(crate) fn top_level_blocks(md: &str) -> Vec<(&str, bool)> {
    let mut blocks = Vec::new();
    let mut scanner = Scanner::default();
    let (mut start, mut pos) = (0, 0);
    let mut in_details_block = false;
    for line in md.split_inclusive('\n') {
        let depth_before = scanner.details;
        scanner.feed(line);
        let end = pos + line.len();
        if depth_before == 0 && scanner.details > 0 {
            if start < pos {
                blocks.push((&md[start..pos], false));
            }
            start = pos;
            in_details_block = true;
        }
        if in_details_block && scanner.details == 0 {
            blocks.push((&md[start..end], true));
            start = end;
            in_details_block = false;
        }
        pos = end;
    }
    if start < md.len() {
        // An unclosed <details> at the end is not a droppable unit.
        blocks.push((&md[start..], false));
    }
    blocks
}

/// Tracks open code fences and `<details>` line by line.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scanner {
    /// The open fence (its character and length), if inside a fenced code block.
    fence: Option<(char, usize)>,
    /// Open `<details>` elements.
    details: usize,
}

impl Scanner {
    fn feed(&mut self, line: &str) {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let indent = trimmed.len() - trimmed.trim_start_matches(' ').len();
        let body = &trimmed[indent..];
        if indent <= 3 {
            for ch in ['`', '~'] {
                let run = body.chars().take_while(|c| *c == ch).count();
                if run >= 3 {
                    match self.fence {
                        None => {
                            self.fence = Some((ch, run));
                            return;
                        }
                        Some((open, n)) if open == ch && run >= n && body[run..].trim().is_empty() => {
                            self.fence = None;
                            return;
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if self.fence.is_some() {
            return;
        }
        let lower = trimmed.to_ascii_lowercase();
        self.details += lower.matches("<details").count();
        self.details = self.details.saturating_sub(lower.matches("</details>").count());
    }

    /// What closes everything still open.
    fn closing(&self) -> String {
        let mut out = String::new();
        if let Some((ch, n)) = self.fence {
            out.push_str(&ch.to_string().repeat(n));
            out.push('\n');
        }
        for _ in 0..self.details {
            out.push_str("\n</details>\n");
        }
        out
    }
}

/// Keeps whole lines of `md` while they, the closing of whatever is open and
/// `note_block` fit in `max_chars`.
pub(crate) fn cut_lines(md: &str, max_chars: usize, note_block: &str) -> String {
    let len = |s: &str| s.chars().count();
    let note_len = len(note_block) + 1;
    let mut kept = String::new();
    let mut kept_len = 0;
    let mut scanner = Scanner::default();
    for line in md.split_inclusive('\n') {
        let mut next = scanner.clone();
        next.feed(line);
        let line = if line.ends_with('\n') { line.to_string() } else { format!("{line}\n") };
        if kept_len + len(&line) + len(&next.closing()) + note_len > max_chars {
            break;
        }
        kept.push_str(&line);
        kept_len += len(&line);
        scanner = next;
    }
    let mut out = kept;
    out.push_str(&scanner.closing());
    out.push('\n');
    out.push_str(note_block);
    if len(&out) <= max_chars {
        out
    } else {
        // Not even the first line and the note fit: the note alone, cut.
        note_block.chars().take(max_chars).collect()
    }
}
