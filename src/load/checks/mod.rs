//! Semantic checks across the config and all playbooks. Every problem is collected.

mod config;
mod graph;
mod playbook;
mod project;
mod request;
mod steps;
mod templates;

use super::context::nearest_names;
use super::position::Pos;
use super::yaml::Document;
use super::{Code, Diagnostic, Diagnostics, LoadedPlaybook, Severity};
use crate::model::{ProjectConfig, Request};

pub use request::check_request_findings;

/// Longest list of valid names spelled out in a help text.
const MAX_LISTED: usize = 20;

/// Findings about one document, placed through its position map.
pub(crate) struct Report<'a> {
    pub doc: &'a Document,
    pub out: &'a mut Diagnostics,
}

impl Report<'_> {
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

/// Checks on the config and across playbooks. `docs[i]` is the parsed document of
/// `playbooks[i]`; the per-playbook checks run in [`check_one`].
pub fn check_all(
    config: Option<&ProjectConfig>,
    config_doc: Option<&Document>,
    playbooks: &[LoadedPlaybook],
    docs: &[Document],
) -> Diagnostics {
    let mut out = Diagnostics::default();
    if let (Some(c), Some(doc)) = (config, config_doc) {
        config::check_config(c, &mut Report { doc, out: &mut out });
    }
    project::check_across(playbooks, docs, &mut out);
    out
}

/// The checks on one playbook that need no other playbook.
pub fn check_one(
    playbook: &crate::model::Playbook,
    doc: &Document,
    config: Option<&ProjectConfig>,
) -> Diagnostics {
    let mut out = Diagnostics::default();
    playbook::check_playbook(playbook, config, &mut Report { doc, out: &mut out });
    out
}

/// Checks on a request beyond its schema.
pub fn check_request(request: &Request, doc: &Document) -> Diagnostics {
    let mut out = Diagnostics::default();
    check_request_findings(request, &mut Report { doc, out: &mut out });
    out
}
