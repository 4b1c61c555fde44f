//! End-to-end tests of the built `dropzero` binary. One test binary; each module is one
//! area, each test bounded to seconds of wall time.

mod autoscale; // the emulated ECS autoscaler: scale out on a step, scale in without cutting sessions
mod capacity; // `dropzero capacity`: the knee the mock LLM's slowdown model predicts
mod chaos; // the chaos scenarios: naive loses sessions (exit 1), resilient loses none
mod children; // no child process outlives a killed harness
mod drain; // a real runtime process under SIGTERM finishes in-flight sessions, refuses new ones
mod run; // `dropzero run`: exit codes 0 / 1 / 2, schema-valid report
mod support; // starting the binary's servers and reading their listening line
mod takeover; // SIGKILL → lease takeover, SIGTERM → hand-off, /admin/oom → a real abort
