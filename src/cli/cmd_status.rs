//! `dsrctl status` and `dsrctl runs`.

use anyhow::Result;

use super::Outcome;
use super::args::{Cli, ListFormat, RunsArgs, StatusArgs};
use super::table;
use super::workspace::Workspace;
use crate::journal::RunMode;
use crate::report::{Scrubber, journal_mismatches};

/// Shows one run and its steps.
pub async fn status(cli: &Cli, args: &StatusArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let id = match &args.run {
        Some(id) => id.clone(),
        None => match ws.store.runs(1).await?.into_iter().next() {
            Some(r) => r.id,
            None => {
                outln!("no runs yet; start one with `dsrctl run REQUEST`");
                return Ok(Outcome::Ok);
            }
        },
    };
    let run = ws.store.run(&id).await?;
    let outcomes = ws.store.outcomes(&run.id).await?;
    // A journal edited in the store (a failed step made `succeeded`) no longer matches the
    // audit log: said first, and the exit code says problems.
    let mismatches = if run.mode == RunMode::Apply {
        journal_mismatches(&run.id, &outcomes, &ws.store.audit_entries().await?)
    } else {
        Vec::new()
    };
    let verdict = if mismatches.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problems
    };
    if args.format() == ListFormat::Json {
        let steps: Vec<_> = run
            .plan
            .steps
            .iter()
            .map(|s| {
                let o = outcomes.iter().find(|o| o.instance == s.key);
                serde_json::json!({
                    "step": s.key,
                    "status": o.map_or("pending", |o| o.status.as_str()),
                    "attempts": o.map_or(0, |o| o.attempts),
                    "due_at": o.and_then(|o| o.due_at),
                })
            })
            .collect();
        let tampered: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
        let doc = serde_json::json!({
            "run": run.id, "request": run.request_id, "mode": run.mode, "status": run.status,
            "created_at": run.created_at, "updated_at": run.updated_at, "steps": steps,
            "journal_matches_audit_log": tampered.is_empty(), "journal_problems": tampered,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(verdict);
    }
    let scrubber = (!cli.show_personal_data).then(|| Scrubber::for_request(&run.plan.request));
    outln!(
        "run {}  request {}  {}  {}  (updated {})",
        run.id,
        run.request_id,
        mode_name(run.mode),
        run.status.as_str(),
        run.updated_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    for m in &mismatches {
        outln!("  JOURNAL DOES NOT MATCH THE AUDIT LOG: {m}");
    }
    let mut steps = table::new(&["status", "step", "detail"]);
    for s in &run.plan.steps {
        let o = outcomes.iter().find(|o| o.instance == s.key);
        let message = o
            .and_then(|o| o.message.as_deref())
            .map(|m| {
                scrubber
                    .as_ref()
                    .map_or_else(|| m.to_owned(), |sc| sc.scrub(m))
            })
            .unwrap_or_default();
        steps.add_row(vec![
            o.map_or("pending", |o| o.status.as_str()).to_owned(),
            s.key.clone(),
            message,
        ]);
    }
    out!("{}", table::render(&steps));
    Ok(verdict)
}

/// Lists runs, newest first.
pub async fn runs(cli: &Cli, args: &RunsArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let runs = ws.store.runs(args.limit).await?;
    if args.format() == ListFormat::Json {
        let rows: Vec<_> = runs
            .iter()
            .map(|r| serde_json::json!({"run": r.id, "request": r.request_id, "mode": r.mode, "status": r.status, "created_at": r.created_at}))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Outcome::Ok);
    }
    if runs.is_empty() {
        outln!("no runs yet; start one with `dsrctl run REQUEST`");
        return Ok(Outcome::Ok);
    }
    let mut t = table::new(&["run", "request", "mode", "status", "created", "updated"]);
    for r in runs {
        t.add_row(vec![
            r.id,
            r.request_id,
            mode_name(r.mode).to_owned(),
            r.status.as_str().to_owned(),
            r.created_at.format("%Y-%m-%d %H:%M").to_string(),
            r.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        ]);
    }
    out!("{}", table::render(&t));
    Ok(Outcome::Ok)
}

fn mode_name(mode: RunMode) -> &'static str {
    match mode {
        RunMode::DryRun => "dry-run",
        RunMode::Apply => "apply",
    }
}
