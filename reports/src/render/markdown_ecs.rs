//! The Markdown section of an ECS target's run: the service, its deployments and rollout,
//! the tasks with their stop codes, and the service events in ECS's own words.

use std::io::{self, Write};

use super::markdown::{cell, num, table};
use crate::ecs::EcsReport;

/// At most this many service events are printed (report.json has them all).
const MAX_EVENTS: usize = 40;

fn secs(v: Option<f64>) -> String {
    v.map_or_else(String::new, |s| format!("{} s", num(s)))
}

pub(super) fn ecs(out: &mut impl Write, e: &EcsReport) -> io::Result<()> {
    writeln!(out, "\n## ECS service\n")?;
    writeln!(
        out,
        "`{}` (service `{}` in cluster `{}`, {}; endpoint: {}). Times are seconds since the run started.\n",
        cell(&e.service_arn),
        cell(&e.service),
        cell(&e.cluster),
        cell(&e.region),
        cell(&e.endpoint)
    )?;
    if !e.deployments.is_empty() {
        writeln!(out, "### Deployments\n")?;
        let rows = e.deployments.iter().map(|d| {
            let duration = match (d.created_s, d.updated_s, d.rollout_state.as_deref()) {
                (Some(c), Some(u), Some("COMPLETED" | "FAILED")) => format!("{} s", num(u - c)),
                _ => String::new(),
            };
            vec![
                format!("`{}`", cell(&d.id)),
                cell(&d.task_definition),
                cell(&d.status),
                cell(d.rollout_state.as_deref().unwrap_or("")),
                secs(d.created_s),
                duration,
                d.failed_tasks.to_string(),
                cell(d.rollout_state_reason.as_deref().unwrap_or("")),
            ]
        });
        table(
            out,
            &[
                "Deployment",
                "Task definition",
                "Status",
                "Rollout",
                "Created",
                "Took",
                "Failed tasks",
                "Reason",
            ],
            rows,
        )?;
    }
    if !e.tasks.is_empty() {
        writeln!(out, "\n### Tasks\n")?;
        let rows = e.tasks.iter().map(|t| {
            vec![
                format!("`{}`", cell(&t.task_id)),
                cell(&t.task_definition),
                cell(&t.last_status),
                secs(t.started_s),
                secs(t.stopped_s),
                cell(t.stop_code.as_deref().unwrap_or("")),
                cell(t.stopped_reason.as_deref().unwrap_or("")),
            ]
        });
        table(
            out,
            &[
                "Task",
                "Task definition",
                "Last status",
                "Started",
                "Stopped",
                "Stop code",
                "Stopped reason",
            ],
            rows,
        )?;
    }
    if !e.events.is_empty() {
        writeln!(out, "\n### Service events\n")?;
        let skipped = e.events.len().saturating_sub(MAX_EVENTS);
        if skipped > 0 {
            writeln!(
                out,
                "(the last {MAX_EVENTS}; report.json has all {})\n",
                e.events.len()
            )?;
        }
        for ev in &e.events[skipped..] {
            let at = ev.at_s.map_or("?".into(), |s| format!("{} s", num(s)));
            writeln!(out, "- {at}: {}", cell(&ev.message))?;
        }
    }
    if e.poll_errors > 0 {
        writeln!(
            out,
            "\n{} observation polls failed (see Harness warnings).",
            e.poll_errors
        )?;
    }
    Ok(())
}
