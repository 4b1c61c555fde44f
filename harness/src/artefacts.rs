//! The files of a run directory, as the relative names `index.html` links to.
//!
//! Listed after every other artefact is written and the fleet has stopped, so the page links
//! what is really there (reports, `sessions.jsonl`, `logs/*.log`, the journal, a capacity
//! sweep's per-level directories). Not for deciding what a run writes.

use std::path::Path;

use anyhow::Context;

/// Deeper than a run directory's layout (`level-0004/logs/replica-r1.log`) ever goes.
const MAX_DEPTH: usize = 3;
/// A page with thousands of links helps nobody; the rest are still in the directory.
const MAX_NAMES: usize = 500;

/// Relative names (with `/`) of the files under `dir`, sorted, `index.html` excluded.
pub fn list(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    walk(dir, "", 0, &mut names)?;
    names.retain(|n| n != "index.html");
    names.sort();
    names.truncate(MAX_NAMES);
    Ok(names)
}

fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        if kind.is_dir() && depth + 1 < MAX_DEPTH {
            walk(&entry.path(), &format!("{prefix}{name}/"), depth + 1, out)?;
        } else if kind.is_file() {
            out.push(format!("{prefix}{name}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_and_subdirectories_but_not_the_page_itself() {
        let dir = std::env::temp_dir().join(format!("dropzero-artefacts-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).expect("mkdir");
        for f in ["report.json", "index.html", "logs/replica-r1.log"] {
            std::fs::write(dir.join(f), "x").expect("write");
        }
        let names = list(&dir).expect("lists");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(names, ["logs/replica-r1.log", "report.json"]);
    }
}
