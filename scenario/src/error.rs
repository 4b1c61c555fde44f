//! `ScenarioError`: every way loading a scenario can fail, each naming the file, the line
//! and column (or the command-line flag the value came from), the field and what is allowed:
//!
//! ```text
//! scenarios/x.toml:7:8: target.mode: unknown variant "resilliant", expected "resilient" or "naive"
//! scenarios/x.toml: --set target.replicas=0: target.replicas: must be at least 1, found 0
//! ```

use std::fmt;
use std::path::PathBuf;

/// Where a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A position in the scenario file; line and column are 1-based, columns count characters.
    File {
        file: PathBuf,
        line: usize,
        column: usize,
    },
    /// A value given on the command line (`--set k=v`, `--seed N`, `--time-scale X`).
    Override { file: PathBuf, flag: String },
}

impl Location {
    /// The line in the scenario file, when the problem is in the file.
    pub fn line(&self) -> Option<usize> {
        match self {
            Location::File { line, .. } => Some(*line),
            Location::Override { .. } => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { file, line, column } => {
                write!(f, "{}:{line}:{column}", file.display())
            }
            Location::Override { file, flag } => write!(f, "{}: {flag}", file.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("reading {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("{at}: invalid TOML: {message}")]
    Syntax { at: Location, message: String },
    /// Valid TOML, but a field is unknown, missing, of the wrong type or out of range.
    /// `field` is a path such as `load.stages[0].users` (empty for the document itself).
    #[error("{at}: {}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Invalid {
        at: Location,
        field: String,
        message: String,
    },
    /// A command-line override that cannot be applied at all (no `=`, a path through a
    /// value that is not a table, an index out of range).
    #[error("{}: {flag}: {message}", file.display())]
    Override {
        file: PathBuf,
        flag: String,
        message: String,
    },
}
