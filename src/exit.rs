//! Exit codes: the one place they are defined.
//!
//! CI systems and scripts branch on these, so they are part of the public
//! interface and documented in the book (`docs/src/exit-codes.md`). A
//! regression is an outcome, not an error; errors map to [`INVALID_INPUT`] or
//! [`RUN_FAILED`].

use crate::gate::Verdict;

/// Everything ran and nothing regressed.
pub const PASS: i32 = 0;
/// The run was trustworthy and at least one metric regressed beyond tolerance.
pub const REGRESSION: i32 = 1;
/// Invalid input or configuration: a flag, a config key, a suite or baseline file.
pub const INVALID_INPUT: i32 = 2;
/// The run could not be completed or cannot be trusted: server down, requests
/// failing, interrupted, environment mismatch.
pub const RUN_FAILED: i32 = 3;

/// Which verdicts fail the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Regressions exit 1.
    Regression,
    /// Regressions and warnings exit 1.
    Warning,
    /// Regressions and warnings exit 0 (a run that could not be trusted still exits 3).
    Never,
}

/// The exit code for a verdict under `--fail-on`: the one mapping from
/// the gate's outcome to a process exit code. A run that could not be
/// trusted (invalid, refused) exits 3 whatever `--fail-on` says.
pub fn of_verdict(verdict: Verdict, fail_on: FailOn) -> i32 {
    match (verdict, fail_on) {
        (v, _) if v.is_unjudged() => RUN_FAILED,
        (_, FailOn::Never) => PASS,
        (Verdict::Warn, FailOn::Warning) => REGRESSION,
        (v, _) if v.is_regression() => REGRESSION,
        _ => PASS,
    }
}

/// Why a command failed, which decides its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The user has to fix an input (exit [`INVALID_INPUT`]).
    InvalidInput,
    /// The measurement could not be completed or trusted (exit [`RUN_FAILED`]).
    RunFailed,
}

impl FailureKind {
    /// The process exit code for this kind of failure.
    pub fn code(self) -> i32 {
        match self {
            FailureKind::InvalidInput => INVALID_INPUT,
            FailureKind::RunFailed => RUN_FAILED,
        }
    }
}

/// An error with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
#[error("{source:#}")]
pub struct Failure {
    /// Which exit code the failure maps to.
    pub kind: FailureKind,
    /// What went wrong, with context for the user.
    #[source]
    pub source: anyhow::Error,
}

impl Failure {
    /// A failure the user fixes by changing an input.
    pub fn invalid(source: impl Into<anyhow::Error>) -> Self {
        Self { kind: FailureKind::InvalidInput, source: source.into() }
    }

    /// A failure of the run itself.
    pub fn run(source: impl Into<anyhow::Error>) -> Self {
        Self { kind: FailureKind::RunFailed, source: source.into() }
    }

    /// The process exit code.
    pub fn code(&self) -> i32 {
        self.kind.code()
    }
}

/// Attaches an exit-code kind to any error.
pub trait ResultExt<T> {
    /// Marks the error as invalid input (exit 2).
    fn invalid(self) -> Result<T, Failure>;
    /// Marks the error as a failed run (exit 3).
    fn run_failed(self) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> ResultExt<T> for Result<T, E> {
    fn invalid(self) -> Result<T, Failure> {
        self.map_err(Failure::invalid)
    }
    fn run_failed(self) -> Result<T, Failure> {
        self.map_err(Failure::run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_maps_verdicts() {
        use Verdict::*;
        assert_eq!(of_verdict(Regressed, FailOn::Regression), REGRESSION);
        assert_eq!(of_verdict(Warn, FailOn::Regression), PASS);
        assert_eq!(of_verdict(Warn, FailOn::Warning), REGRESSION);
        assert_eq!(of_verdict(Regressed, FailOn::Never), PASS);
        assert_eq!(of_verdict(Invalid, FailOn::Never), RUN_FAILED);
        assert_eq!(of_verdict(Refused, FailOn::Never), RUN_FAILED);
        assert_eq!(of_verdict(UpdateRequired, FailOn::Regression), REGRESSION);
        assert_eq!(of_verdict(Improved, FailOn::Warning), PASS);
        assert_eq!(of_verdict(Pass, FailOn::Warning), PASS);
    }
}
