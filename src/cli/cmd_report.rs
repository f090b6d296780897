//! `dsrctl report`: evidence report, response letter, CI summary, export package. Reads the
//! journal only; no service is asked again.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::Outcome;
use super::args::{Cli, ReportArgs, ReportFormat};
use super::workspace::Workspace;
use crate::deliver::{DeliveryOptions, deliver};
use crate::journal::{RunRecord, StepOutcome};
use crate::report::package::Manifest;
use crate::report::package::{PackageFormat, PackageOptions, build_package};
use crate::report::{Format, ReportContext, ReportKind, RunView, render, render_named};
use crate::secret::EnvFileResolver;
use crate::store::verify_chain_to;

/// Renders a report of a run, and builds (and delivers) its export package when asked.
pub async fn report(cli: &Cli, args: &ReportArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let run = ws.store.run(&args.run).await?;
    let outcomes = ws.store.outcomes(&run.id).await?;
    // `--deliver` ships the package: the one asked for with `--package`, else one built for
    // the delivery in a scratch directory.
    let destination = if args.deliver {
        let tenant = ws.project.config.tenants.get(&run.plan.request.tenant);
        Some(
            tenant
                .and_then(|t| t.export.as_ref())
                .or(ws.project.config.export.as_ref())
                .context(
                    "--deliver: no export destination in dsrctl.yaml (`export:` of the tenant or the project)",
                )?,
        )
    } else {
        None
    };
    let now = chrono::Utc::now();
    let format = match args.format {
        ReportFormat::Md => Format::Markdown,
        ReportFormat::Html => Format::Html,
        ReportFormat::Json => Format::Json,
    };
    let text = render_report(&ws, &run, &outcomes, format, &args.template, now).await?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            note!("wrote {}", path.display());
        }
        None => out!("{text}"),
    }

    let scratch;
    let package = match (&args.package, destination) {
        (Some(out), _) => Some(out.clone()),
        (None, Some(_)) => {
            scratch = tempfile::tempdir().context("a scratch directory for the package")?;
            Some(scratch.path().join(crate::deliver::archive::safe_file_name(
                &run.plan.request.id,
            )))
        }
        (None, None) => None,
    };
    if let Some(out) = &package {
        let manifest = build_run_package(&ws, &run, &outcomes, out, now).await?;
        let files = manifest.files().count();
        if args.package.is_some() {
            note!(
                "export package: {} ({files} file(s), signed manifest.json and SHA256SUMS with the SHA-256 of each){}",
                out.display(),
                if manifest.complete {
                    String::new()
                } else {
                    let why = manifest.incomplete_because.join("; ");
                    let why = if cli.show_personal_data {
                        why
                    } else {
                        crate::report::Scrubber::for_request(&run.plan.request).scrub(&why)
                    };
                    format!("; INCOMPLETE: {why}")
                }
            );
        }
        if let Some(dest) = destination {
            let secrets = EnvFileResolver::new(&ws.project.root);
            let delivered = deliver(
                dest,
                out,
                &DeliveryOptions::new(&run.plan.request.id, &ws.project.root),
                &secrets,
            )
            .await?;
            note!(
                "delivered the export package ({files} file(s) and its manifest) as {} object(s) to {}",
                delivered.objects.len(),
                delivered.destination
            );
        }
    }
    Ok(Outcome::Ok)
}

/// A report of a run from its journal, the request's record and the audit log, signed with
/// the project's evidence key (the CI summary is left unsigned): `template` is `evidence`,
/// `letter`, `summary` or a template file. What `dsrctl report` and the HTTP API serve.
pub async fn render_report(
    ws: &Workspace,
    run: &RunRecord,
    outcomes: &[StepOutcome],
    format: Format,
    template: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let today = now.date_naive();
    let record = ws.store.request(&run.plan.request.id).await.ok();
    let audit = ws.store.audit_entries().await?;
    let head = ws.store.audit_head().await?;
    let audit_key = crate::workflow::audit_key(&ws.project, &ws.state_dir)?;
    let audit_break = verify_chain_to(&audit, (head.0, &head.1), Some(&audit_key))
        .err()
        .map(|b| b.to_string());
    let ctx = ReportContext {
        config: Some(&ws.project.config),
        request: record.as_ref(),
        audit: Some(&audit),
        audit_head: Some(head),
        audit_break,
        generated_at: Some(now),
    };
    let view = RunView::build_with(run, outcomes, today, &ctx);
    if let Some(a) = view.audit.as_ref().filter(|a| !a.intact) {
        for p in &a.problems {
            warn_note!("{p}");
        }
    }
    let overrides = ws
        .project
        .config
        .templates
        .as_ref()
        .map(|t| ws.project.root.join(t));
    let kind = match template {
        "evidence" => Some(ReportKind::Evidence),
        "letter" => Some(ReportKind::Letter),
        "summary" => Some(ReportKind::Summary),
        _ => None,
    };
    let text = match kind {
        Some(kind) => render(&view, kind, format, overrides.as_deref())?,
        None => render_named(&view, template, false, overrides.as_deref())?,
    };
    // Signed, so an auditor can check it offline (`dsrctl evidence verify`).
    let signer = crate::workflow::signing_key(&ws.project, &ws.state_dir)?;
    // The CI summary is a status line for a job page, not evidence: left unsigned.
    Ok(match serde_json::from_str::<serde_json::Value>(&text) {
        _ if kind == Some(ReportKind::Summary) => text,
        Ok(doc) if format == Format::Json && doc.is_object() => {
            serde_json::to_string_pretty(&signer.sign_json(&doc))? + "\n"
        }
        _ => signer.sign_text(&text),
    })
}

/// Builds the export package of a run at `out` (a directory, or a `.zip` file), fetching the
/// run's collected files from shared storage when another worker collected them, and keeps
/// the package there. What `dsrctl report --package` and the HTTP API build.
pub async fn build_run_package(
    ws: &Workspace,
    run: &RunRecord,
    outcomes: &[StepOutcome],
    out: &Path,
    now: DateTime<Utc>,
) -> Result<Manifest> {
    let signer = std::sync::Arc::new(crate::workflow::signing_key(&ws.project, &ws.state_dir)?);
    let zip = out.extension().is_some_and(|e| e == "zip");
    let opts = PackageOptions {
        format: if zip {
            PackageFormat::Zip
        } else {
            PackageFormat::Directory
        },
        run_id: Some(run.id.clone()),
        data_key: Some(crate::workflow::project_data_key(
            &ws.project,
            &ws.state_dir,
        )?),
        signer: Some(signer),
        generated_at: now,
        ..PackageOptions::default()
    };
    let spool = ws.state_dir.join("runs").join(&run.id);
    // The run may have been collected by another worker: its files are in shared storage.
    let storage = crate::workflow::SharedStorage::for_project(&ws.project)?;
    if let Some(storage) = &storage {
        let fetched = storage.fetch_run(&run.id, &spool).await?;
        if fetched > 0 {
            note!(
                "fetched {fetched} collected file(s) of run {} from {}",
                run.id,
                storage.description()
            );
        }
    }
    let manifest = build_package(&run.plan, outcomes, &spool, out, &opts)?;
    if let Some(storage) = &storage {
        let kept = storage
            .keep_package(&run.plan.request.id, &run.id, out)
            .await?;
        note!(
            "kept the export package in {} ({} object(s))",
            kept.destination,
            kept.objects.len()
        );
    }
    Ok(manifest)
}
