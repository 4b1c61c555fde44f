//! Every shipped scenario in `scenarios/` parses and validates, and is named after its file,
//! so a broken scenario fails CI here rather than in someone's pipeline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dropzero::scenario::{self, LoadPlan, RuntimeMode, TargetPlan};

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_file_loads_and_is_named_after_its_file() {
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenarios found");
    let mut failures = Vec::new();
    for file in &files {
        match scenario::load(file) {
            Ok(plan) => {
                let stem = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                if plan.name != stem {
                    failures.push(format!(
                        "{}: name {:?} should be {stem:?}",
                        file.display(),
                        plan.name
                    ));
                }
            }
            Err(err) => failures.push(err.to_string()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_baselines_are_what_the_readme_promises() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for (name, mode, open) in [
        ("steady", RuntimeMode::Resilient, false),
        ("steady-naive", RuntimeMode::Naive, false),
        ("open-steady", RuntimeMode::Resilient, true),
    ] {
        let plan =
            scenario::load(&dir.join(format!("{name}.toml"))).unwrap_or_else(|e| panic!("{e}"));
        let TargetPlan::Local(local) = &plan.target else {
            panic!("{name}: local target expected")
        };
        assert_eq!(local.mode, mode, "{name}");
        assert!(plan.faults.is_empty(), "{name}: a baseline has no faults");
        assert_eq!(matches!(plan.load, LoadPlan::Open(_)), open, "{name}");
        let wall = plan.duration;
        assert!(
            (Duration::from_secs(60)..=Duration::from_secs(90)).contains(&wall),
            "{name}: runs {wall:?} of wall time; keep baselines between 60 and 90 s"
        );
    }
}
