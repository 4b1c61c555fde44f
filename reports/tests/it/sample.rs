//! A realistic report of a rolling deploy against three resilient replicas, filled the way the
//! harness fills it, with gates evaluated by the crate.

use std::time::Duration;

use dropzero_reports::*;

pub fn report() -> Report {
    let mut r = Report {
        schema_version: SchemaVersion,
        tool_version: "0.1.0".into(),
        run_id: "20250131T120000Z-7".into(),
        started_at: "2025-01-31T12:00:00Z".into(),
        finished_at: "2025-01-31T12:01:00.250Z".into(),
        scenario: ScenarioInfo {
            name: "rolling-deploy".into(),
            description: "Replace every replica while 200 long sessions stream".into(),
            seed: 7,
            time_scale: 0.05,
            file: "scenarios/rolling-deploy.toml".into(),
        },
        target: TargetInfo {
            kind: "local".into(),
            mode: Some("resilient".into()),
            replicas: 3,
            journal: Some("sqlite".into()),
        },
        load: LoadInfo {
            model: "closed".into(),
            peak_users: Some(200),
            peak_rate_per_s: None,
            duration_s: 60.0,
            late_starts: 0,
            goose: Some(GooseInfo {
                maximum_users: 40,
                total_users: 40,
                sessions: 118,
                html_report: Some("goose.html".into()),
                requests: vec![GooseRequestRow {
                    method: "POST".into(),
                    name: "create session".into(),
                    success: 118,
                    fail: 2,
                    mean_ms: 3.1,
                    p50_ms: 2.4,
                    p99_ms: 13.7,
                    max_ms: 26.1,
                    status_codes: [("201".to_string(), 118), ("503".to_string(), 2)]
                        .into_iter()
                        .collect(),
                }],
            }),
        },
        gates: Vec::new(),
        sessions: SessionCounts {
            started: 412,
            completed: 405,
            resumed: 37,
            dropped: 1,
            failed: 2,
            cancelled: 3,
            budget_exceeded: 1,
            not_started: 0,
            interrupted_streams: 41,
        },
        drop_reasons: vec![ReasonCount {
            reason: "retries_exhausted".into(),
            count: 1,
        }],
        interruption_reasons: vec![
            ReasonCount {
                reason: "replica_draining".into(),
                count: 38,
            },
            ReasonCount {
                reason: "connection_reset".into(),
                count: 3,
            },
        ],
        events: EventCounts {
            received: 1_204_331,
            lost: 0,
            duplicated: 0,
            content_mismatches: 0,
        },
        tokens: TokenTotals {
            billed_input: 2_061_000,
            billed_output: 1_190_220,
            delivered: 1_181_004,
            wasted: 9_216,
            wasted_input: 12_000,
            wasted_ratio: TokenTotals::ratio(9_216, 1_190_220),
            cost_usd: 24.036_3,
            wasted_cost_usd: 0.138_24,
            budget_overshoot_max_tokens: Some(310),
            budget_overshoot_max_usd: Some(0.004),
            llm_requests: Some(2_400),
            llm_errors: Some(12),
            llm_cut_responses: Some(3),
        },
        latency: Latencies {
            ttft_ms: summary(412, 640.0, 1_900.0),
            itl_ms: summary(1_200_000, 33.0, 95.0),
            resume_ms: summary(40, 120.0, 480.0),
            takeover_ms: summary(3, 600.0, 900.0),
            session_s: summary(405, 9.0, 29.5),
            create_ms: summary(412, 4.0, 18.0),
        },
        faults: vec![FaultRecord {
            action: "deploy".into(),
            at_s: 18.0,
            started_s: 18.01,
            ended_s: Some(41.7),
            params: serde_json::json!({ "minimum_healthy_percent": 100, "maximum_percent": 200 }),
            interrupted: 41,
            dropped: 1,
            wasted_tokens: 9_216,
            wasted_input_tokens: 12_000,
            wasted_cost_usd: 0.138_24,
            notes: vec!["replica r1 drained in 4.2 s".into()],
            replicas: vec!["r1".into()],
            started_replicas: vec!["r4".into()],
            stops: vec![ReplicaStop {
                replica: "r1".into(),
                version: "v1".into(),
                how: "deploy".into(),
                deregistration_wait_s: Some(4.2),
                in_flight_at_signal: Some(12),
                finished_during_drain: Some(9),
                handed_off: Some(3),
                severed: Some(0),
                sigkill: false,
                exit: "exit 0".into(),
                stop_s: 1.5,
            }],
            resume_ms: Some(summary(41, 150.0, 900.0)),
            takeover_ms: Some(summary(3, 600.0, 900.0)),
            repeat: None,
        }],
        autoscaling: Some(AutoscalingReport {
            metric: "active_sessions".into(),
            target_value: 20.0,
            min: 2,
            max: 6,
            datapoint_s: 4.5,
            decisions: vec![ScalingDecision {
                t_s: 33.0,
                action: "scale_out".into(),
                from: 3,
                to: 5,
                metric: 31.0,
                reason: "3 datapoints above target 20".into(),
            }],
            reactions: vec![ScaleReaction {
                breach_s: 19.5,
                decision_s: 33.0,
                ready_s: Some(34.2),
                slo_recovered_s: Some(35.0),
                seconds_over_slo_during_lag: 4,
            }],
            scale_ins: 2,
            scale_ins_blocked_by_protection: 1,
            scale_in_cut_sessions: 0,
            task_seconds_over: 12.5,
            task_seconds_under: 30.0,
        }),
        replicas: vec![ReplicaRecord {
            id: "r1".into(),
            version: "v1".into(),
            started_s: 0.0,
            stopped_s: Some(30.0),
            exit: Some("exit 0".into()),
            peak_rss_mb: Some(41),
        }],
        replica_peak_rss_mb: Some(41),
        survivor_peak_rss_mb: None,
        fault_series: Vec::new(),
        ecs: Some(EcsReport {
            cluster: "dropzero".into(),
            service: "agent-runtime".into(),
            region: "us-east-1".into(),
            service_arn: "arn:aws:ecs:us-east-1:123456789012:service/dropzero/agent-runtime".into(),
            endpoint: "emulator".into(),
            deployments: vec![EcsDeployment {
                id: "ecs-svc/1234567890123456789".into(),
                status: "PRIMARY".into(),
                task_definition: "agent-runtime:2".into(),
                rollout_state: Some("COMPLETED".into()),
                rollout_state_reason: Some(
                    "ECS deployment ecs-svc/1234567890123456789 completed.".into(),
                ),
                failed_tasks: 0,
                created_s: Some(20.0),
                updated_s: Some(41.0),
            }],
            tasks: vec![EcsTask {
                task_id: "0123456789abcdef0123456789abcdef".into(),
                task_definition: "agent-runtime:1".into(),
                last_status: "STOPPED".into(),
                started_s: Some(0.0),
                stopping_s: Some(30.0),
                stopped_s: Some(31.5),
                stop_code: Some("ServiceSchedulerInitiated".into()),
                stopped_reason: Some(
                    "Scaling activity initiated by (deployment ecs-svc/1234567890123456789)".into(),
                ),
            }],
            events: vec![EcsEvent {
                at_s: Some(41.0),
                message: "(service agent-runtime) has reached a steady state.".into(),
            }],
            poll_errors: 0,
        }),
        halted: None,
        timeline: (1..=60u32)
            .map(|t| {
                let deploying = (19..=41).contains(&t);
                let active = u64::from((t * 4).min(200));
                TimelinePoint {
                    t_s: f64::from(t),
                    active_sessions: active,
                    tokens_per_s: 30.0 * active as f64,
                    replicas_ready: if deploying { 2 } else { 3 },
                    replicas_draining: u32::from(deploying),
                    interruptions: if t == 20 { 41 } else { 0 },
                    drops: u64::from(t == 21),
                    completed: if t > 10 { 8 } else { 0 },
                    resume_p99_ms: (t == 21).then_some(850.0),
                    resumes: if t == 21 { 40 } else { 0 },
                    // The deploy replaces v1 by v2 one task at a time.
                    versions: match t {
                        ..19 => [("v1".to_string(), 3)].into(),
                        19..=30 => [("v1".to_string(), 2), ("v2".to_string(), 2)].into(),
                        31..=41 => [("v1".to_string(), 1), ("v2".to_string(), 3)].into(),
                        _ => [("v2".to_string(), 3)].into(),
                    },
                    ..TimelinePoint::default()
                }
            })
            .collect(),
        errors: vec!["scrape of r2 /metrics failed once: connection refused".into()],
    };
    let specs = [
        GateSpec::DroppedSessions { max: 0 },
        GateSpec::TtftP99 {
            max: Duration::from_secs(5),
        },
        GateSpec::ItlP99 {
            max: Duration::from_millis(250),
        },
        GateSpec::WastedTokenRatio {
            max: Fraction::new(0.02).expect("valid"),
        },
        GateSpec::ErrorRate {
            max: Fraction::new(0.01).expect("valid"),
        },
    ];
    r.gates = evaluate(&specs, &r);
    r
}

/// The sample plus a soak: a kill repeated 100 times every 3 s (`every`, `times`), each with
/// its record and replacement, summed in one series, and a memory gate.
pub fn soak_report() -> Report {
    let mut r = report();
    for k in 0..100u32 {
        let at = 60.0 + 3.0 * f64::from(k);
        let victim = format!("r{}", k + 4);
        r.faults.push(FaultRecord {
            action: "kill".into(),
            at_s: at,
            started_s: at + 0.01,
            ended_s: Some(at + 0.6),
            params: serde_json::json!({ "who": { "count": 1 }, "signal": { "signal": "SIGKILL" } }),
            interrupted: 5,
            replicas: vec![victim.clone()],
            started_replicas: vec![format!("r{}", k + 104)],
            stops: vec![ReplicaStop {
                replica: victim,
                version: "v2".into(),
                how: "sigkill".into(),
                in_flight_at_signal: Some(5),
                severed: Some(5),
                sigkill: true,
                exit: "signal 9 (SIGKILL)".into(),
                stop_s: 0.01,
                ..ReplicaStop::default()
            }],
            takeover_ms: Some(summary(5, 1_100.0, 1_900.0)),
            repeat: Some(FaultRepeat {
                entry: 1,
                index: k,
                times: 100,
                every_s: 3.0,
            }),
            ..FaultRecord::default()
        });
        r.replicas.push(ReplicaRecord {
            id: format!("r{}", k + 4),
            version: "v2".into(),
            started_s: at - 3.0,
            stopped_s: Some(at + 0.01),
            exit: Some("signal 9 (SIGKILL)".into()),
            peak_rss_mb: Some(30 + u64::from(k % 7)),
        });
    }
    r.replicas.push(ReplicaRecord {
        id: "r104".into(),
        version: "v2".into(),
        started_s: 357.0,
        stopped_s: None,
        exit: None,
        peak_rss_mb: Some(38),
    });
    r.fault_series = vec![FaultSeries {
        entry: 1,
        action: "kill".into(),
        times: 100,
        every_s: 3.0,
        ran: 100,
        incomplete: 0,
        first_at_s: 60.01,
        last_at_s: 357.01,
        interrupted: 500,
        stopped_replicas: 100,
        started_replicas: 100,
        in_flight_at_signal: 500,
        severed: 500,
        sigkilled: 100,
        how: vec!["sigkill".into()],
        last_ended_s: Some(358.2),
        takeover_ms: Some(summary(500, 1_100.0, 1_900.0)),
        ..FaultSeries::default()
    }];
    r.replica_peak_rss_mb = Some(41);
    r.survivor_peak_rss_mb = Some(38);
    r.gates = evaluate(
        &[
            GateSpec::DroppedSessions { max: 1 },
            GateSpec::ReplicaPeakRssMb { max_mb: 512 },
        ],
        &r,
    );
    r
}

fn summary(count: u64, p50: f64, p99: f64) -> LatencySummary {
    LatencySummary {
        count,
        p50,
        p90: (p50 + p99) / 2.0,
        p99,
        max: p99 * 1.4,
        mean: p50 * 1.1,
        spectrum: [
            (10.0, p50 * 0.4),
            (50.0, p50),
            (75.0, (p50 + p99) / 3.0),
            (90.0, (p50 + p99) / 2.0),
            (99.0, p99),
            (99.9, p99 * 1.2),
            (100.0, p99 * 1.4),
        ]
        .into_iter()
        .filter(|_| count > 0)
        .map(|(percentile, value)| SpectrumPoint { percentile, value })
        .collect(),
    }
}
