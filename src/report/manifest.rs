//! `manifest.json` of an export package: what is in it, how many records, and the SHA-256
//! of every file, so the subject (or anyone) can check nothing was altered; whether it is
//! complete and why not; signed with the project's evidence key. `SHA256SUMS` beside it lists
//! the same digests (and the manifest's) for `sha256sum -c`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the manifest format; bumped on any incompatible change.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// The manifest of an export package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of this format.
    pub format_version: u32,
    /// Request id.
    pub request_id: String,
    /// Run id the package was made from.
    pub run_id: Option<String>,
    /// DSR kind.
    pub kind: String,
    /// When the package was made.
    pub generated_at: DateTime<Utc>,
    /// Every service of the project, with its files (none when it holds nothing or is
    /// exempt).
    pub services: Vec<ManifestService>,
    /// Total records over all files.
    pub total_records: u64,
    /// Notes for the reader (redactions).
    pub notes: Vec<String>,
    /// Whether the package holds everything the run was to collect: false when a step of a
    /// service that was run failed, waits or never ran, so some data may be missing.
    #[serde(default = "yes")]
    pub complete: bool,
    /// Why it is incomplete, one line per step that did not finish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete_because: Vec<String>,
    /// Ed25519 signature over the canonical JSON of the rest (`dsrctl evidence verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// One service in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestService {
    /// Service name.
    pub service: String,
    /// `run`, `exempt` or `skipped`.
    pub disposition: String,
    /// Why exempt or skipped.
    pub reason: Option<String>,
    /// Files with this service's records.
    pub files: Vec<ManifestFile>,
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path inside the package, `/`-separated, e.g. `entra-users/profile.json`.
    pub path: String,
    /// Collection name from the playbook.
    pub collection: String,
    /// Records in the file (a JSON array).
    pub records: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Fields replaced by `"[redacted]"`, with how many values each.
    pub redacted: Vec<Redaction>,
}

/// A redacted field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redaction {
    /// JSON pointer into each record (`*` matches every array element or key).
    pub pointer: String,
    /// Values replaced.
    pub count: u64,
}

impl Manifest {
    /// Every file listed, over all services.
    pub fn files(&self) -> impl Iterator<Item = &ManifestFile> {
        self.services.iter().flat_map(|s| s.files.iter())
    }
}
