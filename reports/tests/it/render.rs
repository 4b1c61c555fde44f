//! Markdown and JUnit renderings of the sample report.

use dropzero_reports::*;

use crate::sample;

fn markdown(report: &Report) -> String {
    let mut out = Vec::new();
    render_markdown(report, &mut out).expect("renders");
    String::from_utf8(out).expect("utf-8")
}

fn junit(report: &Report) -> String {
    let mut out = Vec::new();
    render_junit(report, &mut out).expect("renders");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn markdown_puts_the_verdict_and_gate_table_first() {
    let md = markdown(&sample::report());
    let mut lines = md.lines();
    assert_eq!(
        lines.next(),
        Some("# dropzero: rolling-deploy — ❌ 1 of 9 gates failed")
    );
    assert_eq!(lines.next(), Some(""));
    assert_eq!(
        lines.next(),
        Some("|  | Gate | Threshold | Observed | Detail |")
    );
    assert!(
        md.contains("| ❌ | `dropped_sessions` | 0 | 1 | sessions dropped: 1, at most 0 allowed |"),
        "{md}"
    );
    assert!(
        md.contains("| ✅ | `wasted_token_ratio` | 2.00% | 0.77% |"),
        "{md}"
    );
    let order: Vec<usize> = [
        "## Sessions",
        "### Drop reasons",
        "### Interruption reasons",
        "## Events",
        "## Tokens and cost",
        "## Latency",
        "## Faults",
        "## Timeline",
        "## Harness warnings",
    ]
    .iter()
    .map(|h| md.find(h).unwrap_or_else(|| panic!("{h} missing:\n{md}")))
    .collect();
    assert!(order.is_sorted(), "sections out of order:\n{md}");
    assert!(
        md.contains("| `deploy` | 18 s | 18.01 s | 41.70 s | 41 | 1 | 9216 / 12000 | $0.1382 |"),
        "{md}"
    );
    assert!(md.contains("- drops at 21 s (1)"), "{md}");
}

#[test]
fn markdown_sums_a_repeated_fault_in_one_row_and_lists_only_surviving_replicas() {
    let md = markdown(&sample::soak_report());
    assert!(
        md.contains("| `kill` ×100 | 60.01 s … 357.01 s | every 3 s | last at 358.20 s | 500 | 0 | 0 / 0 | $0.0000 | 100 of 100 ran |"),
        "{md}"
    );
    // The drain account's row says how, and sums what each stop reported.
    assert!(
        md.contains("| `kill` ×100 | 100 replicas | sigkill | - | 500 | 0 | 0 | 500 | 100 of 100 | 100 replacements started |"),
        "{md}"
    );
    // One row in each section, not a hundred.
    assert_eq!(md.matches("`kill` ×100").count(), 3, "{md}");
    assert!(
        md.contains("| `kill` ×100 takeover gap | 500 | 1100.0 |"),
        "{md}"
    );
    assert!(
        !md.contains("`r50`"),
        "stopped replicas are summed up, not listed:\n{md}"
    );
    assert!(
        md.contains("| `r104` | v2 | 357 s | running at the end |  | 38 MiB |"),
        "{md}"
    );
    assert!(
        md.contains("And 101 replicas stopped during the run (1 × exit 0, 100 × signal 9 (SIGKILL)), peak RSS up to 41 MiB"),
        "{md}"
    );
    assert!(
        md.contains("| ✅ | `replica_peak_rss_mb` | 512 MiB | 41 MiB | largest replica peak RSS 41 MiB over 102 replicas, within the 512 MiB limit |"),
        "{md}"
    );
    // The sample alone is about 140 lines; a hundred kills add a handful, not hundreds.
    assert!(
        md.lines().count() < 170,
        "{} lines:\n{md}",
        md.lines().count()
    );
}

#[test]
fn markdown_of_a_passing_empty_run_says_so() {
    let mut report = Report::default();
    report.scenario.name = "a|b<c>".into();
    report.gates = evaluate(&[], &report);
    let md = markdown(&report);
    assert!(
        md.starts_with("# dropzero: a\\|b&lt;c&gt; — ❌ 1 of 4 gates failed"),
        "{md}"
    );
    assert!(md.contains("No faults were injected."));
    assert!(md.contains("No timeline was recorded."));
    assert!(!md.contains("## Harness warnings"));
}

#[test]
fn junit_has_one_testcase_per_gate_and_counts_failures() {
    let report = sample::report();
    let xml = junit(&report);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(suite.attribute("name"), Some("dropzero.rolling-deploy"));
    assert_eq!(suite.attribute("tests"), Some("9"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), report.gates.len());
    let failed: Vec<_> = cases
        .iter()
        .filter_map(|c| c.children().find(|n| n.has_tag_name("failure")))
        .map(|f| f.attribute("message").expect("message"))
        .collect();
    assert_eq!(failed, ["sessions dropped: 1, at most 0 allowed"]);
}

#[test]
fn junit_escapes_markup_in_every_name() {
    let nasty = r#"<a b="c" d='e'>&amp;</a>"#;
    let mut report = sample::report();
    report.scenario.name = nasty.into();
    report.run_id = nasty.into();
    report.errors = vec![nasty.into()];
    for g in &mut report.gates {
        g.name = format!("{}{nasty}", g.name);
        g.message = nasty.into();
        g.passed = false;
    }
    let xml = junit(&report);
    let doc = roxmltree::Document::parse(&xml).expect("still well-formed");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(
        suite.attribute("name"),
        Some(format!("dropzero.{nasty}").as_str())
    );
    assert_eq!(suite.attribute("failures"), Some("9"));
    for case in suite.children().filter(|n| n.has_tag_name("testcase")) {
        assert!(case.attribute("name").expect("name").ends_with(nasty));
        let failure = case
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("failed");
        assert_eq!(failure.attribute("message"), Some(nasty));
    }
    let err = doc
        .descendants()
        .find(|n| n.has_tag_name("system-err"))
        .and_then(|n| n.text());
    assert_eq!(err, Some(nasty));
}

#[test]
fn all_passed_follows_the_gates() {
    let mut report = sample::report();
    assert!(!all_passed(&report));
    report.sessions.dropped = 0;
    report.gates = evaluate(&[GateSpec::DroppedSessions { max: 0 }], &report);
    assert!(all_passed(&report));
}

#[test]
fn markdown_has_the_drain_account_and_per_fault_takeovers() {
    let md = markdown(&sample::report());
    assert!(md.contains("### Drain account"), "{md}");
    assert!(
        md.contains("| 1 `deploy` | `r1` (v1) | deploy | 4.20 s | 12 | 9 | 3 | 0 | no | exit 0 |"),
        "{md}"
    );
    assert!(md.contains("1 `deploy` takeover gap"), "{md}");
    assert!(md.contains("| `r1` | v1 | 0 s | 30 s | exit 0 |"), "{md}");
}

#[test]
fn markdown_shows_the_autoscaler_reactions_in_wall_and_real_time() {
    let md = markdown(&sample::report());
    assert!(md.contains("## Autoscaling"), "{md}");
    assert!(md.contains("### Scale-out reactions"), "{md}");
    assert!(md.contains("| `scale_out` | 3 → 5 |"), "{md}");
}

#[test]
fn markdown_shows_goose_users_and_requests_with_status_codes() {
    let md = markdown(&sample::report());
    assert!(
        md.contains("40 users at most, 40 launched, 118 sessions. Goose's own report: [goose.html](goose.html)."),
        "{md}"
    );
    assert!(
        md.contains("| POST create session | 118 | 2 | 2.4 | 13.7 | 26.1 | 201: 118, 503: 2 |"),
        "{md}"
    );
    let mut open = sample::report();
    open.load.goose = None;
    assert!(
        !markdown(&open).contains("goose"),
        "no section for the open model"
    );
}
