//! Turns a planned action into a connector [`Operation`] by rendering its templates.

use serde_json::Value;

use crate::compile::{Renderer, TemplateError};
use crate::connectors::email::{EmailFile, EmailMessage};
use crate::connectors::{HttpRequest, Operation};
use crate::journal::{PlannedAction, PlannedStep};
use crate::model::{
    EmailAction, EmailAttachment, HttpAction, Preview, SetValue, SqlAction, SqlMatch, SqlValue,
};

/// Renders an HTTP action.
pub fn http(
    r: &Renderer,
    h: &HttpAction,
    ctx: &Value,
    absent_on: &[u16],
) -> Result<Operation, TemplateError> {
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| Ok((k.clone(), r.render(v, ctx)?)))
            .collect::<Result<Vec<_>, TemplateError>>()
    };
    Ok(Operation::Http(HttpRequest {
        method: h.method,
        path: r.render(&h.path, ctx)?,
        query: pairs(&h.query)?,
        headers: pairs(&h.headers)?,
        json: match &h.graphql {
            Some(gql) => Some(serde_json::json!({
                "query": gql.query,
                "variables": gql
                    .variables
                    .as_ref()
                    .map(|v| r.render_json(v, ctx))
                    .transpose()?
                    .unwrap_or_else(|| serde_json::json!({})),
            })),
            None => h.json.as_ref().map(|j| r.render_json(j, ctx)).transpose()?,
        },
        form: h
            .form
            .as_ref()
            .map(|f| form_pairs(&r.render_json(f, ctx)?))
            .transpose()?,
        graphql: h.graphql.is_some(),
        json_patch: h
            .json_patch
            .as_ref()
            .map(|j| r.render_json(j, ctx))
            .transpose()?,
        if_match: h.if_match.as_ref().map(|t| r.render(t, ctx)).transpose()?,
        paginate: h.paginate.as_deref().cloned(),
        absent_on: absent_on.to_vec(),
        // A read; a step's mutation is marked by `operation`, from the step.
        idempotent: false,
    }))
}

/// A rendered form body as pairs, nested values in bracket notation (`a[b]`, `a[0]`).
fn form_pairs(v: &Value) -> Result<Vec<(String, String)>, TemplateError> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}[{k}]")
                    };
                    walk(&name, v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            Value::Null => out.push((prefix.to_owned(), String::new())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    if !v.is_object() {
        return Err(TemplateError {
            template: v.to_string(),
            message: "a `form` body must be an object of fields".into(),
            missing: None,
        });
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    Ok(out)
}

/// Renders a SQL action: every template string becomes its value.
pub fn sql(r: &Renderer, s: &SqlAction, ctx: &Value) -> Result<Operation, TemplateError> {
    let mut out = s.clone();
    let render_filter = |f: &mut std::collections::BTreeMap<String, SqlValue>| {
        for v in f.values_mut() {
            match v {
                // A list written in a playbook parses as `One(Array)`: a list all the same,
                // whose templates render (a captured list expands into the IN list).
                SqlValue::One(Value::Array(many)) | SqlValue::Any(many) => {
                    let mut flat = Vec::new();
                    for item in many.iter() {
                        // A list identity (`{{json subject.device_ids}}`) expands into the IN list.
                        match render_value(r, item, ctx)? {
                            Value::Array(items) => flat.extend(items),
                            other => flat.push(other),
                        }
                    }
                    *many = flat;
                }
                SqlValue::One(one) => *one = render_value(r, one, ctx)?,
            }
        }
        Ok::<(), TemplateError>(())
    };
    if let Some(sel) = &mut out.select {
        render_filter(&mut sel.filter)?;
        if let Some(t) = &mut sel.through {
            render_filter(&mut t.filter)?;
        }
        for group in sel.any.iter_mut().chain(sel.unless.iter_mut()) {
            render_filter(group)?;
        }
    }
    if let Some(del) = &mut out.delete {
        render_filter(&mut del.filter)?;
        if let Some(t) = &mut del.through {
            render_filter(&mut t.filter)?;
        }
        for group in del.any.iter_mut().chain(del.unless.iter_mut()) {
            render_filter(group)?;
        }
    }
    if let Some(up) = &mut out.update {
        render_filter(&mut up.filter)?;
        if let Some(t) = &mut up.through {
            render_filter(&mut t.filter)?;
        }
        for group in up.any.iter_mut().chain(up.unless.iter_mut()) {
            render_filter(group)?;
        }
        for v in up.set.values_mut() {
            if let SetValue::Value(val) = v {
                *val = render_value(r, val, ctx)?;
            }
        }
    }
    for v in out.params.values_mut() {
        *v = r.render(v, ctx)?;
    }
    Ok(Operation::Sql(out))
}

fn render_value(r: &Renderer, v: &Value, ctx: &Value) -> Result<Value, TemplateError> {
    match v {
        Value::String(_) => r.render_json(v, ctx),
        other => Ok(other.clone()),
    }
}

/// Most rows a structured delete that finds its rows through a subject's identity may
/// remove when its step sets no `max_rows`: more rolls it back and fails the step.
pub const IDENTITY_DELETE_MAX_ROWS: u64 = 10_000;

/// Whether a predicate uses a subject identity (`{{subject.…}}`).
fn by_identity(filter: &std::collections::BTreeMap<String, SqlValue>) -> bool {
    let mentions = |v: &Value| v.as_str().is_some_and(|s| s.contains("subject."));
    filter.values().any(|v| match v {
        SqlValue::One(Value::Array(list)) | SqlValue::Any(list) => list.iter().any(mentions),
        SqlValue::One(one) => mentions(one),
    })
}

/// Renders any connector action (not manual or wait).
pub fn render(
    r: &Renderer,
    step: &PlannedStep,
    ctx: &Value,
) -> Option<Result<Operation, TemplateError>> {
    match &step.action {
        PlannedAction::Http(h) => Some(http(r, h, ctx, &step.absent_on).map(|mut op| {
            if let Operation::Http(req) = &mut op {
                req.idempotent = step.idempotent;
            }
            op
        })),
        PlannedAction::Sql(s) => Some(sql(r, s, ctx).and_then(|mut op| {
            if let Operation::Sql(a) = &mut op
                && a.max_rows.is_none()
                && s.delete.as_ref().is_some_and(|d| {
                    by_identity(&d.filter)
                        || d.through.as_ref().is_some_and(|t| by_identity(&t.filter))
                        || d.any.iter().any(by_identity)
                })
            {
                a.max_rows = Some(IDENTITY_DELETE_MAX_ROWS);
            }
            // Raw `execute`: its preview read is re-read in the same transaction, and the rows
            // it returns are checked against the bound identity values before anything changes.
            if let (Operation::Sql(a), Some(Preview::Sql(p))) = (&mut op, step.preview.as_deref())
                && a.execute.is_some()
                && let Operation::Sql(g) = sql(r, p, ctx)?
            {
                a.guard = Some(Box::new(g));
            }
            Ok(op)
        })),
        PlannedAction::Email(e) => Some(email(r, e, &step.key, ctx)),
        PlannedAction::Manual(_) | PlannedAction::Wait(_) => None,
    }
}

/// Renders an email action: its recipients, subject (with the request id) and body, and
/// its attachments from the request.
pub fn email(
    r: &Renderer,
    e: &EmailAction,
    step_key: &str,
    ctx: &Value,
) -> Result<Operation, TemplateError> {
    let request_id = ctx["request"]["id"].as_str().unwrap_or_default();
    let mut subject = r.render(&e.subject, ctx)?;
    if !subject.contains(request_id) {
        subject = format!("{subject} [{request_id}]");
    }
    let attachments = e
        .attach
        .iter()
        .map(|a| match a {
            EmailAttachment::Identities => {
                let mut csv = String::from("identity,value\r\n");
                for (name, value) in ctx["subject"].as_object().into_iter().flatten() {
                    let values = match value {
                        Value::Array(many) => many.clone(),
                        one => vec![one.clone()],
                    };
                    for v in values {
                        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        csv.push_str(&format!("{},{}\r\n", csv_field(name), csv_field(&text)));
                    }
                }
                EmailFile {
                    name: "identities.csv".to_owned(),
                    content_type: "text/csv; charset=utf-8".to_owned(),
                    content: csv,
                }
            }
        })
        .collect();
    let token = |t: &str| -> String {
        t.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '.'
                }
            })
            .collect()
    };
    Ok(Operation::Email(EmailMessage {
        to: e
            .to
            .iter()
            .map(|t| r.render(t, ctx))
            .collect::<Result<_, _>>()?,
        subject,
        body: r.render(&e.body, ctx)?,
        attachments,
        message_id: format!(
            "<dsr.{}.{}@dsrctl.invalid>",
            token(request_id),
            token(step_key)
        ),
    }))
}

/// A CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A short description of what an operation addresses, with subject values masked.
pub fn target(action: &PlannedAction) -> String {
    match action {
        PlannedAction::Http(h) => format!("{} {}", h.method.as_str(), h.path),
        PlannedAction::Sql(s) => {
            let text = if let Some(d) = &s.delete {
                format!("DELETE FROM {}", d.table)
            } else if let Some(u) = &s.update {
                format!(
                    "UPDATE {} SET {}",
                    u.table,
                    u.set.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            } else if let Some(sel) = &s.select {
                format!("SELECT FROM {}", sel.table)
            } else {
                "SQL statement".to_owned()
            };
            match s.matching {
                SqlMatch::Exact => text,
                SqlMatch::CaseInsensitive => format!("{text} (match: case_insensitive)"),
            }
        }
        PlannedAction::Manual(_) => "manual task".to_owned(),
        PlannedAction::Wait(w) => format!("wait {}", w.duration),
        PlannedAction::Email(e) => format!("email to {}", e.to.join(", ")),
    }
}

#[cfg(test)]
mod form_tests {
    use super::form_pairs;
    use serde_json::json;

    #[test]
    fn nested_values_use_bracket_notation() {
        let pairs = form_pairs(&json!({"name": "Ann", "metadata": {"dsr": "r-1"},
            "items": [{"price": "p_1"}], "phone": null, "n": 2}))
        .unwrap();
        let want: Vec<(String, String)> = [
            ("name", "Ann"),
            ("metadata[dsr]", "r-1"),
            ("items[0][price]", "p_1"),
            ("phone", ""),
            ("n", "2"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(pairs, want);
        assert!(form_pairs(&json!("text")).is_err());
    }
}
