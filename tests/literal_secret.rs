//! A secret written literally in dsrctl.yaml is named as such and never echoed: not in
//! the message, the help, the source line of human output, JSON, SARIF or GitHub
//! annotations.

mod common;

use common::{CONFIG, TWINS, TestProject, with_code};
use dsrctl::load::Diagnostics;

const TOKEN: &str = "hunter2-bearer-token";
const PASSWORD: &str = "s3cr3t-db-password";
const API_KEY: &str = "k-9f8e7d6c5b4a";

fn broken() -> Diagnostics {
    let config = CONFIG
        .replace(
            "        base_url: https://adt.example.com\n",
            &format!(
                "        base_url: https://adt.example.com\n        auth: {{ type: bearer, token: {TOKEN} }}\n        headers: {{ x-api-key: {API_KEY} }}\n"
            ),
        )
        .replace(
            "url: { env: SHOP_DB_URL }",
            &format!("url: postgres://shop:{PASSWORD}@db/shop"),
        );
    TestProject::new()
        .file("dsrctl.yaml", &config)
        .file("policies/twins.yaml", TWINS)
        .validate()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [TOKEN, PASSWORD, API_KEY] {
        assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
    }
}

/// A literal token used to be "has none of the valid shapes (found a string)", with the
/// token itself in the source line printed into the CI log.
#[test]
fn a_literal_secret_is_named_as_such() {
    let d = broken();
    let found = with_code(&d, "literal-secret");
    assert_eq!(found.len(), 3, "{}", d.render_human(false));
    assert_eq!(
        d.len(),
        3,
        "one finding per secret:\n{}",
        d.render_human(false)
    );
    let token = found
        .iter()
        .find(|f| f.line == 7)
        .expect("the token's finding");
    assert_eq!(
        token.message,
        "`token` is written literally; secrets must be references: `{ env: NAME }` or `{ file: PATH }`"
    );
}

#[test]
fn human_output_never_shows_the_secret() {
    let text = broken().render_human(false);
    assert_no_secret("human output", &text);
    assert!(
        text.contains("auth: { type: bearer, token: ********************"),
        "{text}"
    );
    assert_no_secret("coloured human output", &broken().render_human(true));
}

#[test]
fn json_never_shows_the_secret() {
    assert_no_secret("JSON", &broken().render_json());
}

#[test]
fn sarif_never_shows_the_secret() {
    assert_no_secret("SARIF", &broken().render_sarif());
}

#[test]
fn github_annotations_never_show_the_secret() {
    assert_no_secret("GitHub annotations", &broken().render_github());
}

/// Also when the line holding the secret has another mistake reported on it.
#[test]
fn a_secret_on_a_line_with_another_mistake_is_not_shown() {
    let config = CONFIG.replace(
        "        base_url: https://adt.example.com\n",
        &format!(
            "        base_url: https://adt.example.com\n        auth: {{ type: bearer, token: {TOKEN}, scope: x }}\n"
        ),
    );
    let d = TestProject::new()
        .file("dsrctl.yaml", &config)
        .file("policies/twins.yaml", TWINS)
        .validate();
    assert!(
        with_code(&d, "unknown-key").len() == 1,
        "{}",
        d.render_human(false)
    );
    for text in [
        d.render_human(false),
        d.render_json(),
        d.render_sarif(),
        d.render_github(),
    ] {
        assert_no_secret("output", &text);
    }
}

/// A config that is not even valid YAML still does not show a secret on the line its syntax
/// error points at.
#[test]
fn a_secret_on_the_line_of_a_yaml_syntax_error_is_not_shown() {
    let config = CONFIG.replace(
        "        base_url: https://adt.example.com\n",
        &format!("        base_url: https://adt.example.com\n        auth: {{ type: bearer, token: {TOKEN} ]\n"),
    );
    let d = TestProject::new()
        .file("dsrctl.yaml", &config)
        .file("policies/twins.yaml", TWINS)
        .validate();
    let f = with_code(&d, "yaml-syntax");
    assert_eq!(f.len(), 1, "{}", d.render_human(false));
    assert_eq!(f[0].line, 7, "{}", d.render_human(false));
    for text in [
        d.render_human(false),
        d.render_json(),
        d.render_sarif(),
        d.render_github(),
    ] {
        assert_no_secret("output", &text);
    }
}
