//! Captures and conditions on results: JSON pointers into a body, or `header:<Name>`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::connectors::{RecordSink, Response};
use crate::model::Expect;

/// Takes the step's captures from a response. Missing values are left out.
pub fn take_captures(spec: &BTreeMap<String, String>, resp: &Response) -> BTreeMap<String, Value> {
    spec.iter()
        .filter_map(|(name, source)| {
            let value = match source.strip_prefix("header:") {
                Some(header) => resp
                    .headers
                    .get(&header.to_ascii_lowercase())
                    .map(|v| Value::String(v.clone())),
                // `/*/id`: the `id` of every row, as a list that may be empty (an empty
                // list feeds an IN list that matches nothing; it is not "missing").
                None if is_wildcard(source) => {
                    return Some((name.clone(), pluck(&resp.body, source)));
                }
                None => resp.body.pointer(source).cloned(),
            }?;
            (!is_nothing(&value)).then(|| (name.clone(), value))
        })
        .collect()
}

/// Whether a capture source has a `*` segment (every element of a list).
pub fn is_wildcard(source: &str) -> bool {
    source.split('/').any(|seg| seg == "*")
}

/// The values at a pointer with `*` segments: each element of the list there, then the rest
/// of the pointer; nulls left out, each distinct value once, in the order first seen.
pub fn pluck(doc: &Value, source: &str) -> Value {
    fn walk(v: &Value, rest: &str, out: &mut Vec<Value>) {
        match rest.split_once("/*") {
            Some((head, tail)) if tail.is_empty() || tail.starts_with('/') => {
                if let Some(Value::Array(items)) = v.pointer(head) {
                    for item in items {
                        walk(item, tail, out);
                    }
                }
            }
            _ => {
                // `/*/(a,b)`: the pair of `a` and `b` of every row (a composite key), left
                // out when a part is null.
                if let Some(fields) = rest
                    .strip_prefix("/(")
                    .and_then(|r| r.strip_suffix(')'))
                    .filter(|f| f.contains(','))
                {
                    let parts: Option<Vec<Value>> = fields
                        .split(',')
                        .map(|f| {
                            v.pointer(&format!("/{}", f.trim()))
                                .filter(|x| !x.is_null())
                                .cloned()
                        })
                        .collect();
                    if let Some(parts) = parts.map(Value::Array)
                        && !out.contains(&parts)
                    {
                        out.push(parts);
                    }
                } else if let Some(found) = v.pointer(rest)
                    && !found.is_null()
                    && !out.contains(found)
                {
                    out.push(found.clone());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(doc, source, &mut out);
    Value::Array(out)
}

/// A capture of one record of a list: its name, the record's index and the pointer into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCapture {
    name: String,
    index: u64,
    rest: String,
}

/// The body captures of `spec` as captures of single records (`/3/id`: record 3's `/id`),
/// which can be taken from the records of a listing as they pass; `header:` captures are
/// left out (they are taken from the answer). `None` when a capture needs more than one
/// record (`/value`, the whole list), so the listing must be kept whole.
pub fn record_captures(spec: &BTreeMap<String, String>) -> Option<Vec<RecordCapture>> {
    let mut out = Vec::new();
    for (name, source) in spec {
        if source.starts_with("header:") {
            continue;
        }
        let rest = source.strip_prefix('/')?;
        let (token, rest) = match rest.split_once('/') {
            Some((t, r)) => (t, format!("/{r}")),
            None => (rest, String::new()),
        };
        // A JSON pointer's array index: digits, no leading zero.
        let valid = !token.is_empty()
            && token.bytes().all(|b| b.is_ascii_digit())
            && (token == "0" || !token.starts_with('0'));
        if !valid {
            return None;
        }
        out.push(RecordCapture {
            name: name.clone(),
            index: token.parse().ok()?,
            rest,
        });
    }
    Some(out)
}

/// A sink that passes records on and takes [`RecordCapture`]s from them on the way.
pub struct CapturingSink<S> {
    inner: S,
    captures: Vec<RecordCapture>,
    seen: u64,
    values: BTreeMap<String, Value>,
}

impl<S: RecordSink> CapturingSink<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, captures: Vec<RecordCapture>) -> Self {
        CapturingSink {
            inner,
            captures,
            seen: 0,
            values: BTreeMap::new(),
        }
    }

    /// The inner sink and the values captured (missing or empty ones left out).
    pub fn into_parts(self) -> (S, BTreeMap<String, Value>) {
        (self.inner, self.values)
    }
}

impl<S: RecordSink> RecordSink for CapturingSink<S> {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        for c in self.captures.iter().filter(|c| c.index == self.seen) {
            if let Some(v) = record.pointer(&c.rest)
                && !is_nothing(v)
            {
                self.values.insert(c.name.clone(), v.clone());
            }
        }
        self.seen += 1;
        self.inner.write(record)
    }
}

/// Null, an empty string, list or object: "nothing found".
pub fn is_nothing(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Whether a condition holds on a document. Returns a description of what was seen when not.
pub fn check(expect: &Expect, doc: &Value) -> Result<(), String> {
    let found = doc.pointer(&expect.pointer);
    if let Some(absent) = expect.absent {
        let is_absent = found.is_none_or(is_nothing);
        if is_absent != absent {
            return Err(format!(
                "`{}` is {}",
                display_pointer(&expect.pointer),
                if is_absent { "absent" } else { "present" }
            ));
        }
    }
    if let Some(want) = &expect.equals
        && found != Some(want)
    {
        return Err(format!(
            "`{}` is {}, expected {want}",
            display_pointer(&expect.pointer),
            found.map_or("missing".to_owned(), Value::to_string)
        ));
    }
    if !expect.one_of.is_empty() && !found.is_some_and(|f| expect.one_of.contains(f)) {
        return Err(format!(
            "`{}` is {}, expected one of {}",
            display_pointer(&expect.pointer),
            found.map_or("missing".to_owned(), Value::to_string),
            Value::Array(expect.one_of.clone())
        ));
    }
    Ok(())
}

fn display_pointer(p: &str) -> &str {
    if p.is_empty() { "(document)" } else { p }
}

/// Number of records in a read result: items of a list, 1 for a non-empty document.
pub fn count_records(body: &Value) -> u64 {
    match body {
        Value::Array(a) => a.len() as u64,
        Value::Object(o) => match o.get("value") {
            Some(Value::Array(a)) => a.len() as u64,
            _ => u64::from(!o.is_empty()),
        },
        Value::Null => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn captures_from_body_and_headers() {
        let resp = Response {
            body: json!({"value": [{"id": "u1"}], "empty": []}),
            headers: [("location".to_owned(), "http://x/op/1".to_owned())].into(),
            ..Response::default()
        };
        let spec: BTreeMap<String, String> = [
            ("id".to_owned(), "/value/0/id".to_owned()),
            ("op".to_owned(), "header:Location".to_owned()),
            ("none".to_owned(), "/empty".to_owned()),
            ("missing".to_owned(), "/nope".to_owned()),
        ]
        .into();
        let got = take_captures(&spec, &resp);
        assert_eq!(got.get("id"), Some(&json!("u1")));
        assert_eq!(got.get("op"), Some(&json!("http://x/op/1")));
        assert!(!got.contains_key("none") && !got.contains_key("missing"));
    }

    #[test]
    fn wildcard_captures_list_every_row_and_may_be_empty() {
        let resp = Response {
            body: json!([{"id": 1, "c": "a"}, {"id": 2, "c": null}, {"id": 1, "c": "b"}]),
            ..Response::default()
        };
        let spec: BTreeMap<String, String> = [
            ("id".to_owned(), "/*/id".to_owned()),
            ("c".to_owned(), "/*/c".to_owned()),
            ("none".to_owned(), "/*/nope".to_owned()),
        ]
        .into();
        let got = take_captures(&spec, &resp);
        assert_eq!(got.get("id"), Some(&json!([1, 2])));
        assert_eq!(got.get("c"), Some(&json!(["a", "b"])));
        assert_eq!(got.get("none"), Some(&json!([])));
        let nested = json!({"value": [{"k": {"x": 5}}]});
        assert_eq!(pluck(&nested, "/value/*/k/x"), json!([5]));
        let rows =
            json!([{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1, "b": null}, {"a": 1, "b": 2}]);
        assert_eq!(
            pluck(&rows, "/*/(a,b)"),
            json!([[1, 2], [1, 3]]),
            "pairs: distinct, none with a null part"
        );
    }

    #[test]
    fn captures_taken_from_passing_records_match_those_from_the_whole_list() {
        struct Count(u64);
        impl RecordSink for Count {
            fn write(&mut self, _: &Value) -> std::io::Result<()> {
                self.0 += 1;
                Ok(())
            }
        }
        let list = json!([{"id": "a", "n": {"k": 1}}, {"id": ""}, {"id": "c", "n": {"k": 3}}]);
        let spec: BTreeMap<String, String> = [
            ("first", "/0/id"),
            ("empty", "/1/id"),
            ("third", "/2/n/k"),
            ("whole", "/2"),
            ("past", "/7/id"),
            ("etag", "header:ETag"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        let mut sink = CapturingSink::new(Count(0), record_captures(&spec).expect("per record"));
        for r in list.as_array().unwrap() {
            sink.write(r).unwrap();
        }
        let (count, streamed) = sink.into_parts();
        assert_eq!(count.0, 3);
        let resp = Response {
            body: list,
            ..Response::default()
        };
        assert_eq!(streamed, take_captures(&spec, &resp));
        assert_eq!(streamed.len(), 3);

        for whole_list in ["/value", "", "/01/id", "/-/id", "/x", "/*/id"] {
            let spec = [("c".to_owned(), whole_list.to_owned())].into();
            assert_eq!(record_captures(&spec), None, "{whole_list}");
        }
    }

    #[test]
    fn expectations() {
        let doc = json!({"status": "running", "items": []});
        let e = |p: &str| Expect {
            pointer: p.into(),
            equals: None,
            one_of: vec![],
            absent: None,
        };
        assert!(
            check(
                &Expect {
                    equals: Some(json!("complete")),
                    ..e("/status")
                },
                &doc
            )
            .is_err()
        );
        assert!(
            check(
                &Expect {
                    one_of: vec![json!("running")],
                    ..e("/status")
                },
                &doc
            )
            .is_ok()
        );
        assert!(
            check(
                &Expect {
                    absent: Some(true),
                    ..e("/items")
                },
                &doc
            )
            .is_ok()
        );
        assert!(
            check(
                &Expect {
                    absent: Some(false),
                    ..e("/status")
                },
                &doc
            )
            .is_ok()
        );
    }
}
