//! Every diagnostic code, in one table: its stable kebab-case name, a one-line summary and a
//! longer explanation (`codes/<name>.md`: what it means, a wrong and a right example, how to
//! fix). The table feeds `dsrctl explain`, the SARIF rules and the `code` of every
//! [`Diagnostic`](super::Diagnostic); a name once published never changes meaning.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::context::nearest_names;

macro_rules! codes {
    ($( $variant:ident = $name:literal : $summary:literal, )+) => {
        /// A diagnostic code. Serialises as its kebab-case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( #[doc = $summary] $variant, )+
        }

        impl Code {
            /// Every code, in the order of the table.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )+ ];

            /// The stable kebab-case name, e.g. `unknown-key`.
            pub const fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $name, )+ }
            }

            /// What the code means, in one line.
            pub const fn summary(self) -> &'static str {
                match self { $( Code::$variant => $summary, )+ }
            }

            /// The long explanation: meaning, a wrong and a right example, the fix.
            pub const fn explanation(self) -> &'static str {
                match self { $( Code::$variant => include_str!(concat!("codes/", $name, ".md")), )+ }
            }
        }
    };
}

codes! {
    // Reading a file and its YAML.
    ReadError = "read-error": "a file or directory could not be read",
    FileTooLarge = "file-too-large": "a file is larger than the 1 MiB limit",
    InvalidUtf8 = "invalid-utf8": "a file is not UTF-8 text",
    EmptyFile = "empty-file": "a file holds no document",
    TabIndentation = "tab-indentation": "a line is indented with a tab",
    YamlSyntax = "yaml-syntax": "the text is not valid YAML",
    MultipleDocuments = "multiple-documents": "a file holds more than one YAML document",
    YamlAnchor = "yaml-anchor": "a YAML anchor (`&name`) is used",
    YamlAlias = "yaml-alias": "a YAML alias (`*name`) is used",
    NestingTooDeep = "nesting-too-deep": "mappings and lists are nested more than 64 levels deep",
    ComplexKey = "complex-key": "a mapping key is a list or a mapping",
    DuplicateKey = "duplicate-key": "a key is written twice in one mapping",
    UnsupportedValue = "unsupported-value": "a YAML value dsrctl cannot represent (a tag, infinity, NaN)",
    MisplacedFile = "misplaced-file": "a request among the playbooks, or a playbook among the requests",
    // The shape of a document, from its JSON Schema.
    UnknownKey = "unknown-key": "a key that is not allowed where it is written",
    MissingKey = "missing-key": "a required key is missing",
    WrongType = "wrong-type": "a value has the wrong type, e.g. a list where text is expected",
    WrongShape = "wrong-shape": "a value has none of the shapes allowed where it is written",
    UnknownValue = "unknown-value": "a value is not one of the allowed values",
    InvalidValue = "invalid-value": "a value breaks a rule of its schema (a range, a pattern, a length)",
    InvalidFormat = "invalid-format": "a value is not in its format (a date, a URI)",
    EmptyValue = "empty-value": "a value that needs content is empty",
    // A playbook's kinds and connectors.
    UndeclaredKind = "undeclared-kind": "a playbook does not say what it does for a DSR kind",
    SameAsSelf = "same-as-self": "a DSR kind reuses itself in `same_as`",
    SameAsNotSteps = "same-as-not-steps": "`same_as` names a kind that does not end in steps",
    SameAsUndeclared = "same-as-undeclared": "`same_as` names a kind the playbook does not declare",
    UnknownConnector = "unknown-connector": "a connector name that a tenant does not define",
    ConnectorKindMismatch = "connector-kind-mismatch": "a step's action needs another kind of connector",
    // Steps.
    DuplicateStepId = "duplicate-step-id": "two steps of one DSR kind have the same id",
    ReservedStepId = "reserved-step-id": "a step id is a name reserved for templates",
    MissingAction = "missing-action": "a step has no action",
    MultipleActions = "multiple-actions": "a step has more than one action",
    SqlOperationCount = "sql-operation-count": "a `sql` action has no operation or several",
    UnknownStep = "unknown-step": "a reference names a step that is not defined",
    UnknownCapture = "unknown-capture": "a reference names a capture the step does not declare",
    InvalidReference = "invalid-reference": "a reference is not written as `step-id.capture`",
    StepNotNeeded = "step-not-needed": "a step uses another step's result without needing it",
    DependencyCycle = "dependency-cycle": "steps need each other in a cycle",
    PreviewNotNeeded = "preview-not-needed": "a step previews with a step it does not need",
    PreviewItemWithoutForEach = "preview-item-without-for-each": "`preview: item` on a step without `for_each`",
    MissingPreview = "missing-preview": "a mutation does not say how a dry run shows what it changes",
    // Templates.
    TemplateSyntax = "template-syntax": "a template does not compile",
    UndeclaredIdentity = "undeclared-identity": "a template uses an identity the playbook does not declare",
    ItemOutsideForEach = "item-outside-for-each": "a template uses `item` in a step without `for_each`",
    UnknownVariable = "unknown-variable": "a template variable that does not resolve",
    UnencodedPathVariable = "unencoded-path-variable": "a variable enters a URL path without `seg`",
    // Across playbooks.
    DuplicateService = "duplicate-service": "two playbooks define the same service",
    IdentityNeverProvided = "identity-never-provided": "no request or playbook provides an identity a playbook needs",
    UnknownService = "unknown-service": "`after` names a service no playbook defines",
    AfterOwnService = "after-own-service": "`after` names the step's own service",
    AfterCycle = "after-cycle": "steps of several services wait for each other in a cycle",
    // Datasets.
    UnknownColumn = "unknown-column": "a dataset reference or key names a table or column the dataset does not describe",
    NoIdentityColumn = "no-identity-column": "no column of a dataset holds an identity, so nothing can be found",
    MissingErasureStrategy = "missing-erasure-strategy": "a masked column's category has no masking strategy",
    ReferenceCycle = "reference-cycle": "tables deleted on erasure reference each other in a cycle",
    ErasureBlocked = "erasure-blocked": "a deleted table's rows stay referenced by rows erasure keeps",
    UnreachableTable = "unreachable-table": "a table with personal data is not linked to any identity column",
    NeedsReview = "needs-review": "a guess of `dataset introspect` is still marked for review",
    // Coverage: a dataset against the live schema.
    UndescribedTable = "undescribed-table": "a table of the database is not described by its dataset",
    UndescribedColumn = "undescribed-column": "a column of the database is not described by its dataset",
    UncategorisedColumn = "uncategorised-column": "a described column looks personal but has no data category",
    VanishedColumn = "vanished-column": "a described table or column no longer exists in the database",
    // The project config.
    LiteralSecret = "literal-secret": "a secret is written in dsrctl.yaml instead of referenced",
    // Requests.
    EmptySubject = "empty-subject": "a request names no identity of its subject",
    MissingCorrections = "missing-corrections": "a rectify request has no `corrections`",
    UnusedCorrections = "unused-corrections": "`corrections` on a request that is not `rectify`",
    InvalidIdentity = "invalid-identity": "a subject identity is malformed, e.g. an email address without `@`",
    UnknownTenant = "unknown-tenant": "a request names a tenant dsrctl.yaml does not define",
    MissingIdentity = "missing-identity": "a service will be skipped: the request lacks an identity it needs",
}

impl Code {
    /// The code with this name.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == name)
    }
}

impl Code {
    /// Most suggestions [`Code::nearest`] gives.
    const MAX_SUGGESTIONS: usize = 3;

    /// The codes whose names are closest to `name`, best first (none when nothing is
    /// close): those a typo or two away, else those containing it, else the most similar.
    pub fn nearest(name: &str) -> Vec<Code> {
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        let mut typos: Vec<(usize, Code)> = Code::ALL
            .iter()
            .map(|c| (strsim::damerau_levenshtein(&name, c.as_str()), *c))
            .filter(|(d, _)| *d <= 2)
            .collect();
        if !typos.is_empty() {
            typos.sort_by_key(|(d, _)| *d);
            return typos
                .into_iter()
                .map(|(_, c)| c)
                .take(Self::MAX_SUGGESTIONS)
                .collect();
        }
        // A word of a name (`secret`, `preview`) finds the codes about it.
        let containing: Vec<Code> = Code::ALL
            .iter()
            .copied()
            .filter(|c| name.len() >= 3 && c.as_str().contains(name.as_str()))
            .take(Self::MAX_SUGGESTIONS)
            .collect();
        if !containing.is_empty() {
            return containing;
        }
        let names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        nearest_names(&name, &names)
            .into_iter()
            .take(Self::MAX_SUGGESTIONS)
            .filter_map(Code::from_name)
            .collect()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a diagnostic code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a diagnostic code")]
pub struct UnknownCode(pub String);

impl FromStr for Code {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Code, UnknownCode> {
        Code::from_name(s).ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

// Ordered by name, so findings sort as they did when codes were strings.
impl Ord for Code {
    fn cmp(&self, other: &Code) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Code {
    fn partial_cmp(&self, other: &Code) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn codes_unique() {
        let mut names = BTreeSet::new();
        for c in Code::ALL {
            assert!(names.insert(c.as_str()), "`{c}` is listed twice");
        }
        // Every variant is in `ALL`: `as_str` is a match over all variants, and each name
        // leads back to its own variant.
        for c in Code::ALL {
            assert_eq!(Code::from_name(c.as_str()), Some(*c));
        }
    }

    #[test]
    fn names_are_kebab_case() {
        for c in Code::ALL {
            let n = c.as_str();
            let ok = !n.starts_with('-')
                && !n.ends_with('-')
                && !n.contains("--")
                && n.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
            assert!(ok, "`{n}` is not kebab-case");
        }
    }

    #[test]
    fn every_code_is_explained_with_a_wrong_and_a_right_example() {
        for c in Code::ALL {
            let s = c.summary();
            assert!(
                !s.is_empty() && !s.ends_with('.') && s.len() <= 90,
                "summary of `{c}`: {s:?}"
            );
            let e = c.explanation();
            for part in ["Wrong", "Right", "Fix:"] {
                assert!(
                    e.lines().any(|l| l.starts_with(part)),
                    "the explanation of `{c}` lacks a paragraph `{part}`"
                );
            }
            assert!(!e.starts_with('\n') && e.ends_with('\n') && !e.ends_with("\n\n"));
        }
    }

    #[test]
    fn every_explanation_file_belongs_to_a_code() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/load/codes");
        for entry in std::fs::read_dir(&dir).expect("codes dir") {
            let name = entry.expect("entry").file_name();
            let name = name.to_string_lossy();
            let code = name.strip_suffix(".md").unwrap_or(&name);
            assert!(Code::from_name(code).is_some(), "{name} explains no code");
        }
    }

    #[test]
    fn serialises_as_its_name() {
        assert_eq!(
            serde_json::to_string(&Code::UnknownKey).expect("json"),
            "\"unknown-key\""
        );
        assert_eq!("after-cycle".parse::<Code>(), Ok(Code::AfterCycle));
        assert!("after_cycle".parse::<Code>().is_err());
    }
}
