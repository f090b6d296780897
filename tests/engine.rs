//! The engine against local HTTP servers that record every call: dependency order,
//! parallelism, failures that block only their dependants, and a crash in the middle.

mod support;

use std::time::Duration;

use dsrctl::journal::RunStatus;
use dsrctl::journal::StepStatus;
use support::items::{ItemServer, project_with};

fn playbook(service: &str, after: &str, items: usize) -> String {
    let delete = format!(
        r#"    - id: list
      http: {{ method: GET, path: "/{service}/items", query: {{ owner: "{{{{subject.email}}}}", n: "{items}" }} }}
      capture: {{ ids: /value }}
    - id: drop
      for_each: list.ids
      {after}
      http: {{ method: DELETE, path: "/{service}/items/{{{{seg item.id}}}}" }}
      absent_on: [404]
      preview: item
      verify:
        http: {{ method: GET, path: "/{service}/items/{{{{seg item.id}}}}" }}
        expect_status: [404]"#
    );
    support::items::playbook(service, "", &delete)
}

#[tokio::test]
async fn services_run_in_parallel_and_in_dependency_order() {
    let server = ItemServer::start(Duration::from_millis(150)).await;
    let project = project_with(
        &server.url(),
        &[
            ("alpha", playbook("alpha", "", 2)),
            ("beta", playbook("beta", "", 2)),
            ("gamma", playbook("gamma", "after: [alpha]", 1)),
        ],
    );
    let result = project.run("delete").await;
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{:#?}",
        result.outcomes
    );

    let calls = server.calls();
    let deletes = |svc: &str| {
        calls
            .iter()
            .filter(|c| c.method == "DELETE" && c.path.starts_with(&format!("/{svc}/")))
            .collect::<Vec<_>>()
    };
    assert_eq!(deletes("alpha").len(), 2);
    assert_eq!(deletes("beta").len(), 2);
    assert_eq!(deletes("gamma").len(), 1);
    // gamma's deletion (`after: [alpha]`) waits for every step of alpha, verification included.
    let alpha_done = calls
        .iter()
        .filter(|c| c.path.starts_with("/alpha/"))
        .map(|c| c.finished)
        .max()
        .unwrap();
    let gamma_delete = deletes("gamma")[0].started;
    assert!(
        gamma_delete >= alpha_done,
        "gamma deleted before alpha finished"
    );
    // alpha and beta overlap: the server saw calls of both in flight at once (what the
    // run's wall time would show only on an idle machine).
    assert!(server.max_in_flight() >= 2, "no parallelism seen");
}

#[tokio::test]
async fn a_failed_step_blocks_its_dependants_and_other_services_go_on() {
    let server = ItemServer::start(Duration::ZERO).await;
    server.fail_path("/alpha/items", 500);
    let project = project_with(
        &server.url(),
        &[
            ("alpha", playbook("alpha", "", 2)),
            ("beta", playbook("beta", "", 2)),
        ],
    );
    let result = project.run("delete").await;
    assert_eq!(result.status, RunStatus::Failed);
    let status = |key: &str| {
        result
            .outcomes
            .iter()
            .find(|o| o.instance == key)
            .map(|o| o.status)
    };
    assert_eq!(status("alpha/list"), Some(StepStatus::Failed));
    assert_eq!(status("alpha/drop"), Some(StepStatus::Blocked));
    assert_eq!(status("beta/drop"), Some(StepStatus::Succeeded));
    let failed = result
        .outcomes
        .iter()
        .find(|o| o.instance == "alpha/list")
        .unwrap();
    let message = failed.message.as_deref().unwrap();
    assert!(message.contains("500"), "{message}");

    // Fixed: resuming runs the failed step and its dependants, not what succeeded.
    server.fail_path("", 0);
    let before = server.calls().len();
    let resumed = project.resume(&result.run_id).await;
    assert_eq!(resumed.status, RunStatus::Completed);
    let again: Vec<_> = server.calls()[before..]
        .iter()
        .map(|c| c.path.clone())
        .collect();
    assert!(again.iter().all(|p| p.starts_with("/alpha/")), "{again:?}");
}

#[tokio::test]
async fn stopping_mid_run_leaves_a_resumable_journal() {
    let server = ItemServer::start(Duration::from_millis(100)).await;
    let project = project_with(&server.url(), &[("alpha", playbook("alpha", "", 30))]);
    let plan = dsrctl::compile::compile(
        &project.project,
        &support::items::request("delete"),
        chrono::Utc::now(),
    )
    .unwrap();
    let store = project.store().await;
    let run_id = store
        .create_run(&plan, dsrctl::journal::RunMode::Apply)
        .await
        .unwrap();
    let engine = project.engine(store.clone()).await.with_parallelism(2);
    let stop = engine.stop_flag();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let first = engine
        .execute(&run_id, &plan, dsrctl::journal::RunMode::Apply, None)
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Interrupted);
    assert!(
        first.outcomes.iter().all(|o| o.instance != "alpha/drop"),
        "the unfinished step was journaled as ended"
    );
    let sent = server.delete_counts().len();
    assert!(sent > 0 && sent < 30, "{sent} deletions before the stop");
    store.close().await;

    let resumed = project.resume(&run_id).await;
    assert_eq!(resumed.status, RunStatus::Completed);
    let counts = server.delete_counts();
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

/// `defaults.parallelism` in dsrctl.yaml bounds the calls in flight of `dsrctl run`; the
/// `--parallelism` flag overrides it.
#[tokio::test]
async fn run_takes_its_parallelism_from_the_configuration_unless_the_flag_says() {
    use support::TestServer;
    use support::cli::Dsrctl;

    let server = TestServer::start(|_, _| {
        support::Reply::json(200, serde_json::json!({"value": []}))
            .after(Duration::from_millis(100))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("dsrctl.yaml"),
        format!(
            "defaults:\n  parallelism: 1\ntenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {}\n        timeout: 5s\n",
            server.url
        ),
    )
    .unwrap();
    for svc in ["alpha", "beta", "gamma"] {
        std::fs::write(
            dir.path().join("policies").join(format!("{svc}.yaml")),
            format!(
                r#"service: {svc}
connector: api
needs_identities: [email]
dsr:
  access:
    - id: list
      http: {{ method: GET, path: "/{svc}/items", query: {{ owner: "{{{{subject.email}}}}" }} }}
      capture: {{ ids: /value }}
  export: {{ unsupported: "test" }}
  rectify: {{ unsupported: "test" }}
  restrict: {{ unsupported: "test" }}
  delete: {{ unsupported: "test" }}
"#
            ),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("request.yaml"),
        "id: r-1\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: alice@example.com\n",
    )
    .unwrap();

    Dsrctl::new(dir.path())
        .args(["run", "request.yaml"])
        .run()
        .await
        .expect_code(0);
    assert_eq!(server.count(), 3);
    assert_eq!(
        server.max_in_flight(),
        1,
        "defaults.parallelism: 1 not kept"
    );

    std::fs::write(
        dir.path().join("request.yaml"),
        "id: r-2\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: bob@example.com\n",
    )
    .unwrap();
    Dsrctl::new(dir.path())
        .args(["run", "request.yaml", "--parallelism", "3"])
        .run()
        .await
        .expect_code(0);
    assert_eq!(server.count(), 6);
    assert!(server.max_in_flight() >= 2, "the flag did not override");
}
