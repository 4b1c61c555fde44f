//! `dropzero compare BASE CANDIDATE`: read two reports, refuse runs that are not
//! comparable (unless forced), compare them with [`dropzero_reports::compare`] and write
//! `compare.md`, `compare.json` and `compare.html`.
//!
//! The rules (directions, noise, what a regression is) live in the reports crate; this
//! module only finds the files. Exit codes are picked by `cli.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use dropzero_reports as r;

pub struct CompareOptions {
    pub base: PathBuf,
    pub candidate: PathBuf,
    /// Default: `<candidate run directory>/compare-vs-<base run id>/`.
    pub out: Option<PathBuf>,
    pub force: bool,
    pub noise_pct: Option<f64>,
}

pub struct CompareOutcome {
    pub comparison: r::Comparison,
    pub dir: PathBuf,
}

/// A run directory or a report.json path → the report.json path.
fn report_path(arg: &Path) -> PathBuf {
    if arg.is_dir() {
        arg.join("report.json")
    } else {
        arg.to_path_buf()
    }
}

fn load(arg: &Path) -> anyhow::Result<(r::Report, PathBuf)> {
    let path = report_path(arg);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let report = r::parse_json(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok((report, path))
}

/// A run id as a directory-name component: anything but `[A-Za-z0-9._-]` becomes `_`.
fn safe(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
}

pub fn run(opts: &CompareOptions) -> anyhow::Result<CompareOutcome> {
    if let Some(n) = opts.noise_pct {
        anyhow::ensure!(
            n.is_finite() && n >= 0.0,
            "--noise {n}: expected a percentage, 0 or more (e.g. 10)"
        );
    }
    let (base, base_path) = load(&opts.base)?;
    let (candidate, cand_path) = load(&opts.candidate)?;
    let why = r::mismatches(&base, &candidate);
    if !why.is_empty() && !opts.force {
        anyhow::bail!(
            "{} and {} are not comparable: {}. Compare runs of the same scenario, target kind \
             and seed, or pass --force to compare them anyway",
            base_path.display(),
            cand_path.display(),
            why.join("; ")
        );
    }
    let mut comparison = r::compare(&base, &candidate, opts.noise_pct);
    comparison.base.source = base_path.display().to_string();
    comparison.candidate.source = cand_path.display().to_string();

    let dir = opts.out.clone().unwrap_or_else(|| {
        cand_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("compare-vs-{}", safe(&base.run_id)))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let open = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = dir.join(name);
        let f =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(std::io::BufWriter::new(f))
    };
    let mut md = open("compare.md")?;
    r::render_compare_markdown(&comparison, &mut md)?;
    md.flush().context("writing compare.md")?;
    let mut json = open("compare.json")?;
    r::render_compare_json(&comparison, &mut json)?;
    json.flush().context("writing compare.json")?;
    let mut html = open("compare.html")?;
    r::render_compare_html(&comparison, &base, &candidate, &mut html)?;
    html.flush().context("writing compare.html")?;
    Ok(CompareOutcome { comparison, dir })
}
