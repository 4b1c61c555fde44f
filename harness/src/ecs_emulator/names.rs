//! Names, ARNs and ids as ECS spells them: the cluster, service, task, task definition
//! and target group ARNs, 32-hex task ids, `ecs-svc/<19 digits>` deployment ids, UUIDs for
//! events and requests, and epoch-second timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

/// Seconds since the epoch, as ECS's JSON timestamps are.
pub(crate) fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A task id: 32 lowercase hex digits, as ECS gives Fargate tasks.
pub(crate) fn new_task_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// A deployment id: `ecs-svc/` and 19 digits.
pub(crate) fn new_deployment_id() -> String {
    let n: u64 = rand::rng().random_range(1_000_000_000_000_000_000..10_000_000_000_000_000_000);
    format!("ecs-svc/{n}")
}

/// A UUID v4 in its text form, for event ids and request ids.
pub(crate) fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Names and ARNs. ARN formats:
/// <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-account-settings.html#ecs-resource-ids>
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub region: String,
    pub account: String,
    pub cluster: String,
    pub service: String,
    pub family: String,
    /// The task definition's one (essential) container.
    pub container: String,
}

impl Names {
    fn arn(&self, resource: &str) -> String {
        format!("arn:aws:ecs:{}:{}:{resource}", self.region, self.account)
    }
    pub fn cluster_arn(&self) -> String {
        self.arn(&format!("cluster/{}", self.cluster))
    }
    pub fn service_arn(&self) -> String {
        self.arn(&format!("service/{}/{}", self.cluster, self.service))
    }
    pub fn task_arn(&self, id: &str) -> String {
        self.arn(&format!("task/{}/{id}", self.cluster))
    }
    pub fn task_definition_arn(&self, revision: u32) -> String {
        self.arn(&format!("task-definition/{}:{revision}", self.family))
    }
    /// The router plays the service's ALB target group.
    pub fn target_group_arn(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.service.as_bytes());
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{}/{}",
            self.region,
            self.account,
            self.service,
            hex::encode(&digest[..8])
        )
    }
    /// `(service NAME)`, the prefix of every scheduler event.
    pub fn prefix(&self) -> String {
        format!("(service {})", self.service)
    }
    /// The cluster a request names (short name or ARN; ECS assumes `default` when absent).
    pub fn is_cluster(&self, requested: Option<&str>) -> bool {
        let requested = requested.unwrap_or("default");
        requested == self.cluster || requested == self.cluster_arn()
    }
    /// The service a request names (short name or ARN).
    pub fn is_service(&self, requested: &str) -> bool {
        requested == self.service || requested == self.service_arn()
    }
    /// The task id in a request's `task` (id or ARN).
    pub fn task_id<'a>(&self, requested: &'a str) -> &'a str {
        requested.rsplit('/').next().unwrap_or(requested)
    }
}
