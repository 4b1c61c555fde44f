//! # dropzero
//!
//! The load-testing and chaos harness. `dropzero run scenario.toml` starts (or attaches to) a
//! target, drives long streaming sessions through it, verifies every event, injects faults
//! on a timeline and writes a report whose gates decide the exit code.
//!
//! # Layout
//! - [`cli`]: the command line and its dispatch (also `runtime` and `mock-llm`, which serve
//!   the reference runtime and the mock LLM from the same executable). The only place that
//!   picks exit codes.
//! - [`run`]: `dropzero run` as a sequence of steps; [`target_setup`] turns a scenario into
//!   a running target and load inputs; [`build_report`] turns measurements into a report.
//! - [`capacity`]: `dropzero capacity` — one replica under rising concurrency (each step
//!   is [`run::drive`] on a rewritten plan), the knee and the autoscaling target value.
//! - [`calibrate`]: `dropzero calibrate` — the session engine against a built-in zero-cost
//!   target at rising stream counts: what this box can drive, CPU per event, memory per
//!   stream, ITL error.
//! - [`scenario`]: scenario files → a checked, time-scaled [`scenario::ScenarioPlan`]; the
//!   `dropzero-scenario` crate (`scenario/`), re-exported under this name.
//! - [`fleet`]: the [`fleet::Target`] trait; the local fleet (child processes in
//!   [`fleet::process`], the ALB-like [`fleet::router`]) and the `url` target.
//! - [`load`]: closed users and open arrivals; [`load::mix`] says what each session asks.
//! - [`session`]: one session end to end — create, stream, verify, resume, classify.
//! - [`measure`]: the collector (sharded HdrHistograms, counters) and the 1 s timeline.
//! - [`ecs_emulator`]: the ECS control-plane API (AWS JSON 1.1) over a local fleet, for
//!   rehearsing and testing the ECS target (`dropzero ecs-emulator`).
//! - [`progress`]: live progress on stderr.
//! - [`logs`]: the harness's own log, JSON lines in the run directory (`-v` shows it live).
//! - [`compare`]: `dropzero compare BASE CANDIDATE` — reads two reports, refuses
//!   incomparable runs, writes `compare.{md,json,html}`.
//! - [`artefacts`]: the files of a run directory, for the links of `index.html`.

pub mod artefacts;
pub mod autoscale;
pub mod build_report;
pub mod calibrate;
pub mod capacity;
pub mod cli;
pub mod compare;
pub mod ecs_emulator;
pub mod faults;
pub mod fdlimit;
pub mod fleet;
pub mod load;
pub mod logs;
pub mod measure;
pub mod progress;
pub mod run;
pub use dropzero_scenario as scenario;
pub mod session;
pub mod target_setup;
