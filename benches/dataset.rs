//! Datasets at size: validate + derive + compile a generated 200-table dataset, and
//! introspect the same 200 tables on PostgreSQL (when reachable). Prints wall times and the
//! peak resident memory.
//!
//! Run: `cargo bench --bench dataset` (`DSRCTL_BENCH_TABLES` for another size;
//! `DSRCTL_TEST_POSTGRES_URL` for another server; the introspection is skipped, saying so,
//! when PostgreSQL cannot be reached).
//!
//! The derived erasure at size, on PostgreSQL, against psql running the same finds and
//! deletes (`dataset_erase.rs`):
//!
//! ```text
//! cargo bench --bench dataset -- erase    # 1,000 subjects through the engine vs psql
//! ```
//!
//! The data (1,000,000 customers, 10,000,000 rows in 199 related tables;
//! `DSRCTL_BENCH_RELATED` for another count) lives in the database `dsrctl_bench_dataset`,
//! generated server-side by `INSERT ... SELECT ... generate_series` the first time and
//! reused after.

#[path = "dataset_support/erase.rs"]
mod dataset_erase;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::TimeZone;

/// Table `i`'s parent: a tree with fan-out 3 under table 0, the customer.
fn parent(i: usize) -> usize {
    (i - 1) / 3
}

fn table(i: usize) -> String {
    if i == 0 {
        "customer".to_owned()
    } else {
        format!("t{i:03}")
    }
}

fn dataset(n: usize) -> String {
    dataset_with(n, true)
}

/// The dataset: with `more_identities`, every tenth table also holds the email.
fn dataset_with(n: usize, more_identities: bool) -> String {
    let mut s = String::from(
        "service: big\nconnector: db\ndataset:\n  tables:\n    customer:\n      columns:\n        id:\n        email: { identity: email, category: user.contact.email }\n        name: user.name\n",
    );
    for i in 1..n {
        let _ = write!(
            s,
            "    {t}:\n      columns:\n        id:\n        parent_id: {{ references: {p}.id }}\n        name: user.name\n        note: user.content\n        amount:\n        created_at:\n",
            t = table(i),
            p = table(parent(i))
        );
        if more_identities && i % 10 == 0 {
            let _ = writeln!(
                s,
                "        email: {{ identity: email, category: user.contact.email }}"
            );
        }
    }
    s.push_str("dsr:\n  rectify: { unsupported: \"benchmark\" }\n");
    s
}

fn write_project(dir: &Path, n: usize, url: &str) {
    std::fs::create_dir_all(dir.join("policies")).expect("policies");
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!("tenants:\n  t1:\n    connectors:\n      db: {{ kind: sql, url: \"{url}\" }}\n"),
    )
    .expect("config");
    std::fs::write(dir.join("policies/big.yaml"), dataset(n)).expect("playbook");
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn validate_and_compile(n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_project(dir.path(), n, "sqlite:big.db");
    let now = chrono::Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
    for run in 1..=5 {
        let start = Instant::now();
        let project = match dsrctl::load::load_project(dir.path()) {
            Ok(p) => p,
            Err(d) => {
                eprint!("{}", d.render_human(false));
                std::process::exit(1);
            }
        };
        let validate = start.elapsed();
        let start = Instant::now();
        let mut steps = 0;
        for kind in ["access", "delete"] {
            let request = dsrctl::load::load_request_str(
                "r.yaml",
                &format!("id: r-{kind}\nkind: {kind}\ntenant: t1\nreceived: 2026-11-02\nsubject: {{ email: a@example.com }}\n"),
            )
            .expect("request");
            steps += dsrctl::compile::compile(&project, &request, now)
                .expect("compile")
                .steps
                .len();
        }
        let compile = start.elapsed();
        println!(
            "run {run}: {n} tables: validate + derive {}, compile access + delete ({steps} steps) {}, total {}",
            ms(validate),
            ms(compile),
            ms(validate + compile)
        );
    }
}

fn introspect(n: usize) {
    let url = std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let schema = format!("dsrctl_bench_ds_{}", std::process::id());
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg: dsrctl::model::SqlConnector =
        serde_json::from_value(serde_json::json!({ "url": url, "timeout": "60s" })).expect("cfg");
    let _guard = rt.enter();
    let client =
        match dsrctl::connectors::sql::SqlClient::connect("db", &url, &cfg, dir.path(), None) {
            Ok(c) => c,
            Err(e) => {
                println!("introspection skipped: {e}");
                return;
            }
        };
    rt.block_on(async {
        use dsrctl::connectors::{Connector, Operation};
        let exec = |sql: String| {
            let a: dsrctl::model::SqlAction =
                serde_json::from_value(serde_json::json!({ "execute": sql })).expect("sql");
            Operation::Sql(a)
        };
        if let Err(e) = client.mutate(&exec(format!("CREATE SCHEMA \"{schema}\""))).await {
            println!("introspection skipped: PostgreSQL not reachable ({e})");
            return;
        }
        let mut ddl = String::new();
        for i in 0..n {
            let t = table(i);
            if i == 0 {
                let _ = write!(ddl, "CREATE TABLE \"{schema}\".customer (id BIGINT PRIMARY KEY, email TEXT, name TEXT);");
            } else {
                let _ = write!(
                    ddl,
                    "CREATE TABLE \"{schema}\".{t} (id BIGINT PRIMARY KEY, parent_id BIGINT REFERENCES \"{schema}\".{p}(id), \
                     name TEXT, note TEXT, amount NUMERIC(10,2), created_at TIMESTAMPTZ);",
                    p = table(parent(i))
                );
            }
        }
        client
            .mutate(&exec(format!("DO $$ BEGIN EXECUTE '{}'; END $$", ddl.replace('\'', "''").trim_end_matches(';').replace(';', "'; EXECUTE '"))))
            .await
            .expect("create tables");
        for run in 1..=3 {
            let start = Instant::now();
            let live = client.introspect(Some(&schema)).await.expect("introspect");
            let took = start.elapsed();
            println!(
                "introspect run {run}: {} tables, {} columns, {} foreign keys in {}",
                live.tables.len(),
                live.tables.values().map(|t| t.columns.len()).sum::<usize>(),
                live.foreign_keys.len(),
                ms(took)
            );
        }
        let _ = client
            .mutate(&exec(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .await;
        client.close().await;
    });
}

fn main() {
    if std::env::args().skip(1).any(|a| a == "erase") {
        dataset_erase::run();
        return;
    }
    let n: usize = std::env::var("DSRCTL_BENCH_TABLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    validate_and_compile(n);
    introspect(n);
    println!(
        "peak RSS: {:.1} MiB",
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0
    );
}
