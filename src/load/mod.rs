//! Loading and validation (placeholder until the loader lands).
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::{Playbook, ProjectConfig};

/// A loaded, validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Project root.
    pub root: PathBuf,
    /// Config file, relative.
    pub config_file: String,
    /// The config.
    pub config: ProjectConfig,
    /// Playbooks.
    pub playbooks: Vec<LoadedPlaybook>,
    /// Input digests.
    pub inputs: BTreeMap<String, String>,
}

/// A playbook and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedPlaybook {
    /// Path relative to the root.
    pub path: String,
    /// The playbook.
    pub playbook: Playbook,
}
