//! A whole project: `dsrctl.yaml` and every playbook it points at, checked together.

use std::collections::BTreeMap;
use std::path::Path;

use super::file::{LoadedFile, attach_sources, load_file};
use super::role::{Layout, Role, by_content};
use super::schema::SchemaKind;
use super::source::{Source, is_yaml_name};
use super::yaml::Document;
use super::{CONFIG_FILE, Code, Diagnostic, Diagnostics, LoadedPlaybook, Project, checks};
use crate::model::{Playbook, ProjectConfig};

/// Most threads used to load playbooks.
const MAX_WORKERS: usize = 8;

/// Everything read for a project, valid or not.
pub(crate) struct Checked {
    /// The config: valid, or recovered from its schema errors (then `diags` has them).
    pub config: Option<ProjectConfig>,
    /// `dsrctl.yaml` as written.
    pub config_doc: Option<Document>,
    /// Where playbooks and requests are kept.
    pub layout: Layout,
    /// The playbooks: valid, or recovered from their schema errors.
    pub playbooks: Vec<LoadedPlaybook>,
    /// Whether every playbook file gave a playbook (none was unreadable or unrecoverable).
    pub complete: bool,
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

/// A config, its findings (the literal secrets it holds among them) and the secrets.
pub(crate) struct LoadedConfig {
    pub config: Option<ProjectConfig>,
    pub written: Option<Document>,
    pub diags: Diagnostics,
    pub secrets: Vec<String>,
    pub sha256: String,
}

/// Load and check a config file (`dsrctl.yaml`, or another file checked as one).
pub(crate) fn load_config(file: &str, bytes: &[u8]) -> LoadedConfig {
    let loaded: LoadedFile<ProjectConfig> = load_file(file, bytes, SchemaKind::Config);
    let mut diags = loaded.diags;
    let mut secrets = Vec::new();
    let written = loaded.original.or(loaded.doc);
    if let Some(doc) = &written {
        let (found, s) = checks::check_config(doc);
        secrets = s;
        // A literal secret is the finding at its place; the schema's "none of the valid
        // shapes" there says the same less clearly.
        let places: Vec<(usize, usize)> = found.iter().map(|d| (d.line, d.col)).collect();
        diags
            .0
            .retain(|d| d.code == Code::LiteralSecret || !places.contains(&(d.line, d.col)));
        diags.extend(found);
        attach_sources(&mut diags, &doc.file, &doc.text);
    } else {
        checks::mask_unparsed(&mut diags, file);
    }
    LoadedConfig {
        config: loaded.value,
        written,
        diags,
        secrets,
        sha256: loaded.sha256,
    }
}

/// Load and check the config and the given playbook files (all when `files` is `None`).
pub(crate) fn check_project(source: &dyn Source, files: Option<Vec<String>>) -> Checked {
    let mut diags = Diagnostics::default();
    let mut inputs = BTreeMap::new();
    let mut config = None;
    let mut config_doc = None;
    let mut secrets = Vec::new();
    match source.read(CONFIG_FILE) {
        Ok(bytes) => {
            let loaded = load_config(CONFIG_FILE, &bytes);
            inputs.insert(CONFIG_FILE.to_owned(), loaded.sha256);
            diags.extend(loaded.diags);
            config = loaded.config;
            config_doc = loaded.written;
            secrets = loaded.secrets;
        }
        Err(e) => {
            diags.push(
                read_error(CONFIG_FILE, &e)
                    .with_help("run `dsrctl init` to create a project, or run from its directory"),
            );
            if files.is_none() {
                return Checked {
                    config,
                    config_doc,
                    layout: Layout::of(None, None),
                    playbooks: Vec::new(),
                    complete: false,
                    inputs,
                    diags,
                };
            }
        }
    }
    let layout = Layout::of(config.as_ref(), config_doc.as_ref().map(|d| &d.value));
    let files = match files {
        Some(f) => f,
        None => list_playbooks(source, &layout.playbooks, &mut diags),
    };
    let view = config
        .as_ref()
        .map(|c| checks::ConfigView::new(c, config_doc.as_ref()));
    let mut playbooks = Vec::new();
    let mut docs = Vec::new();
    let mut follow_ons = BTreeMap::new();
    let mut complete = true;
    for (rel, loaded) in load_playbooks(source, &files, view.as_ref(), &layout) {
        let loaded = match loaded {
            Ok(l) => l,
            Err(d) => {
                diags.push(d);
                complete = false;
                continue;
            }
        };
        inputs.insert(rel.clone(), loaded.sha256);
        diags.extend(loaded.diags);
        match (loaded.value, loaded.doc) {
            (Some(p), Some(doc)) => {
                playbooks.push(LoadedPlaybook {
                    path: rel.clone(),
                    playbook: p,
                });
                docs.push(doc);
                follow_ons.insert(rel, loaded.follow_on);
            }
            _ => complete = false,
        }
    }
    let mut across = checks::check_all(&playbooks, &docs, complete);
    across
        .0
        .retain(|d| !follow_ons.get(&d.file).is_some_and(|f| f.covers(d)));
    for doc in &docs {
        attach_sources(&mut across, &doc.file, &doc.text);
    }
    diags.extend(across);
    checks::redact(&mut diags, CONFIG_FILE, &secrets);
    diags.sort();
    Checked {
        config,
        config_doc,
        layout,
        playbooks,
        complete,
        inputs,
        diags,
    }
}

type PlaybookResult = (String, Result<LoadedFile<Playbook>, Diagnostic>);

/// A request in a playbook directory, named as such instead of as a playbook missing every
/// key; `None` for a file that is no request.
fn misplaced(rel: &str, doc: Option<&Document>, layout: &Layout) -> Option<Diagnostic> {
    if by_content(&doc?.value)? != Role::Request {
        return None;
    }
    let dir = layout.playbook_dir(rel).unwrap_or(".");
    Some(
        Diagnostic::error(
            Code::MisplacedFile,
            rel,
            0,
            0,
            format!("`{rel}` is a request, but it is in the playbook directory `{dir}`"),
        )
        .with_help(format!(
            "move it to `{}/`, where requests are kept",
            layout.requests
        )),
    )
}

/// Read, parse, schema-check and check every playbook on its own, in parallel; results in
/// the order of `files`.
fn load_playbooks(
    source: &dyn Source,
    files: &[String],
    config: Option<&checks::ConfigView<'_>>,
    layout: &Layout,
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
        if let Some(d) = misplaced(rel, loaded.written(), layout) {
            loaded.diags = Diagnostics(vec![d]);
            loaded.value = None;
        }
        if let Some(p) = &mut loaded.value {
            // A dataset's steps are derived before the checks, which then see (and the
            // compiler later takes) ordinary steps.
            let empty = BTreeMap::new();
            let strategies = config.map_or(&empty, |c| &c.config.erasure);
            super::dataset::expand(p, strategies);
        }
        if let (Some(p), Some(doc)) = (&loaded.value, &loaded.doc) {
            let mut own = checks::check_one(p, doc, config, &loaded.follow_on);
            attach_sources(&mut own, &doc.file, &doc.text);
            loaded.diags.extend(own);
        }
        // The checks across playbooks need positions only; the JSON copies can go.
        if let Some(doc) = &mut loaded.doc {
            doc.value = serde_json::Value::Null;
        }
        loaded.original = None;
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
