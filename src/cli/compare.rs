//! `dsrctl plan --compare GIT_REF`: what a playbook change does to the sample requests'
//! plans, offline, for a pull-request comment.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::Outcome;
use super::args::{Cli, PlanFormat};
use super::git_source::GitSource;
use crate::compile::compile;
use crate::journal::{Disposition, Plan};
use crate::load::{FsSource, Project, Source, load_project_from, load_request_bytes};
use crate::model::Request;

/// One difference between the plan at the ref and the plan now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanDiff {
    /// Request id.
    pub request: String,
    /// Service.
    pub service: String,
    /// What changed.
    pub change: String,
}

/// Compares every sample request's plan at `reference` and in the working tree.
pub fn compare(cli: &Cli, reference: &str, format: PlanFormat, color: bool) -> Result<Outcome> {
    let now = super::workspace::project(&cli.project, color)?;
    let git = GitSource::new(&cli.project, reference)
        .with_context(|| format!("reading the project at `{reference}`"))?;
    let before = load_project_from(&git, &cli.project).map_err(|d| {
        eprint!("{}", d.render_human(false));
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
            eprint!("{}", d.render_human(false));
            anyhow::anyhow!("sample request {rel} is invalid")
        })?);
    }
    Ok(out)
}

/// The differences between two plans of one request, per service.
pub fn diff_plans(old: Option<&Plan>, new: &Plan) -> Vec<PlanDiff> {
    let request = new.request.id.clone();
    let mut out = Vec::new();
    let push = |out: &mut Vec<PlanDiff>, service: &str, change: String| {
        out.push(PlanDiff {
            request: request.clone(),
            service: service.to_owned(),
            change,
        });
    };
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
            }
            _ => {}
        }
        let keys = |p: &Plan| -> Vec<String> {
            p.steps
                .iter()
                .filter(|x| x.service == s.service)
                .map(|x| x.key.clone())
                .collect()
        };
        let (old_keys, new_keys) = (keys(old), keys(new));
        for k in new_keys.iter().filter(|k| !old_keys.contains(k)) {
            push(&mut out, &s.service, format!("step added: `{k}`"));
        }
        for k in old_keys.iter().filter(|k| !new_keys.contains(k)) {
            push(&mut out, &s.service, format!("step removed: `{k}`"));
        }
        let common_old: Vec<&String> = old_keys.iter().filter(|k| new_keys.contains(k)).collect();
        let common_new: Vec<&String> = new_keys.iter().filter(|k| old_keys.contains(k)).collect();
        if common_old != common_new {
            push(&mut out, &s.service, "steps reordered".to_owned());
        }
        for k in &common_new {
            let (a, b) = (old.step(k), new.step(k));
            if let (Some(a), Some(b)) = (a, b)
                && (a.action != b.action
                    || a.needs != b.needs
                    || a.preview != b.preview
                    || a.verify != b.verify
                    || a.mutates != b.mutates)
            {
                push(&mut out, &s.service, format!("step changed: `{k}`"));
            }
        }
    }
    for s in old
        .services
        .iter()
        .filter(|o| !new.services.iter().any(|n| n.service == o.service))
    {
        push(&mut out, &s.service, "service removed".to_owned());
    }
    out
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
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            d.request,
            d.service,
            d.change.replace('|', "\\|")
        );
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
    }
    out
}
