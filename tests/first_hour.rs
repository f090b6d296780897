//! The first hour of a newcomer, through the command line as they type it: `init --example`
//! against the built-in emulator, `validate`, `plan`, `show`, `apply`, `runs`, `requests`,
//! `status`, `task list`, the letter and package of an export, and shell completion of run
//! ids. The exact output of each is a snapshot; what varies (run ids, times, the temporary
//! directory, the emulator's port) is replaced by a placeholder.

mod support;

use std::path::Path;

use support::cli::{Dsrctl, Output};

/// Placeholders for what differs between runs of the test.
fn settings(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&dir.display().to_string()), "[DIR]");
    s.add_filter(r"127\.0\.0\.1:\d+", "[EMULATOR]");
    s.add_filter(r"\b[0-9a-f]{12}\b", "[RUN]");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?( UTC)?",
        "[TIME]",
    );
    s.add_filter(r"\b\d{4}-\d{2}-\d{2}\b", "[DATE]");
    s.add_filter(r"\b-?\d+ days?\b", "[DAYS]");
    s
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

async fn ok(cmd: Dsrctl) -> Output {
    cmd.run().await.expect_code(0)
}

/// The run id an output names after "run ".
fn run_id(text: &str) -> String {
    let at = text.find("run ").expect("a run id") + 4;
    text[at..at + 12].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_project_runs_end_to_end_against_the_emulator() {
    let emulator = dsrctl::emulator::start(
        dsrctl::emulator::Fixture::contoso(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("start the emulator");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("contoso");
    let settings = settings(tmp.path());
    let _bound = settings.bind_to_scope();
    let at = |dir: &Path| Dsrctl::new(dir);

    // init --example, from outside the project.
    let init = ok(at(tmp.path()).args([
        "init",
        "--example",
        &dir.display().to_string(),
        "--emulator",
        &emulator.addr.to_string(),
    ]))
    .await;
    insta::assert_snapshot!("init_example", init.stdout);
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains(&format!("http://{}", emulator.addr)));
    let gitignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    for kept_out in [".dsrctl/", "*.plan.json", "*.secret", "*.db"] {
        assert!(gitignore.lines().any(|l| l == kept_out), "{kept_out}");
    }

    let validate = ok(at(&dir).arg("validate")).await;
    assert_eq!(validate.stdout, "ok: the project is valid\n");

    // A dry run, saved; `show` renders the saved plan exactly as `plan` printed it.
    let plan = ok(at(&dir).args([
        "plan",
        "requests/delete-alice.yaml",
        "-o",
        "delete-alice.plan.json",
    ]))
    .await;
    insta::assert_snapshot!("plan_delete_alice", plan.stdout);
    let show = ok(at(&dir).args(["show", "delete-alice.plan.json"])).await;
    assert_eq!(show.stdout, plan.stdout);
    let markdown = ok(at(&dir).args(["show", "delete-alice.plan.json", "--format", "markdown"]))
        .await
        .stdout;
    assert!(markdown.contains("| "), "a Markdown table: {markdown}");
    let json = ok(at(&dir).args(["show", "delete-alice.plan.json", "--format", "json"])).await;
    assert!(
        json.json()["changes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    for shown in [&plan.stdout, &markdown, &json.stdout] {
        assert!(
            !shown.contains("alice@contoso.com"),
            "subject values are masked"
        );
    }

    // An edited plan is shown with what was edited, and exits 1.
    let saved = std::fs::read_to_string(dir.join("delete-alice.plan.json")).unwrap();
    std::fs::write(
        dir.join("edited.plan.json"),
        saved.replacen("\"count\": 3,", "\"count\": 7,", 1),
    )
    .unwrap();
    let edited = at(&dir)
        .args(["show", "edited.plan.json"])
        .run()
        .await
        .expect_code(1);
    assert!(
        edited
            .stderr
            .contains("edited after `dsrctl plan` saved it"),
        "{}",
        edited.stderr
    );

    let apply = ok(at(&dir).args(["apply", "delete-alice.plan.json", "--approve", "Tester"])).await;
    let run = run_id(&apply.stderr);

    let runs = ok(at(&dir).arg("runs")).await;
    insta::assert_snapshot!("runs", runs.stdout);
    let status = ok(at(&dir).args(["status", &run])).await;
    insta::assert_snapshot!("status", status.stdout);
    let tasks = ok(at(&dir).args(["task", "list"])).await;
    insta::assert_snapshot!("task_list", tasks.stdout);

    // A recorded request is listed with its deadline.
    ok(at(&dir).args([
        "request",
        "new",
        "--file",
        "requests/export-alice-ccpa.yaml",
    ]))
    .await;
    let requests = ok(at(&dir).args(["requests", "--today", "2026-11-30"])).await;
    insta::assert_snapshot!("requests", requests.stdout);

    // An export: its letter and package.
    let export = ok(at(&dir).args(["run", "requests/export-alice-ccpa.yaml"])).await;
    let export_run = run_id(&export.stderr);
    let package = ok(at(&dir).args([
        "report",
        &export_run,
        "--template",
        "letter",
        "-o",
        "letter.md",
        "--package",
        "export",
    ]))
    .await;
    assert!(dir.join("letter.md").is_file());
    // Regression: the package's reasons for being incomplete were the waiting steps'
    // instructions, printed with the subject's email.
    assert!(package.stderr.contains("INCOMPLETE"), "{}", package.stderr);
    for shown in [&package.stdout, &package.stderr] {
        assert!(!shown.contains("alice@contoso.com"), "{shown}");
    }
    let manifest = std::fs::read_to_string(dir.join("export/manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let why = manifest["incomplete_because"].to_string();
    assert!(
        why.contains("waiting") && !why.contains("alice@contoso.com"),
        "{why}"
    );

    // Completion offers the project's runs to `dsrctl status`.
    let completed = at(&dir)
        .bare()
        .args(["--", "dsrctl", "status", ""])
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "2")
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .env("_CLAP_IFS", "\n")
        .run()
        .await;
    assert!(
        completed.stdout.lines().any(|l| l == run) && completed.stdout.contains(&export_run),
        "{}",
        completed.stdout
    );
    emulator.shutdown().await;
}

/// The README's first command: the demo runs end to end and leaves its reports behind.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = ok(Dsrctl::new(tmp.path()).args(["demo", "--dir", &dir.display().to_string()])).await;
    for step in [
        "1. Export request",
        "2. Dry run",
        "3. Apply",
        "4. Evidence report",
    ] {
        assert!(out.stdout.contains(step), "{step}: {}", out.stdout);
    }
    for file in ["evidence.html", "letter.md", "export-package/manifest.json"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
}

/// `dsrctl init` (no example): the starter project validates and plans offline.
#[tokio::test]
async fn the_starter_project_validates_and_plans_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = settings(tmp.path());
    let _bound = settings.bind_to_scope();
    let init = ok(Dsrctl::new(tmp.path()).args(["init", "starter"])).await;
    insta::assert_snapshot!("init_starter", init.stdout);
    let dir = tmp.path().join("starter");
    let validate = ok(Dsrctl::new(&dir).arg("validate")).await;
    assert_eq!(validate.stdout, "ok: the project is valid\n");
    let plan = ok(Dsrctl::new(&dir).args(["plan", "--offline", "requests/delete-jane.yaml"])).await;
    assert!(plan.stdout.contains("Plan for request"), "{}", plan.stdout);
    // A second init into the same directory refuses, and writes nothing.
    let again = Dsrctl::new(tmp.path())
        .args(["init", "starter"])
        .run()
        .await
        .expect_code(1);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
}
