//! Validation findings as data: a stable code, a message, a place in a file, optional help.
//! The same values render as human text, JSON, SARIF and GitHub annotations
//! (see `diagnostic_output.rs`).

use serde::Serialize;

use super::Code;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Must be fixed: the project does not load.
    Error,
    /// Probably a mistake; loading continues.
    Warning,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable code; serialised as its kebab-case name, e.g. `unknown-key`.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// File, relative to the project root, `/` separators.
    pub file: String,
    /// 1-based line (0 when the finding is about the file as a whole).
    pub line: usize,
    /// 1-based column in characters (0 when unknown).
    pub col: usize,
    /// The offending key or JSON pointer, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What would be valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Short text shown under the caret in human output (e.g. "did you mean `needs`?").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Width of the caret in characters (at least 1 when shown).
    #[serde(skip)]
    pub len: usize,
    /// The source line the finding points at, for human output.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// A new finding; add details with the `with_*` methods.
    pub fn new(
        severity: Severity,
        code: Code,
        file: &str,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            code,
            severity,
            message: message.into(),
            file: file.to_owned(),
            line,
            col,
            key: None,
            help: None,
            label: None,
            len: 1,
            source_line: None,
        }
    }

    /// A new error.
    pub fn error(
        code: Code,
        file: &str,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(Severity::Error, code, file, line, col, message)
    }

    /// A new warning.
    pub fn warning(
        code: Code,
        file: &str,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(Severity::Warning, code, file, line, col, message)
    }

    /// Set the offending key.
    pub fn with_key(mut self, key: impl Into<String>) -> Diagnostic {
        self.key = Some(key.into());
        self
    }

    /// Set the help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Set the caret label.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    /// Set the caret width.
    pub fn with_len(mut self, len: usize) -> Diagnostic {
        self.len = len.max(1);
        self
    }

    /// Attach the source line from the file's text (done by the loader for every finding).
    pub fn attach_source(&mut self, text: &str) {
        if self.source_line.is_none() && self.line > 0 {
            self.source_line = text.lines().nth(self.line - 1).map(str::to_owned);
        }
    }
}

/// Every finding of one validation, in file and line order once sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No findings at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of findings.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// At least one error (warnings alone do not fail).
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Add one finding.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Add all findings of another list.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Iterate over the findings.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Sort by file, line, column and code, and drop exact duplicates.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (&a.file, a.line, a.col, &a.code, &a.message)
                .cmp(&(&b.file, b.line, b.col, &b.code, &b.message))
        });
        self.0.dedup();
    }

    /// Number of distinct files with findings.
    pub fn file_count(&self) -> usize {
        let mut files: Vec<&str> = self.0.iter().map(|d| d.file.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        files.len()
    }
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render_human(false))
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
