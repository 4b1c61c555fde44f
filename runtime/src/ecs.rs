//! The replica's identity on ECS: the task id, read from the task metadata endpoint v4
//! (`GET ${ECS_CONTAINER_METADATA_URI_V4}/task`, field `TaskARN`, e.g.
//! `arn:aws:ecs:eu-west-1:123456789012:task/agents/0f1e2d3c4b5a49688796a1b2c3d4e5f6`; the id
//! is the ARN's last `/` segment). Named by its task id, a replica's `x-dropzero-replica`
//! header, `session` events, logs and metrics all say which ECS task served a stream, so the
//! harness can attribute a drop to a task and an operator can find the task's logs.
//!
//! One bounded GET at start-up; the caller decides what a failure means (the runtime falls
//! back to a random id and says so). Not for task protection (`protection`, through
//! `$ECS_AGENT_URI`) and not for anything else in the metadata.

use std::time::Duration;

use serde::Deserialize;

/// How long the one metadata request may take; the endpoint is local to the task and
/// answers in milliseconds when it answers at all.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the task id could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("GET {url}: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: the body is not task metadata with a TaskARN: {source}")]
    Body {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: TaskARN {arn:?} has no task id after its last '/'")]
    Arn { url: String, arn: String },
}

#[derive(Deserialize)]
struct TaskMetadata {
    #[serde(rename = "TaskARN")]
    task_arn: String,
}

/// The replica id to use instead of a random one: on ECS (`metadata_uri` set, non-empty)
/// without an explicit `--replica-id`, the task id. `None` keeps the default, also when the
/// endpoint fails, which is logged as a warning: a replica must start even if it cannot
/// name itself.
pub async fn replica_id(
    explicit: Option<&str>,
    metadata_uri: Option<&str>,
    timeout: Duration,
) -> Option<String> {
    if explicit.is_some() {
        return None;
    }
    let uri = metadata_uri.filter(|uri| !uri.is_empty())?;
    match task_id(uri, timeout).await {
        Ok(id) => {
            tracing::info!(replica_id = %id, "named after the ECS task");
            Some(id)
        }
        Err(e) => {
            tracing::warn!(error = %e, "ECS task metadata unavailable; using a random replica id");
            None
        }
    }
}

/// The task id of the task this process runs in, from the metadata endpoint at
/// `metadata_uri` (the value of `$ECS_CONTAINER_METADATA_URI_V4`), within `timeout`.
pub async fn task_id(metadata_uri: &str, timeout: Duration) -> Result<String, MetadataError> {
    let url = format!("{}/task", metadata_uri.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|source| MetadataError::Request {
            url: url.clone(),
            source,
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(MetadataError::Status {
            url,
            status: status.as_u16(),
        });
    }
    let metadata: TaskMetadata = response
        .json()
        .await
        .map_err(|source| MetadataError::Body {
            url: url.clone(),
            source,
        })?;
    task_id_of(&metadata.task_arn).ok_or(MetadataError::Arn {
        url,
        arn: metadata.task_arn,
    })
}

/// The id at the end of a task ARN (`arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID`, or the
/// old format without the cluster). Only characters that are safe in a header, a metric
/// label and a log line are accepted.
pub fn task_id_of(arn: &str) -> Option<String> {
    let (_, id) = arn.rsplit_once('/')?;
    let safe = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    safe.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_from_arns() {
        for (arn, expected) in [
            (
                "arn:aws:ecs:eu-west-1:123456789012:task/agents/0f1e2d3c4b5a49688796a1b2c3d4e5f6",
                Some("0f1e2d3c4b5a49688796a1b2c3d4e5f6"),
            ),
            (
                "arn:aws:ecs:us-east-1:123456789012:task/1dc5c17a-422b-4dc4-b493-371970c6c4d6",
                Some("1dc5c17a-422b-4dc4-b493-371970c6c4d6"),
            ),
            ("arn:aws:ecs:eu-west-1:123456789012:task/agents/", None),
            ("no-slash", None),
            ("arn:aws:ecs:eu-west-1:1:task/c/id with space", None),
            ("arn:aws:ecs:eu-west-1:1:task/c/id\"quote", None),
        ] {
            assert_eq!(task_id_of(arn).as_deref(), expected, "{arn}");
        }
    }
}
