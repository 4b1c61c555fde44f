//! What a session is: its durable record ([`SessionRecord`]), its status and usage, the
//! events it emits ([`EventRecord`]), and the registry of sessions whose agent loop runs in
//! this process ([`LocalSessions`]). Not for HTTP (see `api`) or storage (see `journal`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Where a session stands. `Running` is the only non-terminal status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    BudgetExceeded,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Running => "running",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::BudgetExceeded => "budget_exceeded",
        }
    }

    pub fn parse(s: &str) -> Option<SessionStatus> {
        Some(match s {
            "running" => SessionStatus::Running,
            "completed" => SessionStatus::Completed,
            "failed" => SessionStatus::Failed,
            "cancelled" => SessionStatus::Cancelled,
            "budget_exceeded" => SessionStatus::BudgetExceeded,
            _ => return None,
        })
    }
}

/// Per-session limits from the request body; every field optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub max_output_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_duration_s: Option<f64>,
}

/// Cumulative token usage and cost, as reported in `usage` and `done` events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

/// A session as the journal stores it.
///
/// While it runs, `owner` is the replica running its agent loop and `lease_expires_at_ms`
/// (Unix epoch ms) how long that claim holds without a heartbeat; both are cleared when the
/// session finishes or is released (see `lease`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub session_id: String,
    pub resume_token: String,
    pub idempotency_key: Option<String>,
    pub query: String,
    pub budget: Budget,
    pub metadata: Option<serde_json::Value>,
    pub status: SessionStatus,
    pub owner: Option<String>,
    pub lease_expires_at_ms: Option<i64>,
    pub created_at: String,
    pub last_seq: u64,
    pub usage: Usage,
}

impl SessionRecord {
    /// A fresh session owned by `replica_id` (the caller sets the lease).
    pub fn new(
        replica_id: &str,
        query: String,
        budget: Budget,
        metadata: Option<serde_json::Value>,
        idempotency_key: Option<String>,
    ) -> SessionRecord {
        let id = uuid::Uuid::new_v4().simple().to_string();
        SessionRecord {
            session_id: format!("s_{id}"),
            resume_token: new_resume_token(),
            idempotency_key,
            query,
            budget,
            metadata,
            status: SessionStatus::Running,
            owner: Some(replica_id.to_string()),
            lease_expires_at_ms: None,
            created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            last_seq: 0,
            usage: Usage::default(),
        }
    }
}

/// Random bytes in a resume token: 256 bits, twice the 128 a bearer secret needs.
pub const RESUME_TOKEN_BYTES: usize = 32;

/// A new resume token: `rt_` and [`RESUME_TOKEN_BYTES`] from the thread-local CSPRNG
/// (`rand::rng()`: ChaCha12, seeded and periodically reseeded from the operating system),
/// hex-encoded. The session id is a UUID and not a secret; the token alone authorises.
pub fn new_resume_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; RESUME_TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("rt_{}", hex::encode(bytes))
}

impl SessionRecord {
    /// Whether another replica may claim the session at `now_ms`: it runs, and its owner
    /// released it or let the lease expire. `Journal::claim` applies the same rule atomically.
    pub fn lease_free(&self, now_ms: i64) -> bool {
        self.status == SessionStatus::Running
            && (self.owner.is_none() || self.lease_expires_at_ms.is_some_and(|l| l < now_ms))
    }
}

/// One journaled event: what an SSE client receives as `id`, `event` and `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub session_id: String,
    pub seq: u64,
    pub kind: String,
    /// One-line JSON.
    pub data: String,
}

impl EventRecord {
    pub fn is_terminal(&self) -> bool {
        self.kind == "done"
    }
}

/// A session whose agent loop runs in this process.
#[derive(Debug, Clone)]
pub struct LocalSession {
    /// Cancelled by `DELETE` (or, in naive mode, by the stream's client going away).
    pub cancel: CancellationToken,
    /// The session's event writer; streams subscribe to it to wait instead of polling.
    pub emitter: Arc<crate::emitter::Emitter>,
    /// Cancelled when the agent may start: at once in resilient mode, when the first stream
    /// opens in naive mode (the agent loop is tied to that stream).
    pub opened: CancellationToken,
    /// Naive mode: whether a stream already claimed the session.
    pub streamed: Arc<std::sync::atomic::AtomicBool>,
    /// Cancelled when this replica could not renew the session's lease in time.
    pub lease_lost: CancellationToken,
    /// When this replica created or claimed the session (its lease then ran a full TTL).
    pub leased_at: std::time::Instant,
}

/// Sessions whose agent loop runs here, by id. The count is the autoscaling signal and
/// drives scale-in protection, so it is also published on a `watch`.
#[derive(Debug)]
pub struct LocalSessions {
    inner: Mutex<HashMap<String, LocalSession>>,
    count: tokio::sync::watch::Sender<usize>,
}

impl Default for LocalSessions {
    fn default() -> LocalSessions {
        LocalSessions {
            inner: Mutex::default(),
            count: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl LocalSessions {
    pub fn insert(&self, id: &str, session: LocalSession) {
        let mut map = self.lock();
        map.insert(id.to_string(), session);
        self.count.send_replace(map.len());
    }

    pub fn remove(&self, id: &str) {
        let mut map = self.lock();
        map.remove(id);
        self.count.send_replace(map.len());
    }

    /// The number of local sessions, now and on every change.
    pub fn watch_count(&self) -> tokio::sync::watch::Receiver<usize> {
        self.count.subscribe()
    }

    pub fn get(&self, id: &str) -> Option<LocalSession> {
        self.lock().get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Every local session (a snapshot).
    pub fn all(&self) -> Vec<LocalSession> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LocalSession>> {
        // A panic while holding this lock cannot leave the map inconsistent (single ops).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{RESUME_TOKEN_BYTES, new_resume_token};

    /// Tokens are `rt_` + 64 hex digits, never repeat, and their bits look uniform: over
    /// 1000 tokens (256 000 bits) the count of ones is within 6 standard deviations of half
    /// (a fixed or biased field, like a UUID's version bits repeated, would show), and every
    /// bit position takes both values.
    #[test]
    fn resume_tokens_carry_256_random_bits() {
        let tokens: Vec<Vec<u8>> = (0..1000)
            .map(|_| {
                let token = new_resume_token();
                let hex = token.strip_prefix("rt_").expect("rt_ prefix");
                assert_eq!(hex.len(), 2 * RESUME_TOKEN_BYTES, "{token}");
                hex::decode(hex).expect("hex")
            })
            .collect();
        let distinct: HashSet<&Vec<u8>> = tokens.iter().collect();
        assert_eq!(distinct.len(), tokens.len(), "a token repeated");
        let bits = (tokens.len() * RESUME_TOKEN_BYTES * 8) as f64;
        let ones: u32 = tokens.iter().flatten().map(|b| b.count_ones()).sum();
        let sigma = (bits * 0.25).sqrt();
        assert!(
            (f64::from(ones) - bits / 2.0).abs() < 6.0 * sigma,
            "{ones} ones in {bits} bits"
        );
        for bit in 0..RESUME_TOKEN_BYTES * 8 {
            let set = tokens
                .iter()
                .filter(|t| t[bit / 8] & (1 << (bit % 8)) != 0)
                .count();
            assert!(set > 0 && set < tokens.len(), "bit {bit} is constant");
        }
    }
}
