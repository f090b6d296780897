//! The validation cache: what checking each playbook on its own found, keyed by the file's
//! content hash, so an unchanged file is not parsed again and only the checks across files
//! run over every playbook (on their [`PlaybookIndex`]es).
//!
//! A file's own findings depend on the file, on `dsrctl.yaml` (connectors, tenants, erasure
//! strategies, where requests are kept) and on the checks themselves; the cache is keyed by
//! all three (the config's hash, and the version and build of dsrctl), and an entry by the
//! file's SHA-256. Files are re-hashed unless their size and modification time are those
//! recorded, and a file modified within the last two seconds of being recorded is always
//! re-hashed (an edit in the same clock tick cannot hide). A cache that cannot be read, is
//! of another format or another dsrctl, or does not parse is ignored and rebuilt: the cache
//! can make `validate` faster, never quieter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::index::PlaybookIndex;
use super::{Code, Diagnostic, Diagnostics, Severity};

/// The cache file's name in the state directory.
pub const CACHE_FILE: &str = "validate.cache";

/// Bumped when the stored layout changes.
const FORMAT: u32 = 1;

/// A file modified this close to when it was recorded is re-hashed next time.
const SETTLE: Duration = Duration::from_secs(2);

/// A file's size and modification time (nanoseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: u128,
}

impl Stamp {
    /// The stamp of a file on disk.
    pub fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        Some(Stamp {
            len: meta.len(),
            mtime_ns: mtime.as_nanos(),
        })
    }

    /// Whether the file was last modified long enough before `now` that an edit after it
    /// must change the stamp.
    fn settled(&self, now: SystemTime) -> bool {
        let now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.mtime_ns + SETTLE.as_nanos() <= now
    }
}

/// What checking one playbook on its own found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Its own findings (schema and meaning), source lines attached.
    pub diags: Diagnostics,
    /// What the checks across files need; `None` when the file gave no playbook.
    pub index: Option<Arc<PlaybookIndex>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// `None` when the file must be re-hashed next time.
    pub stamp: Option<Stamp>,
    pub outcome: Arc<Outcome>,
}

/// Findings of single playbooks by path, for the context they were checked in.
#[derive(Debug, Default)]
pub struct Cache {
    context: String,
    entries: HashMap<String, Entry>,
    changed: bool,
    /// Playbook files the last check parsed (the others came from the cache).
    parsed: usize,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Start a check in `context` (see [`context_key`]): entries of another context go.
    pub(crate) fn begin(&mut self, context: String) {
        if self.context != context {
            self.entries.clear();
            self.context = context;
            self.changed = true;
        }
    }

    /// The entry of a file.
    pub(crate) fn get(&self, rel: &str) -> Option<&Entry> {
        self.entries.get(rel)
    }

    /// The outcome of a file whose stamp is the recorded one (no need to read it).
    pub(crate) fn by_stamp(&self, rel: &str, stamp: Option<Stamp>) -> Option<&Arc<Outcome>> {
        let e = self.entries.get(rel)?;
        (stamp.is_some() && e.stamp == stamp).then_some(&e.outcome)
    }

    /// Record what a file gave; `stamp` when it was read from disk.
    pub(crate) fn put(&mut self, rel: &str, stamp: Option<Stamp>, outcome: &Arc<Outcome>) {
        if outcome.diags.iter().any(|d| d.file != rel) {
            // Kept without a file name, so only findings about this file are kept.
            self.changed |= self.entries.remove(rel).is_some();
            return;
        }
        let stamp = stamp.filter(|s| s.settled(SystemTime::now()));
        if let Some(e) = self.entries.get_mut(rel)
            && e.stamp == stamp
            && (Arc::ptr_eq(&e.outcome, outcome) || e.outcome == *outcome)
        {
            return;
        }
        self.entries.insert(
            rel.to_owned(),
            Entry {
                stamp,
                outcome: Arc::clone(outcome),
            },
        );
        self.changed = true;
    }

    /// Forget files that are no longer part of the project.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|k, _| keep(k));
        self.changed |= self.entries.len() != before;
    }

    /// How many playbook files the last check that used this cache parsed; the others'
    /// findings came from it.
    pub fn parsed(&self) -> usize {
        self.parsed
    }

    pub(crate) fn set_parsed(&mut self, n: usize) {
        self.parsed = n;
    }

    /// Number of files recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No file recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cache kept in `state_dir`; empty when there is none or it cannot be used.
    pub fn load(state_dir: &Path) -> Cache {
        let Ok(bytes) = std::fs::read(state_dir.join(CACHE_FILE)) else {
            return Cache::new();
        };
        match serde_json::from_slice::<Stored>(&bytes) {
            Ok(s) if s.format == FORMAT => {
                let mut entries = HashMap::with_capacity(s.entries.len());
                for (rel, e) in s.entries {
                    let Some(diags) = e.diags.into_iter().map(|d| d.into_diag(&rel)).collect()
                    else {
                        return Cache::new(); // A code this build does not know.
                    };
                    entries.insert(
                        rel,
                        Entry {
                            stamp: e.stamp,
                            outcome: Arc::new(Outcome {
                                sha256: e.sha256,
                                diags: Diagnostics(diags),
                                index: e.index.map(Arc::new),
                            }),
                        },
                    );
                }
                Cache {
                    context: s.context,
                    entries,
                    changed: false,
                    parsed: 0,
                }
            }
            _ => Cache::new(),
        }
    }

    /// Write the cache into `state_dir` when it changed (atomically: a reader sees the old
    /// or the new file).
    pub fn save(&mut self, state_dir: &Path) -> std::io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        let stored = StoredRef {
            format: FORMAT,
            context: &self.context,
            entries: self
                .entries
                .iter()
                .map(|(rel, e)| {
                    (
                        rel.as_str(),
                        StoredEntryRef {
                            stamp: e.stamp,
                            sha256: &e.outcome.sha256,
                            diags: e.outcome.diags.iter().map(StoredDiag::from).collect(),
                            index: e.outcome.index.as_deref(),
                        },
                    )
                })
                .collect(),
        };
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join(CACHE_FILE);
        let tmp: PathBuf = state_dir.join(format!("{CACHE_FILE}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let file = std::fs::File::create(&tmp)?;
            let mut w = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut w, &stored)?;
            std::io::Write::flush(&mut w)?;
            std::fs::rename(&tmp, &path)
        };
        let result = write();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        } else {
            self.changed = false;
        }
        result
    }
}

/// The context a file's own findings depend on: this dsrctl (version and build) and the
/// config's bytes.
pub(crate) fn context_key(config_sha256: &str) -> String {
    format!("{}:{config_sha256}", tool_key())
}

/// The version and build of this dsrctl: a rebuilt binary may check differently.
fn tool_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let build = std::env::current_exe()
            .ok()
            .and_then(|p| Stamp::of(&p))
            .map_or_else(String::new, |s| format!("{}-{}", s.len, s.mtime_ns));
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(build.as_bytes());
        hex::encode(&h.finalize()[..12])
    })
}

/// [`Stored`] as written, borrowing from the cache.
#[derive(Serialize)]
struct StoredRef<'a> {
    format: u32,
    context: &'a str,
    entries: HashMap<&'a str, StoredEntryRef<'a>>,
}

#[derive(Serialize)]
struct StoredEntryRef<'a> {
    #[serde(rename = "t")]
    stamp: Option<Stamp>,
    #[serde(rename = "h")]
    sha256: &'a str,
    #[serde(rename = "d", skip_serializing_if = "Vec::is_empty")]
    diags: Vec<StoredDiag>,
    #[serde(rename = "i")]
    index: Option<&'a PlaybookIndex>,
}

#[derive(Deserialize)]
struct Stored {
    format: u32,
    context: String,
    entries: HashMap<String, StoredEntry>,
}

#[derive(Deserialize)]
struct StoredEntry {
    #[serde(rename = "t", default)]
    stamp: Option<Stamp>,
    #[serde(rename = "h")]
    sha256: String,
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    diags: Vec<StoredDiag>,
    #[serde(rename = "i", default)]
    index: Option<PlaybookIndex>,
}

/// A finding as the cache keeps it (its file is the entry's).
#[derive(Serialize, Deserialize)]
struct StoredDiag {
    code: String,
    error: bool,
    message: String,
    line: usize,
    col: usize,
    len: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    help: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

impl From<&Diagnostic> for StoredDiag {
    fn from(d: &Diagnostic) -> StoredDiag {
        StoredDiag {
            code: d.code.as_str().to_owned(),
            error: d.severity == Severity::Error,
            message: d.message.clone(),
            line: d.line,
            col: d.col,
            len: d.len,
            key: d.key.clone(),
            help: d.help.clone(),
            label: d.label.clone(),
            source: d.source_line.clone(),
        }
    }
}

impl StoredDiag {
    fn into_diag(self, file: &str) -> Option<Diagnostic> {
        let code: Code = self.code.parse().ok()?;
        let severity = if self.error {
            Severity::Error
        } else {
            Severity::Warning
        };
        let mut d = Diagnostic::new(severity, code, file, self.line, self.col, self.message);
        d.len = self.len;
        d.key = self.key;
        d.help = self.help;
        d.label = self.label;
        d.source_line = self.source;
        Some(d)
    }
}
