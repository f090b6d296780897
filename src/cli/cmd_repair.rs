//! `dsrctl replan` (and `resume --replan`): a run continued with today's playbooks, after
//! the difference is shown and approved; `dsrctl abandon`: a run given up.

use std::fmt::Write;

use anyhow::Result;

use super::Outcome;
use super::args::{AbandonArgs, Cli, ReplanArgs};
use super::cmd_run::{approver, execute};
use super::workspace::{self, Workspace};
use crate::workflow::{Replan, StepChange, StepDiff, approval_needed};

/// Shows what a replan changes, puts it in place once approved, and continues the run.
pub async fn replan(cli: &Cli, args: &ReplanArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let wf = ws.workflow(args.parallelism);
    let replan = wf.replan(&args.run).await?;
    out!("{}", render(&replan));
    let approver = if replan.diff.changes_what_is_left() {
        approver(&replan.plan, args.approve.as_deref())?
    } else {
        None
    };
    workspace::lease(&wf, &replan.run.id).await?;
    wf.apply_replan(&replan, approver.as_deref()).await?;
    note!("run {} goes on with the new plan", replan.run.id);
    execute(
        cli,
        &wf,
        &replan.run.id,
        None,
        super::cmd_run::TakeUp::Resume,
    )
    .await
}

/// The difference, for the steps left to do, and what finished and is kept.
fn render(replan: &Replan) -> String {
    let run = &replan.run;
    let diff = &replan.diff;
    let mut out = format!(
        "Replan of run {} (request {}, {}): the request compiled with today's playbooks\n",
        run.id,
        run.request_id,
        run.status.as_str()
    );
    if !diff.inputs.is_empty() {
        let _ = writeln!(out, "inputs: {}", diff.inputs.join(", "));
    }
    let mut kept = 0;
    for s in &diff.steps {
        match line(s) {
            Some(l) => {
                let _ = writeln!(out, "  {l}");
                if let StepChange::Changed(fields) = &s.change {
                    for f in fields {
                        let _ = writeln!(out, "      {f}");
                    }
                }
            }
            None => kept += 1,
        }
    }
    if kept > 0 {
        let _ = writeln!(out, "  ({kept} step(s) unchanged)");
    }
    if !diff.changes_what_is_left() {
        let _ = writeln!(
            out,
            "Nothing left to do changes: the run goes on as `dsrctl resume` would."
        );
    } else if let Some(why) = approval_needed(&replan.plan) {
        let _ = writeln!(out, "The new plan needs approval: {why}.");
    }
    out
}

/// One step's line: `~` changed, `+` added, `-` removed, `=` finished and kept (each changed
/// field follows on its own line, as `plan --compare` shows it).
fn line(s: &StepDiff) -> Option<String> {
    let state = match (s.done(), s.status) {
        (true, Some(_)) => "already done, kept: not sent again".to_owned(),
        (false, Some(st)) => {
            let mut kept = String::new();
            if s.finished_instances > 0 {
                let _ = write!(kept, "; {} finished instance(s) kept", s.finished_instances);
            }
            if s.in_doubt > 0 {
                let _ = write!(
                    kept,
                    "; {} in doubt (may have been sent), settled by its verify or a person before anything is sent again",
                    s.in_doubt
                );
            }
            format!("{}{kept}, runs again with the new plan", st.as_str())
        }
        _ => "not started".to_owned(),
    };
    Some(match &s.change {
        StepChange::Same => return None,
        StepChange::Added => format!("+ {}: added ({state})", s.key),
        StepChange::Removed if s.done() => format!(
            "- {}: no longer in the playbooks; it finished, so it stays in the run as its record (not run again)",
            s.key
        ),
        StepChange::Removed => format!("- {}: removed ({state})", s.key),
        StepChange::Changed(_) if s.done() => format!("= {}: changed; {state}", s.key),
        StepChange::Changed(_) => format!("~ {}: changed ({state})", s.key),
    })
}

/// Gives a run up; says what it had already sent (a fresh run sends it again).
pub async fn abandon(cli: &Cli, args: &AbandonArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let wf = ws.workflow(None);
    let by = args
        .by
        .clone()
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "user".to_owned()));
    let run = ws.store.run(&args.run).await?;
    workspace::lease(&wf, &run.id).await?;
    let abandoned = wf.abandon(&run.id, &args.reason, &by).await?;
    outln!(
        "abandoned run {} of request {} (was {}): {}",
        abandoned.run.id,
        abandoned.run.request_id,
        abandoned.run.status.as_str(),
        args.reason
    );
    if !abandoned.sent.is_empty() {
        outln!("It had sent, or may have sent (a fresh run of the request sends these again):");
        for (instance, idempotent) in &abandoned.sent {
            outln!(
                "  {instance}{}",
                if *idempotent {
                    ""
                } else {
                    "  (not idempotent: sending it again has a second effect)"
                }
            );
        }
    }
    outln!(
        "Run the request afresh with `dsrctl run REQUEST`; `dsrctl replan` repairs a run instead."
    );
    Ok(Outcome::Ok)
}
