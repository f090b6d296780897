//! A whole project: `dsrctl.yaml` and every playbook it points at, checked together.

use std::collections::BTreeMap;
use std::path::Path;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::cache::{Cache, Outcome, Stamp, context_key};
use super::file::{LoadedFile, attach_sources, load_file};
use super::index::PlaybookIndex;
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
    /// The playbooks, valid or recovered from their schema errors, when they were asked
    /// for ([`Want::playbooks`]).
    pub playbooks: Vec<LoadedPlaybook>,
    /// What the checks across files know of every playbook that loaded.
    pub index: Vec<Arc<PlaybookIndex>>,
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

/// What [`check_project`] is asked for besides the findings.
#[derive(Default)]
pub(crate) struct Want<'c> {
    /// Keep every playbook (the compiler needs them); else only their indexes are kept.
    pub playbooks: bool,
    /// Take the findings of unchanged files from here, and record those of the others.
    pub cache: Option<&'c mut Cache>,
}

/// Load and check the config and the given playbook files (all when `files` is `None`).
pub(crate) fn check_project(
    source: &dyn Source,
    files: Option<Vec<String>>,
    want: Want<'_>,
) -> Checked {
    let mut diags = Diagnostics::default();
    let mut inputs = BTreeMap::new();
    let mut config = None;
    let mut config_doc = None;
    let mut secrets = Vec::new();
    let mut context = None;
    match source.read(CONFIG_FILE) {
        Ok(bytes) => {
            let loaded = load_config(CONFIG_FILE, &bytes);
            context = Some(context_key(&loaded.sha256));
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
                    index: Vec::new(),
                    complete: false,
                    inputs,
                    diags,
                };
            }
        }
    }
    let layout = Layout::of(config.as_ref(), config_doc.as_ref().map(|d| &d.value));
    let whole = files.is_none();
    let files = match files {
        Some(f) => f,
        None => list_playbooks(source, &layout.playbooks, &mut diags),
    };
    let view = config
        .as_ref()
        .map(|c| checks::ConfigView::new(c, config_doc.as_ref()));
    // Without a readable config the findings of a file are not those of any context.
    let mut cache = want.cache.filter(|_| context.is_some());
    if let (Some(cache), Some(context)) = (cache.as_deref_mut(), context) {
        cache.begin(context);
        if whole {
            let listed: std::collections::HashSet<&str> =
                files.iter().map(String::as_str).collect();
            cache.retain(|rel| listed.contains(rel));
        }
    }
    let ctx = LoadContext {
        source,
        config: view.as_ref(),
        layout: &layout,
        keep: want.playbooks,
        cache: cache.as_deref(),
    };
    let results = load_playbooks(&ctx, &files);
    let mut playbooks = Vec::new();
    let mut index = Vec::with_capacity(files.len());
    let mut complete = true;
    let mut parsed = 0;
    // The map is built from them at once, not entry by entry.
    let mut hashes = Vec::with_capacity(files.len());
    for (rel, result) in files.iter().zip(results) {
        let loaded = match result {
            Ok(l) => l,
            Err(d) => {
                diags.push(*d);
                complete = false;
                continue;
            }
        };
        parsed += usize::from(loaded.parsed);
        if let Some(cache) = cache.as_deref_mut()
            && loaded.fresh
        {
            cache.put(rel, loaded.stamp, &loaded.outcome);
        }
        let outcome = loaded.outcome;
        hashes.push((rel.clone(), outcome.sha256.clone()));
        diags.0.extend(outcome.diags.iter().cloned());
        match &outcome.index {
            Some(i) => index.push(Arc::clone(i)),
            None => complete = false,
        }
        if let Some(p) = loaded.playbook {
            playbooks.push(LoadedPlaybook {
                path: rel.clone(),
                playbook: p,
            });
        }
    }
    inputs.append(&mut BTreeMap::from_iter(hashes));
    if let Some(cache) = cache {
        cache.set_parsed(parsed);
    }
    diags.extend(checks::check_all(&index, complete));
    checks::redact(&mut diags, CONFIG_FILE, &secrets);
    diags.sort();
    Checked {
        config,
        config_doc,
        layout,
        playbooks,
        index,
        complete,
        inputs,
        diags,
    }
}

/// What loading a playbook file needs besides the file.
struct LoadContext<'a> {
    source: &'a dyn Source,
    config: Option<&'a checks::ConfigView<'a>>,
    layout: &'a Layout,
    /// Keep the playbook (it is then always parsed).
    keep: bool,
    cache: Option<&'a Cache>,
}

/// One playbook file, checked on its own or taken from the cache.
struct Loaded {
    outcome: Arc<Outcome>,
    /// The file's stamp when it was read from disk.
    stamp: Option<Stamp>,
    /// Checked now (not taken from the cache).
    fresh: bool,
    /// Parsed now.
    parsed: bool,
    /// The playbook, when asked for and the file gave one.
    playbook: Option<Playbook>,
}

/// A file that could not be read is one finding.
type PlaybookResult = Result<Loaded, Box<Diagnostic>>;

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

/// Read, parse, schema-check and check every playbook on its own (or take what an
/// unchanged file gave from the cache), in parallel; results in the order of `files`. Each
/// file's parsed document is dropped as soon as its checks are done: what the checks across
/// files need is its [`PlaybookIndex`].
fn load_playbooks(ctx: &LoadContext<'_>, files: &[String]) -> Vec<PlaybookResult> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS);
    if workers <= 1 || files.len() < 2 * workers {
        return files.iter().map(|rel| load_one(ctx, rel)).collect();
    }
    // Workers take the next batch of files as they finish one, so a slow file holds up
    // no one; the results are put back in order.
    const BATCH: usize = 32;
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<PlaybookResult>> = Vec::new();
    results.resize_with(files.len(), || None);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(BATCH, Ordering::Relaxed);
                        if start >= files.len() {
                            break;
                        }
                        let end = (start + BATCH).min(files.len());
                        for (i, rel) in files[start..end].iter().enumerate() {
                            done.push((start + i, load_one(ctx, rel)));
                        }
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            // A worker that panicked (a bug, not bad input) leaves its files to this thread.
            if let Ok(done) = h.join() {
                for (i, r) in done {
                    results[i] = Some(r);
                }
            }
        }
    });
    results
        .into_iter()
        .zip(files)
        .map(|(r, rel)| r.unwrap_or_else(|| load_one(ctx, rel)))
        .collect()
}

/// One playbook file: from the cache when its stamp or content is the recorded one, else
/// read, parsed and checked.
fn load_one(ctx: &LoadContext<'_>, rel: &str) -> PlaybookResult {
    let stamp = ctx.source.stamp(rel);
    if !ctx.keep
        && let Some(outcome) = ctx.cache.and_then(|c| c.by_stamp(rel, stamp))
    {
        return Ok(Loaded {
            outcome: Arc::clone(outcome),
            stamp,
            fresh: false,
            parsed: false,
            playbook: None,
        });
    }
    let bytes = ctx
        .source
        .read(rel)
        .map_err(|e| Box::new(read_error(rel, &e)))?;
    if !ctx.keep
        && let Some(entry) = ctx.cache.and_then(|c| c.get(rel))
        && entry.outcome.sha256 == hex::encode(Sha256::digest(&bytes))
    {
        // Same content, new stamp (touched, checked out again): recorded anew.
        return Ok(Loaded {
            outcome: Arc::clone(&entry.outcome),
            stamp,
            fresh: true,
            parsed: false,
            playbook: None,
        });
    }
    let mut loaded: LoadedFile<Playbook> = load_file(rel, &bytes, SchemaKind::Playbook);
    drop(bytes);
    if let Some(d) = misplaced(rel, loaded.written(), ctx.layout) {
        loaded.diags = Diagnostics(vec![d]);
        loaded.value = None;
    }
    if let Some(p) = &mut loaded.value {
        // A dataset's steps are derived before the checks, which then see (and the
        // compiler later takes) ordinary steps.
        let empty = BTreeMap::new();
        let strategies = ctx.config.map_or(&empty, |c| &c.config.erasure);
        super::dataset::expand(p, strategies);
    }
    let mut index = None;
    if let (Some(p), Some(doc)) = (&loaded.value, &loaded.doc) {
        let mut own = checks::check_one(p, doc, ctx.config, &loaded.follow_on);
        attach_sources(&mut own, &doc.file, &doc.text);
        loaded.diags.extend(own);
        index = Some(Arc::new(PlaybookIndex::of(rel, p, doc, &loaded.follow_on)));
    }
    Ok(Loaded {
        outcome: Arc::new(Outcome {
            sha256: loaded.sha256,
            diags: loaded.diags,
            index,
        }),
        stamp,
        fresh: true,
        parsed: true,
        playbook: if ctx.keep { loaded.value } else { None },
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
