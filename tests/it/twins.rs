//! The same scenario on two targets: each shipped ECS scenario is its local twin with the
//! target swapped — the same load, sessions, LLM, faults, gates, autoscaling policy and
//! declared verdict, and the emulated service is the twin's local fleet. Both files are run
//! end to end by other tests here (`shipped.rs`, `chaos.rs`, `autoscale.rs`, `ecs.rs`,
//! `ecs_autoscale.rs`), each held to that one `[expect]`: so `kind = "local"` and
//! `kind = "ecs"` give the same verdicts, and this test keeps the twins from drifting apart.
//!
//! What may differ, and why: the ECS files add a `[halt]` (they are written to be pointed at
//! real infrastructure), a kill has no `signal` (ECS `StopTask` always sends SIGTERM, then
//! SIGKILL after the task's `stopTimeout`), and the emulator table may spell out a setting
//! the local file leaves at its default.

use super::support::repo_root;

const TWINS: [(&str, &str); 3] = [
    ("ecs-rolling-deploy", "rolling-deploy"),
    ("ecs-task-kill", "task-kill"),
    ("ecs-autoscale-step", "autoscale-step"),
];

fn load(name: &str) -> toml::Table {
    let path = repo_root().join("scenarios").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).expect("read scenario");
    toml::from_str(&text).expect("scenario is TOML")
}

/// `[[faults]]` without the keys an ECS fault cannot take.
fn faults(doc: &toml::Table) -> Vec<toml::Table> {
    doc.get("faults")
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(toml::Value::as_table)
                .map(|f| {
                    let mut f = f.clone();
                    f.remove("signal");
                    f
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn each_ecs_scenario_is_its_local_twin_with_the_target_swapped() {
    for (ecs, local) in TWINS {
        let (e, l) = (load(ecs), load(local));
        for key in [
            "seed",
            "time_scale",
            "duration",
            "load",
            "sessions",
            "llm",
            "autoscaling",
            "gates",
            "expect",
        ] {
            assert_eq!(e.get(key), l.get(key), "{ecs} and {local} differ in {key}");
        }
        assert_eq!(
            faults(&e),
            faults(&l),
            "{ecs} and {local} differ in [[faults]]"
        );
        assert_eq!(e["target"]["kind"].as_str(), Some("ecs"), "{ecs}");
        assert_eq!(l["target"]["kind"].as_str(), Some("local"), "{local}");
        let fleet = e["target"]["emulator"]
            .as_table()
            .expect("[target.emulator]");
        let twin = l["target"].as_table().expect("[target]");
        for (key, value) in twin.iter().filter(|(k, _)| k.as_str() != "kind") {
            assert_eq!(
                fleet.get(key),
                Some(value),
                "{ecs}'s emulated fleet differs from {local}'s target in {key}"
            );
        }
        assert!(
            e.contains_key("halt"),
            "{ecs} is written for real infrastructure: [halt]"
        );
    }
}
