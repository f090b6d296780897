//! Snapshots of what users read: human findings with a source line and caret, SARIF,
//! GitHub annotations and JSON.

mod common;

use common::{TWINS, TestProject};
use dsrctl::load::Diagnostics;

const PATH: &str = "policies/azure/digital-twins.yaml";

fn broken() -> Diagnostics {
    let bad = TWINS
        .replace(
            "      needs: [drop-incoming]",
            "      neeeds: [drop-incoming]",
        )
        .replace(
            "  rectify: { unsupported: \"twins hold device data only\" }",
            "  rectify: nope",
        )
        .replace(
            "    - id: incoming\n",
            "    - id: incoming\n      needs: [drop-incoming]\n",
        );
    TestProject::new()
        .file(PATH, &bad)
        .file(
            "policies/other.yaml",
            "service: other\nconnector: adt\ndsr:\n\taccess: []\n",
        )
        .validate()
}

#[test]
fn human_rendering() {
    insta::assert_snapshot!(broken().render_human(false));
}

#[test]
fn human_rendering_with_colour_has_escapes() {
    let text = broken().render_human(true);
    assert!(text.contains("\u{1b}["));
}

#[test]
fn sarif_rendering() {
    let sarif = broken().render_sarif();
    let v: serde_json::Value = serde_json::from_str(&sarif).expect("json");
    assert_eq!(v["version"], "2.1.0");
    let own_version = format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    insta::assert_snapshot!(sarif.replace(&own_version, "\"version\": \"[version]\""));
}

#[test]
fn github_rendering() {
    insta::assert_snapshot!(broken().render_github());
}

#[test]
fn json_rendering() {
    let v: serde_json::Value = serde_json::from_str(&broken().render_json()).expect("json");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["errors"], 3);
    assert_eq!(v["diagnostics"][0]["file"], PATH);
    assert!(v["diagnostics"][0]["line"].as_u64().is_some());
}
