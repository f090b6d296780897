//! JSON Patch (RFC 6902) subset used by Digital Twins: `add`, `replace`, `remove`.

use serde_json::{Map, Value};

/// Applies `ops` to a copy of `doc`; on error `doc` is untouched and the message says why.
/// Paths into `$`-prefixed system properties are refused.
pub(crate) fn apply(doc: &Map<String, Value>, ops: &Value) -> Result<Map<String, Value>, String> {
    let Some(ops) = ops.as_array() else {
        return Err("The patch document must be a JSON array of operations.".into());
    };
    let mut out = Value::Object(doc.clone());
    for (i, op) in ops.iter().enumerate() {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let Some(path) = op.get("path").and_then(Value::as_str) else {
            return Err(format!("Operation {i} has no 'path'."));
        };
        let parts: Vec<String> = path
            .strip_prefix('/')
            .ok_or_else(|| format!("Operation {i}: path '{path}' must start with '/'."))?
            .split('/')
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect();
        if parts
            .first()
            .is_some_and(|p| p.starts_with('$') || p.is_empty())
        {
            return Err(format!("Operation {i}: '{path}' cannot be changed."));
        }
        let Some((last, parents)) = parts.split_last() else {
            return Err(format!("Operation {i}: empty path."));
        };
        let mut cur = &mut out;
        for p in parents {
            cur = cur
                .get_mut(p.as_str())
                .ok_or_else(|| format!("Operation {i}: '{path}' does not exist."))?;
        }
        let Some(target) = cur.as_object_mut() else {
            return Err(format!(
                "Operation {i}: the parent of '{path}' is not an object."
            ));
        };
        match kind {
            "add" | "replace" => {
                let value = op
                    .get("value")
                    .cloned()
                    .ok_or_else(|| format!("Operation {i} has no 'value'."))?;
                if kind == "replace" && !target.contains_key(last) {
                    return Err(format!("Operation {i}: cannot replace missing '{path}'."));
                }
                target.insert(last.clone(), value);
            }
            "remove" => {
                if target.remove(last).is_none() {
                    return Err(format!("Operation {i}: cannot remove missing '{path}'."));
                }
            }
            other => return Err(format!("Operation {i}: unsupported op '{other}'.")),
        }
    }
    match out {
        Value::Object(m) => Ok(m),
        _ => Err("The patched document is not an object.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn add_replace_remove() {
        let doc = json!({"$dtId": "t", "a": 1, "n": {"x": 1}});
        let doc = doc.as_object().expect("object");
        let ops = json!([
            {"op": "replace", "path": "/a", "value": 2},
            {"op": "add", "path": "/n/y", "value": "z"},
            {"op": "remove", "path": "/n/x"}
        ]);
        let out = apply(doc, &ops).expect("applies");
        assert_eq!(
            Value::Object(out),
            json!({"$dtId": "t", "a": 2, "n": {"y": "z"}})
        );
        assert!(apply(doc, &json!([{"op": "replace", "path": "/zz", "value": 1}])).is_err());
        assert!(
            apply(
                doc,
                &json!([{"op": "replace", "path": "/$dtId", "value": 1}])
            )
            .is_err()
        );
        assert!(apply(doc, &json!({"op": "add"})).is_err());
    }
}
