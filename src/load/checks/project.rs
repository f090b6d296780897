//! Checks across playbooks: unique service names, `after` references, identities that
//! some request or discovery provides.

use std::collections::{BTreeMap, BTreeSet};

use super::Report;
use super::graph::{Needs, cycles};
use crate::load::position::escape_token;
use crate::load::yaml::Document;
use crate::load::{Code, Diagnostics, LoadedPlaybook, Severity};
use crate::model::{DsrKind, Playbook};

/// Identities a request commonly carries; any other must be discovered by a playbook.
pub const WELL_KNOWN_IDENTITIES: &[&str] = &[
    "email",
    "object_id",
    "device_ids",
    "user_principal_name",
    "phone",
];

fn step_ids(p: &Playbook) -> BTreeSet<&str> {
    DsrKind::ALL
        .into_iter()
        .flat_map(|k| p.dsr.steps(k))
        .map(|s| s.id.as_str())
        .collect()
}

/// Every check that needs more than one playbook.
pub fn check_across(
    playbooks: &[LoadedPlaybook],
    docs: &[Document],
    complete: bool,
    out: &mut Diagnostics,
) {
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    let mut services: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut discovered: BTreeSet<&str> = BTreeSet::new();
    for lp in playbooks {
        services
            .entry(lp.playbook.service.as_str())
            .or_insert_with(|| step_ids(&lp.playbook));
        discovered.extend(lp.playbook.discovers.keys().map(String::as_str));
    }
    let names: Vec<&str> = services.keys().copied().collect();
    let after_cycles = after_cycles(playbooks);
    for (n, (lp, doc)) in playbooks.iter().zip(docs).enumerate() {
        let p = &lp.playbook;
        let mut r = Report {
            doc,
            out: &mut *out,
            recovered: None,
        };
        if let Some(prev) = first.get(p.service.as_str()) {
            r.error(
                Code::DuplicateService,
                "/service",
                format!("service `{}` is also defined in `{prev}`", p.service),
            )
            .help("service names are unique across the project; rename one");
        } else {
            first.insert(&p.service, &lp.path);
        }
        // A playbook that did not load may discover it.
        for (i, id) in p.needs_identities.iter().enumerate().filter(|_| complete) {
            if !WELL_KNOWN_IDENTITIES.contains(&id.as_str()) && !discovered.contains(id.as_str()) {
                r.push(
                    Severity::Warning,
                    Code::IdentityNeverProvided,
                    &format!("/needs_identities/{i}"),
                    false,
                    format!("no request or playbook provides identity `{id}`"),
                )
                .help(format!(
                    "requests carry {}; add `discovers: {{ {id}: step.capture }}` to the playbook that finds it",
                    WELL_KNOWN_IDENTITIES.join(", ")
                ));
            }
        }
        check_after(p, &services, &names, complete, &mut r);
        for c in after_cycles.iter().filter(|c| c.playbook == n) {
            r.error(
                Code::AfterCycle,
                &c.pointer,
                format!(
                    "steps of several services wait for each other in a cycle: {}",
                    c.path
                ),
            )
            .help("remove one of these `after` (or `needs`) so the services can run in order");
        }
    }
}

/// Where the `j`-th `after` entry of the `i`-th step of `kind` is written.
fn after_pointer(kind: DsrKind, i: usize, j: usize) -> String {
    format!("/dsr/{}/{i}/after/{j}", escape_token(kind.as_str()))
}

/// A cycle through `after`, reported at one of its `after` entries.
struct AfterCycle {
    /// Index of the playbook holding the entry.
    playbook: usize,
    pointer: String,
    /// `service/step -> … -> service/step`.
    path: String,
}

/// Cycles, per DSR kind, in the graph of every playbook's steps joined by `needs` and
/// `after` (a service's name stands for all its steps of that kind): what the compiler
/// would refuse for every request of that kind. Cycles of `needs` alone are reported per
/// playbook, so only those with an `after` edge are returned.
fn after_cycles(playbooks: &[LoadedPlaybook]) -> Vec<AfterCycle> {
    let mut found = Vec::new();
    for kind in DsrKind::ALL {
        let nodes: Vec<Vec<String>> = playbooks
            .iter()
            .map(|lp| {
                let p = &lp.playbook;
                p.dsr
                    .steps(kind)
                    .iter()
                    .map(|s| format!("{}/{}", p.service, s.id))
                    .collect()
            })
            .collect();
        let mut by_service: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (lp, names) in playbooks.iter().zip(&nodes) {
            by_service
                .entry(lp.playbook.service.as_str())
                .or_default()
                .extend(names.iter().map(String::as_str));
        }
        let all: BTreeSet<&str> = nodes.iter().flatten().map(String::as_str).collect();
        let mut graph: Needs<'_> = BTreeMap::new();
        // (from, to) of each `after` edge → where it is written.
        let mut written: BTreeMap<(&str, &str), (usize, String)> = BTreeMap::new();
        for (n, (lp, names)) in playbooks.iter().zip(&nodes).enumerate() {
            let p = &lp.playbook;
            for (i, (step, from)) in p.dsr.steps(kind).iter().zip(names).enumerate() {
                let edges = graph.entry(from.as_str()).or_default();
                for need in &step.needs {
                    let to = format!("{}/{need}", p.service);
                    if let Some(to) = all.get(to.as_str()) {
                        edges.push(to);
                    }
                }
                for (j, after) in step.after.iter().enumerate() {
                    let targets: Vec<&str> = match after.split_once('/') {
                        Some(_) => all.get(after.as_str()).into_iter().copied().collect(),
                        None => by_service.get(after.as_str()).cloned().unwrap_or_default(),
                    };
                    for to in targets {
                        edges.push(to);
                        written
                            .entry((from.as_str(), to))
                            .or_insert_with(|| (n, after_pointer(kind, i, j)));
                    }
                }
            }
        }
        for cycle in cycles(&graph) {
            let Some((playbook, pointer)) = cycle
                .windows(2)
                .find_map(|w| written.get(&(w[0], w[1])))
                .cloned()
            else {
                continue;
            };
            found.push(AfterCycle {
                playbook,
                pointer,
                path: cycle.join(" -> "),
            });
        }
    }
    found
}

fn check_after(
    p: &Playbook,
    services: &BTreeMap<&str, BTreeSet<&str>>,
    names: &[&str],
    complete: bool,
    r: &mut Report<'_>,
) {
    for kind in DsrKind::ALL {
        for (i, step) in p.dsr.steps(kind).iter().enumerate() {
            for (j, after) in step.after.iter().enumerate() {
                let ptr = after_pointer(kind, i, j);
                let (service, target) = match after.split_once('/') {
                    Some((s, t)) => (s, Some(t)),
                    None => (after.as_str(), None),
                };
                match services.get(service) {
                    // A playbook that did not load may define it.
                    None if !complete => {}
                    None => {
                        r.error(
                            Code::UnknownService,
                            &ptr,
                            format!("step `{}` runs after service `{service}`, which no playbook defines", step.id),
                        )
                        .suggest(service, names, "services");
                    }
                    Some(ids) => {
                        if let Some(t) = target
                            && !ids.contains(t)
                        {
                            let valid: Vec<&str> = ids.iter().copied().collect();
                            r.error(
                                Code::UnknownStep,
                                &ptr,
                                format!("service `{service}` has no step `{t}`"),
                            )
                            .suggest(t, &valid, "its steps");
                        }
                        if service == p.service {
                            r.error(
                                Code::AfterOwnService,
                                &ptr,
                                format!("step `{}` names its own service in `after`", step.id),
                            )
                            .help("order steps of the same service with `needs`");
                        }
                    }
                }
            }
        }
    }
}
