//! The scheduler of a measured phase: starts the phase's requests at most
//! `concurrency` at a time, as a Poisson process when a rate is set (the
//! planned start times come from a seeded generator, so they do not depend
//! on how fast the server answers), collects their records, and stops
//! starting requests when the run is stopped. Requests in flight then get
//! the grace period (or none, when the stop cancels them: a second
//! interrupt, the deadline) and the rest are recorded as cancelled; requests
//! never started leave no record.
//!
//! What one request is ([`Measure`]) is the caller's: the client, or a test
//! fake with scripted latencies and failures. It is called once per request
//! and is a type parameter, so the real path has no dynamic dispatch.
//!
//! The phase's clock is tokio's, which is the system's monotonic clock in a
//! run and a paused, controllable one in tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::events::{Reporter, RunEvent};
use super::stop::StopSignal;
use crate::results::RequestRecord;
use crate::rng::Rng;

/// One measured request, as the dispatcher starts it.
pub(super) trait Measure: Send + Sync + 'static {
    /// Sends request `index` of the phase (with the retries its policy
    /// allows) and returns its record, stamped against the phase's `epoch`.
    /// A failure is a record, never an error.
    fn measure(&self, index: u32, epoch: Instant) -> impl Future<Output = RequestRecord> + Send;
}

/// What a phase asks of the dispatcher.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule<'a> {
    /// Requests to start.
    pub requests: u32,
    /// Most requests in flight at once.
    pub concurrency: u32,
    /// Poisson arrivals at this many requests per second; back to back when `None`.
    pub rate: Option<f64>,
    /// Seeds the arrival times (the case id), so every run of a case draws the same.
    pub seed: &'a str,
}

/// The planned start times of a phase's requests: all at once (bounded by
/// the concurrency only), or the arrivals of a Poisson process.
pub(super) struct Arrivals {
    rng: Rng,
    rate: Option<f64>,
    next: Instant,
}

impl Arrivals {
    /// The arrivals of a phase that starts at `epoch`.
    pub fn new(schedule: &Schedule<'_>, epoch: Instant) -> Arrivals {
        Arrivals { rng: Rng::from_parts(&[schedule.seed.as_bytes(), b"arrivals"]), rate: schedule.rate, next: epoch }
    }

    /// The earliest start of the next request.
    pub fn next_start(&mut self) -> Instant {
        if let Some(rate) = self.rate {
            // Rates are validated (`limits::check_rate`); the clamped
            // arithmetic keeps even a draw far in the tail from panicking.
            let gap = self.rng.exponential(1.0 / rate);
            self.next = Instant::from_std(crate::limits::after_secs(self.next.into_std(), gap));
        }
        self.next
    }
}

/// What a dispatched phase produced.
#[derive(Debug)]
pub(super) struct Dispatched {
    /// Every started request's record, in the order they finished; those
    /// cancelled by the stop come last.
    pub records: Vec<RequestRecord>,
    /// Seconds from the phase's start to its last record.
    pub duration_s: f64,
    /// Whether the run was stopped during the phase.
    pub stopped: bool,
}

/// Runs a phase of `schedule.requests` requests of `measure`. On a stop no
/// request is started any more; those in flight get `grace` to finish (none
/// when the stop cancels them), and the rest are recorded as cancelled.
/// Each record is reported as [`RunEvent::RequestDone`] when it is collected.
pub(super) async fn dispatch<M: Measure>(
    measure: &Arc<M>,
    schedule: &Schedule<'_>,
    grace: Duration,
    reporter: &mut dyn Reporter,
    stop: &mut StopSignal,
) -> Dispatched {
    let epoch = Instant::now();
    let permits = Arc::new(Semaphore::new(schedule.concurrency as usize));
    let mut arrivals = Arrivals::new(schedule, epoch);
    let mut tasks: JoinSet<RequestRecord> = JoinSet::new();
    // Requests in flight: index and start (ms into the phase).
    let mut pending: BTreeMap<u32, f64> = BTreeMap::new();
    let mut records = Vec::new();
    let mut stopped = false;
    let mut collect = |r: RequestRecord, pending: &mut BTreeMap<u32, f64>, records: &mut Vec<RequestRecord>| {
        pending.remove(&r.index);
        reporter.event(&RunEvent::RequestDone { ok: r.ok });
        records.push(r);
    };
    for index in 0..schedule.requests {
        let start = arrivals.next_start();
        // Wait for the arrival time and a free slot, collecting finished requests meanwhile.
        let permit = loop {
            tokio::select! {
                biased;
                _ = stop.stopped() => { stopped = true; break None; }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(r) = done {
                        collect(r, &mut pending, &mut records);
                    }
                }
                p = async {
                    tokio::time::sleep_until(start).await;
                    permits.clone().acquire_owned().await
                } => break p.ok(),
            }
        };
        let Some(permit) = permit else { break };
        let measure = Arc::clone(measure);
        pending.insert(index, round_ms(epoch.elapsed()));
        tasks.spawn(async move {
            let mut r = measure.measure(index, epoch).await;
            r.index = index;
            drop(permit);
            r
        });
    }
    // Collect the rest; after a stop, only within the grace period.
    let mut cancel = stop.clone();
    let mut grace_end = stopped.then(|| later(Instant::now(), grace));
    loop {
        let grace_over = async {
            match grace_end {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            done = tasks.join_next() => match done {
                Some(Ok(r)) => collect(r, &mut pending, &mut records),
                Some(Err(_)) => {}
                None => break,
            },
            _ = stop.stopped(), if grace_end.is_none() => {
                stopped = true;
                grace_end = Some(later(Instant::now(), grace));
            }
            _ = cancel.cancelled(), if grace_end.is_some() => break,
            () = grace_over => break,
        }
    }
    tasks.abort_all();
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            collect(r, &mut pending, &mut records);
        }
    }
    let why = stop.cancel_message();
    for (index, start_ms) in pending {
        reporter.event(&RunEvent::RequestDone { ok: false });
        records.push(RequestRecord::cancelled(index, start_ms, &why));
    }
    Dispatched { records, duration_s: epoch.elapsed().as_secs_f64(), stopped }
}

/// `d` after `t`, clamped like [`crate::limits::after`].
fn later(t: Instant, d: Duration) -> Instant {
    Instant::from_std(crate::limits::after(t.into_std(), d))
}

/// Milliseconds of `d`, rounded to the microsecond.
fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    //! The scheduler against a scripted fake on tokio's paused clock: time
    //! moves only when every task waits, straight to the next timer, so each
    //! start and finish lands on the millisecond the script says.

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::super::stop::{StopHandle, StopReason, count_connect_failures};
    use super::*;
    use crate::client::retry::{MAX_RETRY_WAIT, RetryPolicy, with_retries};
    use crate::results::{ErrorClass, PhaseSummary, RequestError, TokenSource};

    /// Output tokens of a completed fake request.
    const OUT: u32 = 16;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// How a scripted attempt ends.
    #[derive(Debug, Clone, Copy)]
    enum Ends {
        Ok,
        /// No connection (retried).
        Connect,
        /// An HTTP 500 (an answer: never retried).
        Status500,
    }

    /// Attempt `n` (1-based) of request `index`: how long it takes, how it ends.
    type Script = Box<dyn Fn(u32, u32) -> (Duration, Ends) + Send + Sync>;

    /// A server in a box: every attempt takes and ends as scripted, and the
    /// fake counts how many are in flight and when each started.
    struct Fake {
        script: Script,
        retry: RetryPolicy,
        in_flight: AtomicU32,
        most_in_flight: AtomicU32,
        attempts: Mutex<BTreeMap<u32, u32>>,
        /// Start of every attempt since the phase's epoch: (request, start).
        starts: Mutex<Vec<(u32, Duration)>>,
    }

    impl Fake {
        fn new(retry: RetryPolicy, script: impl Fn(u32, u32) -> (Duration, Ends) + Send + Sync + 'static) -> Arc<Fake> {
            Arc::new(Fake {
                script: Box::new(script),
                retry,
                in_flight: AtomicU32::new(0),
                most_in_flight: AtomicU32::new(0),
                attempts: Mutex::new(BTreeMap::new()),
                starts: Mutex::new(Vec::new()),
            })
        }

        /// Every request answers after `latency(index)`.
        fn answering(latency: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Arc<Fake> {
            Fake::new(RetryPolicy::none(), move |i, _| (latency(i), Ends::Ok))
        }

        fn starts(&self) -> Vec<(u32, Duration)> {
            let mut s = self.starts.lock().unwrap().clone();
            s.sort();
            s
        }

        async fn attempt(&self, index: u32, epoch: Instant) -> (RequestRecord, Option<Duration>) {
            let n = {
                let mut all = self.attempts.lock().unwrap();
                let n = all.entry(index).or_insert(0);
                *n += 1;
                *n
            };
            let (latency, ends) = (self.script)(index, n);
            let start = Instant::now() - epoch;
            self.starts.lock().unwrap().push((index, start));
            let busy = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(busy, Ordering::SeqCst);
            // Leaves the count when done or when aborted.
            let _leave = Leave(&self.in_flight);
            tokio::time::sleep(latency).await;
            let mut r = RequestRecord::cancelled(index, round_ms(start), "");
            r.error = match ends {
                Ends::Ok => {
                    r.ok = true;
                    r.e2e_ms = Some(round_ms(latency));
                    r.output_tokens = Some(OUT);
                    r.output_tokens_source = TokenSource::Usage;
                    r.done_received = true;
                    None
                }
                Ends::Connect => {
                    Some(RequestError { class: ErrorClass::Connect, status: None, message: "refused".into() })
                }
                Ends::Status500 => {
                    Some(RequestError { class: ErrorClass::HttpStatus, status: Some(500), message: "500".into() })
                }
            };
            (r, None)
        }
    }

    struct Leave<'a>(&'a AtomicU32);

    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Measure for Fake {
        fn measure(&self, index: u32, epoch: Instant) -> impl Future<Output = RequestRecord> + Send {
            with_retries(&self.retry, move || self.attempt(index, epoch))
        }
    }

    /// The outcome of every `RequestDone`, in order.
    #[derive(Default)]
    struct Done(Vec<bool>);

    impl Reporter for Done {
        fn event(&mut self, event: &RunEvent) {
            if let RunEvent::RequestDone { ok } = event {
                self.0.push(*ok);
            }
        }
    }

    fn schedule(requests: u32, concurrency: u32, rate: Option<f64>) -> Schedule<'static> {
        Schedule { requests, concurrency, rate, seed: "code-review/12800" }
    }

    /// A stop raised this long after the phase starts.
    type Raise = (Duration, fn(&StopHandle));

    /// Dispatches on a fresh stop signal; `at` raises it at times since the
    /// start (at zero: before the phase starts).
    async fn run(
        fake: &Arc<Fake>,
        schedule: Schedule<'_>,
        grace: Duration,
        at: Vec<Raise>,
    ) -> (Dispatched, Vec<bool>, StopSignal) {
        let (handle, mut stop) = StopSignal::new();
        let start = Instant::now();
        for (t, raise) in at {
            if t.is_zero() {
                raise(&handle);
                continue;
            }
            let handle = handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(start + t).await;
                raise(&handle);
            });
        }
        let mut done = Done::default();
        let out = dispatch(fake, &schedule, grace, &mut done, &mut stop).await;
        assert_eq!(done.0.len(), out.records.len(), "one event per record");
        (out, done.0, stop)
    }

    fn by_index(mut records: Vec<RequestRecord>) -> Vec<RequestRecord> {
        records.sort_by_key(|r| r.index);
        records
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_c_is_never_exceeded_and_keeps_c_requests_busy() {
        let latency = |i: u32| ms(20 + u64::from(i * 37 % 50));
        for c in [1u32, 3, 12] {
            let fake = Fake::answering(latency);
            let (out, _, _) = run(&fake, schedule(12, c, None), ms(0), vec![]).await;
            assert_eq!(fake.most_in_flight.load(Ordering::SeqCst), c, "concurrency {c}");
            // List scheduling: each request starts the moment a slot frees.
            let mut free = vec![Duration::ZERO; c as usize];
            let mut expected = Vec::new();
            for i in 0..12 {
                let (slot, start) = free.iter().copied().enumerate().min_by_key(|&(_, t)| t).unwrap();
                expected.push((i, start));
                free[slot] = start + latency(i);
            }
            assert_eq!(fake.starts(), expected, "concurrency {c}");
            let records = by_index(out.records);
            assert!(records.iter().all(|r| r.ok));
            assert_eq!(records.iter().map(|r| r.index).collect::<Vec<_>>(), (0..12).collect::<Vec<_>>());
            let end = free.iter().max().unwrap().as_secs_f64();
            assert!((out.duration_s - end).abs() < 1e-9, "{} vs {end}", out.duration_s);
            assert!(!out.stopped);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn poisson_arrivals_start_at_the_planned_times_whatever_the_answers_take() {
        let rate = 20.0;
        // The plan, drawn here from the same seed: exponential gaps of mean 1/rate.
        let mut rng = Rng::from_parts(&[b"code-review/12800", b"arrivals"]);
        let mut t = 0.0;
        let planned: Vec<f64> = (0..30)
            .map(|_| {
                t += rng.exponential(1.0 / rate);
                t
            })
            .collect();
        let mut seen = Vec::new();
        for latency in [|_| ms(1), |i: u32| ms(200 + u64::from(i * 131 % 700))] {
            let fake = Fake::answering(latency);
            let (out, _, _) = run(&fake, schedule(30, 30, Some(rate)), ms(0), vec![]).await;
            assert_eq!(out.records.len(), 30);
            let starts = fake.starts();
            for ((i, start), plan) in starts.iter().zip(&planned) {
                // The timer fires on the next millisecond tick.
                let s = start.as_secs_f64();
                assert!(s >= plan - 1e-6 && s <= plan + 1e-3 + 1e-6, "request {i}: {s} s, planned {plan} s");
            }
            seen.push(starts);
        }
        assert_eq!(seen[0], seen[1], "the answers' latency moved the arrivals");
        // Not back to back: the gaps vary.
        assert!(planned.windows(2).any(|w| w[1] - w[0] > 0.1) && planned.windows(2).any(|w| w[1] - w[0] < 0.02));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_new_requests_and_cancels_those_in_flight() {
        let fake = Fake::answering(|_| ms(100));
        let limit = ms(250);
        let raise: fn(&StopHandle) = |h| h.cancel(StopReason::Deadline(Duration::from_millis(250)));
        let (out, done, stop) = run(&fake, schedule(5, 1, None), Duration::from_secs(10), vec![(limit, raise)]).await;
        assert!(out.stopped);
        assert_eq!(stop.reason(), Some(StopReason::Deadline(limit)));
        assert!((out.duration_s - 0.25).abs() < 1e-9, "{}", out.duration_s);
        assert_eq!(done, [true, true, false]);
        let records = by_index(out.records);
        // Two finished, the third was cut at 250 ms, the last two never started.
        assert_eq!(
            records.iter().map(|r| (r.index, r.ok, r.start_ms)).collect::<Vec<_>>(),
            [(0, true, 0.0), (1, true, 100.0), (2, false, 200.0)]
        );
        let error = records[2].error.as_ref().unwrap();
        assert_eq!(error.class, ErrorClass::Cancelled);
        assert_eq!(
            error.message,
            "cancelled: the run reached its deadline of 250ms ([run] deadline, --deadline) before the request finished"
        );
        let summary = PhaseSummary::from_records(&records, out.duration_s, OUT);
        assert_eq!((summary.requests, summary.completed, summary.errors, summary.cancelled), (3, 2, 0, 1));
        assert_eq!(summary.error_rate, 0.0);
        assert_eq!(fake.starts().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_interrupt_stops_new_requests_and_keeps_what_finishes_within_the_grace() {
        let interrupt: fn(&StopHandle) = StopHandle::interrupt;
        let outcomes = |records: &[RequestRecord]| records.iter().map(|r| (r.index, r.ok)).collect::<Vec<_>>();

        // Within the grace: the two in flight finish and are kept.
        let fake = Fake::answering(|_| ms(100));
        let (out, _, stop) = run(&fake, schedule(6, 2, None), Duration::from_secs(1), vec![(ms(150), interrupt)]).await;
        assert!(out.stopped);
        assert_eq!(stop.reason(), Some(StopReason::Interrupted));
        assert!((out.duration_s - 0.2).abs() < 1e-9, "{}", out.duration_s);
        assert_eq!(outcomes(&by_index(out.records)), [(0, true), (1, true), (2, true), (3, true)]);

        // Past the grace: the two in flight are cancelled when it ends.
        let fake = Fake::answering(|_| ms(100));
        let (out, done, _) = run(&fake, schedule(6, 2, None), ms(20), vec![(ms(150), interrupt)]).await;
        assert!((out.duration_s - 0.17).abs() < 1e-9, "{}", out.duration_s);
        assert_eq!(done, [true, true, false, false]);
        let records = by_index(out.records);
        assert_eq!(outcomes(&records), [(0, true), (1, true), (2, false), (3, false)]);
        for r in &records[2..] {
            assert_eq!(r.start_ms, 100.0);
            let e = r.error.as_ref().unwrap();
            assert_eq!(e.class, ErrorClass::Cancelled);
            assert_eq!(e.message, "cancelled: the run was interrupted before the request finished");
        }
        assert_eq!(fake.in_flight.load(Ordering::SeqCst), 0, "the cancelled requests were aborted");

        // After the last request started, the grace period still holds.
        let fake = Fake::answering(|i| ms(60 + 40 * u64::from(i)));
        let (out, _, _) = run(&fake, schedule(2, 2, None), ms(20), vec![(ms(50), interrupt)]).await;
        assert!(out.stopped);
        assert!((out.duration_s - 0.07).abs() < 1e-9, "{}", out.duration_s);
        assert_eq!(outcomes(&by_index(out.records)), [(0, true), (1, false)]);

        // A second interrupt cancels at once, whatever the grace.
        let fake = Fake::answering(|_| ms(100));
        let twice = vec![(ms(150), interrupt), (ms(160), interrupt)];
        let (out, _, _) = run(&fake, schedule(6, 2, None), Duration::from_secs(10), twice).await;
        assert!((out.duration_s - 0.16).abs() < 1e-9, "{}", out.duration_s);
        assert_eq!(outcomes(&by_index(out.records)), [(0, true), (1, true), (2, false), (3, false)]);

        // Stopped before the phase: nothing starts.
        let fake = Fake::answering(|_| ms(100));
        let (out, done, _) = run(&fake, schedule(6, 2, None), ms(20), vec![(ms(0), interrupt)]).await;
        assert!(out.stopped && out.records.is_empty() && done.is_empty() && fake.starts().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_attempts_are_retried_and_each_request_is_accounted_once() {
        let retry = RetryPolicy { retries: 2, max_wait: MAX_RETRY_WAIT, deadline: None };
        // Request 0 never connects; request 1 connects on its second
        // attempt; request 2 is answered with a 500, which is not retried.
        let fake = Fake::new(retry, |i, n| {
            let ends = match (i, n) {
                (0, _) => Ends::Connect,
                (1, 1) => Ends::Connect,
                (1, _) => Ends::Ok,
                _ => Ends::Status500,
            };
            (ms(10), ends)
        });
        let (out, done, _) = run(&fake, schedule(3, 1, None), ms(0), vec![]).await;
        assert!(!out.stopped);
        assert_eq!(done, [false, true, false]);
        // 0: 3 attempts of 10 ms with 250 and 500 ms between them; 1: 2
        // attempts with 250 ms between; 2: one attempt.
        assert!((out.duration_s - 1.06).abs() < 1e-9, "{}", out.duration_s);
        let records = by_index(out.records);
        let view = |r: &RequestRecord| (r.index, r.ok, r.attempts, r.retries.len(), r.start_ms);
        assert_eq!(
            records.iter().map(view).collect::<Vec<_>>(),
            [(0, false, 3, 2, 770.0), (1, true, 2, 1, 1040.0), (2, false, 1, 0, 1050.0)]
        );
        assert_eq!(records[0].retries.iter().map(|a| a.wait_ms).collect::<Vec<_>>(), [250.0, 500.0]);
        assert_eq!(records[0].error.as_ref().unwrap().message, "refused (gave up after 3 attempts)");
        assert_eq!(records[2].error.as_ref().unwrap().status, Some(500));
        let summary = PhaseSummary::from_records(&records, out.duration_s, OUT);
        assert_eq!((summary.requests, summary.completed, summary.errors, summary.cancelled), (3, 1, 2, 0));
        assert_eq!(summary.retried, 2);
        assert_eq!(
            summary.errors_by_class.into_iter().collect::<Vec<_>>(),
            [("connect".to_string(), 1), ("http_status".to_string(), 1)]
        );
        // One failed request is one connection failure towards abandoning the run.
        assert_eq!(count_connect_failures(0, &records[..1]), 1);
        assert_eq!(count_connect_failures(0, &records), 0);
    }
}
