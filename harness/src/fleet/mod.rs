//! Targets: what a scenario runs against. Every target sits behind [`Target`], so the load,
//! measurement and fault-timeline code never knows whether it is driving a local fleet of
//! child processes, a URL, or an ECS service.
//!
//! Architecture invariant: nothing in this module reads session events; it starts, stops,
//! routes and observes replicas.

pub mod ecs;
pub mod journal_server;
pub mod local;
pub mod memory;
pub mod process;
pub mod router;
pub mod url;

use std::time::Duration;

/// One replica as the target sees it right now.
#[derive(Debug, Clone)]
pub struct ReplicaInfo {
    pub id: String,
    pub version: String,
    /// Base URL of the replica itself (not the router), for `/metrics`.
    pub url: String,
    pub state: ReplicaState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    Starting,
    Ready,
    Unhealthy,
    Draining,
    Stopped,
}

/// Errors a target reports; each names the replica or operation at fault.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error("{0}")]
    Io(String),
    #[error("replica {replica}: {message}")]
    Replica { replica: String, message: String },
    #[error("{operation} is not supported by the {kind} target")]
    Unsupported {
        kind: &'static str,
        operation: &'static str,
    },
    #[error("fleet did not become ready within {0:?}")]
    NotReady(Duration),
}

/// What a scenario can do to a deployment. Each method is an operation an operator (or ECS)
/// performs; the fault timeline calls them, the sampler calls [`Target::replicas`].
pub trait Target: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Where clients create sessions (the router for a local fleet).
    fn base_url(&self) -> String;
    /// The mock LLM's base URL when the target uses one (for `/mock/ledger`, `/mock/faults`).
    fn llm_url(&self) -> Option<String>;
    fn replicas(&self) -> Vec<ReplicaInfo>;
    /// Stop everything this target started. Bounded; never leaves a child behind.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}
