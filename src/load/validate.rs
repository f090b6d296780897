//! `dsrctl validate`: the whole project (config, playbooks and requests), or the files
//! given, each checked in its role and in the context of the rest of the project.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::cache::Cache;
use super::checks::{ConfigView, RequestContext};
use super::file::{attach_sources, load_file};
use super::project::{Checked, Want, check_project, list_playbooks, load_config};
use super::role::{Role, by_content};
use super::schema::SchemaKind;
use super::source::{FsSource, Source, relative_to};
use super::yaml::parse_yaml;
use super::{CONFIG_FILE, Code, Diagnostic, Diagnostics, Severity, checks};
use crate::model::Request;

/// `dsrctl validate [PATH...]`: findings for the given files and directories (relative to
/// `root` or absolute), each checked as what it is (a playbook, a request, the config) in
/// the context of the whole project; with no paths, the whole project: `dsrctl.yaml`, every
/// playbook and every request in the requests directory.
pub fn validate_paths(root: &Path, paths: &[PathBuf]) -> Diagnostics {
    validate_paths_with(root, paths, None)
}

/// Codes of findings in a playbook or request about what it takes from `dsrctl.yaml`.
const REFERS_TO_CONFIG: &[Code] = &[
    Code::UnknownConnector,
    Code::ConnectorKindMismatch,
    Code::UnknownTenant,
];

/// [`validate_paths`] with the validation cache: the findings of a playbook that did not
/// change since they were recorded are taken from it, and those of the others recorded.
/// With paths, the findings are those of the given files and of the files that refer to
/// them: playbooks that run `after` a given playbook's service (as it is now, or as it was
/// when last checked, so renaming it shows who still names the old one) or define the same
/// service; for `dsrctl.yaml`, what playbooks and requests take from it (connectors,
/// tenants).
pub fn validate_paths_with(
    root: &Path,
    paths: &[PathBuf],
    cache: Option<&mut Cache>,
) -> Diagnostics {
    let fs = FsSource(root.to_path_buf());
    if paths.is_empty() {
        return validate_project_with(&fs, cache);
    }
    let mut diags = Diagnostics::default();
    // The config alone first: its layout says what the given files are.
    let base = check_project(&fs, Some(Vec::new()), Want::default());
    let mut playbooks = BTreeSet::new();
    let mut requests = Vec::new();
    let mut configs = BTreeSet::new();
    for rel in selected_files(&fs, root, paths, &mut diags) {
        match role_of(&fs, &base, &rel) {
            Role::Playbook => {
                playbooks.insert(rel);
            }
            Role::Request => requests.push(rel),
            Role::Config => {
                configs.insert(rel);
            }
        }
    }
    // The services the selection defined when last checked.
    let mut services: BTreeSet<String> = cache
        .as_deref()
        .map(|c| {
            playbooks
                .iter()
                .filter_map(|rel| Some(c.get(rel)?.outcome.index.as_ref()?.service.clone()))
                .collect()
        })
        .unwrap_or_default();
    // The selected playbooks with the rest of the project (for references across them);
    // then the findings about the selection and its referrers.
    let mut all = Vec::new();
    if base.config.is_some() {
        let mut ignored = Diagnostics::default();
        all = list_playbooks(&fs, &base.layout.playbooks, &mut ignored);
    }
    all.extend(playbooks.iter().cloned());
    all.sort();
    all.dedup();
    let want = Want {
        playbooks: false,
        cache,
    };
    let checked = check_project(&fs, Some(all), want);
    services.extend(
        checked
            .index
            .iter()
            .filter(|i| playbooks.contains(&i.path))
            .map(|i| i.service.clone()),
    );
    let referrers: BTreeSet<&str> = checked
        .index
        .iter()
        .filter(|i| {
            services.contains(&i.service) || services.iter().any(|s| i.runs_after(s.as_str()))
        })
        .map(|i| i.path.as_str())
        .collect();
    let config_selected = configs.contains(CONFIG_FILE);
    diags.extend(Diagnostics(
        checked
            .diags
            .0
            .iter()
            .filter(|d| {
                playbooks.contains(&d.file)
                    || configs.contains(&d.file)
                    || referrers.contains(d.file.as_str())
                    || (config_selected && REFERS_TO_CONFIG.contains(&d.code))
            })
            .cloned()
            .collect(),
    ));
    for rel in configs.iter().filter(|c| c.as_str() != CONFIG_FILE) {
        diags.extend(check_other_config(&fs, rel));
    }
    diags.extend(check_requests(&fs, &checked, &requests));
    if config_selected {
        // Every request names its tenant in dsrctl.yaml.
        let mut ignored = Diagnostics::default();
        let others: Vec<String> = list_requests(&fs, &checked.layout.requests, &mut ignored)
            .into_iter()
            .filter(|r| !requests.contains(r))
            .collect();
        let found = check_requests(&fs, &checked, &others);
        diags.extend(Diagnostics(
            found
                .0
                .into_iter()
                .filter(|d| REFERS_TO_CONFIG.contains(&d.code))
                .collect(),
        ));
    }
    diags.sort();
    diags
}

/// The whole project as `source` has it (the working tree, or an editor's unsaved buffers
/// over it): `dsrctl.yaml`, every playbook and every request in the requests directory.
pub fn validate_project(source: &dyn Source) -> Diagnostics {
    validate_project_with(source, None)
}

/// [`validate_project`] with the validation cache.
pub fn validate_project_with(source: &dyn Source, cache: Option<&mut Cache>) -> Diagnostics {
    let want = Want {
        playbooks: false,
        cache,
    };
    let checked = check_project(source, None, want);
    let mut diags = Diagnostics::default();
    let requests = list_requests(source, &checked.layout.requests, &mut diags);
    diags.extend(checked.diags.clone());
    diags.extend(check_requests(source, &checked, &requests));
    diags.sort();
    diags
}

/// The files under the given paths, relative to the root, `/` separators.
fn selected_files(
    fs: &FsSource,
    root: &Path,
    paths: &[PathBuf],
    diags: &mut Diagnostics,
) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        let full = if p.is_absolute() {
            p.clone()
        } else {
            root.join(p)
        };
        let rel = relative_to(root, &full);
        if full.is_dir() {
            match fs.list_yaml(&rel) {
                Ok(list) => out.extend(list),
                Err(e) => diags.push(Diagnostic::error(
                    Code::ReadError,
                    &rel,
                    0,
                    0,
                    format!("cannot list `{rel}`: {e}"),
                )),
            }
        } else {
            out.push(rel);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A file's role: by the directory it is in, else by its content, else a playbook.
fn role_of(fs: &FsSource, checked: &Checked, rel: &str) -> Role {
    if let Some(role) = checked.layout.by_folder(rel) {
        return role;
    }
    let content = fs
        .read(rel)
        .ok()
        .and_then(|bytes| parse_yaml(rel, &bytes).0)
        .and_then(|doc| by_content(&doc.value));
    content.unwrap_or(Role::Playbook)
}

/// The request files of the project; none when the requests directory does not exist.
fn list_requests(fs: &dyn Source, dir: &str, diags: &mut Diagnostics) -> Vec<String> {
    match fs.list_yaml(dir) {
        Ok(list) => list,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::ReadError,
                    CONFIG_FILE,
                    0,
                    0,
                    format!("cannot list the requests directory `{dir}`: {e}"),
                )
                .with_help("fix `requests:` in dsrctl.yaml"),
            );
            Vec::new()
        }
    }
}

/// A config-shaped file other than the project's `dsrctl.yaml`, checked on its own.
fn check_other_config(fs: &FsSource, rel: &str) -> Diagnostics {
    match fs.read(rel) {
        Ok(bytes) => {
            let mut loaded = load_config(rel, &bytes);
            checks::redact(&mut loaded.diags, rel, &loaded.secrets);
            loaded.diags
        }
        Err(e) => Diagnostics(vec![read_error(rel, &e)]),
    }
}

fn read_error(rel: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        Code::ReadError,
        rel,
        0,
        0,
        format!("cannot read `{rel}`: {e}"),
    )
}

/// Check request files against the checked project: its tenants, and the identities its
/// playbooks need (judged only when every playbook loaded without errors).
fn check_requests(fs: &dyn Source, checked: &Checked, files: &[String]) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let view = checked
        .config
        .as_ref()
        .map(|c| ConfigView::new(c, checked.config_doc.as_ref()));
    let playbooks_valid = checked.complete
        && !checked
            .diags
            .iter()
            .any(|d| d.severity == Severity::Error && d.file != CONFIG_FILE);
    let ctx = view.as_ref().map(|config| RequestContext {
        config,
        playbooks: playbooks_valid.then_some(checked.index.as_slice()),
    });
    for rel in files {
        match fs.read(rel) {
            Ok(bytes) => {
                if checked.layout.by_folder(rel) == Some(Role::Request)
                    && let Some(d) = misplaced_playbook(rel, &bytes, &checked.layout.requests)
                {
                    diags.push(d);
                    continue;
                }
                diags.extend(check_request_file(rel, &bytes, ctx.as_ref()).1);
            }
            Err(e) => diags.push(read_error(rel, &e)),
        }
    }
    diags
}

/// A playbook in the requests directory, named as such.
fn misplaced_playbook(rel: &str, bytes: &[u8], dir: &str) -> Option<Diagnostic> {
    let doc = parse_yaml(rel, bytes).0?;
    (by_content(&doc.value)? == Role::Playbook).then(|| {
        Diagnostic::error(
            Code::MisplacedFile,
            rel,
            0,
            0,
            format!("`{rel}` is a playbook, but it is in the requests directory `{dir}`"),
        )
        .with_help("move it to a playbook directory (`playbooks:` in dsrctl.yaml)")
    })
}

/// Load one request and check it, with the project when it is known: the request (valid
/// when there are no errors) and every finding.
pub(crate) fn check_request_file(
    file: &str,
    bytes: &[u8],
    project: Option<&RequestContext<'_>>,
) -> (Option<Request>, Diagnostics) {
    let loaded = load_file::<Request>(file, bytes, SchemaKind::Request);
    let mut diags = loaded.diags;
    if let Some(doc) = loaded.original.as_ref().or(loaded.doc.as_ref()) {
        let mut own = checks::check_request(doc, project);
        loaded.follow_on.drop_from(&mut own);
        attach_sources(&mut own, &doc.file, &doc.text);
        diags.extend(own);
    }
    diags.sort();
    (loaded.value, diags)
}
