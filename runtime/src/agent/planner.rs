//! The planner call: asks the LLM (`x-dropzero-role: planner`) for a JSON plan and checks it
//! is a DAG whose dependencies point only to earlier steps. Not for running steps.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{SessionCtx, worker};

/// One step of a plan, as the planner returns it and the `plan` event shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    pub id: String,
    pub task: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub tool: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<PlanStep>,
}

pub async fn plan(ctx: &SessionCtx) -> Result<Plan, String> {
    let messages = vec![json!({"role": "user", "content": ctx.record.query})];
    let turn = worker::call_with_retries(
        ctx,
        "planner",
        "planner",
        false,
        &messages,
        None,
        String::new(),
    )
    .await
    .map_err(|e| format!("planner: {e}"))?;
    let plan = parse(&turn.text)?;
    tracing::info!(steps = plan.steps.len(), "planned");
    Ok(plan)
}

/// Parse and validate the planner's text.
pub fn parse(text: &str) -> Result<Plan, String> {
    let plan: Plan =
        serde_json::from_str(text.trim()).map_err(|e| format!("planner returned no plan: {e}"))?;
    if plan.steps.is_empty() {
        return Err("planner returned an empty plan".into());
    }
    for (i, step) in plan.steps.iter().enumerate() {
        if plan.steps[..i].iter().any(|s| s.id == step.id) {
            return Err(format!("plan repeats step id {}", step.id));
        }
        for dep in &step.depends_on {
            if !plan.steps[..i].iter().any(|s| &s.id == dep) {
                return Err(format!(
                    "step {} depends on {dep}, not an earlier step",
                    step.id
                ));
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn validates_dag() {
        for (text, ok) in [
            (
                r#"{"steps":[{"id":"s1","task":"a","depends_on":[],"tool":null}]}"#,
                true,
            ),
            (
                r#"{"steps":[{"id":"s1","task":"a"},{"id":"s2","task":"b","depends_on":["s1"],"tool":"search"}]}"#,
                true,
            ),
            (
                r#"{"steps":[{"id":"s1","task":"a","depends_on":["s2"]},{"id":"s2","task":"b"}]}"#,
                false,
            ),
            (
                r#"{"steps":[{"id":"s1","task":"a"},{"id":"s1","task":"b"}]}"#,
                false,
            ),
            (r#"{"steps":[]}"#, false),
            ("not json", false),
        ] {
            assert_eq!(parse(text).is_ok(), ok, "{text}");
        }
    }
}
