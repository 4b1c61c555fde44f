//! The scenario loader on arbitrary text: it must answer a plan or an error that names the
//! file (`fuzz.toml:line:col: …`), never panic. Lines of the form `#set KEY=VALUE` (TOML
//! comments, so the document is unchanged) also become `--set` overrides, since overrides
//! are applied to the document before it is typed; `#seed N` and `#time-scale X` likewise.
#![no_main]

use std::path::Path;

use dropzero_scenario::{self as scenario, Overrides};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(toml) = std::str::from_utf8(data) else {
        return;
    };
    let mut overrides = Overrides::default();
    for line in toml.lines() {
        if let Some(set) = line.strip_prefix("#set ") {
            overrides.set.push(set.to_string());
        } else if let Some(seed) = line.strip_prefix("#seed ") {
            overrides.seed = seed.trim().parse().ok();
        } else if let Some(scale) = line.strip_prefix("#time-scale ") {
            overrides.time_scale = scale.trim().parse().ok();
        }
    }
    match scenario::parse(toml, Path::new("fuzz.toml"), &overrides) {
        Ok(plan) => {
            let _ = format!("{plan:?}");
        }
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.starts_with("fuzz.toml"),
                "error without the file: {message}"
            );
        }
    }
});
