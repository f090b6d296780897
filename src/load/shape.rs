//! Schema nodes and JSON values in words, for findings ("a list of steps",
//! "`unsupported: <reason>`", "a mapping").

use serde_json::Value;

/// How deep `$ref` chains are followed when describing a shape.
const MAX_REFS: usize = 8;

/// A schema node with its `$ref` chain followed, and the name of the last definition.
pub(crate) fn resolve<'a>(schema: &'a Value, mut node: &'a Value) -> (&'a Value, Option<&'a str>) {
    let mut name = None;
    for _ in 0..MAX_REFS {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                name = r.rsplit('/').next();
                match schema.pointer(r.trim_start_matches('#')) {
                    Some(n) => node = n,
                    None => break,
                }
            }
            None => break,
        }
    }
    (node, name)
}

/// The shape of the schema branch at `path`, in words; `None` for a `null` branch.
pub fn describe_shape(schema: &Value, path: &str) -> Option<String> {
    let node = schema.pointer(path)?;
    let (node, name) = resolve(schema, node);
    if node.get("type").and_then(Value::as_str) == Some("null") {
        return None;
    }
    if let Some(c) = node.get("const") {
        return Some(format!("`{}`", text(c)));
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(branches) = node.get(keyword).and_then(Value::as_array) {
            let base = schema_path_of(schema, node).unwrap_or_else(|| path.to_owned());
            let parts: Vec<String> = (0..branches.len())
                .filter_map(|i| describe_shape(schema, &format!("{base}/{keyword}/{i}")))
                .collect();
            return Some(parts.join("; "));
        }
    }
    let ty = node.get("type").and_then(Value::as_str);
    match ty {
        Some("array") => {
            let item = node
                .get("items")
                .map(|i| resolve(schema, i))
                .and_then(|(_, n)| n)
                .map(|n| format!("a list of {}", plural_name(n)))
                .unwrap_or_else(|| "a list".to_owned());
            Some(item)
        }
        Some("object") => {
            let required: Vec<String> = node
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default();
            let props = node.get("properties").and_then(Value::as_object);
            if required.is_empty() {
                return Some(match name {
                    Some(n) => format!("a mapping ({n})"),
                    None => "a mapping".to_owned(),
                });
            }
            let parts: Vec<String> = required
                .iter()
                .map(|k| {
                    let hint = props
                        .and_then(|p| p.get(k))
                        .map(|p| placeholder(schema, p))
                        .unwrap_or_else(|| "…".to_owned());
                    format!("{k}: {hint}")
                })
                .collect();
            Some(format!("`{{ {} }}`", parts.join(", ")))
        }
        Some(other) => Some(type_name(other).to_owned()),
        None => name.map(|n| format!("a {n}")),
    }
}

/// The pointer of a `$defs` node inside the root schema (for following `anyOf` after a
/// `$ref`), found by identity.
fn schema_path_of(schema: &Value, node: &Value) -> Option<String> {
    let defs = schema.get("$defs")?.as_object()?;
    defs.iter()
        .find(|(_, v)| std::ptr::eq(*v, node))
        .map(|(k, _)| format!("/$defs/{k}"))
}

/// A short placeholder for a property value in a shape, e.g. `[kinds]`, `<text>`.
fn placeholder(schema: &Value, node: &Value) -> String {
    let (node, name) = resolve(schema, node);
    match node.get("type").and_then(Value::as_str) {
        Some("array") => {
            let item = node
                .get("items")
                .map(|i| resolve(schema, i))
                .and_then(|(_, n)| n)
                .map(plural_name)
                .unwrap_or_else(|| "…".to_owned());
            format!("[{item}]")
        }
        Some("string") => "<text>".to_owned(),
        Some("object") => "{…}".to_owned(),
        Some(t) => format!("<{t}>"),
        None => name.map_or_else(|| "…".to_owned(), |n| format!("<{n}>")),
    }
}

/// `Step` → `steps`, `DsrKind` → `kinds`.
fn plural_name(def: &str) -> String {
    match def {
        "DsrKind" => "kinds".to_owned(),
        other => {
            let mut s = String::new();
            for (i, ch) in other.chars().enumerate() {
                if ch.is_uppercase() && i > 0 {
                    s.push(' ');
                }
                s.extend(ch.to_lowercase());
            }
            format!("{s}s")
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn type_name(t: &str) -> &'static str {
    match t {
        "array" => "a list",
        "object" => "a mapping",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "null" => "null",
        _ => "a value",
    }
}

/// The `type` keyword's value in words: `"string"` → "a string",
/// `["string", "null"]` → "a string or null".
pub fn type_words(ty: &Value) -> String {
    match ty {
        Value::String(s) => type_name(s).to_owned(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(type_name)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "another type".to_owned(),
    }
}

/// What a value is, in words.
pub fn value_words(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "true/false",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Deepest placeholder built for a missing key.
const MAX_PLACEHOLDER_DEPTH: usize = 4;

/// A value of the schema's shape standing in for a missing key, so the checks of meaning can
/// run on the rest of the document: empty text, list or mapping (with its own required
/// keys), `false`, `0`, or the first allowed value.
pub(crate) fn placeholder_value(schema: &Value, node: &Value, depth: usize) -> Option<Value> {
    if depth > MAX_PLACEHOLDER_DEPTH {
        return None;
    }
    let (node, _) = resolve(schema, node);
    if let Some(c) = node.get("const") {
        return Some(c.clone());
    }
    if let Some(first) = node
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return Some(first.clone());
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(branches) = node.get(keyword).and_then(Value::as_array) {
            return branches
                .iter()
                .find_map(|b| placeholder_value(schema, b, depth + 1));
        }
    }
    let ty = match node.get("type") {
        Some(Value::Array(types)) => types.first().and_then(Value::as_str),
        Some(t) => t.as_str(),
        None => None,
    };
    Some(match ty? {
        "string" => Value::String(String::new()),
        "array" => Value::Array(Vec::new()),
        "boolean" => Value::Bool(false),
        "integer" | "number" => Value::from(0),
        "null" => Value::Null,
        "object" => {
            let mut m = serde_json::Map::new();
            let required = node.get("required").and_then(Value::as_array);
            let props = node.get("properties");
            for key in required.into_iter().flatten().filter_map(Value::as_str) {
                let p = props.and_then(|p| p.get(key))?;
                m.insert(key.to_owned(), placeholder_value(schema, p, depth + 1)?);
            }
            Value::Object(m)
        }
        _ => return None,
    })
}
