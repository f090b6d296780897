//! Property tests: the YAML-to-JSON conversion and the position map always agree.

use dsrctl::load::{Document, parse_yaml};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z][a-z0-9_]{0,8}"
            .prop_filter("not a core-schema word", |s| !matches!(
                s.as_str(),
                "null" | "true" | "false"
            ))
            .prop_map(Value::String),
        (0u32..100_000).prop_map(|n| Value::Number(n.into())),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,8}"
}

fn tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), tree(), 1..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(m) if !m.is_empty())
}

fn inline(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => scalar_text(other),
    }
}

fn block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if is_container(child) {
                    out.push_str(&format!("{pad}{k}:\n"));
                    block(child, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}{k}: {}\n", inline(child)));
                }
            }
        }
        Value::Array(a) => {
            for child in a {
                if is_container(child) {
                    out.push_str(&format!("{pad}-\n"));
                    block(child, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}- {}\n", inline(child)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar_text(other))),
    }
}

fn text_at(text: &str, line: usize, col: usize) -> String {
    let l = text.lines().nth(line - 1).unwrap_or("");
    l.chars().skip(col - 1).collect()
}

fn check_agreement(doc: &Document, v: &Value, ptr: String, nodes: &mut usize) {
    *nodes += 1;
    let pos = doc
        .positions
        .get(&ptr)
        .unwrap_or_else(|| panic!("no position for `{ptr}`"));
    if let Some(k) = pos.key {
        let key = ptr.rsplit('/').next().unwrap_or("");
        let at = text_at(&doc.text, k.line, k.col);
        assert!(
            at.starts_with(key),
            "key `{key}` of `{ptr}` not at {k:?}: {at:?}"
        );
    }
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                check_agreement(doc, c, format!("{ptr}/{k}"), nodes);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                check_agreement(doc, c, format!("{ptr}/{i}"), nodes);
            }
        }
        scalar => {
            let at = text_at(&doc.text, pos.value.line, pos.value.col);
            let want = scalar_text(scalar);
            assert!(
                at.starts_with(&want),
                "value of `{ptr}` not at {:?}: {at:?}",
                pos.value
            );
        }
    }
}

fn roundtrip(text: &str, expected: &Value) {
    let (doc, d) = parse_yaml("p.yaml", text.as_bytes());
    assert!(d.is_empty(), "{}\n{text}", d.render_human(false));
    let doc = doc.expect("document");
    assert_eq!(&doc.value, expected, "{text}");
    let mut nodes = 0;
    check_agreement(&doc, &doc.value, String::new(), &mut nodes);
    assert_eq!(
        nodes,
        doc.positions.len(),
        "every position belongs to a node"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn block_yaml_and_positions_agree(v in document()) {
        let mut text = String::new();
        block(&v, 0, &mut text);
        roundtrip(&text, &v);
    }

    #[test]
    fn flow_yaml_and_positions_agree(v in document()) {
        roundtrip(&format!("{}\n", inline(&v)), &v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_yaml("p.yaml", &bytes);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "[a-z:\\-\\[\\]{},&*!|>'\" \n\t#?]{0,200}") {
        let _ = parse_yaml("p.yaml", text.as_bytes());
    }
}
