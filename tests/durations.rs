//! Durations are typed when a file is loaded. Regression: `wait: { duration: "a month or so" }`
//! and `verify.after: "whenever"` used to pass `validate` and `plan --offline`, and the engine
//! then waited zero seconds.

mod common;

use common::{CONFIG, TWINS, TestProject};

const TWINS_PATH: &str = "policies/azure/digital-twins.yaml";

fn findings_at(p: &TestProject, file: &str) -> Vec<(usize, usize, String)> {
    p.validate()
        .iter()
        .filter(|d| d.file == file)
        .map(|d| (d.line, d.col, d.message.clone()))
        .collect()
}

#[test]
fn a_wait_that_is_not_a_duration_is_an_error_at_its_value() {
    let bad = TWINS.replace(
        "    - id: drop-twin\n",
        "    - id: grace\n      wait: { duration: \"a month or so\" }\n    - id: drop-twin\n",
    );
    let p = TestProject::new().file(TWINS_PATH, &bad);
    let found = findings_at(&p, TWINS_PATH);
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, col, message) = &found[0];
    assert_eq!((*line, *col), (26, 25), "{message}");
    assert!(message.contains("a month or so"), "{message}");
    assert!(dsrctl::load::load_project(p.root()).is_err());
}

#[test]
fn a_verification_delay_that_is_not_a_duration_is_an_error_at_its_value() {
    let bad = TWINS.replace(
        "expect_status: [404] }",
        "expect_status: [404], after: whenever }",
    );
    let p = TestProject::new().file(TWINS_PATH, &bad);
    let found = findings_at(&p, TWINS_PATH);
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, _, message) = &found[0];
    assert_eq!(*line, 29, "{message}");
    assert!(message.contains("whenever"), "{message}");
}

#[test]
fn a_config_timeout_that_is_not_a_duration_is_an_error_at_its_value() {
    let config = CONFIG.replace(
        "        base_url: https://adt.example.com\n",
        "        base_url: https://adt.example.com\n        timeout: soon\n",
    );
    let p = TestProject::new()
        .file("dsrctl.yaml", &config)
        .file(TWINS_PATH, TWINS);
    let found = findings_at(&p, "dsrctl.yaml");
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, col, message) = &found[0];
    assert_eq!((*line, *col), (7, 18), "{message}");
    assert!(message.contains("soon"), "{message}");
}

#[test]
fn durations_keep_their_text_in_the_plan() {
    let with_wait = TWINS.replace(
        "    - id: drop-twin\n",
        "    - id: grace\n      wait: { duration: 30d, reason: recycle bin }\n    - id: drop-twin\n",
    );
    let p = TestProject::new().file(TWINS_PATH, &with_wait);
    let project = dsrctl::load::load_project(p.root())
        .unwrap_or_else(|d| panic!("{}", d.render_human(false)));
    let wait = project.playbooks[0]
        .playbook
        .dsr
        .delete
        .as_ref()
        .and_then(|k| match k {
            dsrctl::model::KindSpec::Steps(steps) => steps.iter().find(|s| s.id == "grace"),
            _ => None,
        })
        .and_then(|s| s.wait.as_ref())
        .expect("the wait step");
    assert_eq!(
        wait.duration.get(),
        std::time::Duration::from_secs(30 * 86_400)
    );
    assert_eq!(
        serde_json::to_value(wait).expect("serialises"),
        serde_json::json!({ "duration": "30d", "reason": "recycle bin" })
    );
}

#[test]
fn a_unit_the_parser_does_not_know_is_an_error_at_its_value() {
    // A number and a word, but not a unit.
    let bad = TWINS.replace(
        "    - id: drop-twin\n",
        "    - id: grace\n      wait: { duration: 3 fortnights }\n    - id: drop-twin\n",
    );
    let p = TestProject::new().file(TWINS_PATH, &bad);
    let found = findings_at(&p, TWINS_PATH);
    assert_eq!(found.len(), 1, "{found:?}");
    let (line, col, message) = &found[0];
    assert_eq!((*line, *col), (26, 25), "{message}");
    assert!(
        message.contains("`3 fortnights`, which is not a duration"),
        "{message}"
    );
}
