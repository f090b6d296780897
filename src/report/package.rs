//! The export package for access and export requests: one JSON file per service and
//! collection (`<service>/<collection>.json`), fields at the playbook's `redact` pointers
//! replaced by `"[redacted]"`, and a `manifest.json` with the SHA-256 of every file; as a
//! directory or a zip, optionally encrypted (see [`PackageKey`]).
//!
//! Records come from the spool files the engine wrote (NDJSON, one record per line) and are
//! streamed: one record is in memory at a time. Files are written one per core at a time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use super::encryption::{NONCE_LEN, PackageKey};
pub use super::manifest::{
    MANIFEST_FORMAT_VERSION, Manifest, ManifestFile, ManifestService, Redaction,
};
use super::redact::Redactor;
use crate::deliver::archive::{safe_file_name, zip_entry};
use crate::journal::{DataKey, Disposition, Plan, SigningKey, StepOutcome, StepStatus, open_with};

/// Name of the manifest file inside a package.
pub const MANIFEST_NAME: &str = "manifest.json";
/// Name of the checksum file inside a package, in the format `sha256sum -c` reads.
pub const SUMS_NAME: &str = "SHA256SUMS";

/// How the package is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PackageFormat {
    /// A directory at `out`.
    #[default]
    Directory,
    /// A zip file at `out`.
    Zip,
}

/// Options of [`build_package`].
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// Directory or zip.
    pub format: PackageFormat,
    /// Encrypt the zip with this key (zip format only).
    pub key: Option<PackageKey>,
    /// Run id recorded in the manifest.
    pub run_id: Option<String>,
    /// Time recorded in the manifest.
    pub generated_at: DateTime<Utc>,
    /// The project's data key, opening spooled records that were sealed at rest.
    pub data_key: Option<DataKey>,
    /// Signs the manifest.
    pub signer: Option<std::sync::Arc<SigningKey>>,
}

impl Default for PackageOptions {
    fn default() -> Self {
        PackageOptions {
            format: PackageFormat::Directory,
            key: None,
            run_id: None,
            generated_at: Utc::now(),
            data_key: None,
            signer: None,
        }
    }
}

/// Export package errors.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A spool file holds a line that is not JSON.
    #[error("spool file {path}, line {line}: not a JSON record: {message}")]
    BadRecord {
        /// Spool file.
        path: String,
        /// Line number (1-based).
        line: u64,
        /// Parser message.
        message: String,
    },
    /// A spool path recorded in an outcome leaves the spool directory.
    #[error("spool path `{0}` is not a relative path inside the run directory")]
    UnsafePath(String),
    /// The zip could not be written or read.
    #[error("zip: {0}")]
    Zip(String),
    /// The output directory already holds files (a package is never merged into another).
    #[error("{0} is not empty; choose a new directory for the package")]
    NotEmpty(String),
    /// Encryption was asked for a directory package.
    #[error("encryption needs the zip format")]
    EncryptDirectory,
    /// The key is not 32 bytes in hex or base64.
    #[error("the package key must be 32 bytes given as 64 hex digits or base64")]
    BadKey,
    /// Encryption or decryption failed.
    #[error("{0}")]
    Crypto(String),
    /// The manifest is missing or unreadable.
    #[error("manifest: {0}")]
    Manifest(String),
    /// A file's checksum does not match the manifest.
    #[error("{path}: SHA-256 {actual} does not match the manifest's {expected}")]
    Checksum {
        /// File path in the package.
        path: String,
        /// From the manifest.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// A file listed in the manifest is missing.
    #[error("{0}: listed in the manifest but missing from the package")]
    Missing(String),
    /// A file in the package is not listed in the manifest.
    #[error("{0}: in the package but not listed in the manifest")]
    Unlisted(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One output file and the spool files feeding it.
struct Collection {
    service: String,
    collection: String,
    /// Where it goes in the package: `<service>/<collection>.json`.
    path: String,
    spools: Vec<String>,
}

/// Builds the export package of a run at `out` from the spool files under `spool_dir` that
/// the outcomes name, and returns its manifest.
pub fn build_package(
    plan: &Plan,
    outcomes: &[StepOutcome],
    spool_dir: &Path,
    out: &Path,
    opts: &PackageOptions,
) -> Result<Manifest, PackageError> {
    if opts.key.is_some() && opts.format == PackageFormat::Directory {
        return Err(PackageError::EncryptDirectory);
    }
    let collections = collections(plan, outcomes)?;
    let data_key = opts.data_key.as_ref();
    let mut sink = match opts.format {
        PackageFormat::Directory => Sink::dir(out)?,
        PackageFormat::Zip => Sink::zip(out, opts.generated_at)?,
    };
    let mut services: Vec<ManifestService> = plan
        .services
        .iter()
        .map(|sp| {
            let (disposition, reason) = match &sp.disposition {
                Disposition::Run { .. } => ("run", None),
                Disposition::Exempt { reason } => ("exempt", Some(reason.clone())),
                Disposition::Skipped { reason } => ("skipped", Some(reason.clone())),
            };
            ManifestService {
                service: sp.service.clone(),
                disposition: disposition.to_owned(),
                reason,
                files: Vec::new(),
            }
        })
        .collect();
    let mut notes = Vec::new();
    // Files are written a few at a time, each on a thread of its own (reading, redacting,
    // hashing and deflating are CPU-bound), and added to the package in plan order.
    for chunk in collections.chunks(parallel_files()) {
        let target = sink.target();
        let parts: Vec<Result<Part<(u64, Redactor)>, PackageError>> = std::thread::scope(|s| {
            let workers: Vec<_> = chunk
                .iter()
                .map(|c| {
                    s.spawn(move || {
                        let redact: &[String] = plan
                            .services
                            .iter()
                            .find(|s| s.service == c.service)
                            .map_or(&[], |s| s.redact.as_slice());
                        target.part(&c.path, |w| {
                            write_collection(w, spool_dir, &c.spools, redact, data_key)
                        })
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        for (c, part) in chunk.iter().zip(parts) {
            let path = c.path.clone();
            let file = sink.add(&path, part?)?;
            let (records, redactor) = file.result;
            let redacted = redactor.into_counts();
            for r in redacted.iter().filter(|r| r.count > 0) {
                notes.push(format!(
                    "{path}: {} value(s) at `{}` redacted because they concern other people or are confidential",
                    r.count, r.pointer
                ));
            }
            let entry = ManifestFile {
                path,
                collection: c.collection.clone(),
                records,
                bytes: file.bytes,
                sha256: file.sha256,
                redacted,
            };
            match services.iter_mut().find(|s| s.service == c.service) {
                Some(s) => s.files.push(entry),
                None => services.push(ManifestService {
                    service: c.service.clone(),
                    disposition: "run".into(),
                    reason: None,
                    files: vec![entry],
                }),
            }
        }
    }
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        request_id: plan.request.id.clone(),
        run_id: opts.run_id.clone(),
        kind: plan.request.kind.to_string(),
        generated_at: opts.generated_at,
        total_records: services
            .iter()
            .flat_map(|s| &s.files)
            .map(|f| f.records)
            .sum(),
        services,
        notes,
        complete: true,
        incomplete_because: Vec::new(),
        signature: None,
    };
    let mut manifest = manifest;
    manifest.incomplete_because = incomplete(plan, outcomes);
    manifest.complete = manifest.incomplete_because.is_empty();
    if let Some(signer) = &opts.signer {
        let value =
            serde_json::to_value(&manifest).map_err(|e| PackageError::Manifest(e.to_string()))?;
        manifest.signature = signer.sign_json(&value).get("signature").cloned();
    }
    let written = sink.write(MANIFEST_NAME, |w| {
        serde_json::to_writer_pretty(&mut *w, &manifest)
            .map_err(|e| PackageError::Manifest(e.to_string()))?;
        w.write_all(b"\n").map_err(io_err(Path::new(MANIFEST_NAME)))
    })?;
    let mut sums: String = manifest
        .files()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect();
    sums.push_str(&format!("{}  {MANIFEST_NAME}\n", written.sha256));
    sink.write(SUMS_NAME, |w| {
        w.write_all(sums.as_bytes())
            .map_err(io_err(Path::new(SUMS_NAME)))
    })?;
    sink.finish(out, opts.key.as_ref())?;
    Ok(manifest)
}

/// Why a package of this run is incomplete: each step of a service that was run and that did
/// not end well (failed, blocked, waiting, never run), so what it would have collected may be
/// missing. Empty: complete.
fn incomplete(plan: &Plan, outcomes: &[StepOutcome]) -> Vec<String> {
    let mut why = Vec::new();
    for step in &plan.steps {
        let runs = plan
            .services
            .iter()
            .any(|s| s.service == step.service && matches!(s.disposition, Disposition::Run { .. }));
        if !runs {
            continue;
        }
        let mine: Vec<&StepOutcome> = outcomes.iter().filter(|o| o.step == step.key).collect();
        if mine.is_empty() {
            why.push(format!("{}: step `{}` did not run", step.service, step.id));
        }
        for o in mine {
            if !matches!(
                o.status,
                StepStatus::Succeeded | StepStatus::Absent | StepStatus::Skipped
            ) {
                why.push(format!(
                    "{}: step `{}` {}{}",
                    step.service,
                    o.instance
                        .split_once('/')
                        .map_or(o.instance.as_str(), |(_, i)| i),
                    o.status.as_str(),
                    // Why it failed; a waiting step's message is its instructions to a
                    // person (with the subject's values), not a reason.
                    o.message
                        .as_deref()
                        .filter(|_| o.status != StepStatus::Waiting)
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    why
}

/// Groups the outcomes' spool files by (service, collection), in plan order.
fn collections(plan: &Plan, outcomes: &[StepOutcome]) -> Result<Vec<Collection>, PackageError> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut map: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for step in &plan.steps {
        for o in outcomes.iter().filter(|o| o.step == step.key) {
            let Some(spool) = &o.collected else { continue };
            check_relative(spool)?;
            let collection = step.collect.clone().unwrap_or_else(|| {
                Path::new(spool)
                    .file_stem()
                    .map_or_else(|| step.id.clone(), |s| s.to_string_lossy().into_owned())
            });
            let key = (step.service.clone(), collection);
            let spools = map.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                Vec::new()
            });
            if !spools.contains(spool) {
                spools.push(spool.clone());
            }
        }
    }
    Ok(order
        .into_iter()
        .map(|key| {
            let spools = map.remove(&key).unwrap_or_default();
            Collection {
                path: format!("{}/{}.json", safe_file_name(&key.0), safe_file_name(&key.1)),
                service: key.0,
                collection: key.1,
                spools,
            }
        })
        .collect())
}

/// How many package files are written at once: one per core, at most 8.
fn parallel_files() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

fn check_relative(spool: &str) -> Result<(), PackageError> {
    let ok = Path::new(spool)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok && !spool.is_empty() {
        Ok(())
    } else {
        Err(PackageError::UnsafePath(spool.to_owned()))
    }
}

/// Streams the records of the spool files as one pretty JSON array, redacting as it goes.
fn write_collection(
    w: &mut dyn Write,
    spool_dir: &Path,
    spools: &[String],
    redact: &[String],
    data_key: Option<&DataKey>,
) -> Result<(u64, Redactor), PackageError> {
    let mut redactor = Redactor::new(redact);
    let mut records = 0u64;
    let out_err = io_err(Path::new("package"));
    w.write_all(b"[").map_err(out_err)?;
    for spool in spools {
        let path = spool_dir.join(spool);
        let reader = BufReader::new(File::open(&path).map_err(io_err(&path))?);
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(io_err(&path))?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |message: String| PackageError::BadRecord {
                path: spool.clone(),
                line: n as u64 + 1,
                message,
            };
            let record: Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            let mut record = open_with(data_key, &record).map_err(|e| bad(e.to_string()))?;
            redactor.apply(&mut record);
            let sep: &[u8] = if records == 0 { b"\n" } else { b",\n" };
            w.write_all(sep).map_err(io_err(&path))?;
            serde_json::to_writer_pretty(&mut *w, &record).map_err(|e| PackageError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })?;
            records += 1;
        }
    }
    let end: &[u8] = if records == 0 { b"]\n" } else { b"\n]\n" };
    w.write_all(end).map_err(io_err(Path::new("package")))?;
    Ok((records, redactor))
}

/// What writing one file produced.
struct Written<T> {
    result: T,
    bytes: u64,
    sha256: String,
}

/// Hashes and counts what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Where package files go.
enum Sink {
    Dir(PathBuf),
    Zip {
        writer: Box<zip::ZipWriter<BufWriter<File>>>,
        path: PathBuf,
        /// When the package was made: every entry's time.
        at: DateTime<Utc>,
    },
}

impl Sink {
    fn dir(out: &Path) -> Result<Sink, PackageError> {
        if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
            return Err(PackageError::NotEmpty(out.display().to_string()));
        }
        std::fs::create_dir_all(out).map_err(io_err(out))?;
        Ok(Sink::Dir(out.to_owned()))
    }

    fn zip(out: &Path, at: DateTime<Utc>) -> Result<Sink, PackageError> {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let file = File::create(out).map_err(io_err(out))?;
        Ok(Sink::Zip {
            writer: Box::new(zip::ZipWriter::new(BufWriter::new(file))),
            path: out.to_owned(),
            at,
        })
    }

    /// Writes one file (see [`Target::part`]) and adds it to the package.
    fn write<T>(
        &mut self,
        rel: &str,
        f: impl FnOnce(&mut dyn Write) -> Result<T, PackageError>,
    ) -> Result<Written<T>, PackageError> {
        let part = self.target().part(rel, f)?;
        self.add(rel, part)
    }

    /// Where files are written, for writers on other threads.
    fn target(&self) -> Target<'_> {
        match self {
            Sink::Dir(root) => Target::Dir(root),
            Sink::Zip { path, at, .. } => Target::Zip {
                dir: path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
                at: *at,
            },
        }
    }

    /// Adds a written file to the package: a zip entry is copied, still compressed, from
    /// its one-entry archive.
    fn add<T>(&mut self, rel: &str, part: Part<T>) -> Result<Written<T>, PackageError> {
        if let (Sink::Zip { writer, .. }, Some(entry)) = (self, part.entry) {
            let zip_err = |e: zip::result::ZipError| PackageError::Zip(format!("{rel}: {e}"));
            let archive = zip::ZipArchive::new(entry).map_err(zip_err)?;
            writer.merge_archive(archive).map_err(zip_err)?;
        }
        Ok(part.written)
    }

    fn finish(self, out: &Path, key: Option<&PackageKey>) -> Result<(), PackageError> {
        let Sink::Zip { writer, path, .. } = self else {
            return Ok(());
        };
        let mut file = writer
            .finish()
            .map_err(|e| PackageError::Zip(e.to_string()))?;
        file.flush().map_err(io_err(&path))?;
        drop(file);
        if let Some(key) = key {
            let plain = std::fs::read(out).map_err(io_err(out))?;
            let sealed = key.encrypt(&plain)?;
            std::fs::write(out, sealed).map_err(io_err(out))?;
        }
        Ok(())
    }
}

/// Where a package file is written: into the package directory, or (zip) deflated into a
/// one-entry archive that [`Sink::add`] then copies into the package. That archive is an
/// unnamed temporary file in the given directory (the zip's), so memory does not grow with
/// the file and nothing is left behind, even by a crash.
#[derive(Clone, Copy)]
enum Target<'a> {
    Dir(&'a Path),
    Zip { dir: &'a Path, at: DateTime<Utc> },
}

/// A file written for the package, not yet added to it.
struct Part<T> {
    written: Written<T>,
    /// Zip: the one-entry archive holding the file.
    entry: Option<File>,
}

impl Target<'_> {
    /// Writes `rel` with `f`, hashing and counting what it writes.
    fn part<T>(
        self,
        rel: &str,
        f: impl FnOnce(&mut dyn Write) -> Result<T, PackageError>,
    ) -> Result<Part<T>, PackageError> {
        match self {
            Target::Dir(root) => {
                let path = root.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                let file = File::create(&path).map_err(io_err(&path))?;
                let (written, _) = hashed(BufWriter::new(file), f, |mut w| {
                    w.flush().map_err(io_err(&path))
                })?;
                Ok(Part {
                    written,
                    entry: None,
                })
            }
            Target::Zip { dir, at } => {
                let zip_err = |e: zip::result::ZipError| PackageError::Zip(format!("{rel}: {e}"));
                let options = zip_entry(at);
                let scratch = tempfile::tempfile_in(dir).map_err(io_err(dir))?;
                let mut zip = zip::ZipWriter::new(BufWriter::new(scratch));
                zip.start_file(rel, options).map_err(zip_err)?;
                let (written, zip) = hashed(zip, f, Ok)?;
                let entry = zip
                    .finish()
                    .map_err(zip_err)?
                    .into_inner()
                    .map_err(|e| io_err(dir)(e.into_error()))?;
                Ok(Part {
                    written,
                    entry: Some(entry),
                })
            }
        }
    }
}

/// Runs `f` on `inner` through a [`HashingWriter`], then `done` on `inner`.
fn hashed<W: Write, T, D>(
    inner: W,
    f: impl FnOnce(&mut dyn Write) -> Result<T, PackageError>,
    done: impl FnOnce(W) -> Result<D, PackageError>,
) -> Result<(Written<T>, D), PackageError> {
    let mut hw = HashingWriter {
        inner,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let result = f(&mut hw)?;
    let written = Written {
        result,
        bytes: hw.bytes,
        sha256: hex::encode(hw.hasher.finalize()),
    };
    Ok((written, done(hw.inner)?))
}

/// Rechecks a package (a directory or a zip file) against its manifest: every listed file is
/// present with its SHA-256, and no file is unlisted.
pub fn verify_package(path: &Path) -> Result<Manifest, PackageError> {
    if path.is_dir() {
        let manifest = read_manifest(
            &std::fs::read(path.join(MANIFEST_NAME)).map_err(io_err(&path.join(MANIFEST_NAME)))?,
        )?;
        for f in manifest.files() {
            check_relative(&f.path)?;
            let p = path.join(&f.path);
            let file = File::open(&p).map_err(|_| PackageError::Missing(f.path.clone()))?;
            compare(&f.path, &f.sha256, sha256_of(file).map_err(io_err(&p))?)?;
        }
        let listed: Vec<&str> = manifest.files().map(|f| f.path.as_str()).collect();
        for rel in walk(path, path)? {
            if rel != MANIFEST_NAME && rel != SUMS_NAME && !listed.contains(&rel.as_str()) {
                return Err(PackageError::Unlisted(rel));
            }
        }
        Ok(manifest)
    } else {
        let file = File::open(path).map_err(io_err(path))?;
        let mut zip = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| PackageError::Zip(e.to_string()))?;
        let mut bytes = Vec::new();
        zip.by_name(MANIFEST_NAME)
            .map_err(|_| PackageError::Manifest("no manifest.json in the zip".into()))?
            .read_to_end(&mut bytes)
            .map_err(io_err(path))?;
        let manifest = read_manifest(&bytes)?;
        for f in manifest.files() {
            let entry = zip
                .by_name(&f.path)
                .map_err(|_| PackageError::Missing(f.path.clone()))?;
            compare(&f.path, &f.sha256, sha256_of(entry).map_err(io_err(path))?)?;
        }
        let listed: Vec<&str> = manifest.files().map(|f| f.path.as_str()).collect();
        for name in zip.file_names() {
            let name = name.map_err(|e| PackageError::Zip(e.to_string()))?;
            if name != MANIFEST_NAME && name != SUMS_NAME && !listed.contains(&name.as_ref()) {
                return Err(PackageError::Unlisted(name.into_owned()));
            }
        }
        Ok(manifest)
    }
}

fn read_manifest(bytes: &[u8]) -> Result<Manifest, PackageError> {
    serde_json::from_slice(bytes).map_err(|e| PackageError::Manifest(e.to_string()))
}

fn compare(path: &str, expected: &str, actual: String) -> Result<(), PackageError> {
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(PackageError::Checksum {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

fn sha256_of(mut r: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Every file under `dir`, as `/`-separated paths relative to `root`.
fn walk(root: &Path, dir: &Path) -> Result<Vec<String>, PackageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(root, &p)?);
        } else if let Ok(rel) = p.strip_prefix(root) {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(out)
}
