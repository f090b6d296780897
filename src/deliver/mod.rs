//! Delivery of an export package to its destination: a local directory, an Azure Blob
//! Storage container or an S3 bucket, through `object_store`. Server errors (503 and other
//! 5xx) and dropped connections are retried with exponential backoff.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub mod archive;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::model::{Destination, SecretRef};
use crate::secret::SecretResolver;

/// Delivery errors.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A secret (account key, access key) could not be read.
    #[error("secret for the export destination: {0}")]
    Secret(String),
    /// The destination is misconfigured.
    #[error("export destination: {0}")]
    Config(String),
    /// A package file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The store refused or failed after its retries.
    #[error(
        "uploading `{key}` to {destination} failed ({uploaded} of {total} objects were uploaded before it; delivering again overwrites them): {source}"
    )]
    Store {
        /// Object key.
        key: String,
        /// Destination, without secrets.
        destination: String,
        /// Objects uploaded before this one (they stay).
        uploaded: usize,
        /// Objects of the package.
        total: usize,
        /// Cause.
        source: Box<object_store::Error>,
    },
}

/// Options of [`deliver`].
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Key prefix (folder) for the package, e.g. the request id.
    pub prefix: String,
    /// Directory that relative destination paths are resolved against.
    pub base_dir: PathBuf,
    /// Retries of failed uploads.
    pub retry: RetryConfig,
}

impl DeliveryOptions {
    /// Options with the default retry policy: up to 5 retries, backoff from 200 ms.
    pub fn new(prefix: impl Into<String>, base_dir: impl Into<PathBuf>) -> Self {
        DeliveryOptions {
            prefix: prefix.into(),
            base_dir: base_dir.into(),
            retry: RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(10),
                    base: 2.0,
                },
                max_retries: 5,
                retry_timeout: Duration::from_secs(120),
            },
        }
    }
}

/// What was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The destination, without secrets (e.g. `azure blob exports at http://...`).
    pub destination: String,
    /// Object keys written, with their sizes.
    pub objects: Vec<(String, u64)>,
}

/// The object store for a destination, and a description of it without secrets.
pub fn store_for(
    dest: &Destination,
    opts: &DeliveryOptions,
    secrets: &dyn SecretResolver,
) -> Result<(Arc<dyn ObjectStore>, String), DeliveryError> {
    let secret = |s: &SecretRef| {
        secrets
            .resolve(s)
            .map_err(|e| DeliveryError::Secret(e.to_string()))
    };
    match dest {
        Destination::Directory { path, .. } => {
            let dir = opts.base_dir.join(path);
            std::fs::create_dir_all(&dir).map_err(|source| DeliveryError::Io {
                path: dir.display().to_string(),
                source,
            })?;
            let store = LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| DeliveryError::Config(e.to_string()))?;
            Ok((Arc::new(store), format!("directory {}", dir.display())))
        }
        Destination::AzureBlob {
            endpoint,
            account,
            container,
            key,
        } => {
            let store = MicrosoftAzureBuilder::new()
                .with_endpoint(endpoint.clone())
                .with_allow_http(endpoint.starts_with("http://"))
                .with_account(account)
                .with_container_name(container)
                .with_access_key(secret(key)?)
                .with_retry(opts.retry.clone())
                .build()
                .map_err(|e| DeliveryError::Config(e.to_string()))?;
            Ok((
                Arc::new(store),
                format!("azure blob container `{container}` at {endpoint}"),
            ))
        }
        Destination::S3 {
            bucket,
            region,
            endpoint,
            access_key_id,
            secret_access_key,
        } => {
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(region)
                .with_access_key_id(secret(access_key_id)?)
                .with_secret_access_key(secret(secret_access_key)?)
                .with_retry(opts.retry.clone());
            if let Some(ep) = endpoint {
                b = b
                    .with_endpoint(ep)
                    .with_allow_http(ep.starts_with("http://"));
            }
            let store = b
                .build()
                .map_err(|e| DeliveryError::Config(e.to_string()))?;
            let place = match endpoint {
                Some(ep) => format!("s3 bucket `{bucket}` at {ep}"),
                None => format!("s3 bucket `{bucket}` ({region})"),
            };
            Ok((Arc::new(store), place))
        }
    }
}

/// Uploads a package (a directory: every file under it; or one file, e.g. a zip) to the
/// destination under `opts.prefix`.
pub async fn deliver(
    dest: &Destination,
    package: &Path,
    opts: &DeliveryOptions,
    secrets: &dyn SecretResolver,
) -> Result<Delivered, DeliveryError> {
    if let Destination::Directory { path, zip: true } = dest
        && package.is_dir()
    {
        let (package, dir, prefix) = (
            package.to_owned(),
            opts.base_dir.join(path),
            opts.prefix.clone(),
        );
        return tokio::task::spawn_blocking(move || zip_into(&package, &dir, &prefix))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
    let (store, description) = store_for(dest, opts, secrets)?;
    deliver_to(store.as_ref(), &description, package, &opts.prefix).await
}

/// Uploads a package to a store (see [`deliver`]).
pub async fn deliver_to(
    store: &dyn ObjectStore,
    description: &str,
    package: &Path,
    prefix: &str,
) -> Result<Delivered, DeliveryError> {
    let files = if package.is_dir() {
        let mut files = Vec::new();
        list_files(package, package, &mut files)?;
        files.sort();
        files
    } else {
        let name = package
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| DeliveryError::Config(format!("{} is not a file", package.display())))?;
        vec![(name, package.to_owned())]
    };
    let total = files.len();
    let mut objects = Vec::new();
    for (rel, path) in files {
        let key = prefix
            .split('/')
            .chain(rel.split('/'))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let location = ObjectPath::parse(&key).map_err(|e| DeliveryError::Config(e.to_string()))?;
        // Whole-file uploads: package files are JSON of one service, small next to memory.
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| DeliveryError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let len = bytes.len() as u64;
        store
            .put(&location, PutPayload::from(bytes))
            .await
            .map_err(|source| DeliveryError::Store {
                key: key.clone(),
                destination: description.to_owned(),
                uploaded: objects.len(),
                total,
                source: Box::new(source),
            })?;
        objects.push((key, len));
    }
    Ok(Delivered {
        destination: description.to_owned(),
        objects,
    })
}

/// Downloads every object under `prefix` into `dir` (their keys relative to the prefix
/// become paths under `dir`), skipping files `dir` already holds: how a worker gets the
/// files another worker kept in shared storage. Returns how many it downloaded.
pub async fn fetch_prefix(
    store: &dyn ObjectStore,
    description: &str,
    prefix: &str,
    dir: &Path,
) -> Result<usize, DeliveryError> {
    use futures::TryStreamExt;
    let location = ObjectPath::parse(prefix).map_err(|e| DeliveryError::Config(e.to_string()))?;
    let failed = |key: &str, source: object_store::Error| DeliveryError::Store {
        key: key.to_owned(),
        destination: description.to_owned(),
        uploaded: 0,
        total: 0,
        source: Box::new(source),
    };
    let objects: Vec<_> = store
        .list(Some(&location))
        .try_collect()
        .await
        .map_err(|e| failed(prefix, e))?;
    let mut fetched = 0;
    for meta in objects {
        let key = meta.location.to_string();
        let rel = key
            .strip_prefix(prefix)
            .unwrap_or(&key)
            .trim_start_matches('/');
        let safe = !rel.is_empty()
            && Path::new(rel)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            return Err(DeliveryError::Config(format!(
                "object `{key}` does not name a file under `{prefix}`"
            )));
        }
        let path = dir.join(rel);
        if path.exists() {
            continue;
        }
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(|e| failed(&key, e))?
            .bytes()
            .await
            .map_err(|e| failed(&key, e))?;
        let io = |source| DeliveryError::Io {
            path: path.display().to_string(),
            source,
        };
        // Whole or not at all: a file cut short would be taken as fetched next time.
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(io)?;
        let mut file = tempfile::NamedTempFile::new_in(parent).map_err(io)?;
        std::io::Write::write_all(&mut file, &bytes).map_err(io)?;
        file.persist(&path).map_err(|e| io(e.error))?;
        fetched += 1;
    }
    Ok(fetched)
}

/// A directory package delivered as one zip file, `<dir>/<prefix>.zip`, its files in name
/// order. Written under a temporary name and renamed, so the zip is there whole or not at
/// all.
fn zip_into(package: &Path, dir: &Path, prefix: &str) -> Result<Delivered, DeliveryError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| DeliveryError::Io { path, source }
    };
    let mut files = Vec::new();
    list_files(package, package, &mut files)?;
    files.sort();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = format!("{}.zip", archive::safe_file_name(prefix));
    let target = dir.join(&name);
    let zip_err = |e: zip::result::ZipError| io(&target)(std::io::Error::other(e));
    let scratch = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(scratch));
    let options = archive::zip_entry(chrono::Utc::now());
    for (rel, path) in &files {
        zip.start_file(rel.as_str(), options).map_err(zip_err)?;
        let mut file = std::fs::File::open(path).map_err(io(path))?;
        std::io::copy(&mut file, &mut zip).map_err(io(path))?;
    }
    let scratch = zip
        .finish()
        .map_err(zip_err)?
        .into_inner()
        .map_err(|e| io(&target)(e.into_error()))?;
    scratch.as_file().sync_all().map_err(io(&target))?;
    let file = scratch.persist(&target).map_err(|e| io(&target)(e.error))?;
    let len = file.metadata().map_err(io(&target))?.len();
    Ok(Delivered {
        destination: format!("directory {}", dir.display()),
        objects: vec![(name, len)],
    })
}

fn list_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), DeliveryError> {
    let io = |source| DeliveryError::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_dir() {
            list_files(root, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((parts.join("/"), p));
        }
    }
    Ok(())
}
