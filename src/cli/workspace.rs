//! The high-level resolution step after argument parsing: the project, its state store and
//! engines bound to a tenant.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use crate::load::{Diagnostics, Project, load_project, load_request};
use crate::model::Request;
use crate::store::Store;
use crate::workflow::{Workflow, WorkflowError};

/// A loaded project and its state store.
pub struct Workspace {
    /// The project.
    pub project: Arc<Project>,
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
                print_diagnostics(&p.warnings, color);
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

/// Diagnostics on stderr: as `validate` shows them, or one JSON log line each.
pub fn print_diagnostics(diags: &Diagnostics, color: bool) {
    if !super::progress::json_logs() {
        eprint!("{}", diags.render_human(color));
        return;
    }
    for d in diags.iter() {
        let level = match d.severity {
            crate::load::Severity::Error => "ERROR",
            crate::load::Severity::Warning => "WARN",
        };
        let fields = serde_json::to_value(d).unwrap_or_default();
        super::progress::note(level, &d.message, fields);
    }
}

fn invalid(diags: &Diagnostics, color: bool) -> anyhow::Error {
    print_diagnostics(diags, color);
    anyhow!("fix the problems above, then try again (`dsrctl validate` checks without running)")
}

impl Workspace {
    /// Loads the project and opens its state store.
    pub async fn open(dir: &Path, color: bool) -> Result<Self> {
        Self::with_project(project(dir, color)?).await
    }

    /// Like [`Workspace::open`], printing nothing (for shell completion): an invalid project
    /// is an error without its diagnostics.
    pub async fn open_quiet(dir: &Path) -> Result<Self> {
        let project = load_project(dir).map_err(|d| anyhow!("{} problem(s)", d.len()))?;
        Self::with_project(project).await
    }

    async fn with_project(project: Project) -> Result<Self> {
        let state_dir = project.root.join(".dsrctl");
        // Personal data in the store is sealed with the project's data key, audit entries
        // MACed with its audit key.
        let store = crate::workflow::open_store(&project, &state_dir)
            .await
            .with_context(|| "opening the state store")?;
        Ok(Workspace {
            project: Arc::new(project),
            store,
            state_dir,
        })
    }

    /// Calls in flight at once: the `--parallelism` flag, else the configuration's
    /// `defaults.parallelism`.
    pub fn parallelism(&self, flag: Option<usize>) -> usize {
        flag.unwrap_or_else(|| {
            usize::try_from(self.project.config.defaults.parallelism).unwrap_or(usize::MAX)
        })
    }

    /// The workflow, acting as the person at the command line (leases on runs are taken in
    /// the name of this user and process).
    pub fn workflow(&self, parallelism: Option<usize>) -> Workflow {
        self.workflow_as(&cli_holder(), parallelism)
    }

    /// The workflow acting as `holder`.
    pub fn workflow_as(&self, holder: &str, parallelism: Option<usize>) -> Workflow {
        Workflow::new(
            self.project.clone(),
            self.store.clone(),
            &self.state_dir,
            holder,
        )
        .with_parallelism(self.parallelism(parallelism))
    }
}

/// Who the command line acts as: its user, machine and process.
fn cli_holder() -> String {
    cli_holder_for(&std::env::var("USER").unwrap_or_else(|_| "user".to_owned()))
}

/// A lease holder name for this command-line process acting for `who`.
pub fn cli_holder_for(who: &str) -> String {
    format!("cli:{who}@{}:{}", host(), std::process::id())
}

fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether `holder` is a command-line process of this machine that has ended (killed, or
/// crashed). Only Linux can tell (`/proc`); elsewhere its lease is waited out.
fn ended_here(holder: &str) -> bool {
    let Some((who, pid)) = holder
        .strip_prefix("cli:")
        .and_then(|rest| rest.rsplit_once(':'))
    else {
        return false;
    };
    let same_host = who.rsplit_once('@').is_some_and(|(_, h)| h == host());
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    same_host
        && pid != std::process::id()
        && cfg!(target_os = "linux")
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Takes the lease on `run` for this command, taking it over at once from a command-line
/// process of this machine that has ended (so `dsrctl resume` right after a crash need not
/// wait for the dead process's lease to lapse).
pub async fn lease(wf: &Workflow, run: &str) -> Result<()> {
    match wf.lease(run).await {
        Err(WorkflowError::Leased { holder, .. }) if ended_here(&holder) => {
            warn_note!("taking run {run} over from {holder}, which is no longer running");
            wf.store().release(&holder, run).await?;
            Ok(wf.lease(run).await?)
        }
        other => Ok(other?),
    }
}
