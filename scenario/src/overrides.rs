//! Command-line overrides (`--seed N`, `--time-scale X`, `--set key=value`), applied to the
//! parsed document *before* typed deserialization, so an overridden value goes through
//! exactly the same checks as one written in the file, and an error about it names the flag.
//!
//! Keys are dotted paths into the document: `target.replicas`, `load.stages.0.users`
//! (numbers index arrays). Missing tables on the way are created, so `autoscaling.max=4`
//! works on a file without `[autoscaling]`; a key the schema does not know is then rejected
//! like a typo in the file. Values are TOML literals (`20`, `0.5`, `true`, `"3m"`,
//! `{ median = "1s", p99 = "4s" }`); anything that does not parse as one is a string, so
//! `--set target.mode=naive` and `--set duration=5m` need no quotes.

use std::borrow::Cow;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::error::ScenarioError;
use super::locate::Source;

/// Values from the command line that replace values in the scenario file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--seed N`: replaces `seed`.
    pub seed: Option<u64>,
    /// `--time-scale X`: replaces `time_scale`.
    pub time_scale: Option<f64>,
    /// `--set key=value`, repeatable, applied in order after `seed` and `time_scale`.
    pub set: Vec<String>,
}

/// One override as `(flag as typed, key, value text)`.
pub(super) struct Assignment {
    flag: String,
    key: String,
    value: String,
}

impl Overrides {
    /// The overrides as assignments, each remembering the flag the user typed.
    pub(super) fn assignments(
        &self,
        source: &Source<'_>,
    ) -> Result<Vec<Assignment>, ScenarioError> {
        let mut out = Vec::new();
        if let Some(seed) = self.seed {
            out.push(Assignment {
                flag: format!("--seed {seed}"),
                key: "seed".into(),
                value: seed.to_string(),
            });
        }
        if let Some(scale) = self.time_scale {
            out.push(Assignment {
                flag: format!("--time-scale {scale}"),
                key: "time_scale".into(),
                value: format!("{scale:?}"),
            });
        }
        for set in &self.set {
            let flag = format!("--set {set}");
            let bad = |message: &str| ScenarioError::Override {
                file: source.file(),
                flag: flag.clone(),
                message: message.to_owned(),
            };
            let (key, value) = set
                .split_once('=')
                .ok_or_else(|| bad("expected key=value"))?;
            let key = key.trim();
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(bad("expected a dotted key such as target.replicas"));
            }
            out.push(Assignment {
                flag,
                key: key.to_owned(),
                value: value.trim().to_owned(),
            });
        }
        Ok(out)
    }
}

/// Splices every assignment into `doc`, giving each its own span region in `source`.
pub(super) fn apply<'a>(
    doc: &mut Spanned<DeTable<'a>>,
    assignments: &'a [Assignment],
    source: &mut Source<'_>,
) -> Result<(), ScenarioError> {
    for a in assignments {
        let start = source.push_override(&a.flag, a.key.len() + 1 + a.value.len());
        let value_start = start + a.key.len() + 1;
        let value = match DeValue::parse(&a.value) {
            Ok(v) => shift(v, value_start),
            Err(_) => Spanned::new(
                value_start..value_start + a.value.len(),
                DeValue::String(Cow::Borrowed(&a.value)),
            ),
        };
        let mut segs = Vec::new();
        let mut offset = start;
        for seg in a.key.split('.') {
            segs.push((seg, offset..offset + seg.len()));
            offset += seg.len() + 1;
        }
        set_in(doc.get_mut(), &segs, 0, value).map_err(|message| ScenarioError::Override {
            file: source.file(),
            flag: a.flag.clone(),
            message,
        })?;
    }
    Ok(())
}

/// One key segment and its span in the override's region.
type Seg<'a> = (&'a str, Range<usize>);

/// Sets `segs[depth..]` below `table` to `value`; `segs[..depth]` is the path walked so far.
/// Tables created on the way get the span of their key segment.
fn set_in<'a>(
    table: &mut DeTable<'a>,
    segs: &[Seg<'a>],
    depth: usize,
    value: Spanned<DeValue<'a>>,
) -> Result<(), String> {
    let (name, span) = &segs[depth];
    let key = Spanned::new(span.clone(), Cow::Borrowed(*name));
    if depth + 1 == segs.len() {
        table.insert(key, value);
        return Ok(());
    }
    let empty = Spanned::new(span.clone(), DeValue::Table(DeTable::new()));
    let child = table.entry(key).or_insert(empty);
    descend(child.get_mut(), segs, depth + 1, value)
}

/// Continues the walk inside `node`, which sits at `segs[..depth]`.
fn descend<'a>(
    node: &mut DeValue<'a>,
    segs: &[Seg<'a>],
    depth: usize,
    value: Spanned<DeValue<'a>>,
) -> Result<(), String> {
    let here: Vec<&str> = segs[..depth].iter().map(|(name, _)| *name).collect();
    let here = here.join(".");
    match node {
        DeValue::Table(t) => set_in(t, segs, depth, value),
        DeValue::Array(items) => {
            let len = items.len();
            let index: usize = segs[depth]
                .0
                .parse()
                .map_err(|_| format!("{here} is an array: index it with a number (0..{len})"))?;
            let slot = items.get_mut(index).ok_or_else(|| {
                format!("{here} has {len} entries, so index {index} does not exist")
            })?;
            if depth + 1 == segs.len() {
                *slot = value;
                Ok(())
            } else {
                descend(slot.get_mut(), segs, depth + 1, value)
            }
        }
        scalar => Err(format!("{here} is a {}, not a table", scalar.type_str())),
    }
}

/// Moves every span of a value parsed from an override into that override's region.
fn shift<'a>(value: Spanned<DeValue<'a>>, by: usize) -> Spanned<DeValue<'a>> {
    let span = value.span();
    let moved = span.start + by..span.end + by;
    let inner = match value.into_inner() {
        DeValue::Table(t) => DeValue::Table(
            t.into_iter()
                .map(|(k, v)| {
                    let ks = k.span();
                    (
                        Spanned::new(ks.start + by..ks.end + by, k.into_inner()),
                        shift(v, by),
                    )
                })
                .collect(),
        ),
        DeValue::Array(a) => {
            let mut out = DeArray::new();
            for v in a {
                out.push(shift(v, by));
            }
            DeValue::Array(out)
        }
        scalar => scalar,
    };
    Spanned::new(moved, inner)
}
