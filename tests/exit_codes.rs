//! Exit codes through the real binary: 0 ok, 1 problems or failure, 2 changes pending (with
//! `--detailed-exitcode`), 64 usage error. Decided in one place (`src/cli/mod.rs`).

mod support;

use support::cli::ProjectDir;

fn project() -> ProjectDir {
    ProjectDir::new()
        .file(
            "dsrctl.yaml",
            "tenants:\n  t1:\n    connectors:\n      api: { kind: http, base_url: \"http://127.0.0.1:9\" }\n",
        )
        .file(
            "policies/crm.yaml",
            "service: crm\nconnector: api\nneeds_identities: [email]\ndsr:\n  access: { unsupported: t }\n  export: { unsupported: t }\n  rectify: { unsupported: t }\n  restrict: { unsupported: t }\n  delete: { unsupported: t }\n",
        )
}

// Regression: usage errors exited 2, the code `--detailed-exitcode` gives "changes pending",
// so a typo in a CI flag read as "changes".
#[tokio::test]
async fn usage_errors_exit_64_not_the_changes_pending_code() {
    let p = project();
    for args in [
        vec!["plan", "r.yaml", "--detailed-exitcod"],
        vec!["frobnicate"],
        vec!["plan"],
        vec!["apply"],
        vec!["run", "r.yaml", "--parallelism", "many"],
        vec!["serve"],
        vec![
            "request",
            "new",
            "--kind",
            "delete",
            "--tenant",
            "t1",
            "--subject",
            "no-equals-sign",
        ],
    ] {
        let out = p.cmd().args(&args).run().await.expect_code(64);
        assert!(!out.stderr.is_empty(), "{args:?} says nothing");
    }
}

#[tokio::test]
async fn help_documents_the_exit_codes_and_exits_0() {
    let out = project().cmd().arg("--help").run().await.expect_code(0);
    for line in [
        "0   ok",
        "1   problems found, or a failure",
        "2   changes pending",
        "64  usage error",
    ] {
        assert!(
            out.stdout.contains(line),
            "`{line}` missing:\n{}",
            out.stdout
        );
    }
    project().cmd().arg("--version").run().await.expect_code(0);
}

#[tokio::test]
async fn a_failure_after_parsing_exits_1() {
    // A request file that does not exist is not a usage error: the command line was right.
    let out = project()
        .cmd()
        .args(["plan", "missing.yaml"])
        .run()
        .await
        .expect_code(1);
    assert!(out.stderr.contains("missing.yaml"), "{}", out.stderr);
}

// Regression: an error whose message already held its cause printed the cause twice
// ("...; export it before running: connector configuration: connector `api`: ...").
#[tokio::test]
async fn a_failure_names_its_cause_once() {
    let p = ProjectDir::new()
        .file(
            "dsrctl.yaml",
            "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: \"http://127.0.0.1:9\"\n        auth: { type: bearer, token: { env: DSRCTL_TEST_UNSET_TOKEN } }\n",
        )
        .file(
            "policies/crm.yaml",
            "service: crm\nconnector: api\nneeds_identities: [email]\ndsr:\n  access: { unsupported: t }\n  export: { unsupported: t }\n  rectify: { unsupported: t }\n  restrict: { unsupported: t }\n  delete: { unsupported: t }\n",
        )
        .file(
            "r.yaml",
            "id: r-1\nkind: delete\ntenant: t1\njurisdiction: gdpr\nreceived: 2026-11-02\nsubject: { email: a@example.com }\n",
        );
    let out = p.cmd().args(["plan", "r.yaml"]).run().await.expect_code(1);
    let needle = "`DSRCTL_TEST_UNSET_TOKEN` is not set";
    assert_eq!(
        out.stderr.matches(needle).count(),
        1,
        "the cause is named once:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("tenant `t1`"), "{}", out.stderr);
}
