//! What the checks across files need to know of one playbook: its service, connector,
//! identities, and per DSR kind its step ids with their `needs` and `after`, with the places
//! a finding about them points at. Small, so a project of many thousands of playbooks keeps
//! one of these per file instead of the parsed file; the validation cache (`cache.rs`, written
//! by `cache_file.rs`) keeps it for a file that did not change.

use super::position::{Pos, escape_token};
use super::recover::FollowOn;
use super::yaml::Document;
use crate::model::{DsrKind, KindSpec, Playbook};

/// Where a finding about a name points: the place and its source line (for the snippet).
/// `None` where it stands means a finding there would follow from a schema error of the
/// file, which is reported instead.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Place {
    pub pos: Pos,
    pub source: String,
}

/// A name and where it is written.
pub(crate) type Named = (String, Option<Place>);

/// One step of one kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepIndex {
    pub id: String,
    pub needs: Vec<String>,
    pub after: Vec<Named>,
}

/// How a playbook declares one DSR kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KindIndex {
    /// Not declared.
    None,
    /// Its own steps.
    Steps(Vec<StepIndex>),
    /// `same_as` these kinds.
    Reuse(Vec<DsrKind>),
    /// `unsupported`.
    Unsupported,
}

/// One playbook as the checks across files and requests see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlaybookIndex {
    /// The file, relative to the project root.
    pub path: String,
    pub service: String,
    pub service_at: Option<Place>,
    pub connector: String,
    pub needs_identities: Vec<Named>,
    /// Identity → `step.capture`.
    pub discovers: Vec<(String, String)>,
    /// Per kind, in the order of [`DsrKind::ALL`].
    pub kinds: Vec<KindIndex>,
}

impl PlaybookIndex {
    /// The index of a loaded playbook; `doc` is the document its value came from (recovered
    /// when it had schema errors), `follow_on` what recovery took out.
    pub fn of(path: &str, p: &Playbook, doc: &Document, follow_on: &FollowOn) -> PlaybookIndex {
        let lines = Lines::new(&doc.text);
        let place = |pointer: &str| -> Option<Place> {
            let pos = doc.positions.value(pointer);
            if follow_on.covers_at(pos.line, pos.col) {
                return None;
            }
            Some(Place {
                pos,
                source: lines.get(pos.line).to_owned(),
            })
        };
        let kinds = DsrKind::ALL
            .into_iter()
            .map(|kind| match p.dsr.get(kind) {
                None => KindIndex::None,
                Some(KindSpec::Unsupported(_)) => KindIndex::Unsupported,
                Some(KindSpec::Reuse(r)) => KindIndex::Reuse(r.same_as.clone()),
                Some(KindSpec::Steps(steps)) => KindIndex::Steps(
                    steps
                        .iter()
                        .enumerate()
                        .map(|(i, s)| StepIndex {
                            id: s.id.clone(),
                            needs: s.needs.clone(),
                            after: s
                                .after
                                .iter()
                                .enumerate()
                                .map(|(j, a)| (a.clone(), place(&after_pointer(kind, i, j))))
                                .collect(),
                        })
                        .collect(),
                ),
            })
            .collect();
        PlaybookIndex {
            path: path.to_owned(),
            service: p.service.clone(),
            service_at: place("/service"),
            connector: p.connector.clone(),
            needs_identities: p
                .needs_identities
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), place(&identity_pointer(p, doc, i, id))))
                .collect(),
            discovers: p
                .discovers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            kinds,
        }
    }

    /// How the playbook declares `kind`.
    pub fn kind(&self, kind: DsrKind) -> &KindIndex {
        let i = DsrKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.kinds.get(i).unwrap_or(&KindIndex::None)
    }

    /// The steps `kind` declares (none for a reuse or an exemption).
    pub fn steps(&self, kind: DsrKind) -> &[StepIndex] {
        match self.kind(kind) {
            KindIndex::Steps(s) => s,
            _ => &[],
        }
    }

    /// Whether the playbook discovers `identity`.
    pub fn discovers(&self, identity: &str) -> bool {
        self.discovers.iter().any(|(k, _)| k == identity)
    }

    /// Whether a step of this playbook runs after `service` (or one of its steps).
    pub fn runs_after(&self, service: &str) -> bool {
        self.kinds.iter().any(|k| match k {
            KindIndex::Steps(steps) => steps.iter().any(|s| {
                s.after
                    .iter()
                    .any(|(a, _)| a.split_once('/').map_or(a.as_str(), |(s, _)| s) == service)
            }),
            _ => false,
        })
    }
}

/// Where the `j`-th `after` entry of the `i`-th step of `kind` is written.
pub(crate) fn after_pointer(kind: DsrKind, i: usize, j: usize) -> String {
    format!("/dsr/{}/{i}/after/{j}", escape_token(kind.as_str()))
}

/// The lines of a text by 1-based number.
struct Lines<'a>(Vec<&'a str>);

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines(text.lines().collect())
    }

    fn get(&self, line: usize) -> &'a str {
        line.checked_sub(1)
            .and_then(|i| self.0.get(i))
            .copied()
            .unwrap_or("")
    }
}

/// Where the playbook names its `i`-th needed identity: in `needs_identities`, or, for a
/// dataset that derives them, at the first column holding it.
fn identity_pointer(p: &Playbook, doc: &Document, i: usize, id: &str) -> String {
    let written = format!("/needs_identities/{i}");
    if doc.value.pointer(&written).is_some() {
        return written;
    }
    p.dataset
        .iter()
        .flat_map(|d| &d.tables)
        .find_map(|(table, t)| {
            t.described_columns()
                .into_iter()
                .find(|(_, c)| c.identity.as_deref() == Some(id))
                .map(|(column, _)| {
                    format!(
                        "/dataset/tables/{}/columns/{}/identity",
                        escape_token(table),
                        escape_token(&column)
                    )
                })
        })
        .unwrap_or(written)
}
