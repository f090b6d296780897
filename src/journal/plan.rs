//! The plan: the compiled, serialisable DAG of step instances for one request. A run
//! executes it and keeps it, frozen, in its record.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{
    DsrKind, EmailAction, HttpAction, ManualAction, Poll, Preview, Processing, Request, Select,
    SqlAction, Verify, WaitAction,
};

/// Version of the plan's JSON form; bumped on any incompatible change.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// The compiled, serialisable DAG of step instances for one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Version of this format.
    pub format_version: u32,
    /// When the plan was compiled.
    pub created_at: DateTime<Utc>,
    /// The request the plan fulfils.
    pub request: Request,
    /// SHA-256 of every input file (config, playbooks), by path relative to the project.
    pub inputs: BTreeMap<String, String>,
    /// Every service of the project and what the plan does with it.
    pub services: Vec<ServicePlan>,
    /// Step instances in a topological order (every step after the steps it needs).
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// The step with this key.
    pub fn step(&self, key: &str) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.key == key)
    }
}

/// What the plan does with one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePlan {
    /// Service name.
    pub service: String,
    /// Playbook path relative to the project.
    pub playbook: String,
    /// The disposition for this request.
    pub disposition: Disposition,
    /// The connector bound for the request's tenant, if the service runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<BoundConnector>,
    /// Notes from the playbook, carried into reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// JSON pointers redacted from collected records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<String>,
    /// Data categories held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<String>,
    /// The service's name for data subjects (the playbook's `title`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What the letter tells the subject about the processing (the playbook's `processing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<Processing>,
}

/// Whether and why a service takes part in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Disposition {
    /// The service runs these kinds' steps (more than one for a reuse such as restrict).
    Run {
        /// Kinds whose steps run, in order.
        kinds: Vec<DsrKind>,
    },
    /// The kind is declared unsupported: an exemption with its reason.
    Exempt {
        /// Why.
        reason: String,
    },
    /// The service does not take part, and why (e.g. an identity it needs is unknown).
    Skipped {
        /// Why.
        reason: String,
    },
}

/// A connector bound to the request's tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundConnector {
    /// Tenant name.
    pub tenant: String,
    /// Connector name within the tenant.
    pub name: String,
    /// Connector kind (`http`, `sql`, `manual`).
    pub kind: String,
}

/// One step instance of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Unique key `service/step-id` (`service/kind.step-id` inside a reuse of several kinds).
    pub key: String,
    /// Service name.
    pub service: String,
    /// Step id as written in the playbook.
    pub id: String,
    /// The DSR kind whose steps this one belongs to.
    pub kind: DsrKind,
    /// Description from the playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Connector name (in the request's tenant) or `None` for built-in actions (wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// The action, with templates unrendered.
    pub action: PlannedAction,
    /// Keys of the steps that must finish first (needs, `after`, identity discovery).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Template names visible to this step: local step id to step key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope: BTreeMap<String, String>,
    /// Subject identities discovered by other steps that this step uses: identity to
    /// `step-key` capturing it (its capture has the identity's name in `discovers`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identities: BTreeMap<String, IdentitySource>,
    /// Fan out over a captured list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<CaptureRef>,
    /// Records of a read's result to keep (templates unrendered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Box<Select>>,
    /// Captures: name to JSON pointer or `header:<Name>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, String>,
    /// Identities this step discovers: identity name to capture name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub discovers: BTreeMap<String, String>,
    /// Statuses meaning nothing is held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent_on: Vec<u16>,
    /// Export package collection name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect: Option<String>,
    /// Whether the step changes data.
    pub mutates: bool,
    /// Whether re-sending after a crash is safe.
    pub idempotent: bool,
    /// Preview of a mutation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Box<Preview>>,
    /// Verification of a mutation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Box<Verify>>,
    /// Polling of an asynchronous operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<Box<Poll>>,
}

/// Where a discovered identity comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitySource {
    /// Key of the discovering step.
    pub step: String,
    /// Capture holding the value.
    pub capture: String,
}

/// A reference to a capture of an earlier step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRef {
    /// Step key.
    pub step: String,
    /// Capture name.
    pub capture: String,
}

/// The action of a planned step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedAction {
    /// HTTP request.
    Http(Box<HttpAction>),
    /// SQL operation.
    Sql(Box<SqlAction>),
    /// Manual task.
    Manual(Box<ManualAction>),
    /// Wait.
    Wait(Box<WaitAction>),
    /// A message by email, then a task for its answer.
    Email(Box<EmailAction>),
}

impl PlannedAction {
    /// The connector kind able to perform this action (`None`: built in).
    pub fn connector_kind(&self) -> Option<&'static str> {
        match self {
            PlannedAction::Http(_) => Some("http"),
            PlannedAction::Sql(_) => Some("sql"),
            PlannedAction::Manual(_) => Some("manual"),
            PlannedAction::Email(_) => Some("email"),
            PlannedAction::Wait(_) => None,
        }
    }

    /// Whether the action changes data unless the step says otherwise.
    pub fn mutates_by_default(&self) -> bool {
        match self {
            PlannedAction::Http(h) => !h.method.is_read(),
            PlannedAction::Sql(s) => s.mutates(),
            PlannedAction::Manual(_) | PlannedAction::Email(_) => true,
            PlannedAction::Wait(_) => false,
        }
    }

    /// Whether re-sending is safe unless the step says otherwise.
    pub fn idempotent_by_default(&self) -> bool {
        match self {
            PlannedAction::Http(h) => {
                matches!(h.method, crate::model::HttpMethod::Delete) || h.method.is_read()
            }
            PlannedAction::Sql(s) => s.delete.is_some() || !s.mutates(),
            PlannedAction::Manual(_) | PlannedAction::Email(_) => false,
            PlannedAction::Wait(_) => true,
        }
    }

    /// Whether the connector derives the preview itself (structured SQL update/delete).
    pub fn previews_itself(&self) -> bool {
        match self {
            PlannedAction::Sql(s) => s.update.is_some() || s.delete.is_some(),
            PlannedAction::Manual(_) | PlannedAction::Email(_) => true,
            _ => false,
        }
    }

    /// Whether the step, while it waits, waits for a person (a manual task, or the answer
    /// to a message sent by email).
    pub fn waits_for_person(&self) -> bool {
        matches!(self, PlannedAction::Manual(_) | PlannedAction::Email(_))
    }

    /// Every template string in the action, with a label saying where it is.
    pub fn templates(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match self {
            PlannedAction::Http(h) => http_templates(h, &mut out),
            PlannedAction::Sql(s) => sql_templates(s, &mut out),
            PlannedAction::Manual(m) => {
                out.push(("manual.instructions".into(), m.instructions.clone()))
            }
            PlannedAction::Email(e) => {
                for (i, to) in e.to.iter().enumerate() {
                    out.push((format!("email.to.{i}"), to.clone()));
                }
                out.push(("email.subject".into(), e.subject.clone()));
                out.push(("email.body".into(), e.body.clone()));
            }
            PlannedAction::Wait(_) => {}
        }
        out
    }
}

/// Template strings of an HTTP action.
pub fn http_templates(h: &HttpAction, out: &mut Vec<(String, String)>) {
    out.push(("http.path".into(), h.path.clone()));
    for (k, v) in &h.query {
        out.push((format!("http.query.{k}"), v.clone()));
    }
    for (k, v) in &h.headers {
        out.push((format!("http.headers.{k}"), v.clone()));
    }
    if let Some(v) = &h.if_match {
        out.push(("http.if_match".into(), v.clone()));
    }
    let variables = h.graphql.as_ref().and_then(|g| g.variables.as_ref());
    for (label, body) in [
        ("http.json", h.json.as_ref()),
        ("http.json_patch", h.json_patch.as_ref()),
        ("http.form", h.form.as_ref()),
        ("http.graphql.variables", variables),
    ] {
        if let Some(body) = body {
            json_templates(label, body, out);
        }
    }
}

/// Template strings of a SQL action.
pub fn sql_templates(s: &SqlAction, out: &mut Vec<(String, String)>) {
    use crate::model::{SetValue, SqlValue};
    let mut preds = |label: &str, filter: &BTreeMap<String, SqlValue>| {
        for (col, v) in filter {
            let vals: Vec<&serde_json::Value> = match v {
                SqlValue::One(v) => vec![v],
                SqlValue::Any(vs) => vs.iter().collect(),
            };
            for v in vals {
                if let serde_json::Value::String(t) = v {
                    out.push((format!("{label}.where.{col}"), t.clone()));
                }
            }
        }
    };
    if let Some(sel) = &s.select {
        preds("sql.select", &sel.filter);
        if let Some(t) = &sel.through {
            preds("sql.select.through", &t.filter);
        }
        for (i, g) in sel.any.iter().enumerate() {
            preds(&format!("sql.select.any[{i}]"), g);
        }
        for (i, g) in sel.unless.iter().enumerate() {
            preds(&format!("sql.select.unless[{i}]"), g);
        }
    }
    if let Some(del) = &s.delete {
        preds("sql.delete", &del.filter);
        if let Some(t) = &del.through {
            preds("sql.delete.through", &t.filter);
        }
        for (i, g) in del.any.iter().enumerate() {
            preds(&format!("sql.delete.any[{i}]"), g);
        }
        for (i, g) in del.unless.iter().enumerate() {
            preds(&format!("sql.delete.unless[{i}]"), g);
        }
    }
    if let Some(up) = &s.update {
        preds("sql.update", &up.filter);
        if let Some(t) = &up.through {
            preds("sql.update.through", &t.filter);
        }
        for (i, g) in up.any.iter().enumerate() {
            preds(&format!("sql.update.any[{i}]"), g);
        }
        for (i, g) in up.unless.iter().enumerate() {
            preds(&format!("sql.update.unless[{i}]"), g);
        }
        for (col, v) in &up.set {
            if let SetValue::Value(serde_json::Value::String(t)) = v {
                out.push((format!("sql.update.set.{col}"), t.clone()));
            }
        }
    }
    for (k, v) in &s.params {
        out.push((format!("sql.params.{k}"), v.clone()));
    }
}

fn json_templates(label: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::String(s) => out.push((label.to_owned(), s.clone())),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                json_templates(&format!("{label}[{i}]"), item, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                json_templates(&format!("{label}.{k}"), item, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::*;

    /// Every planned step of a request over 10,000 services is held at once (35,000 for a
    /// deletion of the generated project): the action and the rarely used options are
    /// boxed, so a step costs the room of what it has (3.7 KiB each before).
    #[test]
    fn a_planned_step_stays_small() {
        assert!(
            size_of::<PlannedStep>() <= 416,
            "PlannedStep is {} bytes",
            size_of::<PlannedStep>()
        );
        assert_eq!(size_of::<PlannedAction>(), 16, "every action is boxed");
    }
}
