//! Loading and validation of playbooks, requests and the project config.
//!
//! YAML is parsed with a position for every key and value, checked against the generated
//! JSON Schemas, deserialized into the model, and checked for meaning (references, cycles,
//! templates, connectors). Every problem becomes a [`Diagnostic`] with file, line, column,
//! a stable [`Code`] and help; all of them are collected before anything stops. A file with
//! schema errors is recovered (`recover.rs`) so the checks of meaning still run on the rest
//! of it, and findings that only follow from an earlier one are left out.

mod cache;
mod cache_file;
pub(crate) mod checks;
mod code;
mod context;
pub mod dataset;
mod deserialize;
mod diagnostic;
mod diagnostic_output;
mod file;
mod index;
mod position;
mod project;
mod recover;
mod role;
mod schema;
mod schema_check;
mod shape;
mod source;
mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use cache::{CACHE_FILE, Cache, Stamp};
pub use code::{Code, UnknownCode};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use diagnostic_output::DIAGNOSTICS_FORMAT_VERSION;
pub use position::{NodePos, Pos, PosMap};
pub use schema::{SchemaKind, schema_json, schema_value, write_schemas};
pub use source::{FsSource, Source, is_yaml_name};
pub use validate::{validate_paths, validate_paths_with, validate_project, validate_project_with};
pub use yaml::{Document, MAX_DEPTH, MAX_FILE_BYTES, parse_yaml};

use crate::model::{Playbook, ProjectConfig, Request};

/// The project config file name, at the project root.
pub const CONFIG_FILE: &str = "dsrctl.yaml";

/// A loaded, valid project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project root directory.
    pub root: PathBuf,
    /// The config file, relative to `root` (`dsrctl.yaml`).
    pub config_file: String,
    /// The project config.
    pub config: ProjectConfig,
    /// Every playbook, sorted by path.
    pub playbooks: Vec<LoadedPlaybook>,
    /// Relative path → SHA-256 (hex) of the config and every playbook.
    pub inputs: BTreeMap<String, String>,
    /// Warnings found while loading (no errors: those make loading fail).
    pub warnings: Diagnostics,
}

/// One playbook and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPlaybook {
    /// Path relative to the project root, `/` separators.
    pub path: String,
    /// The playbook.
    pub playbook: Playbook,
}

/// Load and validate the project in `root` from the file system.
pub fn load_project(root: &Path) -> Result<Project, Diagnostics> {
    load_project_from(&FsSource(root.to_path_buf()), root)
}

/// Load and validate a project from any [`Source`] (the working tree, a git ref, ...).
/// `root` is recorded in the [`Project`].
pub fn load_project_from(source: &dyn Source, root: &Path) -> Result<Project, Diagnostics> {
    let want = project::Want {
        playbooks: true,
        cache: None,
    };
    project::into_project(root, project::check_project(source, None, want))
}

/// Load and validate a request file.
pub fn load_request(path: &Path) -> Result<Request, Diagnostics> {
    let file = path.to_string_lossy().replace('\\', "/");
    match std::fs::read(path) {
        Ok(bytes) => load_request_bytes(&file, &bytes),
        Err(e) => Err(Diagnostics(vec![Diagnostic::error(
            Code::ReadError,
            &file,
            0,
            0,
            format!("cannot read `{file}`: {e}"),
        )])),
    }
}

/// Load and validate a request from text; `file` names it in findings.
pub fn load_request_str(file: &str, text: &str) -> Result<Request, Diagnostics> {
    load_request_bytes(file, text.as_bytes())
}

/// Load and validate a request from bytes; `file` names it in findings.
pub fn load_request_bytes(file: &str, bytes: &[u8]) -> Result<Request, Diagnostics> {
    let (value, diags) = validate::check_request_file(file, bytes, None);
    match value {
        Some(r) if !diags.has_errors() => Ok(r),
        _ => Err(diags),
    }
}
