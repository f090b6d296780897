//! Checks across playbooks: unique service names, `after` references, identities that
//! some request or discovery provides.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::graph::{Needs, cycles};
use crate::load::index::{Place, PlaybookIndex};
use crate::load::{Code, Diagnostic, Diagnostics, Severity};
use crate::model::DsrKind;

/// Identities a request commonly carries; any other must be discovered by a playbook.
pub const WELL_KNOWN_IDENTITIES: &[&str] = &[
    "email",
    "object_id",
    "device_ids",
    "user_principal_name",
    "phone",
];

fn step_ids(p: &PlaybookIndex) -> BTreeSet<&str> {
    DsrKind::ALL
        .into_iter()
        .flat_map(|k| p.steps(k))
        .map(|s| s.id.as_str())
        .collect()
}

/// A finding at a place of a playbook; none where it would follow from a schema error.
fn push<'o>(
    out: &'o mut Diagnostics,
    severity: Severity,
    code: Code,
    file: &str,
    at: Option<&Place>,
    message: String,
) -> Option<&'o mut Diagnostic> {
    let at = at?;
    let mut d = Diagnostic::new(severity, code, file, at.pos.line, at.pos.col, message)
        .with_len(at.pos.len);
    d.source_line = Some(at.source.clone());
    out.push(d);
    out.0.last_mut()
}

/// Every check that needs more than one playbook.
pub fn check_across(playbooks: &[Arc<PlaybookIndex>], complete: bool, out: &mut Diagnostics) {
    let mut first: HashMap<&str, &str> = HashMap::with_capacity(playbooks.len());
    // Service → the playbook that defines it first (whose steps `after` can name).
    let mut services: HashMap<&str, &PlaybookIndex> = HashMap::with_capacity(playbooks.len());
    let mut discovered: HashSet<&str> = HashSet::new();
    for p in playbooks {
        services.entry(p.service.as_str()).or_insert(p);
        discovered.extend(p.discovers.iter().map(|(k, _)| k.as_str()));
    }
    // The sorted service names are only needed to suggest one for an unknown service.
    let names = std::cell::OnceCell::new();
    let names = || -> &[&str] {
        names.get_or_init(|| {
            let mut v: Vec<&str> = services.keys().copied().collect();
            v.sort_unstable();
            v
        })
    };
    let after_cycles = after_cycles(playbooks);
    for (n, p) in playbooks.iter().enumerate() {
        let file = p.path.as_str();
        if let Some(prev) = first.get(p.service.as_str()) {
            if let Some(d) = push(
                out,
                Severity::Error,
                Code::DuplicateService,
                file,
                p.service_at.as_ref(),
                format!("service `{}` is also defined in `{prev}`", p.service),
            ) {
                d.help("service names are unique across the project; rename one");
            }
        } else {
            first.insert(&p.service, file);
        }
        // A playbook that did not load may discover it.
        for (id, at) in p.needs_identities.iter().filter(|_| complete) {
            if !WELL_KNOWN_IDENTITIES.contains(&id.as_str())
                && !discovered.contains(id.as_str())
                && let Some(d) = push(
                    out,
                    Severity::Warning,
                    Code::IdentityNeverProvided,
                    file,
                    at.as_ref(),
                    format!("no request or playbook provides identity `{id}`"),
                )
            {
                d.suggest(id, WELL_KNOWN_IDENTITIES, "identities").help(format!(
                    "requests carry {}; add `discovers: {{ {id}: step.capture }}` to the playbook that finds it",
                    WELL_KNOWN_IDENTITIES.join(", ")
                ));
            }
        }
        check_after(p, &services, &names, complete, out);
        for c in after_cycles.iter().filter(|c| c.playbook == n) {
            if let Some(d) = push(
                out,
                Severity::Error,
                Code::AfterCycle,
                file,
                c.at,
                format!(
                    "steps of several services wait for each other in a cycle: {}",
                    c.path
                ),
            ) {
                d.help("remove one of these `after` (or `needs`) so the services can run in order");
            }
        }
    }
}

/// A cycle through `after`, reported at one of its `after` entries.
struct AfterCycle<'a> {
    /// Index of the playbook holding the entry.
    playbook: usize,
    at: Option<&'a Place>,
    /// `service/step -> … -> service/step`.
    path: String,
}

/// Cycles, per DSR kind, in the graph of every playbook's steps joined by `needs` and
/// `after` (a service's name stands for all its steps of that kind): what the compiler
/// would refuse for every request of that kind. Cycles of `needs` alone are reported per
/// playbook, so only those with an `after` edge are returned.
fn after_cycles(all_playbooks: &[Arc<PlaybookIndex>]) -> Vec<AfterCycle<'_>> {
    let mut found = Vec::new();
    for kind in DsrKind::ALL {
        // Each service on such a cycle is left through an `after` of one of its steps, so
        // only services with an `after` of this kind can be on one: the graph is theirs.
        let (kept, playbooks): (Vec<usize>, Vec<&PlaybookIndex>) = all_playbooks
            .iter()
            .enumerate()
            .filter(|(_, p)| p.steps(kind).iter().any(|s| !s.after.is_empty()))
            .map(|(n, p)| (n, &**p))
            .unzip();
        if playbooks.is_empty() {
            continue;
        }
        let nodes: Vec<Vec<String>> = playbooks
            .iter()
            .map(|p| {
                p.steps(kind)
                    .iter()
                    .map(|s| format!("{}/{}", p.service, s.id))
                    .collect()
            })
            .collect();
        let mut by_service: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (p, names) in playbooks.iter().zip(&nodes) {
            by_service
                .entry(p.service.as_str())
                .or_default()
                .extend(names.iter().map(String::as_str));
        }
        let all: BTreeSet<&str> = nodes.iter().flatten().map(String::as_str).collect();
        let mut graph: Needs<'_> = BTreeMap::new();
        // (from, to) of each `after` edge → where it is written.
        let mut written: BTreeMap<(&str, &str), (usize, Option<&Place>)> = BTreeMap::new();
        for (&n, (p, names)) in kept.iter().zip(playbooks.iter().zip(&nodes)) {
            for (step, from) in p.steps(kind).iter().zip(names) {
                let edges = graph.entry(from.as_str()).or_default();
                for need in &step.needs {
                    let to = format!("{}/{need}", p.service);
                    if let Some(to) = all.get(to.as_str()) {
                        edges.push(to);
                    }
                }
                for (after, at) in &step.after {
                    let targets: Vec<&str> = match after.split_once('/') {
                        Some(_) => all.get(after.as_str()).into_iter().copied().collect(),
                        None => by_service.get(after.as_str()).cloned().unwrap_or_default(),
                    };
                    for to in targets {
                        edges.push(to);
                        written
                            .entry((from.as_str(), to))
                            .or_insert((n, at.as_ref()));
                    }
                }
            }
        }
        for cycle in cycles(&graph) {
            let Some((playbook, at)) = cycle
                .windows(2)
                .find_map(|w| written.get(&(w[0], w[1])))
                .copied()
            else {
                continue;
            };
            found.push(AfterCycle {
                playbook,
                at,
                path: cycle.join(" -> "),
            });
        }
    }
    found
}

fn check_after<'n>(
    p: &PlaybookIndex,
    services: &HashMap<&str, &PlaybookIndex>,
    names: &dyn Fn() -> &'n [&'n str],
    complete: bool,
    out: &mut Diagnostics,
) {
    let file = p.path.as_str();
    for kind in DsrKind::ALL {
        for step in p.steps(kind) {
            for (after, at) in &step.after {
                let (service, target) = match after.split_once('/') {
                    Some((s, t)) => (s, Some(t)),
                    None => (after.as_str(), None),
                };
                match services.get(service) {
                    // A playbook that did not load may define it.
                    None if !complete => {}
                    None => {
                        if let Some(d) = push(
                            out,
                            Severity::Error,
                            Code::UnknownService,
                            file,
                            at.as_ref(),
                            format!(
                                "step `{}` runs after service `{service}`, which no playbook defines",
                                step.id
                            ),
                        ) {
                            d.suggest(service, names(), "services");
                        }
                    }
                    Some(owner) => {
                        let ids = step_ids(owner);
                        if let Some(t) = target
                            && !ids.contains(t)
                        {
                            let valid: Vec<&str> = ids.iter().copied().collect();
                            if let Some(d) = push(
                                out,
                                Severity::Error,
                                Code::UnknownStep,
                                file,
                                at.as_ref(),
                                format!("service `{service}` has no step `{t}`"),
                            ) {
                                d.suggest(t, &valid, "its steps");
                            }
                        }
                        if service == p.service
                            && let Some(d) = push(
                                out,
                                Severity::Error,
                                Code::AfterOwnService,
                                file,
                                at.as_ref(),
                                format!("step `{}` names its own service in `after`", step.id),
                            )
                        {
                            d.help("order steps of the same service with `needs`");
                        }
                    }
                }
            }
        }
    }
}
