//! From byte spans to what a person needs: `file:line:column`, the field path
//! (`load.stages[0].users`), or the `--set` flag a value came from.
//!
//! The parsed document is a spanned [`DeTable`]. Values set on the command line are spliced
//! into it with spans *past the end of the file* (one region per override, see
//! [`Source::push_override`]), so one span tells both where and from which input a value
//! came. Deserialization errors carry a span and are mapped to a path ([`path_at`]);
//! validation errors carry a path and are mapped to a span ([`span_of`]).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Location, ScenarioError};
use super::file::{tag_key_of, variant_error};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `load.stages[0].users`; empty for the document itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// Parses the display form back (keys never contain `.` or `[` in our schema).
    pub fn parse(s: &str) -> Self {
        let mut segs = Vec::new();
        for piece in s.split('.').filter(|p| !p.is_empty()) {
            let mut parts = piece.split('[');
            if let Some(key) = parts.next().filter(|k| !k.is_empty()) {
                segs.push(Seg::Key(key.to_owned()));
            }
            for index in parts {
                if let Ok(i) = index.trim_end_matches(']').parse() {
                    segs.push(Seg::Index(i));
                }
            }
        }
        FieldPath(segs)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The scenario text, its file name and the command-line overrides spliced after it.
#[derive(Debug)]
pub struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    /// Start of each override's region in span space, with the flag as the user typed it.
    overrides: Vec<(usize, String)>,
    end: usize,
}

impl<'a> Source<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Source {
            file,
            text,
            overrides: Vec::new(),
            end: text.len() + 1,
        }
    }

    pub fn file(&self) -> PathBuf {
        self.file.to_path_buf()
    }

    /// Reserves a span region of `len` bytes for one override and returns its start.
    pub fn push_override(&mut self, flag: &str, len: usize) -> usize {
        let start = self.end;
        self.overrides.push((start, flag.to_owned()));
        self.end = start + len + 1;
        start
    }

    /// Where a span points: a line and column in the file, or an override.
    pub fn location(&self, span: &Range<usize>) -> Location {
        match self
            .overrides
            .iter()
            .rev()
            .find(|(start, _)| span.start >= *start)
        {
            Some((_, flag)) => Location::Override {
                file: self.file(),
                flag: flag.clone(),
            },
            None => {
                let (line, column) = line_col(self.text, span.start);
                Location::File {
                    file: self.file(),
                    line,
                    column,
                }
            }
        }
    }

    /// A serde/toml error from deserializing `doc`, with its location and field path.
    pub fn de_error(&self, doc: &Spanned<DeTable<'_>>, err: toml::de::Error) -> ScenarioError {
        let mut message = err.message().to_owned();
        // No span, or the whole document's: a missing top-level field.
        let (mut span, mut path) = match err.span() {
            Some(span) if span != doc.span() => (span.clone(), path_at(doc, &span)),
            Some(span) => (span, FieldPath::default()),
            None => (doc.span(), FieldPath::default()),
        };
        // Serde's internally tagged enums buffer the table and lose every inner position;
        // re-read such a table as its variant alone to find the real culprit.
        if let Some(tag_key) = tag_key_of(&path.to_string())
            && let Some(refined) = refine(doc, &path, tag_key)
        {
            match refined {
                Refined::Inner(inner) => {
                    span = inner.span().unwrap_or(span);
                    message = inner.message().to_owned();
                    path = path_at(doc, &span);
                }
                Refined::Tag(tag_span) => {
                    span = tag_span;
                    path.0.push(Seg::Key(tag_key.to_owned()));
                }
            }
        }
        ScenarioError::Invalid {
            at: self.location(&span),
            field: path.to_string(),
            message: tidy(&message),
        }
    }

    /// A validation error about the field at `path`.
    pub fn invalid(
        &self,
        doc: &Spanned<DeTable<'_>>,
        path: &str,
        message: String,
    ) -> ScenarioError {
        let span = span_of(doc, &FieldPath::parse(path));
        ScenarioError::Invalid {
            at: self.location(&span),
            field: path.to_owned(),
            message,
        }
    }
}

enum Refined {
    /// The variant's own error, with an exact span.
    Inner(toml::de::Error),
    /// The tag itself is wrong: point at its value.
    Tag(Range<usize>),
}

fn refine(doc: &Spanned<DeTable<'_>>, path: &FieldPath, tag_key: &str) -> Option<Refined> {
    let mut table = value_at(doc, path)?.clone();
    let DeValue::Table(t) = table.get_mut() else {
        return None;
    };
    let tag = t.remove(tag_key)?;
    let Some(name) = tag.get_ref().as_str() else {
        return Some(Refined::Tag(tag.span()));
    };
    match variant_error(name, table) {
        None => Some(Refined::Tag(tag.span())),
        Some(Ok(())) => None,
        Some(Err(inner)) => Some(Refined::Inner(inner)),
    }
}

/// Serde quotes with backticks; we quote names with double quotes, like the TOML itself,
/// and show numbers bare (`invalid type: integer 300`).
fn tidy(message: &str) -> String {
    let quote = if message.starts_with("invalid type") || message.starts_with("invalid value") {
        ""
    } else {
        "\""
    };
    message
        .replace('`', quote)
        .replace(", expected one of ", ", expected one of: ")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The deepest field whose key or value span contains `span`.
pub fn path_at(doc: &Spanned<DeTable<'_>>, span: &Range<usize>) -> FieldPath {
    fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
        outer.start <= inner.start && inner.end <= outer.end.max(outer.start + 1)
    }
    fn walk(value: &DeValue<'_>, here: &mut Vec<Seg>, span: &Range<usize>, best: &mut Vec<Seg>) {
        let mut visit = |seg: Seg, key: Option<Range<usize>>, v: &Spanned<DeValue<'_>>| {
            here.push(seg);
            let hit = key.is_some_and(|k| contains(&k, span)) || contains(&v.span(), span);
            if hit && here.len() > best.len() {
                *best = here.clone();
            }
            walk(v.get_ref(), here, span, best);
            here.pop();
        };
        match value {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    visit(Seg::Key(k.get_ref().to_string()), Some(k.span()), v);
                }
            }
            DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    visit(Seg::Index(i), None, v);
                }
            }
            _ => {}
        }
    }
    let mut best = Vec::new();
    let root = DeValue::Table(doc.get_ref().clone());
    walk(&root, &mut Vec::new(), span, &mut best);
    FieldPath(best)
}

/// The value at `path`, if every step exists.
fn value_at<'d, 'i>(
    doc: &'d Spanned<DeTable<'i>>,
    path: &FieldPath,
) -> Option<&'d Spanned<DeValue<'i>>> {
    let (first, rest) = path.0.split_first()?;
    let Seg::Key(k) = first else { return None };
    let mut value = doc.get_ref().get(k.as_str())?;
    for seg in rest {
        value = match (value.get_ref(), seg) {
            (DeValue::Table(t), Seg::Key(k)) => t.get(k.as_str())?,
            (DeValue::Array(a), Seg::Index(i)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The span of the value at `path`, or of its deepest ancestor that is written (a missing
/// field is reported at the table that should hold it).
pub fn span_of(doc: &Spanned<DeTable<'_>>, path: &FieldPath) -> Range<usize> {
    (0..=path.0.len())
        .rev()
        .find_map(|n| value_at(doc, &FieldPath(path.0[..n].to_vec())).map(|v| v.span()))
        .unwrap_or(0..0)
}
