//! What differs between two versions of a planned step, field by field, for people:
//! `plan --compare` (a playbook change in a pull request) and `replan` (a run repaired with
//! today's playbooks) say it the same way.

use serde_json::Value;

use crate::journal::PlannedStep;

/// Each field of a planned step that differs, as `field: old → new` (JSON pointers below the
/// step; values are the playbook's text, templates unrendered, so no subject value).
pub fn step_changes(old: &PlannedStep, new: &PlannedStep) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    json_changes("", &a, &b, &mut out);
    out
}

fn json_changes(at: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                json_changes(
                    &path,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ => out.push(format!("{at}: {} → {}", short(a), short(b))),
    }
}

fn short(v: &Value) -> String {
    const MAX: usize = 80;
    let text = match v {
        Value::Null => return "(none)".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("`{cut}…`")
    } else {
        format!("`{text}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_are_named_by_path_with_both_values() {
        let step = |path: &str| -> PlannedStep {
            serde_json::from_value(serde_json::json!({
                "key": "crm/drop", "service": "crm", "id": "drop", "kind": "delete",
                "action": {"http": {"method": "DELETE", "path": path}},
                "mutates": true, "idempotent": true
            }))
            .unwrap()
        };
        assert_eq!(
            step_changes(&step("/contact/1"), &step("/contacts/1")),
            ["action.http.path: `/contact/1` → `/contacts/1`"]
        );
        assert!(step_changes(&step("/a"), &step("/a")).is_empty());
    }
}
