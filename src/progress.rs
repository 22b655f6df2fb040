//! Progress on the terminal: a bar on a TTY, plain lines otherwise (CI logs).
//!
//! Consumes [`RunEvent`]s only; it never reaches into the runner.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressStyle};

use crate::results::PhaseName;
use crate::runner::{Reporter, RunEvent};

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors and the final summary only.
    Quiet,
    /// Progress and warnings.
    Normal,
}

/// The terminal reporter.
pub struct Terminal {
    verbosity: Verbosity,
    bar: Option<ProgressBar>,
    tty: bool,
}

impl Terminal {
    /// A reporter writing to stderr.
    pub fn new(verbosity: Verbosity) -> Self {
        Self { verbosity, bar: None, tty: std::io::stderr().is_terminal() }
    }

    fn line(&self, text: &str) {
        // Model names, versions and error excerpts come from the server:
        // no escape sequence or line break of theirs reaches the terminal.
        let text = printable(text);
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

/// `text` with every control character shown as `\u{..}`.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for Terminal {
    fn event(&mut self, event: &RunEvent) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        match event {
            RunEvent::Started { server, cases, total_requests } => {
                let version = server.reported_version.as_deref().unwrap_or("version unknown");
                self.line(&format!(
                    "server {} ({version}), model {}, {cases} cases, {total_requests} requests, prompts sized by {}",
                    server.host, server.model, server.prompt_sizing
                ));
                if self.tty {
                    let bar = ProgressBar::new(*total_requests);
                    if let Ok(style) =
                        ProgressStyle::with_template("{bar:30} {pos}/{len} requests  {elapsed_precise}  {msg}")
                    {
                        bar.set_style(style);
                    }
                    self.bar = Some(bar);
                }
            }
            RunEvent::Sizing { case } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{case}: sizing prompt"));
                }
            }
            RunEvent::CaseStarted { index, total, case } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("[{index}/{total}] {case}"));
                }
            }
            RunEvent::RequestDone { .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            RunEvent::PhaseDone { case, phase, summary } => {
                let med = |s: &Option<crate::stats::Summary>| {
                    s.as_ref().map_or(crate::report::format::MISSING.to_string(), |s| format!("{:.1}", s.median))
                };
                let name = match phase {
                    PhaseName::Cold => "cold",
                    PhaseName::Warm => "warm",
                };
                let errors = if summary.errors > 0 { format!(", {} ERRORS", summary.errors) } else { String::new() };
                self.line(&format!(
                    "{case} {name}: {}/{} ok, TTFT p50 {} ms, TPOT p50 {} ms, E2E p50 {} ms{errors}",
                    summary.completed,
                    summary.requests,
                    med(&summary.ttft_ms),
                    med(&summary.tpot_ms),
                    med(&summary.e2e_ms)
                ));
            }
            RunEvent::Warning(w) => self.line(&format!("warning: {w}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn server_text_cannot_drive_the_terminal() {
        assert_eq!(printable("model \u{1b}[2Jx\nfake line\r"), "model \\u{1b}[2Jx\\u{a}fake line\\u{d}");
        assert_eq!(printable("Qwen/Qwen2.5 (한국어)"), "Qwen/Qwen2.5 (한국어)");
    }
}
