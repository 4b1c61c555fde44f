//! Repeated faults (`every`, `times`): how an entry expands, and the exact error each
//! broken pair produces. Same style as `tests.rs`: a valid base file with lines spliced in.

use std::path::Path;
use std::time::Duration;

use super::*;

/// A valid 10-minute scenario on three local replicas, time scale 0.5.
const BASE: &str = r#"name = "t"
duration = "10m"
time_scale = 0.5
[target]
kind = "local"
mode = "resilient"
replicas = 3
[load]
model = "closed"
stages = [ { users = 4, ramp = "1m", hold = "5m" } ]
"#;

fn with_faults(faults: &str) -> String {
    format!("{BASE}{faults}")
}

#[track_caller]
fn check_err(faults: &str, expected: &str) {
    match parse(
        &with_faults(faults),
        Path::new("x.toml"),
        &Overrides::default(),
    ) {
        Ok(plan) => panic!("expected an error containing {expected:?}, got {plan:#?}"),
        Err(err) => {
            let msg = err.to_string();
            assert!(msg.contains(expected), "expected {expected:?} in:\n{msg}");
        }
    }
}

fn plan(faults: &str) -> ScenarioPlan {
    parse(
        &with_faults(faults),
        Path::new("x.toml"),
        &Overrides::default(),
    )
    .expect("valid")
}

#[test]
fn a_repeated_kill_expands_into_one_fault_per_repetition_in_scaled_time() {
    let plan = plan(
        r#"
[[faults]]
action = "llm_outage"
at = "150s"
duration = "10s"

[[faults]]
action = "kill"
at = "1m"
every = "1m"
times = 4
signal = "SIGKILL"
"#,
    );
    let at: Vec<_> = plan.faults.iter().map(|f| f.at.as_secs()).collect();
    // Kills at 1, 2, 3, 4 real minutes = 30, 60, 90, 120 s wall; the outage (75 s wall)
    // sorts between them.
    assert_eq!(at, [30, 60, 75, 90, 120]);
    let kills: Vec<_> = plan
        .faults
        .iter()
        .filter(|f| f.action.name() == "kill")
        .collect();
    for (k, fault) in (0u32..).zip(&kills) {
        assert_eq!(
            fault.repeat,
            Some(Repeat {
                entry: 1,
                index: k,
                times: 4,
                every: Duration::from_secs(30),
            })
        );
        assert_eq!(
            fault.action,
            FaultAction::Kill(KillFault {
                who: KillWho::Count(1),
                signal: KillSignal::Kill
            })
        );
    }
    assert_eq!(plan.faults[2].repeat, None, "the outage does not repeat");
}

#[test]
fn windowed_faults_repeat_too_and_the_last_window_may_end_with_the_run() {
    let plan = plan(
        r#"
[[faults]]
action = "network"
at = "8m"
duration = "30s"
fraction = 0.5
reset = true
every = "30s"
times = 4
"#,
    );
    assert_eq!(plan.faults.len(), 4);
    assert_eq!(plan.faults[3].end(), Duration::from_secs(300), "10m × 0.5");
}

#[test]
fn times_one_is_the_fault_itself_marked_as_a_series_of_one() {
    let plan = plan("[[faults]]\naction = \"kill\"\nat = \"1m\"\nevery = \"1h\"\ntimes = 1\n");
    assert_eq!(plan.faults.len(), 1);
    assert_eq!(
        plan.faults[0].repeat.map(|r| (r.index, r.times)),
        Some((0, 1))
    );
}

#[test]
fn broken_repetitions_name_the_field_and_what_is_allowed() {
    let kill = |extra: &str| format!("[[faults]]\naction = \"kill\"\nat = \"1m\"\n{extra}");
    let cases: &[(String, &str)] = &[
        (
            kill("every = \"1m\"\n"),
            "x.toml:14:9: faults[0].every: needs times = N as well (how many repetitions, N >= 1)",
        ),
        (
            kill("times = 3\n"),
            "x.toml:14:9: faults[0].times: needs every = \"<duration>\" as well",
        ),
        (
            kill("every = \"1m\"\ntimes = 0\n"),
            "faults[0].times: must be at least 1, found 0",
        ),
        (
            kill("every = \"0s\"\ntimes = 2\n"),
            "faults[0].every: must be longer than 0s",
        ),
        (
            kill("every = \"1m\"\ntimes = 10\n"),
            "x.toml:15:9: faults[0].times: 10 repetitions every 1m from 1m do not fit in the run (duration = 10m): at most 9 do",
        ),
        (
            kill("every = \"1m\"\ntimes = 4294967295\n"),
            "faults[0].times: 4294967295 repetitions every 1m from 1m do not fit in the run (duration = 10m): at most 9 do",
        ),
        (
            kill("every = \"1m\"\ntimes = 2\nrepeat = 3\n"),
            "faults[0].repeat: unknown field \"repeat\"",
        ),
        (
            "[[faults]]\naction = \"llm_outage\"\nat = \"1m\"\nduration = \"2m\"\nevery = \"1m\"\ntimes = 2\n"
                .to_string(),
            "faults[0].every: must be at least the fault's own window (2m) so repetitions do not overlap, found 1m",
        ),
        (
            "[[faults]]\naction = \"llm_outage\"\nat = \"1m\"\nduration = \"2m\"\nevery = \"3m\"\ntimes = 4\n"
                .to_string(),
            "faults[0].times: 4 repetitions every 3m from 1m do not fit in the run (duration = 10m, each lasting 2m): at most 3 do",
        ),
    ];
    for (faults, expected) in cases {
        check_err(faults, expected);
    }
}
