//! # dropzero
//!
//! The load-testing and chaos harness. `dropzero run scenario.toml` starts (or attaches to) a
//! target, drives long streaming sessions through it, verifies every event, injects faults
//! on a timeline and writes a report whose gates decide the exit code.
//!
//! # Layout
//! - [`cli`]: the command line and its dispatch (also `runtime` and `mock-llm`, which serve
//!   the reference runtime and the mock LLM from the same executable).
//! - [`scenario`]: scenario files — parse, validate, resolve into a time-scaled plan.

pub mod cli;
pub mod scenario;
