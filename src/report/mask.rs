//! Keeping subject values out of views: free text is scrubbed of the request's identity
//! values, JSON values are masked leaf by leaf.

use serde_json::{Map, Value};

use crate::model::Request;

/// Replaces every known subject identity value in free text (error messages, verification
/// details, task notes) with a placeholder naming the identity, e.g. `{subject.email}`.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// (value, placeholder), longest value first so a value containing another wins.
    values: Vec<(String, String)>,
}

impl Scrubber {
    /// A scrubber for the identities of a request (and its corrections' string values).
    pub fn for_request(request: &Request) -> Self {
        let mut values = Vec::new();
        for (name, identity) in &request.subject {
            for v in identity.values() {
                values.push((v.to_owned(), format!("{{subject.{name}}}")));
            }
        }
        if let Some(corrections) = &request.corrections {
            for (field, v) in corrections {
                if let Value::String(s) = v {
                    values.push((s.clone(), format!("{{corrections.{field}}}")));
                }
            }
        }
        // Very short values (one or two characters) would garble text without protecting
        // anything; identities are never that short in practice.
        values.retain(|(v, _)| v.chars().count() >= 3);
        values.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Scrubber { values }
    }

    /// The text with every identity value replaced (case-insensitively for ASCII).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (value, placeholder) in &self.values {
            out = replace_ascii_case_insensitive(&out, value, placeholder);
        }
        out
    }

    /// Scrubs an optional text.
    pub fn scrub_opt(&self, text: Option<&str>) -> Option<String> {
        text.map(|t| self.scrub(t))
    }
}

fn replace_ascii_case_insensitive(haystack: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return haystack.to_owned();
    }
    let lower_h = haystack.to_ascii_lowercase();
    let lower_n = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(haystack.len());
    let mut last = 0;
    // ASCII lowercasing keeps byte offsets, so matches in `lower_h` index `haystack`.
    for (i, _) in lower_h.match_indices(&lower_n) {
        if i < last {
            continue;
        }
        out.push_str(&haystack[last..i]);
        out.push_str(with);
        last = i + needle.len();
    }
    out.push_str(&haystack[last..]);
    out
}

/// The mask shown instead of a string value: its type and length only.
pub fn mask_string(s: &str) -> String {
    format!("<string, {} chars>", s.chars().count())
}

/// A JSON value with every string leaf replaced by [`mask_string`] (numbers and booleans by
/// their kind), and the mirror
/// structure with `true` at masked leaves and `false` elsewhere (like Terraform's
/// `before_sensitive`).
pub fn mask_json(value: &Value) -> (Value, Value) {
    mask_json_against(value, None, "changed")
}

/// Like [`mask_json`], but a leaf that differs from the same place in `other` carries
/// `label` in its mask (e.g. `old value` / `new value`), so a diff of two masked values
/// still shows what changed.
pub fn mask_json_against(value: &Value, other: Option<&Value>, label: &str) -> (Value, Value) {
    match value {
        Value::String(s) => {
            let changed = other.is_some_and(|o| o != value);
            let mask = if changed {
                format!("<string, {} chars, {label}>", s.chars().count())
            } else {
                mask_string(s)
            };
            (Value::String(mask), Value::Bool(true))
        }
        Value::Array(items) => {
            let (masked, sensitive) = items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    mask_json_against(v, other.map(|o| o.get(i).unwrap_or(&Value::Null)), label)
                })
                .unzip();
            (Value::Array(masked), Value::Array(sensitive))
        }
        Value::Object(map) => {
            let mut masked = Map::new();
            let mut sensitive = Map::new();
            for (k, v) in map {
                let o = other.map(|o| o.get(k).unwrap_or(&Value::Null));
                let (m, s) = mask_json_against(v, o, label);
                masked.insert(k.clone(), m);
                sensitive.insert(k.clone(), s);
            }
            (Value::Object(masked), Value::Object(sensitive))
        }
        // Numbers and booleans are personal data too (card numbers, house numbers, codes):
        // only their kind is shown. NULL holds nothing.
        Value::Number(_) | Value::Bool(_) => {
            let kind = if value.is_number() {
                "number"
            } else {
                "boolean"
            };
            let mask = if other.is_some_and(|o| o != value) {
                format!("<{kind}, {label}>")
            } else {
                format!("<{kind}>")
            };
            (Value::String(mask), Value::Bool(true))
        }
        Value::Null => (Value::Null, Value::Bool(false)),
    }
}

/// The sensitivity mirror of a value without masking it (`show_personal_data`).
pub fn sensitivity(value: &Value) -> Value {
    mask_json(value).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrub_replaces_identities_case_insensitively() {
        let req: Request = serde_json::from_value(json!({
            "id": "r-1", "kind": "delete", "tenant": "t", "received": "2026-01-01",
            "subject": {"email": "Ana@Example.com", "devices": ["dev-1", "dev-22"]}
        }))
        .unwrap();
        let s = Scrubber::for_request(&req);
        assert_eq!(
            s.scrub("GET /users/ana@example.com failed; dev-22 and dev-1"),
            "GET /users/{subject.email} failed; {subject.devices} and {subject.devices}"
        );
    }

    #[test]
    // Regression (issue 16): card numbers, codes and house numbers showed in previews.
    fn masks_every_scalar_leaf_and_mirrors_structure() {
        let (m, s) = mask_json(&json!({"a": "xyz", "n": 3, "l": ["q", true], "z": null}));
        assert_eq!(
            m,
            json!({"a": "<string, 3 chars>", "n": "<number>", "l": ["<string, 1 chars>", "<boolean>"], "z": null})
        );
        assert_eq!(
            s,
            json!({"a": true, "n": true, "l": [true, true], "z": false})
        );
    }

    #[test]
    fn marks_changed_leaves() {
        let (m, _) = mask_json_against(
            &json!({"a": "new", "b": "same"}),
            Some(&json!({"a": "old", "b": "same"})),
            "new value",
        );
        assert_eq!(
            m,
            json!({"a": "<string, 3 chars, new value>", "b": "<string, 4 chars>"})
        );
    }
}
