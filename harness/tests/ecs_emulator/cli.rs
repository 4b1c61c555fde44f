//! The `dropzero ecs-emulator` subcommand as a user runs it.

use crate::support::{self, CLUSTER, SERVICE, within};

/// `dropzero ecs-emulator --scenario`: one JSON line with the addresses, the ECS API
/// answers the SDK, and SIGINT stops it with every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subcommand_serves_until_interrupted() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/steady.toml");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dropzero"))
        .arg("ecs-emulator")
        .arg("--scenario")
        .arg(&scenario)
        .arg("--cluster")
        .arg(CLUSTER)
        .arg("--out")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("dropzero runs");
    let stdout = child.stdout.take().expect("stdout");
    let line = within(tokio::io::BufReader::new(stdout).lines().next_line())
        .await
        .expect("stdout readable")
        .expect("one line");
    let info: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(
        (info["cluster"].as_str(), info["service"].as_str()),
        (Some(CLUSTER), Some(SERVICE))
    );
    assert!(
        info["router"]
            .as_str()
            .is_some_and(|r| r.starts_with("http://127.0.0.1:"))
    );
    let ecs = support::client(&format!(
        "http://{}",
        info["listening"].as_str().expect("address")
    ))
    .await;
    let out = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(SERVICE)
        .send()
        .await
        .expect("DescribeServices");
    let s = &out.services()[0];
    assert_eq!(
        (s.desired_count(), s.running_count()),
        (3, 3),
        "the scenario's replicas"
    );
    let tasks = ecs
        .list_tasks()
        .cluster(CLUSTER)
        .send()
        .await
        .expect("ListTasks");
    let pids: Vec<i32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == child.id()
        })
        .collect();
    assert_eq!(
        pids.len(),
        tasks.task_arns().len() + 1,
        "the replicas and the mock LLM are its children"
    );
    let parent =
        nix::unistd::Pid::from_raw(i32::try_from(child.id().expect("running")).expect("pid"));
    nix::sys::signal::kill(parent, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = within(child.wait()).await.expect("exit status");
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie_or_gone(pid),
            "child {pid} outlived it"
        );
    }
}

/// A pid that is gone or only a zombie waiting for its (dead) parent's reaper.
fn zombie_or_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                == Some("Z")
        })
        .unwrap_or(true)
}
