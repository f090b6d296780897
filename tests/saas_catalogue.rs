//! The SaaS catalogue end to end, through the command line as a user types it: `dsrctl
//! init`, `dsrctl catalogue add SERVICE`, `dsrctl test`, then requests run against the
//! service's emulator: an export whose package holds what the service keeps on the
//! subject, a deletion verified by the service, a throttled run that honours the service's
//! rate limit, a subject the service does not know, and hostile identifiers that address
//! nobody else.
#![cfg(feature = "saas-emulators")]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dsrctl::emulator::saas::{self, SaasEmulator, Service, Throttle};
use serde_json::Value;
use support::cli::{Dsrctl, Output};

/// What the catalogue's connector stub names, to point it at the emulator.
fn stub(service: Service) -> (&'static str, &'static str) {
    match service {
        Service::Stripe => ("https://api.stripe.com/v1", "{ env: STRIPE_SECRET_KEY }"),
        Service::Mailchimp => (
            "https://us21.api.mailchimp.com/3.0",
            "{ env: MAILCHIMP_API_KEY }",
        ),
        Service::Zendesk => (
            "https://YOUR-SUBDOMAIN.zendesk.com/api/v2",
            "{ env: ZENDESK_API_TOKEN }",
        ),
        Service::Hubspot => (
            "https://api.hubapi.com/crm/v3",
            "{ env: HUBSPOT_ACCESS_TOKEN }",
        ),
        Service::Shopify => (
            "https://YOUR-SHOP.myshopify.com/admin/api/2024-10",
            "{ env: SHOPIFY_ACCESS_TOKEN }",
        ),
        Service::Segment => ("https://api.segmentapis.com", "{ env: SEGMENT_API_TOKEN }"),
        Service::Okta => (
            "https://YOUR-ORG.okta.com/api/v1",
            "{ env: OKTA_API_TOKEN }",
        ),
        Service::Auth0 => (
            "https://YOUR-TENANT.eu.auth0.com/api/v2",
            "{ env: AUTH0_MANAGEMENT_TOKEN }",
        ),
        Service::Intercom => ("https://api.intercom.io", "{ env: INTERCOM_ACCESS_TOKEN }"),
        Service::Salesforce => (
            "https://YOUR-DOMAIN.my.salesforce.com/services/data/v62.0",
            "{ env: SALESFORCE_ACCESS_TOKEN }",
        ),
        Service::GoogleWorkspace => (
            "https://admin.googleapis.com/admin/directory/v1",
            "{ env: GOOGLE_DIRECTORY_TOKEN }",
        ),
        Service::Slack => ("https://api.slack.com/scim/v2", "{ env: SLACK_SCIM_TOKEN }"),
        Service::Sendgrid => ("https://api.sendgrid.com/v3", "{ env: SENDGRID_API_KEY }"),
        Service::Braze => (
            "https://rest.iad-01.braze.com",
            "{ env: BRAZE_REST_API_KEY }",
        ),
        Service::Mixpanel => (
            "https://mixpanel.com/api/app",
            "{ env: MIXPANEL_GDPR_TOKEN }",
        ),
    }
}

struct Project {
    dir: tempfile::TempDir,
    emulator: SaasEmulator,
}

async fn ok(cmd: Dsrctl) -> Output {
    cmd.run().await.expect_code(0)
}

fn run_id(text: &str) -> String {
    let at = text.find("run ").expect("a run id") + 4;
    text[at..at + 12].to_owned()
}

impl Project {
    /// A fresh project with the service added from the catalogue (and the starter's own
    /// playbook removed), its connector pointed at a running emulator.
    async fn new(service: Service) -> Project {
        let emulator = saas::start(service, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        ok(Dsrctl::new(dir.path()).args(["init", "p"])).await;
        let added = ok(Dsrctl::new(&root).args(["catalogue", "add", service.name()])).await;
        assert!(added.stdout.contains("wrote policies/"), "{}", added.stdout);
        // Refuses to overwrite.
        let again = Dsrctl::new(&root)
            .args(["catalogue", "add", service.name()])
            .run()
            .await
            .expect_code(1);
        assert!(again.stderr.contains("already"), "{}", again.stderr);
        // The playbook's own tests pass in the fresh project.
        let tests = ok(Dsrctl::new(&root).arg("test")).await;
        assert!(tests.stdout.contains(" 0 failed"), "{}", tests.stdout);
        std::fs::remove_file(root.join("policies/crm.yaml")).unwrap();
        let (base, secret) = stub(service);
        let config = std::fs::read_to_string(root.join("dsrctl.yaml")).unwrap();
        assert!(config.contains(base) && config.contains(secret), "{config}");
        let config = config
            .replace(base, &emulator.base_url())
            .replace(secret, "{ file: service.secret }")
            .replace("YOUR_PROJECT_TOKEN", saas::mixpanel::PROJECT_TOKEN);
        std::fs::write(root.join("dsrctl.yaml"), config).unwrap();
        let secret = match service {
            Service::Okta => format!("SSWS {}", service.credential()),
            _ => service.credential().to_owned(),
        };
        std::fs::write(root.join("service.secret"), secret).unwrap();
        Project { dir, emulator }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("p")
    }

    /// A command in the project (the starter's `crm` connector is still configured: its
    /// token is set, it is never used).
    fn at(&self) -> Dsrctl {
        Dsrctl::new(&self.root()).env("ACME_CRM_TOKEN", "unused")
    }

    /// Runs a request with a hostile identifier: it either runs to the end or is refused
    /// as invalid before anything is sent.
    async fn run_hostile(&self, id: &str, email: &str) {
        let rel = format!("requests/{id}.yaml");
        std::fs::write(
            self.root().join(&rel),
            format!(
                "id: {id}\nkind: delete\ntenant: acme\njurisdiction: gdpr\nreceived: 2026-11-02\nsubject:\n  email: {}\n",
                serde_json::to_string(email).unwrap()
            ),
        )
        .unwrap();
        let out = self
            .at()
            .args(["run", &rel, "--approve", "Tester"])
            .run()
            .await;
        assert!(
            out.code == 0 || out.stderr.contains("email"),
            "{email:?}: exit {}\n{}",
            out.code,
            out.stderr
        );
    }

    /// Writes a request and runs it to the end; returns the run id.
    async fn run(&self, id: &str, kind: &str, email: &str, extra: &str) -> String {
        let rel = format!("requests/{id}.yaml");
        std::fs::write(
            self.root().join(&rel),
            format!(
                "id: {id}\nkind: {kind}\ntenant: acme\njurisdiction: gdpr\nreceived: 2026-11-02\nsubject:\n  email: {}\n{extra}",
                serde_json::to_string(email).unwrap()
            ),
        )
        .unwrap();
        let out = ok(self.at().args(["run", &rel, "--approve", "Tester"])).await;
        assert!(
            !out.stdout.contains(email) && !out.stderr.contains(email),
            "the subject's email is masked"
        );
        run_id(&out.stderr)
    }

    /// The run's steps, as `dsrctl status --format json` shows them.
    async fn steps(&self, run: &str) -> Vec<Value> {
        let out = ok(self.at().args(["status", run, "--format", "json"])).await;
        out.json()["steps"].as_array().cloned().unwrap_or_default()
    }

    /// Builds the export package of a run; returns every record of `collection`.
    async fn package(&self, run: &str, service: &str, collection: &str) -> Vec<Value> {
        let out_dir = format!("export-{run}");
        self.at()
            .args([
                "report",
                run,
                "--template",
                "letter",
                "-o",
                "letter.md",
                "--package",
                &out_dir,
            ])
            .run()
            .await;
        let file = find(&self.root().join(&out_dir), service, collection)
            .unwrap_or_else(|| panic!("no `{collection}` file in the package of {run}"));
        let text = std::fs::read_to_string(&file).unwrap();
        match serde_json::from_str::<Value>(&text).unwrap() {
            Value::Array(items) => items,
            Value::Object(o) => o
                .get("records")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_else(|| vec![Value::Object(o)]),
            other => vec![other],
        }
    }
}

/// The package file of `service`'s `collection`.
fn find(dir: &Path, service: &str, collection: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find(&path, service, collection) {
                return Some(found);
            }
            continue;
        }
        let name = path.file_name()?.to_string_lossy().into_owned();
        let full = path.to_string_lossy();
        if name.starts_with(collection) && name.ends_with(".json") && full.contains(service) {
            return Some(path);
        }
    }
    None
}

fn field(items: &[Value], pointer: &str) -> Vec<String> {
    let mut out: Vec<String> = items
        .iter()
        .filter_map(|i| i.pointer(pointer))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();
    out.sort();
    out
}

fn mutations(emulator: &SaasEmulator) -> Vec<String> {
    emulator
        .calls()
        .into_iter()
        .filter(|c| c.method != "GET")
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

/// Nothing but reads reached the emulator.
fn assert_no_mutations(emulator: &SaasEmulator) {
    let sent = mutations(emulator);
    assert!(sent.is_empty(), "{sent:?}");
}

/// A boolean field of every item of one collection of the emulator's state, in order.
fn flags(emulator: &SaasEmulator, collection: &str, flag: &str) -> Vec<bool> {
    emulator.snapshot()[collection]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[flag].as_bool().unwrap())
        .collect()
}

fn no_step_failed(steps: &[Value]) {
    for s in steps {
        assert_ne!(s["status"], "failed", "{s}");
    }
}

// ---- Stripe --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn stripe_export_delete_and_unknown_subject() {
    let p = Project::new(Service::Stripe).await;
    // Small pages, so the cursor pagination runs (the playbook asks for 100).
    let pb = p.root().join("policies/stripe.yaml");
    let text = std::fs::read_to_string(&pb)
        .unwrap()
        .replace("limit: \"100\"", "limit: \"1\"");
    std::fs::write(&pb, text).unwrap();

    let export = p.run("r-export", "export", "alice@example.com", "").await;
    let customers = p.package(&export, "stripe", "customers").await;
    assert_eq!(
        field(&customers, "/id"),
        ["cus_Q1aliceAAAA01", "cus_Q1aliceAAAA02"]
    );
    let charges = p.package(&export, "stripe", "charges").await;
    assert_eq!(
        field(&charges, "/id"),
        [
            "ch_3alice000000001",
            "ch_3alice000000002",
            "ch_3alice000000003"
        ]
    );
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.query.contains("starting_after=")),
        "the listing was paged"
    );

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert!(mutations(&p.emulator).is_empty(), "nothing sent for nobody");

    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    let steps = p.steps(&delete).await;
    no_step_failed(&steps);
    let s = p.emulator.snapshot();
    let live: Vec<String> = s["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("deleted").is_none())
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        live,
        ["cus_Q1bobBBBBB01"],
        "Alice's customers deleted, Bob's kept"
    );
    let mut sent = mutations(&p.emulator);
    sent.sort();
    assert_eq!(
        sent,
        [
            "DELETE /v1/customers/cus_Q1aliceAAAA01",
            "DELETE /v1/customers/cus_Q1aliceAAAA02"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_rectify_sends_a_form_and_a_throttled_run_is_retried() {
    let p = Project::new(Service::Stripe).await;
    p.run(
        "r-rectify",
        "rectify",
        "bob@example.com",
        "corrections:\n  name: Robert Baker\n  address: { city: York }\n",
    )
    .await;
    let bob = &p.emulator.snapshot()["customers"][1];
    assert_eq!(bob["name"], "Robert Baker");
    assert_eq!(bob["address"]["city"], "York");
    let post = p
        .emulator
        .calls()
        .into_iter()
        .find(|c| c.method == "POST")
        .unwrap();
    assert_eq!(post.body, "name=Robert+Baker&address%5Bcity%5D=York");

    p.emulator.throttle(Some(Throttle {
        limit: 2,
        window: Duration::from_secs(1),
    }));
    let before = p.emulator.calls().len();
    let run = p
        .run("r-throttled", "export", "alice@example.com", "")
        .await;
    no_step_failed(&p.steps(&run).await);
    let calls = p.emulator.calls();
    assert!(
        calls[before..].iter().any(|c| c.status == 429),
        "Stripe answered 429 (it sends no rate-limit headers) and the call was retried"
    );
    assert_eq!(
        field(&p.package(&run, "stripe", "charges").await, "/id").len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_hostile_identifiers_address_nobody_else() {
    let p = Project::new(Service::Stripe).await;
    for (i, email) in [
        "*@example.com",
        "bob@example.com&email=x@y.z",
        "%@example.com",
    ]
    .iter()
    .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    assert_no_mutations(&p.emulator);
    assert!(
        p.emulator.snapshot()["customers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("deleted").is_none())
    );
}

// ---- Mailchimp -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn mailchimp_export_delete_permanent_and_unknown_subject() {
    let p = Project::new(Service::Mailchimp).await;
    // Pages of one audience, so the offset pagination runs.
    let pb = p.root().join("policies/mailchimp.yaml");
    let text = std::fs::read_to_string(&pb)
        .unwrap()
        .replace("count: \"1000\"", "count: \"1\"")
        .replace("page_size: 1000", "page_size: 1");
    std::fs::write(&pb, text).unwrap();

    // The address as the subject wrote it, capitalised: the hash is of the lower case.
    let export = p.run("r-export", "export", "ALICE@example.com", "").await;
    let members = p.package(&export, "mailchimp", "members").await;
    assert_eq!(field(&members, "/list_id"), ["5a1d2c3b4e", "9f8e7d6c5b"]);
    let notes = p.package(&export, "mailchimp", "notes").await;
    assert!(
        notes
            .iter()
            .any(|n| n.to_string().contains("Asked for fewer emails")),
        "{notes:?}"
    );
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.query.contains("offset=2")),
        "the audiences were paged"
    );

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert_eq!(
        p.emulator.snapshot()["members"].as_array().unwrap().len(),
        4
    );

    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    let s = p.emulator.snapshot();
    assert_eq!(
        field(s["members"].as_array().unwrap(), "/email_address"),
        ["bob@example.com", "bob@example.com"]
    );
    assert_eq!(s["forgotten"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn mailchimp_throttled_and_hostile() {
    let p = Project::new(Service::Mailchimp).await;
    p.emulator.throttle(Some(Throttle {
        limit: 2,
        window: Duration::from_secs(1),
    }));
    let run = p
        .run("r-throttled", "access", "alice@example.com", "")
        .await;
    no_step_failed(&p.steps(&run).await);
    assert!(p.emulator.calls().iter().any(|c| c.status == 429));
    assert_eq!(p.package(&run, "mailchimp", "members").await.len(), 2);
    p.emulator.throttle(None);
    for (i, email) in ["*@example.com", "bob@example.com/../x"].iter().enumerate() {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    assert_eq!(
        p.emulator.snapshot()["members"].as_array().unwrap().len(),
        4
    );
}

// ---- Zendesk -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn zendesk_export_then_delete_and_permanently_delete() {
    let p = Project::new(Service::Zendesk).await;
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    assert_eq!(
        field(&p.package(&export, "zendesk", "users").await, "/email"),
        ["alice@example.com"]
    );
    assert_eq!(
        field(&p.package(&export, "zendesk", "tickets").await, "/id"),
        ["51", "53"]
    );

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert!(mutations(&p.emulator).is_empty());

    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    let s = p.emulator.snapshot();
    assert_eq!(
        field(s["users"].as_array().unwrap(), "/email"),
        ["bob@example.com"]
    );
    assert_eq!(field(s["tickets"].as_array().unwrap(), "/id"), ["52"]);
    let gone = &s["deleted_users"][0];
    assert_eq!(gone["name"], "Permanently Deleted User");
    assert!(gone["email"].is_null());
    let order: Vec<String> = mutations(&p.emulator);
    let user = order
        .iter()
        .position(|m| m == "DELETE /api/v2/users/372001")
        .unwrap();
    let permanent = order
        .iter()
        .position(|m| m == "DELETE /api/v2/deleted_users/372001")
        .unwrap();
    assert!(user < permanent, "{order:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn zendesk_rate_limit_headers_pause_the_run_before_any_429() {
    let p = Project::new(Service::Zendesk).await;
    p.emulator.throttle(Some(Throttle {
        limit: 1,
        window: Duration::from_secs(2),
    }));
    // The first window opens now, however late the run's first call comes.
    let window_opened = std::time::Instant::now();
    let run = p
        .run("r-throttled", "export", "alice@example.com", "")
        .await;
    no_step_failed(&p.steps(&run).await);
    let calls = p.emulator.calls();
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(
        calls.iter().all(|c| c.status != 429),
        "the connector waited for the window the headers named"
    );
    // The second call came after the first window closed (measured from when it opened, not
    // from the first call, which a loaded machine may delay until the window nearly ends).
    let second = calls[1].at.duration_since(window_opened);
    assert!(second >= Duration::from_millis(1900), "{second:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn zendesk_wildcard_search_finds_others_but_deletes_nobody() {
    let p = Project::new(Service::Zendesk).await;
    let run = p.run("r-hostile", "delete", "*@example.com", "").await;
    no_step_failed(&p.steps(&run).await);
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.path.ends_with("/users/search")),
        "the search ran"
    );
    assert_no_mutations(&p.emulator);
    assert_eq!(p.emulator.snapshot()["users"].as_array().unwrap().len(), 2);
}

// ---- HubSpot -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_export_gdpr_delete_unknown_throttled_and_hostile() {
    let p = Project::new(Service::Hubspot).await;
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    let contacts = p.package(&export, "hubspot", "contacts").await;
    assert_eq!(field(&contacts, "/properties/email"), ["alice@example.com"]);
    assert_eq!(field(&contacts, "/properties/company"), ["Archer Ltd"]);

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    for (i, email) in ["*@example.com", "bob@example.com/../5101"]
        .iter()
        .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    assert_eq!(
        p.emulator.snapshot()["contacts"].as_array().unwrap().len(),
        2
    );

    p.emulator.throttle(Some(Throttle {
        limit: 1,
        window: Duration::from_secs(1),
    }));
    let before = p.emulator.calls().len();
    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    // `X-HubSpot-RateLimit-Remaining: 0` pauses the connector for the window
    // (`-Interval-Milliseconds`), so no call is sent into the exhausted window.
    let calls = &p.emulator.calls()[before..];
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(calls.iter().all(|c| c.status != 429), "{calls:?}");
    assert!(calls[1].at.duration_since(calls[0].at) >= Duration::from_millis(900));
    let s = p.emulator.snapshot();
    assert_eq!(
        field(s["contacts"].as_array().unwrap(), "/properties/email"),
        ["bob@example.com"]
    );
    assert_eq!(s["blocked"], serde_json::json!(["alice@example.com"]));
}

// ---- Shopify -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn shopify_export_and_hostile() {
    let p = Project::new(Service::Shopify).await;
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    let found = p.package(&export, "shopify", "customers").await;
    assert!(
        found
            .iter()
            .any(|c| c.to_string().contains("gid://shopify/Customer/7001")),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|c| c.to_string().contains("bob@example.com"))
    );
    let orders = p.package(&export, "shopify", "orders").await;
    let text = serde_json::to_string(&orders).unwrap();
    assert!(text.contains("gid://shopify/Order/1001") && text.contains("gid://shopify/Order/1003"));
    assert!(
        !text.contains("gid://shopify/Order/1002"),
        "Bob's order is not Alice's"
    );
    for (i, email) in ["*@example.com", "bob@example.co*"].iter().enumerate() {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    assert!(
        p.emulator.snapshot()["erasures"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shopify_erasure_is_verified_ten_days_later_by_a_later_process() {
    let p = Project::new(Service::Shopify).await;
    p.emulator.throttle(Some(Throttle {
        limit: 1,
        window: Duration::from_secs(1),
    }));
    let run = p.run("r-delete", "delete", "alice@example.com", "").await;
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.body.contains("customerRequestDataErasure")),
        "erasure requested"
    );
    let s = p.emulator.snapshot();
    assert_eq!(
        s["erasures"][0]["customerId"],
        "gid://shopify/Customer/7001"
    );
    assert_eq!(
        s["customers"].as_array().unwrap().len(),
        2,
        "not yet erased"
    );
    let before = p.steps(&run).await;
    let waiting = before
        .iter()
        .find(|s| s["step"] == "shopify/request-erasure")
        .expect("the erasure step");
    assert_eq!(
        waiting["status"], "waiting",
        "verified ten days on: {waiting}"
    );
    assert!(waiting["due_at"].is_string(), "{waiting}");
    p.emulator.throttle(None);

    // Eleven days on, a new process does what is due: the verification.
    p.emulator
        .advance_clock(Duration::from_secs(u64::from(shopify_days()) * 86_400));
    let later = (chrono::Utc::now() + chrono::Duration::days(12)).to_rfc3339();
    ok(p.at().args(["tick", "--now", &later])).await;
    let s = p.emulator.snapshot();
    assert_eq!(
        field(s["customers"].as_array().unwrap(), "/email"),
        ["bob@example.com"]
    );
    let steps = p.steps(&run).await;
    no_step_failed(&steps);
    let erase = steps
        .iter()
        .find(|s| s["step"] == "shopify/request-erasure")
        .expect("the erasure step");
    assert_eq!(erase["status"], "succeeded", "{erase}");
}

fn shopify_days() -> u32 {
    u32::try_from(dsrctl::emulator::saas::shopify::ERASURE_DAYS).unwrap() + 1
}

// ---- Segment -------------------------------------------------------------------------

impl Project {
    /// Runs a request whose subject is a user id; returns the run id.
    async fn run_user(&self, id: &str, kind: &str, user_id: &str) -> String {
        let rel = format!("requests/{id}.yaml");
        std::fs::write(
            self.root().join(&rel),
            format!(
                "id: {id}\nkind: {kind}\ntenant: acme\njurisdiction: gdpr\nreceived: 2026-11-02\nsubject:\n  user_id: {}\n",
                serde_json::to_string(user_id).unwrap()
            ),
        )
        .unwrap();
        let out = ok(self.at().args(["run", &rel, "--approve", "Tester"])).await;
        run_id(&out.stderr)
    }

    fn step_status(steps: &[Value], key: &str) -> String {
        steps
            .iter()
            .find(|s| s["step"] == key)
            .map(|s| s["status"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no step {key} in {steps:?}"))
    }
}

fn user_events(emulator: &SaasEmulator) -> Vec<String> {
    field(emulator.snapshot()["events"].as_array().unwrap(), "/userId")
}

#[tokio::test(flavor = "multi_thread")]
async fn segment_deletion_finishes_a_simulated_day_later_in_another_process() {
    let p = Project::new(Service::Segment).await;
    // One call per window: the second waits for the reset the headers name (a Unix time).
    p.emulator.throttle(Some(Throttle {
        limit: 1,
        window: Duration::from_secs(2),
    }));
    let run = p.run_user("r-delete", "delete", "user-alice").await;
    let calls = p.emulator.calls();
    assert!(
        calls.len() >= 2 && calls.iter().all(|c| c.status != 429),
        "{calls:?}"
    );
    assert!(calls[1].at.duration_since(calls[0].at) >= Duration::from_millis(900));
    let steps = p.steps(&run).await;
    assert_eq!(
        Project::step_status(&steps, "segment/suppress-and-delete"),
        "succeeded"
    );
    assert_eq!(
        Project::step_status(&steps, "segment/deletion-status"),
        "waiting"
    );
    assert_eq!(
        p.emulator.snapshot()["suppressions"],
        serde_json::json!(["user-alice"])
    );
    assert_eq!(
        user_events(&p.emulator),
        ["user-alice", "user-alice", "user-bob"]
    );
    p.emulator.throttle(None);

    // A day later, another process polls again: the regulation is finished.
    p.emulator
        .advance_clock(Duration::from_secs(saas::segment::DURATION_SECS));
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    ok(p.at().args(["tick", "--now", &later])).await;
    let steps = p.steps(&run).await;
    assert_eq!(
        Project::step_status(&steps, "segment/deletion-status"),
        "succeeded"
    );
    assert_eq!(user_events(&p.emulator), ["user-bob"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn segment_unknown_hostile_and_missing_user_ids() {
    let p = Project::new(Service::Segment).await;
    // Segment does not know which user ids it holds: an unknown one is regulated all the
    // same, and nothing else is touched.
    p.run_user("r-unknown", "delete", "user-nobody").await;
    p.run_user("r-hostile", "delete", "user-bob\", \"user-alice")
        .await;
    p.emulator
        .advance_clock(Duration::from_secs(saas::segment::DURATION_SECS));
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    ok(p.at().args(["tick", "--now", &later])).await;
    assert_eq!(
        user_events(&p.emulator),
        ["user-alice", "user-alice", "user-bob"]
    );
    let regs = p.emulator.snapshot()["regulations"].clone();
    assert_eq!(
        regs[1]["subjectIds"],
        serde_json::json!(["user-bob\", \"user-alice"])
    );
    // A request without a user id does not reach Segment.
    let before = p.emulator.calls().len();
    p.run("r-email", "delete", "alice@example.com", "").await;
    assert_eq!(p.emulator.calls().len(), before);
}

// ---- Okta ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn okta_export_through_link_pages_then_deactivate_and_delete() {
    let p = Project::new(Service::Okta).await;
    // Pages of one user, so the `Link` header pagination runs.
    let pb = p.root().join("policies/okta.yaml");
    let text = std::fs::read_to_string(&pb)
        .unwrap()
        .replace("limit: \"200\"", "limit: \"1\"");
    std::fs::write(&pb, text).unwrap();

    let export = p.run("r-export", "export", "alice@example.com", "").await;
    assert_eq!(
        field(&p.package(&export, "okta", "users").await, "/id"),
        ["00u1alice", "00u3alice"]
    );
    let groups = p.package(&export, "okta", "groups").await;
    assert_eq!(
        field(&groups, "/profile/name"),
        ["Admins", "Everyone", "Finance"]
    );
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.query.contains("after=00u1alice"))
    );

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert!(mutations(&p.emulator).is_empty());

    // Three calls per window: the headers' reset (a Unix time) paces the run; one call at
    // a time, none is sent into an exhausted window, so no 429 comes back. (With several
    // calls in flight, those already sent may get a 429 and are retried.)
    let cfg = p.root().join("dsrctl.yaml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("rate_limit: { per_second: 5 }", "concurrency: 1");
    std::fs::write(&cfg, text).unwrap();
    p.emulator.throttle(Some(Throttle {
        limit: 3,
        window: Duration::from_secs(1),
    }));
    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    assert!(p.emulator.calls().iter().all(|c| c.status != 429));
    let s = p.emulator.snapshot();
    assert_eq!(field(s["users"].as_array().unwrap(), "/id"), ["00u2bob"]);
    let order = mutations(&p.emulator);
    for id in ["00u1alice", "00u3alice"] {
        let deactivate = order
            .iter()
            .position(|m| m == &format!("POST /api/v1/users/{id}/lifecycle/deactivate"))
            .unwrap();
        let delete = order
            .iter()
            .position(|m| m == &format!("DELETE /api/v1/users/{id}"))
            .unwrap();
        assert!(deactivate < delete, "{order:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn okta_hostile_identifiers_and_restrict() {
    let p = Project::new(Service::Okta).await;
    for (i, email) in [
        "\"x\\\" or profile.email sw \\\"b\"@example.com",
        "*@example.com",
        "bob@example.com/../00u1alice",
    ]
    .iter()
    .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    assert_no_mutations(&p.emulator);
    let restrict = p
        .run("r-restrict", "restrict", "alice@example.com", "")
        .await;
    no_step_failed(&p.steps(&restrict).await);
    let s = p.emulator.snapshot();
    let status: Vec<String> = s["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{}={}",
                u["id"].as_str().unwrap(),
                u["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            "00u1alice=SUSPENDED",
            "00u2bob=ACTIVE",
            "00u3alice=SUSPENDED"
        ]
    );
}

// ---- Auth0 ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn auth0_export_restrict_delete_throttled_and_hostile() {
    let p = Project::new(Service::Auth0).await;
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    assert_eq!(
        field(&p.package(&export, "auth0", "users").await, "/user_id"),
        ["auth0|64a1alice", "google-oauth2|1077alice"]
    );
    assert_eq!(
        field(&p.package(&export, "auth0", "roles").await, "/name"),
        ["Customer"]
    );
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.path == "/api/v2/users/auth0%7C64a1alice/roles"),
        "the `|` of the id is encoded in the path"
    );

    for (i, email) in ["*@example.com", "bob@example.com/../auth0|64b2bob"]
        .iter()
        .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert_no_mutations(&p.emulator);

    let restrict = p
        .run("r-restrict", "restrict", "alice@example.com", "")
        .await;
    no_step_failed(&p.steps(&restrict).await);
    let blocked = flags(&p.emulator, "users", "blocked");
    assert_eq!(blocked, [true, true, false]);

    p.emulator.throttle(Some(Throttle {
        limit: 2,
        window: Duration::from_secs(1),
    }));
    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    assert_eq!(
        field(
            p.emulator.snapshot()["users"].as_array().unwrap(),
            "/user_id"
        ),
        ["auth0|64b2bob"]
    );
}

// ---- Intercom ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn intercom_export_restrict_delete_and_hostile() {
    let p = Project::new(Service::Intercom).await;
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    // A search answers one list object; its `data` is what was found.
    let found = p.package(&export, "intercom", "contacts").await;
    let contacts: Vec<Value> = found
        .iter()
        .flat_map(|r| r["data"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(field(&contacts, "/id"), ["6571alice", "6573alice"]);
    let conversations = p.package(&export, "intercom", "conversations").await;
    let text = serde_json::to_string(&conversations).unwrap();
    assert!(
        text.contains("charged twice") && !text.contains("Cannot log in"),
        "{text}"
    );

    for (i, email) in ["*@example.com", "bob@example.com/../6571alice"]
        .iter()
        .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert!(
        mutations(&p.emulator)
            .iter()
            .all(|m| m.ends_with("/search")),
        "{:?}",
        mutations(&p.emulator)
    );

    let restrict = p
        .run("r-restrict", "restrict", "alice@example.com", "")
        .await;
    no_step_failed(&p.steps(&restrict).await);
    let archived: Vec<bool> = p.emulator.snapshot()["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["archived"].as_bool().unwrap())
        .collect();
    assert_eq!(archived, [true, false, true]);

    p.emulator.throttle(Some(Throttle {
        limit: 2,
        window: Duration::from_secs(1),
    }));
    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    assert_eq!(
        field(p.emulator.snapshot()["contacts"].as_array().unwrap(), "/id"),
        ["6572bob"]
    );
}

// ---- Salesforce ----------------------------------------------------------------------

/// The playbook at `rel` with `from` replaced by `to` everywhere.
fn edit(p: &Project, rel: &str, from: &str, to: &str) {
    let path = p.root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{rel} has no `{from}`");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn salesforce_export_through_next_records_url_then_delete() {
    let p = Project::new(Service::Salesforce).await;
    // Batches of one record, so `nextRecordsUrl` is followed.
    edit(
        &p,
        "policies/salesforce.yaml",
        "        path: /query\n",
        "        path: /query\n        headers: { Sforce-Query-Options: \"batchSize=1\" }\n",
    );
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    assert_eq!(
        field(&p.package(&export, "salesforce", "contacts").await, "/Id"),
        ["003A1alice", "003A3alice"]
    );
    let leads = p.package(&export, "salesforce", "leads").await;
    assert_eq!(field(&leads, "/Id"), ["00QA1alice"]);
    assert_eq!(field(&leads, "/Company"), ["Archer Ltd"]);
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.path.starts_with("/services/data/v62.0/query/01gEMU") && c.query.is_empty()),
        "the next batch was fetched from nextRecordsUrl, without parameters"
    );

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert!(mutations(&p.emulator).is_empty());

    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    let s = p.emulator.snapshot();
    assert_eq!(
        field(s["contacts"].as_array().unwrap(), "/Id"),
        ["003B2bob"]
    );
    assert_eq!(field(s["leads"].as_array().unwrap(), "/Id"), ["00QB2bob"]);
    assert_eq!(
        field(s["recycle_bin"].as_array().unwrap(), "/Id"),
        ["003A1alice", "003A3alice", "00QA1alice"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn salesforce_request_limit_is_retried_and_hostile_soql_widens_nothing() {
    let p = Project::new(Service::Salesforce).await;
    // Valid addresses whose quotes would end the SOQL literal and add a condition that
    // matches everyone, were they not escaped.
    for (i, email) in [
        "\"' OR Email != '\"@example.com",
        "o'brien'or'x'='x@example.com",
        "*@example.com",
        "bob@example.com/../003A1alice",
    ]
    .iter()
    .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    let calls = p.emulator.calls();
    assert!(
        calls.iter().any(|c| c.query.contains("%5C%27")),
        "an escaped quote (\\') reached the query: {calls:?}"
    );
    assert!(
        calls.iter().all(|c| c.status == 200),
        "every query parsed: {calls:?}"
    );
    assert_no_mutations(&p.emulator);

    // Past the allocation Salesforce answers 403 REQUEST_LIMIT_EXCEEDED; the connector
    // backs off and retries.
    p.emulator.throttle(Some(Throttle {
        limit: 2,
        window: Duration::from_secs(1),
    }));
    let before = p.emulator.calls().len();
    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    assert!(
        p.emulator.calls()[before..].iter().any(|c| c.status == 403),
        "the limit was reached"
    );
    assert_eq!(
        field(p.emulator.snapshot()["contacts"].as_array().unwrap(), "/Id"),
        ["003B2bob"]
    );
}

// ---- Google Workspace ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn google_workspace_export_pages_groups_then_restrict_and_delete() {
    let p = Project::new(Service::GoogleWorkspace).await;
    edit(
        &p,
        "policies/google-workspace.yaml",
        "maxResults: \"200\"",
        "maxResults: \"1\"",
    );
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    assert_eq!(
        field(
            &p.package(&export, "google-workspace", "users").await,
            "/id"
        ),
        ["104alice"]
    );
    assert_eq!(
        field(
            &p.package(&export, "google-workspace", "groups").await,
            "/name"
        ),
        ["Archery club", "Everyone", "Finance"]
    );
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.query.contains("pageToken=tok-2")),
        "the groups were paged by nextPageToken"
    );

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    for (i, email) in ["*@example.com", "bob@example.com/../104alice"]
        .iter()
        .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    assert_no_mutations(&p.emulator);

    let restrict = p
        .run("r-restrict", "restrict", "alice@example.com", "")
        .await;
    no_step_failed(&p.steps(&restrict).await);
    let suspended = flags(&p.emulator, "users", "suspended");
    assert_eq!(suspended, [true, false]);

    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    let s = p.emulator.snapshot();
    assert_eq!(field(s["users"].as_array().unwrap(), "/id"), ["104bob"]);
    assert_eq!(field(s["deleted"].as_array().unwrap(), "/id"), ["104alice"]);
    assert_eq!(
        field(s["members"].as_array().unwrap(), "/userId"),
        ["104bob"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn google_workspace_rate_limit_answers_403_and_429_are_retried() {
    let p = Project::new(Service::GoogleWorkspace).await;
    edit(
        &p,
        "policies/google-workspace.yaml",
        "maxResults: \"200\"",
        "maxResults: \"1\"",
    );
    p.emulator.throttle(Some(Throttle {
        limit: 1,
        window: Duration::from_secs(1),
    }));
    let run = p
        .run("r-throttled", "export", "alice@example.com", "")
        .await;
    no_step_failed(&p.steps(&run).await);
    let statuses: Vec<u16> = p.emulator.calls().iter().map(|c| c.status).collect();
    assert!(
        statuses.contains(&403) && statuses.contains(&429),
        "{statuses:?}"
    );
    assert_eq!(p.package(&run, "google-workspace", "groups").await.len(), 3);
}

// ---- Slack ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn slack_export_pages_by_start_index_then_deactivate_throttled() {
    let p = Project::new(Service::Slack).await;
    edit(&p, "policies/slack.yaml", "count: \"1000\"", "count: \"1\"");
    edit(&p, "policies/slack.yaml", "page_size: 1000", "page_size: 1");
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    assert_eq!(
        field(&p.package(&export, "slack", "users").await, "/id"),
        ["W01ALICE", "W03ALICE"]
    );
    assert!(
        p.emulator
            .calls()
            .iter()
            .any(|c| c.query.contains("startIndex=2")),
        "the listing was paged"
    );

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert!(mutations(&p.emulator).is_empty());

    // One call a second; Slack answers 429 with Retry-After, which the connector waits.
    p.emulator.throttle(Some(Throttle {
        limit: 1,
        window: Duration::from_secs(1),
    }));
    let before = p.emulator.calls().len();
    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    assert!(p.emulator.calls()[before..].iter().any(|c| c.status == 429));
    let active: Vec<String> = p.emulator.snapshot()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("{}={}", u["id"].as_str().unwrap(), u["active"]))
        .collect();
    assert_eq!(active, ["W01ALICE=false", "W02BOB=true", "W03ALICE=false"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_hostile_filters_address_nobody_else() {
    let p = Project::new(Service::Slack).await;
    for (i, email) in [
        "\"x\\\" or userName sw \\\"b\"@example.com",
        "*@example.com",
        "bob@example.com/../W02BOB",
    ]
    .iter()
    .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    assert!(
        p.emulator.calls().iter().all(|c| c.status == 200),
        "every filter parsed: {:?}",
        p.emulator.calls()
    );
    assert_no_mutations(&p.emulator);
    assert!(
        p.emulator.snapshot()["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["active"] == true)
    );
}

// ---- SendGrid ------------------------------------------------------------------------

fn sendgrid_mutations(emulator: &SaasEmulator) -> Vec<String> {
    mutations(emulator)
        .into_iter()
        .filter(|m| !m.ends_with("/search/emails"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sendgrid_export_unknown_and_hostile() {
    let p = Project::new(Service::Sendgrid).await;
    let export = p.run("r-export", "export", "ALICE@example.com", "").await;
    let contacts = p.package(&export, "sendgrid", "contacts").await;
    assert_eq!(
        field(&contacts, "/contact/id"),
        ["4d5a7c1e-0a11-4c6e-9d1a-a11ce0000001"]
    );
    assert_eq!(
        field(
            &p.package(&export, "sendgrid", "unsubscribes").await,
            "/recipient_email"
        ),
        ["alice@example.com"]
    );
    assert_eq!(
        field(&p.package(&export, "sendgrid", "bounces").await, "/reason"),
        ["550 5.1.1 mailbox full"]
    );

    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    for (i, email) in ["*@example.com", "bob@example.com/../alice@example.com"]
        .iter()
        .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    assert!(
        sendgrid_mutations(&p.emulator).is_empty(),
        "{:?}",
        sendgrid_mutations(&p.emulator)
    );
    let s = p.emulator.snapshot();
    assert_eq!(s["contacts"].as_array().unwrap().len(), 2);
    assert_eq!(s["unsubscribes"].as_array().unwrap().len(), 2);
    assert_eq!(s["bounces"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sendgrid_deletion_job_completes_later_and_headers_pace_the_run() {
    let p = Project::new(Service::Sendgrid).await;
    // One call per window: the headers' reset (a Unix time) paces the run, so no 429.
    let cfg = p.root().join("dsrctl.yaml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("rate_limit: { per_second: 5 }", "concurrency: 1");
    std::fs::write(&cfg, text).unwrap();
    p.emulator.throttle(Some(Throttle {
        limit: 2,
        window: Duration::from_secs(1),
    }));
    let run = p.run("r-delete", "delete", "alice@example.com", "").await;
    let calls = p.emulator.calls();
    assert!(calls.iter().all(|c| c.status != 429), "{calls:?}");
    let steps = p.steps(&run).await;
    no_step_failed(&steps);
    assert_eq!(
        Project::step_status(&steps, "sendgrid/deletion-status"),
        "waiting"
    );
    let s = p.emulator.snapshot();
    assert_eq!(
        s["contacts"].as_array().unwrap().len(),
        2,
        "not yet deleted"
    );
    assert_eq!(
        field(s["unsubscribes"].as_array().unwrap(), "/email"),
        ["bob@example.com"]
    );
    assert_eq!(
        field(s["bounces"].as_array().unwrap(), "/email"),
        ["bob@example.com"]
    );
    p.emulator.throttle(None);

    // The job has run; a later process polls it and finds it completed.
    p.emulator
        .advance_clock(Duration::from_secs(saas::sendgrid::JOB_SECS));
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    ok(p.at().args(["tick", "--now", &later])).await;
    let steps = p.steps(&run).await;
    assert_eq!(
        Project::step_status(&steps, "sendgrid/deletion-status"),
        "succeeded"
    );
    assert_eq!(
        Project::step_status(&steps, "sendgrid/confirm-deleted"),
        "absent",
        "the search no longer finds the contact"
    );
    assert_eq!(
        field(
            p.emulator.snapshot()["contacts"].as_array().unwrap(),
            "/email"
        ),
        ["bob@example.com"]
    );
    let sent: Vec<String> = sendgrid_mutations(&p.emulator);
    assert_eq!(
        sent.iter()
            .filter(|m| m.starts_with("DELETE /v3/marketing/contacts"))
            .count(),
        1,
        "{sent:?}"
    );
}

// ---- Braze ---------------------------------------------------------------------------

fn braze_deletes(emulator: &SaasEmulator) -> usize {
    emulator
        .calls()
        .iter()
        .filter(|c| c.path == "/users/delete")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn braze_export_delete_unknown_throttled_and_hostile() {
    let p = Project::new(Service::Braze).await;
    let export = p.run("r-export", "export", "alice@example.com", "").await;
    // An export answers one object; its `users` are the profiles found.
    let profiles: Vec<Value> = p
        .package(&export, "braze", "profiles")
        .await
        .iter()
        .flat_map(|r| r["users"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        field(&profiles, "/braze_id"),
        ["65a1alice0000000000001", "65a1alice0000000000003"],
        "the identified profile and the alias-only lead"
    );
    assert_eq!(field(&profiles, "/custom_events/0/name").len(), 2);
    assert!(!serde_json::to_string(&profiles).unwrap().contains("bob@"));

    for (i, email) in [
        "*@example.com",
        "bob@example.com\", \"alice@example.com",
        "BOB@example.com ",
    ]
    .iter()
    .enumerate()
    {
        p.run_hostile(&format!("h{i}"), email).await;
    }
    let unknown = p.run("r-unknown", "delete", "nobody@example.com", "").await;
    no_step_failed(&p.steps(&unknown).await);
    assert_eq!(braze_deletes(&p.emulator), 0, "nothing deleted for nobody");
    assert_eq!(p.emulator.snapshot()["users"].as_array().unwrap().len(), 3);

    // One call per two seconds: after an answer that says none is left, the connector waits
    // for the reset the headers name. The two deletions run in parallel, so after a reset one
    // of them may find the window taken (429) and is retried.
    p.emulator.throttle(Some(Throttle {
        limit: 1,
        window: Duration::from_secs(2),
    }));
    let before = p.emulator.calls().len();
    let delete = p.run("r-delete", "delete", "alice@example.com", "").await;
    no_step_failed(&p.steps(&delete).await);
    let calls = p.emulator.calls()[before..].to_vec();
    let seen: Vec<(u16, &str, u128)> = calls
        .iter()
        .map(|c| {
            (
                c.status,
                c.path.as_str(),
                c.at.duration_since(calls[0].at).as_millis(),
            )
        })
        .collect();
    assert!(calls.len() >= 5, "{seen:?}");
    assert!(
        calls[1].at.duration_since(calls[0].at) >= Duration::from_millis(1500),
        "the second call waited for the reset: {seen:?}"
    );
    let mut deleted: Vec<&str> = calls
        .iter()
        .filter(|c| c.path == "/users/delete" && c.status == 201)
        .map(|c| c.body.as_str())
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            r#"{"braze_ids":["65a1alice0000000000001"]}"#,
            r#"{"braze_ids":["65a1alice0000000000003"]}"#
        ],
        "each profile deleted once: {seen:?}"
    );
    assert_eq!(
        field(p.emulator.snapshot()["users"].as_array().unwrap(), "/email"),
        ["bob@example.com"]
    );
}

// ---- Mixpanel ------------------------------------------------------------------------

fn mixpanel_ids(emulator: &SaasEmulator, what: &str, pointer: &str) -> Vec<String> {
    field(emulator.snapshot()[what].as_array().unwrap(), pointer)
}

#[tokio::test(flavor = "multi_thread")]
async fn mixpanel_retrieval_and_deletion_finish_a_simulated_day_later_in_another_process() {
    let p = Project::new(Service::Mixpanel).await;
    // The GDPR API allows one request per second and answers 429 past it.
    p.emulator.throttle(Some(Throttle {
        limit: 1,
        window: Duration::from_secs(1),
    }));
    let export = p.run_user("r-export", "export", "user-alice").await;
    let delete = p.run_user("r-delete", "delete", "user-alice").await;
    let calls = p.emulator.calls();
    assert!(calls.len() >= 4, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.query == format!("token={}", saas::mixpanel::PROJECT_TOKEN)),
        "the project token is on every call"
    );
    let steps = p.steps(&export).await;
    no_step_failed(&steps);
    assert_eq!(
        Project::step_status(&steps, "mixpanel/retrieval-status"),
        "waiting"
    );
    let steps = p.steps(&delete).await;
    assert_eq!(
        Project::step_status(&steps, "mixpanel/deletion-status"),
        "waiting"
    );
    assert_eq!(
        mixpanel_ids(&p.emulator, "events", "/properties/distinct_id"),
        ["user-alice", "user-alice", "user-bob"],
        "nothing deleted before the task has run"
    );
    p.emulator.throttle(None);

    // A day later, another process polls again: both tasks have succeeded.
    p.emulator
        .advance_clock(Duration::from_secs(saas::mixpanel::DURATION_SECS));
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    ok(p.at().args(["tick", "--now", &later])).await;
    let steps = p.steps(&delete).await;
    no_step_failed(&steps);
    assert_eq!(
        Project::step_status(&steps, "mixpanel/deletion-status"),
        "succeeded"
    );
    assert_eq!(
        mixpanel_ids(&p.emulator, "events", "/properties/distinct_id"),
        ["user-bob"]
    );
    assert_eq!(
        mixpanel_ids(&p.emulator, "profiles", "/$distinct_id"),
        ["user-bob"]
    );

    let steps = p.steps(&export).await;
    assert_eq!(
        Project::step_status(&steps, "mixpanel/retrieval-status"),
        "succeeded"
    );
    assert_eq!(
        Project::step_status(&steps, "mixpanel/download-archive"),
        "waiting",
        "a person downloads the archive"
    );
    // The archive behind the link holds Alice's data and nobody else's; a person downloads
    // it and records it.
    let tasks = p.emulator.snapshot()["tasks"].clone();
    let retrieval_task = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "retrieval")
        .unwrap()
        .clone();
    let text = retrieval_task["archive"].to_string();
    assert!(
        text.contains("Purchase") && text.contains("user-alice") && !text.contains("user-bob"),
        "{text}"
    );
    std::fs::write(p.root().join("archive.json"), &text).unwrap();
    ok(p.at().args([
        "task",
        "done",
        &export,
        "mixpanel/download-archive",
        "--by",
        "ops",
        "--evidence",
        "archive.json",
    ]))
    .await;
    assert_eq!(
        Project::step_status(&p.steps(&export).await, "mixpanel/download-archive"),
        "succeeded"
    );
    // The package holds the finished retrieval and the archive's link.
    let retrieval = p.package(&export, "mixpanel", "retrieval").await;
    let found = serde_json::to_string(&retrieval).unwrap();
    let task_id = retrieval_task["task_id"].as_str().unwrap();
    assert!(
        found.contains(&format!("/gdpr-exports/{task_id}.zip")) && found.contains("user-alice"),
        "{found}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mixpanel_unknown_and_hostile_user_ids_address_nobody_else() {
    let p = Project::new(Service::Mixpanel).await;
    // Mixpanel does not say which distinct ids it holds: an unknown one gets its task, which
    // succeeds with nothing deleted.
    let unknown = p.run_user("r-unknown", "delete", "user-nobody").await;
    let hostile = p
        .run_user("r-hostile", "delete", "user-bob\", \"user-alice")
        .await;
    p.emulator
        .advance_clock(Duration::from_secs(saas::mixpanel::DURATION_SECS));
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    ok(p.at().args(["tick", "--now", &later])).await;
    for run in [&unknown, &hostile] {
        let steps = p.steps(run).await;
        no_step_failed(&steps);
        assert_eq!(
            Project::step_status(&steps, "mixpanel/deletion-status"),
            "succeeded"
        );
    }
    assert_eq!(
        mixpanel_ids(&p.emulator, "events", "/properties/distinct_id"),
        ["user-alice", "user-alice", "user-bob"]
    );
    let tasks = p.emulator.snapshot()["tasks"].clone();
    assert_eq!(
        tasks[1]["distinct_ids"],
        serde_json::json!(["user-bob\", \"user-alice"])
    );
    // A request without a user id does not reach Mixpanel.
    let before = p.emulator.calls().len();
    p.run("r-email", "delete", "alice@example.com", "").await;
    assert_eq!(p.emulator.calls().len(), before);
}
