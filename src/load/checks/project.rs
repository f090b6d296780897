//! Checks across playbooks: unique service names, `after` references, identities that
//! some request or discovery provides.

use std::collections::{BTreeMap, BTreeSet};

use super::Report;
use crate::load::position::escape_token;
use crate::load::yaml::Document;
use crate::load::{Diagnostics, LoadedPlaybook, Severity};
use crate::model::{DsrKind, KindSpec, Playbook};

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
        .filter_map(|k| match p.dsr.get(k) {
            Some(KindSpec::Steps(s)) => Some(s),
            _ => None,
        })
        .flatten()
        .map(|s| s.id.as_str())
        .collect()
}

/// Every check that needs more than one playbook.
pub fn check_across(playbooks: &[LoadedPlaybook], docs: &[Document], out: &mut Diagnostics) {
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
    for (lp, doc) in playbooks.iter().zip(docs) {
        let p = &lp.playbook;
        let mut r = Report {
            doc,
            out: &mut *out,
        };
        if let Some(prev) = first.get(p.service.as_str()) {
            r.error(
                "duplicate-service",
                "/service",
                format!("service `{}` is also defined in `{prev}`", p.service),
            )
            .help("service names are unique across the project; rename one");
        } else {
            first.insert(&p.service, &lp.path);
        }
        for (i, id) in p.needs_identities.iter().enumerate() {
            if !WELL_KNOWN_IDENTITIES.contains(&id.as_str()) && !discovered.contains(id.as_str()) {
                r.push(
                    Severity::Warning,
                    "identity-never-provided",
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
        check_after(p, &services, &names, &mut r);
    }
}

fn check_after(
    p: &Playbook,
    services: &BTreeMap<&str, BTreeSet<&str>>,
    names: &[&str],
    r: &mut Report<'_>,
) {
    for kind in DsrKind::ALL {
        let Some(KindSpec::Steps(steps)) = p.dsr.get(kind) else {
            continue;
        };
        for (i, step) in steps.iter().enumerate() {
            for (j, after) in step.after.iter().enumerate() {
                let ptr = format!("/dsr/{}/{i}/after/{j}", escape_token(kind.as_str()));
                let (service, target) = match after.split_once('/') {
                    Some((s, t)) => (s, Some(t)),
                    None => (after.as_str(), None),
                };
                match services.get(service) {
                    None => {
                        r.error(
                            "unknown-service",
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
                                "unknown-step",
                                &ptr,
                                format!("service `{service}` has no step `{t}`"),
                            )
                            .suggest(t, &valid, "its steps");
                        }
                        if service == p.service {
                            r.error(
                                "after-own-service",
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
