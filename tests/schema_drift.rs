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
