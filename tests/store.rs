//! The state store: the same test bodies run against SQLite (a file in a tempdir) and the
//! real PostgreSQL (`DSRCTL_TEST_POSTGRES_URL`, each test in its own schema).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as Span, NaiveDate, Utc};
use dsrctl::journal::{
    PLAN_FORMAT_VERSION, Plan, RequestState, RunMode, RunStatus, StepOutcome, StepStatus,
    sha256_hex,
};
use dsrctl::model::{DsrKind, Identity, Jurisdiction, Request};
use dsrctl::store::{
    DRP_RECHECK, DrpOrigin, DrpSettled, GENESIS_HASH, RequestImport, Store, StoreError, open,
    verify_chain, verify_chain_to,
};
use serde_json::json;

#[path = "store_harness/mod.rs"]
mod harness;
use harness::{Ctx, both};

fn request(id: &str, received: &str, jurisdiction: Jurisdiction) -> Request {
    Request {
        id: id.to_owned(),
        kind: DsrKind::Delete,
        tenant: "contoso".to_owned(),
        jurisdiction,
        received: received.parse().expect("date"),
        subject: BTreeMap::from([(
            "email".to_owned(),
            Identity::One("alice@contoso.com".to_owned()),
        )]),
        corrections: None,
        note: None,
        name: None,
        language: None,
    }
}

fn plan(request_id: &str) -> Plan {
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        created_at: Utc::now(),
        request: request(request_id, "2026-01-31", Jurisdiction::Gdpr),
        inputs: BTreeMap::new(),
        services: Vec::new(),
        steps: Vec::new(),
    }
}

fn outcome(instance: &str, status: StepStatus) -> StepOutcome {
    StepOutcome::new(
        instance,
        instance.split('#').next().unwrap_or(instance),
        status,
    )
}

fn waiting(instance: &str, due_in: Option<Span>) -> StepOutcome {
    let mut o = outcome(instance, StepStatus::Waiting);
    o.due_at = due_in.map(|d| Utc::now() + d);
    o
}

both!(runs_and_outcomes_read_back);
async fn runs_and_outcomes_read_back(ctx: &Ctx) {
    let store = ctx.open().await;
    let run = store
        .create_run(&plan("r-1"), RunMode::Apply)
        .await
        .unwrap();
    let mut first = outcome("adt/list", StepStatus::Running);
    store.record(&run, &first).await.unwrap();
    let mut second = outcome("adt/drop#0", StepStatus::Succeeded);
    second.captures.insert("id".into(), json!("twin-1"));
    second.http_status = Some(204);
    store.record(&run, &second).await.unwrap();
    first.status = StepStatus::Succeeded;
    first.found = 3;
    store.record(&run, &first).await.unwrap();

    // The replaced instance keeps its place; the content is the latest.
    assert_eq!(store.outcomes(&run).await.unwrap(), vec![first, second]);

    let record = store.run(&run[..8]).await.unwrap();
    assert_eq!(record.id, run);
    assert_eq!(record.request_id, "r-1");
    assert_eq!(record.mode, RunMode::Apply);
    assert_eq!(record.status, RunStatus::Running);
    assert_eq!(record.plan, plan_with_time(&record.plan));
    assert!(matches!(
        store.run("01").await,
        Err(StoreError::RunNotFound(_))
    ));
    assert!(matches!(
        store.run("zzzz").await,
        Err(StoreError::RunNotFound(_))
    ));

    store
        .set_run_status(&run, RunStatus::Completed)
        .await
        .unwrap();
    assert_eq!(store.run(&run).await.unwrap().status, RunStatus::Completed);
    assert!(matches!(
        store.set_run_status("nope", RunStatus::Failed).await,
        Err(StoreError::RunNotFound(_))
    ));
    let err = store
        .record("no-such-run", &outcome("a/b", StepStatus::Running))
        .await;
    assert!(matches!(err, Err(StoreError::RunNotFound(_))), "{err:?}");

    let other = store
        .create_run(&plan("r-2"), RunMode::DryRun)
        .await
        .unwrap();
    let runs = store.runs(10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [&other, &run]
    );
    assert_eq!(store.runs(1).await.unwrap().len(), 1);
    store.close().await;
}

/// The plan as stored equals the plan given, whatever its creation time.
fn plan_with_time(stored: &Plan) -> Plan {
    let mut p = plan("r-1");
    p.created_at = stored.created_at;
    p.request.received = stored.request.received;
    p
}

both!(resume_finds_the_unfinished_apply_run);
async fn resume_finds_the_unfinished_apply_run(ctx: &Ctx) {
    let store = ctx.open().await;
    assert_eq!(store.unfinished_run("r-9").await.unwrap(), None);
    let dry = store
        .create_run(&plan("r-9"), RunMode::DryRun)
        .await
        .unwrap();
    assert_eq!(store.unfinished_run("r-9").await.unwrap(), None, "{dry}");
    let first = store
        .create_run(&plan("r-9"), RunMode::Apply)
        .await
        .unwrap();
    store
        .set_run_status(&first, RunStatus::Failed)
        .await
        .unwrap();
    assert_eq!(
        store.unfinished_run("r-9").await.unwrap(),
        Some(first.clone())
    );
    store
        .set_run_status(&first, RunStatus::Interrupted)
        .await
        .unwrap();
    assert_eq!(
        store.unfinished_run("r-9").await.unwrap(),
        Some(first.clone())
    );
    store
        .set_run_status(&first, RunStatus::Completed)
        .await
        .unwrap();
    assert_eq!(store.unfinished_run("r-9").await.unwrap(), None);
    // Run again after it completed: the new run is the unfinished one.
    let again = store
        .create_run(&plan("r-9"), RunMode::Apply)
        .await
        .unwrap();
    assert_eq!(store.unfinished_run("r-9").await.unwrap(), Some(again));
    assert_eq!(store.unfinished_run("r-other").await.unwrap(), None);
}

// Regression: `dsrctl run` checked for a live run, then created one; two started at the same
// moment (two terminals, or a person and a worker) both passed the check and both ran the
// request, sending every mutation twice.
both!(one_request_has_one_live_run_even_when_two_start_at_once);
async fn one_request_has_one_live_run_even_when_two_start_at_once(ctx: &Ctx) {
    // Two processes: two stores on the same database.
    let stores = [ctx.open().await, ctx.open().await];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            store.create_run(&plan("r-live"), RunMode::Apply).await
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(run) => created.push(run),
            Err(StoreError::LiveRun(request)) => assert_eq!(request, "r-live"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    let store = &stores[0];
    // Dry runs and other requests are not held up.
    store
        .create_run(&plan("r-live"), RunMode::DryRun)
        .await
        .unwrap();
    store
        .create_run(&plan("r-other"), RunMode::Apply)
        .await
        .unwrap();
    // A failed run is still live (it is resumed, not run afresh)...
    store
        .set_run_status(&created[0], RunStatus::Failed)
        .await
        .unwrap();
    assert!(matches!(
        store.create_run(&plan("r-live"), RunMode::Apply).await,
        Err(StoreError::LiveRun(_))
    ));
    // ...an abandoned or completed one is not.
    store
        .set_run_status(&created[0], RunStatus::Abandoned)
        .await
        .unwrap();
    let next = store
        .create_run(&plan("r-live"), RunMode::Apply)
        .await
        .unwrap();
    store
        .set_run_status(&next, RunStatus::Completed)
        .await
        .unwrap();
    store
        .create_run(&plan("r-live"), RunMode::Apply)
        .await
        .unwrap();
}

both!(a_run_is_replanned_in_place_and_abandoned_for_good);
async fn a_run_is_replanned_in_place_and_abandoned_for_good(ctx: &Ctx) {
    let store = ctx.open().await;
    assert!(store.latest_run("r-7").await.unwrap().is_none());
    store
        .create_run(&plan("r-7"), RunMode::DryRun)
        .await
        .unwrap();
    assert!(
        store.latest_run("r-7").await.unwrap().is_none(),
        "dry runs do not count"
    );
    let run = store
        .create_run(&plan("r-7"), RunMode::Apply)
        .await
        .unwrap();
    let done = outcome("crm/notify", StepStatus::Succeeded);
    let failed = outcome("crm/drop", StepStatus::Failed);
    store.record(&run, &done).await.unwrap();
    store.record(&run, &failed).await.unwrap();
    store.set_run_status(&run, RunStatus::Failed).await.unwrap();
    assert_eq!(store.latest_run("r-7").await.unwrap().unwrap().id, run);

    // A new plan replaces the old one; the journal and the status stay as they were.
    let mut fixed = plan("r-7");
    fixed
        .inputs
        .insert("policies/crm.yaml".into(), "fixed".into());
    store.replace_plan(&run, &fixed).await.unwrap();
    let record = store.run(&run).await.unwrap();
    assert_eq!(record.plan.inputs, fixed.inputs);
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(store.outcomes(&run).await.unwrap(), vec![done, failed]);
    assert!(matches!(
        store.replace_plan("no-such-run", &fixed).await,
        Err(StoreError::RunNotFound(_))
    ));

    // Abandoned: read back as such, never unfinished, never claimed by a worker.
    store
        .set_run_status(&run, RunStatus::Abandoned)
        .await
        .unwrap();
    assert_eq!(store.run(&run).await.unwrap().status, RunStatus::Abandoned);
    assert_eq!(store.unfinished_run("r-7").await.unwrap(), None);
    let latest = store.latest_run("r-7").await.unwrap().unwrap();
    assert_eq!(
        (latest.id.as_str(), latest.status),
        (run.as_str(), RunStatus::Abandoned)
    );
    let claimed = store
        .claim_runs("w1", 10, Duration::from_secs(60), Utc::now())
        .await
        .unwrap();
    assert!(!claimed.contains(&run), "{claimed:?}");

    // A fresh run of the request is the latest from then on.
    let fresh = store
        .create_run(&plan("r-7"), RunMode::Apply)
        .await
        .unwrap();
    assert_eq!(store.latest_run("r-7").await.unwrap().unwrap().id, fresh);
    assert_eq!(store.unfinished_run("r-7").await.unwrap(), Some(fresh));
    store.close().await;
}

both!(a_record_survives_dropping_the_store_without_close);
async fn a_record_survives_dropping_the_store_without_close(ctx: &Ctx) {
    let store = ctx.open().await;
    let run = store
        .create_run(&plan("r-1"), RunMode::Apply)
        .await
        .unwrap();
    store
        .record(&run, &outcome("svc/delete", StepStatus::Succeeded))
        .await
        .unwrap();
    drop(store);
    let reopened = ctx.open().await;
    let outcomes = reopened.outcomes(&run).await.unwrap();
    assert_eq!(outcomes, vec![outcome("svc/delete", StepStatus::Succeeded)]);
}

both!(a_record_survives_sigkill_of_the_writer);
async fn a_record_survives_sigkill_of_the_writer(ctx: &Ctx) {
    let (run, acked) = harness::record_in_child_then_sigkill(ctx.location()).await;
    let store = ctx.open().await;
    let outcomes = store.outcomes(&run).await.unwrap();
    let stored: HashSet<String> = outcomes.iter().map(|o| o.instance.clone()).collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
    assert!(outcomes.iter().all(|o| o.status == StepStatus::Succeeded));
}

/// The child half of `a_record_survives_sigkill_of_the_writer`: does nothing unless the
/// parent set the environment variable naming the store.
#[tokio::test]
async fn sigkill_child_writer() {
    harness::child_writer().await;
}

both!(group_commit_keeps_every_concurrent_record);
async fn group_commit_keeps_every_concurrent_record(ctx: &Ctx) {
    let store = ctx.open().await;
    let mut runs = Vec::new();
    for i in 0..10 {
        runs.push(
            store
                .create_run(&plan(&format!("r-{i}")), RunMode::Apply)
                .await
                .unwrap(),
        );
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for run in runs.clone() {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 {
                let o = outcome(&format!("svc/step#{i}"), StepStatus::Succeeded);
                store.record(&run, &o).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    eprintln!("{}: 10 tasks x 1,000 records in {elapsed:?}", ctx.backend());
    for run in &runs {
        let outcomes = store.outcomes(run).await.unwrap();
        assert_eq!(outcomes.len(), 1000);
        assert_eq!(outcomes[999].instance, "svc/step#999");
    }
    // Generous: the machine is shared; the figure measured is printed above.
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}

both!(a_bad_record_does_not_fail_its_batch);
async fn a_bad_record_does_not_fail_its_batch(ctx: &Ctx) {
    let store = ctx.open().await;
    let run = store
        .create_run(&plan("r-1"), RunMode::Apply)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = Arc::clone(&store);
        let target = if i == 17 {
            "no-such-run".to_owned()
        } else {
            run.clone()
        };
        tasks.push(tokio::spawn(async move {
            let o = outcome(&format!("svc/step#{i}"), StepStatus::Succeeded);
            store.record(&target, &o).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let result = t.await.unwrap();
        if i == 17 {
            assert!(
                matches!(result, Err(StoreError::RunNotFound(_))),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    assert_eq!(store.outcomes(&run).await.unwrap().len(), 39);
}

both!(two_workers_never_claim_the_same_run);
async fn two_workers_never_claim_the_same_run(ctx: &Ctx) {
    let a = ctx.open().await;
    let b = ctx.open().await;
    let mut all = HashSet::new();
    for i in 0..60 {
        all.insert(
            a.create_run(&plan(&format!("r-{i}")), RunMode::Apply)
                .await
                .unwrap(),
        );
    }
    let ttl = Duration::from_secs(60);
    let now = Utc::now();
    let mut claimed_a = Vec::new();
    let mut claimed_b = Vec::new();
    for _ in 0..4 {
        let (ra, rb) = tokio::join!(
            a.claim_runs("worker-a", 10, ttl, now),
            b.claim_runs("worker-b", 10, ttl, now)
        );
        claimed_a.extend(ra.unwrap());
        claimed_b.extend(rb.unwrap());
    }
    let set_a: HashSet<_> = claimed_a.iter().cloned().collect();
    let set_b: HashSet<_> = claimed_b.iter().cloned().collect();
    assert_eq!(set_a.len(), claimed_a.len());
    assert!(set_a.is_disjoint(&set_b), "a run claimed twice");
    assert_eq!(
        set_a.len() + set_b.len(),
        60,
        "every runnable run is claimed once"
    );
    assert!(set_a.union(&set_b).all(|id| all.contains(id)));
    // Nothing is left while the leases live; after they lapse the runs can be taken over.
    assert!(
        a.claim_runs("worker-a", 100, ttl, now)
            .await
            .unwrap()
            .is_empty()
    );
    let later = now + Span::seconds(61);
    assert_eq!(
        b.claim_runs("worker-b", 100, ttl, later)
            .await
            .unwrap()
            .len(),
        60
    );
}

both!(an_expired_lease_can_be_taken_over);
async fn an_expired_lease_can_be_taken_over(ctx: &Ctx) {
    let a = ctx.open().await;
    let b = ctx.open().await;
    let run = a.create_run(&plan("r-1"), RunMode::Apply).await.unwrap();
    let ttl = Duration::from_secs(30);
    let now = Utc::now();
    assert!(a.lease("a", &run, ttl, now).await.unwrap());
    assert!(
        a.lease("a", &run, ttl, now).await.unwrap(),
        "re-taking one's own lease"
    );
    assert!(
        !b.lease("b", &run, ttl, now + Span::seconds(29))
            .await
            .unwrap()
    );
    assert!(
        a.renew("a", &run, ttl, now + Span::seconds(20))
            .await
            .unwrap()
    );
    assert!(
        !b.lease("b", &run, ttl, now + Span::seconds(49))
            .await
            .unwrap()
    );
    // Worker a dies: its lease lapses and b takes over; a can no longer renew.
    assert!(
        b.lease("b", &run, ttl, now + Span::seconds(51))
            .await
            .unwrap()
    );
    assert!(
        !a.renew("a", &run, ttl, now + Span::seconds(52))
            .await
            .unwrap()
    );
    a.release("a", &run).await.unwrap();
    assert!(
        !a.lease("a", &run, ttl, now + Span::seconds(53))
            .await
            .unwrap()
    );
    b.release("b", &run).await.unwrap();
    assert!(
        a.lease("a", &run, ttl, now + Span::seconds(54))
            .await
            .unwrap()
    );
    assert!(matches!(
        a.lease("a", "no-such-run", ttl, now).await,
        Err(StoreError::RunNotFound(_))
    ));
}

both!(audit_chain_detects_tampering);
async fn audit_chain_detects_tampering(ctx: &Ctx) {
    let a = ctx.open().await;
    let b = ctx.open().await;
    // Two workers appending at once still make one chain.
    let mut tasks = Vec::new();
    for (w, store) in [("a", Arc::clone(&a)), ("b", Arc::clone(&b))] {
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let detail = json!({"worker": w, "i": i, "z": [1, {"y": 2, "x": 1}]});
                store
                    .append_audit("request.approved", "r-1", detail, Some("dpo"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let entries = a.audit_entries().await.unwrap();
    assert_eq!(entries.len(), 20);
    assert_eq!(verify_chain(&entries, None), Ok(()));

    ctx.exec(r#"UPDATE audit_log SET detail = '{"worker":"a","i":99}' WHERE seq = 5"#)
        .await;
    let broken = verify_chain(&a.audit_entries().await.unwrap(), None).unwrap_err();
    assert_eq!(broken.index, 4, "{broken}");

    ctx.exec("DELETE FROM audit_log WHERE seq = 5").await;
    let broken = verify_chain(&a.audit_entries().await.unwrap(), None).unwrap_err();
    assert_eq!(broken.index, 4, "{broken}");
}

both!(audit_head_catches_the_newest_entries_removed);
async fn audit_head_catches_the_newest_entries_removed(ctx: &Ctx) {
    let store = ctx.open().await;
    assert_eq!(
        store.audit_head().await.unwrap(),
        (0, GENESIS_HASH.to_owned())
    );
    for i in 0..3 {
        store
            .append_audit(
                "request.approved",
                &format!("r-{i}"),
                json!({}),
                Some("dpo"),
            )
            .await
            .unwrap();
    }
    let entries = store.audit_entries().await.unwrap();
    let head = store.audit_head().await.unwrap();
    assert_eq!(head, (3, entries[2].hash.clone()));
    assert_eq!(verify_chain_to(&entries, (head.0, &head.1), None), Ok(()));

    // The newest entry removed: the rest still links up, but no longer ends at the head.
    ctx.exec("DELETE FROM audit_log WHERE seq = 3").await;
    let entries = store.audit_entries().await.unwrap();
    assert_eq!(verify_chain(&entries, None), Ok(()));
    let broken = verify_chain_to(&entries, (head.0, &head.1), None).unwrap_err();
    assert_eq!(broken.index, 2, "{broken}");
}

both!(concurrent_changes_each_get_their_own_answer);
/// Many callers at once (the PostgreSQL store makes their changes in one transaction, one
/// statement per kind): each gets its own answer, refusals do not undo the others, and two
/// changes of one row that exclude each other let exactly one through.
async fn concurrent_changes_each_get_their_own_answer(ctx: &Ctx) {
    let store = ctx.open().await;
    for i in 0..30 {
        let r = request(&format!("r-{i}"), "2026-01-31", Jurisdiction::Gdpr);
        store.put_request(&r, RequestState::Received).await.unwrap();
    }
    let mut runs = Vec::new();
    for i in 0..10 {
        runs.push(
            store
                .create_run(&plan(&format!("p-{i}")), RunMode::Apply)
                .await
                .unwrap(),
        );
    }
    let mut moves = Vec::new();
    for i in 0..30 {
        let store = Arc::clone(&store);
        // A third asks for a move the lifecycle refuses (received -> completed).
        let to = if i % 3 == 0 {
            RequestState::Completed
        } else {
            RequestState::Approved
        };
        moves.push(tokio::spawn(async move {
            store.set_request_state(&format!("r-{i}"), to, None).await
        }));
    }
    let missing = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .set_request_state("no-such-request", RequestState::Approved, None)
                .await
        })
    };
    let mut statuses = Vec::new();
    for run in runs.iter().cloned().chain(["no-such-run".to_owned()]) {
        let store = Arc::clone(&store);
        statuses.push(tokio::spawn(async move {
            store.set_run_status(&run, RunStatus::Waiting).await
        }));
    }
    let mut audits = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        audits.push(tokio::spawn(async move {
            store
                .append_audit("request.noted", &format!("r-{i}"), json!({"i": i}), None)
                .await
        }));
    }
    for (i, t) in moves.into_iter().enumerate() {
        let result = t.await.unwrap();
        if i % 3 == 0 {
            assert!(
                matches!(
                    result,
                    Err(StoreError::InvalidTransition {
                        from: RequestState::Received,
                        to: RequestState::Completed,
                        ..
                    })
                ),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    let result = missing.await.unwrap();
    assert!(
        matches!(result, Err(StoreError::RequestNotFound(_))),
        "{result:?}"
    );
    let results: Vec<_> = futures::future::join_all(statuses).await;
    for (i, r) in results.into_iter().enumerate() {
        let r = r.unwrap();
        if i == runs.len() {
            assert!(matches!(r, Err(StoreError::RunNotFound(_))), "{r:?}");
        } else {
            r.unwrap();
        }
    }
    let mut seqs = Vec::new();
    for t in audits {
        seqs.push(t.await.unwrap().unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());

    for (i, r) in store.requests().await.unwrap().iter().enumerate() {
        let n: usize = r.request.id[2..].parse().unwrap();
        let want = if n.is_multiple_of(3) {
            RequestState::Received
        } else {
            RequestState::Approved
        };
        assert_eq!(r.state, want, "request {i}: {}", r.request.id);
    }
    for run in &runs {
        assert_eq!(store.run(run).await.unwrap().status, RunStatus::Waiting);
    }
    let entries = store.audit_entries().await.unwrap();
    let head = store.audit_head().await.unwrap();
    assert_eq!(verify_chain_to(&entries, (head.0, &head.1), None), Ok(()));

    // Two moves of one approved request that exclude each other (approved -> running,
    // approved -> declined; neither state may become the other): exactly one goes through.
    let (a, b) = tokio::join!(
        store.set_request_state("r-1", RequestState::Running, None),
        store.set_request_state("r-1", RequestState::Declined, Some("duplicate".into())),
    );
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    // Two workers starting the same request: one run.
    let plan = plan("r-2");
    let ttl = Duration::from_secs(60);
    let (a, b) = tokio::join!(
        store.start_request(&plan, "worker-a", ttl, Utc::now()),
        store.start_request(&plan, "worker-b", ttl, Utc::now()),
    );
    let started: Vec<String> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(
        store.request("r-2").await.unwrap().state,
        RequestState::Running
    );
    // The lease is the starter's alone: exactly one of the two renews it.
    let (by_a, by_b) = tokio::join!(
        store.renew("worker-a", &started[0], ttl, Utc::now()),
        store.renew("worker-b", &started[0], ttl, Utc::now()),
    );
    assert!(by_a.unwrap() != by_b.unwrap());
}

both!(due_steps_returns_only_due_waiting_steps);
async fn due_steps_returns_only_due_waiting_steps(ctx: &Ctx) {
    let store = ctx.open().await;
    let due = store
        .create_run(&plan("r-due"), RunMode::Apply)
        .await
        .unwrap();
    let later = store
        .create_run(&plan("r-later"), RunMode::Apply)
        .await
        .unwrap();
    let manual = store
        .create_run(&plan("r-manual"), RunMode::Apply)
        .await
        .unwrap();
    store
        .record(&due, &waiting("purge/check", Some(Span::hours(-1))))
        .await
        .unwrap();
    store
        .record(&due, &outcome("purge/delete", StepStatus::Succeeded))
        .await
        .unwrap();
    store
        .record(&later, &waiting("purge/check", Some(Span::days(30))))
        .await
        .unwrap();
    store
        .record(&manual, &waiting("iot/alerts", None))
        .await
        .unwrap();
    let mut done = outcome("x/y", StepStatus::Succeeded);
    done.due_at = Some(Utc::now() - Span::hours(2));
    store.record(&manual, &done).await.unwrap();
    for run in [&due, &later, &manual] {
        store.set_run_status(run, RunStatus::Waiting).await.unwrap();
    }

    let now = Utc::now();
    assert_eq!(
        store.due_steps(now).await.unwrap(),
        vec![(due.clone(), "purge/check".to_owned())]
    );
    let in_31_days = now + Span::days(31);
    let mut both = store.due_steps(in_31_days).await.unwrap();
    both.sort();
    let mut expected = vec![
        (due.clone(), "purge/check".into()),
        (later.clone(), "purge/check".into()),
    ];
    expected.sort();
    assert_eq!(both, expected);

    // Only the run with a due step is runnable.
    let ttl = Duration::from_secs(60);
    assert_eq!(
        store.claim_runs("w", 10, ttl, now).await.unwrap(),
        vec![due.clone()]
    );
    // Once the step is done it is no longer due.
    store
        .record(&due, &outcome("purge/check", StepStatus::Succeeded))
        .await
        .unwrap();
    assert!(store.due_steps(now).await.unwrap().is_empty());
}

both!(requests_follow_their_lifecycle);
async fn requests_follow_their_lifecycle(ctx: &Ctx) {
    let store = ctx.open().await;
    let gdpr = request("r-gdpr", "2026-01-31", Jurisdiction::Gdpr);
    let ccpa = request("r-ccpa", "2026-01-01", Jurisdiction::Ccpa);
    store
        .put_request(&gdpr, RequestState::Received)
        .await
        .unwrap();
    store
        .put_request(&ccpa, RequestState::Received)
        .await
        .unwrap();
    assert!(matches!(
        store.put_request(&gdpr, RequestState::Received).await,
        Err(StoreError::DuplicateRequest(id)) if id == "r-gdpr"
    ));

    let record = store.request("r-gdpr").await.unwrap();
    assert_eq!(record.request, gdpr);
    assert_eq!(record.deadline, date("2026-02-28"));
    assert!(!record.extended);
    // Nearest deadline first: CCPA 2026-02-15 before GDPR 2026-02-28.
    let listed = store.requests().await.unwrap();
    assert_eq!(ids(&listed), ["r-ccpa", "r-gdpr"]);

    assert!(matches!(
        store
            .set_request_state("r-gdpr", RequestState::Running, None)
            .await,
        Err(StoreError::InvalidTransition {
            from: RequestState::Received,
            ..
        })
    ));
    assert!(matches!(
        store
            .set_request_state("r-ccpa", RequestState::Declined, None)
            .await,
        Err(StoreError::ReasonRequired { .. })
    ));
    store
        .set_request_state(
            "r-ccpa",
            RequestState::Declined,
            Some("identity not verified".into()),
        )
        .await
        .unwrap();
    let declined = store.request("r-ccpa").await.unwrap();
    assert_eq!(declined.state, RequestState::Declined);
    assert_eq!(declined.reason.as_deref(), Some("identity not verified"));
    assert!(matches!(
        store
            .set_request_state("nope", RequestState::Approved, None)
            .await,
        Err(StoreError::RequestNotFound(_))
    ));

    store
        .set_request_state("r-gdpr", RequestState::Approved, None)
        .await
        .unwrap();
    let now = Utc::now();
    assert_eq!(ids(&store.due_requests(now).await.unwrap()), ["r-gdpr"]);
    // A dry run (a preview, e.g. from the console) is not the request's run: it is still
    // due, and a worker starts it.
    store
        .create_run(&plan("r-gdpr"), RunMode::DryRun)
        .await
        .unwrap();
    assert_eq!(ids(&store.due_requests(now).await.unwrap()), ["r-gdpr"]);
    let started = store
        .start_request(
            &plan("r-gdpr"),
            "w1",
            std::time::Duration::from_secs(60),
            now,
        )
        .await
        .unwrap()
        .expect("an approved request with only a dry run starts");
    assert_eq!(store.run(&started).await.unwrap().mode, RunMode::Apply);
    assert!(
        store.due_requests(now).await.unwrap().is_empty(),
        "it has a run now"
    );
    assert!(
        store
            .start_request(
                &plan("r-gdpr"),
                "w2",
                std::time::Duration::from_secs(60),
                now
            )
            .await
            .unwrap()
            .is_none(),
        "and is started once"
    );
    store.release("w1", &started).await.unwrap();
    for state in [RequestState::Waiting, RequestState::Completed] {
        store
            .set_request_state("r-gdpr", state, None)
            .await
            .unwrap();
    }

    let extended = store
        .extend_request("r-gdpr", "complex request")
        .await
        .unwrap();
    assert!(extended.extended);
    assert_eq!(extended.deadline, date("2026-04-30"));
    assert_eq!(
        extended.extension_reason.as_deref(),
        Some("complex request")
    );
    assert!(matches!(
        store.extend_request("r-gdpr", "again").await,
        Err(StoreError::AlreadyExtended(_))
    ));
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn ids(records: &[dsrctl::journal::RequestRecord]) -> Vec<&str> {
    records.iter().map(|r| r.request.id.as_str()).collect()
}

both!(evidence_is_stored_with_its_checksum);
async fn evidence_is_stored_with_its_checksum(ctx: &Ctx) {
    let store = ctx.open().await;
    let run = store
        .create_run(&plan("r-1"), RunMode::Apply)
        .await
        .unwrap();
    let bytes = b"\x00\x01screenshot\xff".to_vec();
    let evidence = store
        .put_evidence(&run, "iot/alerts", "shot.png", &bytes)
        .await
        .unwrap();
    assert_eq!(evidence.name, "shot.png");
    assert_eq!(evidence.sha256, sha256_hex(&bytes));
    assert_eq!(
        store.evidence_content(&evidence.stored_at).await.unwrap(),
        bytes
    );
    assert!(matches!(
        store.evidence_content("evidence/999999").await,
        Err(StoreError::EvidenceNotFound(_))
    ));
}

#[tokio::test]
async fn open_picks_the_store_by_location() {
    let dir = tempfile::tempdir().unwrap();
    let store = open("", dir.path()).await.unwrap();
    store
        .create_run(&plan("r-1"), RunMode::Apply)
        .await
        .unwrap();
    store.close().await;
    assert!(dir.path().join(".dsrctl/state.db").exists());
    let store = open("sqlite:custom/state.db", dir.path()).await.unwrap();
    store.close().await;
    assert!(dir.path().join("custom/state.db").exists());
    assert!(matches!(
        open("mysql://x", dir.path()).await,
        Err(StoreError::Location(..))
    ));
}

both!(sealed_personal_data_reads_back_and_is_found_by_identity);
async fn sealed_personal_data_reads_back_and_is_found_by_identity(ctx: &Ctx) {
    use dsrctl::journal::{DataKey, SEALED_PREFIX, SealError};
    use dsrctl::store::SealedStore;
    let raw = ctx.open().await;
    let key = DataKey::from_bytes([9; 32]);
    let store = SealedStore::wrap(raw.clone(), key.clone());
    let alice = request("r-1", "2026-01-31", Jurisdiction::Gdpr);
    let mut bob = request("r-2", "2026-01-31", Jurisdiction::Gdpr);
    bob.subject
        .insert("email".into(), Identity::One("bob@contoso.com".into()));
    store
        .put_request(&alice, RequestState::Received)
        .await
        .unwrap();
    store
        .put_request(&bob, RequestState::Received)
        .await
        .unwrap();

    // The database holds ciphertext; the sealed store reads the request back whole.
    let stored = raw.request("r-1").await.unwrap().request;
    let Identity::One(email) = &stored.subject["email"] else {
        panic!("{stored:?}")
    };
    assert!(email.starts_with(SEALED_PREFIX), "{email}");
    assert_eq!(store.request("r-1").await.unwrap().request, alice);

    // Found by identity through the keyed index, by the database itself.
    let tag = key.index_tag("email", "alice@contoso.com");
    let by_tag: Vec<String> = raw
        .requests_with_tag(&tag)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request.id)
        .collect();
    assert_eq!(by_tag, ["r-1"]);
    let found = store
        .requests_for_subject("email", "bob@contoso.com")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].request, bob);

    // Replacing the body (purge) keeps the state.
    let mut purged = alice.clone();
    purged.note = Some("[purged]".into());
    store.replace_request(&purged).await.unwrap();
    let record = store.request("r-1").await.unwrap();
    assert_eq!(record.request, purged);
    assert_eq!(record.state, RequestState::Received);

    // Outcomes and evidence: sealed in the database, whole through the sealed store.
    let run = store
        .create_run(&plan("r-1"), RunMode::Apply)
        .await
        .unwrap();
    let mut o = outcome("crm/find", StepStatus::Succeeded);
    o.captures.insert("id".into(), json!("cust-alice"));
    store.record(&run, &o).await.unwrap();
    let raw_outcome = raw.outcomes(&run).await.unwrap().remove(0);
    assert!(!raw_outcome.captures["id"].to_string().contains("alice"));
    assert_eq!(store.outcomes(&run).await.unwrap(), vec![o]);
    let evidence = store
        .put_evidence(&run, "crm/find", "shot.png", b"alice's account")
        .await
        .unwrap();
    assert_eq!(evidence.sha256, sha256_hex(b"alice's account"));
    let stored = raw.evidence_content(&evidence.stored_at).await.unwrap();
    assert!(!stored.windows(5).any(|w| w == b"alice"));
    assert_eq!(
        store.evidence_content(&evidence.stored_at).await.unwrap(),
        b"alice's account"
    );

    // Another key opens nothing, and says so.
    let other = SealedStore::wrap(raw.clone(), DataKey::from_bytes([10; 32]));
    assert!(matches!(
        other.request("r-1").await,
        Err(StoreError::Sealed(SealError::WrongKey))
    ));
}

both!(drp_status_callbacks_are_claimed_once_and_when_due);
/// A request received through the Data Rights Protocol keeps its origin, and its status
/// callback is due when the request changes, held from other workers while one makes it,
/// due again after a failure's pause, and never again once settled for good.
async fn drp_status_callbacks_are_claimed_once_and_when_due(ctx: &Ctx) {
    let store = ctx.open().await;
    let other = ctx.open().await;
    let id = "drp-AA-0123456789abcdef01234567";
    let origin = DrpOrigin {
        agent: "AA".into(),
        agent_request_id: Some("ar-1".into()),
        status_callback: Some("https://agent.example/update_status".into()),
    };
    let import = |request: Request, drp: Option<DrpOrigin>| RequestImport {
        request,
        state: RequestState::Received,
        reason: None,
        audit: Vec::new(),
        drp,
    };
    let recorded = store
        .import_requests(&[
            import(
                request(id, "2026-01-01", Jurisdiction::Ccpa),
                Some(origin.clone()),
            ),
            import(request("r-plain", "2026-01-01", Jurisdiction::Ccpa), None),
        ])
        .await
        .unwrap();
    assert_eq!(recorded, [true, true]);
    assert_eq!(store.drp_origin(id).await.unwrap(), Some(origin.clone()));
    assert_eq!(store.drp_origin("r-plain").await.unwrap(), None);

    let hold = Duration::from_secs(60);
    let claim = |s: &Arc<dyn Store>, at: chrono::DateTime<Utc>| {
        let s = s.clone();
        async move { s.claim_drp_callbacks(at, hold, 10).await.unwrap() }
    };
    // As recorded, the agent has its status (the exercise's answer): nothing is due.
    assert!(
        claim(&store, Utc::now() + Span::seconds(1))
            .await
            .is_empty()
    );

    // Changed: due once, for one worker.
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .set_request_state(id, RequestState::Approved, None)
        .await
        .unwrap();
    let now = Utc::now() + Span::seconds(1);
    let due = claim(&store, now).await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(
        (due[0].request_id.as_str(), &due[0].origin, due[0].attempts),
        (id, &origin, 0)
    );
    assert!(claim(&store, now).await.is_empty());
    assert!(claim(&other, now).await.is_empty());
    // Once the hold is over, two workers claiming at the same moment: one gets it.
    let later = now + Span::seconds(61);
    let (a, b) = tokio::join!(claim(&store, later), claim(&other, later));
    assert_eq!(a.len() + b.len(), 1, "{a:?} {b:?}");

    // Failed: due again after its pause, whether or not the request changed.
    let failed = DrpSettled {
        sent: None,
        seen: chrono::DateTime::UNIX_EPOCH,
        attempts: 1,
        next: Some(later + Span::seconds(2)),
    };
    store.settle_drp_callback(id, &failed, later).await.unwrap();
    assert!(claim(&store, later + Span::seconds(1)).await.is_empty());
    let again = claim(&store, later + Span::seconds(3)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);

    // Delivered: not due until the request changes, or until the recheck.
    let seen = store.request(id).await.unwrap().updated_at;
    let at = later + Span::seconds(3);
    let delivered = DrpSettled {
        sent: Some("digest-1".into()),
        seen,
        attempts: 0,
        next: Some(at),
    };
    store.settle_drp_callback(id, &delivered, at).await.unwrap();
    assert!(claim(&store, at + Span::seconds(10)).await.is_empty());
    let recheck = Span::from_std(DRP_RECHECK).unwrap();
    let rechecked = claim(&store, at + recheck + Span::seconds(1)).await;
    assert_eq!(rechecked.len(), 1);
    assert_eq!(rechecked[0].sent.as_deref(), Some("digest-1"));

    // Settled for good (a final status delivered): never due again, whatever changes.
    let done = DrpSettled {
        next: None,
        ..delivered
    };
    store.settle_drp_callback(id, &done, at).await.unwrap();
    store
        .set_request_state(id, RequestState::Declined, Some("no_match".into()))
        .await
        .unwrap();
    assert!(claim(&store, at + recheck * 3).await.is_empty());
}

/// A store made before requests kept their DRP origin (schema version 1): opening it adds
/// the origin of each request received through the protocol, its agent read from its id, so
/// the agent still reads its requests.
#[tokio::test]
async fn a_version_1_store_gains_the_drp_origin_of_its_requests() {
    let dir = tempfile::tempdir().unwrap();
    let id = "drp-CR_PERMISSION_SLIP-0123456789abcdef01234567";
    let store = open("", dir.path()).await.unwrap();
    for r in [id, "r-plain"] {
        store
            .put_request(
                &request(r, "2026-01-01", Jurisdiction::Ccpa),
                RequestState::Received,
            )
            .await
            .unwrap();
    }
    store.close().await;
    drop(store);
    // As version 1 left it.
    let path = dir.path().join(".dsrctl/state.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE drp_requests; DELETE FROM schema_version WHERE version > 1;")
        .unwrap();
    drop(conn);

    let store = open("", dir.path()).await.unwrap();
    let origin = store.drp_origin(id).await.unwrap().expect("backfilled");
    assert_eq!(origin.agent, "CR_PERMISSION_SLIP");
    assert_eq!(
        (origin.agent_request_id, origin.status_callback),
        (None, None)
    );
    assert_eq!(store.drp_origin("r-plain").await.unwrap(), None);
    store.close().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}

both!(console_sessions_lapse_and_end);
/// A console session is found while used within its idle time, lapses after it, and ends
/// when closed; lapsed ones are dropped when another opens.
async fn console_sessions_lapse_and_end(ctx: &Ctx) {
    let store = ctx.open().await;
    let other = ctx.open().await;
    let idle = Duration::from_secs(3600);
    let t0 = Utc::now();
    store
        .open_console_session("h-1", "ops:aa", t0, idle)
        .await
        .unwrap();
    store
        .open_console_session("h-2", "review:bb", t0, idle)
        .await
        .unwrap();
    // Another worker sharing the store finds it; each use moves its idle time on.
    let t1 = t0 + Span::minutes(50);
    assert_eq!(
        other.use_console_session("h-1", t1, idle).await.unwrap(),
        Some("ops:aa".to_owned())
    );
    let t2 = t1 + Span::minutes(50);
    assert_eq!(
        store.use_console_session("h-1", t2, idle).await.unwrap(),
        Some("ops:aa".to_owned())
    );
    // Unused for the idle time: lapsed.
    assert_eq!(
        store.use_console_session("h-2", t2, idle).await.unwrap(),
        None
    );
    assert_eq!(
        store.use_console_session("nope", t2, idle).await.unwrap(),
        None
    );
    // Closed: gone everywhere.
    other.close_console_session("h-1").await.unwrap();
    assert_eq!(
        store.use_console_session("h-1", t2, idle).await.unwrap(),
        None
    );
}
