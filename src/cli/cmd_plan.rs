//! `dsrctl plan` (dry run or offline), `dsrctl apply` (a saved plan) and `dsrctl test`.

use anyhow::{Context, Result, bail};

use super::Outcome;
use super::args::{ApplyArgs, Cli, PlanArgs, PlanFormat, ShowArgs, TestArgs};
use super::cmd_run::{TakeUp, approver, execute};
use super::workspace::{self, Workspace};
use crate::compile::compile;
use crate::journal::{Plan, RunStatus};
use crate::report::plan_view::{
    Failure, PlanViewOptions, render_json, render_markdown, render_text,
};
use crate::workflow::{SavedPlan, WorkflowError};

/// Compiles a request and previews it: a dry run that only reads, or `--offline` (no
/// service contacted: the steps only).
pub async fn plan(cli: &Cli, args: &PlanArgs, color: bool) -> Result<Outcome> {
    if let Some(reference) = &args.compare {
        return super::compare::compare(cli, reference, args.format, color);
    }
    let Some(request_path) = &args.request else {
        bail!("give a request file")
    };
    if args.offline {
        let project = workspace::project(&cli.project, color)?;
        let request = workspace::request(request_path, color)?;
        let plan = compile(&project, &request, chrono::Utc::now())?;
        // The playbooks are in the plan now: a project of thousands need not stay.
        drop(project);
        out!(
            "{}",
            super::plan_offline::render(plan, args.format, cli.show_personal_data)?
        );
        return Ok(Outcome::Ok);
    }
    let ws = Workspace::open(&cli.project, color).await?;
    let request = workspace::request(request_path, color)?;
    let wf = ws.workflow(args.parallelism);
    let dry = wf.dry_run(wf.compile(&request)?).await?;
    let opts = PlanViewOptions {
        show_personal_data: cli.show_personal_data,
        color,
    };
    let (plan, changes) = (&dry.plan, &dry.changes);
    let failures: Vec<Failure> = dry.failures.iter().map(Failure::of).collect();
    match args.format {
        PlanFormat::Text => out!("{}", render_text(plan, changes, &failures, opts)),
        PlanFormat::Json => out!("{}", render_json(plan, changes, &failures, opts)),
        PlanFormat::Markdown => {
            let parts = render_markdown(plan, changes, &failures, opts);
            let n = parts.len();
            for (i, part) in parts.iter().enumerate() {
                out!("{part}");
                if i + 1 < n {
                    // Each part fits one PR comment; the separator marks where to split.
                    outln!("\n<!-- dsrctl: next comment -->");
                }
            }
        }
    }
    if !dry.complete() {
        // Exit 1 whatever `--detailed-exitcode` says: an incomplete preview is a problem,
        // not "no changes", and it is not saved for `apply`.
        bail!(
            "{} step(s) of the dry run could not be previewed, so the plan is incomplete{}",
            dry.failures.len(),
            if args.out.is_some() {
                "; nothing was saved"
            } else {
                ""
            }
        );
    }
    if let Some(out) = &args.out {
        let saved = wf.save(&dry)?;
        std::fs::write(out, serde_json::to_string_pretty(&saved)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        note!(
            "saved the plan to {}; apply it with `dsrctl apply {}`",
            out.display(),
            out.display()
        );
    }
    Ok(if args.detailed_exitcode && !dry.changes.is_empty() {
        Outcome::ChangesPending
    } else {
        Outcome::Ok
    })
}

/// Reads a plan saved by `dsrctl plan -o`.
fn read_saved(path: &std::path::Path) -> Result<SavedPlan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a plan saved by `dsrctl plan -o`", path.display()))
}

/// Shows a saved plan as `plan` showed it, without contacting any service; a plan edited
/// since it was saved is shown with what was edited, and exits 1 (`apply` would refuse it).
pub async fn show(cli: &Cli, args: &ShowArgs, color: bool) -> Result<Outcome> {
    let saved = read_saved(&args.plan)?;
    let ws = Workspace::open(&cli.project, color).await?;
    let wf = ws.workflow(None);
    let mut edits = saved.edits(&wf.plan_key()?);
    // The previews and identities are sealed in the file; shown (masked unless asked for)
    // as they were previewed.
    let saved = match saved.opened(&wf.data_key()?) {
        Ok(opened) => opened,
        Err(e) => {
            edits.push(format!("its personal data does not open: {e}"));
            saved
        }
    };
    ws.store.close().await;
    let opts = PlanViewOptions {
        show_personal_data: cli.show_personal_data,
        color,
    };
    let (plan, changes) = (&saved.plan, &saved.changes);
    match args.format {
        PlanFormat::Text => out!("{}", render_text(plan, changes, &[], opts)),
        PlanFormat::Json => out!("{}", render_json(plan, changes, &[], opts)),
        PlanFormat::Markdown => out!("{}", render_markdown(plan, changes, &[], opts).join("\n")),
    }
    if edits.is_empty() {
        return Ok(Outcome::Ok);
    }
    note!(
        "{} was edited after `dsrctl plan` saved it; `dsrctl apply` refuses it:",
        args.plan.display()
    );
    for e in &edits {
        warn_note!("  {e}");
    }
    Ok(Outcome::Problems)
}

/// Applies a saved plan: exactly the previewed changes, refusing a stale plan.
pub async fn apply(cli: &Cli, args: &ApplyArgs, color: bool) -> Result<Outcome> {
    let saved = read_saved(&args.plan)?;
    let ws = Workspace::open(&cli.project, color).await?;
    let wf = ws.workflow(args.parallelism);
    let saved = match wf.check_saved(&saved).await {
        Ok(opened) => opened,
        Err(e) => {
            if let WorkflowError::Refused { problems, .. } = &e {
                for p in problems {
                    warn_note!("  {p}");
                }
            }
            return Err(e.into());
        }
    };
    // One request, one live run (checked again when the run is recorded).
    wf.may_start(&saved.plan.request.id, false).await?;
    let approver = approver(&saved.plan, args.approve.as_deref())?;
    let run_id = wf.start(&saved.plan, approver.as_deref(), None).await?;
    note!(
        "run {run_id}: applying the plan of dry run {}",
        saved.dry_run
    );
    let outcome = execute(cli, &wf, &run_id, Some(&saved.filter()), TakeUp::Fresh).await?;
    if args.detailed_exitcode && outcome == Outcome::Ok {
        let run = ws.store.run(&run_id).await?;
        if run.status == RunStatus::Waiting {
            return Ok(Outcome::ChangesPending);
        }
    }
    Ok(outcome)
}

/// Runs the playbooks' offline tests.
pub async fn test(cli: &Cli, args: &TestArgs, color: bool) -> Result<Outcome> {
    super::cmd_test::run(cli, args, color).await
}

/// A plan's request with subject values masked, for views.
pub fn masked(mut plan: Plan, show: bool) -> Plan {
    if !show {
        for v in plan.request.subject.values_mut() {
            *v = match v {
                crate::model::Identity::One(s) => {
                    crate::model::Identity::One(crate::report::mask_string(s))
                }
                crate::model::Identity::Many(vs) => crate::model::Identity::Many(
                    vs.iter().map(|s| crate::report::mask_string(s)).collect(),
                ),
            };
        }
        plan.request.corrections = plan.request.corrections.as_ref().map(|c| {
            c.iter()
                .map(|(k, v)| (k.clone(), crate::report::mask_json(v).0))
                .collect()
        });
    }
    plan
}
