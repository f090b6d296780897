//! Semantic checks across the config and all playbooks. Every problem is collected.

mod config;
mod drp;
mod graph;
mod identity;
mod playbook;
mod project;
mod request;
mod steps;
mod templates;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::context::nearest_names;
use super::index::PlaybookIndex;
use super::position::Pos;
use super::recover::FollowOn;
use super::yaml::Document;
use super::{Code, Diagnostic, Diagnostics, Severity};
use crate::model::ProjectConfig;

pub use config::{mask_unparsed, redact};
pub use request::RequestContext;

/// Longest list of valid names spelled out in a help text.
const MAX_LISTED: usize = 20;

/// Findings about one document, placed through its position map.
pub(crate) struct Report<'a> {
    pub doc: &'a Document,
    pub out: &'a mut Diagnostics,
    /// What was taken out of the document for its schema errors.
    pub recovered: Option<&'a FollowOn>,
}

impl Report<'_> {
    /// Whether the node at `pointer` failed the schema and was taken out or stood in for:
    /// checks that look at it say nothing (its schema error is reported).
    pub fn broken(&self, pointer: &str) -> bool {
        self.recovered.is_some_and(|f| f.broken(pointer))
    }

    /// A finding at the key (`on_key`) or value of the node at `pointer`.
    pub fn push(
        &mut self,
        severity: Severity,
        code: Code,
        pointer: &str,
        on_key: bool,
        message: String,
    ) -> &mut Diagnostic {
        let p = if on_key {
            self.doc.positions.key_or_value(pointer)
        } else {
            self.doc.positions.value(pointer)
        };
        self.push_at(severity, code, p, message)
    }

    /// A finding at an explicit place.
    pub fn push_at(
        &mut self,
        severity: Severity,
        code: Code,
        p: Pos,
        message: String,
    ) -> &mut Diagnostic {
        let d =
            Diagnostic::new(severity, code, &self.doc.file, p.line, p.col, message).with_len(p.len);
        self.out.push(d);
        let last = self.out.0.len() - 1;
        &mut self.out.0[last]
    }

    /// An error at the value of `pointer`.
    pub fn error(&mut self, code: Code, pointer: &str, message: String) -> &mut Diagnostic {
        self.push(Severity::Error, code, pointer, false, message)
    }
}

impl Diagnostic {
    /// Add help and, when a valid name is close, a "did you mean" label.
    pub(crate) fn suggest(&mut self, given: &str, valid: &[&str], what: &str) -> &mut Self {
        let near = nearest_names(given, valid);
        if let Some(best) = near.first() {
            self.label = Some(format!("did you mean `{best}`?"));
        }
        self.help = Some(if valid.is_empty() {
            format!("no {what} are defined here")
        } else if valid.len() <= MAX_LISTED {
            format!("{what}: {}", valid.join(", "))
        } else if near.is_empty() {
            format!("none of the {} {what} is close", valid.len())
        } else {
            let shown: Vec<&str> = near.into_iter().take(5).collect();
            format!(
                "closest of the {} {what}: {}",
                valid.len(),
                shown.join(", ")
            )
        });
        self
    }

    /// Set the help text in place.
    pub(crate) fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}

/// The project config as the other checks see it: the typed config (recovered when it has
/// schema errors) and the tenants and connectors as written, so that one which is written
/// but broken is reported once, in dsrctl.yaml, not again as unknown wherever it is used.
pub struct ConfigView<'a> {
    /// The config.
    pub config: &'a ProjectConfig,
    /// Tenant → its connector names, as written.
    written: BTreeMap<String, BTreeSet<String>>,
}

impl<'a> ConfigView<'a> {
    /// The view of a config and the document it was written in.
    pub fn new(config: &'a ProjectConfig, written: Option<&Document>) -> ConfigView<'a> {
        let mut names: BTreeMap<String, BTreeSet<String>> = config
            .tenants
            .iter()
            .map(|(t, c)| (t.clone(), c.connectors.keys().cloned().collect()))
            .collect();
        let tenants = written
            .and_then(|d| d.value.get("tenants"))
            .and_then(Value::as_object);
        for (t, tenant) in tenants.into_iter().flatten() {
            let connectors = tenant.get("connectors").and_then(Value::as_object);
            names
                .entry(t.clone())
                .or_default()
                .extend(connectors.into_iter().flatten().map(|(c, _)| c.clone()));
        }
        ConfigView {
            config,
            written: names,
        }
    }

    /// Whether the tenant is written in the file.
    pub fn has_tenant(&self, tenant: &str) -> bool {
        self.written.contains_key(tenant)
    }

    /// Whether the tenant has this connector in the file.
    pub fn has_connector(&self, tenant: &str, name: &str) -> bool {
        self.written.get(tenant).is_some_and(|c| c.contains(name))
    }

    /// The tenants, as written.
    pub fn tenant_names(&self) -> Vec<&str> {
        self.written.keys().map(String::as_str).collect()
    }
}

/// Checks on `dsrctl.yaml` as written; also the secret values it holds, which no output may
/// show ([`redact`]).
pub fn check_config(doc: &Document) -> (Diagnostics, Vec<String>) {
    let mut out = Diagnostics::default();
    let mut r = Report {
        doc,
        out: &mut out,
        recovered: None,
    };
    let secrets = config::check_config(&mut r);
    drp::check_drp(&mut r);
    (out, secrets)
}

/// Checks across playbooks, on their indexes; `complete` when no playbook file failed to
/// load (a missing one might define what another names).
pub(crate) fn check_all(playbooks: &[Arc<PlaybookIndex>], complete: bool) -> Diagnostics {
    let mut out = Diagnostics::default();
    project::check_across(playbooks, complete, &mut out);
    out
}

/// The checks on one playbook that need no other playbook; `recovered` says what was taken
/// out of it for its schema errors.
pub(crate) fn check_one(
    playbook: &crate::model::Playbook,
    doc: &Document,
    config: Option<&ConfigView<'_>>,
    recovered: &FollowOn,
) -> Diagnostics {
    let mut out = Diagnostics::default();
    let mut r = Report {
        doc,
        out: &mut out,
        recovered: Some(recovered),
    };
    if let Some(d) = &playbook.dataset
        && !r.broken("/dataset")
    {
        let empty = BTreeMap::new();
        let strategies = config.map_or(&empty, |c| &c.config.erasure);
        crate::load::dataset::check_dataset(d, strategies, &mut r);
    }
    playbook::check_playbook(playbook, config, &mut r);
    recovered.drop_from(&mut out);
    out
}

/// Checks on a request beyond its schema, with the project when it is known.
pub fn check_request(doc: &Document, project: Option<&RequestContext<'_>>) -> Diagnostics {
    let mut out = Diagnostics::default();
    request::check_request_doc(
        project,
        &mut Report {
            doc,
            out: &mut out,
            recovered: None,
        },
    );
    out
}
