//! The emulator over the local fleet a scenario describes, for `dropzero ecs-emulator
//! --scenario FILE`: the scenario's `[target] kind = "local"` table gives the fleet (mode,
//! journal, router, stop timeout, deregistration delay, …), its replica count the
//! service's desired count and its `deployment` table the deployment percentages. The
//! fleet is started by `target_setup::start` — the same code as `dropzero run`, with no
//! replicas — and the emulator's scheduler starts the tasks.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use super::{Emulator, EmulatorConfig};
use crate::scenario::{ScenarioPlan, TargetPlan};
use crate::target_setup::{self, AnyTarget};

/// Start the fleet `plan` describes and the emulator over it, named and configured by
/// `cfg` except for what the scenario says (desired count, deployment percentages).
pub async fn start(
    plan: &ScenarioPlan,
    mut cfg: EmulatorConfig,
    dir: &Path,
    exe: &Path,
    listen: SocketAddr,
) -> anyhow::Result<Emulator> {
    let TargetPlan::Local(local) = &plan.target else {
        anyhow::bail!(
            "{}: dropzero ecs-emulator needs a scenario whose [target] has kind = \"local\" (it describes the fleet behind the emulated service)",
            plan.file.display()
        );
    };
    cfg.desired_count = usize::try_from(local.replicas).unwrap_or(1);
    cfg.minimum_healthy_percent = local.deployment.minimum_healthy_percent;
    cfg.maximum_percent = local.deployment.maximum_percent;
    let mut empty = plan.clone();
    if let TargetPlan::Local(l) = &mut empty.target {
        l.replicas = 0;
    }
    let AnyTarget::Local(fleet) = target_setup::start(&empty, dir, exe).await? else {
        anyhow::bail!("target_setup started something other than a local fleet");
    };
    Emulator::over(cfg, *fleet, listen)
        .await
        .context("starting the ECS emulator")
}
