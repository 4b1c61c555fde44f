//! Runs a plan's steps as a DAG: every step whose dependencies completed starts at once (so
//! independent steps run in parallel), a failed or cancelled step cancels its dependents,
//! and a stopping session starts nothing new. All steps run as futures inside the session's
//! task (no spawns), so they share its span and end with it.
//!
//! After a takeover the DAG starts from the journal: completed, failed and cancelled steps
//! keep their state, and steps that were running continue from their [`StepProgress`].
//!
//! Not for what a step does (see `worker`).

use std::collections::HashMap;

use futures::{StreamExt, stream::FuturesUnordered};
use serde_json::json;

use super::{
    SessionCtx,
    planner::Plan,
    resume::{StepProgress, StepState},
    worker::{StepOutcome, run_step},
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// Run every step; returns the first failure's reason, if any. `resumed` is the journaled
/// progress of each step a previous owner started (empty for a new session).
pub async fn run(
    ctx: &SessionCtx,
    plan: &Plan,
    mut resumed: HashMap<String, StepProgress>,
) -> Option<String> {
    let steps = &plan.steps;
    let mut state = vec![State::Pending; steps.len()];
    let mut failure = None;
    for (i, step) in steps.iter().enumerate() {
        state[i] = match resumed.get(&step.id).map(|p| &p.state) {
            None | Some(StepState::Running) => continue,
            Some(StepState::Completed) => State::Completed,
            Some(StepState::Cancelled) => State::Cancelled,
            Some(StepState::Failed(error)) => {
                failure.get_or_insert(format!("step {} failed: {error}", step.id));
                State::Failed
            }
        };
    }
    let mut running = FuturesUnordered::new();
    loop {
        // Start what can start, cancel what can never run; repeat until nothing changes.
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..steps.len() {
                if state[i] != State::Pending {
                    continue;
                }
                let dep_state = |id: &String| {
                    steps
                        .iter()
                        .position(|s| &s.id == id)
                        .map_or(State::Failed, |j| state[j])
                };
                let broken = steps[i]
                    .depends_on
                    .iter()
                    .find(|d| matches!(dep_state(d), State::Failed | State::Cancelled));
                if let Some(dep) = broken {
                    state[i] = State::Cancelled;
                    changed = true;
                    let error = format!("dependency {dep} did not complete");
                    ctx.emit(
                        "step",
                        json!({"step": steps[i].id, "state": "cancelled", "error": error}),
                    )
                    .await;
                } else if !ctx.stop.is_cancelled()
                    && steps[i]
                        .depends_on
                        .iter()
                        .all(|d| dep_state(d) == State::Completed)
                {
                    state[i] = State::Running;
                    changed = true;
                    let step = &steps[i];
                    let progress = resumed.remove(&step.id);
                    running.push(async move { (i, run_step(ctx, step, progress).await) });
                }
            }
        }
        let Some((i, outcome)) = running.next().await else {
            break;
        };
        let id = &steps[i].id;
        match outcome {
            StepOutcome::Completed => {
                state[i] = State::Completed;
                ctx.emit("step", json!({"step": id, "state": "completed"}))
                    .await;
            }
            StepOutcome::Failed(error) => {
                state[i] = State::Failed;
                tracing::warn!(step = %id, %error, "step failed");
                ctx.emit(
                    "step",
                    json!({"step": id, "state": "failed", "error": error}),
                )
                .await;
                failure.get_or_insert(format!("step {id} failed: {error}"));
            }
            StepOutcome::Stopped => {
                state[i] = State::Cancelled;
                if !ctx
                    .stop_reason()
                    .is_some_and(|r| r.leaves_session_running())
                {
                    ctx.emit("step", json!({"step": id, "state": "cancelled"}))
                        .await;
                }
            }
        }
    }
    // Steps never started because the session is stopping.
    if !ctx
        .stop_reason()
        .is_some_and(|r| r.leaves_session_running())
    {
        for (i, s) in state.iter().enumerate() {
            if *s == State::Pending {
                ctx.emit("step", json!({"step": steps[i].id, "state": "cancelled"}))
                    .await;
            }
        }
    }
    failure
}
