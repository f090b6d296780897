//! Checks on a request beyond its schema, on the document as parsed (so each runs when the
//! part it looks at is there, whatever else is wrong): identities present and well formed,
//! corrections only for rectify; with the project, a known tenant and the identities the
//! playbooks that would run need.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::identity::format_problem;
use super::{ConfigView, Report};
use crate::load::index::{KindIndex, PlaybookIndex};
use crate::load::position::escape_token;
use crate::load::{Code, Severity};
use crate::model::DsrKind;

/// What a request is checked against besides itself.
pub struct RequestContext<'a> {
    /// The project config.
    pub config: &'a ConfigView<'a>,
    /// Every playbook, when all of them loaded (identities are not judged against some).
    pub playbooks: Option<&'a [Arc<PlaybookIndex>]>,
}

/// Every check on one request.
pub fn check_request_doc(ctx: Option<&RequestContext<'_>>, r: &mut Report<'_>) {
    let doc = r.doc;
    let Some(root) = doc.value.as_object() else {
        return; // The schema reports a request that is not a mapping.
    };
    let subject = root.get("subject").and_then(Value::as_object);
    if let Some(subject) = subject {
        check_subject(subject, r);
    }
    let kind: Option<DsrKind> = root
        .get("kind")
        .and_then(|k| serde_json::from_value(k.clone()).ok());
    check_corrections(kind, root.contains_key("corrections"), r);
    let Some(ctx) = ctx else {
        return;
    };
    let Some(tenant) = check_tenant(root, ctx.config, r) else {
        return;
    };
    if let (Some(kind), Some(subject), Some(playbooks)) = (kind, subject, ctx.playbooks) {
        check_identities(kind, &tenant, subject, ctx.config, playbooks, r);
    }
}

fn identity_values(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn check_subject(subject: &Map<String, Value>, r: &mut Report<'_>) {
    if subject
        .values()
        .all(|v| identity_values(v).iter().all(|s| s.trim().is_empty()))
    {
        r.error(
            Code::EmptySubject,
            "/subject",
            "the request names no subject identity".to_owned(),
        )
        .help("add at least one identity, e.g. `subject: { email: jane@example.com }`");
    }
    for (name, value) in subject {
        let ptr = format!("/subject/{}", escape_token(name));
        let many = value.is_array();
        for (i, v) in identity_values(value).into_iter().enumerate() {
            let at = if many {
                format!("{ptr}/{i}")
            } else {
                ptr.clone()
            };
            if v.trim().is_empty() {
                r.error(Code::EmptyValue, &at, format!("identity `{name}` is empty"))
                    .help("remove it or give its value");
            } else if let Some(problem) = format_problem(name, v) {
                r.error(Code::InvalidIdentity, &at, problem)
                    .help(identity_help(name));
            }
        }
    }
}

fn identity_help(name: &str) -> &'static str {
    match name {
        "email" => "write the subject's address as `name@domain`, e.g. `jane@example.com`",
        "user_principal_name" => "write the sign-in name as `name@domain`, e.g. `jane@contoso.com`",
        "phone" => "write the number with its country code, e.g. `+44 20 7946 0958`",
        _ => "write the value exactly as the services store it",
    }
}

fn check_corrections(kind: Option<DsrKind>, has_corrections: bool, r: &mut Report<'_>) {
    match (kind, has_corrections) {
        (Some(DsrKind::Rectify), false) => {
            r.error(
                Code::MissingCorrections,
                "/kind",
                "a rectify request needs `corrections`".to_owned(),
            )
            .help("add `corrections:` with the corrected values by field");
        }
        (Some(kind), true) if kind != DsrKind::Rectify => {
            r.push(
                Severity::Warning,
                Code::UnusedCorrections,
                "/corrections",
                true,
                format!("`corrections` is ignored for a `{kind}` request"),
            )
            .help("corrections apply only to `rectify` requests");
        }
        _ => {}
    }
}

/// The request's tenant when dsrctl.yaml defines it (or defines it but it is broken, which
/// is reported there).
fn check_tenant(
    root: &Map<String, Value>,
    config: &ConfigView<'_>,
    r: &mut Report<'_>,
) -> Option<String> {
    let tenant = match root.get("tenant") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return None, // The schema reports it.
        None => String::new(),
    };
    if config.config.tenants.contains_key(&tenant) {
        return Some(tenant);
    }
    if config.has_tenant(&tenant) {
        return None;
    }
    let names: Vec<&str> = config.tenant_names();
    let what = "tenants in dsrctl.yaml";
    if tenant.is_empty() {
        r.push(
            Severity::Error,
            Code::UnknownTenant,
            "/tenant",
            true,
            "the request names no tenant".to_owned(),
        )
        .help(format!("add `tenant:`; {what}: {}", names.join(", ")));
    } else {
        r.error(
            Code::UnknownTenant,
            "/tenant",
            format!("tenant `{tenant}` is not defined in dsrctl.yaml"),
        )
        .suggest(&tenant, &names, what);
    }
    None
}

/// As the compiler decides: a service runs for a kind when it declares steps for it (or
/// reuses kinds with steps) and its tenant has its connector; it is skipped when it needs
/// an identity that the request does not give and no running service discovers.
fn check_identities(
    kind: DsrKind,
    tenant: &str,
    subject: &Map<String, Value>,
    config: &ConfigView<'_>,
    playbooks: &[Arc<PlaybookIndex>],
    r: &mut Report<'_>,
) {
    let Some(t) = config.config.tenants.get(tenant) else {
        return;
    };
    let running: Vec<(&PlaybookIndex, Vec<DsrKind>)> = playbooks
        .iter()
        .map(|p| &**p)
        .filter(|p| t.connectors.contains_key(&p.connector))
        .filter_map(|p| run_kinds(p, kind).map(|kinds| (p, kinds)))
        .collect();
    // Discovered by a running service: through a step of a kind it runs.
    let discovered: BTreeSet<&str> = running
        .iter()
        .flat_map(|(p, kinds)| {
            p.discovers.iter().filter_map(move |(identity, source)| {
                let step = source.split_once('.')?.0;
                kinds
                    .iter()
                    .any(|k| p.steps(*k).iter().any(|s| s.id == step))
                    .then_some(identity.as_str())
            })
        })
        .collect();
    let mut skipped: Vec<(&str, &str)> = running
        .iter()
        .filter_map(|(p, _)| {
            p.needs_identities
                .iter()
                .map(|(i, _)| i)
                .find(|i| {
                    !subject.contains_key(i.as_str())
                        && !discovered.contains(i.as_str())
                        && !p.discovers(i)
                })
                .map(|i| (p.service.as_str(), i.as_str()))
        })
        .collect();
    skipped.sort_unstable();
    for (service, identity) in skipped {
        r.push(
            Severity::Warning,
            Code::MissingIdentity,
            "/subject",
            true,
            format!(
                "service `{service}` will be skipped: it needs the identity `{identity}`, which the request does not give and no running service discovers"
            ),
        )
        .help(format!(
            "add `{identity}` under `subject:` if the subject has one there, or leave the service out knowingly"
        ));
    }
}

/// The kinds whose steps a playbook runs for `kind` (its own, or those `same_as` leads
/// to); `None` when it runs none (not declared, unsupported, or a reuse that does not end
/// in steps, which the playbook's checks report).
fn run_kinds(p: &PlaybookIndex, kind: DsrKind) -> Option<Vec<DsrKind>> {
    fn expand(
        p: &PlaybookIndex,
        kind: DsrKind,
        seen: &mut Vec<DsrKind>,
        out: &mut Vec<DsrKind>,
    ) -> bool {
        if seen.contains(&kind) {
            return false;
        }
        seen.push(kind);
        let ok = match p.kind(kind) {
            KindIndex::Steps(_) => {
                if !out.contains(&kind) {
                    out.push(kind);
                }
                true
            }
            KindIndex::Reuse(same_as) => same_as.iter().all(|k| expand(p, *k, seen, out)),
            _ => false,
        };
        seen.pop();
        ok
    }
    let mut out = Vec::new();
    expand(p, kind, &mut Vec::new(), &mut out).then_some(out)
}
