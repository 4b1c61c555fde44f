//! Live progress of a run on stderr: a bar with elapsed/total and counters on a terminal,
//! a plain line every few seconds elsewhere (CI logs), so a long run is never silent.

use std::time::Duration;

use dropzero_reports::TimelinePoint;
use indicatif::{ProgressBar, ProgressStyle};

use crate::measure::Counters;

pub struct Progress {
    bar: ProgressBar,
    plain_every: u64,
    last_plain: u64,
}

impl Progress {
    pub fn new(name: &str, total: Duration) -> Self {
        let bar = ProgressBar::new(total.as_secs().max(1));
        let style = ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(name.to_string());
        Progress {
            bar,
            plain_every: 5,
            last_plain: 0,
        }
    }

    pub fn update(&mut self, elapsed: Duration, c: &Counters, point: &TimelinePoint) {
        let mut line = format!(
            "active {} | completed {} | resumed {} | interrupted {} | dropped {} | failed {} | {:.0} tok/s",
            point.active_sessions,
            Counters::get(&c.completed),
            Counters::get(&c.resumed),
            Counters::get(&c.interruptions),
            Counters::get(&c.dropped),
            Counters::get(&c.failed),
            point.tokens_per_s,
        );
        if let (Some(desired), Some(running)) = (point.desired_tasks, point.running_tasks) {
            line.push_str(&format!(" | tasks {running}/{desired}"));
        }
        crate::logs::flush();
        let secs = elapsed.as_secs();
        if self.bar.is_hidden() {
            if secs >= self.last_plain + self.plain_every {
                self.last_plain = secs;
                eprintln!("[{secs:>4}s/{}s] {line}", self.bar.length().unwrap_or(0));
            }
        } else {
            self.bar
                .set_position(secs.min(self.bar.length().unwrap_or(secs)));
            self.bar.set_message(line);
        }
    }

    pub fn finish(&mut self, c: &Counters) {
        self.bar.finish_and_clear();
        eprintln!(
            "done: started {} | completed {} | resumed {} | dropped {} | failed {} | not started {}",
            Counters::get(&c.started),
            Counters::get(&c.completed),
            Counters::get(&c.resumed),
            Counters::get(&c.dropped),
            Counters::get(&c.failed),
            Counters::get(&c.not_started),
        );
    }
}
