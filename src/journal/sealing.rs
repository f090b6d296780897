//! Which parts of the run record are personal data, sealed with the [`DataKey`] before they
//! are stored and opened when read: the request's identities, corrections and note; a step
//! outcome's captures, message, verification detail, task note and previewed change; a
//! change's before, after and reason. Everything else (ids, kinds, statuses, counts,
//! digests, times) stays in clear, so the store can still sort, lease and report on it.

use serde_json::Value;

use super::data_key::{DataKey, SealError, open_with};
use super::{Change, Plan, StepOutcome};
use crate::model::{Identity, Request};

fn seal_string(key: &DataKey, s: &str) -> String {
    match key.seal(&Value::String(s.to_owned())) {
        Value::String(sealed) => sealed,
        other => other.to_string(),
    }
}

fn open_string(key: Option<&DataKey>, s: &str) -> Result<String, SealError> {
    match open_with(key, &Value::String(s.to_owned()))? {
        Value::String(s) => Ok(s),
        other => Ok(other.to_string()),
    }
}

/// The request with its identities (each with its keyed index), corrections and note sealed.
pub fn seal_request(key: &DataKey, request: &Request) -> Request {
    let mut r = request.clone();
    for (name, identity) in r.subject.iter_mut() {
        *identity = match identity {
            Identity::One(v) => Identity::One(key.seal_identity(name, v)),
            Identity::Many(vs) => {
                Identity::Many(vs.iter().map(|v| key.seal_identity(name, v)).collect())
            }
        };
    }
    if let Some(c) = r.corrections.as_mut() {
        for v in c.values_mut() {
            *v = key.seal(v);
        }
    }
    r.note = r.note.as_deref().map(|n| seal_string(key, n));
    r
}

/// The request with its sealed parts opened (a request stored in clear is returned as it is).
pub fn open_request(key: Option<&DataKey>, request: &Request) -> Result<Request, SealError> {
    let mut r = request.clone();
    for identity in r.subject.values_mut() {
        *identity = match identity {
            Identity::One(v) => Identity::One(open_string(key, v)?),
            Identity::Many(vs) => Identity::Many(
                vs.iter()
                    .map(|v| open_string(key, v))
                    .collect::<Result<_, _>>()?,
            ),
        };
    }
    if let Some(c) = r.corrections.as_mut() {
        for v in c.values_mut() {
            *v = open_with(key, v)?;
        }
    }
    r.note = r.note.as_deref().map(|n| open_string(key, n)).transpose()?;
    Ok(r)
}

/// The plan with its request sealed (steps hold templates, never subject values).
pub fn seal_plan(key: &DataKey, plan: &Plan) -> Plan {
    let mut p = plan.clone();
    p.request = seal_request(key, &plan.request);
    p
}

/// The plan with its request opened.
pub fn open_plan(key: Option<&DataKey>, plan: &Plan) -> Result<Plan, SealError> {
    let mut p = plan.clone();
    p.request = open_request(key, &plan.request)?;
    Ok(p)
}

/// The change with its before, after and reason sealed.
pub fn seal_change(key: &DataKey, change: &Change) -> Change {
    let mut c = change.clone();
    c.before = c.before.as_ref().map(|v| key.seal(v));
    c.after = c.after.as_ref().map(|v| key.seal(v));
    c.reason = c.reason.as_deref().map(|r| seal_string(key, r));
    c
}

/// The change with its sealed parts opened.
pub fn open_change(key: Option<&DataKey>, change: &Change) -> Result<Change, SealError> {
    let mut c = change.clone();
    c.before = c.before.as_ref().map(|v| open_with(key, v)).transpose()?;
    c.after = c.after.as_ref().map(|v| open_with(key, v)).transpose()?;
    c.reason = c
        .reason
        .as_deref()
        .map(|r| open_string(key, r))
        .transpose()?;
    Ok(c)
}

/// The outcome with its captures, message, verification detail, task note and change sealed.
pub fn seal_outcome(key: &DataKey, outcome: &StepOutcome) -> StepOutcome {
    let mut o = outcome.clone();
    for v in o.captures.values_mut() {
        *v = key.seal(v);
    }
    o.message = o.message.as_deref().map(|m| seal_string(key, m));
    if let Some(v) = o.verification.as_mut() {
        v.detail = seal_string(key, &v.detail);
    }
    if let Some(t) = o.task.as_mut() {
        t.note = t.note.as_deref().map(|n| seal_string(key, n));
    }
    o.change = o.change.as_ref().map(|c| seal_change(key, c));
    o
}

/// The outcome with its sealed parts opened.
pub fn open_outcome(
    key: Option<&DataKey>,
    outcome: &StepOutcome,
) -> Result<StepOutcome, SealError> {
    let mut o = outcome.clone();
    for v in o.captures.values_mut() {
        *v = open_with(key, v)?;
    }
    o.message = o
        .message
        .as_deref()
        .map(|m| open_string(key, m))
        .transpose()?;
    if let Some(v) = o.verification.as_mut() {
        v.detail = open_string(key, &v.detail)?;
    }
    if let Some(t) = o.task.as_mut() {
        t.note = t.note.as_deref().map(|n| open_string(key, n)).transpose()?;
    }
    o.change = o.change.as_ref().map(|c| open_change(key, c)).transpose()?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::StepStatus;
    use serde_json::json;

    fn request() -> Request {
        serde_json::from_value(json!({
            "id": "r-1", "kind": "delete", "tenant": "t", "received": "2026-01-05",
            "subject": {"email": "alice@example.com", "device_ids": ["dev-alice-1", "dev-alice-2"]},
            "note": "called from +44 20 7946 0000"
        }))
        .unwrap()
    }

    #[test]
    fn a_sealed_request_holds_no_value_and_opens_to_the_original() {
        let key = DataKey::from_bytes([7; 32]);
        let sealed = seal_request(&key, &request());
        let text = serde_json::to_string(&sealed).unwrap();
        for value in ["alice@example.com", "dev-alice", "7946"] {
            assert!(!text.contains(value), "{value} in {text}");
        }
        assert_eq!(sealed.id, "r-1");
        assert_eq!(open_request(Some(&key), &sealed).unwrap(), request());
        assert_eq!(open_request(None, &request()).unwrap(), request());
    }

    #[test]
    fn a_sealed_outcome_keeps_counts_and_status_in_clear() {
        let key = DataKey::from_bytes([8; 32]);
        let mut o = StepOutcome::new("find", "find", StepStatus::Succeeded);
        o.found = 3;
        o.captures.insert("id".into(), json!("user-alice"));
        o.message = Some("found alice@example.com".into());
        let sealed = seal_outcome(&key, &o);
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains("alice"), "{text}");
        assert!(text.contains("\"found\":3"), "{text}");
        assert_eq!(open_outcome(Some(&key), &sealed).unwrap(), o);
    }
}
