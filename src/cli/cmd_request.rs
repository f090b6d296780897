//! `dsrctl request new|approve|decline|extend|import` and `dsrctl requests`: intake and the request
//! lifecycle. Every state change is appended to the audit log with its actor.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use serde_json::{Value, json};

use super::args::Cli;
use super::args_lifecycle::{
    ImportFormatArg, JurisdictionArg, KindArg, ListFormat, RequestAction, RequestApproveArgs,
    RequestArgs, RequestImportArgs, RequestNewArgs, RequestReasonArgs, RequestsArgs,
};
use super::workspace::{self, Workspace};
use super::{Outcome, UsageError};
use crate::journal::{RequestRecord, RequestState};
use crate::load::load_request_str;
use crate::model::Request;
use crate::report::Scrubber;
use crate::workflow::{ImportFormat, read_rows};

/// `dsrctl request ...`.
pub async fn request(cli: &Cli, args: &RequestArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    match &args.action {
        RequestAction::New(a) => new(&ws, a, color).await,
        RequestAction::Approve(a) => approve(&ws, a).await,
        RequestAction::Decline(a) => decline(&ws, a).await,
        RequestAction::Extend(a) => extend(&ws, a).await,
        RequestAction::Import(a) => import(&ws, a).await,
    }
}

async fn import(ws: &Workspace, args: &RequestImportArgs) -> Result<Outcome> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let format = match args.format {
        Some(ImportFormatArg::Csv) => ImportFormat::Csv,
        Some(ImportFormatArg::Jsonl) => ImportFormat::JsonLines,
        None => match args.file.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson") => ImportFormat::JsonLines,
            _ => ImportFormat::Csv,
        },
    };
    let rows = read_rows(&bytes, format)?;
    let report = ws
        .workflow(None)
        .import(rows, args.tenant.as_deref(), |_| true, args.by.as_deref())
        .await?;
    let file = args.file.display();
    for (line, why) in &report.rejected {
        warn_note!("{file}:{line}: rejected: {why}");
    }
    for (line, first) in &report.repeated {
        note!("{file}:{line}: the same request as line {first}; recorded once");
    }
    outln!(
        "{} row(s): recorded {} request(s), {} already recorded, {} repeated, {} rejected",
        report.rows,
        report.created.len(),
        report.existing.len(),
        report.repeated.len(),
        report.rejected.len()
    );
    Ok(if report.rejected.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

async fn new(ws: &Workspace, args: &RequestNewArgs, color: bool) -> Result<Outcome> {
    let request = match &args.file {
        Some(path) => workspace::request(path, color)?,
        None => from_args(args, color)?,
    };
    let received = ws.workflow(None).receive(&request, None).await?;
    let auto = received.state == RequestState::Approved;
    let why = received.approval_needed;
    let state = received.state;
    let deadline = request.deadline(false);
    outln!(
        "recorded request {} ({}, tenant {}), {}, deadline {deadline}",
        request.id,
        request.kind,
        request.tenant,
        state
    );
    if auto {
        outln!("approved on intake; `dsrctl tick` starts it");
    } else {
        outln!(
            "{}: approve with `dsrctl request approve {} --by NAME`",
            why.unwrap_or_default(),
            request.id
        );
    }
    Ok(Outcome::Ok)
}

/// Builds a request from the options and validates it like a request file.
fn from_args(args: &RequestNewArgs, color: bool) -> Result<Request> {
    let kind = match args.kind {
        Some(KindArg::Access) => "access",
        Some(KindArg::Export) => "export",
        Some(KindArg::Rectify) => "rectify",
        Some(KindArg::Restrict) => "restrict",
        Some(KindArg::Delete) | None => "delete",
    };
    let mut subject: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(email) = &args.email {
        subject
            .entry("email".into())
            .or_default()
            .push(email.clone());
    }
    for pair in &args.subject {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(UsageError(format!(
                "`--subject {pair}`: write it as name=value, e.g. --subject object_id=1234"
            ))
            .into());
        };
        subject
            .entry(name.trim().to_owned())
            .or_default()
            .push(value.to_owned());
    }
    if subject.is_empty() {
        return Err(UsageError(
            "give the subject's identity: --email ADDRESS and/or --subject name=value".to_owned(),
        )
        .into());
    }
    let subject: serde_json::Map<String, Value> = subject
        .into_iter()
        .map(|(k, mut v)| {
            let value = if v.len() == 1 {
                Value::String(v.remove(0))
            } else {
                json!(v)
            };
            (k, value)
        })
        .collect();
    let received = args
        .received
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("r-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S%3f")));
    let mut doc = json!({
        "id": id,
        "kind": kind,
        "tenant": args.tenant.clone().unwrap_or_default(),
        "jurisdiction": match args.jurisdiction {
            JurisdictionArg::Gdpr => "gdpr",
            JurisdictionArg::Ccpa => "ccpa",
        },
        "received": received.to_string(),
        "subject": subject,
    });
    if let Some(note) = &args.note {
        doc["note"] = json!(note);
    }
    // JSON is YAML: the same checks as a request file, with the same messages.
    let text = serde_json::to_string_pretty(&doc)?;
    load_request_str("(command line)", &text).map_err(|d| {
        super::workspace::print_diagnostics(&d, color);
        anyhow::anyhow!("the request is not valid; fix the options above")
    })
}

async fn approve(ws: &Workspace, args: &RequestApproveArgs) -> Result<Outcome> {
    ws.workflow(None)
        .approve_request(&args.id, &args.by)
        .await?;
    outln!(
        "approved request {} (by {}); `dsrctl tick` starts it",
        args.id,
        args.by
    );
    Ok(Outcome::Ok)
}

async fn decline(ws: &Workspace, args: &RequestReasonArgs) -> Result<Outcome> {
    ws.workflow(None)
        .decline_request(&args.id, &args.reason, args.by.as_deref())
        .await?;
    outln!("declined request {}: {}", args.id, args.reason);
    Ok(Outcome::Ok)
}

async fn extend(ws: &Workspace, args: &RequestReasonArgs) -> Result<Outcome> {
    let record = ws
        .workflow(None)
        .extend_request(&args.id, &args.reason, args.by.as_deref())
        .await?;
    outln!(
        "extended the deadline of request {} to {} ({})",
        args.id,
        record.deadline,
        args.reason
    );
    Ok(Outcome::Ok)
}

/// `dsrctl requests`: open requests by deadline (overdue first), then ended ones.
pub async fn requests(cli: &Cli, args: &RequestsArgs, color: bool) -> Result<Outcome> {
    let ws = Workspace::open(&cli.project, color).await?;
    let today = args
        .today
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let records = match &args.subject {
        Some(pair) => {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(super::UsageError(format!(
                    "--subject takes NAME=VALUE (e.g. email=jane@example.com), not `{pair}`"
                ))
                .into());
            };
            ws.store
                .requests_for_subject(name.trim(), value.trim())
                .await
        }
        None => ws.store.requests().await,
    };
    let records = ordered(records.context("listing requests")?);
    match args.format {
        ListFormat::Json => {
            let rows: Vec<Value> = records.iter().map(|r| row_json(r, today)).collect();
            outln!("{}", serde_json::to_string_pretty(&rows)?);
        }
        ListFormat::Text => {
            if records.is_empty() {
                outln!(
                    "no requests recorded; `dsrctl request new` records one with its deadline \
                     (runs of request files are listed by `dsrctl runs`)"
                );
                return Ok(Outcome::Ok);
            }
            let mut t = super::table::new(&[
                "request", "kind", "tenant", "law", "state", "deadline", "days", "reason",
            ]);
            for r in &records {
                let scrubber = (!cli.show_personal_data).then(|| Scrubber::for_request(&r.request));
                let days = if r.state.is_final() {
                    "-".to_owned()
                } else {
                    days_text(r.days_left(today))
                };
                let reason = r
                    .reason
                    .as_deref()
                    .map(|t| {
                        scrubber
                            .as_ref()
                            .map_or_else(|| t.to_owned(), |s| s.scrub(t))
                    })
                    .unwrap_or_default();
                t.add_row(vec![
                    r.request.id.clone(),
                    r.request.kind.to_string(),
                    r.request.tenant.clone(),
                    r.request.jurisdiction.as_str().to_owned(),
                    r.state.as_str().to_owned(),
                    format!(
                        "{}{}",
                        r.deadline,
                        if r.extended { " (extended)" } else { "" }
                    ),
                    days,
                    reason,
                ]);
            }
            out!("{}", super::table::render(&t));
        }
    }
    Ok(Outcome::Ok)
}

/// Open requests first, nearest deadline (so overdue) first; then ended ones.
fn ordered(mut records: Vec<RequestRecord>) -> Vec<RequestRecord> {
    records.sort_by(|a, b| {
        (a.state.is_final(), a.deadline, &a.request.id).cmp(&(
            b.state.is_final(),
            b.deadline,
            &b.request.id,
        ))
    });
    records
}

fn days_text(days: i64) -> String {
    let n = |d: i64| {
        if d == 1 {
            "1 day".to_owned()
        } else {
            format!("{d} days")
        }
    };
    match days {
        d if d < 0 => format!("OVERDUE by {}", n(-d)),
        0 => "due today".to_owned(),
        d => format!("{} left", n(d)),
    }
}

fn row_json(r: &RequestRecord, today: NaiveDate) -> Value {
    json!({
        "id": r.request.id,
        "kind": r.request.kind,
        "tenant": r.request.tenant,
        "jurisdiction": r.request.jurisdiction,
        "state": r.state,
        "reason": r.reason,
        "received": r.received,
        "deadline": r.deadline,
        "extended": r.extended,
        "extension_reason": r.extension_reason,
        "days_left": (!r.state.is_final()).then(|| r.days_left(today)),
        "overdue": !r.state.is_final() && r.days_left(today) < 0,
    })
}
