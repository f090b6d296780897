//! The committed JSON Schemas under `schemas/` match the model.

use std::path::Path;

use dsrctl::load::{SchemaKind, schema_json, write_schemas};

#[test]
fn committed_schemas_match_the_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    if std::env::var_os("DSRCTL_WRITE_SCHEMAS").is_some() {
        write_schemas(&dir).expect("write schemas");
    }
    let mut stale = Vec::new();
    for kind in SchemaKind::ALL {
        let path = dir.join(kind.file_name());
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != schema_json(kind) {
            stale.push(format!("schemas/{}", kind.file_name()));
        }
    }
    assert!(
        stale.is_empty(),
        "{} differ from the model; run `cargo run -- schema --write` to regenerate",
        stale.join(", ")
    );
}

/// The formats draft 2020-12 defines; strict validators (ajv in strict mode, SchemaStore)
/// refuse any other.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

fn formats_and_integers(
    v: &serde_json::Value,
    ptr: &str,
    out: &mut Vec<(String, serde_json::Value)>,
) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(f) = m.get("format") {
                out.push((ptr.to_owned(), f.clone()));
            }
            for (k, x) in m {
                formats_and_integers(x, &format!("{ptr}/{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                formats_and_integers(x, &format!("{ptr}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// schemars writes Rust's integer types as `format: uint16`/`uint32`/`uint64`, which
/// `ajv compile --spec=draft2020 --strict=true` refused; they are ranges now.
#[test]
fn schemas_use_only_standard_formats() {
    for kind in SchemaKind::ALL {
        let schema: serde_json::Value =
            serde_json::from_str(&schema_json(kind)).expect("schema is JSON");
        let mut found = Vec::new();
        formats_and_integers(&schema, "", &mut found);
        for (ptr, format) in &found {
            assert!(
                format
                    .as_str()
                    .is_some_and(|f| STANDARD_FORMATS.contains(&f)),
                "{}: `format: {format}` at {ptr} is not a standard format",
                kind.file_name()
            );
        }
    }
    // The ranges the integer formats stood for are kept.
    let config: serde_json::Value =
        serde_json::from_str(&schema_json(SchemaKind::Config)).expect("json");
    let on_status = &config["$defs"]["RetryPolicy"]["properties"]["on_status"]["items"];
    assert_eq!(
        (&on_status["minimum"], &on_status["maximum"]),
        (&0.into(), &65535.into())
    );
    let attempts = &config["$defs"]["RetryPolicy"]["properties"]["attempts"];
    assert_eq!(attempts["maximum"], u64::from(u32::MAX));
}
