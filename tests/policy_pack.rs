//! The policy pack end to end: the Contoso example project's sample requests, for every
//! DSR kind, against the in-process Azure emulator and SQLite CRMs. Apply leaves the
//! emulator as the seeds say it should; dry runs send no mutation; a request for one
//! tenant never reaches the other.

mod pack_support;

use std::time::Duration;

use dsrctl::emulator::Fixture;
use dsrctl::journal::{RunMode, StepStatus};
use pack_support::{Pack, ids};
use serde_json::Value;

const SAMPLES: &[&str] = &[
    "access-alice.yaml",
    "export-alice-ccpa.yaml",
    "rectify-alice.yaml",
    "restrict-alice.yaml",
    "delete-alice.yaml",
    "delete-alice-ccpa.yaml",
    "fabrikam-delete-frank.yaml",
    "fabrikam-access-alice.yaml",
];

fn has_rel_with(rels: &Value, twin: &str) -> bool {
    rels.as_array().unwrap().iter().any(|r| {
        r.get("$sourceId").and_then(Value::as_str) == Some(twin)
            || r.get("$targetId").and_then(Value::as_str) == Some(twin)
    })
}

/// What a deletion of Alice in contoso must leave (seeds 000-004).
async fn assert_alice_erased(pack: &Pack) {
    let s = pack.snapshot("contoso");
    // Seed 002: soft delete, then permanent delete: gone from users and deleted items.
    assert_eq!(
        ids(&s["graph"]["users"], "id"),
        ["user-bob", "user-carol", "user-dan"]
    );
    assert_eq!(ids(&s["graph"]["deletedItems"], "id"), Vec::<String>::new());
    // Seed 000: her twins gone, and every relationship from or to them.
    assert_eq!(
        ids(&s["digitalTwins"]["twins"], "$dtId"),
        ["floor-1", "person-bob", "room-101", "team-facilities"]
    );
    let rels = &s["digitalTwins"]["relationships"];
    assert!(!has_rel_with(rels, "person-alice") && !has_rel_with(rels, "thermostat-alice-01"));
    assert_eq!(
        ids(rels, "$relationshipId"),
        ["facilities-has-member-bob", "floor-1-contains-room-101"]
    );
    // Seed 003: the enrollment and its registration, and her badge's registration.
    assert_eq!(
        ids(&s["dps"]["enrollments"], "registrationId"),
        ["thermostat-bob-01", "thermostat-carol-01"]
    );
    assert_eq!(
        ids(&s["dps"]["registrations"], "registrationId"),
        ["badge-bob", "badge-visitor-07", "thermostat-bob-01"]
    );
    assert_eq!(
        ids(&s["dps"]["enrollmentGroups"], "enrollmentGroupId").len(),
        3
    );
    // Seed 001: the application user and her device.
    assert_eq!(
        ids(&s["iotCentral"]["users"], "id"),
        ["sp-automation", "user-bob", "user-carol"]
    );
    assert_eq!(
        ids(&s["iotCentral"]["devices"], "id"),
        ["lobby-display", "thermostat-bob-01"]
    );
    // Seed 004: the upstream source first: her customer record and orders.
    assert_eq!(
        pack.crm_emails("crm.db").await,
        [
            "bob@contoso.com|Bob Okafor|London",
            "carol@contoso.com|Carol Nguyen|Seattle",
            "dan.o'brien@contoso.com|Dan O'Brien|Dublin"
        ]
    );
    assert_eq!(pack.crm_order_ids("crm.db").await, [201, 301, 401]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_leaves_the_services_as_the_seeds_say() {
    let pack = Pack::start().await;
    let fabrikam_before = pack.snapshot("fabrikam");
    let run = pack.apply("delete-alice.yaml").await;
    run.all_accounted();
    assert_alice_erased(&pack).await;
    assert_eq!(pack.snapshot("fabrikam"), fabrikam_before);

    // Verification passed for every verified mutation.
    for key in [
        "entra-users/soft-delete",
        "entra-users/purge",
        "iot-central/delete-user",
    ] {
        let o = run.step(key);
        assert_eq!(o.status, StepStatus::Succeeded, "{key}: {:?}", o.message);
        assert!(o.verification.as_ref().is_some_and(|v| v.passed), "{key}");
    }
    for key in ["digital-twins/drop-twins#0", "digital-twins/drop-twins#1"] {
        assert!(
            run.step(key)
                .verification
                .as_ref()
                .is_some_and(|v| v.passed)
        );
    }
    assert_eq!(
        run.status("digital-twins/drop-outgoing"),
        StepStatus::Succeeded
    );

    // Manual tasks wait with their instructions rendered for the subject.
    for key in [
        "iot-central/remove-alert-emails",
        "customer-insights/refresh-sources",
        "customer-insights/remove-user",
    ] {
        let o = run.step(key);
        assert_eq!(o.status, StepStatus::Waiting, "{key}");
        let msg = o.message.as_deref().unwrap();
        assert!(
            msg.contains("alice@contoso.com") && !msg.contains("{{"),
            "{msg}"
        );
    }
    // Seed 004: Customer Insights is refreshed after the CRM deletion; later tasks wait.
    assert!(
        run.plan
            .steps
            .iter()
            .find(|s| s.key == "customer-insights/refresh-sources")
            .unwrap()
            .needs
            .contains(&"crm/erase-customers".to_owned())
    );
    assert!(run.waits_behind("customer-insights/recreate-static-segments"));
    // Once the tasks are recorded done, the later ones open, in order.
    let run = pack.complete_tasks(run, "ops").await;
    run.all_accounted();
    assert_eq!(
        run.status("customer-insights/downstream-refresh"),
        StepStatus::Waiting
    );
    let run = pack.complete_tasks(run, "ops").await;
    let run = pack.complete_tasks(run, "ops").await;
    run.all_accounted();
    assert_eq!(
        run.status("customer-insights/recreate-static-segments"),
        StepStatus::Succeeded
    );
    // Logs go with the user: the run waits out the 30 days after the purge.
    let logs = run.step("entra-logs/expunged-with-user");
    assert_eq!(logs.status, StepStatus::Waiting);
    assert!(logs.due_at.is_some() && logs.message.as_deref().unwrap().contains("30 days"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrict_exports_then_deletes() {
    // One item per page: every listing and query crosses pages.
    let mut fixture = Fixture::contoso();
    fixture.settings.page_size = 1;
    let pack = Pack::with_fixture(fixture).await;
    let mut run = pack.apply("restrict-alice.yaml").await;
    run.all_accounted();
    // The deletions wait until the export's manual parts are done (export first).
    assert!(run.waits_behind("iot-central/delete.delete-user"));
    assert_eq!(
        pack.snapshot("contoso")["iotCentral"]["users"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    for _ in 0..4 {
        run = pack.complete_tasks(run, "privacy-ops").await;
    }
    run.all_accounted();
    assert_alice_erased(&pack).await;
    let calls = pack.emulator.calls();
    let continued = |path: &str, needle: &str| {
        calls.iter().any(|c| {
            c.path.ends_with(path) && (c.body.contains(needle) || c.query.contains(needle))
        })
    };
    assert!(continued("/adt/query", "continuationToken"));
    assert!(continued("/incomingrelationships", "continuationToken"));
    assert!(continued("/iotc/api/users", "skiptoken"));
    // The export half ran first and kept only Alice's records.
    let users = run.collected("iot-central/access.find-user");
    assert_eq!(ids(&Value::Array(users), "email"), ["alice@contoso.com"]);
    let twins = run.collected("digital-twins/access.find-twins");
    assert_eq!(
        ids(&Value::Array(twins), "$dtId"),
        ["person-alice", "thermostat-alice-01"]
    );
    // System-generated logs cannot be restricted: an exemption, not a step.
    assert!(!run.plan.steps.iter().any(|s| s.service == "entra-logs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_collects_only_the_subjects_records_and_changes_nothing() {
    let pack = Pack::start().await;
    let before = pack.snapshot("contoso");
    let run = pack.apply("access-alice.yaml").await;
    run.all_accounted();
    let after = pack.snapshot("contoso");
    for api in ["digitalTwins", "dps", "iotCentral"] {
        assert_eq!(after[api], before[api], "{api} changed");
    }
    assert_eq!(after["graph"]["users"], before["graph"]["users"]);
    assert_eq!(pack.crm_order_ids("crm.db").await.len(), 6);

    let profile = run.collected("entra-users/find-user");
    assert_eq!(profile.len(), 1);
    assert_eq!(profile[0]["value"][0]["mail"], "alice@contoso.com");
    let users = run.collected("iot-central/find-user");
    assert_eq!(ids(&Value::Array(users), "id"), ["user-alice"]);
    let devices = run.collected("iot-central/devices");
    assert_eq!(ids(&Value::Array(devices), "id"), ["thermostat-alice-01"]);
    let enrollments = run.collected("dps/enrollments");
    assert_eq!(
        ids(&Value::Array(enrollments), "registrationId"),
        ["thermostat-alice-01"]
    );
    let group_regs = run.collected("dps/group-registrations");
    assert_eq!(
        ids(&Value::Array(group_regs), "registrationId"),
        ["badge-alice"]
    );
    let groups = run.collected("dps/person-groups");
    assert_eq!(
        ids(&Value::Array(groups), "enrollmentGroupId"),
        ["contoso-badges"]
    );
    let outgoing = run.collected("digital-twins/outgoing");
    assert_eq!(outgoing.len(), 3);
    let incoming = run.collected("digital-twins/incoming");
    assert_eq!(incoming.len(), 4);
    let orders = run.collected("crm/read-orders");
    assert_eq!(orders.len(), 3);

    // The log export was submitted and, with an export duration of 0, is complete.
    assert_eq!(
        run.status("entra-logs/export-status"),
        StepStatus::Succeeded
    );
    let ops = &after["graph"]["dataPolicyOperations"];
    assert_eq!(ops.as_array().unwrap().len(), 1);
    assert_eq!(ops[0]["userId"], "user-alice");
    // Customer Insights export: three tasks for the tenant admin, in order.
    assert_eq!(
        run.status("customer-insights/email-request"),
        StepStatus::Waiting,
        "{}",
        run.keys()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_log_export_waits_as_a_deferred_step() {
    let mut fixture = Fixture::contoso();
    fixture.settings.export_duration_secs = 7 * 24 * 3600;
    let pack = Pack::with_fixture(fixture).await;
    let run = pack.apply("export-alice-ccpa.yaml").await;
    run.all_accounted();
    let poll = run.step("entra-logs/export-status");
    assert_eq!(poll.status, StepStatus::Waiting, "{:?}", poll.message);
    assert!(poll.due_at.is_some());
    assert!(poll.message.as_deref().unwrap().contains("polling"));
    pack.emulator
        .advance_clock(Duration::from_secs(8 * 24 * 3600));
    let s = pack.snapshot("contoso");
    assert_eq!(s["graph"]["dataPolicyOperations"][0]["status"], "complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rectify_corrects_the_profile_the_twin_and_the_crm() {
    let pack = Pack::start().await;
    let run = pack.apply("rectify-alice.yaml").await;
    run.all_accounted();
    let s = pack.snapshot("contoso");
    let alice = s["graph"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "user-alice")
        .unwrap();
    assert_eq!(alice["displayName"], "Alice Martin-Durand");
    assert_eq!(alice["city"], "Lyon");
    let twin = s["digitalTwins"]["twins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["$dtId"] == "person-alice")
        .unwrap();
    assert_eq!(twin["displayName"], "Alice Martin-Durand");
    // The patch carried the ETag of the read.
    let patch = pack
        .emulator
        .calls()
        .into_iter()
        .find(|c| c.method == "PATCH" && c.path.contains("/adt/"))
        .unwrap();
    assert!(patch.body.contains("/displayName"));
    assert_eq!(
        pack.crm_emails("crm.db").await[0],
        "alice@contoso.com|Alice Martin-Durand|Lyon"
    );
    assert_eq!(
        pack.crm_emails("crm.db").await[1],
        "bob@contoso.com|Bob Okafor|London"
    );
    // Logs cannot be rectified: exempt with the seed's reason.
    let logs = run
        .plan
        .services
        .iter()
        .find(|s| s.service == "entra-logs")
        .unwrap();
    assert!(format!("{:?}", logs.disposition).contains("historical record"));
    for key in [
        "iot-central/correct-alert-emails",
        "dps/correct-device-tags",
    ] {
        let msg = run.step(key).message.clone().unwrap();
        assert!(msg.contains("Lyon"), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabrikam_request_never_reaches_contoso() {
    let pack = Pack::start().await;
    let contoso_before = pack.snapshot("contoso");
    let run = pack.apply("fabrikam-delete-frank.yaml").await;
    run.all_accounted();
    let access = pack.apply("fabrikam-access-alice.yaml").await;
    access.all_accounted();
    let calls = pack.emulator.calls();
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|c| c.tenant == "fabrikam"),
        "{:?}",
        calls.iter().find(|c| c.tenant != "fabrikam")
    );
    assert_eq!(pack.snapshot("contoso"), contoso_before);
    let s = pack.snapshot("fabrikam");
    assert_eq!(ids(&s["graph"]["users"], "id"), ["user-alice-guest"]);
    assert_eq!(
        ids(&s["digitalTwins"]["twins"], "$dtId"),
        ["person-alice", "room-b2"]
    );
    assert_eq!(ids(&s["dps"]["enrollments"], "registrationId").len(), 0);
    assert_eq!(ids(&s["iotCentral"]["users"], "id"), ["user-alice"]);
    assert_eq!(ids(&s["iotCentral"]["devices"], "id").len(), 0);
    assert_eq!(
        pack.crm_emails("fabrikam-crm.db").await,
        ["alice@contoso.com|Alice Martin|Paris"]
    );
    assert_eq!(pack.crm_emails("crm.db").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_of_every_sample_send_no_mutation() {
    let pack = Pack::start().await;
    let contoso = pack.snapshot("contoso");
    let fabrikam = pack.snapshot("fabrikam");
    for file in SAMPLES {
        let run = pack.execute(file, RunMode::DryRun).await;
        for s in &run.plan.steps {
            let o = run.step(&s.key);
            assert!(
                !matches!(o.status, StepStatus::Failed | StepStatus::Pending),
                "{file}: {} is {:?}: {:?}",
                s.key,
                o.status,
                o.message
            );
        }
        let mutations: Vec<_> = pack
            .emulator
            .calls()
            .into_iter()
            .filter(|c| c.is_mutation())
            .collect();
        assert!(mutations.is_empty(), "{file}: {mutations:?}");
    }
    // The same through the command a user types: `dsrctl plan REQUEST`.
    let before = pack.emulator.calls().len();
    for file in SAMPLES {
        let dir = pack.dir();
        let request = format!("requests/{file}");
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
                .arg("-C")
                .arg(&dir)
                .args(["plan", &request])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "dsrctl plan {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let calls = pack.emulator.calls();
    assert!(calls.len() > before + 50, "the plans read the services");
    let mutations: Vec<_> = calls.iter().filter(|c| c.is_mutation()).collect();
    assert!(mutations.is_empty(), "{mutations:?}");
    assert_eq!(pack.snapshot("contoso"), contoso);
    assert_eq!(pack.snapshot("fabrikam"), fabrikam);
    assert_eq!(pack.crm_order_ids("crm.db").await.len(), 6);
    assert_eq!(pack.crm_emails("fabrikam-crm.db").await.len(), 2);
}

/// `dsrctl validate` and `dsrctl test` on the example project, as a user runs them, except
/// that nothing is written into the source tree: a validation cache there would be built into
/// the binary with the example (`init --example` would copy it).
#[test]
fn the_example_project_validates_and_its_playbook_tests_pass() {
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/contoso");
    for command in [&["validate", "--no-cache"][..], &["test"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
            .arg("-C")
            .arg(&project)
            .args(command)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "dsrctl {command:?}:\n{text}");
        assert!(!text.contains("warning"), "dsrctl {command:?}:\n{text}");
    }
}
