//! `dsrctl validate` on a whole project finds every mistake in one round: requests are
//! checked too, each file is checked in its role, every check runs on every file it can,
//! and an error that follows from another is not reported again.

mod common;

use common::{CONFIG, TWINS, TestProject, one, with_code};
use dsrctl::load::{Diagnostics, Severity};

/// (file, code) of every finding, sorted.
fn found(d: &Diagnostics) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = d
        .iter()
        .map(|f| (f.file.clone(), f.code.as_str().to_owned()))
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
        .collect();
    v.sort();
    v
}

const REQUEST: &str = "\
id: r-1
kind: delete
tenant: contoso
received: 2026-01-31
subject: { email: jane@example.com, object_id: 0b1c }
";

/// Nine mistakes in four files: schema errors used to stop the checks of meaning for their
/// file (and a config with one stopped every connector check), requests were not checked,
/// so `validate` reported three of them and the rest one round at a time.
#[test]
fn nine_mistakes_give_nine_findings() {
    let config = CONFIG.replace(
        "        base_url: https://adt.example.com\n",
        "        base_url: https://adt.example.com\n        auth: { type: bearer, token: hunter2-token }\n",
    );
    let a = TWINS
        // 1. schema: a misspelt key
        .replace(
            "      needs: [drop-incoming]",
            "      neeeds: [drop-incoming]",
        )
        // 2. meaning: a mutation without preview
        .replace(
            "      preview: { none: \"the twin was listed by the export\" }\n",
            "",
        )
        // 3. meaning: a subject value in a URL path without `seg`
        .replace(
            "path: \"/digitaltwins/{{seg subject.object_id}}/incomingrelationships\"",
            "path: \"/digitaltwins/{{subject.object_id}}/incomingrelationships\"",
        );
    let b = TWINS
        .replace("service: azure-digital-twins", "service: twins-b")
        // 4. meaning: a connector no tenant defines
        .replace("connector: adt", "connector: adtt")
        // 5. schema: a kind with none of the valid shapes
        .replace(
            "  rectify: { unsupported: \"twins hold device data only\" }",
            "  rectify: nope",
        );
    // 6. a literal secret (above); 7.–9. a request with an unknown kind, an unknown tenant
    // and an email address without `@`.
    let request =
        "id: r-1\nkind: obliterate\ntenant: contosoo\nsubject: { email: jane.example.com }\n";
    let d = TestProject::new()
        .file("dsrctl.yaml", &config)
        .file("policies/a.yaml", &a)
        .file("policies/b.yaml", &b)
        .file("requests/r-1.yaml", request)
        .validate();
    insta::assert_snapshot!(d.render_human(false));
    assert_eq!(
        found(&d),
        pairs(&[
            ("dsrctl.yaml", "literal-secret"),
            ("policies/a.yaml", "unknown-key"),
            ("policies/a.yaml", "missing-preview"),
            ("policies/a.yaml", "unencoded-path-variable"),
            ("policies/b.yaml", "unknown-connector"),
            ("policies/b.yaml", "wrong-shape"),
            ("requests/r-1.yaml", "unknown-value"),
            ("requests/r-1.yaml", "unknown-tenant"),
            ("requests/r-1.yaml", "invalid-identity"),
        ]),
        "{}",
        d.render_human(false)
    );
}

const ENTRA: &str = r#"service: entra-users
connector: adt
needs_identities: [email]
dsr:
  access: { unsupported: "n/a" }
  export: { unsupported: "n/a" }
  rectify: { unsupported: "n/a" }
  restrict: { unsupported: "n/a" }
  delete:
    - id: find-user
      http: { method: GET, path: /users, query: { $filter: "mail eq '{{odata subject.email}}'" } }
      capture: { id: /value/0/id }
    - id: soft-delete
      needs: [find-user]
      http: { method: DELETE, path: "/users/{{seg find-user.id}}" }
      preview: { step: find-user }
      verify: { http: { method: GET, path: "/users/{{seg find-user.id}}" }, expect_status: [404] }
"#;

/// A misspelt `needs` entry used to add three more errors: every use of the step it meant
/// (the path, the preview, the verification) was "not needed".
#[test]
fn one_unknown_step_in_needs_is_one_error() {
    let bad = ENTRA.replace("needs: [find-user]", "needs: [find-usr]");
    let d = TestProject::new()
        .file("policies/entra.yaml", &bad)
        .validate();
    assert_eq!(
        found(&d),
        pairs(&[("policies/entra.yaml", "unknown-step")]),
        "{}",
        d.render_human(false)
    );
    assert_eq!(
        one(&d, "unknown-step").label.as_deref(),
        Some("did you mean `find-user`?")
    );
    // Without the need at all, each use is still reported.
    let missing = ENTRA.replace("      needs: [find-user]\n", "");
    let d = TestProject::new()
        .file("policies/entra.yaml", &missing)
        .validate();
    assert_eq!(
        with_code(&d, "step-not-needed").len(),
        2,
        "{}",
        d.render_human(false)
    );
    assert_eq!(with_code(&d, "preview-not-needed").len(), 1);
}

/// A kind with a wrong shape is reported once: not also as undeclared.
#[test]
fn a_broken_kind_is_not_also_undeclared() {
    let bad = ENTRA.replace("  rectify: { unsupported: \"n/a\" }", "  rectify: nope");
    let d = TestProject::new()
        .file("policies/entra.yaml", &bad)
        .validate();
    assert_eq!(
        found(&d),
        pairs(&[("policies/entra.yaml", "wrong-shape")]),
        "{}",
        d.render_human(false)
    );
}

/// A misspelt HTTP method is reported once, and the step is still checked as the DELETE
/// it nearly is.
#[test]
fn a_misspelt_method_still_gets_the_checks_of_its_step() {
    let bad = ENTRA
        .replace("method: DELETE", "method: DELET")
        .replace("      preview: { step: find-user }\n", "");
    let d = TestProject::new()
        .file("policies/entra.yaml", &bad)
        .validate();
    assert_eq!(
        found(&d),
        pairs(&[
            ("policies/entra.yaml", "unknown-value"),
            ("policies/entra.yaml", "missing-preview"),
        ]),
        "{}",
        d.render_human(false)
    );
}

/// A broken connector in dsrctl.yaml is reported there, not again as unknown in every
/// playbook that uses it.
#[test]
fn a_broken_connector_is_not_also_unknown() {
    let config = CONFIG.replace(
        "        base_url: https://adt.example.com\n",
        "        base_url: [https://adt.example.com]\n",
    );
    let d = TestProject::new()
        .file("dsrctl.yaml", &config)
        .file("policies/entra.yaml", ENTRA)
        .validate();
    assert_eq!(
        found(&d),
        pairs(&[("dsrctl.yaml", "wrong-type")]),
        "{}",
        d.render_human(false)
    );
}

/// A playbook that cannot be read at all may define the service another one waits for.
#[test]
fn after_a_playbook_that_cannot_be_read_is_not_unknown() {
    let waits = ENTRA
        .replace("service: entra-users", "service: crm")
        .replace(
            "    - id: soft-delete\n",
            "    - id: soft-delete\n      after: [billing]\n",
        );
    let d = TestProject::new()
        .file("policies/crm.yaml", &waits)
        .file("policies/billing.yaml", "service: billing\ndsr: [\n")
        .validate();
    assert_eq!(
        found(&d),
        pairs(&[("policies/billing.yaml", "yaml-syntax")]),
        "{}",
        d.render_human(false)
    );
}

#[test]
fn a_valid_request_passes_whole_project_validate() {
    let d = TestProject::new()
        .file("policies/twins.yaml", TWINS)
        .file("requests/r-1.yaml", REQUEST)
        .validate();
    assert!(d.is_empty(), "{}", d.render_human(false));
}

/// `dsrctl validate requests/delete-alice.yaml` checked the request as a playbook and
/// reported nine errors for a valid file.
#[test]
fn a_request_passed_by_path_is_checked_as_a_request() {
    let p = TestProject::new()
        .file("policies/twins.yaml", TWINS)
        .file("requests/r-1.yaml", REQUEST)
        .file("inbox/r-2.yaml", &REQUEST.replace("r-1", "r-2"))
        .file(
            "inbox/r-3.yaml",
            &REQUEST.replace("tenant: contoso", "tenant: fabrikam"),
        );
    let d = p.validate_paths(&["requests/r-1.yaml"]);
    assert!(d.is_empty(), "{}", d.render_human(false));
    // Outside `requests/`, by its content.
    let d = p.validate_paths(&["inbox/r-2.yaml"]);
    assert!(d.is_empty(), "{}", d.render_human(false));
    let d = p.validate_paths(&["inbox"]);
    assert_eq!(
        found(&d),
        pairs(&[("inbox/r-3.yaml", "unknown-tenant")]),
        "{}",
        d.render_human(false)
    );
    let f = one(&d, "unknown-tenant");
    assert_eq!((f.line, f.col), (3, 9));
    assert_eq!(f.help.as_deref(), Some("tenants in dsrctl.yaml: contoso"));
}

/// A request among the playbooks is named as such, instead of as nine missing and unknown
/// playbook keys.
#[test]
fn a_request_in_a_playbook_directory_is_one_pointed_error() {
    let d = TestProject::new()
        .file("policies/twins.yaml", TWINS)
        .file("policies/r-1.yaml", REQUEST)
        .validate();
    assert_eq!(
        found(&d),
        pairs(&[("policies/r-1.yaml", "misplaced-file")]),
        "{}",
        d.render_human(false)
    );
    assert_eq!(
        one(&d, "misplaced-file").message,
        "`policies/r-1.yaml` is a request, but it is in the playbook directory `policies`"
    );
}

#[test]
fn identity_formats_are_checked_with_a_pointed_error() {
    let cases = [
        (
            "email: jane.example.com",
            "`email` is not an email address: it has no `@`",
        ),
        (
            "email: \"@example.com\"",
            "`email` is not an email address: nothing comes before the `@`",
        ),
        (
            "email: \"jane@\"",
            "`email` is not an email address: nothing comes after the `@`",
        ),
        (
            "email: \"Jane <jane@example.com>\"",
            "`email` is not an email address: write the address alone",
        ),
        (
            "user_principal_name: jane",
            "`user_principal_name` is not a user principal name (name@domain): it has no `@`",
        ),
        (
            "phone: call me",
            "`phone` is not a phone number: only digits, spaces, `+`, `-`, `.` and brackets",
        ),
        (
            "email: \" jane@example.com\"",
            "`email` has spaces at its start or end",
        ),
    ];
    for (subject, message) in cases {
        let text = format!("id: r-1\nkind: delete\ntenant: contoso\nsubject: {{ {subject} }}\n");
        let d = dsrctl::load::load_request_str("r.yaml", &text).expect_err(subject);
        let f = one(&d, "invalid-identity");
        assert_eq!(f.message, message, "{subject}");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.line, 4, "{subject}");
        // The value is personal data: the message does not repeat it.
        assert!(!f.message.contains("jane."), "{}", f.message);
    }
    for ok in [
        "email: jane@example.com",
        "email: [a@example.com, b@example.org]",
        "phone: +44 (20) 7946-0958",
        "user_principal_name: jane@contoso.onmicrosoft.com",
        "device_ids: [dev-1, dev-2]",
    ] {
        let text = format!("id: r-1\nkind: delete\ntenant: contoso\nsubject: {{ {ok} }}\n");
        dsrctl::load::load_request_str("r.yaml", &text)
            .unwrap_or_else(|d| panic!("{ok}: {}", d.render_human(false)));
    }
}

/// An identity a service needs that the request does not give and no running service
/// discovers: the service would be skipped, which validate says ahead.
#[test]
fn identities_the_playbooks_need_are_given_or_discovered() {
    let phone = ENTRA
        .replace("service: entra-users", "service: sms")
        .replace("needs_identities: [email]", "needs_identities: [phone]")
        .replace("{{odata subject.email}}", "{{odata subject.phone}}");
    let p = TestProject::new()
        .file("policies/entra.yaml", ENTRA)
        .file("policies/sms.yaml", &phone)
        .file("requests/r-1.yaml", REQUEST);
    let d = p.validate();
    let w = one(&d, "missing-identity");
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.file, "requests/r-1.yaml");
    assert_eq!(
        w.message,
        "service `sms` will be skipped: it needs the identity `phone`, which the request does not give and no running service discovers"
    );
    // Given, or discovered by a service that runs: nothing to say.
    let given = REQUEST.replace("object_id: 0b1c", "phone: \"+44 20 7946 0958\"");
    let p = p.file("requests/r-2.yaml", &given.replace("r-1", "r-2"));
    assert_eq!(
        p.validate_paths(&["requests/r-2.yaml"]),
        Diagnostics::default()
    );
    let discovers = ENTRA.replace(
        "needs_identities: [email]",
        "needs_identities: [email]\ndiscovers: { phone: find-user.id }",
    );
    let p = p.file("policies/entra.yaml", &discovers);
    assert!(
        p.validate().is_empty(),
        "{}",
        p.validate().render_human(false)
    );
}

/// `missing-identity` says ahead what the compiler decides: for every kind and every mix of
/// identities, the services validate warns about are those the plan skips for an identity.
#[test]
fn missing_identity_agrees_with_the_compiler() {
    use dsrctl::compile::compile;
    use dsrctl::journal::Disposition;
    use dsrctl::load::{load_project, load_request_str};

    let entra = ENTRA
        .replace(
            "needs_identities: [email]",
            "needs_identities: [email]\ndiscovers: { object_id: find-user.id }",
        )
        .replace(
            "  export: { unsupported: \"n/a\" }",
            "  export: { same_as: [delete] }",
        );
    let twins = TWINS.replace("service: azure-digital-twins", "service: twins");
    let sms = ENTRA
        .replace("service: entra-users", "service: sms")
        .replace("needs_identities: [email]", "needs_identities: [phone]")
        .replace("{{odata subject.email}}", "{{odata subject.phone}}");
    let mut p = TestProject::new()
        .file("policies/entra.yaml", &entra)
        .file("policies/twins.yaml", &twins)
        .file("policies/sms.yaml", &sms);
    let project = load_project(p.root()).unwrap_or_else(|d| panic!("{}", d.render_human(false)));
    let subjects = [
        "{ email: jane@example.com }",
        "{ phone: \"+44 20 7946 0958\" }",
        "{ object_id: 0b1c }",
        "{ email: jane@example.com, phone: \"+44 20 7946 0958\" }",
        "{ customer_no: \"42\" }",
    ];
    let mut compared = 0;
    for kind in ["access", "export", "restrict", "delete"] {
        for subject in subjects {
            let text = format!("id: r-1\nkind: {kind}\ntenant: contoso\nsubject: {subject}\n");
            let request = load_request_str("r.yaml", &text).expect("valid request");
            let plan = compile(&project, &request, chrono::Utc::now()).expect("plan");
            let mut skipped: Vec<String> = plan
                .services
                .iter()
                .filter(|s| matches!(&s.disposition, Disposition::Skipped { reason } if reason.contains("identity")))
                .map(|s| s.service.clone())
                .collect();
            skipped.sort();
            p = p.file("requests/r-1.yaml", &text);
            let d = p.validate_paths(&["requests/r-1.yaml"]);
            let mut warned: Vec<String> = with_code(&d, "missing-identity")
                .iter()
                .map(|f| f.message.split('`').nth(1).unwrap_or_default().to_owned())
                .collect();
            warned.sort();
            assert_eq!(
                warned,
                skipped,
                "{kind} {subject}:\n{}",
                d.render_human(false)
            );
            compared += usize::from(!skipped.is_empty());
        }
    }
    assert!(compared >= 5, "only {compared} cases skip a service");
}

/// A step removed for its schema error shifts the later steps; their findings still point
/// at their own lines.
#[test]
fn findings_after_a_removed_step_point_at_their_own_lines() {
    let bad = TWINS
        .replace(
            "  delete:\n    - id: incoming\n",
            "  delete:\n    - just text\n    - id: incoming\n",
        )
        .replace(
            "      preview: { none: \"the twin was listed by the export\" }\n",
            "",
        );
    let d = TestProject::new()
        .file("policies/twins.yaml", &bad)
        .validate();
    assert_eq!(
        found(&d),
        pairs(&[
            ("policies/twins.yaml", "wrong-type"),
            ("policies/twins.yaml", "missing-preview"),
        ]),
        "{}",
        d.render_human(false)
    );
    let line = bad
        .lines()
        .position(|l| l.contains("- id: drop-twin"))
        .expect("drop-twin")
        + 1;
    let f = one(&d, "missing-preview");
    assert_eq!(f.line, line, "{}", d.render_human(false));
    assert_eq!(f.source_line.as_deref(), Some("    - id: drop-twin"));
}

mod any_mistake {
    use super::*;
    use proptest::prelude::*;

    /// Each line of the playbook, with one value replaced by something of another type.
    fn mutated() -> impl Strategy<Value = String> {
        let lines: Vec<&'static str> = TWINS.lines().collect();
        let n = lines.len();
        (
            0..n,
            prop::sample::select(vec!["42", "[x]", "{ a: 1 }", "\"\"", "true", "null", "- y"]),
        )
            .prop_map(move |(i, replacement)| {
                let mut out = String::new();
                for (j, line) in lines.iter().enumerate() {
                    match line.split_once(": ") {
                        Some((key, _)) if j == i => {
                            out.push_str(&format!("{key}: {replacement}\n"));
                        }
                        _ => {
                            out.push_str(line);
                            out.push('\n');
                        }
                    }
                }
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Recovery never panics, and every finding points at a line of the file.
        #[test]
        fn every_finding_points_into_the_file(text in mutated()) {
            let p = TestProject::new().file("policies/twins.yaml", &text);
            let d = p.validate();
            let lines = text.lines().count();
            for f in d.iter() {
                prop_assert!(f.line <= lines, "{}", d.render_human(false));
                if f.line > 0 {
                    prop_assert!(f.source_line.is_some(), "{}", d.render_human(false));
                }
            }
        }
    }
}

/// `drp:` in dsrctl.yaml: an undefined tenant, an agent listed twice, a key that is not 64
/// hex digits and one that is but is no Ed25519 key are each named at their place, in one
/// round.
#[test]
fn drp_config_mistakes_are_each_named() {
    // The RFC 8032 test key 1, and 64 hex digits that decode to no curve point.
    let good = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let not_a_point = format!("02{}", "ff".repeat(31));
    let config = format!(
        "{CONFIG}drp:\n  business_id: CONTOSO\n  tenant: contosso\n  agents:\n    \
         - {{ id: AGENT, verify_key: \"{good}\" }}\n    \
         - {{ id: AGENT, verify_key: \"{good}\" }}\n    \
         - {{ id: SHORT_KEY, verify_key: \"abcd\" }}\n    \
         - {{ id: NO_POINT, verify_key: \"{not_a_point}\" }}\n"
    );
    let d = TestProject::new()
        .file("dsrctl.yaml", &config)
        .file("policies/twins.yaml", TWINS)
        .validate();
    assert_eq!(
        found(&d),
        pairs(&[
            ("dsrctl.yaml", "duplicate-key"),
            ("dsrctl.yaml", "invalid-value"),
            ("dsrctl.yaml", "invalid-value"),
            ("dsrctl.yaml", "unknown-tenant"),
        ]),
        "{}",
        d.render_human(false)
    );
    let tenant = one(&d, "unknown-tenant");
    assert!(tenant.message.contains("contosso"), "{}", tenant.message);
    assert_eq!(tenant.label.as_deref(), Some("did you mean `contoso`?"));
    let fixed = config
        .replace("tenant: contosso", "tenant: contoso")
        .replace("- { id: AGENT, verify_key", "- { id: AGENT2, verify_key")
        .replacen("AGENT2", "AGENT", 1)
        .replace("    - { id: SHORT_KEY, verify_key: \"abcd\" }\n", "")
        .replace(
            &format!("    - {{ id: NO_POINT, verify_key: \"{not_a_point}\" }}\n"),
            "",
        );
    let d = TestProject::new()
        .file("dsrctl.yaml", &fixed)
        .file("policies/twins.yaml", TWINS)
        .validate();
    assert!(d.is_empty(), "{}", d.render_human(false));
}
