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
            &format!("{BASE}[sessions]\nresume = {{ retry_hint = \"browser\" }}\n"),
            "x.toml:10:25: sessions.resume.retry_hint: unknown variant \"browser\", expected \"ignore\" or \"floor\"",
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
        (
            &BASE.replace(
                "kind = \"local\"",
                "kind = \"local\"\ncors_origins = [\"http://127.0.0.1:8080\", \"http://localhost:5173/\"]",
            ),
            "x.toml:5:42: target.cors_origins[1]: must be an origin as a browser sends it, http(s)://host[:port] with no path or trailing slash (e.g. \"http://localhost:5173\"), found \"http://localhost:5173/\"",
        ),
        (
            &BASE.replace("kind = \"local\"", "kind = \"local\"\ncors_origins = [\"*\"]"),
            "target.cors_origins[0]: must be an origin as a browser sends it",
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
fn defaults_fill_in_and_time_scale_applies_to_every_duration_but_the_llm_speed() {
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
    // The LLM's speed is never scaled: 30 tokens/s and a 700 ms TTFT stay as they are.
    assert!((plan.sessions.tokens_per_second - 30.0).abs() < 1e-9);
    let expected_itl = Duration::from_secs_f64(1.0 / 30.0);
    assert_eq!(plan.llm.itl.median, expected_itl);
    assert_eq!(plan.llm.ttft.median, Duration::from_millis(700));
    // Data-loss gates are always on.
    let names: Vec<_> = plan.gates.iter().map(Gate::name).collect();
    assert_eq!(
        names,
        ["lost_events", "duplicated_events", "content_mismatches"]
    );
    assert_eq!(plan.sessions.classes.len(), 1);
    assert_eq!(plan.sessions.resume.retry_hint, crate::RetryHint::Ignore);
    let floor = format!("{BASE}[sessions]\nresume = {{ retry_hint = \"floor\" }}\n");
    let plan = parse_with(&floor, &Overrides::default()).expect("valid");
    assert_eq!(plan.sessions.resume.retry_hint, crate::RetryHint::Floor);
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
            version: "v2".into(),
            task_definition: None,
        })
    );
    assert_eq!(
        plan.faults[4].action,
        FaultAction::Deploy(DeployFault {
            version: "canary".into(),
            task_definition: None,
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
        "kind = \"ecs\"\ncluster = \"c\"\nservice = \"s\"\nregion = \"eu-west-1\"\nurl = \"https://alb.example.com\"",
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

/// An ECS target; tests append faults and tables.
const ECS: &str = r#"name = "t"
duration = "10m"
[load]
model = "closed"
stages = [ { users = 4, ramp = "1m", hold = "5m" } ]
[target]
kind = "ecs"
cluster = "c"
service = "s"
region = "eu-west-1"
"#;

#[test]
fn ecs_targets_say_what_they_need_and_what_ecs_cannot_do() {
    let url = "url = \"https://alb.example.com\"\n";
    let with = |extra: &str| format!("{ECS}{url}{extra}");
    check_err(ECS, "target.url: an ecs target needs url");
    check_err(
        &format!("{ECS}{url}[target.emulator]\nreplicas = 2\n"),
        "target.url: leave url out with [target.emulator]",
    );
    // A fleet setting inside [target.emulator] is named, and located, where it is written.
    check_err(
        &format!("{ECS}[target.emulator]\nreplicas = 0\n"),
        "x.toml:12:12: target.emulator.replicas: must be at least 1",
    );
    check_err(
        &with("service_arn = \"arn:aws:ecs:eu-west-1:1:service/other/s\"\n"),
        "target.service_arn: must be the ARN of service s in cluster c",
    );
    check_err(
        &with("poll_interval = \"1ms\"\n"),
        "target.poll_interval: must be at least",
    );
    check_err(
        &with("api_key = \"k\"\napi_key_env = \"K\"\n"),
        "target.api_key_env: set api_key or api_key_env, not both",
    );
    check_err(
        &with(
            "[[faults]]\naction = \"network\"\nat = \"1m\"\nduration = \"10s\"\nfraction = 0.5\nreset = true\n",
        ),
        "AWS FIS experiment",
    );
    check_err(
        &with("[[faults]]\naction = \"kill\"\nat = \"1m\"\nsignal = \"SIGKILL\"\n"),
        "faults[0].signal: ECS StopTask always sends SIGTERM",
    );
    check_err(
        &with("[[faults]]\naction = \"kill\"\nat = \"1m\"\ncount = 2\n"),
        "faults[0].count: stops 2 tasks but target.max_stopped (the blast radius) is 1",
    );
    check_err(
        &with("[[faults]]\naction = \"kill\"\nat = \"1m\"\nreplica = 0\n"),
        "faults[0].replica: an ECS kill names a task",
    );
    let plan = parse_with(
        &with("max_stopped = 2\n[[faults]]\naction = \"kill\"\nat = \"1m\"\ntask = \"abc\"\n[[faults]]\naction = \"deploy\"\nat = \"2m\"\ntask_definition = \"agent:7\"\n"),
        &Overrides::default(),
    )
    .expect("valid");
    let TargetPlan::Ecs(ecs) = &plan.target else {
        panic!("an ecs target")
    };
    assert_eq!((ecs.max_stopped, ecs.emulator.is_none()), (2, true));
    assert!(
        matches!(&plan.faults[0].action, FaultAction::Kill(k) if k.who == KillWho::Task("abc".into()))
    );
    assert!(
        matches!(&plan.faults[1].action, FaultAction::Deploy(d) if d.task_definition.as_deref() == Some("agent:7"))
    );
    // A local deploy has no task definition, a local kill no task.
    check_err(
        &format!("{BASE}[[faults]]\naction = \"deploy\"\nat = \"1m\"\ntask_definition = \"a:1\"\n"),
        "faults[0].task_definition: only applies to target.kind = \"ecs\"",
    );
    check_err(
        &format!("{BASE}[[faults]]\naction = \"kill\"\nat = \"1m\"\ntask = \"a\"\n"),
        "faults[0].task: only applies to target.kind = \"ecs\"",
    );
}

#[test]
fn expect_and_halt_tables_are_checked() {
    check_err(
        &format!("{BASE}[expect]\nverdict = \"pass\"\nfailing_gates = [\"dropped_sessions\"]\n"),
        "expect.failing_gates: only goes with verdict = \"fail\"",
    );
    check_err(
        &format!("{BASE}[expect]\nverdict = \"fail\"\nfailing_gates = [\"nope\"]\n"),
        "expect.failing_gates: \"nope\" is not a gate of this scenario",
    );
    check_err(&format!("{BASE}[expect]\nverdict = \"maybe\"\n"), "verdict");
    check_err(
        &format!("{BASE}[halt]\nerror_rate = 1.5\n"),
        "halt.error_rate: must be in (0, 1)",
    );
    check_err(
        &format!("{BASE}[halt]\ndata_loss = false\n"),
        "halt: names no condition",
    );
    let plan = parse_with(
        &format!("{BASE}[halt]\ndropped_sessions = 5\nerror_rate = 0.2\n"),
        &Overrides::default(),
    )
    .expect("valid");
    let halt = plan.halt.expect("halt");
    let at = |dropped, failed, finished, data_loss| {
        halt.breached(HaltInputs {
            dropped,
            failed,
            finished,
            data_loss,
        })
    };
    assert_eq!(
        at(5, 0, 100, 0),
        None,
        "5 dropped is the limit, not past it"
    );
    assert!(at(6, 0, 100, 0).is_some_and(|w| w.contains("6 sessions dropped")));
    assert_eq!(
        at(0, 5, 9, 0),
        None,
        "error rate waits for min_sessions (10)"
    );
    assert!(at(0, 3, 10, 0).is_some_and(|w| w.contains("error rate 0.300")));
    assert!(at(0, 0, 1, 1).is_some_and(|w| w.contains("halt.data_loss")));
}

#[test]
fn cors_origins_resolve_in_order_and_default_to_none() {
    let plan = parse_with(BASE, &Overrides::default()).expect("valid");
    let TargetPlan::Local(local) = &plan.target else {
        panic!("local target expected")
    };
    assert!(local.cors_origins.is_empty());
    let plan = parse_with(
        BASE,
        &set(&[r#"target.cors_origins=["https://app.example.com", "http://[::1]:8080"]"#]),
    )
    .expect("valid");
    let TargetPlan::Local(local) = &plan.target else {
        panic!("local target expected")
    };
    assert_eq!(
        local.cors_origins,
        ["https://app.example.com", "http://[::1]:8080"]
    );
}

#[test]
fn journal_faults_and_persistence_resolve_and_say_what_they_need() {
    let redis = BASE.replace(
        "kind = \"local\"",
        "kind = \"local\"\njournal = \"redis\"\njournal_persistence = \"aof_always\"",
    );
    let src = format!(
        "{redis}{}",
        r#"
[[faults]]
action = "journal_outage"
at = "4m"
duration = "1m"

[[faults]]
action = "journal_kill"
at = "2m"
down = "30s"
"#
    );
    let plan = parse_with(&src, &Overrides::default()).expect("valid");
    let TargetPlan::Local(local) = &plan.target else {
        panic!("a local target");
    };
    assert_eq!(local.journal_persistence, JournalPersistence::AofAlways);
    assert_eq!(
        plan.faults[0].action,
        FaultAction::JournalKill(JournalKillFault {
            down: Duration::from_secs(30)
        })
    );
    assert_eq!(plan.faults[0].end(), Duration::from_secs(150));
    assert_eq!(plan.faults[1].end(), Duration::from_secs(300));
    // The default keeps the AOF written before every reply, fsynced every second.
    let TargetPlan::Local(local) = parse_with(
        &BASE.replace("kind = \"local\"", "kind = \"local\"\njournal = \"redis\""),
        &Overrides::default(),
    )
    .expect("valid")
    .target
    else {
        panic!("a local target");
    };
    assert_eq!(local.journal_persistence, JournalPersistence::AofEverysec);

    let fault = "\n[[faults]]\naction = \"journal_kill\"\nat = \"2m\"\n";
    check_err(
        &format!("{BASE}{fault}"),
        "faults[0].action: \"journal_kill\" needs target.journal = \"redis\"",
    );
    check_err(
        &BASE.replace(
            "kind = \"local\"",
            "kind = \"local\"\njournal_persistence = \"snapshot\"",
        ),
        "target.journal_persistence: only applies to journal = \"redis\"",
    );
    check_err(
        &BASE.replace(
            "kind = \"local\"",
            "kind = \"local\"\njournal = \"redis\"\njournal_persistence = \"fsync\"",
        ),
        "x.toml:6:23: target.journal_persistence: unknown variant \"fsync\", expected one of: \"aof_always\", \"aof_everysec\", \"snapshot\"",
    );
    check_err(
        &format!(
            "{redis}\n[[faults]]\naction = \"journal_outage\"\nat = \"2m\"\nduration = \"0s\"\n"
        ),
        "faults[0].duration",
    );
}
