//! How the engine uses its journal: `--parallelism` limits calls in flight, not journal
//! writes (a step waiting for its outcome to be durable does not keep other steps from
//! calling their services), and a mutation is journaled as started before it is sent
//! exactly when a resume depends on that.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dsrctl::compile::compile;
use dsrctl::connectors::connectors_for_tenant;
use dsrctl::engine::Engine;
use dsrctl::journal::{
    Evidence, Plan, RequestRecord, RequestState, RunMode, RunRecord, RunStatus, StepOutcome,
    StepStatus,
};
use dsrctl::model::Request;
use dsrctl::store::{AuditEntry, DrpCallback, DrpOrigin, DrpSettled, Store, StoreError};
use support::items::{ItemServer, TestProject, playbook, project_with, request};

/// A store whose journal writes take `delay` (like a slow disk's fsync), and that keeps
/// the instance and status of every outcome journaled, in order.
struct WatchedJournal {
    inner: Arc<dyn Store>,
    delay: Duration,
    seen: Mutex<Vec<(String, StepStatus)>>,
}

impl WatchedJournal {
    fn new(inner: Arc<dyn Store>, delay: Duration) -> Self {
        WatchedJournal {
            inner,
            delay,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The statuses journaled for an instance, in order.
    fn statuses(&self, instance: &str) -> Vec<StepStatus> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(i, _)| i == instance)
            .map(|(_, s)| *s)
            .collect()
    }
}

#[async_trait]
impl Store for WatchedJournal {
    async fn create_run(&self, plan: &Plan, mode: RunMode) -> Result<String, StoreError> {
        self.inner.create_run(plan, mode).await
    }
    async fn unfinished_run(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.unfinished_run(request_id).await
    }
    async fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        self.inner.run(id).await
    }
    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.runs(limit).await
    }
    async fn set_run_status(&self, run: &str, status: RunStatus) -> Result<(), StoreError> {
        self.inner.set_run_status(run, status).await
    }
    async fn begin_run(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
        self.inner.begin_run(run).await
    }
    async fn outcomes(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
        self.inner.outcomes(run).await
    }
    async fn record(&self, run: &str, outcome: &StepOutcome) -> Result<(), StoreError> {
        tokio::time::sleep(self.delay).await;
        self.seen
            .lock()
            .unwrap()
            .push((outcome.instance.clone(), outcome.status));
        self.inner.record(run, outcome).await
    }
    async fn put_request(&self, request: &Request, state: RequestState) -> Result<(), StoreError> {
        self.inner.put_request(request, state).await
    }
    async fn request(&self, id: &str) -> Result<RequestRecord, StoreError> {
        self.inner.request(id).await
    }
    async fn requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        self.inner.requests().await
    }
    async fn set_request_state(
        &self,
        id: &str,
        state: RequestState,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        self.inner.set_request_state(id, state, reason).await
    }
    async fn extend_request(&self, id: &str, reason: &str) -> Result<RequestRecord, StoreError> {
        self.inner.extend_request(id, reason).await
    }
    async fn drp_origin(&self, request_id: &str) -> Result<Option<DrpOrigin>, StoreError> {
        self.inner.drp_origin(request_id).await
    }
    async fn open_console_session(
        &self,
        id_hash: &str,
        token: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<(), StoreError> {
        self.inner
            .open_console_session(id_hash, token, now, idle)
            .await
    }
    async fn use_console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<Option<String>, StoreError> {
        self.inner.use_console_session(id_hash, now, idle).await
    }
    async fn close_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.inner.close_console_session(id_hash).await
    }
    async fn claim_drp_callbacks(
        &self,
        now: DateTime<Utc>,
        hold: Duration,
        limit: u32,
    ) -> Result<Vec<DrpCallback>, StoreError> {
        self.inner.claim_drp_callbacks(now, hold, limit).await
    }
    async fn settle_drp_callback(
        &self,
        request_id: &str,
        settled: &DrpSettled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner
            .settle_drp_callback(request_id, settled, now)
            .await
    }
    async fn replace_request(&self, request: &Request) -> Result<(), StoreError> {
        self.inner.replace_request(request).await
    }
    async fn requests_with_tag(&self, tag: &str) -> Result<Vec<RequestRecord>, StoreError> {
        self.inner.requests_with_tag(tag).await
    }
    async fn due_steps(&self, now: DateTime<Utc>) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.due_steps(now).await
    }
    async fn due_requests(&self, now: DateTime<Utc>) -> Result<Vec<RequestRecord>, StoreError> {
        self.inner.due_requests(now).await
    }
    async fn start_request(
        &self,
        plan: &Plan,
        worker: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.inner.start_request(plan, worker, ttl, now).await
    }
    async fn unsettled_requests(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, String, RunStatus)>, StoreError> {
        self.inner.unsettled_requests(now, limit).await
    }
    async fn lease(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.lease(worker, run, ttl, now).await
    }
    async fn renew(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.renew(worker, run, ttl, now).await
    }
    async fn latest_run(&self, request_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.inner.latest_run(request_id).await
    }
    async fn replace_plan(&self, run: &str, plan: &Plan) -> Result<(), StoreError> {
        self.inner.replace_plan(run, plan).await
    }
    async fn lease_holder(&self, run: &str) -> Result<Option<String>, StoreError> {
        self.inner.lease_holder(run).await
    }
    async fn release(&self, worker: &str, run: &str) -> Result<(), StoreError> {
        self.inner.release(worker, run).await
    }
    async fn claim_runs(
        &self,
        worker: &str,
        limit: u32,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.claim_runs(worker, limit, ttl, now).await
    }
    fn set_audit_key(&self, key: Result<&[u8], &str>) {
        self.inner.set_audit_key(key)
    }
    async fn append_audit(
        &self,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
        actor: Option<&str>,
    ) -> Result<AuditEntry, StoreError> {
        self.inner
            .append_audit(action, subject, detail, actor)
            .await
    }
    async fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit_entries().await
    }
    async fn audit_head(&self) -> Result<(u64, String), StoreError> {
        self.inner.audit_head().await
    }
    async fn put_evidence(
        &self,
        run: &str,
        step: &str,
        name: &str,
        content: &[u8],
    ) -> Result<Evidence, StoreError> {
        self.inner.put_evidence(run, step, name, content).await
    }
    async fn evidence_content(&self, stored_at: &str) -> Result<Vec<u8>, StoreError> {
        self.inner.evidence_content(stored_at).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

fn reader(service: &str) -> String {
    let export = format!(
        r#"    - id: read
      http: {{ method: GET, path: "/{service}/items", query: {{ n: "1" }} }}"#
    );
    playbook(service, &export, "")
}

// Regression: each step held its parallelism slot while its outcome was committed, so with
// a slow journal the services sat idle and throughput fell to slots / fsync time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_writes_do_not_hold_a_parallelism_slot() {
    let server = ItemServer::start(Duration::ZERO).await;
    let names: Vec<String> = (0..8).map(|i| format!("svc{i}")).collect();
    let playbooks: Vec<(&str, String)> = names.iter().map(|n| (n.as_str(), reader(n))).collect();
    let project = project_with(&server.url(), &playbooks);
    let plan = compile(&project.project, &request("export"), chrono::Utc::now()).unwrap();
    let store: Arc<dyn Store> = Arc::new(WatchedJournal::new(
        project.store().await,
        Duration::from_millis(300),
    ));
    let connectors = connectors_for_tenant(&project.project.config, "t1", project.dir.path())
        .await
        .unwrap();
    let engine = Engine::new(store.clone(), connectors, project.state_dir()).with_parallelism(2);
    let run_id = store.create_run(&plan, RunMode::Apply).await.unwrap();
    let started = Instant::now();
    let result = engine
        .execute(&run_id, &plan, RunMode::Apply, None)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{:#?}",
        result.outcomes
    );
    assert_eq!(server.calls().len(), 8);
    assert!(server.max_in_flight() <= 2, "{}", server.max_in_flight());
    // Holding a slot through each 300 ms commit would take 8 / 2 x 300 ms = 1.2 s.
    assert!(took < Duration::from_millis(900), "took {took:?}");
    store.close().await;
}

fn eraser(service: &str, extra: &str) -> String {
    let delete = format!(
        r#"    - id: drop
      http: {{ method: DELETE, path: "/{service}/items/{service}-0" }}
      absent_on: [404]
      preview: {{ none: "test" }}
{extra}"#
    );
    playbook(service, "", delete.trim_end())
}

// A resume verifies a started mutation before sending it again, or does not send a
// non-idempotent one again: for those, "started" must be durable before the call. An
// idempotent mutation that nothing verifies is sent again either way, so journaling its
// start would be a commit that changes nothing.
#[tokio::test]
async fn a_mutation_is_journaled_as_started_when_a_resume_depends_on_it() {
    let server = ItemServer::start(Duration::ZERO).await;
    let verify = "      verify:\n        http: { method: GET, path: \"/checked/items/checked-0\" }\n        expect_status: [404]\n";
    let playbooks = [
        ("plain", eraser("plain", "")),
        ("checked", eraser("checked", verify)),
        ("once", eraser("once", "      idempotent: false\n")),
    ];
    let project = project_with(&server.url(), &playbooks);
    let plan = compile(&project.project, &request("delete"), chrono::Utc::now()).unwrap();
    let journal = Arc::new(WatchedJournal::new(project.store().await, Duration::ZERO));
    let store: Arc<dyn Store> = journal.clone();
    let connectors = connectors_for_tenant(&project.project.config, "t1", project.dir.path())
        .await
        .unwrap();
    let engine = Engine::new(store.clone(), connectors, project.state_dir());
    let run_id = store.create_run(&plan, RunMode::Apply).await.unwrap();
    let result = engine
        .execute(&run_id, &plan, RunMode::Apply, None)
        .await
        .unwrap();
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{:#?}",
        result.outcomes
    );
    assert_eq!(server.delete_counts().len(), 3);
    use StepStatus::{Running, Succeeded};
    assert_eq!(journal.statuses("plain/drop"), [Succeeded]);
    assert_eq!(journal.statuses("checked/drop"), [Running, Succeeded]);
    assert_eq!(journal.statuses("once/drop"), [Running, Succeeded]);
    store.close().await;
}

/// A project whose SQLite database `shop.db` holds a customer and `related` tables of rows
/// referencing it, described by a dataset: its erasure is one unit of `related + 1` deletes.
fn shop(related: usize) -> TestProject {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("shop.db")).unwrap();
    let mut dataset = String::from(
        "service: shop\nconnector: db\ndataset:\n  tables:\n    customer:\n      columns:\n        id:\n        email: { identity: email, category: user.contact.email }\n",
    );
    db.execute_batch(
        "CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT NOT NULL); \
         INSERT INTO customer VALUES (1, 'alice@example.com'), (2, 'bob@example.com');",
    )
    .unwrap();
    for i in 0..related {
        db.execute_batch(&format!(
            "CREATE TABLE t{i} (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES customer (id), note TEXT); \
             INSERT INTO t{i} VALUES (1, 1, 'a'), (2, 1, 'a'), (3, 2, 'b');"
        ))
        .unwrap();
        dataset.push_str(&format!(
            "    t{i}:\n      columns:\n        id:\n        parent_id: {{ references: customer.id }}\n        note: user.content\n"
        ));
    }
    dataset.push_str("dsr:\n  rectify: { unsupported: \"test\" }\n");
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("dsrctl.yaml"),
        "tenants:\n  t1:\n    connectors:\n      db: { kind: sql, url: \"sqlite:shop.db\" }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("policies/shop.yaml"), dataset).unwrap();
    let project = dsrctl::load::load_project(dir.path())
        .unwrap_or_else(|d| panic!("{}", d.render_human(false)));
    TestProject { dir, project }
}

// A service's SQL deletes commit together: until the commit nothing they did can have taken
// effect, so they are journaled as started all at once just before it (one durable write,
// not one before each statement), then verified after it in one query and journaled done
// together. Regression: with each journal write a slow fsync, a 200-table erasure spent
// most of its time journaling its statements one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_units_deletes_are_journaled_together_around_its_commit() {
    const RELATED: usize = 8;
    let project = shop(RELATED);
    let plan = compile(&project.project, &request("delete"), chrono::Utc::now()).unwrap();
    let deletes: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.mutates)
        .map(|s| s.key.clone())
        .collect();
    assert_eq!(deletes.len(), RELATED + 1, "{:#?}", plan.steps);
    let journal = Arc::new(WatchedJournal::new(
        project.store().await,
        Duration::from_millis(200),
    ));
    let store: Arc<dyn Store> = journal.clone();
    let engine = project.engine(store.clone()).await;
    let run_id = store.create_run(&plan, RunMode::Apply).await.unwrap();
    let started = Instant::now();
    let result = engine
        .execute(&run_id, &plan, RunMode::Apply, None)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{:#?}",
        result.outcomes
    );
    for key in &deletes {
        use StepStatus::{Running, Succeeded};
        assert_eq!(journal.statuses(key), [Running, Succeeded], "{key}");
        let o = result.outcomes.iter().find(|o| &o.instance == key).unwrap();
        let v = o.verification.as_ref().expect("verified");
        assert!(
            v.passed
                && v.detail
                    .ends_with("matching the delete's predicate afterwards: 0"),
            "{key}: {}",
            v.detail
        );
    }
    // Every `running` precedes every `succeeded`: all were durable before the commit.
    let seen = journal.seen.lock().unwrap().clone();
    let last_running = seen
        .iter()
        .rposition(|(i, s)| deletes.contains(i) && *s == StepStatus::Running)
        .unwrap();
    let first_done = seen
        .iter()
        .position(|(i, s)| deletes.contains(i) && *s == StepStatus::Succeeded)
        .unwrap();
    assert!(last_running < first_done, "{seen:?}");
    // One at a time: the find, 9 starts and 9 ends, 19 x 200 ms = 3.8 s.
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    let db = rusqlite::Connection::open(project.dir.path().join("shop.db")).unwrap();
    for t in (0..RELATED)
        .map(|i| format!("t{i}"))
        .chain(["customer".to_owned()])
    {
        let left: Vec<i64> = db
            .prepare(&format!("SELECT id FROM {t} ORDER BY id"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let bob = if t == "customer" { vec![2] } else { vec![3] };
        assert_eq!(left, bob, "only the other customer's rows are left in {t}");
    }
    store.close().await;
}
