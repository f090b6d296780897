//! Snapshots of what users read: human findings with a source line and caret, SARIF,
//! GitHub annotations and JSON.

mod common;

use common::{TWINS, TestProject};
use dsrctl::load::{Code, Diagnostics};

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
    let mut v: serde_json::Value = serde_json::from_str(&sarif).expect("json");
    assert_eq!(v["version"], "2.1.0");
    v["runs"][0]["tool"]["driver"]["version"] = "[version]".into();
    // The rules are the whole table, checked in `sarif_rules_are_the_whole_table`.
    let rules = &mut v["runs"][0]["tool"]["driver"]["rules"];
    assert_eq!(rules.as_array().map(Vec::len), Some(Code::ALL.len()));
    *rules = "[every code]".into();
    insta::assert_snapshot!(serde_json::to_string_pretty(&v).expect("json"));
}

/// Code scanning explains a finding from its rule; the rules used to be only the codes that
/// occurred, named by their code alone.
#[test]
fn sarif_rules_are_the_whole_table() {
    let v: serde_json::Value = serde_json::from_str(&broken().render_sarif()).expect("json");
    let driver = &v["runs"][0]["tool"]["driver"];
    let rules = driver["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), Code::ALL.len());
    for (rule, code) in rules.iter().zip(Code::ALL) {
        assert_eq!(rule["id"], code.as_str());
        assert_eq!(rule["shortDescription"]["text"], code.summary());
        let full = rule["fullDescription"]["text"].as_str().expect("full");
        assert!(
            !full.is_empty() && code.explanation().replace('\n', " ").starts_with(full),
            "{code}: {full}"
        );
        assert_eq!(rule["help"]["text"], code.explanation());
    }
    let results = v["runs"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 4);
    for r in results {
        let i = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
    }
}

#[test]
fn github_rendering() {
    insta::assert_snapshot!(broken().render_github());
}

#[test]
fn json_rendering() {
    let v: serde_json::Value = serde_json::from_str(&broken().render_json()).expect("json");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["errors"], 4);
    assert_eq!(v["diagnostics"][0]["file"], PATH);
    assert!(v["diagnostics"][0]["line"].as_u64().is_some());
}
