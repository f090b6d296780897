//! Replacing fields of collected records at JSON pointers with `"[redacted]"`.

use serde_json::Value;

use super::manifest::Redaction;

/// The replacement value.
pub const REDACTED: &str = "[redacted]";

/// Applies a playbook's `redact` pointers to records and counts what it replaced.
/// A pointer segment `*` matches every element of an array or every key of an object.
#[derive(Debug, Clone)]
pub struct Redactor {
    pointers: Vec<(String, Vec<String>, u64)>,
}

impl Redactor {
    /// A redactor for these JSON pointers (RFC 6901, plus `*`).
    pub fn new(pointers: &[String]) -> Self {
        Redactor {
            pointers: pointers
                .iter()
                .map(|p| {
                    let segs = p
                        .split('/')
                        .skip(1)
                        .map(|s| s.replace("~1", "/").replace("~0", "~"))
                        .collect();
                    (p.clone(), segs, 0)
                })
                .collect(),
        }
    }

    /// Redacts one record in place.
    pub fn apply(&mut self, record: &mut Value) {
        for (_, segs, count) in &mut self.pointers {
            *count += redact_at(record, segs);
        }
    }

    /// Values replaced per pointer.
    pub fn into_counts(self) -> Vec<Redaction> {
        self.pointers
            .into_iter()
            .map(|(pointer, _, count)| Redaction { pointer, count })
            .collect()
    }
}

fn redact_at(v: &mut Value, segs: &[String]) -> u64 {
    let Some((first, rest)) = segs.split_first() else {
        if v.as_str() == Some(REDACTED) {
            return 0;
        }
        *v = Value::String(REDACTED.to_owned());
        return 1;
    };
    match v {
        Value::Object(map) if first == "*" => map.values_mut().map(|c| redact_at(c, rest)).sum(),
        Value::Array(items) if first == "*" => items.iter_mut().map(|c| redact_at(c, rest)).sum(),
        Value::Object(map) => map.get_mut(first).map_or(0, |c| redact_at(c, rest)),
        Value::Array(items) => first
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get_mut(i))
            .map_or(0, |c| redact_at(c, rest)),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_pointers_and_wildcards() {
        let mut r = Redactor::new(&[
            "/manager/mail".into(),
            "/attendees/*/email".into(),
            "/missing".into(),
        ]);
        let mut rec = json!({"manager": {"mail": "boss@x", "id": 1}, "attendees": [{"email": "a"}, {"email": "b", "n": 2}, {}]});
        r.apply(&mut rec);
        assert_eq!(
            rec,
            json!({"manager": {"mail": "[redacted]", "id": 1}, "attendees": [{"email": "[redacted]"}, {"email": "[redacted]", "n": 2}, {}]})
        );
        let counts: Vec<u64> = r.into_counts().into_iter().map(|c| c.count).collect();
        assert_eq!(counts, vec![1, 2, 0]);
    }
}
