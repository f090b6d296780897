//! Export over a paginated HTTP API, streamed page by page to the spool (issue 23): the
//! package holds every record in order, captures are taken from the passing records, and
//! a listing that breaks in the middle (an error status, a page that is not JSON, a lost
//! connection) fails its step and leaves nothing that passes for a complete collection.

mod support;

use std::path::Path;

use dsrctl::journal::{RunStatus, StepStatus};
use dsrctl::report::package::{PackageOptions, build_package};
use serde_json::{Value, json};
use support::items::{TestProject, playbook, project_with};
use support::{Call, Fault, Reply, TestServer};

const PAGES: u64 = 5;
const PER_PAGE: u64 = 3;

fn page_of(call: &Call) -> u64 {
    call.query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("page=")))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Page `page` of the subject's events, linking to the next one.
fn page(call: &Call, page: u64) -> Reply {
    let host = call.header("host").unwrap_or_default().to_owned();
    let value: Vec<Value> = (page * PER_PAGE..(page + 1) * PER_PAGE)
        .map(|n| json!({ "id": format!("e{n:02}"), "n": n, "detail": { "kind": "view" } }))
        .collect();
    let mut body = json!({ "value": value });
    if page + 1 < PAGES {
        body["nextLink"] = json!(format!("http://{host}/events?page={}", page + 1));
    }
    Reply::json(200, body)
}

/// A service whose export lists events over pages; `broken` answers page 3 instead.
async fn events_server(broken: Option<Reply>) -> TestServer {
    TestServer::start(move |call, _| {
        let n = page_of(call);
        match &broken {
            Some(reply) if n == 3 => reply.clone(),
            _ => page(call, n),
        }
    })
    .await
}

const EXPORT: &str = r#"    - id: list
      http:
        method: GET
        path: /events
        query: { owner: "{{subject.email}}" }
        paginate: { next_link: /nextLink }
      capture: { first: /0/id, seventh: /7/detail/kind, past_the_end: /99/id }
      collect: events"#;

fn export_project(url: &str) -> TestProject {
    project_with(url, &[("events", playbook("events", EXPORT, ""))])
}

/// Files left in the run's spool directory, relative to it.
fn spool_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_record_of_every_page_is_exported_in_order_with_captures_from_the_stream() {
    let server = events_server(None).await;
    let project = export_project(&server.url);
    let result = project.run("export").await;
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{:#?}",
        result.outcomes
    );
    let o = &result.outcomes[0];
    assert_eq!(o.status, StepStatus::Succeeded);
    assert_eq!(o.found, PAGES * PER_PAGE);
    assert_eq!(server.count() as u64, PAGES);
    // Captures of single records, taken as the records passed.
    assert_eq!(o.captures.get("first"), Some(&json!("e00")));
    assert_eq!(o.captures.get("seventh"), Some(&json!("view")));
    assert!(!o.captures.contains_key("past_the_end"));

    let run_dir = project.state_dir().join("runs").join(&result.run_id);
    let spooled = o.collected.clone().expect("collected");
    assert_eq!(spool_files(&run_dir.join("collect")).len(), 1);
    assert!(!spooled.ends_with(".partial"));

    let store = project.store().await;
    let run = store.run(&result.run_id).await.unwrap();
    let out = project.dir.path().join("package");
    let manifest = build_package(
        &run.plan,
        &result.outcomes,
        &run_dir,
        &out,
        &PackageOptions::default(),
    )
    .expect("package");
    store.close().await;
    assert!(manifest.complete, "{:?}", manifest.incomplete_because);
    assert_eq!(manifest.total_records, PAGES * PER_PAGE);
    let file = &manifest.services[0].files[0];
    let records: Vec<Value> =
        serde_json::from_slice(&std::fs::read(out.join(&file.path)).unwrap()).unwrap();
    let ids: Vec<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..PAGES * PER_PAGE).map(|n| format!("e{n:02}")).collect();
    assert_eq!(ids, expected, "every record, in the service's order");
}

/// A listing that breaks on page 3: the step fails and says why, no spool file (complete
/// or partial) remains, and the package says it is incomplete.
async fn broken_listing(reply: Reply, says: &str) {
    // With captures taken from the stream, and without any.
    let bare = EXPORT.replace(
        "      capture: { first: /0/id, seventh: /7/detail/kind, past_the_end: /99/id }\n",
        "",
    );
    assert_ne!(bare, EXPORT);
    for export in [EXPORT, &bare] {
        broken_listing_of(export, reply.clone(), says).await;
    }
}

async fn broken_listing_of(export: &str, reply: Reply, says: &str) {
    let server = events_server(Some(reply)).await;
    let project = project_with(&server.url, &[("events", playbook("events", export, ""))]);
    let result = project.run("export").await;
    assert_eq!(result.status, RunStatus::Failed, "{:#?}", result.outcomes);
    let o = &result.outcomes[0];
    assert_eq!(o.status, StepStatus::Failed);
    let message = o.message.clone().unwrap_or_default();
    assert!(message.contains(says), "{says:?} not in: {message}");
    assert_eq!(o.collected, None);
    // Pages 0..=2 were fetched (and spooled) before page 3 broke.
    assert!(server.calls().iter().any(|c| page_of(c) == 3));
    let run_dir = project.state_dir().join("runs").join(&result.run_id);
    assert_eq!(
        spool_files(&run_dir.join("collect")),
        Vec::<String>::new(),
        "nothing of the broken listing is left to pass for a collection"
    );

    let store = project.store().await;
    let run = store.run(&result.run_id).await.unwrap();
    let manifest = build_package(
        &run.plan,
        &result.outcomes,
        &run_dir,
        &project.dir.path().join("package"),
        &PackageOptions::default(),
    )
    .expect("package");
    store.close().await;
    assert!(!manifest.complete);
    assert_eq!(manifest.total_records, 0);
    assert!(
        manifest
            .incomplete_because
            .iter()
            .any(|w| w.contains("events") && w.contains("failed")),
        "{:?}",
        manifest.incomplete_because
    );
}

#[tokio::test]
async fn a_server_error_mid_listing_fails_the_export() {
    broken_listing(Reply::json(500, json!({"error": "boom"})), "answered 500").await;
}

#[tokio::test]
async fn a_page_that_is_not_json_fails_the_export() {
    broken_listing(
        Reply::raw(200, "application/json", "{\"value\": [{\"id\": \"e09\"},"),
        "not valid JSON",
    )
    .await;
}

#[tokio::test]
async fn a_connection_dropped_mid_listing_fails_the_export() {
    broken_listing(
        Reply::json(200, json!({})).broken(Fault::Reset),
        "connection failed",
    )
    .await;
}

#[tokio::test]
async fn a_capture_of_the_whole_list_still_sees_every_page() {
    // `/value`-like captures need the whole listing: it is kept, and still spooled.
    let export = EXPORT.replace(
        "capture: { first: /0/id, seventh: /7/detail/kind, past_the_end: /99/id }",
        "capture: { all: \"\" }",
    );
    let server = events_server(None).await;
    let project = project_with(&server.url, &[("events", playbook("events", &export, ""))]);
    let result = project.run("export").await;
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{:#?}",
        result.outcomes
    );
    let o = &result.outcomes[0];
    assert_eq!(o.found, PAGES * PER_PAGE);
    let all = o
        .captures
        .get("all")
        .and_then(Value::as_array)
        .expect("all");
    assert_eq!(all.len() as u64, PAGES * PER_PAGE);
    let run_dir = project.state_dir().join("runs").join(&result.run_id);
    let spooled = std::fs::read_to_string(run_dir.join(o.collected.as_deref().unwrap())).unwrap();
    assert_eq!(spooled.lines().count() as u64, PAGES * PER_PAGE);
}
