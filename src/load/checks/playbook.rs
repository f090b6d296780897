//! Checks on one playbook: every DSR kind declared, reuses valid, connectors usable,
//! discoveries pointing at real captures; then the steps of each kind.

use super::steps::{KindSteps, check_steps};
use super::{ConfigView, Report};
use crate::load::{Code, Severity};
use crate::model::{DsrKind, KindSpec, Playbook, Preview, Step};

/// Every check on one playbook.
pub fn check_playbook(p: &Playbook, config: Option<&ConfigView<'_>>, r: &mut Report<'_>) {
    check_kinds(p, r);
    for kind in DsrKind::ALL {
        if let Some(KindSpec::Steps(steps)) = p.dsr.get(kind) {
            let ks = KindSteps::new(kind.as_str(), steps);
            check_steps(p, &ks, r);
            if let Some(c) = config {
                check_connectors(p, &ks, c, r);
            }
        }
    }
    if let Some(c) = config {
        check_playbook_connector(p, c, r);
    }
    check_discovers(p, r);
}

fn check_kinds(p: &Playbook, r: &mut Report<'_>) {
    for kind in DsrKind::ALL {
        let ptr = format!("/dsr/{kind}");
        match p.dsr.get(kind) {
            None => {
                r.push(
                    Severity::Error,
                    Code::UndeclaredKind,
                    "/dsr",
                    true,
                    format!("DSR kind `{kind}` is not declared for service `{}`", p.service),
                )
                .help(if p.dataset.is_some() {
                    format!(
                        "a dataset derives access, export, restrict and delete; add `dsr: {{ {kind}: ... }}` with steps or `{{ unsupported: <reason> }}`"
                    )
                } else {
                    format!(
                        "add `{kind}:` with steps, `{{ same_as: [...] }}` or `{{ unsupported: <reason> }}`"
                    )
                });
            }
            Some(KindSpec::Unsupported(u)) if u.unsupported.trim().is_empty() => {
                r.error(
                    Code::EmptyValue,
                    &format!("{ptr}/unsupported"),
                    format!("`unsupported` of `dsr.{kind}` needs a reason"),
                )
                .help("say why, e.g. \"system logs cannot be rectified\"; reports show it");
            }
            Some(KindSpec::Reuse(reuse)) => {
                for (i, target) in reuse.same_as.iter().enumerate() {
                    let tp = format!("{ptr}/same_as/{i}");
                    match p.dsr.get(*target) {
                        _ if *target == kind => {
                            r.error(Code::SameAsSelf, &tp, format!("`dsr.{kind}` reuses itself"))
                                .help("name other kinds whose steps this kind runs");
                        }
                        Some(KindSpec::Steps(_)) => {}
                        Some(KindSpec::Reuse(_)) => {
                            // A reuse of a reuse is fine (restrict = export = access, then
                            // delete) as long as it ends in steps and does not loop.
                            if let Err(why) = reuse_reaches_steps(p, *target, &mut vec![kind]) {
                                r.error(
                                    Code::SameAsNotSteps,
                                    &tp,
                                    format!("`dsr.{kind}` reuses `{target}`, {why}"),
                                )
                                .help("`same_as` may only name kinds that end in steps");
                            }
                        }
                        Some(KindSpec::Unsupported(_)) => {
                            r.error(
                                Code::SameAsNotSteps,
                                &tp,
                                format!(
                                    "`dsr.{kind}` reuses `{target}`, which is declared unsupported"
                                ),
                            )
                            .help("`same_as` may only name kinds that list steps");
                        }
                        None => {
                            r.error(
                                Code::SameAsUndeclared,
                                &tp,
                                format!("`dsr.{kind}` reuses `{target}`, which is not declared"),
                            )
                            .help(format!("declare the steps of `{target}`"));
                        }
                    }
                }
            }
            Some(_) => {}
        }
    }
}

/// Whether a kind's reuse chain ends in steps, without a loop or an unsupported kind.
fn reuse_reaches_steps(p: &Playbook, kind: DsrKind, seen: &mut Vec<DsrKind>) -> Result<(), String> {
    if seen.contains(&kind) {
        return Err(format!("which leads back to `{kind}` (a loop)"));
    }
    match p.dsr.get(kind) {
        Some(KindSpec::Steps(_)) => Ok(()),
        Some(KindSpec::Reuse(reuse)) => {
            seen.push(kind);
            for t in &reuse.same_as {
                reuse_reaches_steps(p, *t, seen)?;
            }
            seen.pop();
            Ok(())
        }
        Some(KindSpec::Unsupported(_)) => {
            Err(format!("which leads to `{kind}`, declared unsupported"))
        }
        None => Err(format!("which leads to `{kind}`, not declared")),
    }
}

/// The connector kinds a step needs: its action's, its preview's and its verification's,
/// with the pointer suffix of each.
fn needed_kinds(step: &Step) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if step.http.is_some() {
        out.push(("http", "/http"));
    }
    if step.sql.is_some() {
        out.push(("sql", "/sql"));
    }
    if step.email.is_some() {
        out.push(("email", "/email"));
    }
    match step.preview.as_deref() {
        Some(Preview::Http(_)) => out.push(("http", "/preview/http")),
        Some(Preview::Sql(_)) => out.push(("sql", "/preview/sql")),
        _ => {}
    }
    if let Some(v) = &step.verify {
        if v.http.is_some() {
            out.push(("http", "/verify/http"));
        }
        if v.sql.is_some() {
            out.push(("sql", "/verify/sql"));
        }
    }
    out
}

fn check_connectors(p: &Playbook, ks: &KindSteps<'_>, c: &ConfigView<'_>, r: &mut Report<'_>) {
    for (i, step) in ks.steps.iter().enumerate() {
        let ptr = format!("{}/{i}", ks.base);
        let (name, name_ptr) = match &step.connector {
            Some(n) => (n.as_str(), format!("{ptr}/connector")),
            None => (p.connector.as_str(), "/connector".to_owned()),
        };
        for (tenant, t) in &c.config.tenants {
            match t.connectors.get(name) {
                // Written but broken: reported in dsrctl.yaml.
                None if c.has_connector(tenant, name) => {}
                None if step.connector.is_some() => {
                    let names: Vec<&str> = t.connectors.keys().map(String::as_str).collect();
                    r.error(
                        Code::UnknownConnector,
                        &name_ptr,
                        format!(
                            "connector `{name}` of step `{}` is not defined in tenant `{tenant}`",
                            step.id
                        ),
                    )
                    .suggest(name, &names, "its connectors");
                }
                None => {} // Reported once for the playbook.
                Some(conn) => {
                    for (want, suffix) in needed_kinds(step) {
                        if conn.kind_name() == want {
                            continue;
                        }
                        r.error(
                            Code::ConnectorKindMismatch,
                            &format!("{ptr}{suffix}"),
                            format!(
                                "step `{}` needs a {want} connector, but connector `{name}` in tenant `{tenant}` is of kind `{}`",
                                step.id,
                                conn.kind_name()
                            ),
                        )
                        .help(format!("set `connector:` on the step to a {want} connector"));
                    }
                }
            }
        }
    }
}

fn check_playbook_connector(p: &Playbook, c: &ConfigView<'_>, r: &mut Report<'_>) {
    for (tenant, t) in &c.config.tenants {
        if !t.connectors.contains_key(&p.connector) && !c.has_connector(tenant, &p.connector) {
            let names: Vec<&str> = t.connectors.keys().map(String::as_str).collect();
            r.error(
                Code::UnknownConnector,
                "/connector",
                format!(
                    "connector `{}` of service `{}` is not defined in tenant `{tenant}`",
                    p.connector, p.service
                ),
            )
            .suggest(&p.connector, &names, "its connectors");
        }
    }
}

fn check_discovers(p: &Playbook, r: &mut Report<'_>) {
    // Steps (and captures) that failed the schema may be the ones named.
    let broken = |what: &str| {
        DsrKind::ALL
            .into_iter()
            .any(|k| (0..p.dsr.steps(k).len()).any(|i| r.broken(&format!("/dsr/{k}/{i}/{what}"))))
    };
    let (ids_broken, captures_broken) = (broken("id"), broken("capture"));
    for (identity, reference) in &p.discovers {
        let ptr = format!(
            "/discovers/{}",
            crate::load::position::escape_token(identity)
        );
        let found = reference.split_once('.').and_then(|(step, cap)| {
            DsrKind::ALL.into_iter().find_map(|k| match p.dsr.get(k) {
                Some(KindSpec::Steps(steps)) => steps
                    .iter()
                    .find(|s| s.id == step)
                    .map(|s| s.capture.contains_key(cap)),
                _ => None,
            })
        });
        match found {
            Some(true) => {}
            Some(false) if captures_broken => {}
            Some(false) => {
                r.error(
                    Code::UnknownCapture,
                    &ptr,
                    format!("`discovers.{identity}` names `{reference}`, but that step has no such capture"),
                )
                .help("name a `step-id.capture` declared under the step's `capture`");
            }
            None if ids_broken => {}
            None => {
                r.error(
                    Code::UnknownStep,
                    &ptr,
                    format!(
                        "`discovers.{identity}` names `{reference}`, which is not a step's capture"
                    ),
                )
                .help("write `step-id.capture`, naming a step of this playbook");
            }
        }
    }
}
