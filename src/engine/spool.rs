//! Spooling collected records to NDJSON files under the run directory, so an export of a
//! million rows never sits in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::connectors::RecordSink;

/// Writes records as NDJSON.
pub struct NdjsonSink {
    out: BufWriter<File>,
}

impl NdjsonSink {
    /// Creates (truncates) the file, with its directories.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(NdjsonSink {
            out: BufWriter::new(File::create(path)?),
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
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }
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
