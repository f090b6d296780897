//! Spooling collected records to NDJSON files under the run directory, so an export of a
//! million rows never sits in memory. With the project's data key each line is one sealed
//! record (a JSON string `dsrctl-sealed:v1:...`), so the files hold no personal data in clear.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::connectors::RecordSink;
use crate::journal::DataKey;

/// Writes records as NDJSON, each sealed when a key is given.
pub struct NdjsonSink {
    out: BufWriter<File>,
    key: Option<DataKey>,
}

impl NdjsonSink {
    /// Creates (truncates) the file, with its directories.
    pub fn create(path: &Path, key: Option<DataKey>) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(NdjsonSink {
            out: BufWriter::new(File::create(path)?),
            key,
        })
    }

    /// Flushes to disk.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

impl RecordSink for NdjsonSink {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        match &self.key {
            Some(key) => serde_json::to_writer(&mut self.out, &key.seal(record))?,
            None => serde_json::to_writer(&mut self.out, record)?,
        }
        self.out.write_all(b"\n")
    }
}

/// Where a run's files are kept besides the local run directory (the project's object
/// storage), so that another worker can build the run's package.
#[async_trait::async_trait]
pub trait RunFiles: Send + Sync {
    /// Keeps a copy of the run's file `rel` (relative to its run directory), read from
    /// `local`. The error says where it was to go, never what it holds.
    async fn keep(&self, run_id: &str, rel: &Path, local: &Path) -> Result<(), String>;
}

/// Relative spool path of one instance's collection: `collect/<service>/<collection>.<n>.ndjson`.
pub fn spool_path(service: &str, collection: &str, index: usize) -> PathBuf {
    PathBuf::from("collect")
        .join(sanitize(service))
        .join(format!("{}.{index}.ndjson", sanitize(collection)))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
