//! A real `dropzero runtime` process under SIGTERM: it refuses new sessions (503 +
//! Retry-After, `/readyz` 503), keeps streaming the in-flight one to its `done`, and exits 0.

use std::time::Duration;

use super::support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_sessions_and_refuses_new_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("profile.toml");
    std::fs::write(
        &profile,
        "[ttft]\nmedian = \"10ms\"\np99 = \"30ms\"\n\n[itl]\nmedian = \"15ms\"\np99 = \"30ms\"\n",
    )
    .expect("write profile");
    let mock = start(&[
        "mock-llm",
        "--port",
        "0",
        "--profile",
        profile.to_str().unwrap_or_default(),
    ]);
    let journal = format!("sqlite:{}", dir.path().join("journal.db").display());
    let mut runtime = start(&[
        "runtime",
        "--port",
        "0",
        "--mode",
        "resilient",
        "--journal",
        &journal,
        "--llm-url",
        &format!("http://{}", mock.addr),
        "--drain-timeout",
        "30s",
    ]);
    let base = format!("http://{}", runtime.addr);
    let http = reqwest::Client::new();

    let created: serde_json::Value = http
        .post(format!("{base}/v1/sessions"))
        .json(&serde_json::json!({"query": "drain test [dz tokens=120] [dz steps=2]"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("create body");
    let events_url = format!(
        "{base}{}",
        created["events_url"].as_str().expect("events_url")
    );
    let token = created["resume_token"]
        .as_str()
        .expect("resume_token")
        .to_string();
    let mut stream = http
        .get(&events_url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(stream.status(), 200);

    // Read until the first token, then SIGTERM the runtime mid-session.
    let mut body = String::new();
    while !body.contains("event: token") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("a chunk within 10 s")
            .expect("stream readable")
            .expect("stream still open before the first token");
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    let pid = nix::unistd::Pid::from_raw(runtime.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");

    // New sessions are refused while draining; readiness fails.
    let mut refused = None;
    for _ in 0..100 {
        let resp = http
            .post(format!("{base}/v1/sessions"))
            .json(&serde_json::json!({"query": "too late"}))
            .send()
            .await
            .expect("the draining runtime still answers");
        if resp.status() == 503 {
            refused = Some(resp);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("503 while draining");
    assert!(
        refused.headers().contains_key("retry-after"),
        "Retry-After on 503"
    );
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);

    // The in-flight session streams on to its terminal event.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), stream.chunk())
        .await
        .expect("stream keeps flowing")
        .expect("stream readable")
    {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(body.contains("event: done"), "done received:\n{body}");
    assert!(
        body.contains("\"status\":\"completed\""),
        "completed:\n{body}"
    );

    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..200 {
            if let Ok(Some(status)) = runtime.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    })
    .await
    .expect("join");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "runtime exits 0 after the drain"
    );
}
