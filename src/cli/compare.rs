//! `dsrctl plan --compare GIT_REF`: what a playbook change does to the sample requests'
//! plans, offline, for a pull-request comment.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::Outcome;
use super::args::{Cli, PlanFormat};
use super::git_source::GitSource;
use crate::compile::compile;
use crate::journal::{Disposition, Plan, PlannedStep};
use crate::load::dataset::erasure_shrinks;
use crate::load::{FsSource, Project, Source, load_project_from, load_request_bytes};
use crate::model::{DsrKind, Request};
use crate::report::step_changes;

/// One difference between the plan at the ref and the plan now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanDiff {
    /// Request id.
    pub request: String,
    /// Service.
    pub service: String,
    /// What changed.
    pub change: String,
    /// For a changed step, each field that differs: `field: old → new`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Why the change removes or weakens an erasure or an export, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Compares every sample request's plan at `reference` and in the working tree.
pub fn compare(cli: &Cli, reference: &str, format: PlanFormat, color: bool) -> Result<Outcome> {
    let now = super::workspace::project(&cli.project, color)?;
    let git = GitSource::new(&cli.project, reference)
        .with_context(|| format!("reading the project at `{reference}`"))?;
    let before = load_project_from(&git, &cli.project).map_err(|d| {
        super::workspace::print_diagnostics(&d, false);
        anyhow::anyhow!("the project at `{reference}` does not load")
    })?;
    let requests = sample_requests(&now, &cli.project)?;
    let mut diffs = Vec::new();
    for request in &requests {
        let old = compile(&before, request, chrono::Utc::now()).ok();
        let new = compile(&now, request, chrono::Utc::now())
            .with_context(|| format!("compiling request `{}`", request.id))?;
        diffs.extend(diff_plans(old.as_ref(), &new));
    }
    diffs.extend(dataset_shrinks(&before, &now, &requests));
    let text = match format {
        PlanFormat::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "format_version": 1, "reference": reference, "requests": requests.len(), "changes": diffs,
            }))? + "\n"
        }
        PlanFormat::Markdown => markdown(reference, requests.len(), &diffs),
        PlanFormat::Text => plain(reference, requests.len(), &diffs),
    };
    out!("{text}");
    Ok(Outcome::Ok)
}

fn sample_requests(project: &Project, root: &Path) -> Result<Vec<Request>> {
    let source = FsSource(root.to_path_buf());
    let dir = &project.config.requests;
    let mut out = Vec::new();
    for rel in source
        .list_yaml(dir)
        .with_context(|| format!("listing sample requests in `{dir}`"))?
    {
        let bytes = source.read(&rel)?;
        out.push(load_request_bytes(&rel, &bytes).map_err(|d| {
            super::workspace::print_diagnostics(&d, false);
            anyhow::anyhow!("sample request {rel} is invalid")
        })?);
    }
    Ok(out)
}

/// The differences between two plans of one request, per service, with a warning on each
/// that removes or weakens an erasure (delete, restrict) or an export (access, export).
pub fn diff_plans(old: Option<&Plan>, new: &Plan) -> Vec<PlanDiff> {
    let request = new.request.id.clone();
    let erasure = matches!(new.request.kind, DsrKind::Delete | DsrKind::Restrict);
    let mut out = Vec::new();
    let push = |out: &mut Vec<PlanDiff>, service: &str, change: String| {
        out.push(PlanDiff {
            request: request.clone(),
            service: service.to_owned(),
            change,
            fields: Vec::new(),
            warning: None,
        });
    };
    let warn = |out: &mut Vec<PlanDiff>, why: String| {
        if let Some(last) = out.last_mut() {
            last.warning = Some(why);
        }
    };
    let what = if erasure { "erasure" } else { "export" };
    let Some(old) = old else {
        push(
            &mut out,
            "*",
            "did not compile before; compiles now".to_owned(),
        );
        return out;
    };
    for s in &new.services {
        let was = old.services.iter().find(|o| o.service == s.service);
        match (was.map(|w| &w.disposition), &s.disposition) {
            (None, d) => push(
                &mut out,
                &s.service,
                format!("new service: {}", describe(d)),
            ),
            (Some(a), b) if a != b => {
                let change = match (a, b) {
                    (Disposition::Run { .. }, Disposition::Exempt { reason }) => {
                        format!("became unsupported: {reason}")
                    }
                    (_, Disposition::Run { .. }) => format!("now reached (was {})", describe(a)),
                    _ => format!("{} (was {})", describe(b), describe(a)),
                };
                push(&mut out, &s.service, change);
                if matches!(a, Disposition::Run { .. }) && !matches!(b, Disposition::Run { .. }) {
                    warn(
                        &mut out,
                        format!("the {what} no longer reaches `{}`", s.service),
                    );
                }
            }
            _ => {}
        }
        let steps = |p: &'_ Plan| -> Vec<String> {
            p.steps
                .iter()
                .filter(|x| x.service == s.service)
                .map(|x| x.key.clone())
                .collect()
        };
        let (old_keys, new_keys) = (steps(old), steps(new));
        for k in new_keys.iter().filter(|k| !old_keys.contains(k)) {
            push(&mut out, &s.service, format!("step added: `{k}`"));
        }
        for k in old_keys.iter().filter(|k| !new_keys.contains(k)) {
            push(&mut out, &s.service, format!("step removed: `{k}`"));
            if let Some(gone) = old.step(k) {
                if erasure && gone.mutates {
                    warn(&mut out, format!("an erasure step is gone: `{k}`"));
                } else if !erasure && gone.collect.is_some() {
                    warn(
                        &mut out,
                        format!("`{k}` no longer collects into the export package"),
                    );
                }
            }
        }
        let common_old: Vec<&String> = old_keys.iter().filter(|k| new_keys.contains(k)).collect();
        let common_new: Vec<&String> = new_keys.iter().filter(|k| old_keys.contains(k)).collect();
        if common_old != common_new {
            push(&mut out, &s.service, "steps reordered".to_owned());
        }
        for k in &common_new {
            let (Some(a), Some(b)) = (old.step(k), new.step(k)) else {
                continue;
            };
            let fields = step_changes(a, b);
            if fields.is_empty() {
                continue;
            }
            push(&mut out, &s.service, format!("step changed: `{k}`"));
            if let Some(last) = out.last_mut() {
                last.fields = fields;
            }
            if let Some(why) = weakened(a, b, erasure) {
                warn(&mut out, format!("`{k}`: {why}"));
            }
        }
    }
    for s in old
        .services
        .iter()
        .filter(|o| !new.services.iter().any(|n| n.service == o.service))
    {
        push(&mut out, &s.service, "service removed".to_owned());
        if matches!(s.disposition, Disposition::Run { .. }) {
            warn(
                &mut out,
                format!("the {what} no longer reaches `{}`", s.service),
            );
        }
    }
    out
}

/// Dataset changes that narrow what an erasure covers (a table kept or no longer reached, a
/// column no longer masked), a warning for each erasure sample request. The plans show the
/// steps that changed; this says what it means for the data.
fn dataset_shrinks(before: &Project, now: &Project, requests: &[Request]) -> Vec<PlanDiff> {
    let mut out = Vec::new();
    for p in &now.playbooks {
        let Some(new) = &p.playbook.dataset else {
            continue;
        };
        let Some(old) = before
            .playbooks
            .iter()
            .find(|o| o.playbook.service == p.playbook.service)
            .and_then(|o| o.playbook.dataset.as_ref())
        else {
            continue;
        };
        let shrinks = erasure_shrinks(old, &before.config.erasure, new, &now.config.erasure);
        for r in requests
            .iter()
            .filter(|r| matches!(r.kind, DsrKind::Delete | DsrKind::Restrict))
        {
            for why in &shrinks {
                out.push(PlanDiff {
                    request: r.id.clone(),
                    service: p.playbook.service.clone(),
                    change: format!("dataset: {why}"),
                    fields: Vec::new(),
                    warning: Some(why.clone()),
                });
            }
        }
    }
    out
}

/// How a changed step weakens an erasure or an export, if it does.
fn weakened(old: &PlannedStep, new: &PlannedStep, erasure: bool) -> Option<String> {
    if erasure {
        if old.mutates && !new.mutates {
            return Some("no longer changes data".to_owned());
        }
        if old.mutates && old.verify.is_some() && new.verify.is_none() {
            return Some("its erasure is no longer verified".to_owned());
        }
        if new.absent_on.iter().any(|s| !old.absent_on.contains(s)) {
            return Some(format!(
                "more answers now count as nothing held: {:?}",
                new.absent_on
            ));
        }
    } else if old.collect.is_some() && new.collect.is_none() {
        return Some("no longer collects into the export package".to_owned());
    }
    None
}

fn describe(d: &Disposition) -> String {
    match d {
        Disposition::Run { kinds } => format!(
            "runs {}",
            kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(" then ")
        ),
        Disposition::Exempt { reason } => format!("unsupported: {reason}"),
        Disposition::Skipped { reason } => format!("skipped: {reason}"),
    }
}

fn markdown(reference: &str, requests: usize, diffs: &[PlanDiff]) -> String {
    let mut out = format!("### dsrctl: playbook changes against `{reference}`\n\n");
    if diffs.is_empty() {
        let _ = writeln!(
            out,
            "No change to the plans of the {requests} sample request(s)."
        );
        return out;
    }
    let warnings: Vec<&PlanDiff> = diffs.iter().filter(|d| d.warning.is_some()).collect();
    if !warnings.is_empty() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> This change removes or weakens what a request does:\n>"
        );
        for d in &warnings {
            let _ = writeln!(
                out,
                "> - {} ({}): {}",
                d.request,
                d.service,
                d.warning.as_deref().unwrap_or_default().replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} change(s) across the plans of {requests} sample request(s).\n",
        diffs.len()
    );
    let _ = writeln!(
        out,
        "<details><summary>Changes</summary>\n\n| request | service | change |\n|---|---|---|"
    );
    for d in diffs {
        let mut change = d.change.replace('|', "\\|");
        for f in &d.fields {
            change.push_str("<br>");
            change.push_str(&f.replace('|', "\\|"));
        }
        let _ = writeln!(out, "| {} | {} | {} |", d.request, d.service, change);
    }
    out.push_str("\n</details>\n");
    out
}

fn plain(reference: &str, requests: usize, diffs: &[PlanDiff]) -> String {
    let mut out = format!("Playbook changes against {reference} ({requests} sample request(s)):\n");
    if diffs.is_empty() {
        out.push_str("  no change\n");
    }
    for d in diffs {
        let _ = writeln!(out, "  {:<14} {:<20} {}", d.request, d.service, d.change);
        for f in &d.fields {
            let _ = writeln!(out, "  {:<14} {:<20}   {f}", "", "");
        }
        if let Some(w) = &d.warning {
            let _ = writeln!(out, "  {:<14} {:<20}   warning: {w}", "", "");
        }
    }
    out
}
