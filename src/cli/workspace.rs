//! The high-level resolution step after argument parsing: the project, its state store and
//! engines bound to a tenant.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use crate::connectors::connectors_for_tenant;
use crate::engine::Engine;
use crate::load::{Diagnostics, Project, load_project, load_request};
use crate::model::{Request, SecretRef, UrlSource};
use crate::store::Store;

/// A loaded project and its state store.
pub struct Workspace {
    /// The project.
    pub project: Project,
    /// The state store.
    pub store: Arc<dyn Store>,
    /// The directory holding run files (spooled records, evidence).
    pub state_dir: PathBuf,
}

/// Loads the project, printing every diagnostic when it is invalid.
pub fn project(dir: &Path, color: bool) -> Result<Project> {
    match load_project(dir) {
        Ok(p) => {
            if !p.warnings.is_empty() {
                eprint!("{}", p.warnings.render_human(color));
            }
            Ok(p)
        }
        Err(diags) => Err(invalid(&diags, color)),
    }
}

/// Loads a request file, printing its diagnostics when it is invalid.
pub fn request(path: &Path, color: bool) -> Result<Request> {
    load_request(path).map_err(|d| invalid(&d, color))
}

fn invalid(diags: &Diagnostics, color: bool) -> anyhow::Error {
    eprint!("{}", diags.render_human(color));
    anyhow!("fix the problems above, then try again (`dsrctl validate` checks without running)")
}

impl Workspace {
    /// Loads the project and opens its state store.
    pub async fn open(dir: &Path, color: bool) -> Result<Self> {
        let project = project(dir, color)?;
        let state_dir = project.root.join(".dsrctl");
        let location = match &project.config.state {
            None => state_dir.join("state.db").display().to_string(),
            Some(UrlSource::Literal(s)) => s.clone(),
            Some(UrlSource::Secret(r)) => read_secret(r, &project.root)?,
        };
        let store = crate::store::open(&location, &project.root)
            .await
            .with_context(|| "opening the state store")?;
        Ok(Workspace {
            project,
            store,
            state_dir,
        })
    }

    /// An engine with the connectors of the request's tenant only.
    /// Calls in flight at once: the `--parallelism` flag, else the configuration's
    /// `defaults.parallelism`.
    pub fn parallelism(&self, flag: Option<usize>) -> usize {
        flag.unwrap_or_else(|| {
            usize::try_from(self.project.config.defaults.parallelism).unwrap_or(usize::MAX)
        })
    }

    pub async fn engine(&self, tenant: &str, parallelism: Option<usize>) -> Result<Engine> {
        let connectors = connectors_for_tenant(&self.project.config, tenant, &self.project.root)
            .await
            .with_context(|| format!("building the connectors of tenant `{tenant}`"))?;
        Ok(Engine::new(self.store.clone(), connectors, &self.state_dir)
            .with_parallelism(self.parallelism(parallelism)))
    }
}

fn read_secret(r: &SecretRef, base: &Path) -> Result<String> {
    use crate::secret::{EnvFileResolver, SecretResolver};
    Ok(EnvFileResolver::new(base).resolve(r)?)
}
