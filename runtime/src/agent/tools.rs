//! Simulated tools: each call takes `--tool-latency`, and its output is a deterministic
//! function of the tool name and input (so resumed sessions see the same results). A
//! per-tool circuit breaker stops calling a tool that keeps failing. The tool named
//! `broken` always fails (to exercise the breaker); every other name succeeds.
//!
//! Not for real side effects.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Consecutive failures that open a breaker, and how long it stays open.
const FAILURE_THRESHOLD: u32 = 3;
const OPEN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToolError {
    #[error("tool {0}: circuit open")]
    CircuitOpen(String),
    #[error("tool {0}: failed")]
    Failed(String),
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// The tool box shared by every session of a replica (breakers are per tool, not per session).
#[derive(Debug)]
pub struct Tools {
    latency: Duration,
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl Tools {
    pub fn new(latency: Duration) -> Tools {
        Tools {
            latency,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    /// The `tools` array offered to the LLM for a step that names `name`.
    pub fn definition(name: &str) -> Value {
        json!([{
            "name": name,
            "description": format!("simulated tool {name}"),
            "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
        }])
    }

    pub async fn call(&self, name: &str, input: &Value) -> Result<String, ToolError> {
        if self.is_open(name) {
            return Err(ToolError::CircuitOpen(name.to_string()));
        }
        tokio::time::sleep(self.latency).await;
        let ok = name != "broken";
        self.record(name, ok);
        if !ok {
            return Err(ToolError::Failed(name.to_string()));
        }
        let digest = Sha256::digest(format!("{name}:{input}").as_bytes());
        Ok(format!("{name} result {}", hex::encode(&digest[..8])))
    }

    fn is_open(&self, name: &str) -> bool {
        let breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        breakers
            .get(name)
            .and_then(|b| b.open_until)
            .is_some_and(|until| Instant::now() < until)
    }

    fn record(&self, name: &str, ok: bool) {
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let breaker = breakers.entry(name.to_string()).or_default();
        if ok {
            *breaker = Breaker::default();
        } else {
            breaker.failures += 1;
            if breaker.failures >= FAILURE_THRESHOLD {
                breaker.open_until = Some(Instant::now() + OPEN_FOR);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deterministic_output_and_breaker_opens() {
        let tools = Tools::new(Duration::ZERO);
        let input = json!({"query": "x"});
        let a = tools.call("search", &input).await;
        assert_eq!(a, tools.call("search", &input).await);
        assert!(a.is_ok());
        for _ in 0..FAILURE_THRESHOLD {
            assert_eq!(
                tools.call("broken", &input).await,
                Err(ToolError::Failed("broken".into()))
            );
        }
        assert_eq!(
            tools.call("broken", &input).await,
            Err(ToolError::CircuitOpen("broken".into()))
        );
        assert!(
            tools.call("search", &input).await.is_ok(),
            "breakers are per tool"
        );
    }
}
