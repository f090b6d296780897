//! The console's pages and forms. Reading and acting go through the API's handlers with the
//! signed-in token's caller; the pages only arrange what they answer.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    csrf_field, days_left, detail_text, error_page, maybe_time, page, scroll_table, seg,
    state_badge, time, time_precise,
};
use super::{
    SESSION_COOKIE, SIGNIN_COOKIE, Session, SignedIn, St, api_error_page, cookie, random_token,
    same_secret, set_cookie,
};
use crate::cli::serve::error::ApiError;
use crate::cli::serve::reports::{self, ReportQuery};
use crate::cli::serve::requests::{self, ListQuery};
use crate::cli::serve::tasks::{self, TaskQuery};
use crate::cli::serve::views::RequestView;
use crate::model::ApiRole;
use crate::report::{Scrubber, mask_string};
use crate::store::verify_chain_to;
use crate::workflow::open_tasks;

/// Most runs looked through for tasks and timelines.
const RUNS_SCANNED: u32 = 100_000;
/// Most audit entries shown at once.
const AUDIT_SHOWN: usize = 500;

const KINDS: &[&str] = &["access", "export", "rectify", "restrict", "delete"];
const STATES: &[&str] = &[
    "received",
    "approved",
    "declined",
    "running",
    "waiting",
    "completed",
    "failed",
];
const JURISDICTIONS: &[&str] = &["gdpr", "ccpa"];

/// Roles that may see the subject's identities and task instructions with their values: those
/// who carry out the manual steps and hand out the export package.
const PERSONAL_DATA_ROLES: &[ApiRole] = &[ApiRole::Operator];
/// Roles that may see a request's plan.
const PREVIEW_ROLES: &[ApiRole] = &[ApiRole::Operator, ApiRole::Approver];
/// Roles that may read tasks and the audit log.
const OVERSIGHT_ROLES: &[ApiRole] = &[ApiRole::Operator, ApiRole::Approver, ApiRole::Auditor];

fn may(session: &Session, roles: &[ApiRole]) -> bool {
    session.caller.require(roles).is_ok()
}

/// What a finished action says on the page it leads to (only these texts are shown).
fn flash(msg: Option<&str>) -> Option<&'static str> {
    Some(match msg? {
        "approved" => "Approved. A worker starts the run at its next tick.",
        "declined" => "Declined.",
        "extended" => "The deadline was extended.",
        "task-done" => "The task was recorded done; a worker continues the run at its next tick.",
        "task-failed" => "The task was recorded failed.",
        _ => return None,
    })
}

fn flash_markup(msg: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = flash(msg) {
            p.notice.success role="status" { (text) }
        }
    }
}

fn none_if_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

// ----- sign-in -----

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    token: String,
}

fn login_page(csrf: &str, status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        @if let Some(e) = error {
            p.notice.error role="alert" { (e) }
        }
        p { "Sign in with your API token (from " code { "api.tokens" } " in dsrctl.yaml). The console acts in the token's name, with its tenants and roles." }
        form.stack method="post" action="/console/login" {
            input type="hidden" name="csrf" value=(csrf);
            label for="token" { "API token" }
            input #token type="password" name="token" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
    };
    let mut response = (status, page(None, "Sign in", "", body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SIGNIN_COOKIE, csrf, 3600)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The sign-in form; its CSRF token is paired with a cookie until there is a session.
pub async fn login_form(State(st): St, headers: HeaderMap) -> Response {
    if matches!(st.session(&headers).await, Ok(Some(_))) {
        return Redirect::to("/console").into_response();
    }
    let csrf = cookie(&headers, SIGNIN_COOKIE)
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(random_token);
    login_page(&csrf, StatusCode::OK, None)
}

/// Signs in: the token must be one of the API's.
pub async fn login(
    State(st): St,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    let paired = cookie(&headers, SIGNIN_COOKIE);
    let ok = matches!((&form.csrf, &paired), (Some(f), Some(c)) if same_secret(f, c));
    if !ok {
        return error_page(
            None,
            StatusCode::FORBIDDEN,
            "Form refused",
            "The sign-in form did not carry its CSRF token, so it was not acted on. Open the sign-in page again.",
        );
    }
    let csrf = paired.unwrap_or_default();
    match st.caller_of(&form.token).await {
        Ok(caller) => {
            let id = match st.open_session(&caller).await {
                Ok(id) => id,
                Err(e) => {
                    return error_page(None, e.status, "Could not sign in", &e.message);
                }
            };
            let mut response = Redirect::to("/console").into_response();
            for c in [
                set_cookie(SESSION_COOKIE, &id, super::IDLE.as_secs()),
                set_cookie(SIGNIN_COOKIE, "", 0),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    response.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            response
        }
        Err(_) => login_page(
            &csrf,
            StatusCode::UNAUTHORIZED,
            Some("That is not a valid API token."),
        ),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// Signs out: the session ends on the server too.
pub async fn logout(
    State(st): St,
    SignedIn(s): SignedIn,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Some(r) = s.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    if let Err(e) = st.close_session(&headers).await {
        return error_page(Some(&s), e.status, "Could not sign out", &e.message);
    }
    let mut response = Redirect::to("/console/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", 0)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

// ----- the queue -----

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    tenant: Option<String>,
    kind: Option<String>,
    state: Option<String>,
    jurisdiction: Option<String>,
    msg: Option<String>,
}

fn select(id: &str, label: &str, options: &[String], chosen: Option<&str>) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            select #(id) name=(id) {
                option value="" { "any" }
                @for o in options {
                    option value=(o) selected[chosen == Some(o.as_str())] { (o) }
                }
            }
        }
    }
}

/// The queue: the token's requests by deadline, overdue first, with filters and counts.
pub async fn queue(State(st): St, SignedIn(s): SignedIn, Query(q): Query<QueueQuery>) -> Response {
    let all = match requests::list(
        State(st.api.clone()),
        s.caller.clone(),
        Query(ListQuery {
            state: None,
            tenant: None,
        }),
    )
    .await
    {
        Ok(Json(list)) => list.requests,
        Err(e) => return api_error_page(&s, e),
    };
    let tenant = none_if_empty(q.tenant);
    let kind = none_if_empty(q.kind);
    let state = none_if_empty(q.state);
    let jurisdiction = none_if_empty(q.jurisdiction);
    let open: Vec<&RequestView> = all.iter().filter(|r| r.days_left.is_some()).collect();
    let overdue = open.iter().filter(|r| r.overdue).count();
    let due_week = open
        .iter()
        .filter(|r| r.days_left.is_some_and(|d| (0..=7).contains(&d)))
        .count();
    let to_approve = all.iter().filter(|r| r.state == "received").count();
    let waiting = all.iter().filter(|r| r.state == "waiting").count();
    let shown: Vec<&RequestView> = all
        .iter()
        .filter(|r| tenant.as_ref().is_none_or(|t| &r.tenant == t))
        .filter(|r| kind.as_ref().is_none_or(|k| &r.kind == k))
        .filter(|r| state.as_ref().is_none_or(|v| &r.state == v))
        .filter(|r| jurisdiction.as_ref().is_none_or(|j| &r.jurisdiction == j))
        .collect();
    let tenants: Vec<String> = st
        .api
        .ws
        .project
        .config
        .tenants
        .keys()
        .filter(|t| s.caller.sees(t))
        .cloned()
        .collect();
    let owned = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let body = html! {
        (flash_markup(q.msg.as_deref()))
        ul.counts aria-label="Counts" {
            li { span.count { (open.len()) } " open" }
            li.count-overdue { span.count { (overdue) } " overdue" }
            li { span.count { (due_week) } " due within 7 days" }
            li { span.count { (to_approve) } " awaiting approval" }
            li { span.count { (waiting) } " waiting for a task" }
        }
        form.filters method="get" action="/console" aria-label="Filter requests" {
            (select("tenant", "Tenant", &tenants, tenant.as_deref()))
            (select("kind", "Kind", &owned(KINDS), kind.as_deref()))
            (select("state", "State", &owned(STATES), state.as_deref()))
            (select("jurisdiction", "Jurisdiction", &owned(JURISDICTIONS), jurisdiction.as_deref()))
            div.field.actions {
                button type="submit" { "Filter" }
                " "
                a href="/console" { "Clear" }
            }
        }
        p { (shown.len()) " of " (all.len()) " requests shown, nearest deadline first." }
        @if shown.is_empty() {
            p { "No request matches." }
        } @else {
            (scroll_table("Requests", html! {
                table.queue.cards {
                    thead { tr {
                        th scope="col" { "Request" }
                        th scope="col" { "Kind" }
                        th scope="col" { "Tenant" }
                        th scope="col" { "Jurisdiction" }
                        th scope="col" { "State" }
                        th scope="col" { "Deadline" }
                        th scope="col" { "Days left" }
                    } }
                    tbody {
                        @for r in &shown {
                            tr.overdue[r.overdue] {
                                td.id data-label="Request" { a href={ "/console/requests/" (seg(&r.id)) } { (r.id) } }
                                td data-label="Kind" { (r.kind) }
                                td data-label="Tenant" { (r.tenant) }
                                td data-label="Jurisdiction" { (r.jurisdiction) }
                                td data-label="State" { (state_badge(&r.state)) }
                                td data-label="Deadline" { time datetime=(r.deadline) { (r.deadline) } @if r.extended { " (extended)" } }
                                td data-label="Days left" { (days_left(r.days_left)) }
                            }
                        }
                    }
                }
            }))
        }
    };
    page(Some(&s), "Queue", "/console", body).into_response()
}

// ----- a request -----

#[derive(Deserialize, Default)]
pub struct MsgQuery {
    msg: Option<String>,
}

/// One entry of a request's timeline.
struct Event {
    at: chrono::DateTime<chrono::Utc>,
    what: String,
    by: Option<String>,
    detail: String,
}

/// A request: its identities, decisions, runs with their reports, and its timeline.
pub async fn request(
    State(st): St,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
    Query(q): Query<MsgQuery>,
) -> Response {
    let view = match requests::read(State(st.api.clone()), s.caller.clone(), Path(id.clone())).await
    {
        Ok(Json(v)) => v,
        Err(e) => return api_error_page(&s, e),
    };
    match request_body(&st, &s, view, q.msg.as_deref()).await {
        Ok(r) => r,
        Err(e) => api_error_page(&s, e),
    }
}

async fn request_body(
    st: &super::ConsoleState,
    s: &Session,
    view: RequestView,
    msg: Option<&str>,
) -> Result<Response, ApiError> {
    let ws = &st.api.ws;
    let record = ws.store.request(&view.id).await?;
    let scrubber = Scrubber::for_request(&record.request);
    let personal = may(s, PERSONAL_DATA_ROLES);
    let runs: Vec<_> = ws
        .store
        .runs(RUNS_SCANNED)
        .await?
        .into_iter()
        .filter(|r| r.request_id == view.id)
        .collect();
    let mut events = Vec::new();
    events.push(Event {
        at: record.created_at,
        what: "recorded".to_owned(),
        by: None,
        detail: format!("received {}", record.received),
    });
    let run_ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    for e in ws.store.audit_entries().await? {
        // A step's outcome is on the timeline from the journal already.
        if e.kind != crate::store::STEP_OUTCOME
            && (e.subject == view.id || run_ids.contains(&e.subject.as_str()))
        {
            let detail = detail_text(&e.detail, &scrubber);
            events.push(Event {
                at: e.at,
                what: e.kind.clone(),
                by: e.actor.clone(),
                detail,
            });
        }
    }
    for run in &runs {
        for o in ws.store.outcomes(&run.id).await? {
            if let Some(at) = o.started_at {
                events.push(Event {
                    at,
                    what: format!("step {} started", o.instance),
                    by: None,
                    detail: String::new(),
                });
            }
            if let Some(at) = o.finished_at {
                events.push(Event {
                    at,
                    what: format!("step {} {}", o.instance, o.status.as_str()),
                    by: None,
                    detail: o
                        .message
                        .as_deref()
                        .map(|m| scrubber.scrub(m))
                        .unwrap_or_default(),
                });
            }
        }
    }
    events.sort_by_key(|e| e.at);
    let open = view.days_left.is_some();
    let may_decide = may(s, &[ApiRole::Approver]) && view.state == "received";
    let may_extend = may(s, &[ApiRole::Approver, ApiRole::Operator]) && open && !view.extended;
    let may_report = may(s, &[ApiRole::Operator, ApiRole::Approver, ApiRole::Auditor]);
    let may_preview_runs = may(s, PREVIEW_ROLES);
    let may_preview = may_preview_runs && open;
    let base = format!("/console/requests/{}", seg(&view.id));
    let body = html! {
        (flash_markup(msg))
        p { a href="/console" { "← Back to the queue" } }
        dl.facts {
            dt { "State" } dd { (state_badge(&view.state)) }
            dt { "Kind" } dd { (view.kind) }
            dt { "Tenant" } dd { (view.tenant) }
            dt { "Jurisdiction" } dd { (view.jurisdiction) }
            dt { "Received" } dd { (view.received) }
            dt { "Deadline" } dd {
                (view.deadline) " " (days_left(view.days_left))
                @if view.extended { " (extended" @if let Some(r) = &view.extension_reason { ": " (r) } ")" }
            }
            @if let Some(r) = &view.reason { dt { "Reason" } dd { (r) } }
        }
        h2 { "Identities" }
        @if !personal {
            p.hint { "Masked: your token's roles do not include seeing the subject's data." }
        }
        dl.facts {
            @for (key, identity) in &record.request.subject {
                dt { (key) }
                dd {
                    @for v in identity.values() {
                        @if personal { span.value { (v) } } @else { span.value.masked { (mask_string(v)) } }
                        " "
                    }
                }
            }
        }
        @if may_decide || may_extend {
            h2 { "Decide" }
            div.decisions {
                @if may_decide {
                    form.stack method="post" action={ (base) "/approve" } {
                        (csrf_field(s))
                        label for="approve-reason" { "Reason for approving (optional)" }
                        textarea #approve-reason name="reason" rows="2" {}
                        button type="submit" { "Approve" }
                    }
                    form.stack method="post" action={ (base) "/decline" } {
                        (csrf_field(s))
                        label for="decline-reason" { "Reason for declining (required)" }
                        textarea #decline-reason name="reason" rows="2" required {}
                        button.danger type="submit" { "Decline" }
                    }
                }
                @if may_extend {
                    form.stack method="post" action={ (base) "/extend" } {
                        (csrf_field(s))
                        label for="extend-reason" { "Reason for extending the deadline (required)" }
                        textarea #extend-reason name="reason" rows="2" required {}
                        button type="submit" { "Extend deadline" }
                    }
                }
            }
        }
        @if may_preview {
            h2 { "Plan" }
            div.decisions {
                form.stack method="post" action={ (base) "/dry-run" } {
                    (csrf_field(s))
                    p.hint { "A dry run: every service is read, nothing is changed; shows what each step would change, as " code { "dsrctl plan" } " does." }
                    button type="submit" { "Preview the changes" }
                }
                form.stack method="post" action={ (base) "/preview" } {
                    (csrf_field(s))
                    p.hint { "The steps today's playbooks compile for this request; nothing is contacted." }
                    button type="submit" { "Show the plan" }
                }
            }
        }
        h2 { "Runs" }
        @if runs.is_empty() {
            p { "No run yet." }
        } @else {
            ul.runs {
                @for run in &runs {
                    li {
                        code { (run.id) } " — " (state_badge(run.status.as_str()))
                        " (" (match run.mode { crate::journal::RunMode::DryRun => "dry run", crate::journal::RunMode::Apply => "apply" }) ", started " (time(run.created_at)) ")"
                        @if may_report {
                            ul.links {
                                @if run.mode == crate::journal::RunMode::DryRun && may_preview_runs {
                                    li { a href={ "/console/runs/" (seg(&run.id)) "/changes" } { "What it would change" } }
                                }
                                li { a href={ "/console/runs/" (seg(&run.id)) "/report" } { "Evidence report" } }
                                li { a href={ "/console/runs/" (seg(&run.id)) "/report?format=json&download=1" } download { "Download the signed evidence report (JSON)" } }
                                @if personal {
                                    li { a href={ "/console/runs/" (seg(&run.id)) "/letter" } { "Letter to the subject" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Timeline" }
        (scroll_table("Timeline", html! {
            table.timeline.cards {
                thead { tr {
                    th scope="col" { "When" }
                    th scope="col" { "What" }
                    th scope="col" { "By" }
                    th scope="col" { "Detail" }
                } }
                tbody {
                    @for e in &events {
                        tr {
                            td.when data-label="When" { (time_precise(e.at)) }
                            td data-label="What" { (e.what) }
                            td data-label="By" { (e.by.as_deref().unwrap_or("—")) }
                            td.detail data-label="Detail" { (e.detail) }
                        }
                    }
                }
            }
        }))
    };
    Ok(page(Some(s), &format!("Request {}", view.id), "/console", body).into_response())
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// What a decision form does, through the API's handler of the same name.
#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Decline,
    Extend,
}

async fn decide(st: St, s: Session, id: String, form: ReasonForm, decision: Decision) -> Response {
    if let Some(r) = s.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    let reason = none_if_empty(form.reason);
    let body = Bytes::from(serde_json::json!({ "reason": reason }).to_string());
    let State(st) = st;
    let api = State(st.api.clone());
    let caller = s.caller.clone();
    let path = Path(id.clone());
    let (result, msg) = match decision {
        Decision::Approve => (requests::approve(api, caller, path, body).await, "approved"),
        Decision::Decline => (requests::decline(api, caller, path, body).await, "declined"),
        Decision::Extend => (requests::extend(api, caller, path, body).await, "extended"),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/console/requests/{}?msg={msg}", seg(&id))).into_response(),
        Err(e) => api_error_page(&s, e),
    }
}

/// Approves, with an optional reason (role `approver`).
pub async fn approve(
    st: St,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> Response {
    decide(st, s, id, form, Decision::Approve).await
}

/// Declines, with the reason (role `approver`).
pub async fn decline(
    st: St,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> Response {
    decide(st, s, id, form, Decision::Decline).await
}

/// Extends the deadline once, with the reason (role `approver` or `operator`).
pub async fn extend(
    st: St,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> Response {
    decide(st, s, id, form, Decision::Extend).await
}

/// Request `id` compiled from today's playbooks for a role that may preview it, with the
/// workflow that compiled it.
async fn compiled(
    st: &super::ConsoleState,
    s: &Session,
    id: &str,
) -> Result<(crate::workflow::Workflow, crate::journal::Plan), ApiError> {
    s.caller.require(PREVIEW_ROLES)?;
    let record = st.api.visible_request(&s.caller, id).await?;
    let wf = st.api.workflow(&s.caller);
    let plan = wf.compile(&record.request)?;
    Ok((wf, plan))
}

/// The request's plan as `dsrctl plan --offline` shows it: compiled from today's playbooks,
/// nothing contacted and nothing recorded.
pub async fn preview(
    State(st): St,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Some(r) = s.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    let result = async {
        let (_, plan) = compiled(&st, &s, &id).await?;
        let text = crate::cli::plan_offline::render(
            plan,
            crate::cli::args::PlanFormat::Text,
            may(&s, PERSONAL_DATA_ROLES),
        )?;
        Ok::<_, ApiError>(text)
    }
    .await;
    match result {
        Ok(text) => {
            let body = html! {
                p { a href={ "/console/requests/" (seg(&id)) } { "← Back to the request" } }
                p.hint { "The steps compiled from today's playbooks, as " code { "dsrctl plan --offline" } " shows them; what each would change is previewed by " code { "dsrctl plan" } "." }
                (scroll_table("Plan", html! { pre.plan { (text) } }))
            };
            page(Some(&s), &format!("Plan of {id}"), "/console", body).into_response()
        }
        Err(e) => api_error_page(&s, e),
    }
}

/// Previews the request: a dry run through the workflow (every service read, nothing
/// changed, journaled as a dry run of its own), then its changes' page.
pub async fn dry_run(
    State(st): St,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Some(r) = s.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    let result = async {
        let (wf, plan) = compiled(&st, &s, &id).await?;
        Ok::<_, ApiError>(wf.dry_run(plan).await?.run_id)
    }
    .await;
    match result {
        Ok(run) => Redirect::to(&format!("/console/runs/{}/changes", seg(&run))).into_response(),
        Err(e) => api_error_page(&s, e),
    }
}

/// What a dry run would change, as `dsrctl plan` shows it: by service, each change with its
/// diff, and first of all the steps that could not be previewed (an incomplete preview is
/// never "no changes"). Values are masked unless the role may see the subject's data.
pub async fn changes(State(st): St, SignedIn(s): SignedIn, Path(run): Path<String>) -> Response {
    use crate::journal::RunMode;
    use crate::report::plan_view::{
        Failure, PlanViewOptions, change_views, failure_views, summary_line, symbol,
    };
    let result = async {
        s.caller.require(PREVIEW_ROLES)?;
        let run = st.api.visible_run(&s.caller, &run).await?;
        if run.mode != RunMode::DryRun {
            return Err(ApiError::not_found("such dry run"));
        }
        let outcomes = st.api.ws.store.outcomes(&run.id).await?;
        Ok::<_, ApiError>((run, outcomes))
    }
    .await;
    let (run, outcomes) = match result {
        Ok(r) => r,
        Err(e) => return api_error_page(&s, e),
    };
    let plan = &run.plan;
    // Steps not finished: the dry run was interrupted, so the preview is incomplete too.
    let unfinished = plan
        .steps
        .iter()
        .filter(|step| {
            !outcomes
                .iter()
                .any(|o| o.step == step.key && o.status.is_final())
        })
        .count();
    let (changes, failed) = crate::workflow::previewed(outcomes);
    let failures: Vec<Failure> = failed.iter().map(Failure::of).collect();
    let opts = PlanViewOptions {
        show_personal_data: may(&s, PERSONAL_DATA_ROLES),
        color: false,
    };
    let views = change_views(plan, &changes, opts);
    let failures = failure_views(plan, &failures, opts);
    // The services in the views' order (plan order).
    let mut services: Vec<&str> = Vec::new();
    for v in &views {
        if !services.contains(&v.service.as_str()) {
            services.push(&v.service);
        }
    }
    let request = &plan.request;
    let body = html! {
        p { a href={ "/console/requests/" (seg(&request.id)) } { "← Back to the request" } }
        p.hint {
            "Dry run " code { (run.id) } " of request " (request.id) " (" (request.kind) ", tenant " (request.tenant) "), started " (time(run.created_at))
            ". Every service was read; nothing was changed."
        }
        @if !failures.is_empty() {
            div.incomplete role="alert" {
                p { strong { "Incomplete: " (failures.len()) " step(s) could not be previewed, so what they would change is unknown." } }
                ul {
                    @for f in &failures {
                        li { code { (f.step) } " (" (f.status) "): " (f.message) }
                    }
                }
            }
        } @else if unfinished > 0 {
            div.incomplete role="alert" {
                p { strong { "Incomplete: " (unfinished) " step(s) have no outcome yet (the dry run did not finish)." } }
            }
        } @else if views.is_empty() {
            p { strong { "No changes: nothing would be changed." } }
        }
        @for service in &services {
            section.service {
                h2 { (service) }
                @for v in views.iter().filter(|v| v.service == *service) {
                    @let action = v.action();
                    div.change {
                        p.change-head {
                            span class={ "action action-" (action.as_str()) } { (symbol(action)) " " (action.as_str()) }
                            " " code.target { (v.target) }
                            " (" (v.instance) ")"
                            @if let Some(n) = v.count { ", " (n) " affected" }
                        }
                        @if let Some(reason) = &v.reason {
                            p.reason {
                                strong { @if action == crate::journal::ChangeAction::Manual { "Instructions: " } @else { "Reason: " } }
                                (reason)
                            }
                        }
                        @let lines = v.body_lines();
                        @if !lines.is_empty() {
                            pre.diff {
                                @for (mark, line) in &lines {
                                    @let class = match mark { '-' => "del", '+' => "add", _ => "ctx" };
                                    span class=(class) { (mark) " " (line) }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.summary { strong { (summary_line(&changes, &failures)) } }
    };
    page(
        Some(&s),
        &format!("Changes of dry run {}", run.id),
        "/console",
        body,
    )
    .into_response()
}

// ----- reports -----

#[derive(Deserialize, Default)]
pub struct ReportView {
    format: Option<String>,
    download: Option<String>,
}

/// A report answer: shown or downloaded; the report's own inline styles allowed.
fn report_response(mut response: Response, name: &str, download: bool) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ),
    );
    if download && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// The evidence report of a run, through the API's report handler (HTML unless asked).
pub async fn report(
    State(st): St,
    SignedIn(s): SignedIn,
    Path(run): Path<String>,
    Query(q): Query<ReportView>,
) -> Response {
    let format = q.format.unwrap_or_else(|| "html".to_owned());
    let ext = match format.as_str() {
        "md" => "md",
        "json" => "json",
        _ => "html",
    };
    let name = format!(
        "evidence-{}.{ext}",
        crate::deliver::archive::safe_file_name(&run)
    );
    match reports::report(
        State(st.api.clone()),
        s.caller.clone(),
        Path(run),
        Query(ReportQuery {
            format: Some(format),
        }),
    )
    .await
    {
        Ok(r) => report_response(r, &name, q.download.is_some()),
        Err(e) => api_error_page(&s, e),
    }
}

/// The letter to the subject (role `operator`: it holds the subject's data).
pub async fn letter(State(st): St, SignedIn(s): SignedIn, Path(run): Path<String>) -> Response {
    let result = async {
        s.caller.require(PERSONAL_DATA_ROLES)?;
        let run = st.api.visible_run(&s.caller, &run).await?;
        let outcomes = st.api.ws.store.outcomes(&run.id).await?;
        let text = crate::cli::cmd_report::render_report(
            &st.api.ws,
            &run,
            &outcomes,
            crate::report::Format::Html,
            "letter",
            chrono::Utc::now(),
        )
        .await?;
        Ok::<_, ApiError>(text)
    }
    .await;
    match result {
        Ok(text) => report_response(
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response(),
            "letter.html",
            false,
        ),
        Err(e) => api_error_page(&s, e),
    }
}

// ----- tasks -----

#[derive(Deserialize, Default)]
pub struct TasksQuery {
    assignee: Option<String>,
    msg: Option<String>,
}

/// The open manual tasks of the token's tenants, earliest due first; operators record them.
pub async fn tasks(State(st): St, SignedIn(s): SignedIn, Query(q): Query<TasksQuery>) -> Response {
    if let Err(e) = s.caller.require(OVERSIGHT_ROLES) {
        return api_error_page(&s, e);
    }
    let all = match open_tasks(st.api.ws.store.as_ref(), RUNS_SCANNED).await {
        Ok(t) => t,
        Err(e) => return api_error_page(&s, e.into()),
    };
    let project = &st.api.ws.project;
    let visible: Vec<_> = all
        .into_iter()
        .filter(|t| s.caller.sees(&t.run.plan.request.tenant))
        .collect();
    let mut assignees: Vec<String> = visible.iter().filter_map(|t| t.assignee(project)).collect();
    assignees.sort();
    assignees.dedup();
    let assignee = none_if_empty(q.assignee);
    let shown: Vec<_> = visible
        .iter()
        .filter(|t| {
            assignee
                .as_ref()
                .is_none_or(|a| t.assignee(project).as_ref() == Some(a))
        })
        .collect();
    let operator = may(&s, &[ApiRole::Operator]);
    let personal = may(&s, PERSONAL_DATA_ROLES);
    let body = html! {
        (flash_markup(q.msg.as_deref()))
        @if !operator {
            p.hint { "Read only: recording tasks takes the operator role." }
        }
        @if !assignees.is_empty() {
            form.filters method="get" action="/console/tasks" aria-label="Filter tasks" {
                (select("assignee", "Assigned to", &assignees, assignee.as_deref()))
                div.field.actions { button type="submit" { "Filter" } }
            }
        }
        @if shown.is_empty() {
            p { "No task is waiting." }
        }
        @for (n, t) in shown.iter().enumerate() {
            @let scrubber = Scrubber::for_request(&t.run.plan.request);
            @let instructions = t.outcome.message.as_deref().unwrap_or_default();
            @let action = format!("/console/runs/{}/tasks/{}", seg(&t.run.id), seg(&t.outcome.instance));
            section.task aria-labelledby={ "task-" (n) } {
                h2 #{ "task-" (n) } { (t.outcome.instance) }
                dl.facts {
                    dt { "Request" } dd { a href={ "/console/requests/" (seg(&t.run.request_id)) } { (t.run.request_id) } }
                    dt { "Kind" } dd { (t.kind()) }
                    dt { "Assigned to" } dd { (t.assignee(project).unwrap_or_else(|| "—".to_owned())) }
                    dt { "Waiting since" } dd { (maybe_time(t.outcome.started_at)) }
                    dt { "Due" } dd { (maybe_time(t.outcome.due_at)) }
                    @if !t.evidence_wanted().is_empty() {
                        dt { "Evidence wanted" } dd { (t.evidence_wanted().join("; ")) }
                    }
                }
                h3 { "Instructions" }
                p.instructions {
                    @if personal { (instructions) } @else { (scrubber.scrub(instructions)) }
                }
                @if operator {
                    div.decisions {
                        form.stack method="post" action={ (action) "/done" } enctype="multipart/form-data" {
                            (csrf_field(&s))
                            label for={ "note-" (n) } { "Note on what was done" }
                            textarea #{ "note-" (n) } name="note" rows="2" {}
                            label for={ "evidence-" (n) } { "Evidence file" }
                            input #{ "evidence-" (n) } type="file" name="evidence";
                            button type="submit" { "Mark done" }
                        }
                        form.stack method="post" action={ (action) "/fail" } {
                            (csrf_field(&s))
                            label for={ "fail-" (n) } { "Why it could not be done (required)" }
                            textarea #{ "fail-" (n) } name="reason" rows="2" required {}
                            button.danger type="submit" { "Mark failed" }
                        }
                    }
                }
            }
        }
    };
    page(Some(&s), "My tasks", "/console/tasks", body).into_response()
}

/// Records a task done, with a note and an evidence file, through the API's handler.
pub async fn task_done(
    State(st): St,
    SignedIn(s): SignedIn,
    Path((run, step)): Path<(String, String)>,
    mut multipart: Multipart,
) -> Response {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file: Option<(String, Bytes)> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                if name == "evidence" {
                    let filename = field.file_name().unwrap_or_default().to_owned();
                    match field.bytes().await {
                        Ok(b) => file = Some((filename, b)),
                        Err(e) => return upload_error(&s, e),
                    }
                } else {
                    match field.text().await {
                        Ok(t) => {
                            fields.insert(name, t);
                        }
                        Err(e) => return upload_error(&s, e),
                    }
                }
            }
            Ok(None) => break,
            Err(e) => return upload_error(&s, e),
        }
    }
    if let Some(r) = s.csrf_refusal(fields.get("csrf").map(String::as_str)) {
        return r;
    }
    let (filename, bytes) = file.unwrap_or_default();
    let result = tasks::done(
        State(st.api.clone()),
        s.caller.clone(),
        Path((run, step)),
        Query(TaskQuery {
            note: none_if_empty(fields.remove("note")),
            filename: none_if_empty(Some(filename)),
        }),
        HeaderMap::new(),
        Body::from(bytes),
    )
    .await;
    settled(&st, &s, result, "task-done").await
}

fn upload_error(s: &Session, e: axum::extract::multipart::MultipartError) -> Response {
    let status = e.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "The evidence file is larger than the server accepts (`api.max_upload_bytes` in dsrctl.yaml).".to_owned()
    } else {
        format!("The form could not be read: {}", e.body_text())
    };
    error_page(Some(s), status, "Upload refused", &message)
}

/// Records a task failed, with the reason.
pub async fn task_fail(
    State(st): St,
    SignedIn(s): SignedIn,
    Path((run, step)): Path<(String, String)>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> Response {
    if let Some(r) = s.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    let Some(reason) = none_if_empty(form.reason) else {
        return api_error_page(&s, ApiError::invalid("Give the reason the task failed."));
    };
    let result = tasks::fail(
        State(st.api.clone()),
        s.caller.clone(),
        Path((run, step)),
        Query(TaskQuery {
            note: Some(reason),
            filename: None,
        }),
        HeaderMap::new(),
        Body::empty(),
    )
    .await;
    settled(&st, &s, result, "task-failed").await
}

async fn settled(
    st: &super::ConsoleState,
    s: &Session,
    result: Result<Json<crate::cli::serve::views::TaskRecorded>, ApiError>,
    msg: &str,
) -> Response {
    match result {
        Ok(Json(recorded)) => match st.api.ws.store.run(&recorded.run).await {
            Ok(run) => Redirect::to(&format!(
                "/console/requests/{}?msg={msg}",
                seg(&run.request_id)
            ))
            .into_response(),
            Err(_) => Redirect::to(&format!("/console/tasks?msg={msg}")).into_response(),
        },
        Err(e) => api_error_page(s, e),
    }
}

// ----- the audit log -----

/// The audit log entries of the token's tenants, newest first, with the whole chain's
/// verification.
pub async fn audit(State(st): St, SignedIn(s): SignedIn) -> Response {
    if let Err(e) = s.caller.require(OVERSIGHT_ROLES) {
        return api_error_page(&s, e);
    }
    match audit_body(&st, &s).await {
        Ok(r) => r,
        Err(e) => api_error_page(&s, e),
    }
}

async fn audit_body(st: &super::ConsoleState, s: &Session) -> Result<Response, ApiError> {
    let ws = &st.api.ws;
    let entries = ws.store.audit_entries().await?;
    let (seq, hash) = ws.store.audit_head().await?;
    let key = crate::workflow::audit_key(&ws.project, &ws.state_dir)?;
    let verdict = verify_chain_to(&entries, (seq, &hash), Some(&key));
    let requests: BTreeMap<String, crate::journal::RequestRecord> = ws
        .store
        .requests()
        .await?
        .into_iter()
        .map(|r| (r.request.id.clone(), r))
        .collect();
    let run_request: HashMap<String, String> = ws
        .store
        .runs(RUNS_SCANNED)
        .await?
        .into_iter()
        .map(|r| (r.id, r.request_id))
        .collect();
    let mut visible = Vec::new();
    for e in entries.iter().rev() {
        let request_id = if requests.contains_key(&e.subject) {
            Some(e.subject.clone())
        } else {
            run_request.get(&e.subject).cloned()
        };
        let Some(record) = request_id.as_ref().and_then(|r| requests.get(r)) else {
            continue;
        };
        if !s.caller.sees(&record.request.tenant) {
            continue;
        }
        visible.push((e, record));
        if visible.len() >= AUDIT_SHOWN {
            break;
        }
    }
    let body = html! {
        @match &verdict {
            Ok(()) => p.notice.success role="status" {
                strong { "Verified: " } "the chain of " (entries.len()) " entries is intact up to the head (entry " (seq) ")."
            },
            Err(broken) => p.notice.error role="alert" {
                strong { "BROKEN: " } "the chain breaks at index " (broken.index) ": " (broken.reason) ". Run " code { "dsrctl audit verify" } " for details."
            },
        }
        p { "Entries of your tenants, newest first (at most " (AUDIT_SHOWN) ")." }
        (scroll_table("Audit log", html! {
            table.audit.cards {
                thead { tr {
                    th scope="col" { "#" }
                    th scope="col" { "When" }
                    th scope="col" { "What" }
                    th scope="col" { "Request" }
                    th scope="col" { "By" }
                    th scope="col" { "Detail" }
                } }
                tbody {
                    @for (e, record) in &visible {
                        @let scrubber = Scrubber::for_request(&record.request);
                        tr {
                            td data-label="#" { (e.seq) }
                            td.when data-label="When" { (time_precise(e.at)) }
                            td data-label="What" { (e.kind) }
                            td.id data-label="Request" { a href={ "/console/requests/" (seg(&record.request.id)) } { (record.request.id) } }
                            td data-label="By" { (e.actor.as_deref().unwrap_or("—")) }
                            td.detail data-label="Detail" { (detail_text(&e.detail, &scrubber)) }
                        }
                    }
                }
            }
        }))
    };
    Ok(page(Some(s), "Audit log", "/console/audit", body).into_response())
}
