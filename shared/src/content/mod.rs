//! The program content and the professional-help resources.
//!
//! Both are data files under `shared/content/`, compiled into the binaries with
//! `include_str!` so they run from any directory and from the container image. They
//! are parsed and checked once, on first use of [`catalog`]; the API calls it at
//! startup and refuses to start on an error, so a broken file never surfaces
//! mid-request.

mod catalog;
mod program;
mod resources;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;

pub use catalog::{Catalog, ContentSource, catalog};
pub use program::{Exercise, ExerciseKind, ExerciseMode, Intensity, Program, ProgramMode, Step};
pub use resources::{CountryResources, GeneralResources, Resource, ResourceKind, Resources};
pub use validate::{validate, validate_resources};

/// One thing wrong with a content file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentProblem {
    /// Where: the file, and the step, exercise or resource entry when known.
    pub at: String,
    pub message: String,
}

impl ContentProblem {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self { at: at.into(), message: message.into() }
    }
}

impl fmt::Display for ContentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Content that does not parse or does not pass the checks. Every problem found is
/// listed, so whoever edits a file fixes them all in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ContentError {
    pub problems: Vec<ContentProblem>,
}

impl ContentError {
    pub(crate) fn from_problems(problems: Vec<ContentProblem>) -> Result<(), Self> {
        if problems.is_empty() { Ok(()) } else { Err(Self { problems }) }
    }
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(f, "invalid content ({count} problem{}):", if count == 1 { "" } else { "s" })?;
        for problem in &self.problems {
            // Parse errors span several lines (toml shows the offending one).
            let problem = problem.to_string().replace('\n', "\n    ");
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}
