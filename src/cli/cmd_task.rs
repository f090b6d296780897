//! `dsrctl task list|done|fail`: the manual steps people do, and mutations that may have
//! been sent (a crash left them `running`, or their answer was lost) that only a person can
//! settle.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::Outcome;
use super::args::Cli;
use super::args_lifecycle::{ListFormat, TaskAction, TaskArgs, TaskDoneArgs, TaskListArgs};
use super::workspace::Workspace;
use crate::journal::{RunRecord, RunStatus, StepOutcome};
use crate::report::Scrubber;
use crate::workflow::{OpenTask, TaskSettlement, Workflow, find_open_instance, open_tasks};

/// Most runs `task list` looks through.
const RUNS_SCANNED: u32 = 100_000;

/// How long `task done` holds a run while it records and continues it.
const TASK_LEASE: Duration = Duration::from_secs(600);

/// `dsrctl task ...`.
pub async fn task(cli: &Cli, args: &TaskArgs, color: bool) -> Result<Outcome> {
    match &args.action {
        TaskAction::List(a) => list(cli, a, color).await,
        TaskAction::Done(a) => settle(cli, a, true, color).await,
        TaskAction::Fail(a) => settle(cli, a, false, color).await,
    }
}

async fn list(cli: &Cli, args: &TaskListArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let tasks = open_tasks(ws.store.as_ref(), RUNS_SCANNED).await?;
    let rows: Vec<Value> = tasks
        .iter()
        .map(|t| task_json(&ws, t, cli.show_personal_data))
        .collect();
    match args.format {
        ListFormat::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
        ListFormat::Text => {
            if rows.is_empty() {
                outln!("no manual tasks are waiting");
            }
            for r in &rows {
                outln!(
                    "{}  {}  request {}  assignee {}{}",
                    r["run"].as_str().unwrap_or(""),
                    r["step"].as_str().unwrap_or(""),
                    r["request"].as_str().unwrap_or(""),
                    r["assignee"].as_str().unwrap_or("-"),
                    r["due"]
                        .as_str()
                        .map(|d| format!("  due {d}"))
                        .unwrap_or_default()
                );
                outln!("    {}", r["instructions"].as_str().unwrap_or(""));
                if let Some(ev) = r["evidence_wanted"].as_array().filter(|e| !e.is_empty()) {
                    let names: Vec<&str> = ev.iter().filter_map(Value::as_str).collect();
                    outln!("    evidence wanted: {}", names.join(", "));
                }
                outln!(
                    "    record it: dsrctl task done {} {} --by NAME{}",
                    r["run"].as_str().unwrap_or(""),
                    r["step"].as_str().unwrap_or(""),
                    if r["evidence_wanted"]
                        .as_array()
                        .is_some_and(|e| !e.is_empty())
                    {
                        " --evidence FILE"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(Outcome::Ok)
}

fn task_json(ws: &Workspace, t: &OpenTask, show_personal_data: bool) -> Value {
    let scrubber = (!show_personal_data).then(|| Scrubber::for_request(&t.run.plan.request));
    let text = t.outcome.message.clone().unwrap_or_default();
    let instructions = scrubber.as_ref().map_or(text.clone(), |s| s.scrub(&text));
    json!({
        "run": t.run.id,
        "request": t.run.request_id,
        "step": t.outcome.instance,
        "kind": t.kind(),
        "instructions": instructions,
        "assignee": t.assignee(&ws.project),
        "evidence_wanted": t.evidence_wanted(),
        "due": t.outcome.due_at.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()),
        "waiting_since": t.outcome.started_at,
    })
}

/// Records a task done (or failed), then continues the run unless asked not to.
async fn settle(cli: &Cli, args: &TaskDoneArgs, done: bool, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let run = ws.store.run(&args.run).await?;
    if run.status == RunStatus::Abandoned {
        bail!(
            "run {} was abandoned; its tasks are not recorded any more (`dsrctl run` the request afresh)",
            run.id
        );
    }
    let outcomes = ws.store.outcomes(&run.id).await?;
    let target = find_open_instance(&run, &outcomes, &args.step)?;
    let holder = super::workspace::cli_holder_for(&format!("task by {}", args.by));
    let wf = ws.workflow_as(&holder, None).with_lease_ttl(TASK_LEASE);
    super::workspace::lease(&wf, &run.id).await?;
    let result = record(&wf, &run, target, args, done).await;
    let result = match result {
        Ok(()) if args.no_continue => {
            // `running` without a lease: the next `dsrctl tick` claims and continues it.
            ws.store.set_run_status(&run.id, RunStatus::Running).await?;
            outln!("recorded; the next `dsrctl tick` continues run {}", run.id);
            Ok(Outcome::Ok)
        }
        // Continued in the name of the task's holder, who holds the lease already.
        Ok(()) => {
            super::cmd_run::execute(cli, &wf, &run.id, None, super::cmd_run::TakeUp::Continue).await
        }
        Err(e) => Err(e),
    };
    wf.release(&run.id).await?;
    result
}

async fn record(
    wf: &Workflow,
    run: &RunRecord,
    outcome: StepOutcome,
    args: &TaskDoneArgs,
    done: bool,
) -> Result<()> {
    let mut evidence = Vec::new();
    for path in &args.evidence {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the evidence file {}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        evidence.push((name, bytes));
    }
    let settlement = TaskSettlement {
        by: args.by.clone(),
        done,
        note: args.note.clone(),
        evidence,
    };
    let (outcome, evidence) = wf.settle_task(run, outcome, &settlement).await?;
    outln!(
        "recorded {} of {} as {} by {}{}",
        outcome.instance,
        run.id,
        if done { "done" } else { "failed" },
        args.by,
        if evidence.is_empty() {
            String::new()
        } else {
            format!(" with {} evidence file(s)", evidence.len())
        }
    );
    Ok(())
}
