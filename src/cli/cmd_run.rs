//! `dsrctl run` and `dsrctl resume`: execute a request against the real services.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Result, bail};

use super::Outcome;
use super::args::{Cli, ResumeArgs, RunArgs};
use super::progress::Progress;
use super::workspace::{self, Workspace};
use crate::compile::compile;
use crate::engine::{ApplyFilter, RunResult};
use crate::journal::{Plan, PlannedAction, RunMode, RunStatus, StepStatus};
use crate::model::HttpMethod;
use crate::report::Scrubber;

/// Plans and applies a request, or resumes its unfinished run.
pub async fn run(cli: &Cli, args: &RunArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let request = workspace::request(&args.request, color)?;
    if let Some(run_id) = ws.store.unfinished_run(&request.id).await? {
        eprintln!("resuming run {run_id} of request {}", request.id);
        return execute(cli, &ws, &run_id, None, args.parallelism).await;
    }
    let plan = compile(&ws.project, &request, chrono::Utc::now())?;
    approve(&ws, &plan, args.approve.as_deref(), &request.id).await?;
    let run_id = ws.store.create_run(&plan, RunMode::Apply).await?;
    eprintln!(
        "run {run_id} of request {} ({}, tenant {})",
        request.id, request.kind, request.tenant
    );
    execute(cli, &ws, &run_id, None, args.parallelism).await
}

/// Resumes a run by id.
pub async fn resume(cli: &Cli, args: &ResumeArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let run = ws.store.run(&args.run).await?;
    if run.mode != RunMode::Apply {
        bail!(
            "run {} is a dry run; dry runs are not resumed, plan again",
            run.id
        );
    }
    if run.status == RunStatus::Completed {
        eprintln!("run {} is already completed", run.id);
        return Ok(Outcome::Ok);
    }
    execute(cli, &ws, &run.id, None, args.parallelism).await
}

/// Whether a plan erases data.
pub fn deletes_data(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| match &s.action {
        PlannedAction::Http(h) => h.method == HttpMethod::Delete,
        PlannedAction::Sql(q) => q.delete.is_some() || q.execute.is_some(),
        _ => false,
    })
}

/// Deletions need an approval: `--approve NAME`, or a "yes" on a terminal. Recorded in the
/// audit log.
pub async fn approve(ws: &Workspace, plan: &Plan, by: Option<&str>, subject: &str) -> Result<()> {
    if !deletes_data(plan) {
        return Ok(());
    }
    let approver = match by {
        Some(name) => name.to_owned(),
        None if std::io::stdin().is_terminal() => {
            eprint!(
                "This will erase data in {} service(s). Type yes to approve: ",
                services(plan)
            );
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            if answer.trim() != "yes" {
                bail!("not approved; nothing was changed");
            }
            std::env::var("USER").unwrap_or_else(|_| "interactive user".to_owned())
        }
        None => bail!(
            "this plan erases data; pass --approve NAME to record who approved it (not running interactively)"
        ),
    };
    ws.store
        .append_audit(
            "approved",
            subject,
            serde_json::json!({"kind": plan.request.kind, "deletes": true}),
            Some(&approver),
        )
        .await?;
    Ok(())
}

fn services(plan: &Plan) -> usize {
    let mut s: Vec<&str> = plan.steps.iter().map(|s| s.service.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s.len()
}

/// Executes a stored run with progress and prints its summary.
pub async fn execute(
    cli: &Cli,
    ws: &Workspace,
    run_id: &str,
    filter: Option<&ApplyFilter>,
    parallelism: Option<usize>,
) -> Result<Outcome> {
    let record = ws.store.run(run_id).await?;
    let plan = record.plan;
    let progress = Arc::new(Progress::new(&plan, cli.show_personal_data));
    let engine = ws
        .engine(&plan.request.tenant, parallelism)
        .await?
        .with_observer(progress.clone());
    let stop = engine.stop_flag();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "stopping: no new steps start; running ones finish. Resume with `dsrctl resume`."
            );
            stop.store(true, Ordering::SeqCst);
        }
    });
    let result = engine.execute(run_id, &plan, RunMode::Apply, filter).await;
    watcher.abort();
    progress.finish();
    let result = result?;
    ws.store
        .append_audit(
            "run",
            run_id,
            serde_json::json!({"status": result.status, "request": plan.request.id}),
            None,
        )
        .await?;
    let scrubber = (!cli.show_personal_data).then(|| Scrubber::for_request(&plan.request));
    out!("{}", summary(&plan, &result, scrubber.as_ref()));
    Ok(match result.status {
        RunStatus::Failed | RunStatus::Interrupted => Outcome::Problems,
        _ => Outcome::Ok,
    })
}

/// The end-of-run summary: counts, what failed and how to resume, what waits.
pub fn summary(plan: &Plan, result: &RunResult, scrubber: Option<&Scrubber>) -> String {
    use std::fmt::Write;
    let scrub = |t: &str| scrubber.map_or_else(|| t.to_owned(), |s| s.scrub(t));
    let steps: Vec<_> = result
        .outcomes
        .iter()
        .filter(|o| o.instance == o.step)
        .collect();
    let count = |st: StepStatus| steps.iter().filter(|o| o.status == st).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nRun {}: {}. {} succeeded, {} nothing held, {} failed, {} blocked, {} skipped, {} waiting.",
        result.run_id,
        result.status.as_str(),
        count(StepStatus::Succeeded),
        count(StepStatus::Absent),
        count(StepStatus::Failed),
        count(StepStatus::Blocked),
        count(StepStatus::Skipped),
        count(StepStatus::Waiting),
    );
    for s in &plan.services {
        if let crate::journal::Disposition::Exempt { reason } = &s.disposition {
            let _ = writeln!(out, "  exempt   {}: {}", s.service, reason);
        }
    }
    for o in steps
        .iter()
        .filter(|o| matches!(o.status, StepStatus::Failed | StepStatus::Waiting))
    {
        let _ = writeln!(
            out,
            "  {:<8} {}: {}{}",
            o.status.as_str(),
            o.step,
            scrub(o.message.as_deref().unwrap_or("")),
            o.due_at
                .map(|d| format!(" (due {})", d.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        );
    }
    match result.status {
        RunStatus::Failed => {
            let _ = writeln!(
                out,
                "Fix what failed, then `dsrctl resume {}`: finished steps are not repeated.",
                result.run_id
            );
        }
        RunStatus::Waiting => {
            let _ = writeln!(
                out,
                "Waiting: record manual tasks with `dsrctl task done {} STEP --by NAME`; due steps run on `dsrctl resume {}`.",
                result.run_id, result.run_id
            );
        }
        RunStatus::Interrupted => {
            let _ = writeln!(
                out,
                "Interrupted: `dsrctl resume {}` continues.",
                result.run_id
            );
        }
        _ => {}
    }
    let _ = writeln!(out, "Report: dsrctl report {}", result.run_id);
    out
}
