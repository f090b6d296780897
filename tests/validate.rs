//! `dsrctl validate` through the library: findings point at file:line:col, say what would be
//! valid, and every problem of every file is collected.

mod common;

use common::{CONFIG, TWINS, TestProject, one, with_code};
use dsrctl::load::{Severity, load_project, load_request_str};

const TWINS_PATH: &str = "policies/azure/digital-twins.yaml";

#[test]
fn valid_project_loads_with_digests() {
    let p = TestProject::new().file(TWINS_PATH, TWINS);
    let project = load_project(p.root()).unwrap_or_else(|d| panic!("{}", d.render_human(false)));
    assert_eq!(project.config_file, "dsrctl.yaml");
    assert_eq!(project.playbooks.len(), 1);
    assert_eq!(project.playbooks[0].path, TWINS_PATH);
    assert_eq!(project.playbooks[0].playbook.service, "azure-digital-twins");
    let keys: Vec<&str> = project.inputs.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["dsrctl.yaml", TWINS_PATH]);
    assert!(project.inputs.values().all(|h| h.len() == 64));
    assert!(
        p.validate().is_empty(),
        "{}",
        p.validate().render_human(false)
    );
}

#[test]
fn misspelt_key_prints_file_line_col_and_nearest_key() {
    let bad = TWINS.replace(
        "      needs: [drop-incoming]",
        "      neeeds: [drop-incoming]",
    );
    let p = TestProject::new().file(TWINS_PATH, &bad);
    let d = p.validate();
    let f = one(&d, "unknown-key");
    assert_eq!((f.file.as_str(), f.line, f.col), (TWINS_PATH, 26, 7));
    assert_eq!(f.key.as_deref(), Some("neeeds"));
    assert_eq!(f.label.as_deref(), Some("did you mean `needs`?"));
    assert!(f.help.as_deref().unwrap_or("").contains("needs, after"));
    let text = d.render_human(false);
    assert!(
        text.contains("--> policies/azure/digital-twins.yaml:26:7"),
        "{text}"
    );
    assert!(
        text.contains("unknown key `neeeds` in step `drop-twin`"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "error: 1 problem in 1 file\nfor more about a code, try `dsrctl explain unknown-key`\n"
        ),
        "{text}"
    );
    assert!(load_project(p.root()).is_err());
}

#[test]
fn errors_are_collected_from_all_files() {
    let p = TestProject::new()
        .file(
            "policies/a.yaml",
            &TWINS.replace("service: azure-digital-twins", "servic: a"),
        )
        .file(
            "policies/b.yaml",
            &TWINS.replace("method: DELETE", "method: DELET"),
        )
        .file("policies/c.yaml", "service: [\n");
    let d = p.validate();
    assert!(d.has_errors());
    assert_eq!(d.file_count(), 3, "{}", d.render_human(false));
    assert_eq!(with_code(&d, "unknown-key").len(), 1);
    assert_eq!(
        with_code(&d, "unknown-value").len(),
        2,
        "both DELETEs are misspelt"
    );
    assert_eq!(with_code(&d, "yaml-syntax").len(), 1);
    let text = d.render_human(false);
    assert!(text.contains("in 3 files\n"), "{text}");
}

#[test]
fn kind_with_no_valid_shape_lists_the_three_shapes() {
    let bad = TWINS.replace(
        "  rectify: { unsupported: \"twins hold device data only\" }",
        "  rectify: \"no\"",
    );
    let d = TestProject::new().file(TWINS_PATH, &bad).validate();
    let f = one(&d, "wrong-shape");
    let help = f.help.as_deref().unwrap_or("");
    assert!(help.contains("a list of steps"), "{help}");
    assert!(help.contains("same_as"), "{help}");
    assert!(help.contains("unsupported"), "{help}");
    assert!(f.message.contains("`dsr.rectify`"), "{}", f.message);
}

#[test]
fn wrong_connector_kind_tag_names_valid_kinds() {
    let config = CONFIG.replace("kind: sql", "kind: sqll");
    let d = TestProject::new()
        .file("dsrctl.yaml", &config)
        .file(TWINS_PATH, TWINS)
        .validate();
    let f = one(&d, "unknown-value");
    assert_eq!(f.file, "dsrctl.yaml");
    assert_eq!(f.label.as_deref(), Some("did you mean `sql`?"));
}

#[test]
fn step_references_and_cycles() {
    let bad = TWINS
        .replace("needs: [drop-incoming]", "needs: [drop-incomin]")
        .replace(
            "    - id: incoming\n",
            "    - id: incoming\n      needs: [drop-incoming]\n",
        );
    let d = TestProject::new().file(TWINS_PATH, &bad).validate();
    let unknown = one(&d, "unknown-step");
    assert_eq!(
        unknown.label.as_deref(),
        Some("did you mean `drop-incoming`?")
    );
    let cycle = one(&d, "dependency-cycle");
    assert!(
        cycle
            .message
            .ends_with("drop-incoming -> incoming -> drop-incoming"),
        "{}",
        cycle.message
    );
}

#[test]
fn template_variables_resolve() {
    let bad = TWINS
        .replace(
            "{{seg subject.object_id}}\" }\n      absent_on",
            "{{seg subject.email}}\" }\n      absent_on",
        )
        .replace(
            "/digitaltwins/{{seg subject.object_id}}/incoming",
            "/digitaltwins/{{subject.object_id}}/incoming",
        )
        .replace(
            "preview: { none: \"the twin was listed by the export\" }",
            "preview: { none: \"{{item}}\" }",
        );
    let d = TestProject::new().file(TWINS_PATH, &bad).validate();
    let f = one(&d, "undeclared-identity");
    assert_eq!((f.line, f.col), (9, 55));
    let f = one(&d, "unencoded-path-variable");
    assert_eq!(
        f.help.as_deref(),
        Some("use `{{seg subject.object_id}}` so the value is encoded as one path segment")
    );
    one(&d, "item-outside-for-each");
}

#[test]
fn mutation_without_preview_and_raw_sql() {
    let bad = TWINS.replace(
        "      preview: { none: \"the twin was listed by the export\" }\n",
        "",
    );
    let extra = "    - id: purge\n      connector: shop\n      sql: { execute: \"DELETE FROM t WHERE e = :e\", params: { e: \"{{subject.object_id}}\" } }\n";
    let bad = bad.replace(
        "  access: { same_as",
        &format!("{extra}  access: {{ same_as"),
    );
    let d = TestProject::new().file(TWINS_PATH, &bad).validate();
    assert_eq!(
        with_code(&d, "missing-preview").len(),
        2,
        "{}",
        d.render_human(false)
    );
}

#[test]
fn kinds_connectors_and_services() {
    let other = TWINS
        .replace("connector: adt", "connector: shop")
        .replace("  access: { same_as: [export] }\n", "")
        .replace("same_as: [export, delete]", "same_as: [restrict]");
    let d = TestProject::new()
        .file(TWINS_PATH, TWINS)
        .file("policies/other.yaml", &other)
        .validate();
    one(&d, "duplicate-service");
    one(&d, "undeclared-kind");
    one(&d, "same-as-self");
    assert!(!with_code(&d, "connector-kind-mismatch").is_empty());
    assert!(
        d.iter().all(|x| x.file == "policies/other.yaml"),
        "{}",
        d.render_human(false)
    );
}

#[test]
fn unknown_identity_is_a_warning_and_the_project_still_loads() {
    let pb = TWINS.replace("[object_id]", "[object_id, twin_id]");
    let p = TestProject::new().file(TWINS_PATH, &pb);
    let project = load_project(p.root()).unwrap_or_else(|d| panic!("{}", d.render_human(false)));
    let w = one(&project.warnings, "identity-never-provided");
    assert_eq!(w.severity, Severity::Warning);
    assert!(
        p.validate()
            .render_human(false)
            .ends_with("warning: 1 warning in 1 file\nfor more about a code, try `dsrctl explain identity-never-provided`\n")
    );
}

#[test]
fn literal_secret_in_config_is_an_error() {
    let config = CONFIG.replace("{ env: SHOP_DB_URL }", "postgres://shop:hunter2@db/shop");
    let d = TestProject::new()
        .file("dsrctl.yaml", &config)
        .file(TWINS_PATH, TWINS)
        .validate();
    let f = one(&d, "literal-secret");
    assert_eq!((f.file.as_str(), f.line), ("dsrctl.yaml", 9));
}

#[test]
fn validate_paths_reports_only_the_selection() {
    let p = TestProject::new()
        .file("policies/good.yaml", TWINS)
        .file("policies/bad.yaml", "service: x\nconnectr: adt\n")
        .file("drafts/draft.yaml", "service: [\n");
    let d = p.validate_paths(&["policies/good.yaml"]);
    assert!(d.is_empty(), "{}", d.render_human(false));
    let d = p.validate_paths(&["drafts"]);
    assert_eq!(one(&d, "yaml-syntax").file, "drafts/draft.yaml");
    assert!(p.validate_paths(&["policies"]).has_errors());
}

#[test]
fn missing_config_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = load_project(dir.path()).expect_err("no config");
    assert_eq!(one(&d, "read-error").file, "dsrctl.yaml");
}

#[test]
fn requests_are_checked() {
    let ok = "id: r-1\nkind: delete\ntenant: contoso\nreceived: 2026-01-31\nsubject: { email: jane@example.com }\n";
    let r = load_request_str("requests/r-1.yaml", ok).expect("valid request");
    assert_eq!(r.id, "r-1");
    let d = load_request_str("r.yaml", "id: r-2\nkind: rectify\nsubject: {}\nsubjct: x\n")
        .expect_err("invalid");
    let f = one(&d, "unknown-key");
    assert_eq!((f.line, f.col), (4, 1));
    assert_eq!(f.label.as_deref(), Some("did you mean `subject`?"));
    let d = load_request_str("r.yaml", "id: r-2\nkind: rectify\nsubject: {}\n").expect_err("x");
    one(&d, "empty-subject");
    one(&d, "missing-corrections");
}

#[test]
fn thousands_of_files_load_without_hanging() {
    let mut p = TestProject::new();
    for i in 0..3000 {
        let pb = format!(
            "service: svc-{i}\nconnector: adt\nneeds_identities: [email]\ndsr:\n  export:\n    - id: read\n      \
             http: {{ method: GET, path: \"/u/{{{{seg subject.email}}}}\" }}\n  \
             access: {{ same_as: [export] }}\n  rectify: {{ unsupported: n/a }}\n  \
             restrict: {{ unsupported: n/a }}\n  delete: {{ unsupported: n/a }}\n"
        );
        p = p.file(&format!("policies/d{}/svc-{i}.yaml", i % 30), &pb);
    }
    let start = std::time::Instant::now();
    let project = load_project(p.root()).unwrap_or_else(|d| panic!("{}", d.render_human(false)));
    assert_eq!(project.playbooks.len(), 3000);
    assert!(start.elapsed().as_secs() < 60, "took {:?}", start.elapsed());
}

#[test]
fn request_dates_are_format_checked() {
    let d = load_request_str(
        "r.yaml",
        "id: r-3\nkind: delete\nreceived: 2026-13-45\nsubject: { email: a@b.c }\n",
    )
    .expect_err("invalid date");
    let f = one(&d, "invalid-format");
    assert_eq!((f.line, f.col), (3, 11));
}

fn waiting_playbook(service: &str, after: &str) -> String {
    format!(
        r#"service: {service}
connector: api
needs_identities: [email]
dsr:
  access: {{ unsupported: "test" }}
  export: {{ unsupported: "test" }}
  rectify: {{ unsupported: "test" }}
  restrict: {{ unsupported: "test" }}
  delete:
    - id: find
      http: {{ method: GET, path: /users }}
    - id: drop
      needs: [find]
      after: [{after}]
      http: {{ method: DELETE, path: /users/1 }}
"#
    )
}

/// Services that wait for each other (`after`) would make every deletion request fail to
/// compile: `validate` says so first, at the `after` entry, naming the loop.
#[test]
fn services_waiting_for_each_other_are_a_cycle() {
    let config = "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: http://127.0.0.1:9\n";
    let d = TestProject::new()
        .file("dsrctl.yaml", config)
        .file(
            "policies/alpha.yaml",
            &waiting_playbook("alpha", "beta/drop"),
        )
        .file("policies/beta.yaml", &waiting_playbook("beta", "alpha"))
        .validate();
    let cycle = one(&d, "after-cycle");
    assert!(
        cycle
            .message
            .contains("alpha/drop -> beta/drop -> alpha/drop"),
        "{}",
        cycle.message
    );
    assert_eq!(cycle.file, "policies/alpha.yaml");
    assert_eq!((cycle.line, cycle.col), (14, 15), "{cycle:?}");

    // One direction only: no cycle.
    let d = TestProject::new()
        .file("dsrctl.yaml", config)
        .file(
            "policies/alpha.yaml",
            &waiting_playbook("alpha", "beta/drop"),
        )
        .file(
            "policies/beta.yaml",
            &waiting_playbook("beta", "alpha").replace("      after: [alpha]\n", ""),
        )
        .validate();
    assert!(
        d.0.iter().all(|f| f.code != "after-cycle"),
        "{}",
        d.render_human(false)
    );
}
