//! The HTTP face: AWS JSON 1.1 on `POST /`, the action named by `X-Amz-Target`, one
//! handler per action, and AWS's error shape.
//!
//! Protocol (<https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html>): the request
//! body is the action's input as JSON; a success is HTTP 200 with the output as JSON; an
//! error is HTTP 4xx/5xx with `{"__type": "<ErrorName>", "message": "..."}` — the SDK picks
//! its typed error (`ClusterNotFoundException`, …) from `__type`. Both carry
//! `Content-Type: application/x-amz-json-1.1` and an `x-amzn-RequestId`.
//!
//! Authentication: a request must carry a SigV4 `Authorization` header; its signature is
//! not verified (any credentials work), but a request without one is refused with
//! `MissingAuthenticationTokenException`, one with another scheme with
//! `IncompleteSignatureException` (both 403), as AWS does.
//! <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/CommonErrors.html>
//!
//! Request members the emulator has no use for (`include`, tags, placement, …) are ignored.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Inner;
use super::model::{State, new_uuid};
use super::{json as out, tasks, update};

/// The `X-Amz-Target` prefix of the ECS API, and of Application Auto Scaling's.
const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const AUTOSCALING: &str = "AnyScaleFrontendService";

pub(crate) fn app(inner: Arc<Inner>) -> axum::Router {
    axum::Router::new()
        .route("/", post(handle))
        .with_state(inner)
}

/// An AWS error: status, `__type` and message.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
        }
    }
    /// The `__type` it answers with.
    #[cfg(test)]
    pub fn kind(&self) -> &'static str {
        self.kind
    }
    pub fn cluster_not_found() -> ApiError {
        ApiError::new("ClusterNotFoundException", "Cluster not found.")
    }
    pub fn service_not_found() -> ApiError {
        ApiError::new("ServiceNotFoundException", "Service not found.")
    }
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new("InvalidParameterException", message)
    }
    fn forbidden(kind: &'static str, message: &str) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            kind,
            message: message.into(),
        }
    }
}

async fn handle(AxState(inner): AxState<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = new_uuid();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let span = tracing::info_span!("ecs_api", target = %target, request_id = %request_id);
    let _entered = span.enter();
    let result = authenticate(&headers).and_then(|()| dispatch(&inner, &target, &body));
    let (status, body) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => {
            tracing::info!(error = e.kind, message = %e.message, "ecs emulator: request refused");
            (e.status, json!({ "__type": e.kind, "message": e.message }))
        }
    };
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", id);
    }
    response
}

fn authenticate(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let sigv4 = auth
        .to_str()
        .is_ok_and(|a| a.starts_with("AWS4-HMAC-SHA256 ") && a.contains("Credential="));
    if !sigv4 {
        return Err(ApiError::forbidden(
            "IncompleteSignatureException",
            "Authorization header requires a SigV4 signature (AWS4-HMAC-SHA256 Credential=...).",
        ));
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::new("SerializationException", e.to_string()))
}

fn dispatch(inner: &Arc<Inner>, target: &str, body: &[u8]) -> Result<Value, ApiError> {
    let unknown = || {
        ApiError::new(
            "UnknownOperationException",
            format!("Unknown operation {target:?}"),
        )
    };
    let (service, action) = target.split_once('.').ok_or_else(unknown)?;
    if service == AUTOSCALING {
        return match action {
            "DescribeScalingActivities" => {
                super::scaling::describe_scaling_activities(&inner.lock(), parse(body)?)
            }
            _ => Err(unknown()),
        };
    }
    if service != ECS {
        return Err(unknown());
    }
    let mut s = inner.lock();
    // Answer from the replicas' current state, not the last scheduler tick's.
    tasks::observe(&mut s, &inner.fleet);
    match action {
        "DescribeServices" => describe_services(&s, parse(body)?),
        "ListServices" => list_services(&s, parse(body)?),
        "UpdateService" => {
            let v = update::update_service(&mut s, parse(body)?)?;
            inner.wake.notify_one();
            Ok(v)
        }
        "ListTasks" => list_tasks(&s, parse(body)?),
        "DescribeTasks" => describe_tasks(&s, parse(body)?),
        "StopTask" => {
            let (v, stop) = update::stop_task(&mut s, parse(body)?)?;
            drop(s);
            if let Some(stop) = stop {
                tasks::spawn(inner, stop);
            }
            Ok(v)
        }
        "DescribeClusters" => describe_clusters(&s, parse(body)?),
        "ListClusters" => Ok(json!({ "clusterArns": [s.names.cluster_arn()] })),
        "DescribeTaskDefinition" => describe_task_definition(inner, &s, parse(body)?),
        _ => Err(unknown()),
    }
}

pub(crate) fn check_cluster(s: &State, cluster: Option<&str>) -> Result<(), ApiError> {
    if s.names.is_cluster(cluster) {
        Ok(())
    } else {
        Err(ApiError::cluster_not_found())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeServices {
    cluster: Option<String>,
    #[serde(default)]
    services: Vec<String>,
}

fn describe_services(s: &State, req: DescribeServices) -> Result<Value, ApiError> {
    check_cluster(s, req.cluster.as_deref())?;
    if req.services.is_empty() || req.services.len() > 10 {
        return Err(ApiError::invalid("services must name 1 to 10 services."));
    }
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for name in &req.services {
        if s.names.is_service(name) {
            found.push(out::service(s));
        } else {
            failures.push(json!({ "arn": missing_arn(s, "service", name), "reason": "MISSING" }));
        }
    }
    Ok(json!({ "services": found, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListServices {
    cluster: Option<String>,
}

fn list_services(s: &State, req: ListServices) -> Result<Value, ApiError> {
    check_cluster(s, req.cluster.as_deref())?;
    Ok(json!({ "serviceArns": [s.names.service_arn()] }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTasks {
    cluster: Option<String>,
    service_name: Option<String>,
    family: Option<String>,
    started_by: Option<String>,
    desired_status: Option<String>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

/// Task ARNs by desired status (RUNNING when not given), oldest first, paginated by an
/// offset token. <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html>
fn list_tasks(s: &State, req: ListTasks) -> Result<Value, ApiError> {
    check_cluster(s, req.cluster.as_deref())?;
    if req
        .service_name
        .as_deref()
        .is_some_and(|n| !s.names.is_service(n))
    {
        return Err(ApiError::service_not_found());
    }
    let want_running = match req.desired_status.as_deref().unwrap_or("RUNNING") {
        "RUNNING" => Some(true),
        "STOPPED" => Some(false),
        // No task here ever has a desired status of PENDING.
        "PENDING" => None,
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid desiredStatus {other:?}."
            )));
        }
    };
    let family_ok = req.family.as_deref().is_none_or(|f| f == s.names.family);
    let arns: Vec<String> = s
        .tasks
        .iter()
        .filter(|t| family_ok && want_running == Some(t.desired_running))
        .filter(|t| req.started_by.as_deref().is_none_or(|b| b == t.started_by))
        .map(|t| s.names.task_arn(&t.id))
        .collect();
    let max = req.max_results.unwrap_or(100).clamp(1, 100);
    let start = match req.next_token.as_deref() {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("Invalid nextToken."))?,
    };
    let page: Vec<&String> = arns.iter().skip(start).take(max).collect();
    let mut v = json!({ "taskArns": page });
    if start + max < arns.len() {
        v["nextToken"] = json!((start + max).to_string());
    }
    Ok(v)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTasks {
    cluster: Option<String>,
    #[serde(default)]
    tasks: Vec<String>,
}

fn describe_tasks(s: &State, req: DescribeTasks) -> Result<Value, ApiError> {
    check_cluster(s, req.cluster.as_deref())?;
    if req.tasks.is_empty() || req.tasks.len() > 100 {
        return Err(ApiError::invalid("tasks must name 1 to 100 tasks."));
    }
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for requested in &req.tasks {
        match s.task(s.names.task_id(requested)) {
            Some(t) => found.push(out::task(s, t)),
            None => failures
                .push(json!({ "arn": missing_arn(s, "task", requested), "reason": "MISSING" })),
        }
    }
    Ok(json!({ "tasks": found, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeClusters {
    #[serde(default)]
    clusters: Vec<String>,
}

fn describe_clusters(s: &State, req: DescribeClusters) -> Result<Value, ApiError> {
    let requested = if req.clusters.is_empty() {
        vec!["default".to_string()]
    } else {
        req.clusters
    };
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for name in &requested {
        if s.names.is_cluster(Some(name)) {
            found.push(out::cluster(s));
        } else {
            failures.push(json!({ "arn": missing_arn(s, "cluster", name), "reason": "MISSING" }));
        }
    }
    Ok(json!({ "clusters": found, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTaskDefinition {
    task_definition: String,
}

fn describe_task_definition(
    inner: &Inner,
    s: &State,
    req: DescribeTaskDefinition,
) -> Result<Value, ApiError> {
    let revision = update::task_definition_revision(s, &req.task_definition)?;
    let stop_timeout = inner.fleet.config().stop_timeout;
    Ok(json!({
        "taskDefinition": out::task_definition(s, revision, stop_timeout),
        "tags": [],
    }))
}

/// The ARN a `failures[]` entry names: the request's own ARN, or one built from its name.
fn missing_arn(s: &State, kind: &str, requested: &str) -> String {
    if requested.starts_with("arn:") {
        return requested.to_string();
    }
    let n = &s.names;
    let resource = match kind {
        "cluster" => format!("cluster/{requested}"),
        other => format!("{other}/{}/{requested}", n.cluster),
    };
    format!("arn:aws:ecs:{}:{}:{resource}", n.region, n.account)
}
