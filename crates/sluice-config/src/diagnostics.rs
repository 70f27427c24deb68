//! The problems found in a config file, each with the file, the JSON path and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// JSON path of the offending value, like `endpoints[3].backend[0].encoding`; `""` for the root
    /// (and for problems with the file itself).
    pub path: String,
    /// What is wrong, and what was expected.
    pub message: String,
    /// Line and column, for malformed JSON (where there is no JSON path yet).
    pub position: Option<Position>,
}

/// A place in the text of a file, both numbers starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column (in characters), from 1.
    pub column: usize,
}

impl Diagnostic {
    /// A problem at a JSON path.
    pub fn new(file: &Path, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            path: path.into(),
            message: message.into(),
            position: None,
        }
    }

    /// A problem at a place in the text (malformed JSON).
    pub fn at_position(file: &Path, position: Position, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            path: String::new(),
            message: message.into(),
            position: Some(position),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `<file>: <path>: <message>`, `<file>: <message>` at the root, or
    /// `<file>:<line>:<column>: <message>` for malformed JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match (self.position, self.path.as_str()) {
            (Some(Position { line, column }), _) => {
                write!(f, "{file}:{line}:{column}: {}", self.message)
            }
            (None, "") => write!(f, "{file}: {}", self.message),
            (None, path) => write!(f, "{file}: {path}: {}", self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in a config file, in the order they appear. Never empty when returned as an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics {
    /// The problems.
    pub errors: Vec<Diagnostic>,
}

impl Diagnostics {
    /// How many problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// No problem at all.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.errors.iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self {
            errors: vec![diagnostic],
        }
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for Diagnostics {
    /// One line per problem, no trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let file = Path::new("conf/krakend.json");
        let root = Diagnostic::new(file, "", "expected an object, found an array");
        assert_eq!(
            root.to_string(),
            "conf/krakend.json: expected an object, found an array"
        );
        let nested = Diagnostic::new(file, "endpoints[0].method", "bad");
        assert_eq!(
            nested.to_string(),
            "conf/krakend.json: endpoints[0].method: bad"
        );
        let syntax =
            Diagnostic::at_position(file, Position { line: 3, column: 7 }, "malformed JSON");
        assert_eq!(syntax.to_string(), "conf/krakend.json:3:7: malformed JSON");
        let all = Diagnostics {
            errors: vec![root, nested],
        };
        assert_eq!(all.to_string().lines().count(), 2);
        assert!(!all.to_string().ends_with('\n'));
    }
}
