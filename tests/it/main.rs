//! End-to-end tests of the built `dropzero` binary. One test binary; each module is one
//! area, each test bounded to seconds of wall time.

mod autoscale; // the emulated ECS autoscaler: scale out on a step, scale in without cutting sessions
mod calibrate; // `dropzero calibrate`: a tiny sweep writes its report, every session verified
mod capacity; // `dropzero capacity`: the knee the mock LLM's slowdown model predicts
mod chaos; // the chaos scenarios: naive loses sessions (exit 1), resilient loses none
mod children; // no child process outlives a killed harness
mod drain; // a real runtime process under SIGTERM finishes in-flight sessions, refuses new ones
mod ecs; // the ECS target through the emulator: UpdateService, StopTask, FAILED deployments, halt, guard rail
mod ecs_autoscale; // the ECS target reads the service's scaling activities: reactions, scale-in
mod journal; // the Redis journal killed (AOF always: no loss; snapshot only: loss caught) or unreachable
mod run; // `dropzero run`: exit codes 0 / 1 / 2, schema-valid report
mod security; // no API key, LLM key or resume token in any log or report of a real run
mod shipped; // every file in scenarios/ runs as shipped and reaches its declared verdict
mod support; // starting the binary's servers and reading their listening line
mod takeover; // SIGKILL → lease takeover, SIGTERM → hand-off, /admin/oom → a real abort
mod twins; // each ECS scenario is its local twin with the target swapped: same verdicts
