//! The committed OpenAPI document of the HTTP API matches the one generated from the handlers
//! and their types.

use std::path::Path;

#[test]
fn committed_openapi_matches_the_handlers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json");
    let generated = dsrctl::cli::serve::openapi_json();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/openapi.json differs from the API; run `cargo run -- schema --write` to regenerate"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/requests",
        "/v1/requests/{id}/approve",
        "/v1/runs/{run}/tasks/{step}/done",
        "/v1/runs/{run}/package",
        "/metrics",
        "/.well-known/data-rights.json",
        "/v1/agent/{agent_id}",
        "/v1/data-rights-request",
        "/v1/data-rights-request/{request_id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}
