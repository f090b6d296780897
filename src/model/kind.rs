use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind of a data subject request.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DsrKind {
    /// Give the subject a copy of their personal data (GDPR art. 15, CCPA right to know).
    Access,
    /// Give the subject their data in a portable, machine-readable package (GDPR art. 20).
    Export,
    /// Correct inaccurate personal data (GDPR art. 16, CCPA right to correct).
    Rectify,
    /// Restrict processing (GDPR art. 18).
    Restrict,
    /// Erase the subject's personal data (GDPR art. 17, CCPA right to delete).
    Delete,
}

impl DsrKind {
    /// All kinds, in the order reports list them.
    pub const ALL: [DsrKind; 5] = [
        DsrKind::Access,
        DsrKind::Export,
        DsrKind::Rectify,
        DsrKind::Restrict,
        DsrKind::Delete,
    ];

    /// The lowercase name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            DsrKind::Access => "access",
            DsrKind::Export => "export",
            DsrKind::Rectify => "rectify",
            DsrKind::Restrict => "restrict",
            DsrKind::Delete => "delete",
        }
    }

    /// Whether the kind produces an export package for the subject.
    pub fn collects(self) -> bool {
        matches!(self, DsrKind::Access | DsrKind::Export)
    }
}

impl std::fmt::Display for DsrKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DsrKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DsrKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown DSR kind `{s}`; expected one of access, export, rectify, restrict, delete"))
    }
}
