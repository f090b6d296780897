//! The project's data key, which seals personal data at rest (state store, spool files,
//! saved plans): `data_key` of dsrctl.yaml (`{ env: NAME }` or `{ file: path }`, 32 bytes
//! as hex or base64), else one made on first use in `.dsrctl/data.key`, so a new project
//! works at once. Workers sharing a PostgreSQL store, and machines applying plans made
//! elsewhere, need the same configured key.

use std::path::Path;
use std::sync::Arc;

use super::seal::generated_key;
use super::{Workflow, WorkflowError};
use crate::journal::DataKey;
use crate::load::Project;
use crate::model::UrlSource;
use crate::secret::{EnvFileResolver, SecretResolver};
use crate::store::{SealedStore, Store};

/// The file holding a generated data key, in the state directory.
const KEY_FILE: &str = "data.key";

/// The data key of `project`, whose state directory is `state_dir`.
pub fn project_data_key(project: &Project, state_dir: &Path) -> Result<DataKey, WorkflowError> {
    let text = match &project.config.data_key {
        Some(r) => EnvFileResolver::new(&project.root)
            .resolve(r)
            .map_err(|e| WorkflowError::DataKey(e.to_string()))?,
        None => {
            let bytes = generated_key(&state_dir.join(KEY_FILE)).map_err(WorkflowError::DataKey)?;
            String::from_utf8(bytes).map_err(|_| {
                WorkflowError::DataKey(format!("{KEY_FILE} in the state directory is not text"))
            })?
        }
    };
    DataKey::parse(&text).map_err(|e| WorkflowError::DataKey(e.to_string()))
}

/// Opens the state store `project` names (`state` in dsrctl.yaml, else
/// `.dsrctl/state.db` under `state_dir`), with its personal data sealed under the
/// project's data key and its audit entries MACed with the project's audit key: how every
/// command, and any program using this library, opens it.
pub async fn open_store(
    project: &Project,
    state_dir: &Path,
) -> Result<Arc<dyn Store>, WorkflowError> {
    let location = match &project.config.state {
        None => state_dir.join("state.db").display().to_string(),
        Some(UrlSource::Literal(s)) => s.clone(),
        Some(UrlSource::Secret(r)) => EnvFileResolver::new(&project.root)
            .resolve(r)
            .map_err(|e| WorkflowError::Storage(format!("the state store's URL: {e}")))?,
    };
    let store = crate::store::open(&location, &project.root).await?;
    let shared = location.starts_with("postgres://") || location.starts_with("postgresql://");
    if shared && project.config.data_key.is_none() {
        tracing::warn!(
            "the state store is shared (PostgreSQL) but `data_key` is not set in dsrctl.yaml: \
             this worker seals personal data with its own .dsrctl/data.key, which other \
             workers cannot open; set `data_key: {{ env: NAME }}` to one key for all"
        );
    }
    if shared && project.config.storage.is_none() {
        tracing::warn!(
            "the state store is shared (PostgreSQL) but `storage` is not set in dsrctl.yaml: \
             collected records stay on the disk of the worker that ran the request, and only \
             it can build the export package"
        );
    }
    let store = SealedStore::wrap(store, project_data_key(project, state_dir)?);
    // Audit entries are MACed with the project's audit key; one that cannot be read fails the
    // first entry, naming why, rather than every command (a dry run or a report appends none).
    match super::audit_key(project, state_dir) {
        Ok(key) => store.set_audit_key(Ok(&key)),
        Err(e) => store.set_audit_key(Err(&e.to_string())),
    }
    Ok(store)
}

impl Workflow {
    /// The project's data key (see [`project_data_key`]).
    pub fn data_key(&self) -> Result<DataKey, WorkflowError> {
        project_data_key(&self.project, &self.state_dir)
    }
}
