//! The journal's integration tests, one binary:
//! - `conformance`: one set of checks of the `Journal` contract, run against every backend
//!   (memory, SQLite, Redis), so the backends cannot drift apart.
//! - `redis`: what only the Redis backend has: the exact-next append fence, a Redis killed
//!   mid-run (a clear error within a bound, then recovery), script reload, key prefixes.
//! - `redis_server`: a real `redis-server` child process per test, killed on drop.

#![allow(clippy::unwrap_used)] // tests fail loudly on setup errors

mod conformance;
mod redis;
mod redis_server;
