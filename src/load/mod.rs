//! Loading and validation of playbooks, requests and the project config.
//!
//! YAML is parsed with a position for every key and value, checked against the generated
//! JSON Schemas, deserialized into the model, and checked for meaning (references, cycles,
//! templates, connectors). Every problem becomes a [`Diagnostic`] with file, line, column,
//! a stable code and help; all of them are collected before anything stops.

mod checks;
mod code;
mod context;
mod deserialize;
mod diagnostic;
mod file;
mod position;
mod project;
mod render;
mod schema;
mod schema_check;
mod shape;
mod source;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use code::{Code, UnknownCode};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use position::{NodePos, Pos, PosMap};
pub use render::DIAGNOSTICS_FORMAT_VERSION;
pub use schema::{SchemaKind, schema_json, schema_value, write_schemas};
pub use source::{FsSource, Source, is_yaml_name};
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
    project::into_project(root, project::check_project(source, None))
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
    let loaded = file::load_file::<Request>(file, bytes, SchemaKind::Request);
    let mut diags = loaded.diags;
    if let (Some(req), Some(doc)) = (&loaded.value, &loaded.doc) {
        diags.extend(checks::check_request(req, doc));
        file::attach_sources(&mut diags, &doc.file, &doc.text);
    }
    diags.sort();
    match loaded.value {
        Some(r) if !diags.has_errors() => Ok(r),
        _ => Err(diags),
    }
}

/// `dsrctl validate [PATH...]`: findings for the given playbook files and directories
/// (relative to `root` or absolute), checked in the context of the whole project; with no
/// paths, the whole project including `dsrctl.yaml`.
pub fn validate_paths(root: &Path, paths: &[PathBuf]) -> Diagnostics {
    let fs = FsSource(root.to_path_buf());
    if paths.is_empty() {
        return project::check_project(&fs, None).diags;
    }
    let mut diags = Diagnostics::default();
    let mut selected = Vec::new();
    let mut config_selected = false;
    for p in paths {
        let full = if p.is_absolute() {
            p.clone()
        } else {
            root.join(p)
        };
        let rel = source::relative_to(root, &full);
        if rel == CONFIG_FILE {
            config_selected = true;
        } else if full.is_dir() {
            match fs.list_yaml(&rel) {
                Ok(list) => selected.extend(list),
                Err(e) => diags.push(Diagnostic::error(
                    Code::ReadError,
                    &rel,
                    0,
                    0,
                    format!("cannot list `{rel}`: {e}"),
                )),
            }
        } else {
            selected.push(rel);
        }
    }
    // Check the selection together with the rest of the project (for references across
    // playbooks), then keep the findings about the selection.
    let mut all = Vec::new();
    let config_dirs = project::check_project(&fs, Some(Vec::new()));
    if let Some(c) = &config_dirs.config {
        let mut ignored = Diagnostics::default();
        all = project::list_playbooks(&fs, &c.playbooks, &mut ignored);
    }
    all.extend(selected.iter().cloned());
    all.sort();
    all.dedup();
    let checked = project::check_project(&fs, Some(all));
    diags.extend(Diagnostics(
        checked
            .diags
            .0
            .into_iter()
            .filter(|d| selected.contains(&d.file) || (config_selected && d.file == CONFIG_FILE))
            .collect(),
    ));
    diags.sort();
    diags
}
