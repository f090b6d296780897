//! `dsrctl run` and `dsrctl resume`: execute a request against the real services.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

use super::Outcome;
use super::args::{Cli, ReplanArgs, ResumeArgs, RunArgs};
use super::progress::Progress;
use super::workspace::{self, Workspace};
use crate::engine::{ApplyFilter, RunResult};
use crate::journal::{Plan, RunStatus, StepStatus};
use crate::report::Scrubber;
use crate::workflow::{Again, Decision, Execution, LimitReport, Workflow, approval_needed};

/// Plans and applies a request, or resumes its unfinished run, or shows its completed run.
pub async fn run(cli: &Cli, args: &RunArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let request = workspace::request(&args.request, color)?;
    let wf = ws.workflow(args.parallelism);
    match wf.decide(&request, args.again).await? {
        Decision::Completed(run) => {
            outln!(
                "request {} was completed by run {} on {}; nothing was sent.",
                request.id,
                run.id,
                run.updated_at.format("%Y-%m-%d %H:%M UTC")
            );
            outln!(
                "To run it once more (everything is sent again): dsrctl run {} --again --reason \"...\"",
                args.request.display()
            );
            let result = RunResult {
                run_id: run.id.clone(),
                status: run.status,
                outcomes: ws.store.outcomes(&run.id).await?,
            };
            let scrubber =
                (!cli.show_personal_data).then(|| Scrubber::for_request(&run.plan.request));
            out!("{}", summary(&run.plan, &result, scrubber.as_ref()));
            Ok(Outcome::Ok)
        }
        Decision::Resume(run) => {
            if !same_request(&run.plan.request, &request) {
                note!(
                    "warning: {} differs from the request run {} was planned from; the run goes on with the request it holds (`dsrctl abandon` it to start over)",
                    args.request.display(),
                    run.id
                );
            }
            note!("resuming run {} of request {}", run.id, request.id);
            execute(cli, &wf, &run.id, None, TakeUp::Resume).await
        }
        Decision::Start { previous } => {
            let plan = wf.compile(&request)?;
            let approver = approver(&plan, args.approve.as_deref())?;
            let by = approver
                .clone()
                .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "user".to_owned()));
            let again = match (&previous, &args.reason) {
                (Some(p), Some(reason)) if p.status == RunStatus::Completed => Some(Again {
                    previous: &p.id,
                    reason,
                    by: &by,
                }),
                _ => None,
            };
            let run_id = wf.start(&plan, approver.as_deref(), again).await?;
            note!(
                "run {run_id} of request {} ({}, tenant {})",
                request.id,
                request.kind,
                request.tenant
            );
            execute(cli, &wf, &run_id, None, TakeUp::Fresh).await
        }
    }
}

/// Whether a request file still says what a run was planned from. (`received` and `note` are
/// left out: a file without `received` means "today", which moves.)
fn same_request(a: &crate::model::Request, b: &crate::model::Request) -> bool {
    (
        &a.kind,
        &a.tenant,
        &a.jurisdiction,
        &a.subject,
        &a.corrections,
    ) == (
        &b.kind,
        &b.tenant,
        &b.jurisdiction,
        &b.subject,
        &b.corrections,
    )
}

/// Resumes a run by id (after replanning it, with `--replan`).
pub async fn resume(cli: &Cli, args: &ResumeArgs, color: bool) -> Result<Outcome> {
    if args.replan {
        let replan = ReplanArgs {
            run: args.run.clone(),
            approve: args.approve.clone(),
            parallelism: args.parallelism,
        };
        return super::cmd_repair::replan(cli, &replan, color).await;
    }
    let ws = Workspace::open(&cli.project, color).await?;
    let run = ws.store.run(&args.run).await?;
    if run.status == RunStatus::Completed {
        note!("run {} is already completed", run.id);
        return Ok(Outcome::Ok);
    }
    let wf = ws.workflow(args.parallelism);
    execute(cli, &wf, &run.id, None, TakeUp::Resume).await
}

/// Who approves `plan` when the approval rule asks for a person: `--approve NAME`, or a
/// "yes" typed on a terminal (recorded as the login name). The workflow records it.
pub fn approver(plan: &Plan, by: Option<&str>) -> Result<Option<String>> {
    let Some(why) = approval_needed(plan) else {
        return Ok(None);
    };
    if let Some(name) = by {
        return Ok(Some(name.to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        // The workflow refuses with what needs the approval.
        return Ok(None);
    }
    eprint!("This needs approval: {why}. Type yes to approve: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not approved; nothing was changed");
    }
    Ok(Some(
        std::env::var("USER").unwrap_or_else(|_| "interactive user".to_owned()),
    ))
}

/// How a stored run is taken up by [`execute`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TakeUp {
    /// Just created: its journal is empty.
    Fresh,
    /// Continued after a task was recorded: tasks recorded failed stay failed.
    Continue,
    /// Resumed by a person: what failed is tried again, manual tasks recorded failed too.
    Resume,
}

/// Executes a stored run with progress (stopping on Ctrl-C) and prints its summary.
pub async fn execute(
    cli: &Cli,
    wf: &Workflow,
    run_id: &str,
    filter: Option<&ApplyFilter>,
    take_up: TakeUp,
) -> Result<Outcome> {
    let record = wf.store().run(run_id).await?;
    super::workspace::lease(wf, &record.id).await?;
    let progress = Arc::new(Progress::new(&record.plan, cli.show_personal_data));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            note!(
                "stopping: no new steps start; running ones finish. Resume with `dsrctl resume`."
            );
            flag.store(true, Ordering::SeqCst);
        }
    });
    let how = Execution {
        filter,
        observer: Some(progress.clone()),
        stop: Some(stop),
        fresh: take_up == TakeUp::Fresh,
        reissue_failed_tasks: take_up == TakeUp::Resume,
        hand_over: false,
    };
    let before = wf.limit_snapshot().await;
    let executed = wf.execute(&record.id, how).await;
    watcher.abort();
    progress.finish();
    let executed = executed?;
    let scrubber = (!cli.show_personal_data).then(|| Scrubber::for_request(&executed.plan.request));
    out!(
        "{}",
        summary(&executed.plan, &executed.result, scrubber.as_ref())
    );
    // Which limit bound throughput, when one made calls wait.
    let limits = LimitReport::between(&before, &wf.limit_snapshot().await, wf.parallelism(), None);
    if limits.binding.is_some() {
        super::progress::note(
            "INFO",
            &limits.describe(),
            serde_json::json!({ "limits": limits }),
        );
    }
    Ok(match executed.result.status {
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
            let id = &result.run_id;
            let _ = writeln!(
                out,
                "Fix what failed. A service's fault: then `dsrctl resume {id}`. A playbook's fault: fix it, then `dsrctl replan {id}` (the run goes on with today's playbooks). Either way finished steps are not repeated. To give the run up: `dsrctl abandon {id} --reason \"...\"`."
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
