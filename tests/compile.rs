//! Compiling requests into plans: order, discovery across services, reuse, exemptions.

mod support;

use dsrctl::compile::compile;
use dsrctl::journal::Disposition;
use support::items::{project_with, request};

const UNSUPPORTED: &str = "{ unsupported: \"not in this test\" }";

fn directory() -> String {
    format!(
        r#"
service: directory
connector: api
needs_identities: [email]
discovers: {{ object_id: find.id }}
dsr:
  access:
    - id: find
      http: {{ method: GET, path: /users, query: {{ mail: "{{{{subject.email}}}}" }} }}
      capture: {{ id: /value/0/id }}
  export: {{ same_as: [access] }}
  rectify: {UNSUPPORTED}
  restrict: {{ same_as: [export, delete] }}
  delete:
    - id: find
      http: {{ method: GET, path: /users, query: {{ mail: "{{{{subject.email}}}}" }} }}
      capture: {{ id: /value/0/id }}
    - id: remove
      needs: [find]
      after: [devices]
      http: {{ method: DELETE, path: "/users/{{{{seg find.id}}}}" }}
      preview: {{ none: "test" }}
"#
    )
}

fn devices() -> String {
    format!(
        r#"
service: devices
connector: api
needs_identities: [object_id]
dsr:
  access:
    - id: list
      http: {{ method: GET, path: "/owners/{{{{seg subject.object_id}}}}/devices" }}
  export: {{ same_as: [access] }}
  rectify: {{ unsupported: "device logs are a historical record" }}
  restrict: {UNSUPPORTED}
  delete:
    - id: wipe
      http: {{ method: DELETE, path: "/owners/{{{{seg subject.object_id}}}}/devices" }}
      preview: {{ none: "test" }}
"#
    )
}

#[test]
fn discovery_runs_first_and_after_orders_across_services() {
    let p = project_with(
        "http://127.0.0.1:1",
        &[("directory", directory()), ("devices", devices())],
    );
    let plan = compile(&p.project, &request("delete"), chrono::Utc::now()).unwrap();
    let keys: Vec<&str> = plan.steps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["directory/find", "devices/wipe", "directory/remove"]);
    let wipe = plan.step("devices/wipe").unwrap();
    assert_eq!(wipe.needs, ["directory/find"]);
    assert_eq!(wipe.identities["object_id"].step, "directory/find");
    assert!(
        plan.step("directory/remove")
            .unwrap()
            .needs
            .contains(&"devices/wipe".to_owned())
    );
    assert_eq!(
        plan.inputs.len(),
        3,
        "config and both playbooks are digested"
    );
}

#[test]
fn reuse_expands_transitively_and_phases_run_in_order() {
    let p = project_with(
        "http://127.0.0.1:1",
        &[("directory", directory()), ("devices", devices())],
    );
    let plan = compile(&p.project, &request("restrict"), chrono::Utc::now()).unwrap();
    let dir = plan
        .services
        .iter()
        .find(|s| s.service == "directory")
        .unwrap();
    assert_eq!(
        dir.disposition,
        Disposition::Run {
            kinds: vec![
                dsrctl::model::DsrKind::Access,
                dsrctl::model::DsrKind::Delete
            ]
        }
    );
    // The delete phase's first step waits for the whole access phase.
    let find = plan.step("directory/delete.find").unwrap();
    assert_eq!(find.needs, ["directory/access.find"]);
    // devices declares restrict unsupported: an exemption with its reason, not silence.
    let dev = plan
        .services
        .iter()
        .find(|s| s.service == "devices")
        .unwrap();
    assert!(
        matches!(&dev.disposition, Disposition::Exempt { reason } if reason == "not in this test")
    );
}

#[test]
fn a_service_whose_identity_nobody_provides_is_skipped_with_the_reason() {
    let p = project_with("http://127.0.0.1:1", &[("devices", devices())]);
    let plan = compile(&p.project, &request("access"), chrono::Utc::now()).unwrap();
    let dev = &plan.services[0];
    match &dev.disposition {
        Disposition::Skipped { reason } => assert!(reason.contains("object_id"), "{reason}"),
        other => panic!("expected skipped, got {other:?}"),
    }
    assert!(plan.steps.is_empty());
}

#[test]
fn unknown_tenant_is_an_error_naming_the_known_ones() {
    let p = project_with(
        "http://127.0.0.1:1",
        &[("directory", directory()), ("devices", devices())],
    );
    let mut r = request("access");
    r.tenant = "nope".into();
    let err = compile(&p.project, &r, chrono::Utc::now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`nope`") && err.contains("t1"), "{err}");
}

#[test]
fn the_plan_round_trips_through_json() {
    let p = project_with(
        "http://127.0.0.1:1",
        &[("directory", directory()), ("devices", devices())],
    );
    let plan = compile(&p.project, &request("delete"), chrono::Utc::now()).unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    let back: dsrctl::journal::Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
    assert_eq!(back.format_version, dsrctl::journal::PLAN_FORMAT_VERSION);
}

// A step's scope holds the steps its templates may name: the ones it needs, directly or
// not (through `for_each` too), itself, and the step it previews from; not every step of
// its phase. Regression: every step of a derived 200-table erasure carried the 267 steps
// of its phase, so plans grew with the square of the tables and each step's context copied
// every earlier step's captures.
#[test]
fn a_steps_scope_is_what_it_needs_not_its_whole_phase() {
    let playbook = format!(
        r#"
service: chain
connector: api
needs_identities: [email]
dsr:
  access: {UNSUPPORTED}
  export: {UNSUPPORTED}
  rectify: {UNSUPPORTED}
  restrict: {UNSUPPORTED}
  delete:
    - id: a
      http: {{ method: GET, path: /a, query: {{ mail: "{{{{subject.email}}}}" }} }}
      capture: {{ ids: /ids }}
    - id: b
      needs: [a]
      for_each: a.ids
      http: {{ method: GET, path: "/b/{{{{seg item}}}}" }}
      capture: {{ id: /id }}
    - id: c
      needs: [b]
      http: {{ method: DELETE, path: "/c/{{{{seg b.id}}}}" }}
      preview: {{ none: "test" }}
    - id: list
      http: {{ method: GET, path: /list }}
      capture: {{ x: /x }}
    - id: d
      for_each: list.x
      http: {{ method: DELETE, path: "/d/{{{{seg item}}}}" }}
      preview: {{ step: list }}
"#
    );
    let p = project_with("http://127.0.0.1:1", &[("chain", playbook)]);
    let plan = compile(&p.project, &request("delete"), chrono::Utc::now()).unwrap();
    let scope = |key: &str| -> Vec<String> {
        plan.step(key)
            .unwrap_or_else(|| panic!("{key}"))
            .scope
            .iter()
            .map(|(local, key)| format!("{local}={key}"))
            .collect()
    };
    assert_eq!(scope("chain/a"), ["a=chain/a"]);
    assert_eq!(scope("chain/b"), ["a=chain/a", "b=chain/b"]);
    assert_eq!(scope("chain/c"), ["a=chain/a", "b=chain/b", "c=chain/c"]);
    assert_eq!(scope("chain/list"), ["list=chain/list"]);
    assert_eq!(scope("chain/d"), ["d=chain/d", "list=chain/list"]);
}

// Regression: a dataset with two columns of one category (`email`, `alt_email`) listed the
// category twice under "Data held" in the evidence report.
#[test]
fn a_services_data_categories_are_listed_once_each() {
    let devices = devices().replace(
        "needs_identities: [object_id]\n",
        "needs_identities: [object_id]\nholds:\n  - { category: user.contact.email, location: users.email }\n  - { category: user.device, location: devices.id }\n  - { category: user.contact.email, location: users.alt_email }\n",
    );
    let p = project_with(
        "http://127.0.0.1:1",
        &[("directory", directory()), ("devices", devices)],
    );
    let plan = compile(&p.project, &request("delete"), chrono::Utc::now()).unwrap();
    let svc = plan
        .services
        .iter()
        .find(|s| s.service == "devices")
        .unwrap();
    assert_eq!(svc.holds, ["user.contact.email", "user.device"]);
}
