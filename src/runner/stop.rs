//! Stopping a run early: Ctrl-C and SIGTERM (the first stops new requests
//! and gives those in flight the grace period, the next cancels them), the
//! run's deadline (cancels at once), and abandoning a run whose server stopped
//! accepting connections. The runner checks a [`StopSignal`]; whoever owns
//! the run (the CLI's signal handler and deadline timer, a test) raises it
//! through the [`StopHandle`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use tokio::sync::watch;

use crate::exit::Failure;
use crate::results::{ErrorClass, RequestRecord};

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The run's deadline passed.
    Deadline(Duration),
}

impl StopReason {
    /// What happened, for warnings and errors.
    pub fn describe(self) -> String {
        match self {
            StopReason::Interrupted => "the run was interrupted".into(),
            StopReason::Deadline(limit) => format!(
                "the run reached its deadline of {} ([run] deadline, --deadline)",
                humantime::format_duration(limit)
            ),
        }
    }
}

/// Where a run is with stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopState {
    Running,
    /// No new requests; in-flight ones get the grace period.
    Draining(StopReason),
    /// In-flight requests are cancelled now.
    Cancelling(StopReason),
}

/// Raises a [`StopSignal`].
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<watch::Sender<StopState>>);

impl StopHandle {
    /// Ctrl-C / SIGTERM: the first stops new requests and gives in-flight
    /// ones the grace period; the next cancels them.
    pub fn interrupt(&self) {
        self.0.send_modify(|s| {
            *s = match *s {
                StopState::Running => StopState::Draining(StopReason::Interrupted),
                StopState::Draining(r) | StopState::Cancelling(r) => StopState::Cancelling(r),
            }
        });
    }

    /// Stops the run and cancels in-flight requests at once (the deadline).
    pub fn cancel(&self, reason: StopReason) {
        self.0.send_modify(|s| {
            if !matches!(s, StopState::Cancelling(_)) {
                *s = StopState::Cancelling(reason);
            }
        });
    }
}

/// Stops a run early: the runner stops sending, lets in-flight requests
/// finish within the grace period (or cancels them at once), records them,
/// and returns what it has, marked incomplete.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<StopState>);

impl StopSignal {
    /// A signal and the handle that raises it.
    pub fn new() -> (StopHandle, StopSignal) {
        let (tx, rx) = watch::channel(StopState::Running);
        (StopHandle(Arc::new(tx)), StopSignal(rx))
    }

    /// A signal that never fires.
    pub fn never() -> StopSignal {
        let (tx, rx) = watch::channel(StopState::Running);
        // Keep the channel open forever so `stopped` stays pending.
        std::mem::forget(tx);
        StopSignal(rx)
    }

    pub(super) fn is_stopped(&self) -> bool {
        *self.0.borrow() != StopState::Running
    }

    /// Why the run stopped, once it has.
    pub(super) fn reason(&self) -> Option<StopReason> {
        match *self.0.borrow() {
            StopState::Running => None,
            StopState::Draining(r) | StopState::Cancelling(r) => Some(r),
        }
    }

    /// Resolves once the run is to stop sending.
    pub(super) async fn stopped(&mut self) {
        self.wait(|s| *s != StopState::Running).await;
    }

    /// Resolves once in-flight requests are to be cancelled.
    pub(super) async fn cancelled(&mut self) {
        self.wait(|s| matches!(s, StopState::Cancelling(_))).await;
    }

    async fn wait(&mut self, f: impl FnMut(&StopState) -> bool) {
        // An error means the sender is gone: then nobody can stop us.
        if self.0.wait_for(f).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The error of a run that stopped before any case ran.
    pub(super) fn before_cases(&self) -> Failure {
        let why = self.reason().unwrap_or(StopReason::Interrupted).describe();
        Failure::run(anyhow!("{why} before any case ran; nothing was measured"))
    }

    /// The message of a request the stop cancelled.
    pub(super) fn cancel_message(&self) -> String {
        let why = self.reason().unwrap_or(StopReason::Interrupted).describe();
        format!("cancelled: {why} before the request finished")
    }
}

/// Awaits `fut` unless the run stops first (before any case ran).
pub(super) async fn until_stopped<T>(
    stop: &mut StopSignal,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    tokio::select! {
        biased;
        v = fut => Ok(v),
        () = stop.stopped() => Err(stop.before_cases()),
    }
}

/// Awaits one measured request. When the run stops meanwhile, the request
/// gets the grace period to finish; `None` when it was cancelled.
pub(super) async fn in_flight(
    fut: impl std::future::Future<Output = RequestRecord>,
    stop: &mut StopSignal,
    grace: Duration,
) -> Option<RequestRecord> {
    tokio::pin!(fut);
    tokio::select! {
        biased;
        r = &mut fut => return Some(r),
        () = stop.stopped() => {}
    }
    tokio::select! {
        biased;
        r = &mut fut => Some(r),
        () = stop.cancelled() => None,
        () = tokio::time::sleep(grace) => None,
    }
}

/// Consecutive connection failures after which the run stops: the server is gone.
pub(super) const MAX_CONSECUTIVE_CONNECT_ERRORS: u32 = 3;

/// Consecutive connection failures after `records`, counting on from
/// `previous`: any other outcome (an answer, another error) resets the count.
pub(super) fn count_connect_failures(previous: u32, records: &[RequestRecord]) -> u32 {
    let mut n = previous;
    for r in records {
        match &r.error {
            Some(e) if e.class == ErrorClass::Connect => n += 1,
            _ => n = 0,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::RequestError;

    #[test]
    fn interrupts_escalate_from_draining_to_cancelling_and_keep_the_first_reason() {
        let (handle, stop) = StopSignal::new();
        assert!(!stop.is_stopped());
        handle.interrupt();
        assert_eq!(*stop.0.borrow(), StopState::Draining(StopReason::Interrupted));
        handle.interrupt();
        assert_eq!(*stop.0.borrow(), StopState::Cancelling(StopReason::Interrupted));
        handle.cancel(StopReason::Deadline(Duration::from_secs(1)));
        assert_eq!(stop.reason(), Some(StopReason::Interrupted));

        let (handle, stop) = StopSignal::new();
        let deadline = StopReason::Deadline(Duration::from_secs(90));
        handle.cancel(deadline);
        handle.interrupt();
        assert_eq!(*stop.0.borrow(), StopState::Cancelling(deadline));
        assert_eq!(
            stop.cancel_message(),
            "cancelled: the run reached its deadline of 1m 30s ([run] deadline, --deadline) before the request finished"
        );
        assert!(!StopSignal::never().is_stopped());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_gets_the_grace_period_after_a_stop() {
        let answer = |after: u64| async move {
            tokio::time::sleep(Duration::from_millis(after)).await;
            RequestRecord::cancelled(7, 0.0, "answered")
        };
        for (answers_after, grace, kept) in [(100, 100, true), (100, 10, false)] {
            let (handle, mut stop) = StopSignal::new();
            let interrupt = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                handle.interrupt();
            });
            let r = in_flight(answer(answers_after), &mut stop, Duration::from_millis(grace)).await;
            assert_eq!(r.is_some(), kept, "answer after {answers_after} ms, grace {grace} ms");
            interrupt.await.unwrap();
        }
        // Cancelling ends the wait at once.
        let (handle, mut stop) = StopSignal::new();
        handle.cancel(StopReason::Interrupted);
        assert!(in_flight(answer(1), &mut stop, Duration::from_secs(60)).await.is_none());
    }

    #[test]
    fn only_consecutive_connection_failures_count_towards_abandoning() {
        let record = |class: Option<ErrorClass>| {
            let mut r = RequestRecord::cancelled(0, 0.0, "");
            r.error = class.map(|class| RequestError { class, status: None, message: String::new() });
            r
        };
        let connect = record(Some(ErrorClass::Connect));
        let answered = record(None);
        let timeout = record(Some(ErrorClass::Timeout));
        assert_eq!(count_connect_failures(0, &[connect.clone(), connect.clone()]), 2);
        assert_eq!(count_connect_failures(2, std::slice::from_ref(&connect)), MAX_CONSECUTIVE_CONNECT_ERRORS);
        assert_eq!(count_connect_failures(2, &[connect.clone(), answered]), 0);
        assert_eq!(count_connect_failures(1, &[timeout, connect]), 1);
        assert_eq!(count_connect_failures(2, &[]), 2);
    }
}
