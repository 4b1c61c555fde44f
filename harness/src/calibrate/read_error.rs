//! The harness's own ITL measurement error, separated from the target's.
//!
//! Every token event of the calibration target carries the time it was written
//! (`"written_us"`, on the target's monotonic clock). For two consecutive tokens of a stream,
//! the gap the harness measured minus the gap at which the target wrote them is what reading
//! them (the kernel, the runtime, the session engine) added or removed: the error of the
//! harness's ITL measurement alone, whatever the target's own timing. Both clocks are the same
//! machine's monotonic clock, and only differences of each are used, so no clock is shared.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::measure::recorder::Recorder;
use crate::session::{HttpRequest, InterruptReason, Observer};

/// |measured gap − written gap| in µs, over the current window; shared by every session.
#[derive(Debug)]
pub struct ReadErrors(Mutex<Histogram<u64>>);

impl ReadErrors {
    pub fn new() -> Arc<ReadErrors> {
        let h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds");
        Arc::new(ReadErrors(Mutex::new(h)))
    }

    /// The errors recorded since the last call, and start over.
    pub fn take(&self) -> Histogram<u64> {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let taken = h.clone();
        h.reset();
        taken
    }
}

/// The run's [`Recorder`], plus the read error of each token gap.
pub struct Observing {
    pub recorder: Recorder,
    errors: Arc<ReadErrors>,
    /// The last token of the current stream: when it was read, when it was written (µs).
    last: Option<(Instant, u64)>,
}

impl Observing {
    pub fn new(recorder: Recorder, errors: Arc<ReadErrors>) -> Observing {
        Observing {
            recorder,
            errors,
            last: None,
        }
    }
}

/// `… "written_us":123 …` → 123.
fn written_us(data: &str) -> Option<u64> {
    const KEY: &str = "\"written_us\":";
    let rest = &data[data.find(KEY)? + KEY.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

impl Observer for Observing {
    fn on_token_data(&mut self, data: &str, at: Instant) {
        let Some(written) = written_us(data) else {
            self.last = None;
            return;
        };
        if let Some((read0, written0)) = self.last.replace((at, written)) {
            let measured = at.saturating_duration_since(read0).as_micros();
            let wrote = u128::from(written.saturating_sub(written0));
            let error = u64::try_from(measured.abs_diff(wrote)).unwrap_or(u64::MAX);
            let mut h = self.errors.0.lock().unwrap_or_else(|p| p.into_inner());
            h.saturating_record(error);
        }
        self.recorder.on_token_data(data, at);
    }
    fn on_interruption(&mut self, reason: &InterruptReason) {
        // ITL is never measured across a reconnect.
        self.last = None;
        self.recorder.on_interruption(reason);
    }
    fn on_request(&mut self, request: &HttpRequest) {
        self.recorder.on_request(request);
    }
    fn on_created(&mut self, latency: Duration) {
        self.recorder.on_created(latency);
    }
    fn on_ttft(&mut self, from_intended: Duration, from_sent: Duration) {
        self.recorder.on_ttft(from_intended, from_sent);
    }
    fn on_itl(&mut self, gap: Duration) {
        self.recorder.on_itl(gap);
    }
    fn on_resume(&mut self, latency: Duration) {
        self.recorder.on_resume(latency);
    }
    fn on_token(&mut self, n: u64) {
        self.recorder.on_token(n);
    }
    fn on_event(&mut self) {
        self.recorder.on_event();
    }
    fn on_takeover(&mut self, gap: Duration, from: Option<&str>) {
        self.recorder.on_takeover(gap, from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Collector;

    #[test]
    fn the_read_error_is_the_measured_gap_minus_the_written_gap() {
        assert_eq!(written_us(r#"{"text":" a","written_us":1234}"#), Some(1234));
        assert_eq!(written_us(r#"{"text":" a"}"#), None);
        let errors = ReadErrors::new();
        let recorder = Recorder::new(Arc::new(Collector::default()), 0, None);
        let mut o = Observing::new(recorder, errors.clone());
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Written 100 ms apart; read 103 ms, then 97 ms apart: errors of 3 ms each way.
        o.on_token_data(r#"{"written_us":1000000}"#, at(0));
        o.on_token_data(r#"{"written_us":1100000}"#, at(103));
        o.on_token_data(r#"{"written_us":1200000}"#, at(200));
        // A reconnect starts over: no gap across it.
        o.on_interruption(&InterruptReason::Eof);
        o.on_token_data(r#"{"written_us":9000000}"#, at(900));
        let h = errors.take();
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 3000);
        assert!(h.equivalent(h.max(), 3000));
        assert!(errors.take().is_empty(), "taking empties it");
    }
}
