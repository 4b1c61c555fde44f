//! The `ecs` target: a real ECS service, driven and observed through the official AWS SDK
//! (`aws-sdk-ecs`, credentials from the standard chain via `aws-config`). Clients reach the
//! service at `url` (its load balancer); the harness never talks to a task directly.
//!
//! - deploy = `UpdateService(forceNewDeployment)` (optionally a new task definition), then
//!   the PRIMARY deployment is watched to `COMPLETED` or `FAILED`;
//! - kill = `StopTask` on chosen RUNNING tasks, with a reason naming the scenario and fault;
//! - observation: a sampler polls `DescribeServices`, `ListTasks` and `DescribeTasks`
//!   (backing off on throttling) and keeps the latest view for the timeline, the report's
//!   ECS section and attribution (a stream's `x-dropzero-replica` is its ECS task id).
//!
//! One code path whichever endpoint answers: AWS itself, `moto_server` (the wire format) or
//! the ECS emulator (behaviour; `crate::ecs_emulator`). Every AWS error is reported with the
//! call, the resource and what to check ([`EcsError`]).
//!
//! Not here: what a fault means on the timeline (`faults/driver.rs`) or how sessions are
//! verified (`session`).

mod observe;
pub mod report;
pub mod scaling;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio_util::sync::CancellationToken;

pub use observe::{DeploymentView, Observed, ServiceView, TaskView};

use super::{ReplicaInfo, Target};

/// How to reach and guard one ECS service, resolved from the scenario.
#[derive(Debug, Clone)]
pub struct EcsConfig {
    pub cluster: String,
    pub service: String,
    pub region: String,
    /// Another ECS endpoint (moto_server, the emulator); `None` = AWS itself.
    pub endpoint_url: Option<String>,
    /// Where clients create sessions: the service's load balancer.
    pub url: String,
    /// A dropzero mock LLM the tasks use and the harness can reach (brownouts, ledger).
    pub llm_url: Option<String>,
    /// Use these static credentials instead of the standard chain (the emulator).
    pub static_credentials: bool,
    /// Wall-clock interval of the sampler's `DescribeServices` polls.
    pub poll_interval: Duration,
    /// Also poll Application Auto Scaling's `DescribeScalingActivities` for the service.
    pub observe_scaling: bool,
}

/// An AWS call that failed: which call, on what, the service's own code and message, and
/// what the user should check.
#[derive(Debug, thiserror::Error)]
#[error("ECS {call} on {resource}: {detail}{hint}")]
pub struct EcsError {
    pub call: &'static str,
    pub resource: String,
    /// The AWS error code (`ClusterNotFoundException`, `ThrottlingException`, …), if any.
    pub code: Option<String>,
    pub detail: String,
    hint: String,
}

impl EcsError {
    fn new(call: &'static str, resource: String, code: Option<String>, detail: String) -> Self {
        let hint = hint(code.as_deref(), &detail);
        EcsError {
            call,
            resource,
            code,
            detail,
            hint: hint.map(|h| format!(" — {h}")).unwrap_or_default(),
        }
    }

    /// From an SDK error: the service's code and message when it answered in the protocol;
    /// the HTTP status and any `<Code>` in the body when it answered something else (a
    /// proxy, an XML error page); what failed when it never answered (connection refused,
    /// timeout, no credentials).
    fn from_sdk<E>(call: &'static str, resource: String, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (code, detail) = match err {
            SdkError::ServiceError(_) => {
                let code = err.code().map(str::to_string);
                let detail = match (err.code(), err.message()) {
                    (Some(c), Some(m)) => format!("{c}: {m}"),
                    (Some(c), None) => c.to_string(),
                    _ => DisplayErrorContext(err).to_string(),
                };
                (code, detail)
            }
            SdkError::ResponseError(r) => {
                let raw = r.raw();
                let body = String::from_utf8_lossy(raw.body().bytes().unwrap_or_default());
                let code = xml_code(&body).map(str::to_string);
                let detail = format!(
                    "HTTP {} with a body that is not an ECS response ({}){}",
                    raw.status().as_u16(),
                    std::error::Error::source(err)
                        .map_or_else(|| "unparseable".to_string(), |e| e.to_string()),
                    code.as_deref()
                        .map(|c| format!(", error code {c}"))
                        .unwrap_or_default()
                );
                (code, detail)
            }
            SdkError::DispatchFailure(_) => (
                None,
                format!(
                    "the request could not be sent: {}",
                    DisplayErrorContext(err)
                ),
            ),
            SdkError::TimeoutError(_) => (None, "no answer in time (timeout)".to_string()),
            _ => (None, DisplayErrorContext(err).to_string()),
        };
        EcsError::new(call, resource, code, detail)
    }

    /// The service is throttling us (back off and retry later).
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("ThrottlingException" | "Throttling" | "TooManyRequestsException")
        )
    }
}

/// What to check, for the errors a user can fix.
fn hint(code: Option<&str>, detail: &str) -> Option<&'static str> {
    Some(match code {
        Some("ClusterNotFoundException") => {
            "check target.cluster and target.region (ECS clusters are regional)"
        }
        Some("ServiceNotFoundException" | "ServiceNotActiveException") => {
            "check target.service: it must be an ACTIVE service in target.cluster"
        }
        Some(
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "MissingAuthenticationTokenException"
            | "ExpiredTokenException",
        ) => "check the AWS credentials (env, profile, SSO or role) the standard chain finds",
        Some("AccessDeniedException" | "AccessDenied") => {
            "the credentials lack a permission: see docs/ecs.md for the least-privilege policy"
        }
        Some("ThrottlingException" | "Throttling" | "TooManyRequestsException") => {
            "ECS is throttling this account: lower the poll rate or retry later"
        }
        Some("InvalidParameterException") => "check the task ids and task definition named",
        _ if detail.contains("could not be sent") && detail.contains("credentials") => {
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        }
        _ if detail.contains("could not be sent") || detail.contains("timeout") => {
            "the ECS endpoint is unreachable: check target.endpoint_url, the network and the region"
        }
        _ => return None,
    })
}

/// A connected ECS service. Cheap to share: every method takes `&self`.
pub struct EcsTarget {
    cfg: EcsConfig,
    client: Client,
    /// Application Auto Scaling, when the scenario observes the service's autoscaling.
    scaling: Option<aws_sdk_applicationautoscaling::Client>,
    /// The service as `DescribeServices` returned it at connect time (the guard rail's ARN).
    pub service_arn: String,
    observed: Arc<Mutex<Observed>>,
    sampler_stop: CancellationToken,
    sampler: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl EcsTarget {
    /// Build the SDK client and check that the service exists and is ACTIVE; start the
    /// sampler. Fails with the call and resource that failed.
    pub async fn connect(cfg: EcsConfig) -> Result<EcsTarget, EcsError> {
        let sdk = sdk_config(&cfg).await;
        let client = Client::new(&sdk);
        let scaling = cfg
            .observe_scaling
            .then(|| aws_sdk_applicationautoscaling::Client::new(&sdk));
        let target = EcsTarget {
            scaling,
            observed: Arc::new(Mutex::new(Observed::default())),
            sampler_stop: CancellationToken::new(),
            sampler: Mutex::new(None),
            service_arn: String::new(),
            client,
            cfg,
        };
        let service = target.describe_service().await?;
        if service.status != "ACTIVE" {
            return Err(EcsError::new(
                "DescribeServices",
                target.resource(),
                None,
                format!("the service is {}, not ACTIVE", service.status),
            ));
        }
        let tasks = target.list_and_describe_tasks().await?;
        let mut target = target;
        target.service_arn = service.arn.clone();
        {
            let mut o = lock(&target.observed);
            o.apply_service(service, SystemTime::now());
            o.apply_tasks(tasks);
        }
        let handle = tokio::spawn(observe::sample(
            target.client.clone(),
            target.scaling.clone(),
            target.cfg.clone(),
            target.observed.clone(),
            target.sampler_stop.clone(),
        ));
        *lock(&target.sampler) = Some(handle);
        Ok(target)
    }

    pub fn config(&self) -> &EcsConfig {
        &self.cfg
    }

    /// `service <name> in cluster <name> (<region>)`, for messages.
    pub fn resource(&self) -> String {
        format!(
            "service {} in cluster {} ({})",
            self.cfg.service, self.cfg.cluster, self.cfg.region
        )
    }

    /// The latest observed state (service, deployments, events, tasks).
    pub fn observed(&self) -> Observed {
        lock(&self.observed).clone()
    }

    /// One `DescribeServices` call for this service, parsed.
    pub async fn describe_service(&self) -> Result<ServiceView, EcsError> {
        observe::describe_service(&self.client, &self.cfg).await
    }

    /// Every task of the service (RUNNING and recently STOPPED), described.
    pub async fn list_and_describe_tasks(&self) -> Result<Vec<TaskView>, EcsError> {
        observe::list_and_describe_tasks(&self.client, &self.cfg).await
    }

    /// Refresh the observed state now (a fault wants the latest view).
    pub async fn refresh(&self) -> Result<Observed, EcsError> {
        let service = self.describe_service().await?;
        let tasks = self.list_and_describe_tasks().await?;
        let mut o = lock(&self.observed);
        o.apply_service(service, SystemTime::now());
        o.apply_tasks(tasks);
        Ok(o.clone())
    }

    /// `UpdateService` with `forceNewDeployment` (and a task definition when given). Returns
    /// the id of the new PRIMARY deployment.
    pub async fn force_new_deployment(
        &self,
        task_definition: Option<&str>,
    ) -> Result<String, EcsError> {
        let mut req = self
            .client
            .update_service()
            .cluster(&self.cfg.cluster)
            .service(&self.cfg.service)
            .force_new_deployment(true);
        if let Some(td) = task_definition {
            req = req.task_definition(td);
        }
        let out = req
            .send()
            .await
            .map_err(|e| EcsError::from_sdk("UpdateService", self.resource(), &e))?;
        let service = out.service().ok_or_else(|| {
            EcsError::new(
                "UpdateService",
                self.resource(),
                None,
                "the response has no service".into(),
            )
        })?;
        let view = observe::service_view(service);
        let primary = view.primary().map(|d| d.id.clone()).ok_or_else(|| {
            EcsError::new(
                "UpdateService",
                self.resource(),
                None,
                "the response names no PRIMARY deployment".into(),
            )
        })?;
        lock(&self.observed).apply_service(view, SystemTime::now());
        Ok(primary)
    }

    /// `StopTask` on one task, with a reason ECS records as `stoppedReason`.
    pub async fn stop_task(&self, task_arn: &str, reason: &str) -> Result<(), EcsError> {
        self.client
            .stop_task()
            .cluster(&self.cfg.cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| EcsError::from_sdk("StopTask", format!("task {task_arn}"), &e))?;
        Ok(())
    }
}

impl Target for EcsTarget {
    fn kind(&self) -> &'static str {
        "ecs"
    }
    fn base_url(&self) -> String {
        self.cfg.url.trim_end_matches('/').to_string()
    }
    fn llm_url(&self) -> Option<String> {
        self.cfg.llm_url.clone()
    }
    fn replicas(&self) -> Vec<ReplicaInfo> {
        lock(&self.observed).replicas()
    }
    async fn shutdown(&self) {
        self.sampler_stop.cancel();
        let handle = lock(&self.sampler).take();
        if let Some(handle) = handle {
            let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
        }
    }
}

/// The SDK configuration both clients (ECS, Application Auto Scaling) share: the standard
/// credential chain (or static ones for the emulator), the scenario's region and endpoint,
/// bounded timeouts and the SDK's standard retries.
async fn sdk_config(cfg: &EcsConfig) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(cfg.region.clone()))
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3));
    if let Some(endpoint) = &cfg.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if cfg.static_credentials {
        loader = loader.credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "AKIDDROPZEROEMULATOR",
            "emulator-secret",
            None,
            None,
            "dropzero-emulator",
        ));
    }
    loader.load().await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `<Code>X</Code>` in an XML error body (IAM/STS-style errors some endpoints answer with).
fn xml_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    Some(body[start..start + len].trim()).filter(|c| !c.is_empty())
}

/// The last `/`-separated part of an ARN (`…:task/cluster/<id>` → `<id>`).
pub fn arn_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_the_last_part_of_the_arn() {
        assert_eq!(
            arn_id("arn:aws:ecs:us-east-1:123456789012:task/dz/0123456789abcdef0123456789abcdef"),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(arn_id("plain"), "plain");
    }

    #[test]
    fn errors_name_the_call_the_resource_and_what_to_check() {
        let e = EcsError::new(
            "DescribeServices",
            "service s in cluster c (eu-west-1)".into(),
            Some("ClusterNotFoundException".into()),
            "ClusterNotFoundException: Cluster not found.".into(),
        );
        let text = e.to_string();
        assert!(text.starts_with("ECS DescribeServices on service s in cluster c (eu-west-1): ClusterNotFoundException: Cluster not found. — check target.cluster"), "{text}");
        assert!(!e.is_throttling());
        let t = EcsError::new(
            "ListTasks",
            "x".into(),
            Some("ThrottlingException".into()),
            "slow down".into(),
        );
        assert!(t.is_throttling());
    }

    #[test]
    fn xml_error_codes_are_found() {
        let body = "<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code></Error></Errors></ErrorResponse>";
        assert_eq!(xml_code(body), Some("InvalidClientTokenId"));
        assert_eq!(xml_code("<html>500</html>"), None);
        assert_eq!(xml_code("<Code></Code>"), None);
    }
}
