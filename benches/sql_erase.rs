//! Erasure and export through the SQL connector versus `psql`, on PostgreSQL.
//!
//! ```text
//! cargo bench --bench sql_erase -- setup     # 1,000,000 customers, 5,000,000 orders, 1,000,000 events
//! cargo bench --bench sql_erase -- erase     # 1,000 subjects: dsrctl vs psql, concurrency 4 and 1
//! cargo bench --bench sql_erase -- export    # one subject with 1,000,000 rows into a file; peak RSS
//! cargo bench --bench sql_erase -- all       # the three, export in a fresh process
//! ```
//!
//! The database comes from `DSRCTL_TEST_POSTGRES_URL` (default: the local test server); the
//! data lives in the schema `dsrctl_bench_sql`. Every erase run takes fresh subjects, so the
//! runs compare the same work on the same data.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dsrctl::connectors::sql::SqlClient;
use dsrctl::connectors::{Connector, Operation, RecordSink};
use dsrctl::model::{SqlAction, SqlConnector};
use futures::StreamExt;
use serde_json::{Value, json};

const SCHEMA: &str = "dsrctl_bench_sql";
const CUSTOMERS: u64 = 1_000_000;
const SUBJECTS: u64 = 1_000;

fn url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn client(concurrency: u32) -> SqlClient {
    let cfg: SqlConnector = serde_json::from_value(
        json!({ "url": url(), "concurrency": concurrency, "timeout": "10m" }),
    )
    .expect("config");
    SqlClient::connect("bench", &url(), &cfg, Path::new("."), None).expect("client")
}

fn op(v: Value) -> Operation {
    Operation::Sql(serde_json::from_value::<SqlAction>(v).expect("action"))
}

fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            url().as_str(),
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn setup() {
    let t = Instant::now();
    for sql in [
        format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"),
        format!("CREATE SCHEMA {SCHEMA}"),
        format!(
            "CREATE TABLE {SCHEMA}.customers (id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT, city TEXT)"
        ),
        format!(
            "CREATE TABLE {SCHEMA}.orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, item TEXT, amount NUMERIC(10,2), created TIMESTAMPTZ)"
        ),
        format!(
            "CREATE TABLE {SCHEMA}.events (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, kind TEXT, payload JSONB, amount NUMERIC(12,2), at TIMESTAMPTZ)"
        ),
        format!(
            "INSERT INTO {SCHEMA}.customers SELECT g, 'user' || g || '@example.com', 'Name ' || g, 'City ' || (g % 100) \
             FROM generate_series(1, {CUSTOMERS}) g"
        ),
        format!(
            "INSERT INTO {SCHEMA}.orders SELECT g, (g % {CUSTOMERS}) + 1, 'item ' || (g % 977), (g % 10000) / 100.0, \
             timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, {}) g",
            CUSTOMERS * 5
        ),
        format!(
            "INSERT INTO {SCHEMA}.events SELECT g, 0, 'page_view', jsonb_build_object('path', '/p/' || g, 'ms', g % 1000), \
             (g % 100000) / 100.0, timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, 1000000) g"
        ),
        format!(
            "INSERT INTO {SCHEMA}.customers VALUES (0, 'heavy@example.com', 'Heavy', 'Everywhere')"
        ),
        format!("CREATE UNIQUE INDEX ON {SCHEMA}.customers (email)"),
        format!("CREATE INDEX ON {SCHEMA}.orders (customer_id)"),
        format!("CREATE INDEX ON {SCHEMA}.events (customer_id)"),
        format!(
            "ALTER TABLE {SCHEMA}.orders ADD FOREIGN KEY (customer_id) REFERENCES {SCHEMA}.customers (id)"
        ),
        format!("VACUUM ANALYZE {SCHEMA}.customers"),
        format!("VACUUM ANALYZE {SCHEMA}.orders"),
        format!("VACUUM ANALYZE {SCHEMA}.events"),
    ] {
        psql(&sql);
    }
    println!("setup: {:.1} s", t.elapsed().as_secs_f64());
}

/// Subjects of run `round`: 1,000 customers spread over the table, disjoint between rounds.
fn subjects(round: u64) -> Vec<String> {
    (0..SUBJECTS)
        .map(|k| format!("user{}@example.com", k * (CUSTOMERS / SUBJECTS) + round + 1))
        .collect()
}

fn erase_ops(email: &str, guarded: bool) -> [Operation; 2] {
    let c = format!("{SCHEMA}.customers");
    let (mo, mc) = if guarded {
        (json!(100), json!(1))
    } else {
        (Value::Null, Value::Null)
    };
    [
        op(json!({ "delete": { "table": format!("{SCHEMA}.orders"),
            "through": { "table": c, "column": "customer_id", "where": { "email": email } } }, "max_rows": mo })),
        op(json!({ "delete": { "table": c, "where": { "email": email } }, "max_rows": mc })),
    ]
}

/// How a subject's two deletes commit.
#[derive(Clone, Copy, PartialEq)]
enum Commit {
    /// No `max_rows`: each DELETE autocommits.
    Single,
    /// `max_rows` set: each step BEGIN, DELETE, check, COMMIT (`commit: step`).
    PerStep,
    /// `max_rows` set: both steps in one transaction (`commit: service`, the default).
    PerService,
}

impl Commit {
    fn describe(self) -> &'static str {
        match self {
            Commit::Single => "no `max_rows`: one DELETE",
            Commit::PerStep => "`max_rows` set, `commit: step`: BEGIN, DELETE, COMMIT per step",
            Commit::PerService => "`max_rows` set, `commit: service`: one transaction per subject",
        }
    }
}

/// Erases the subjects through the connector, `concurrency` subjects at a time, as a
/// playbook's two steps committed as `commit` says. `full` adds each step's preview and
/// verification.
async fn erase_dsrctl(round: u64, concurrency: usize, commit: Commit, full: bool) -> Duration {
    let client = Arc::new(client(concurrency as u32));
    let t = Instant::now();
    let rows: Vec<u64> = futures::stream::iter(subjects(round))
        .map(|email| {
            let client = client.clone();
            async move {
                let mut n = 0;
                for step in erase_ops(&email, commit != Commit::Single) {
                    if full {
                        client.preview(&step).await.expect("preview");
                    }
                    let sent = match commit {
                        Commit::PerService => client.mutate_in(&email, &step).await,
                        _ => client.mutate(&step).await,
                    };
                    n += sent.expect("erase").affected.unwrap_or(0);
                    if full && commit != Commit::PerService {
                        verify(&client, &step).await;
                    }
                }
                if commit == Commit::PerService {
                    client.commit(&email).await.expect("commit");
                    if full {
                        for step in erase_ops(&email, true) {
                            verify(&client, &step).await;
                        }
                    }
                }
                n
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = t.elapsed();
    client.close().await;
    assert!(rows.iter().all(|&n| n >= 1), "every subject existed");
    elapsed
}

async fn verify(client: &SqlClient, step: &Operation) {
    let v = client.verify(step).await.expect("verify");
    assert!(v.expect("verified").passed);
}

/// The same statements, prepared once per session, run by `concurrency` psql processes, in
/// the transactions `commit` says.
fn erase_psql(round: u64, concurrency: usize, commit: Commit) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for part in 0..concurrency {
        let path = dir.path().join(format!("erase-{part}.sql"));
        let mut f = BufWriter::new(std::fs::File::create(&path).expect("file"));
        writeln!(
            f,
            "PREPARE d_orders(text) AS DELETE FROM \"{SCHEMA}\".\"orders\" WHERE \"customer_id\" IN \
             (SELECT \"id\" FROM \"{SCHEMA}\".\"customers\" WHERE \"email\" = $1);\n\
             PREPARE d_customer(text) AS DELETE FROM \"{SCHEMA}\".\"customers\" WHERE \"email\" = $1;"
        )
        .expect("write");
        for email in subjects(round).iter().skip(part).step_by(concurrency) {
            let text = match commit {
                Commit::PerStep => format!(
                    "BEGIN;\nEXECUTE d_orders('{email}');\nCOMMIT;\nBEGIN;\nEXECUTE d_customer('{email}');\nCOMMIT;"
                ),
                Commit::Single => {
                    format!("EXECUTE d_orders('{email}');\nEXECUTE d_customer('{email}');")
                }
                Commit::PerService => format!(
                    "BEGIN;\nEXECUTE d_orders('{email}');\nEXECUTE d_customer('{email}');\nCOMMIT;"
                ),
            };
            writeln!(f, "{text}").expect("write");
        }
        f.flush().expect("flush");
        files.push(path);
    }
    let t = Instant::now();
    let children: Vec<_> = files
        .iter()
        .map(|p| {
            Command::new("psql")
                .args([url().as_str(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(p)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("psql")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("psql").success());
    }
    t.elapsed()
}

fn remaining(round: u64) -> String {
    let list: Vec<String> = subjects(round).iter().map(|e| format!("'{e}'")).collect();
    psql(&format!(
        "SELECT count(*) FROM {SCHEMA}.customers WHERE email IN ({})",
        list.join(",")
    ))
}

async fn erase() {
    let mut round = std::env::var("DSRCTL_BENCH_ROUND")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    println!("| concurrency | step | dsrctl | psql | ratio |");
    println!("|---|---|---|---|---|");
    // Each configuration twice, in both orders, on fresh subjects; the better time of each counts.
    let configurations = [Commit::PerStep, Commit::Single, Commit::PerService];
    for (concurrency, commit) in [4, 1]
        .into_iter()
        .flat_map(|c| configurations.map(|m| (c, m)))
    {
        let (mut d, mut p) = (Duration::MAX, Duration::MAX);
        for dsrctl_first in [true, false] {
            let (rd, rp) = if dsrctl_first {
                (round, round + 1)
            } else {
                (round + 1, round)
            };
            if dsrctl_first {
                d = d.min(erase_dsrctl(rd, concurrency, commit, false).await);
                p = p.min(erase_psql(rp, concurrency, commit));
            } else {
                p = p.min(erase_psql(rp, concurrency, commit));
                d = d.min(erase_dsrctl(rd, concurrency, commit, false).await);
            }
            assert_eq!(remaining(round), "0");
            assert_eq!(remaining(round + 1), "0");
            round += 2;
        }
        println!(
            "| {concurrency} | {} | {:.2} s | {:.2} s | {:.2} |",
            commit.describe(),
            d.as_secs_f64(),
            p.as_secs_f64(),
            d.as_secs_f64() / p.as_secs_f64()
        );
    }
    let d = erase_dsrctl(round, 4, Commit::PerService, true).await;
    assert_eq!(remaining(round), "0");
    println!(
        "| 4 | `commit: service`, plus preview and verification per step | {:.2} s | | |",
        d.as_secs_f64()
    );
    println!("next free round: {}", round + 1);
}

struct FileSink(BufWriter<std::fs::File>);

impl RecordSink for FileSink {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.0, record)?;
        self.0.write_all(b"\n")
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

async fn export() {
    let client = client(4);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.jsonl");
    let mut sink = FileSink(BufWriter::new(std::fs::File::create(&path).expect("file")));
    let read = op(
        json!({ "select": { "table": format!("{SCHEMA}.events"), "where": { "customer_id": 0 }, "order_by": ["id"] } }),
    );
    let before = peak_rss_kib();
    let t = Instant::now();
    let r = client.read(&read, Some(&mut sink)).await.expect("export");
    sink.0.flush().expect("flush");
    let elapsed = t.elapsed();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "export: {} rows, {:.1} MiB of JSON lines in {:.2} s; peak RSS {:.1} MiB (before the export: {:.1} MiB)",
        r.records,
        size as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        peak_rss_kib() as f64 / 1024.0,
        before as f64 / 1024.0
    );
    client.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let what = args.first().map(String::as_str).unwrap_or("all");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match what {
        "setup" => setup(),
        "erase" => rt.block_on(erase()),
        "export" => rt.block_on(export()),
        "all" => {
            setup();
            rt.block_on(erase());
            // A fresh process, so that the peak RSS is the export's own.
            let status = Command::new(std::env::current_exe().expect("exe"))
                .arg("export")
                .status()
                .expect("export");
            assert!(status.success());
        }
        other => eprintln!("unknown mode {other}: setup | erase | export | all"),
    }
}
