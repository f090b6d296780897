//! `dsrctl task list|done|fail`: the manual steps people do, and mutations that may have
//! been sent (a crash left them `running`, or their answer was lost) that only a person can
//! settle.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use serde_json::{Value, json};

use super::Outcome;
use super::args::Cli;
use super::args_lifecycle::{ListFormat, TaskAction, TaskArgs, TaskDoneArgs, TaskListArgs};
use super::workspace::Workspace;
use crate::journal::{
    PlannedAction, PlannedStep, RunRecord, RunStatus, StepOutcome, StepStatus, TaskRecord,
};
use crate::report::Scrubber;

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

/// One open task.
struct Task<'a> {
    run: &'a RunRecord,
    step: &'a PlannedStep,
    outcome: StepOutcome,
}

async fn list(cli: &Cli, args: &TaskListArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let runs = ws.store.runs(RUNS_SCANNED).await?;
    let mut tasks: Vec<Task<'_>> = Vec::new();
    for run in runs.iter().filter(|r| !r.status.has_ended()) {
        for o in ws.store.outcomes(&run.id).await? {
            let Some(step) = run.plan.steps.iter().find(|s| s.key == o.step) else {
                continue;
            };
            let manual_waiting =
                o.status == StepStatus::Waiting && matches!(step.action, PlannedAction::Manual(_));
            // A mutation still `running` in a run that is not executing: a crash left it,
            // and only a person can say whether it was sent.
            let unsettled = (o.status == StepStatus::Running && run.status != RunStatus::Running)
                || o.awaits_person();
            let aggregate = step.for_each.is_some() && o.instance == o.step;
            if (manual_waiting || unsettled) && !aggregate {
                tasks.push(Task {
                    run,
                    step,
                    outcome: o,
                });
            }
        }
    }
    tasks.sort_by(|a, b| {
        (
            a.outcome.due_at.is_none(),
            a.outcome.due_at,
            &a.run.id,
            &a.outcome.instance,
        )
            .cmp(&(
                b.outcome.due_at.is_none(),
                b.outcome.due_at,
                &b.run.id,
                &b.outcome.instance,
            ))
    });
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

fn task_json(ws: &Workspace, t: &Task<'_>, show_personal_data: bool) -> Value {
    let scrubber = (!show_personal_data).then(|| Scrubber::for_request(&t.run.plan.request));
    let text = t.outcome.message.clone().unwrap_or_default();
    let instructions = scrubber.as_ref().map_or(text.clone(), |s| s.scrub(&text));
    let (assignee, evidence) = match &t.step.action {
        PlannedAction::Manual(m) => (
            ws.project.config.manual_assignee(
                &t.run.plan.request.tenant,
                crate::report::manual_connector(&t.run.plan, t.step),
                m.assignee.as_deref(),
            ),
            m.evidence.clone(),
        ),
        _ => (None, Vec::new()),
    };
    json!({
        "run": t.run.id,
        "request": t.run.request_id,
        "step": t.outcome.instance,
        "kind": if t.outcome.status == StepStatus::Running || t.outcome.doubt.is_some() { "unsettled-mutation" } else { "manual" },
        "instructions": instructions,
        "assignee": assignee,
        "evidence_wanted": evidence,
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
    let target = find_instance(&run, &outcomes, &args.step)?;
    let holder = super::workspace::cli_holder_for(&format!("task by {}", args.by));
    let wf = ws.workflow_as(&holder, None).with_lease_ttl(TASK_LEASE);
    super::workspace::lease(&wf, &run.id).await?;
    let result = record(&ws, &run, target, args, done, &holder).await;
    let result = match result {
        Ok(()) if args.no_continue => {
            // `running` without a lease: the next `dsrctl tick` claims and continues it.
            ws.store.set_run_status(&run.id, RunStatus::Running).await?;
            outln!("recorded; the next `dsrctl tick` continues run {}", run.id);
            Ok(Outcome::Ok)
        }
        // Continued in the name of the task's holder, who holds the lease already.
        Ok(()) => super::cmd_run::execute(cli, &wf, &run.id, None, false).await,
        Err(e) => Err(e),
    };
    wf.release(&run.id).await?;
    result
}

async fn record(
    ws: &Workspace,
    run: &RunRecord,
    mut outcome: StepOutcome,
    args: &TaskDoneArgs,
    done: bool,
    holder: &str,
) -> Result<()> {
    let mut evidence = Vec::new();
    for path in &args.evidence {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the evidence file {}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        evidence.push(
            ws.store
                .put_evidence(&run.id, &outcome.instance, &name, &bytes)
                .await?,
        );
    }
    let now = Utc::now();
    let was_unsettled = outcome.status == StepStatus::Running || outcome.in_doubt();
    outcome.status = if done {
        StepStatus::Succeeded
    } else {
        StepStatus::Failed
    };
    if was_unsettled && done {
        outcome.sent = true;
    }
    outcome.task = Some(TaskRecord {
        by: args.by.clone(),
        at: now,
        result: if done { "done" } else { "failed" }.to_owned(),
        note: args.note.clone(),
        evidence: evidence.clone(),
    });
    if !done {
        outcome.message = Some(format!(
            "task failed (recorded by {}){}",
            args.by,
            args.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ));
    }
    outcome.finished_at = Some(now);
    outcome.due_at = None;
    crate::store::record_audited(ws.store.as_ref(), &run.id, &outcome).await?;
    let files: Vec<Value> = evidence
        .iter()
        .map(|e| json!({"name": e.name, "sha256": e.sha256}))
        .collect();
    ws.store
        .append_audit(
            if done { "task.done" } else { "task.failed" },
            &run.id,
            json!({"step": outcome.instance, "request": run.request_id, "note": args.note,
                   "evidence": files, "settled_after_crash": was_unsettled, "holder": holder}),
            Some(&args.by),
        )
        .await?;
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

/// The waiting manual instance (or unsettled mutation) `wanted` names: an instance key, a
/// step key, or a step id.
fn find_instance(run: &RunRecord, outcomes: &[StepOutcome], wanted: &str) -> Result<StepOutcome> {
    let steps: Vec<&PlannedStep> = run
        .plan
        .steps
        .iter()
        .filter(|s| s.key == wanted || s.id == wanted)
        .collect();
    let open = |o: &&StepOutcome| {
        let step = run.plan.steps.iter().find(|s| s.key == o.step);
        let manual = step.is_some_and(|s| matches!(s.action, PlannedAction::Manual(_)));
        (o.status == StepStatus::Waiting && manual)
            || o.status == StepStatus::Running
            || o.awaits_person()
    };
    if let Some(o) = outcomes
        .iter()
        .find(|o| o.instance == wanted && o.instance.contains('#'))
    {
        return if open(&o) {
            Ok(o.clone())
        } else {
            bail!(
                "{wanted} is {}, not waiting for a person",
                o.status.as_str()
            )
        };
    }
    let step = match steps.as_slice() {
        [] => bail!(
            "run {} has no step `{wanted}`; `dsrctl task list` shows the open tasks",
            run.id
        ),
        [one] => *one,
        many => bail!(
            "`{wanted}` names several steps ({}); give the step key",
            many.iter()
                .map(|s| s.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let candidates: Vec<&StepOutcome> = outcomes
        .iter()
        .filter(|o| o.step == step.key && (step.for_each.is_none() || o.instance != o.step))
        .filter(open)
        .collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let status = outcomes
                .iter()
                .find(|o| o.instance == step.key)
                .map_or("pending", |o| o.status.as_str());
            bail!(
                "step {} of run {} is {status}, not waiting for a person",
                step.key,
                run.id
            )
        }
        many => bail!(
            "step {} has several open instances; name one: {}",
            step.key,
            many.iter()
                .map(|o| o.instance.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
