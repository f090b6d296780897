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
//! can make `validate` faster, never quieter. The file's layout is in `cache_file.rs`: a
//! run appends the entries it changed rather than writing them all again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Diagnostics;
use super::cache_file;
use super::index::PlaybookIndex;

/// The cache file's name in the state directory.
pub const CACHE_FILE: &str = "validate.cache";

/// Records a file may hold beyond twice its entries before it is written anew.
const COMPACT_SLACK: usize = 64;

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
    /// Paths recorded or removed since the file was read or written: appended by
    /// [`Cache::save`].
    dirty: HashSet<String>,
    /// The whole file must be written again (a new context, or no usable file).
    rewrite: bool,
    /// Records in the file as read (entries recorded again and removals included).
    records: usize,
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
            self.dirty.clear();
            self.context = context;
            self.rewrite = true;
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
            if self.entries.remove(rel).is_some() {
                self.dirty.insert(rel.to_owned());
            }
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
        self.dirty.insert(rel.to_owned());
    }

    /// Forget files that are no longer part of the project.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let dirty = &mut self.dirty;
        self.entries.retain(|k, _| {
            let kept = keep(k);
            if !kept {
                dirty.insert(k.clone());
            }
            kept
        });
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
        match cache_file::decode(&bytes) {
            Some(d) => Cache {
                context: d.context,
                entries: d.entries,
                dirty: HashSet::new(),
                rewrite: false,
                records: d.records,
                parsed: 0,
            },
            None => Cache::new(),
        }
    }

    /// Write what changed into `state_dir`: the records of the files checked anew appended
    /// to the file, or the whole file (atomically: a reader sees the old or the new file)
    /// when the context changed, there was no usable file, or it holds more records than
    /// twice its entries.
    pub fn save(&mut self, state_dir: &Path) -> std::io::Result<()> {
        if !self.rewrite && self.dirty.is_empty() {
            return Ok(());
        }
        let path = state_dir.join(CACHE_FILE);
        let records = self.records + self.dirty.len();
        if !self.rewrite && records <= 2 * self.entries.len() + COMPACT_SLACK {
            match self.append(&path) {
                Ok(()) => {
                    self.records = records;
                    self.dirty.clear();
                    return Ok(());
                }
                // Gone since it was read: written anew below.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.write_all(state_dir, &path)
    }

    /// Append the records of the dirty paths, in one write.
    fn append(&self, path: &Path) -> std::io::Result<()> {
        let mut dirty: Vec<&String> = self.dirty.iter().collect();
        dirty.sort();
        let mut out = Vec::new();
        for rel in dirty {
            cache_file::record(&mut out, &self.context, rel, self.entries.get(rel.as_str()));
        }
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        std::io::Write::write_all(&mut file, &out)
    }

    /// Write every entry into a new file that replaces the old one.
    fn write_all(&mut self, state_dir: &Path, path: &Path) -> std::io::Result<()> {
        let mut out = cache_file::header(&self.context);
        let mut rels: Vec<&String> = self.entries.keys().collect();
        rels.sort();
        for rel in rels {
            cache_file::record(&mut out, &self.context, rel, self.entries.get(rel.as_str()));
        }
        std::fs::create_dir_all(state_dir)?;
        let tmp: PathBuf = state_dir.join(format!("{CACHE_FILE}.{}.tmp", std::process::id()));
        let result = std::fs::write(&tmp, &out).and_then(|()| std::fs::rename(&tmp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        } else {
            self.rewrite = false;
            self.records = self.entries.len();
            self.dirty.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(sha: &str) -> Arc<Outcome> {
        Arc::new(Outcome {
            sha256: sha.to_owned(),
            diags: Diagnostics::default(),
            index: None,
        })
    }

    const OLD: Stamp = Stamp {
        len: 10,
        mtime_ns: 1_000_000_000,
    };

    fn size(dir: &Path) -> u64 {
        std::fs::metadata(dir.join(CACHE_FILE))
            .expect("cache file")
            .len()
    }

    #[test]
    fn changes_are_appended_and_the_file_is_compacted_when_long() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = Cache::new();
        c.begin("ctx".into());
        for rel in ["a.yaml", "b.yaml", "c.yaml"] {
            c.put(rel, Some(OLD), &outcome("1"));
        }
        c.save(dir.path()).expect("save");
        let full = size(dir.path());
        // Nothing changed: nothing written.
        let mut c = Cache::load(dir.path());
        c.begin("ctx".into());
        c.put("a.yaml", Some(OLD), &outcome("1"));
        c.save(dir.path()).expect("save");
        assert_eq!(size(dir.path()), full);
        // One entry changed, one file gone: two records appended.
        c.put("a.yaml", Some(OLD), &outcome("2"));
        c.retain(|rel| rel != "c.yaml");
        c.save(dir.path()).expect("save");
        assert!(size(dir.path()) > full);
        let c = Cache::load(dir.path());
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a.yaml").expect("a").outcome.sha256, "2");
        assert!(c.get("c.yaml").is_none());
        // Many runs later the file holds more records than twice its entries: written
        // anew with one record per entry.
        let mut c = c;
        c.begin("ctx".into());
        for n in 0..2 * COMPACT_SLACK {
            c.put("a.yaml", Some(OLD), &outcome(&n.to_string()));
            c.save(dir.path()).expect("save");
        }
        let c = Cache::load(dir.path());
        assert!(c.records <= 2 * c.len() + COMPACT_SLACK, "{}", c.records);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get("a.yaml").expect("a").outcome.sha256,
            (2 * COMPACT_SLACK - 1).to_string()
        );
    }

    /// A new context (another config or build) writes the file anew: entries of the old
    /// one are not kept, even for a moment.
    #[test]
    fn a_new_context_writes_the_file_anew() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = Cache::new();
        c.begin("one".into());
        c.put("a.yaml", Some(OLD), &outcome("1"));
        c.save(dir.path()).expect("save");
        let mut c = Cache::load(dir.path());
        c.begin("two".into());
        assert!(c.is_empty());
        c.put("b.yaml", Some(OLD), &outcome("1"));
        c.save(dir.path()).expect("save");
        let c = Cache::load(dir.path());
        assert_eq!((c.context.as_str(), c.len(), c.records), ("two", 1, 1));
    }

    /// The file removed between reading and writing: written anew, not appended to nothing.
    #[test]
    fn a_file_removed_meanwhile_is_written_anew() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = Cache::new();
        c.begin("ctx".into());
        c.put("a.yaml", Some(OLD), &outcome("1"));
        c.save(dir.path()).expect("save");
        let mut c = Cache::load(dir.path());
        c.begin("ctx".into());
        std::fs::remove_file(dir.path().join(CACHE_FILE)).expect("remove");
        c.put("b.yaml", Some(OLD), &outcome("1"));
        c.save(dir.path()).expect("save");
        assert_eq!(Cache::load(dir.path()).len(), 2);
    }
}
