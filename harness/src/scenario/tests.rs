//! Data-driven tests: broken scenarios and the exact `file:line:column: field: message` each
//! produces, overrides, defaults and time scaling. The shipped files are tested in
//! `harness/tests/scenario_files.rs`.

use std::path::Path;
use std::time::Duration;

use super::*;

/// A valid scenario; tests splice lines into it so line numbers stay easy to count.
const BASE: &str = r#"name = "t"
duration = "10m"
[target]
kind = "local"
mode = "resilient"
[load]
model = "closed"
stages = [ { users = 4, ramp = "1m", hold = "5m" } ]
"#;

fn parse_with(src: &str, overrides: &Overrides) -> Result<ScenarioPlan, ScenarioError> {
    parse(src, Path::new("x.toml"), overrides)
}

#[track_caller]
fn check_err_with(src: &str, overrides: &Overrides, expected: &str) {
    match parse_with(src, overrides) {
        Ok(plan) => panic!("expected an error containing {expected:?}, got a plan: {plan:#?}"),
        Err(err) => {
            let msg = err.to_string();
            assert!(msg.contains(expected), "expected {expected:?} in:\n{msg}");
        }
    }
}

#[track_caller]
fn check_err(src: &str, expected: &str) {
    check_err_with(src, &Overrides::default(), expected);
}

fn set(items: &[&str]) -> Overrides {
    Overrides {
        set: items.iter().map(|s| s.to_string()).collect(),
        ..Overrides::default()
    }
}

#[test]
fn broken_files_name_line_field_and_what_is_allowed() {
    let cases: &[(&str, &str)] = &[
        // Not TOML at all.
        (
            "name = \"t\"\nduration = 10m\n",
            "x.toml:2:12: invalid TOML",
        ),
        // Missing required top-level field: reported at the document.
        (
            "name = \"t\"\n[target]\nkind = \"local\"\n",
            "x.toml:1:1: missing field \"duration\"",
        ),
        // Typo'd field in a plain table.
        (
            &BASE.replace("[load]", "[gates]\ndroped_sessions = 0\n[load]"),
            "x.toml:7:1: gates.droped_sessions: unknown field \"droped_sessions\", expected one of: \"dropped_sessions\"",
        ),
        // Typo'd field inside a tagged table (target.kind) is still pinned to its line.
        (
            &BASE.replace("mode = \"resilient\"", "mode = \"resilient\"\nreplica = 2"),
            "x.toml:6:1: target.replica: unknown field \"replica\", expected one of: \"replicas\"",
        ),
        // Unknown enum value.
        (
            &BASE.replace("\"resilient\"", "\"resilliant\""),
            "x.toml:5:8: target.mode: unknown variant \"resilliant\", expected \"resilient\" or \"naive\"",
        ),
        // Nested inside a tagged table: still the exact line and column.
        (
            &BASE.replace(
                "kind = \"local\"",
                "kind = \"local\"\nrouter = { algoritm = \"x\" }",
            ),
            "x.toml:5:12: target.router.algoritm: unknown field \"algoritm\", expected one of: \"algorithm\"",
        ),
        (
            &BASE.replace(
                "kind = \"local\"",
                "kind = \"local\"\nrouter = { algorithm = \"random\" }",
            ),
            "x.toml:5:24: target.router.algorithm: unknown variant \"random\", expected \"round_robin\" or \"least_outstanding\"",
        ),
        // Unknown tag value.
        (
            &BASE.replace("kind = \"local\"", "kind = \"k8s\""),
            "x.toml:4:8: target.kind: unknown variant \"k8s\", expected one of: \"local\", \"url\", \"ecs\"",
        ),
        // Wrong type.
        (
            &BASE.replace("users = 4", "users = \"four\""),
            "x.toml:8:22: load.stages[0].users: invalid type: string \"four\", expected u32",
        ),
        // Bad duration, in a plain table and in a tagged one.
        (
            &BASE.replace("duration = \"10m\"", "duration = \"10 minuts\""),
            "x.toml:2:12: duration: expected a duration like \"30s\" or \"5m\", found \"10 minuts\"",
        ),
        (
            &BASE.replace("hold = \"5m\"", "hold = 300"),
            "x.toml:8:45: load.stages[0].hold: invalid type: integer 300, expected a duration like \"30s\" or \"5m\"",
        ),
        (
            &BASE.replace("\"10m\"", "\"1000years\""),
            "x.toml:2:12: duration: must be at most 365 days",
        ),
        // p99 below the median.
        (
            &format!("{BASE}[sessions]\nlength = {{ median = \"3m\", p99 = \"1m\" }}\n"),
            "x.toml:10:33: sessions.length.p99: must be at least the median (3m), found 1m",
        ),
        // A fault after the end of the run.
        (
            &format!("{BASE}[[faults]]\naction = \"deploy\"\nat = \"12m\"\n"),
            "x.toml:11:6: faults[0].at: must be before the end of the run (duration = 10m), found 12m",
        ),
        // A typo inside a fault (tagged on action).
        (
            &format!("{BASE}[[faults]]\naction = \"kill\"\nat = \"2m\"\nsignall = \"SIGKILL\"\n"),
            "x.toml:12:1: faults[0].signall: unknown field \"signall\"",
        ),
        (
            &format!("{BASE}[[faults]]\naction = \"kill\"\nat = \"2m\"\nsignal = \"SIGINT\"\n"),
            "x.toml:12:10: faults[0].signal: unknown variant \"SIGINT\", expected \"SIGTERM\" or \"SIGKILL\"",
        ),
        (
            &format!("{BASE}[[faults]]\naction = \"restart\"\nat = \"2m\"\n"),
            "x.toml:10:10: faults[0].action: unknown variant \"restart\"",
        ),
        // Missing url for a url target: reported at the [target] table.
        (
            "name = \"t\"\nduration = \"1m\"\n[target]\nkind = \"url\"\n[load]\nmodel = \"open\"\nstages = [ { rate = 1.0, hold = \"30s\" } ]\n",
            "x.toml:3:1: target.url: a url target needs url = \"http://host:port\"",
        ),
        // Cross-field checks.
        (
            &BASE.replace("users = 4", "users = 0"),
            "x.toml:8:22: load.stages[0].users: must be at least 1, found 0",
        ),
        (
            &BASE.replace("hold = \"5m\"", "hold = \"15m\""),
            "x.toml:8:10: load.stages: last 16m in total",
        ),
        (
            &BASE.replace(
                "stages = [ { users = 4, ramp = \"1m\", hold = \"5m\" } ]",
                "stages = []",
            ),
            "x.toml:8:10: load.stages: needs at least one stage",
        ),
        (
            &BASE.replace("duration = \"10m\"", "duration = \"10m\"\ntime_scale = 20"),
            "x.toml:3:14: time_scale: must be in (0, 10], found 20",
        ),
        (
            &BASE.replace(
                "kind = \"local\"",
                "kind = \"local\"\ndeployment = { maximum_percent = 100 }",
            ),
            "target.deployment.maximum_percent: leaves no room for a rolling deploy",
        ),
        (
            &format!("{BASE}[sessions]\nrunaway_fraction = 1.5\n"),
            "x.toml:10:20: sessions.runaway_fraction: must be in [0, 1], found 1.5",
        ),
        (
            &format!("{BASE}[[faults]]\naction = \"oom\"\nat = \"2m\"\n"),
            "faults[0].action: \"oom\" needs target.memory_limit_mb",
        ),
        (
            &BASE.replace(
                "kind = \"local\"",
                "kind = \"local\"\nstop_timeout = \"10s\"\ndrain_timeout = \"10s\"",
            ),
            "x.toml:6:17: target.drain_timeout: must be shorter than stop_timeout (10s)",
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(src, expected)| {
            let got = parse_with(src, &Overrides::default())
                .map(|_| ())
                .map_err(|e| e.to_string());
            match got {
                Err(msg) if msg.contains(expected) => None,
                other => Some(format!("expected {expected:?}\n     got {other:?}")),
            }
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn overrides_are_applied_and_errors_name_the_flag() {
    let plan = parse_with(
        BASE,
        &Overrides {
            seed: Some(42),
            time_scale: Some(0.5),
            set: vec![
                "load.stages.0.users=20".into(),
                "target.replicas=2".into(),
                "target.mode=naive".into(),
            ],
        },
    )
    .expect("valid overrides");
    assert_eq!(plan.seed, 42);
    assert_eq!(plan.time_scale, 0.5);
    let LoadPlan::Closed(load) = &plan.load else {
        panic!("closed load expected")
    };
    assert_eq!(load.stages[0].users, 20);
    let TargetPlan::Local(local) = &plan.target else {
        panic!("local target expected")
    };
    assert_eq!((local.replicas, local.mode), (2, RuntimeMode::Naive));

    // A missing table on the way is created: autoscaling without [autoscaling].
    let plan = parse_with(
        BASE,
        &set(&["autoscaling.target_value=10", "autoscaling.max=4"]),
    )
    .expect("valid");
    assert_eq!(plan.autoscaling.map(|a| (a.min, a.max)), Some((1, 4)));

    let cases: &[(&[&str], &str)] = &[
        (
            &["target.replica=2"],
            "x.toml: --set target.replica=2: target.replica: unknown field \"replica\"",
        ),
        (
            &["nope.x=1"],
            "x.toml: --set nope.x=1: nope: unknown field \"nope\"",
        ),
        (
            &["target.replicas=0"],
            "x.toml: --set target.replicas=0: target.replicas: must be at least 1, found 0",
        ),
        (
            &["load.stages.3.users=2"],
            "--set load.stages.3.users=2: load.stages has 1 entries, so index 3 does not exist",
        ),
        (
            &["load.stages.first.users=2"],
            "load.stages is an array: index it with a number",
        ),
        (
            &["name.x=1"],
            "--set name.x=1: name is a string, not a table",
        ),
        (
            &["target.replicas"],
            "--set target.replicas: expected key=value",
        ),
        (
            &[r#"sessions.length={ median = "1m", p99 = "30s" }"#],
            r#"x.toml: --set sessions.length={ median = "1m", p99 = "30s" }: sessions.length.p99: must be at least the median (1m), found 30s"#,
        ),
        (
            &[r#"sessions.length={ median = "1m", p99 = "3x" }"#],
            r#"sessions.length.p99: expected a duration like "30s" or "5m", found "3x""#,
        ),
        (
            &["load.stages.0={ users = 3 }"],
            "x.toml: --set load.stages.0={ users = 3 }: load.stages[0]: missing field \"hold\"",
        ),
        (
            &["duration=five"],
            "--set duration=five: duration: expected a duration like \"30s\" or \"5m\", found \"five\"",
        ),
    ];
    for (items, expected) in cases {
        check_err_with(BASE, &set(items), expected);
    }
    let bad_scale = Overrides {
        time_scale: Some(0.0),
        ..Overrides::default()
    };
    check_err_with(
        BASE,
        &bad_scale,
        "x.toml: --time-scale 0: time_scale: must be in (0, 10], found 0",
    );
}

#[test]
fn defaults_fill_in_and_time_scale_applies_to_every_duration_and_rate() {
    let src = BASE.replace("duration = \"10m\"", "duration = \"10m\"\ntime_scale = 0.1");
    let plan = parse_with(&src, &Overrides::default()).expect("valid");
    assert_eq!(plan.duration, Duration::from_secs(60));
    assert_eq!(plan.real_duration, Duration::from_secs(600));
    assert_eq!(plan.to_real(plan.duration), plan.real_duration);
    let TargetPlan::Local(local) = &plan.target else {
        panic!("local target expected")
    };
    assert_eq!(local.replicas, 3);
    assert_eq!(local.journal, Journal::Sqlite);
    assert_eq!(local.stop_timeout, Duration::from_secs(3));
    assert_eq!(local.drain_timeout, Duration::from_millis(2400));
    assert_eq!(local.router.idle_timeout, Duration::from_secs(6));
    let LoadPlan::Closed(load) = &plan.load else {
        panic!("closed load expected")
    };
    assert_eq!(
        (load.stages[0].ramp, load.stages[0].hold),
        (Duration::from_secs(6), Duration::from_secs(30))
    );
    assert_eq!(
        plan.sessions.size,
        SessionSize::Length(Percentiles {
            median: Duration::from_secs(18),
            p99: Duration::from_secs(60)
        })
    );
    assert!((plan.sessions.tokens_per_second - 300.0).abs() < 1e-9);
    let expected_itl = Duration::from_secs_f64(1.0 / 300.0);
    assert_eq!(plan.llm.itl.median, expected_itl);
    assert_eq!(plan.llm.ttft.median, Duration::from_millis(70));
    // Data-loss gates are always on.
    let names: Vec<_> = plan.gates.iter().map(Gate::name).collect();
    assert_eq!(
        names,
        ["lost_events", "duplicated_events", "content_mismatches"]
    );
    assert_eq!(plan.sessions.classes.len(), 1);
}

#[test]
fn faults_resolve_sorted_with_versions_and_kill_signals() {
    let src = format!(
        "{}{}",
        BASE.replace(
            "kind = \"local\"",
            "kind = \"local\"\nmemory_limit_mb = 256"
        ),
        r#"
[[faults]]
action = "deploy"
at = "6m"

[[faults]]
action = "kill"
at = "2m"
signal = "SIGKILL"
replica = 1

[[faults]]
action = "deploy"
at = "8m"
version = "canary"

[[faults]]
action = "llm_brownout"
at = "3m"
duration = "1m"
overloaded = 0.2

[[faults]]
action = "oom"
at = "4m"
"#
    );
    let plan = parse_with(&src, &Overrides::default()).expect("valid");
    let names: Vec<_> = plan.faults.iter().map(|f| f.action.name()).collect();
    assert_eq!(names, ["kill", "llm_brownout", "oom", "deploy", "deploy"]);
    assert_eq!(
        plan.faults[0].action,
        FaultAction::Kill(KillFault {
            who: KillWho::Replica(1),
            signal: KillSignal::Kill
        })
    );
    assert_eq!(plan.faults[1].end(), Duration::from_secs(240));
    assert_eq!(
        plan.faults[3].action,
        FaultAction::Deploy(DeployFault {
            version: "v2".into()
        })
    );
    assert_eq!(
        plan.faults[4].action,
        FaultAction::Deploy(DeployFault {
            version: "canary".into()
        })
    );
}

#[test]
fn url_and_ecs_targets_and_the_open_model_resolve() {
    let src = r#"name = "u"
duration = "2m"
[target]
kind = "url"
url = "https://staging.example.com"
api_key_env = "DROPZERO_API_KEY"
[load]
model = "open"
arrival = "constant"
stages = [ { rate = 2, ramp = "10s", hold = "1m" } ]
[[faults]]
action = "command"
at = "30s"
run = "kubectl rollout restart deploy/agent"
"#;
    let plan = parse_with(src, &Overrides::default()).expect("valid");
    assert_eq!(
        plan.target,
        TargetPlan::Url(UrlTarget {
            url: "https://staging.example.com".into(),
            api_key: Some(ApiKey::Env("DROPZERO_API_KEY".into()))
        })
    );
    let LoadPlan::Open(open) = &plan.load else {
        panic!("open load expected")
    };
    assert_eq!(
        (open.arrival, open.stages[0].rate),
        (Arrival::Constant, 2.0)
    );
    let network = src.replace(
        "action = \"command\"\nat = \"30s\"\nrun = \"kubectl rollout restart deploy/agent\"",
        "action = \"network\"\nat = \"30s\"\nduration = \"10s\"\nfraction = 0.5\nreset = true",
    );
    check_err(
        &network,
        "x.toml:12:10: faults[0].action: \"network\" needs target.kind = \"local\"",
    );

    let ecs = src.replace(
        "kind = \"url\"\nurl = \"https://staging.example.com\"\napi_key_env = \"DROPZERO_API_KEY\"",
        "kind = \"ecs\"\ncluster = \"c\"\nservice = \"s\"\nregion = \"eu-west-1\"",
    );
    let plan = parse_with(&ecs, &Overrides::default()).expect("valid");
    assert!(
        matches!(plan.target, TargetPlan::Ecs(EcsTarget { ref region, .. }) if region == "eu-west-1")
    );
}

#[test]
fn a_missing_file_says_which() {
    let err = load(Path::new("does/not/exist.toml")).expect_err("no such file");
    assert_eq!(err.to_string(), "reading does/not/exist.toml");
}
