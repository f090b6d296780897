//! Spooling collected records to NDJSON files under the run directory, so an export of a
//! million rows never sits in memory. With the project's data key each line is one sealed
//! record (a JSON string `dsrctl-sealed:v1:...`), so the files hold no personal data in clear.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::Value;

use crate::connectors::RecordSink;
use crate::journal::DataKey;

/// Writes records as NDJSON, each sealed when a key is given. Records go to `<file>.partial`
/// as they arrive, and the file takes its name only when [`NdjsonSink::finish`] succeeds: a
/// collection cut short (a failed page, a dropped connection, a killed process) never sits
/// under the name of a complete one. Dropped unfinished, the partial file is removed.
pub struct NdjsonSink {
    out: Option<BufWriter<File>>,
    partial: PathBuf,
    path: PathBuf,
    key: Option<DataKey>,
}

impl NdjsonSink {
    /// Creates (truncates) the partial file, with its directories.
    pub fn create(path: &Path, key: Option<DataKey>) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let partial = partial_path(path);
        // A complete file of an earlier attempt is not left beside the new one.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(NdjsonSink {
            out: Some(BufWriter::with_capacity(256 << 10, File::create(&partial)?)),
            partial,
            path: path.to_owned(),
            key,
        })
    }

    /// Flushes to disk and gives the file its name.
    pub fn finish(mut self) -> std::io::Result<()> {
        let Some(mut out) = self.out.take() else {
            return Ok(());
        };
        let done = out
            .flush()
            .and_then(|()| out.get_ref().sync_data())
            .and_then(|()| std::fs::rename(&self.partial, &self.path));
        if done.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        done
    }
}

impl Drop for NdjsonSink {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Where the records of `path` are written until the collection is complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    path.with_file_name(name)
}

impl RecordSink for NdjsonSink {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(std::io::Error::other("the spool file is already finished"));
        };
        match &self.key {
            Some(key) => serde_json::to_writer(&mut *out, &key.seal(record))?,
            None => serde_json::to_writer(&mut *out, record)?,
        }
        out.write_all(b"\n")
    }
}

/// Pages buffered between a connector and the thread writing them: the connector waits
/// when the writer is this far behind (back-pressure), so memory holds at most a few pages.
pub const PAGES_IN_FLIGHT: usize = 2;

/// A sink whose pages are written by a thread of their own, so that the next page is
/// fetched while the last one is serialised, sealed and written. At most
/// [`PAGES_IN_FLIGHT`] pages wait between the two; a connector handing over another one
/// waits for room.
pub struct PipedSink<S> {
    tx: Option<SyncSender<Vec<Value>>>,
    worker: Option<JoinHandle<(S, std::io::Result<()>)>>,
    /// Why the writer stopped, for the connector's next hand-over.
    failure: Arc<Mutex<Option<String>>>,
}

impl<S: RecordSink + 'static> PipedSink<S> {
    /// Starts the writer thread of `inner`.
    pub fn new(inner: S) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<Value>>(PAGES_IN_FLIGHT);
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let worker = std::thread::Builder::new()
            .name("dsrctl-spool".into())
            .spawn(move || {
                let mut inner = inner;
                for page in rx {
                    if let Err(e) = page.iter().try_for_each(|r| inner.write(r)) {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                        return (inner, Err(e));
                    }
                }
                (inner, Ok(()))
            })?;
        Ok(PipedSink {
            tx: Some(tx),
            worker: Some(worker),
            failure,
        })
    }

    /// Waits for every page handed over to be written; returns the inner sink, or the
    /// writer's error.
    pub fn finish(mut self) -> std::io::Result<S> {
        drop(self.tx.take());
        let worker = self.worker.take().expect("finished once");
        let (inner, result) = worker
            .join()
            .map_err(|_| std::io::Error::other("the spool writer panicked"))?;
        result.map(|()| inner)
    }

    fn stopped(&self) -> std::io::Error {
        let why = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "it stopped".to_owned());
        std::io::Error::other(format!("the spool writer failed: {why}"))
    }
}

impl<S: RecordSink + 'static> RecordSink for PipedSink<S> {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        self.write_page(vec![record.clone()])
    }

    fn write_page(&mut self, records: Vec<Value>) -> std::io::Result<()> {
        let Some(tx) = &self.tx else {
            return Err(self.stopped());
        };
        let records = match tx.try_send(records) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => return Err(self.stopped()),
            Err(TrySendError::Full(records)) => records,
        };
        // The writer is behind: wait for room. On a multi-threaded runtime the worker
        // thread is handed over while it waits, so other tasks go on.
        let send = || tx.send(records);
        let sent = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(send),
            _ => send(),
        };
        sent.map_err(|_| self.stopped())
    }
}

impl<S> Drop for PipedSink<S> {
    fn drop(&mut self) {
        // Unfinished: the writer ends at its next page and drops its sink.
        drop(self.tx.take());
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Keeps records; fails on the record numbered `fail_at`.
    struct Keep {
        got: Vec<Value>,
        fail_at: Option<usize>,
    }

    impl RecordSink for Keep {
        fn write(&mut self, record: &Value) -> std::io::Result<()> {
            if Some(self.got.len()) == self.fail_at {
                return Err(std::io::Error::other("disk full"));
            }
            self.got.push(record.clone());
            Ok(())
        }
    }

    #[test]
    fn piped_pages_are_written_in_order() {
        let mut sink = PipedSink::new(Keep {
            got: Vec::new(),
            fail_at: None,
        })
        .unwrap();
        for page in 0..50 {
            sink.write_page((0..10).map(|i| json!(page * 10 + i)).collect())
                .unwrap();
        }
        let kept = sink.finish().unwrap();
        assert_eq!(kept.got, (0..500).map(|n| json!(n)).collect::<Vec<_>>());
    }

    #[test]
    fn a_writer_failure_reaches_the_connector_and_the_finish() {
        let mut sink = PipedSink::new(Keep {
            got: Vec::new(),
            fail_at: Some(25),
        })
        .unwrap();
        // The writer stops at record 25; a later hand-over says why (the channel holds a
        // few pages, so it may take some).
        let err = (0..100)
            .find_map(|p| sink.write_page(vec![json!(p); 10]).err())
            .expect("a hand-over fails");
        assert!(err.to_string().contains("disk full"), "{err}");
        let err = sink.finish().err().expect("finish fails");
        assert!(err.to_string().contains("disk full"), "{err}");
    }

    #[test]
    fn an_unfinished_spool_file_never_takes_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collect/svc/c.0.ndjson");
        let mut sink = NdjsonSink::create(&path, None).unwrap();
        sink.write(&json!({"a": 1})).unwrap();
        assert!(partial_path(&path).exists() && !path.exists());
        drop(sink);
        assert!(!partial_path(&path).exists() && !path.exists());

        let mut sink = NdjsonSink::create(&path, None).unwrap();
        sink.write(&json!({"a": 1})).unwrap();
        sink.finish().unwrap();
        assert!(!partial_path(&path).exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
    }
}
