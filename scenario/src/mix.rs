//! Checks and resolves `[sessions]` (how long sessions are, how they behave, how clients
//! resume) and `[llm]` (the mock LLM's latency, capacity, prices and initial faults).

use std::time::Duration;

use super::checks::*;
use super::defaults as d;
use super::file::{RawLlm, RawLlmFaults, RawSessions};
use super::plan::*;

pub fn sessions(raw: RawSessions, scale: Scale, target: &TargetPlan) -> Checked<SessionMix> {
    let size = match (raw.length, raw.tokens) {
        (Some(_), Some(_)) => {
            return invalid(
                "sessions.tokens",
                "set either sessions.length or sessions.tokens, not both",
            );
        }
        (None, Some(t)) => {
            if t.median == 0 {
                return invalid("sessions.tokens.median", "must be at least 1");
            }
            if t.p99 < t.median {
                return invalid(
                    "sessions.tokens.p99",
                    format!(
                        "must be at least the median ({}), found {}",
                        t.median, t.p99
                    ),
                );
            }
            SessionSize::Tokens(Percentiles {
                median: t.median,
                p99: t.p99,
            })
        }
        (length, None) => SessionSize::Length(latency(
            "sessions.length",
            length,
            (d::SESSION_LENGTH_MEDIAN, d::SESSION_LENGTH_P99),
            scale,
        )?),
    };
    let tokens_per_second = positive_number(
        "sessions.tokens_per_second",
        raw.tokens_per_second.unwrap_or(d::TOKENS_PER_SECOND),
    )?;
    let runaway_fraction = fraction(
        "sessions.runaway_fraction",
        raw.runaway_fraction.unwrap_or(d::RUNAWAY_FRACTION),
    )?;
    let mut classes = Vec::new();
    for (i, c) in raw.classes.into_iter().enumerate() {
        if c.name.trim().is_empty() {
            return invalid(format!("sessions.classes[{i}].name"), "must not be empty");
        }
        if classes.iter().any(|q: &QueryClass| q.name == c.name) {
            return invalid(
                format!("sessions.classes[{i}].name"),
                format!(
                    "{:?} is used by an earlier class; names must be unique",
                    c.name
                ),
            );
        }
        let weight = positive_number(
            &format!("sessions.classes[{i}].weight"),
            c.weight.unwrap_or(d::QUERY_CLASS_WEIGHT),
        )?;
        classes.push(QueryClass {
            query: c.query.unwrap_or_else(|| c.name.clone()),
            name: c.name,
            weight,
        });
    }
    if classes.is_empty() {
        classes.push(QueryClass {
            name: d::QUERY_CLASS.into(),
            weight: d::QUERY_CLASS_WEIGHT,
            query: d::QUERY_CLASS.into(),
        });
    }
    let budget = match raw.budget {
        None => None,
        Some(b)
            if b.max_output_tokens.is_none()
                && b.max_cost_usd.is_none()
                && b.max_duration.is_none() =>
        {
            return invalid(
                "sessions.budget",
                "set at least one of max_output_tokens, max_cost_usd, max_duration",
            );
        }
        Some(b) => {
            if b.max_output_tokens == Some(0) {
                return invalid("sessions.budget.max_output_tokens", "must be at least 1");
            }
            let max_cost_usd = b
                .max_cost_usd
                .map(|c| positive_number("sessions.budget.max_cost_usd", c))
                .transpose()?;
            if let Some(t) = b.max_duration {
                positive("sessions.budget.max_duration", t.0)?;
            }
            Some(Budget {
                max_output_tokens: b.max_output_tokens,
                max_cost_usd,
                max_duration: b.max_duration.map(|t| scale.time(t.0)),
            })
        }
    };
    let backoff_initial = raw
        .resume
        .backoff_initial
        .map_or(d::RESUME_BACKOFF_INITIAL, |t| t.0);
    positive("sessions.resume.backoff_initial", backoff_initial)?;
    let backoff_max = raw
        .resume
        .backoff_max
        .map_or(d::RESUME_BACKOFF_MAX, |t| t.0);
    if backoff_max < backoff_initial {
        return invalid(
            "sessions.resume.backoff_max",
            format!(
                "must be at least backoff_initial ({}), found {}",
                show(backoff_initial),
                show(backoff_max)
            ),
        );
    }
    let idle_timeout = raw.idle_timeout.map_or(d::SESSION_IDLE_TIMEOUT, |t| t.0);
    positive("sessions.idle_timeout", idle_timeout)?;
    if let TargetPlan::Local(local) = target
        && scale.time(idle_timeout) <= local.keepalive
    {
        let keepalive = scale.to_real(local.keepalive);
        return invalid(
            "sessions.idle_timeout",
            format!(
                "must be longer than target.keepalive ({}), or every quiet stream counts as interrupted, found {}",
                show(keepalive),
                show(idle_timeout)
            ),
        );
    }
    Ok(SessionMix {
        size,
        // LLM speed is never scaled: a compressed session emits proportionally fewer tokens.
        tokens_per_second,
        runaway_fraction,
        classes,
        budget,
        resume: ResumePolicy {
            max_retries: raw.resume.max_retries.unwrap_or(d::RESUME_MAX_RETRIES),
            backoff_initial: scale.time(backoff_initial),
            backoff_max: scale.time(backoff_max),
            retry_hint: raw.resume.retry_hint.unwrap_or_default(),
        },
        idle_timeout: scale.time(idle_timeout),
    })
}

/// LLM latencies stay in real time whatever `time_scale` says (see `plan.rs`), so they are
/// resolved with a unit scale; only fault windows inside `[llm.faults]` are scaled.
pub fn llm(raw: RawLlm, scale: Scale, tokens_per_second: f64) -> Checked<LlmProfile> {
    let real = Scale(1.0);
    let ttft = latency("llm.ttft", raw.ttft, (d::TTFT_MEDIAN, d::TTFT_P99), real)?;
    let itl = match raw.itl {
        Some(itl) => latency("llm.itl", Some(itl), (Duration::ZERO, Duration::ZERO), real)?,
        None => {
            let Ok(median) = Duration::try_from_secs_f64(1.0 / tokens_per_second) else {
                return invalid(
                    "sessions.tokens_per_second",
                    "is too small to derive llm.itl from; set llm.itl",
                );
            };
            Percentiles {
                median,
                p99: median.mul_f64(d::ITL_P99_OVER_MEDIAN),
            }
        }
    };
    Ok(LlmProfile {
        ttft,
        itl,
        max_concurrent: at_least(
            "llm.max_concurrent",
            raw.max_concurrent.unwrap_or(d::MAX_CONCURRENT),
            1,
        )?,
        load_factor: non_negative("llm.load_factor", raw.load_factor.unwrap_or(d::LOAD_FACTOR))?,
        price: Price {
            input_per_mtok: non_negative(
                "llm.price.input_per_mtok",
                raw.price.input_per_mtok.unwrap_or(d::PRICE_INPUT_PER_MTOK),
            )?,
            output_per_mtok: non_negative(
                "llm.price.output_per_mtok",
                raw.price
                    .output_per_mtok
                    .unwrap_or(d::PRICE_OUTPUT_PER_MTOK),
            )?,
        },
        faults: llm_faults("llm.faults", raw.faults, scale)?,
    })
}

/// Shared by `[llm.faults]` and `llm_brownout` faults (`path` is the table holding them).
pub fn llm_faults(path: &str, raw: RawLlmFaults, scale: Scale) -> Checked<LlmFaults> {
    if raw.cut_after_tokens == Some(0) {
        return invalid(format!("{path}.cut_after_tokens"), "must be at least 1");
    }
    Ok(LlmFaults {
        rate_limit: fraction(&format!("{path}.rate_limit"), raw.rate_limit.unwrap_or(0.0))?,
        overloaded: fraction(&format!("{path}.overloaded"), raw.overloaded.unwrap_or(0.0))?,
        server_error: fraction(
            &format!("{path}.server_error"),
            raw.server_error.unwrap_or(0.0),
        )?,
        extra_latency: scale.dur(raw.extra_latency, Duration::ZERO),
        cut_after_tokens: raw.cut_after_tokens,
        stall: raw.stall.map(|s| scale.time(s.0)),
    })
}
