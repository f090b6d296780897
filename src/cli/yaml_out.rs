//! A small block-style YAML writer for the playbooks dsrctl drafts (import): mappings and
//! lists as a person writes them, scalars plain when that reads back as the same text.

use serde_json::Value;

/// `v` as block YAML (a mapping or list at the top).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    node(v, 0, &mut out);
    out
}

fn node(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                out.push_str(&format!("{pad}{}:", scalar(k)));
                inline_or_block(item, indent, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key on the dash's line, the others below it.
                        let mut first = true;
                        for (k, x) in m {
                            if first {
                                out.push_str(&format!(" {}:", scalar(k)));
                                first = false;
                            } else {
                                out.push_str(&format!("{pad}  {}:", scalar(k)));
                            }
                            inline_or_block(x, indent + 2, out);
                        }
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&flow(other));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&flow(other));
            out.push('\n');
        }
    }
}

fn inline_or_block(item: &Value, indent: usize, out: &mut String) {
    match item {
        Value::Null => out.push('\n'),
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            node(item, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() && a.iter().any(|x| x.is_object()) => {
            out.push('\n');
            node(item, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&flow(other));
            out.push('\n');
        }
    }
}

/// A value on one line: flow lists and mappings, plain or quoted scalars.
fn flow(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, x)| format!("{}: {}", scalar(k), flow(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Plain when it reads back as the same text, else a JSON string (valid YAML).
pub fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && !s.starts_with(|c: char| c == '-' || c == '.' || c == '/' || c.is_ascii_digit())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_back_as_the_same_value() {
        let v = json!({
            "service": "shop",
            "dataset": { "tables": { "a.b": { "columns": { "id": null, "e": { "identity": "email" } } } },
                         "references": ["x.y -> a.b"] },
            "notes": ["it's: odd", "true"],
            "list": [{ "k": 1, "v": "two" }]
        });
        let text = to_yaml(&v);
        let (doc, diags) = crate::load::parse_yaml("t.yaml", text.as_bytes());
        assert!(diags.0.is_empty(), "{text}");
        assert_eq!(doc.expect("doc").value, v, "{text}");
    }
}
