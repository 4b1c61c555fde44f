//! The `url` target: an existing deployment that speaks session protocol v1. The harness
//! starts nothing and can observe only what the protocol exposes, so faults come from
//! `command` hooks (a later issue).

use super::{ReplicaInfo, Target};

pub struct UrlTarget {
    url: String,
}

impl UrlTarget {
    pub fn new(url: String) -> Self {
        UrlTarget {
            url: url.trim_end_matches('/').to_string(),
        }
    }
}

impl Target for UrlTarget {
    fn kind(&self) -> &'static str {
        "url"
    }
    fn base_url(&self) -> String {
        self.url.clone()
    }
    fn llm_url(&self) -> Option<String> {
        None
    }
    fn replicas(&self) -> Vec<ReplicaInfo> {
        Vec::new()
    }
    async fn shutdown(&self) {}
}
