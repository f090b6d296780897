//! Regression: the captures of a `for_each` step kept the order in which its instances
//! finished, not the order of the items. A later `for_each` over them then numbered its
//! instances differently from one run to the next, so `apply` of a saved plan saw
//! "the target changed" for relationships listed per twin (digital-twins `drop-incoming`).

mod support;

use std::time::Duration;

use dsrctl::journal::StepStatus;
use serde_json::{Value, json};
use support::items::project_with;
use support::{Reply, TestServer};

const PLAYBOOK: &str = r#"
service: things
connector: api
needs_identities: [email]
dsr:
  access:
    - id: owners
      http: { method: GET, path: /owners }
      capture: { ids: /value }
    - id: things
      needs: [owners]
      for_each: owners.ids
      http: { method: GET, path: "/owners/{{seg item}}/things" }
      capture: { found: /value }
  export: { unsupported: "test" }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete: { unsupported: "test" }
"#;

#[tokio::test]
async fn for_each_captures_keep_the_order_of_the_items() {
    // The first owner's listing answers last.
    let server = TestServer::start(|call, _| match call.path.as_str() {
        "/owners" => Reply::json(200, json!({"value": ["slow", "fast"]})),
        "/owners/slow/things" => {
            Reply::json(200, json!({"value": ["s1", "s2"]})).after(Duration::from_millis(300))
        }
        "/owners/fast/things" => Reply::json(200, json!({"value": ["f1"]})),
        _ => Reply::json(404, json!({})),
    })
    .await;
    let project = project_with(&server.url, &[("things", PLAYBOOK.to_owned())]);
    let result = project.run("access").await;
    let things = result
        .outcomes
        .iter()
        .find(|o| o.instance == "things/things")
        .expect("step outcome");
    assert_eq!(things.status, StepStatus::Succeeded);
    // Item order, and each instance's list spliced in (one flat list of records).
    assert_eq!(
        things.captures.get("found"),
        Some(&Value::from(vec!["s1", "s2", "f1"]))
    );
}
