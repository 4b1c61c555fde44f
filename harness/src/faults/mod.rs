//! The fault timeline: run each `[[faults]]` entry at its time against the target
//! ([`driver`]), and attribute what clients saw — interruptions, drops, resume latency,
//! wasted tokens — to the fault and replica responsible ([`FaultLog`]).
//!
//! Attribution rule (documented in the report): an interruption noticed at time *t* on
//! replica *r* belongs to a fault whose window `[started, ended + slack]` contains *t* and
//! that acted on *r* (faults that act on the whole target — brownouts, network faults,
//! commands — match any replica). When several match, the latest started wins. `slack` is
//! the client's idle timeout plus one second: the longest a client can take to notice a
//! dead stream. A dropped session belongs to the fault of its last attributed interruption,
//! or else to a fault window containing the moment it was given up. A session's wasted
//! tokens belong to the first fault that interrupted it.
//!
//! Not for measuring sessions (see `session`, `measure`) nor for how a target performs an
//! operation (see `fleet`).

pub mod deploy;
pub mod driver;
pub mod ecs;
pub mod stop;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dropzero_reports as r;
use hdrhistogram::Histogram;

use crate::session::{SessionClass, SessionOutcome};

/// One fault as it ran.
#[derive(Debug)]
pub struct FaultEntry {
    pub action: &'static str,
    pub at: Duration,
    pub params: serde_json::Value,
    pub started: Instant,
    pub ended: Option<Instant>,
    /// Replicas the fault acts on; empty = the whole target.
    pub replicas: Vec<String>,
    pub started_replicas: Vec<String>,
    pub stops: Vec<r::ReplicaStop>,
    pub notes: Vec<String>,
    /// Which repetition of a repeated `[[faults]]` entry this is.
    pub repeat: Option<r::FaultRepeat>,
    /// The fault did not complete (a note says why).
    pub incomplete: bool,
    interrupted: u64,
    dropped: u64,
    wasted_tokens: u64,
    wasted_input_tokens: u64,
    resume: Histogram<u64>,
    takeover: Histogram<u64>,
    /// Per replica the fault acted on: sessions whose stream on it was interrupted by this
    /// fault, and of those, sessions that were then dropped (what clients saw of a stop).
    by_replica: BTreeMap<String, (u64, u64)>,
}

/// Every fault of the run and what was attributed to it. Shared by the fault driver (which
/// opens and closes entries) and the session recorder (which attributes).
#[derive(Debug)]
pub struct FaultLog {
    run_start: Instant,
    slack: Duration,
    entries: Mutex<Vec<FaultEntry>>,
}

/// Handle to one entry, returned by [`FaultLog::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultId(pub usize);

impl FaultLog {
    pub fn new(run_start: Instant, slack: Duration) -> FaultLog {
        FaultLog {
            run_start,
            slack,
            entries: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open an entry now.
    pub fn begin(
        &self,
        action: &'static str,
        at: Duration,
        params: serde_json::Value,
        replicas: Vec<String>,
    ) -> FaultId {
        let mut entries = self.lock();
        entries.push(FaultEntry {
            action,
            at,
            params,
            started: Instant::now(),
            ended: None,
            replicas,
            started_replicas: Vec::new(),
            stops: Vec::new(),
            notes: Vec::new(),
            repeat: None,
            incomplete: false,
            interrupted: 0,
            dropped: 0,
            wasted_tokens: 0,
            wasted_input_tokens: 0,
            resume: new_histogram(),
            takeover: new_histogram(),
            by_replica: BTreeMap::new(),
        });
        FaultId(entries.len() - 1)
    }

    /// Change an open entry (add replicas, stops, notes).
    pub fn update(&self, id: FaultId, f: impl FnOnce(&mut FaultEntry)) {
        if let Some(e) = self.lock().get_mut(id.0) {
            f(e);
        }
    }

    pub fn note(&self, id: FaultId, note: impl Into<String>) {
        let note = note.into();
        tracing::info!(fault = id.0, "{note}");
        self.update(id, |e| e.notes.push(note));
    }

    /// Close an entry now.
    pub fn end(&self, id: FaultId) {
        self.update(id, |e| {
            e.ended.get_or_insert_with(Instant::now);
        });
    }

    /// The fault an event at `t` on `replica` belongs to (see the module rule).
    pub fn attribute(&self, t: Instant, replica: Option<&str>) -> Option<FaultId> {
        let entries = self.lock();
        attribute_in(&entries, self.slack, t, replica)
    }

    /// Attribute one finished session's interruptions and drop; returns the fault its
    /// wasted tokens belong to.
    pub fn note_session(&self, outcome: &SessionOutcome, ended: Instant) -> Option<FaultId> {
        let mut entries = self.lock();
        let mut seen: Vec<usize> = Vec::new();
        let mut on_replica: Vec<(usize, &str)> = Vec::new();
        let mut last = None;
        for i in &outcome.interruptions {
            if let Some(id) = attribute_in(&entries, self.slack, i.at, i.replica.as_deref()) {
                if !seen.contains(&id.0) {
                    seen.push(id.0);
                }
                if let Some(r) = i.replica.as_deref()
                    && !on_replica.contains(&(id.0, r))
                {
                    on_replica.push((id.0, r));
                }
                last = Some((id, i.replica.as_deref()));
            }
        }
        for &i in &seen {
            entries[i].interrupted += 1;
        }
        for &(i, r) in &on_replica {
            entries[i].by_replica.entry(r.to_string()).or_default().0 += 1;
        }
        if matches!(outcome.class, SessionClass::Dropped(_)) {
            let culprit = last
                .or_else(|| attribute_in(&entries, self.slack, ended, None).map(|id| (id, None)));
            if let Some((id, replica)) = culprit {
                entries[id.0].dropped += 1;
                if let Some(r) = replica
                    && let Some(tally) = entries[id.0].by_replica.get_mut(r)
                {
                    tally.1 += 1;
                }
            }
        }
        seen.first().map(|&i| FaultId(i))
    }

    /// A resume that took `latency` and ended now.
    pub fn note_resume(&self, latency: Duration) {
        let t = Instant::now()
            .checked_sub(latency)
            .unwrap_or(self.run_start);
        let mut entries = self.lock();
        if let Some(id) = attribute_in(&entries, self.slack, t, None) {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            let _ = entries[id.0].resume.record(us.max(1));
        }
    }

    /// A takeover, now, after `gap` of silence, of a session `from` owned. Attributed by
    /// when it happened (the silence may have begun before the fault: a quiet session).
    pub fn note_takeover(&self, gap: Duration, from: Option<&str>) {
        let mut entries = self.lock();
        if let Some(id) = attribute_in(&entries, self.slack, Instant::now(), from) {
            let us = u64::try_from(gap.as_micros()).unwrap_or(u64::MAX);
            let _ = entries[id.0].takeover.record(us.max(1));
        }
    }

    /// Wasted output and input tokens of one session, attributed to `id`.
    pub fn add_waste(&self, id: FaultId, output: u64, input: u64) {
        self.update(id, |e| {
            e.wasted_tokens += output;
            e.wasted_input_tokens += input;
        });
    }

    /// The report's fault records, in the order the faults started.
    /// `prices` = (input, output) USD per million tokens.
    pub fn records(&self, (input_price, output_price): (f64, f64)) -> Vec<r::FaultRecord> {
        let secs = |t: Instant| t.saturating_duration_since(self.run_start).as_secs_f64();
        self.lock()
            .iter()
            .map(|e| r::FaultRecord {
                action: e.action.to_string(),
                at_s: e.at.as_secs_f64(),
                started_s: secs(e.started),
                ended_s: e.ended.map(secs),
                params: e.params.clone(),
                interrupted: e.interrupted,
                dropped: e.dropped,
                wasted_tokens: e.wasted_tokens,
                wasted_cost_usd: (e.wasted_tokens as f64 * output_price
                    + e.wasted_input_tokens as f64 * input_price)
                    / 1e6,
                wasted_input_tokens: e.wasted_input_tokens,
                notes: e.notes.clone(),
                replicas: e.replicas.clone(),
                started_replicas: e.started_replicas.clone(),
                stops: e.stops.iter().map(|s| client_account(s, e)).collect(),
                resume_ms: (!e.resume.is_empty()).then(|| latency_ms(&e.resume)),
                takeover_ms: (!e.takeover.is_empty()).then(|| latency_ms(&e.takeover)),
                repeat: e.repeat.clone(),
            })
            .collect()
    }

    /// One record per repeated `[[faults]]` entry, summed over the repetitions that ran,
    /// with their resume and takeover histograms merged. Prices as for [`FaultLog::records`].
    pub fn series(&self, (input_price, output_price): (f64, f64)) -> Vec<r::FaultSeries> {
        let secs = |t: Instant| t.saturating_duration_since(self.run_start).as_secs_f64();
        let entries = self.lock();
        let mut by_entry: BTreeMap<u32, (r::FaultSeries, Histogram<u64>, Histogram<u64>)> =
            BTreeMap::new();
        for e in entries.iter() {
            let Some(repeat) = &e.repeat else { continue };
            let (s, resume, takeover) = by_entry.entry(repeat.entry).or_insert_with(|| {
                let series = r::FaultSeries {
                    entry: repeat.entry,
                    action: e.action.to_string(),
                    times: repeat.times,
                    every_s: repeat.every_s,
                    first_at_s: secs(e.started),
                    ..r::FaultSeries::default()
                };
                (series, new_histogram(), new_histogram())
            });
            s.ran += 1;
            s.incomplete += u32::from(e.incomplete);
            s.first_at_s = s.first_at_s.min(secs(e.started));
            s.last_at_s = s.last_at_s.max(secs(e.started));
            s.interrupted += e.interrupted;
            s.dropped += e.dropped;
            s.wasted_tokens += e.wasted_tokens;
            s.wasted_input_tokens += e.wasted_input_tokens;
            s.stopped_replicas += e.stops.len() as u64;
            s.started_replicas += e.started_replicas.len() as u64;
            if !e.incomplete
                && let Some(ended) = e.ended.map(secs)
            {
                s.last_ended_s = Some(s.last_ended_s.map_or(ended, |l: f64| l.max(ended)));
            }
            for stop in &e.stops {
                s.in_flight_at_signal += stop.in_flight_at_signal.unwrap_or(0);
                s.severed += stop.severed.unwrap_or(0);
                s.finished_during_drain += stop.finished_during_drain.unwrap_or(0);
                s.handed_off += stop.handed_off.unwrap_or(0);
                s.sigkilled += u64::from(stop.sigkill);
                if !s.how.contains(&stop.how) {
                    s.how.push(stop.how.clone());
                }
            }
            // Same bounds on both sides, so adding cannot fail; a failure would only lose
            // samples from the merged summary, never from the per-fault records.
            let _ = resume.add(&e.resume);
            let _ = takeover.add(&e.takeover);
        }
        by_entry
            .into_values()
            .map(|(mut s, resume, takeover)| {
                s.wasted_cost_usd = (s.wasted_tokens as f64 * output_price
                    + s.wasted_input_tokens as f64 * input_price)
                    / 1e6;
                s.resume_ms = (!resume.is_empty()).then(|| latency_ms(&resume));
                s.takeover_ms = (!takeover.is_empty()).then(|| latency_ms(&takeover));
                s
            })
            .collect()
    }
}

/// A stop the target could not account for from the replica itself (ECS: the harness cannot
/// read a task's drain summary) gets the account its clients saw: streams cut on it by this
/// fault (`severed`) and, of those, sessions that resumed elsewhere (`handed_off`).
fn client_account(stop: &r::ReplicaStop, e: &FaultEntry) -> r::ReplicaStop {
    let mut stop = stop.clone();
    if stop.how.starts_with("ecs:") {
        let (cut, dropped) = e.by_replica.get(&stop.replica).copied().unwrap_or_default();
        stop.severed = Some(cut);
        stop.handed_off = Some(cut.saturating_sub(dropped));
    }
    stop
}

fn attribute_in(
    entries: &[FaultEntry],
    slack: Duration,
    t: Instant,
    replica: Option<&str>,
) -> Option<FaultId> {
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            let end = e.ended.unwrap_or_else(Instant::now) + slack;
            e.started <= t && t <= end
        })
        .filter(|(_, e)| match replica {
            Some(r) => e.replicas.is_empty() || e.replicas.iter().any(|x| x == r),
            None => true,
        })
        .max_by_key(|(_, e)| e.started)
        .map(|(i, _)| FaultId(i))
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 1 hour at 3 significant digits; the bounds are constants, so this cannot fail
    // in practice — fall back to an auto-resizing histogram if it ever does.
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| unreachable_histogram())
}

#[allow(clippy::expect_used)]
fn unreachable_histogram() -> Histogram<u64> {
    Histogram::new(2).expect("a 2-digit histogram is always valid")
}

fn latency_ms(h: &Histogram<u64>) -> r::LatencySummary {
    let q = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
    r::LatencySummary {
        count: h.len(),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: h.max() as f64 / 1e3,
        mean: h.mean() / 1e3,
        spectrum: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{DropReason, InterruptReason, Interruption};

    fn outcome(class: SessionClass, interruptions: Vec<Interruption>) -> SessionOutcome {
        SessionOutcome {
            session_id: Some("s_1".into()),
            class,
            interruption_count: u32::try_from(interruptions.len()).unwrap_or(0),
            interruptions,
            events_received: 0,
            lost: 0,
            duplicated: 0,
            malformed: 0,
            content_mismatch: false,
            tokens_received: 0,
            output_tokens: None,
            input_tokens: None,
            cost_micro_usd: None,
            replicas: vec![],
            takeovers: 0,
            retry_hint: None,
            timings: Default::default(),
        }
    }

    fn cut(replica: &str, at: Instant) -> Interruption {
        Interruption {
            reason: InterruptReason::Eof,
            at_seq: 3,
            replica: Some(replica.into()),
            at,
        }
    }

    #[test]
    fn interruptions_go_to_the_fault_that_acted_on_their_replica() {
        let log = FaultLog::new(Instant::now(), Duration::from_secs(1));
        let kill = log.begin(
            "kill",
            Duration::ZERO,
            serde_json::json!({}),
            vec!["r1".into()],
        );
        let brownout = log.begin(
            "llm_brownout",
            Duration::ZERO,
            serde_json::json!({}),
            vec![],
        );
        let now = Instant::now();
        // On r1: the kill (it names r1) — but the brownout started later and matches any
        // replica, so the rule picks the latest started: the brownout.
        assert_eq!(log.attribute(now, Some("r1")), Some(brownout));
        log.end(brownout);
        log.update(brownout, |e| e.ended = Some(now - Duration::from_secs(5)));
        assert_eq!(log.attribute(now, Some("r1")), Some(kill));
        // r2 was not killed, and the brownout window is over.
        assert_eq!(log.attribute(now, Some("r2")), None);
    }

    #[test]
    fn a_session_counts_once_per_fault_and_its_drop_goes_to_the_last_one() {
        let log = FaultLog::new(Instant::now(), Duration::from_secs(1));
        let deploy = log.begin(
            "deploy",
            Duration::ZERO,
            serde_json::json!({}),
            vec!["r1".into(), "r2".into()],
        );
        let t = Instant::now();
        let o = outcome(
            SessionClass::Dropped(DropReason::RetriesExhausted),
            vec![cut("r1", t), cut("r2", t), cut("r9", t)],
        );
        assert_eq!(log.note_session(&o, t), Some(deploy));
        let records = log.records((3.0, 15.0));
        assert_eq!((records[0].interrupted, records[0].dropped), (1, 1));
    }

    #[test]
    fn events_after_the_window_and_slack_are_not_attributed() {
        let log = FaultLog::new(Instant::now(), Duration::from_millis(10));
        let id = log.begin(
            "kill",
            Duration::ZERO,
            serde_json::json!({}),
            vec!["r1".into()],
        );
        log.end(id);
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(log.attribute(later, Some("r1")), None);
        let o = outcome(
            SessionClass::Dropped(DropReason::SessionUnknown),
            vec![cut("r1", later)],
        );
        assert_eq!(log.note_session(&o, later), None);
        assert_eq!(log.records((3.0, 15.0))[0].dropped, 0);
    }
}
