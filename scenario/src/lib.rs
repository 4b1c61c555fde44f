//! Scenario files: parse → validate → a resolved [`ScenarioPlan`] (the harness re-exports
//! this crate as `dropzero::scenario`).
//!
//! A scenario (DESIGN §8) is a TOML file describing a target, a load shape, a session mix,
//! the mock LLM's behaviour, faults on a timeline and pass/fail gates, all in real-world
//! time compressed by `time_scale`. [`load`] reads one; [`parse`] does the same from text
//! with command-line [`Overrides`]. Every error names the file, line and column (or the
//! flag), the field and what is allowed: see [`ScenarioError`].
//!
//! # Layout
//! - `file.rs`: serde structs mirroring the file (`deny_unknown_fields`, typed durations).
//! - `overrides.rs`: `--seed`, `--time-scale`, `--set key=value`, applied before typing.
//! - `resolve.rs` (with `target.rs`, `mix.rs`, `timeline.rs`, `checks.rs`): checks,
//!   defaults and time scaling into the plan.
//! - `repeat.rs`: a `[[faults]]` entry with `every` and `times` → its repetitions.
//! - `plan.rs`, `faults.rs`, `gates.rs`: the resolved plan — the only types callers use.
//! - `defaults.rs`: every default, in one place.
//! - `locate.rs`, `error.rs`: from spans and field paths to `file:line:column: field: …`.
//!
//! This module reads and checks; it runs nothing and touches no network.

mod checks;
mod defaults;
mod error;
mod faults;
mod file;
mod gates;
mod locate;
mod mix;
mod overrides;
mod plan;
mod repeat;
mod resolve;
mod target;
mod timeline;

#[cfg(test)]
mod repeat_tests;
#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

pub use error::{Location, ScenarioError};
pub use faults::{
    BrownoutFault, CommandFault, DeployFault, FaultAction, FaultPlan, JournalKillFault,
    JournalOutageFault, KillFault, KillSignal, KillWho, NetworkFault, OomFault, OutageFault,
    Repeat, Signal,
};
pub use gates::{AutoscalingPlan, Gate, ScalingMetric};
pub use overrides::Overrides;
pub use plan::{
    Algorithm, ApiKey, Arrival, Budget, ClosedLoad, DeploymentConfig, EcsTarget, EmulatorPlan,
    Expectation, HaltInputs, HaltPlan, Journal, JournalPersistence, LlmFaults, LlmProfile,
    LoadPlan, LocalTarget, OpenLoad, Percentiles, Price, QueryClass, RateStage, ResumePolicy,
    RetryHint, RouterConfig, RuntimeMode, ScenarioPlan, SessionMix, SessionSize, TargetPlan,
    UrlTarget, UserStage, Verdict,
};

/// Reads, checks and resolves the scenario at `path`, without overrides.
pub fn load(path: &Path) -> Result<ScenarioPlan, ScenarioError> {
    load_with(path, &Overrides::default())
}

/// [`load`] with command-line overrides.
pub fn load_with(path: &Path, overrides: &Overrides) -> Result<ScenarioPlan, ScenarioError> {
    let src = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&src, path, overrides)
}

/// Checks and resolves scenario text; `file` is only used in error messages and the plan.
pub fn parse(src: &str, file: &Path, overrides: &Overrides) -> Result<ScenarioPlan, ScenarioError> {
    let mut source = locate::Source::new(file, src);
    let assignments = overrides.assignments(&source)?;
    let mut doc = DeTable::parse(src).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        ScenarioError::Syntax {
            at: source.location(&span),
            message: err.message().trim().to_owned(),
        }
    })?;
    overrides::apply(&mut doc, &assignments, &mut source)?;
    let raw = file::RawScenario::deserialize(toml::de::Deserializer::from(doc.clone()))
        .map_err(|err| source.de_error(&doc, err))?;
    resolve::resolve(raw, file).map_err(|bad| source.invalid(&doc, &bad.path, bad.message))
}
