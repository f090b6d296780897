//! The project's shared object storage (`storage` in dsrctl.yaml: a directory, Azure Blob or
//! S3): every spool file of collected records is kept there as soon as the engine writes it
//! (`runs/<run>/...`), and every export package built (`packages/<request>/<run>/...`), so a
//! worker other than the one that ran a request can build or fetch its package.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;

use super::WorkflowError;
use crate::deliver::{Delivered, DeliveryOptions, deliver_to, fetch_prefix, store_for};
use crate::engine::RunFiles;
use crate::load::Project;
use crate::secret::EnvFileResolver;

/// The project's shared storage.
pub struct SharedStorage {
    store: Arc<dyn ObjectStore>,
    description: String,
}

impl SharedStorage {
    /// The storage `project` configures, if any.
    pub fn for_project(project: &Project) -> Result<Option<SharedStorage>, WorkflowError> {
        let Some(dest) = &project.config.storage else {
            return Ok(None);
        };
        let opts = DeliveryOptions::new("", &project.root);
        let secrets = EnvFileResolver::new(&project.root);
        let (store, description) =
            store_for(dest, &opts, &secrets).map_err(|e| WorkflowError::Storage(e.to_string()))?;
        Ok(Some(SharedStorage { store, description }))
    }

    /// Where it is, without secrets.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Downloads the files of `run` that `run_dir` does not hold yet; how many.
    pub async fn fetch_run(&self, run: &str, run_dir: &Path) -> Result<usize, WorkflowError> {
        fetch_prefix(
            self.store.as_ref(),
            &self.description,
            &format!("runs/{run}"),
            run_dir,
        )
        .await
        .map_err(|e| WorkflowError::Storage(e.to_string()))
    }

    /// Keeps an export package (a directory or a file) of `request`'s run `run`.
    pub async fn keep_package(
        &self,
        request: &str,
        run: &str,
        package: &Path,
    ) -> Result<Delivered, WorkflowError> {
        let prefix = format!(
            "packages/{}/{run}",
            crate::deliver::archive::safe_file_name(request)
        );
        deliver_to(self.store.as_ref(), &self.description, package, &prefix)
            .await
            .map_err(|e| WorkflowError::Storage(e.to_string()))
    }
}

#[async_trait::async_trait]
impl RunFiles for SharedStorage {
    async fn keep(&self, run_id: &str, rel: &Path, local: &Path) -> Result<(), String> {
        let dir = rel.parent().map(|p| p.to_string_lossy().replace('\\', "/"));
        let prefix = match dir {
            Some(d) if !d.is_empty() => format!("runs/{run_id}/{d}"),
            _ => format!("runs/{run_id}"),
        };
        deliver_to(self.store.as_ref(), &self.description, local, &prefix)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
