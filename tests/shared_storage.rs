//! Two workers on one PostgreSQL store, each in a working directory of its own, sharing the
//! project's object storage: one collects a request's records, the other builds the export
//! package from them (S3 through moto, Azure Blob through Azurite). Regression: the records
//! stayed on the disk of the worker that ran the request, so no other worker could build its
//! package.

mod support;

// The emulator starters of `tests/report`, which find `missing` at `crate::tools`.
use support::tools;

#[allow(dead_code)]
#[path = "report/azurite.rs"]
mod azurite;
#[allow(dead_code)]
#[path = "report/emulator.rs"]
mod emulator;
#[allow(dead_code)]
#[path = "report/moto.rs"]
mod moto;

use serde_json::json;
use support::cli::{CONTACTS_PLAYBOOK, ProjectDir};
use support::{Reply, TestServer};

const DATA_KEY: &str = "5b1f3c0e9d7a4f6b8c2e1d0a9f8e7d6c5b4a39281706f5e4d3c2b1a098f7e6d5";

fn postgres_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A worker's project directory: the same config, store and storage as the other's.
fn worker(config: &str) -> ProjectDir {
    ProjectDir::new()
        .file("dsrctl.yaml", config)
        .file("policies/crm.yaml", CONTACTS_PLAYBOOK)
}

/// Worker 1 collects an export request; worker 2, which never saw its files, builds the
/// package.
async fn one_collects_the_other_builds_the_package(storage: &str, env: &[(&str, &str)]) {
    let server = TestServer::start(|_, _| {
        Reply::json(
            200,
            json!([{ "id": 1, "email": "alice@example.com", "name": "Alice Liddell" }]),
        )
    })
    .await;
    let schema = format!(
        "shared_storage_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let sep = if postgres_url().contains('?') {
        '&'
    } else {
        '?'
    };
    let config = format!(
        "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {}\n\
         state: \"{}{sep}schema={schema}\"\n\
         data_key: {{ env: DSRCTL_TEST_DATA_KEY }}\n{storage}",
        server.url,
        postgres_url()
    );
    let (one, two) = (worker(&config), worker(&config));
    let cmd = |p: &ProjectDir| {
        env.iter().fold(
            p.cmd().env("DSRCTL_TEST_DATA_KEY", DATA_KEY),
            |c, (k, v)| c.env(k, v),
        )
    };

    cmd(&one)
        .args([
            "request",
            "new",
            "--kind",
            "export",
            "--tenant",
            "t1",
            "--email",
            "alice@example.com",
        ])
        .run()
        .await
        .expect_code(0);
    cmd(&one).args(["tick"]).run().await.expect_code(0);

    let status = cmd(&two)
        .args(["status", "--json"])
        .run()
        .await
        .expect_code(0)
        .json();
    let run = status["run"].as_str().expect("run id").to_owned();
    assert_eq!(status["status"], "completed", "{status}");
    assert!(one.path().join(".dsrctl/runs").join(&run).exists());
    assert!(!two.path().join(".dsrctl/runs").join(&run).exists());

    let out = cmd(&two)
        .args(["report", &run, "--package", "out", "-o", "evidence.md"])
        .run()
        .await
        .expect_code(0);
    assert!(
        out.stderr.contains("fetched 1 collected file"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("kept the export package"),
        "{}",
        out.stderr
    );
    let records = std::fs::read_to_string(two.path().join("out/crm/contacts.json"))
        .unwrap_or_else(|e| panic!("no package ({e}):\n{}", out.stderr));
    assert!(records.contains("Alice Liddell"), "{records}");

    // The other worker finds the subject's request through the keyed index, in PostgreSQL.
    let found = cmd(&two)
        .args([
            "requests",
            "--format",
            "json",
            "--subject",
            "email=alice@example.com",
        ])
        .run()
        .await
        .expect_code(0)
        .json();
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");

    // The stored copy of the records is sealed like the local one.
    let fetched = two
        .path()
        .join(".dsrctl/runs")
        .join(&run)
        .join("collect/crm/contacts.0.ndjson");
    let bytes = std::fs::read_to_string(&fetched).expect("fetched spool file");
    assert!(!bytes.contains("Alice"), "{bytes}");

    // A worker on the shared store without the shared storage and key is told what it lacks.
    let alone = worker(config.split("data_key:").next().expect("config"));
    let out = alone.cmd().args(["requests"]).run().await;
    for lacking in ["`data_key` is not set", "`storage` is not set"] {
        assert!(out.stderr.contains(lacking), "{}", out.stderr);
    }
    let out = cmd(&two).args(["requests"]).run().await.expect_code(0);
    assert!(!out.stderr.contains("is not set"), "{}", out.stderr);

    let pool = sqlx::PgPool::connect(&postgres_url())
        .await
        .expect("postgres");
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_collected_records_through_s3() {
    let Some(s3) = moto::Moto::start() else {
        return;
    };
    s3.create_bucket("dsr-runs").await;
    let storage = format!(
        "storage:\n  type: s3\n  bucket: dsr-runs\n  region: {}\n  endpoint: {}\n  \
         access_key_id: {{ env: TEST_S3_KEY_ID }}\n  secret_access_key: {{ env: TEST_S3_SECRET }}\n",
        moto::REGION,
        s3.endpoint()
    );
    one_collects_the_other_builds_the_package(
        &storage,
        &[("TEST_S3_KEY_ID", "testing"), ("TEST_S3_SECRET", "testing")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_collected_records_through_azure_blob() {
    let Some(blob) = azurite::Azurite::start() else {
        return;
    };
    blob.create_container("dsr-runs").await;
    let storage = format!(
        "storage:\n  type: azure_blob\n  endpoint: {}\n  account: {}\n  container: dsr-runs\n  \
         key: {{ env: TEST_AZURE_KEY }}\n",
        blob.endpoint(),
        azurite::ACCOUNT
    );
    one_collects_the_other_builds_the_package(&storage, &[("TEST_AZURE_KEY", azurite::KEY)]).await;
}
