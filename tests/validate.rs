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

/// The validation cache (`.dsrctl/validate.cache`) lets an unchanged playbook skip parsing;
/// it never hides a finding: what a warm run reports is what a cold run reports.
mod incremental {
    use super::*;
    use dsrctl::load::{CACHE_FILE, Cache, Diagnostics, validate_paths_with};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime};

    const CONFIG: &str = "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: http://127.0.0.1:9\n";

    /// A valid playbook whose step `drop` runs after `after`.
    fn playbook(service: &str, after: &str) -> String {
        waiting_playbook(service, after).replace(
            "      http: { method: DELETE, path: /users/1 }\n",
            "      http: { method: DELETE, path: /users/1 }\n      preview: { none: \"test\" }\n",
        )
    }

    /// A project of services `alpha` (waiting for `beta/drop`), `beta` and `gamma`, its files
    /// dated an hour back so the cache trusts their size and time.
    fn project() -> TestProject {
        let p = TestProject::new()
            .file("dsrctl.yaml", CONFIG)
            .file("policies/alpha.yaml", &playbook("alpha", "beta/drop"))
            .file(
                "policies/beta.yaml",
                &playbook("beta", "gamma").replace("      after: [gamma]\n", ""),
            )
            .file(
                "policies/gamma.yaml",
                &playbook("gamma", "beta").replace("      after: [beta]\n", ""),
            );
        for f in [
            "dsrctl.yaml",
            "policies/alpha.yaml",
            "policies/beta.yaml",
            "policies/gamma.yaml",
        ] {
            age(&p.root().join(f));
        }
        p
    }

    fn age(path: &Path) {
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(hour_ago))
            .expect("set mtime");
    }

    /// `dsrctl validate [PATH...]` as the command runs it: the cache read from the state
    /// directory, used, and written back.
    fn validate(p: &TestProject, paths: &[&str]) -> (Diagnostics, usize) {
        let state = p.root().join(".dsrctl");
        let mut cache = Cache::load(&state);
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        let d = validate_paths_with(p.root(), &paths, Some(&mut cache));
        cache.save(&state).expect("save the cache");
        (d, cache.parsed())
    }

    #[test]
    fn unchanged_files_are_not_parsed_again() {
        let p = project();
        let (d, parsed) = validate(&p, &[]);
        assert!(d.is_empty(), "{}", d.render_human(false));
        assert_eq!(parsed, 3);
        assert!(p.root().join(".dsrctl").join(CACHE_FILE).is_file());
        let (d, parsed) = validate(&p, &[]);
        assert!(d.is_empty(), "{}", d.render_human(false));
        assert_eq!(parsed, 0, "every file came from the cache");
        // One file changed: only it is parsed again.
        let gamma = p.root().join("policies/gamma.yaml");
        let text = std::fs::read_to_string(&gamma).expect("read");
        std::fs::write(&gamma, text.replace("path: /users/1", "path: /people/1")).expect("write");
        let (d, parsed) = validate(&p, &[]);
        assert!(d.is_empty(), "{}", d.render_human(false));
        assert_eq!(parsed, 1);
    }

    /// `alpha` is unchanged and cached clean; `beta` loses the step `alpha` waits for. The
    /// finding is in `alpha`, at its `after` entry, on the warm run as on a cold one.
    #[test]
    fn a_step_removed_from_another_file_is_reported_in_the_cached_one() {
        let p = project();
        assert!(validate(&p, &[]).0.is_empty());
        let beta = p.root().join("policies/beta.yaml");
        let text = std::fs::read_to_string(&beta).expect("read");
        std::fs::write(&beta, text.replace("id: drop", "id: erase")).expect("write");
        let (warm, parsed) = validate(&p, &[]);
        assert_eq!(parsed, 1, "only beta is parsed again");
        let f = one(&warm, "unknown-step");
        assert_eq!(f.file, "policies/alpha.yaml");
        assert_eq!((f.line, f.col), (14, 15), "{f:?}");
        assert_eq!(f.source_line.as_deref(), Some("      after: [beta/drop]"));
        let cold = p.validate();
        assert_eq!(warm, cold, "a warm run reports what a cold run reports");
        // `validate policies/beta.yaml` shows the file that refers to it.
        let (d, _) = validate(&p, &["policies/beta.yaml"]);
        assert_eq!(one(&d, "unknown-step").file, "policies/alpha.yaml");
    }

    /// A connector renamed in dsrctl.yaml: every cached playbook that uses it is reported.
    #[test]
    fn a_connector_renamed_in_the_config_is_reported_in_cached_playbooks() {
        let p = project();
        assert!(validate(&p, &[]).0.is_empty());
        std::fs::write(
            p.root().join("dsrctl.yaml"),
            CONFIG.replace("api:", "rest:"),
        )
        .expect("write");
        let (warm, parsed) = validate(&p, &[]);
        assert_eq!(
            parsed, 3,
            "a new config is a new context: every file is checked again"
        );
        let files: Vec<&str> = with_code(&warm, "unknown-connector")
            .iter()
            .map(|f| f.file.as_str())
            .collect();
        assert_eq!(
            files,
            vec![
                "policies/alpha.yaml",
                "policies/beta.yaml",
                "policies/gamma.yaml"
            ],
            "{}",
            warm.render_human(false)
        );
        assert_eq!(warm, p.validate());
        // `validate dsrctl.yaml` shows what playbooks take from it.
        let (d, _) = validate(&p, &["dsrctl.yaml"]);
        assert_eq!(
            with_code(&d, "unknown-connector").len(),
            3,
            "{}",
            d.render_human(false)
        );
    }

    /// Renaming a service: `validate` of that file shows the playbook that still names the
    /// old one (known from the cache).
    #[test]
    fn a_renamed_service_shows_who_still_waits_for_it() {
        let p = project();
        assert!(validate(&p, &[]).0.is_empty());
        let beta = p.root().join("policies/beta.yaml");
        let text = std::fs::read_to_string(&beta).expect("read");
        std::fs::write(&beta, text.replace("service: beta", "service: bravo")).expect("write");
        let (d, _) = validate(&p, &["policies/beta.yaml"]);
        let f = one(&d, "unknown-service");
        assert_eq!((f.file.as_str(), f.line), ("policies/alpha.yaml", 14));
    }

    /// A cache that is garbage, of the earlier JSON format or another format, cut short
    /// (a run stopped while appending to it), or damaged is ignored and written anew.
    #[test]
    fn a_corrupt_or_foreign_cache_is_ignored_and_rebuilt() {
        // delta has a finding of its own, which the cache keeps.
        let p = project().file("policies/delta.yaml", "service: delta\nconnectr: api\n");
        let beta = p.root().join("policies/beta.yaml");
        let text = std::fs::read_to_string(&beta).expect("read");
        std::fs::write(&beta, text.replace("id: drop", "id: erase")).expect("write");
        let cold = p.validate();
        assert!(cold.has_errors());
        let state = p.root().join(".dsrctl");
        let (d, parsed) = validate(&p, &[]);
        assert_eq!((d, parsed), (cold.clone(), 4));
        let good = std::fs::read(state.join(CACHE_FILE)).expect("read the cache");
        let mut flipped = good.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x01;
        let mut other_format = good.clone();
        other_format[8] = 99;
        let junk: Vec<(&str, Vec<u8>)> = vec![
            ("garbage", b"not a cache at all".to_vec()),
            ("empty", Vec::new()),
            (
                "the JSON format of dsrctl before",
                br#"{"format":1,"context":"x","entries":{}}"#.to_vec(),
            ),
            ("another format", other_format),
            ("cut short", good[..good.len() - 3].to_vec()),
            ("one bit flipped", flipped),
        ];
        for (what, bytes) in junk {
            std::fs::write(state.join(CACHE_FILE), &bytes).expect("write junk");
            assert_eq!(Cache::load(&state).len(), 0, "{what} is not used");
            let (d, parsed) = validate(&p, &[]);
            assert_eq!(d, cold, "with a cache that is {what}");
            assert_eq!(parsed, 4, "with a cache that is {what}");
            assert_eq!(Cache::load(&state).len(), 4, "{what}: rebuilt");
            assert_eq!(validate(&p, &[]), (cold.clone(), 0), "{what}: then used");
        }
    }

    /// A run that checked one file again appends its entry instead of writing every entry
    /// again; the next run takes the new entry, and reports what a cold run reports.
    #[test]
    fn a_changed_file_is_appended_and_checked_again() {
        let p = project();
        assert_eq!(validate(&p, &[]), (Diagnostics::default(), 3));
        let file = p.root().join(".dsrctl").join(CACHE_FILE);
        let before = std::fs::read(&file).expect("read the cache");
        let gamma = p.root().join("policies/gamma.yaml");
        let text = std::fs::read_to_string(&gamma).expect("read");
        std::fs::write(&gamma, text.replace("connector: api", "connector: rest")).expect("write");
        age(&gamma);
        let (d, parsed) = validate(&p, &[]);
        assert_eq!(parsed, 1);
        assert_eq!(one(&d, "unknown-connector").file, "policies/gamma.yaml");
        let after = std::fs::read(&file).expect("read the cache");
        assert!(
            after.len() > before.len() && after.starts_with(&before),
            "the entry is appended"
        );
        // The appended entry is the one used: nothing parsed, the finding kept.
        let (warm, parsed) = validate(&p, &[]);
        assert_eq!((warm.clone(), parsed), (d, 0));
        assert_eq!(warm, p.validate());
        // Fixed again: checked again, and clean.
        std::fs::write(&gamma, text).expect("write");
        age(&gamma);
        assert_eq!(validate(&p, &[]), (Diagnostics::default(), 1));
        assert_eq!(validate(&p, &[]), (Diagnostics::default(), 0));
    }

    /// A deleted playbook's entry is dropped from the cache, and what referred to it is
    /// reported on the warm run as on a cold one.
    #[test]
    fn a_deleted_file_is_dropped_from_the_cache() {
        let p = project();
        assert_eq!(validate(&p, &[]).1, 3);
        std::fs::remove_file(p.root().join("policies/beta.yaml")).expect("delete beta");
        let (warm, parsed) = validate(&p, &[]);
        assert_eq!(parsed, 0, "the others are unchanged");
        assert_eq!(one(&warm, "unknown-service").file, "policies/alpha.yaml");
        assert_eq!(warm, p.validate());
        let state = p.root().join(".dsrctl");
        assert_eq!(Cache::load(&state).len(), 2, "beta's entry is gone");
        assert_eq!(validate(&p, &[]), (warm, 0));
    }
}

// Regression: an identity named only by a dataset's column was reported at the top of the
// file (`service:`), with no hint of the column or the identity meant.
#[test]
fn a_datasets_unknown_identity_points_at_its_column() {
    let shop = "service: shop\nconnector: shop\ndataset:\n  tables:\n    customer:\n      columns:\n        id:\n        email: { identity: emial, category: user.contact.email }\ndsr:\n  rectify: { unsupported: \"by hand\" }\n";
    let p = TestProject::new()
        .file(TWINS_PATH, TWINS)
        .file("policies/shop.yaml", shop);
    let d = p.validate();
    let w = one(&d, "identity-never-provided");
    assert_eq!(
        (w.file.as_str(), w.line),
        ("policies/shop.yaml", 8),
        "{w:?}"
    );
    assert!(
        d.render_human(false).contains("did you mean `email`?"),
        "{}",
        d.render_human(false)
    );
}
