//! The view model every report renders: built from the plan and the journaled outcomes
//! only, with subject values scrubbed out.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::mask::Scrubber;
use super::record_view::{ApprovalView, AuditView, ExtensionView, ReportContext};
use crate::journal::{
    Disposition, Plan, PlannedAction, PlannedStep, RunMode, RunRecord, StepOutcome, StepStatus,
};
use crate::model::{Controller, Processing};

/// Version of the JSON evidence format; bumped on any incompatible change.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// Everything a report shows about one run. Serialises as the JSON evidence report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// Version of this format.
    pub format_version: u32,
    /// Run id.
    pub run_id: String,
    /// `dry_run` or `apply`.
    pub mode: String,
    /// Run status (`completed`, `waiting`, `failed`, ...).
    pub run_status: String,
    /// When the run was created.
    pub run_created_at: DateTime<Utc>,
    /// When the run last changed.
    pub run_updated_at: DateTime<Utc>,
    /// When the plan was compiled.
    pub plan_created_at: DateTime<Utc>,
    /// The request, without identity values.
    pub request: RequestView,
    /// Every service of the project and what happened there.
    pub services: Vec<ServiceView>,
    /// Totals over all services.
    pub totals: Totals,
    /// Digests of the inputs (config, playbooks) the plan was compiled from.
    pub inputs: Vec<InputDigest>,
    /// Who approved the request and when (from the audit log), when it was approved by a
    /// person.
    pub approval: Option<ApprovalView>,
    /// The audit log's head when the report was made, and whether it and the journal hold.
    pub audit: Option<AuditView>,
    /// When the report was made.
    pub generated_at: Option<DateTime<Utc>>,
    /// The controller answering the request (from dsrctl.yaml).
    pub controller: Option<Controller>,
    /// The subject's name, for the letter only; never serialised.
    #[serde(skip)]
    pub subject_name: Option<String>,
    /// Contact address of the subject for the response letter; never serialised, so it
    /// cannot reach the evidence report.
    #[serde(skip)]
    pub recipient: Option<String>,
}

/// The request, without identity values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestView {
    /// Request id.
    pub id: String,
    /// DSR kind.
    pub kind: String,
    /// Tenant.
    pub tenant: String,
    /// `gdpr` or `ccpa`.
    pub jurisdiction: String,
    /// The law's name for people: `GDPR` or `CCPA`.
    pub law: String,
    /// Date received.
    pub received: NaiveDate,
    /// Statutory deadline.
    pub deadline: NaiveDate,
    /// The extension granted (with its reason and new deadline), if one was.
    pub extension: Option<ExtensionView>,
    /// The deadline in force: the extended one when an extension was granted.
    pub effective_deadline: NaiveDate,
    /// The date everything still open is promised by: the deadline in force, or the latest
    /// due date of a waiting step when that is later.
    pub complete_by: NaiveDate,
    /// Language the subject is answered in (`en` unless the request says otherwise).
    pub language: String,
    /// The date the report is made for.
    pub as_of: NaiveDate,
    /// Days from `as_of` to the deadline in force (negative when overdue).
    pub days_left: i64,
    /// Whether the deadline has passed.
    pub overdue: bool,
    /// Days past the deadline (0 when not overdue).
    pub days_overdue: i64,
    /// Names of the subject's identities with how many values each has (never the values).
    pub identities: Vec<IdentityCount>,
    /// Fields being corrected (rectify), names only.
    pub corrected_fields: Vec<String>,
}

/// An identity name and how many values it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityCount {
    /// Identity name, e.g. `email`.
    pub name: String,
    /// Number of values.
    pub values: usize,
}

/// One service and what happened there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Service name.
    pub service: String,
    /// The service's name for data subjects: the playbook's `title`, else its name.
    pub title: String,
    /// What the letter tells the subject about the processing here (Art. 15(1)).
    pub processing: Option<Processing>,
    /// Playbook path.
    pub playbook: String,
    /// `run`, `exempt` or `skipped`.
    pub disposition: String,
    /// Why the service is exempt or skipped.
    pub reason: Option<String>,
    /// Kinds whose steps ran.
    pub kinds: Vec<String>,
    /// `tenant/connector (kind)` if bound.
    pub connector: Option<String>,
    /// Notes from the playbook.
    pub notes: Vec<String>,
    /// Data categories held.
    pub holds: Vec<String>,
    /// Number of JSON pointers redacted from the export.
    pub redacted_fields: usize,
    /// One word saying how the service ended (`done`, `failed`, `waiting`, ...).
    pub outcome: String,
    /// The outcome in words for the data subject.
    pub outcome_text: String,
    /// Step instances in plan order.
    pub steps: Vec<StepView>,
    /// Records found by reads.
    pub found: u64,
    /// Records changed or erased.
    pub affected: u64,
}

/// One step instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    /// Instance key (`service/step` or `service/step#n`).
    pub instance: String,
    /// Step id.
    pub id: String,
    /// DSR kind the step belongs to.
    pub kind: String,
    /// Description from the playbook.
    pub description: Option<String>,
    /// What the step does, e.g. `http DELETE /users/{{seg subject.object_id}}` (templates
    /// unrendered, so no values).
    pub action: String,
    /// Whether the step changes data.
    pub mutates: bool,
    /// Status (`succeeded`, `failed`, `waiting`, `pending` when not journaled...).
    pub status: String,
    /// Whether the status is a failure (failed or blocked).
    pub is_failure: bool,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Duration in milliseconds.
    pub duration_ms: Option<i64>,
    /// Duration for people, e.g. `250 ms`, `30.0 s`, `2d 6h`.
    pub duration: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Last HTTP status.
    pub http_status: Option<u16>,
    /// Records found.
    pub found: u64,
    /// Records changed.
    pub affected: Option<u64>,
    /// Verification result.
    pub verification: Option<VerificationView>,
    /// For a mutation that ended: `passed`, `failed`, or `unverified` when nothing checked
    /// its effect.
    pub verified: Option<String>,
    /// Manual task: instructions and completion.
    pub task: Option<TaskView>,
    /// When a waiting step is due.
    pub due_at: Option<DateTime<Utc>>,
    /// Why a waiting step is deferred.
    pub deferred_reason: Option<String>,
    /// Error or skip reason, scrubbed of subject values.
    pub message: Option<String>,
    /// Export collection the records went to.
    pub collection: Option<String>,
}

/// Verification of a mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationView {
    /// Whether the effect is proven.
    pub passed: bool,
    /// What was checked, scrubbed of subject values.
    pub detail: String,
}

/// A manual task and its completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// Instructions (template text, values not filled in).
    pub instructions: String,
    /// Team or role that should do it.
    pub assignee: Option<String>,
    /// Evidence asked for.
    pub evidence_wanted: Vec<String>,
    /// Whether the completion is recorded.
    pub completed: bool,
    /// Who recorded it.
    pub by: Option<String>,
    /// When.
    pub at: Option<DateTime<Utc>>,
    /// `done` or `failed`.
    pub result: Option<String>,
    /// Note, scrubbed of subject values.
    pub note: Option<String>,
    /// Evidence files with their SHA-256.
    pub evidence: Vec<EvidenceView>,
}

/// An evidence file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceView {
    /// File name.
    pub name: String,
    /// SHA-256.
    pub sha256: String,
}

/// Totals over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Services in the project.
    pub services: usize,
    /// Services that ran.
    pub services_run: usize,
    /// Services exempt.
    pub services_exempt: usize,
    /// Services skipped.
    pub services_skipped: usize,
    /// Step instances.
    pub steps: usize,
    /// Step instances by status.
    pub by_status: BTreeMap<String, usize>,
    /// Failed or blocked instances.
    pub failures: usize,
    /// Waiting instances (manual tasks, deferred steps).
    pub waiting: usize,
    /// Records found.
    pub found: u64,
    /// Records changed or erased.
    pub affected: u64,
    /// Verifications passed.
    pub verified: usize,
    /// Verifications failed.
    pub verification_failed: usize,
    /// Mutations that ended without any verification of their effect.
    pub unverified: usize,
}

/// Digest of one input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputDigest {
    /// Path relative to the project.
    pub path: String,
    /// SHA-256.
    pub sha256: String,
}

impl RunView {
    /// Builds the view of a run from its record and journal, as of `today`.
    pub fn build(run: &RunRecord, outcomes: &[StepOutcome], today: NaiveDate) -> RunView {
        Self::build_with(run, outcomes, today, &ReportContext::default())
    }

    /// [`RunView::build`] with the record around the run: assignees and controller from the
    /// config, an extension from the request's record, approval and head from the audit log.
    pub fn build_with(
        run: &RunRecord,
        outcomes: &[StepOutcome],
        today: NaiveDate,
        ctx: &ReportContext<'_>,
    ) -> RunView {
        let plan = &run.plan;
        let scrub = Scrubber::for_request(&plan.request);
        let mut by_step: BTreeMap<&str, Vec<&StepOutcome>> = BTreeMap::new();
        for o in outcomes {
            by_step.entry(o.step.as_str()).or_default().push(o);
        }
        for list in by_step.values_mut() {
            list.sort_by_key(|o| instance_order(&o.instance));
        }
        let services: Vec<ServiceView> = plan
            .services
            .iter()
            .map(|sp| {
                let steps: Vec<StepView> = plan
                    .steps
                    .iter()
                    .filter(|s| s.service == sp.service)
                    .flat_map(|s| step_views(s, by_step.get(s.key.as_str()), &scrub, plan, ctx))
                    .collect();
                let (disposition, reason, kinds) = match &sp.disposition {
                    Disposition::Run { kinds } => {
                        ("run", None, kinds.iter().map(|k| k.to_string()).collect())
                    }
                    Disposition::Exempt { reason } => ("exempt", Some(scrub.scrub(reason)), vec![]),
                    Disposition::Skipped { reason } => {
                        ("skipped", Some(scrub.scrub(reason)), vec![])
                    }
                };
                let outcome = service_outcome(disposition, &steps);
                let found = steps.iter().map(|s| s.found).sum();
                let affected = steps.iter().filter_map(|s| s.affected).sum();
                ServiceView {
                    service: sp.service.clone(),
                    title: sp.title.clone().unwrap_or_else(|| sp.service.clone()),
                    processing: sp.processing.clone(),
                    playbook: sp.playbook.clone(),
                    disposition: disposition.to_owned(),
                    reason,
                    kinds,
                    connector: sp
                        .connector
                        .as_ref()
                        .map(|c| format!("{}/{} ({})", c.tenant, c.name, c.kind)),
                    notes: sp.notes.iter().map(|n| scrub.scrub(n)).collect(),
                    holds: sp.holds.clone(),
                    redacted_fields: sp.redact.len(),
                    outcome: outcome.to_owned(),
                    outcome_text: outcome_text(outcome, plan.request.kind).to_owned(),
                    steps,
                    found,
                    affected,
                }
            })
            .collect();
        let totals = totals(&services);
        RunView {
            format_version: REPORT_FORMAT_VERSION,
            run_id: run.id.clone(),
            mode: serde_plain(&run.mode),
            run_status: run.status.as_str().to_owned(),
            run_created_at: run.created_at,
            run_updated_at: run.updated_at,
            plan_created_at: plan.created_at,
            request: request_view(plan, today, ctx.extension(), &services),
            approval: ctx.approval(&plan.request.id),
            audit: ctx.audit_view(&run.id, outcomes, run.mode == RunMode::Apply),
            generated_at: ctx.generated_at,
            controller: ctx
                .config
                .and_then(|c| c.controller_for(&plan.request.tenant))
                .cloned(),
            subject_name: plan.request.name.clone(),
            services,
            totals,
            inputs: plan
                .inputs
                .iter()
                .map(|(path, sha256)| InputDigest {
                    path: path.clone(),
                    sha256: sha256.clone(),
                })
                .collect(),
            recipient: plan
                .request
                .subject
                .get("email")
                .and_then(|e| e.values().first().map(|v| (*v).to_owned())),
        }
    }
}

fn serde_plain<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Sort key so that `step#10` comes after `step#9`.
fn instance_order(instance: &str) -> (String, u64) {
    match instance.rsplit_once('#') {
        Some((base, n)) => (base.to_owned(), n.parse().unwrap_or(u64::MAX)),
        None => (instance.to_owned(), 0),
    }
}

fn request_view(
    plan: &Plan,
    today: NaiveDate,
    extension: Option<ExtensionView>,
    services: &[ServiceView],
) -> RequestView {
    let r = &plan.request;
    let deadline = r.deadline(false);
    let effective = extension.as_ref().map_or(deadline, |e| e.deadline);
    let days_left = (effective - today).num_days();
    let latest_due = services
        .iter()
        .flat_map(|s| &s.steps)
        .filter(|s| s.status == "waiting")
        .filter_map(|s| s.due_at.map(|d| d.date_naive()))
        .max();
    RequestView {
        id: r.id.clone(),
        kind: r.kind.to_string(),
        tenant: r.tenant.clone(),
        jurisdiction: r.jurisdiction.as_str().to_owned(),
        law: r.jurisdiction.as_str().to_uppercase(),
        received: r.received,
        deadline,
        extension,
        effective_deadline: effective,
        complete_by: latest_due.map_or(effective, |d| d.max(effective)),
        language: r.language.clone().unwrap_or_else(|| "en".to_owned()),
        as_of: today,
        days_left,
        overdue: days_left < 0,
        days_overdue: (-days_left).max(0),
        identities: r
            .subject
            .iter()
            .map(|(name, id)| IdentityCount {
                name: name.clone(),
                values: id.values().len(),
            })
            .collect(),
        corrected_fields: r
            .corrections
            .as_ref()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default(),
    }
}

fn step_views(
    step: &PlannedStep,
    outcomes: Option<&Vec<&StepOutcome>>,
    scrub: &Scrubber,
    plan: &Plan,
    ctx: &ReportContext<'_>,
) -> Vec<StepView> {
    match outcomes {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|o| step_view(step, Some(o), scrub, plan, ctx))
            .collect(),
        _ => vec![step_view(step, None, scrub, plan, ctx)],
    }
}

fn step_view(
    step: &PlannedStep,
    o: Option<&StepOutcome>,
    scrub: &Scrubber,
    plan: &Plan,
    ctx: &ReportContext<'_>,
) -> StepView {
    let status = o.map_or("pending", |o| o.status.as_str());
    let asked = match &step.action {
        PlannedAction::Manual(m) => Some((
            m.instructions.clone(),
            match ctx.config {
                Some(c) => c.manual_assignee(
                    &plan.request.tenant,
                    manual_connector(plan, step),
                    m.assignee.as_deref(),
                ),
                None => m.assignee.clone(),
            },
            m.evidence.clone(),
        )),
        PlannedAction::Email(e) => Some((
            format!(
                "Record the answer to the message sent to {} (due within {}).",
                e.to.join(", "),
                e.answer_within
            ),
            None,
            vec!["the processor's answer".to_owned()],
        )),
        _ => None,
    };
    let task = asked.map(|(instructions, assignee, evidence_wanted)| {
        let rec = o.and_then(|o| o.task.as_ref());
        TaskView {
            instructions,
            assignee,
            evidence_wanted,
            completed: rec.is_some(),
            by: rec.map(|t| t.by.clone()),
            at: rec.map(|t| t.at),
            result: rec.map(|t| t.result.clone()),
            note: rec.and_then(|t| scrub.scrub_opt(t.note.as_deref())),
            evidence: rec
                .map(|t| {
                    t.evidence
                        .iter()
                        .map(|e| EvidenceView {
                            name: scrub.scrub(&e.name),
                            sha256: e.sha256.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    });
    let deferred_reason = match &step.action {
        PlannedAction::Wait(w) if o.is_some_and(|o| o.status == StepStatus::Waiting) => Some(
            w.reason
                .clone()
                .unwrap_or_else(|| format!("wait {}", w.duration)),
        ),
        _ => None,
    };
    let duration_ms = o.and_then(|o| Some((o.finished_at? - o.started_at?).num_milliseconds()));
    // A manual task's proof is who did it and the evidence attached (shown with the task).
    let manual = step.action.waits_for_person();
    let verified = o
        .filter(|o| {
            step.mutates
                && !manual
                && matches!(o.status, StepStatus::Succeeded | StepStatus::Absent)
        })
        .map(|o| match &o.verification {
            Some(v) if v.passed => "passed",
            Some(_) => "failed",
            None => "unverified",
        })
        .or_else(|| {
            o.and_then(|o| o.verification.as_ref())
                .map(|v| if v.passed { "passed" } else { "failed" })
        })
        .map(str::to_owned);
    StepView {
        instance: o.map_or_else(|| step.key.clone(), |o| o.instance.clone()),
        id: step.id.clone(),
        kind: step.kind.to_string(),
        description: step.description.clone(),
        action: action_summary(&step.action),
        mutates: step.mutates,
        status: status.to_owned(),
        is_failure: matches!(status, "failed" | "blocked"),
        started_at: o.and_then(|o| o.started_at),
        finished_at: o.and_then(|o| o.finished_at),
        duration_ms,
        duration: duration_ms.map(human_duration),
        attempts: o.map_or(0, |o| o.attempts),
        http_status: o.and_then(|o| o.http_status),
        found: o.map_or(0, |o| o.found),
        affected: o.and_then(|o| o.affected),
        verification: o
            .and_then(|o| o.verification.as_ref())
            .map(|v| VerificationView {
                passed: v.passed,
                detail: scrub.scrub(&v.detail),
            }),
        verified,
        task,
        due_at: o.and_then(|o| o.due_at),
        deferred_reason,
        message: o.and_then(|o| scrub.scrub_opt(o.message.as_deref())),
        collection: o.and(step.collect.clone()),
    }
}

/// The connector a manual step is done through: its own, else its playbook's.
pub fn manual_connector<'a>(plan: &'a Plan, step: &'a PlannedStep) -> Option<&'a str> {
    step.connector.as_deref().or_else(|| {
        plan.services
            .iter()
            .find(|s| s.service == step.service)
            .and_then(|s| s.connector.as_ref())
            .map(|c| c.name.as_str())
    })
}

fn human_duration(ms: i64) -> String {
    let s = ms / 1000;
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {}s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A one-line description of an action, from the playbook's templates (no values).
pub fn action_summary(action: &PlannedAction) -> String {
    match action {
        PlannedAction::Http(h) => format!("http {} {}", h.method.as_str(), h.path),
        PlannedAction::Sql(s) => {
            if let Some(d) = &s.delete {
                format!("sql delete from {}", d.table)
            } else if let Some(u) = &s.update {
                format!("sql update {}", u.table)
            } else if let Some(sel) = &s.select {
                format!("sql select from {}", sel.table)
            } else if s.execute.is_some() {
                "sql execute".to_owned()
            } else {
                "sql query".to_owned()
            }
        }
        PlannedAction::Manual(_) => "manual task".to_owned(),
        PlannedAction::Wait(w) => format!("wait {}", w.duration),
        PlannedAction::Email(e) => format!("email to {}", e.to.join(", ")),
    }
}

fn service_outcome(disposition: &str, steps: &[StepView]) -> &'static str {
    match disposition {
        "exempt" => return "exempt",
        "skipped" => return "skipped",
        _ => {}
    }
    let has = |s: &str| steps.iter().any(|v| v.status == s);
    if steps.iter().any(|s| s.is_failure) {
        "failed"
    } else if has("waiting") {
        "waiting"
    } else if has("running") || has("pending") {
        "incomplete"
    } else if has("previewed") {
        "previewed"
    } else if steps
        .iter()
        .all(|s| matches!(s.status.as_str(), "absent" | "skipped"))
    {
        "nothing held"
    } else {
        "done"
    }
}

fn outcome_text(outcome: &str, kind: crate::model::DsrKind) -> &'static str {
    use crate::model::DsrKind;
    match (outcome, kind) {
        ("done", DsrKind::Delete) => "your data was erased",
        ("done", DsrKind::Access | DsrKind::Export) => "your data was collected for the export",
        ("done", DsrKind::Rectify) => "your data was corrected",
        ("done", DsrKind::Restrict) => "processing of your data was restricted",
        ("nothing held", _) => "we hold no data about you here",
        ("failed", _) => "not completed yet: a step failed and is being fixed",
        ("waiting", _) => "in progress",
        ("previewed", _) => "previewed only, nothing was changed",
        ("exempt", _) => "exempt",
        ("skipped", _) => "not applicable",
        _ => "in progress",
    }
}

fn totals(services: &[ServiceView]) -> Totals {
    let mut t = Totals {
        services: services.len(),
        ..Totals::default()
    };
    for s in services {
        match s.disposition.as_str() {
            "run" => t.services_run += 1,
            "exempt" => t.services_exempt += 1,
            _ => t.services_skipped += 1,
        }
        for step in &s.steps {
            t.steps += 1;
            *t.by_status.entry(step.status.clone()).or_default() += 1;
            t.failures += usize::from(step.is_failure);
            t.waiting += usize::from(step.status == "waiting");
            t.found += step.found;
            t.affected += step.affected.unwrap_or(0);
            match step.verified.as_deref() {
                Some("passed") => t.verified += 1,
                Some("failed") => t.verification_failed += 1,
                Some("unverified") => t.unverified += 1,
                _ => {}
            }
        }
    }
    t
}
