//! A whole project: `dsrctl.yaml` and every playbook it points at, checked together.

use std::collections::BTreeMap;
use std::path::Path;

use super::file::{LoadedFile, attach_sources, load_file};
use super::schema::SchemaKind;
use super::source::{Source, is_yaml_name};
use super::yaml::Document;
use super::{CONFIG_FILE, Code, Diagnostic, Diagnostics, LoadedPlaybook, Project, checks};
use crate::model::{Playbook, ProjectConfig};

/// Most threads used to load playbooks.
const MAX_WORKERS: usize = 8;

/// Everything read for a project, valid or not.
pub(crate) struct Checked {
    pub config: Option<ProjectConfig>,
    pub playbooks: Vec<LoadedPlaybook>,
    pub inputs: BTreeMap<String, String>,
    pub diags: Diagnostics,
}

fn read_error(file: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        Code::ReadError,
        file,
        0,
        0,
        format!("cannot read `{file}`: {e}"),
    )
}

/// The playbook directories of a config, also from a config that did not validate.
fn playbook_dirs(config: Option<&ProjectConfig>, doc: Option<&Document>) -> Vec<String> {
    if let Some(c) = config {
        return c.playbooks.clone();
    }
    let listed = doc
        .and_then(|d| d.value.get("playbooks"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        });
    listed.unwrap_or_else(|| vec!["policies".to_owned()])
}

/// Every playbook file of the project, sorted, without duplicates.
pub(crate) fn list_playbooks(
    source: &dyn Source,
    dirs: &[String],
    diags: &mut Diagnostics,
) -> Vec<String> {
    let mut files = Vec::new();
    for dir in dirs {
        let dir = dir.trim_start_matches("./");
        if is_yaml_name(dir) {
            files.push(dir.to_owned());
            continue;
        }
        match source.list_yaml(dir) {
            Ok(list) => files.extend(list),
            Err(e) => diags.push(
                Diagnostic::error(
                    Code::ReadError,
                    CONFIG_FILE,
                    0,
                    0,
                    format!("cannot list playbook directory `{dir}`: {e}"),
                )
                .with_help("fix `playbooks:` in dsrctl.yaml or create the directory"),
            ),
        }
    }
    files.sort();
    files.dedup();
    files
}

/// Load and check the config and the given playbook files (all when `files` is `None`).
pub(crate) fn check_project(source: &dyn Source, files: Option<Vec<String>>) -> Checked {
    let mut diags = Diagnostics::default();
    let mut inputs = BTreeMap::new();
    let mut config = None;
    let mut config_doc = None;
    match source.read(CONFIG_FILE) {
        Ok(bytes) => {
            let loaded: LoadedFile<ProjectConfig> =
                load_file(CONFIG_FILE, &bytes, SchemaKind::Config);
            inputs.insert(CONFIG_FILE.to_owned(), loaded.sha256);
            diags.extend(loaded.diags);
            config = loaded.value;
            config_doc = loaded.doc;
        }
        Err(e) => {
            diags.push(
                read_error(CONFIG_FILE, &e)
                    .with_help("run `dsrctl init` to create a project, or run from its directory"),
            );
            if files.is_none() {
                return Checked {
                    config,
                    playbooks: Vec::new(),
                    inputs,
                    diags,
                };
            }
        }
    }
    let files = match files {
        Some(f) => f,
        None => {
            let dirs = playbook_dirs(config.as_ref(), config_doc.as_ref());
            list_playbooks(source, &dirs, &mut diags)
        }
    };
    let mut playbooks = Vec::new();
    let mut docs = Vec::new();
    for (rel, loaded) in load_playbooks(source, &files, config.as_ref()) {
        let loaded = match loaded {
            Ok(l) => l,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        inputs.insert(rel.clone(), loaded.sha256);
        diags.extend(loaded.diags);
        if let (Some(p), Some(doc)) = (loaded.value, loaded.doc) {
            playbooks.push(LoadedPlaybook {
                path: rel,
                playbook: p,
            });
            docs.push(doc);
        }
    }
    let mut semantic = checks::check_all(config.as_ref(), config_doc.as_ref(), &playbooks, &docs);
    for doc in docs.iter().chain(config_doc.as_ref()) {
        attach_sources(&mut semantic, &doc.file, &doc.text);
    }
    diags.extend(semantic);
    diags.sort();
    Checked {
        config,
        playbooks,
        inputs,
        diags,
    }
}

type PlaybookResult = (String, Result<LoadedFile<Playbook>, Diagnostic>);

/// Read, parse, schema-check and check every playbook on its own, in parallel; results in
/// the order of `files`.
fn load_playbooks(
    source: &dyn Source,
    files: &[String],
    config: Option<&ProjectConfig>,
) -> Vec<PlaybookResult> {
    // Reading stays on this thread (a `Source` need not be `Sync`); the work is parallel.
    let read: Vec<(&String, std::io::Result<Vec<u8>>)> =
        files.iter().map(|rel| (rel, source.read(rel))).collect();
    let load_one = |(rel, bytes): &(&String, std::io::Result<Vec<u8>>)| -> PlaybookResult {
        let rel: &String = rel;
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => return (rel.clone(), Err(read_error(rel, e))),
        };
        let mut loaded: LoadedFile<Playbook> = load_file(rel, bytes, SchemaKind::Playbook);
        if let (Some(p), Some(doc)) = (&loaded.value, &loaded.doc) {
            let mut own = checks::check_one(p, doc, config);
            attach_sources(&mut own, &doc.file, &doc.text);
            loaded.diags.extend(own);
        }
        // The checks across playbooks need positions only; the JSON copy can go.
        if let Some(doc) = &mut loaded.doc {
            doc.value = serde_json::Value::Null;
        }
        (rel.clone(), Ok(loaded))
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS);
    if workers <= 1 || read.len() < 2 * workers {
        return read.iter().map(load_one).collect();
    }
    let chunk = read.len().div_ceil(workers);
    let load_one = &load_one;
    std::thread::scope(|scope| {
        let handles: Vec<_> = read
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(load_one).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(read.len());
        for (h, part) in handles.into_iter().zip(read.chunks(chunk)) {
            match h.join() {
                Ok(results) => out.extend(results),
                // A worker that panicked (a bug, not bad input): load its files here instead.
                Err(_) => out.extend(part.iter().map(load_one)),
            }
        }
        out
    })
}

/// The project, or every finding when there is an error.
pub(crate) fn into_project(root: &Path, checked: Checked) -> Result<Project, Diagnostics> {
    if checked.diags.has_errors() {
        return Err(checked.diags);
    }
    match checked.config {
        Some(config) => Ok(Project {
            root: root.to_path_buf(),
            config_file: CONFIG_FILE.to_owned(),
            config,
            playbooks: checked.playbooks,
            inputs: checked.inputs,
            warnings: checked.diags,
        }),
        None => Err(checked.diags),
    }
}
