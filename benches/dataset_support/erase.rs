//! The derived erasure of a 200-table dataset at size, on PostgreSQL: 1,000 subjects
//! through the engine (compile + `Engine::execute`, the SQLite journal on, 4 requests at a
//! time, each on its own task) versus 4 psql processes running the same finds (each table's keys captured with
//! `\gset`) and deletes (children first), one transaction per subject as `commit: service`.
//!
//! Customer `c` (of the first `related / 199` customers) has exactly one row in each of the
//! 199 related tables (row `c` of each table references row `c` of its parent), so erasing
//! a subject finds and deletes 200 rows in 200 tables. Each run takes fresh subjects (the
//! next free round is kept in the database), so runs compare the same work on the same data.
//!
//! Each phase also prints its CPU time: this process's (the engine, its journal's writer
//! thread, the bench's own compile), the psql processes', and how busy the whole machine was
//! (PostgreSQL's backends included). On a machine whose cores are all busy, a client's CPU
//! time is wall time the server does not get.

use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dsrctl::compile::compile;
use dsrctl::connectors::connectors_for_tenant;
use dsrctl::engine::Engine;
use dsrctl::journal::{RunMode, RunStatus};
use dsrctl::load::{Project, load_project, load_request_str};
use futures::StreamExt;

use super::{dataset_with, parent, peak_rss_kib, table};

const DATABASE: &str = "dsrctl_bench_dataset";
const TABLES: usize = 200;
const CUSTOMERS: u64 = 1_000_000;
/// Subjects per run (`DSRCTL_BENCH_SUBJECTS` for a quick look).
fn subject_count() -> u64 {
    std::env::var("DSRCTL_BENCH_SUBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}
const AT_ONCE: usize = 4;

fn server_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The benchmark's own database on the same server.
fn url() -> String {
    let base = server_url();
    let cut = base.rfind('/').expect("a database in the URL");
    format!("{}/{DATABASE}", &base[..cut])
}

fn related() -> u64 {
    std::env::var("DSRCTL_BENCH_RELATED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

/// Rows per related table.
fn per_table() -> u64 {
    related() / (TABLES as u64 - 1)
}

fn psql_at(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn psql(sql: &str) -> String {
    psql_at(&url(), sql)
}

/// Creates and fills the database unless it already holds this size.
fn setup() {
    let exists = psql_at(
        &server_url(),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{DATABASE}'"),
    );
    if exists == "1" {
        let size = Command::new("psql")
            .args([
                url().as_str(),
                "-X",
                "-q",
                "-At",
                "-c",
                "SELECT related FROM bench_meta",
            ])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        if size == related().to_string() {
            println!("setup: reusing {DATABASE} ({size} related rows)");
            return;
        }
        psql_at(&server_url(), &format!("DROP DATABASE {DATABASE}"));
    }
    psql_at(&server_url(), &format!("CREATE DATABASE {DATABASE}"));
    let n = per_table();
    let t = Instant::now();
    psql(
        "CREATE TABLE customer (id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT); \
         CREATE TABLE bench_meta (related BIGINT NOT NULL, next_round BIGINT NOT NULL)",
    );
    psql(&format!(
        "INSERT INTO customer SELECT g, 'user' || g || '@example.com', 'Name ' || g \
         FROM generate_series(1, {CUSTOMERS}) g"
    ));
    psql("CREATE UNIQUE INDEX ON customer (email)");
    for i in 1..TABLES {
        let (t, p) = (table(i), table(parent(i)));
        psql(&format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, parent_id BIGINT, name TEXT, note TEXT, \
             amount NUMERIC(10,2), created_at TIMESTAMPTZ)"
        ));
        psql(&format!(
            "INSERT INTO {t} SELECT g, g, 'name ' || g, 'note ' || g, (g % 10000) / 100.0, \
             timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, {n}) g"
        ));
        psql(&format!(
            "CREATE INDEX ON {t} (parent_id); \
             ALTER TABLE {t} ADD FOREIGN KEY (parent_id) REFERENCES {p} (id)"
        ));
    }
    psql("VACUUM ANALYZE");
    psql(&format!("INSERT INTO bench_meta VALUES ({}, 0)", related()));
    println!(
        "setup: {CUSTOMERS} customers, {} related rows in {} tables in {:.1} s",
        n * (TABLES as u64 - 1),
        TABLES - 1,
        t.elapsed().as_secs_f64()
    );
}

/// CPU time so far, in seconds: this process, its waited-for children (the psql
/// processes), and the whole machine busy (every process: PostgreSQL's backends, and
/// whatever else runs) out of the time all cores had. Linux clock ticks are 1/100 s.
#[derive(Clone, Copy, Default)]
struct Cpu {
    own: f64,
    children: f64,
    busy: f64,
    total: f64,
}

fn cpu() -> Cpu {
    let tick = |v: &str| v.parse::<f64>().unwrap_or(0.0) / 100.0;
    let mut c = Cpu::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command's closing parenthesis: utime is the 12th, then stime,
        // cutime, cstime.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        if rest.len() > 14 {
            c.own = tick(rest[11]) + tick(rest[12]);
            c.children = tick(rest[13]) + tick(rest[14]);
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/stat")
        && let Some(line) = stat.lines().next()
    {
        let v: Vec<f64> = line.split_whitespace().skip(1).map(tick).collect();
        c.total = v.iter().sum();
        // idle and iowait
        c.busy = c.total - v.get(3).copied().unwrap_or(0.0) - v.get(4).copied().unwrap_or(0.0);
    }
    c
}

/// What a phase cost in CPU: `own` (this process), `children`, the machine's busy share.
fn cpu_since(before: Cpu) -> String {
    let now = cpu();
    let total = now.total - before.total;
    format!(
        "CPU: this process {:.2} s, psql processes {:.2} s, machine busy {:.0} % of {:.2} core-s",
        now.own - before.own,
        now.children - before.children,
        if total > 0.0 {
            100.0 * (now.busy - before.busy) / total
        } else {
            0.0
        },
        total
    )
}

/// Subjects of `round`: 1,000 customers with rows, spread, disjoint between rounds.
fn subjects(round: u64) -> Vec<u64> {
    let stride = per_table() / subject_count();
    assert!(round < stride, "every round used: regenerate the data");
    (0..subject_count())
        .map(|k| k * stride + round + 1)
        .collect()
}

fn email(c: u64) -> String {
    format!("user{c}@example.com")
}

fn take_round() -> u64 {
    psql("UPDATE bench_meta SET next_round = next_round + 1 RETURNING next_round - 1")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("round")
}

/// Rows left of the round's subjects, in the customer table and the deepest table.
fn remaining(round: u64) -> (String, String) {
    let ids: Vec<String> = subjects(round).iter().map(u64::to_string).collect();
    let list = ids.join(",");
    (
        psql(&format!(
            "SELECT count(*) FROM customer WHERE id IN ({list})"
        )),
        psql(&format!(
            "SELECT count(*) FROM {} WHERE id IN ({list})",
            table(TABLES - 1)
        )),
    )
}

fn write_project(dir: &Path) -> Project {
    std::fs::create_dir_all(dir.join("policies")).expect("policies");
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "tenants:\n  t1:\n    connectors:\n      db: {{ kind: sql, url: \"{}\", concurrency: {}, timeout: 60s }}\n",
            url(),
            AT_ONCE * 2
        ),
    )
    .expect("config");
    std::fs::write(dir.join("policies/big.yaml"), dataset_with(TABLES, false)).expect("playbook");
    match load_project(dir) {
        Ok(p) => p,
        Err(d) => panic!("{}", d.render_human(false)),
    }
}

/// The engine: every subject's request compiled and executed, `AT_ONCE` at a time, each on
/// a task of its own (as a worker runs them).
async fn erase_dsrctl(project: &Arc<Project>, dir: &Path, round: u64) -> (Duration, usize) {
    let store = dsrctl::store::open(".dsrctl/state.db", dir)
        .await
        .expect("store");
    let connectors = connectors_for_tenant(&project.config, "t1", dir)
        .await
        .expect("connectors");
    let engine = Arc::new(
        Engine::new(store.clone(), connectors, dir.join(".dsrctl")).with_parallelism(AT_ONCE),
    );
    let t = Instant::now();
    let steps: Vec<usize> = futures::stream::iter(subjects(round))
        .map(|c| {
            let (engine, store, project) = (engine.clone(), store.clone(), project.clone());
            // Spawned only when a slot of `AT_ONCE` is free (the stream is pulled then).
            tokio::spawn(async move {
                let request = load_request_str(
                    "r.yaml",
                    &format!(
                        "id: r-{round}-{c}\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: {{ email: {} }}\n",
                        email(c)
                    ),
                )
                .expect("request");
                let plan = compile(&project, &request, chrono::Utc::now()).expect("compile");
                let run = store
                    .create_run(&plan, RunMode::Apply)
                    .await
                    .expect("create run");
                let result = engine
                    .execute(&run, &plan, RunMode::Apply, None)
                    .await
                    .expect("execute");
                assert_eq!(result.status, RunStatus::Completed, "{:?}", result.outcomes);
                plan.steps.len()
            })
        })
        .buffer_unordered(AT_ONCE)
        .map(|joined| joined.expect("a subject's task"))
        .collect()
        .await;
    (t.elapsed(), steps.first().copied().unwrap_or(0))
}

/// Tables in the traversal's order (parents before children).
fn order() -> Vec<usize> {
    (0..TABLES).collect()
}

fn has_children(i: usize) -> bool {
    3 * i + 1 < TABLES
}

/// The same finds and deletes through psql: each table with children has its keys captured
/// (`\gset` into an array), each table deleted children first by its parent's keys; one
/// transaction per subject.
fn erase_psql(round: u64) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    let subjects = subjects(round);
    for part in 0..AT_ONCE {
        let path = dir.path().join(format!("erase-{part}.sql"));
        let mut f = BufWriter::new(std::fs::File::create(&path).expect("file"));
        for c in subjects.iter().skip(part).step_by(AT_ONCE) {
            let e = email(*c);
            writeln!(f, "BEGIN;").expect("write");
            for i in order() {
                if !has_children(i) {
                    continue;
                }
                let filter = if i == 0 {
                    format!("email = '{e}'")
                } else {
                    format!("parent_id = ANY(:'k{}'::bigint[])", parent(i))
                };
                writeln!(
                    f,
                    "SELECT coalesce(array_agg(id ORDER BY id), '{{}}') AS k{i} FROM {} WHERE {filter} \\gset",
                    table(i)
                )
                .expect("write");
            }
            for i in order().into_iter().rev() {
                let filter = if i == 0 {
                    format!("email = '{e}'")
                } else {
                    format!("parent_id = ANY(:'k{}'::bigint[])", parent(i))
                };
                writeln!(f, "DELETE FROM {} WHERE {filter};", table(i)).expect("write");
            }
            writeln!(f, "COMMIT;").expect("write");
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

/// `erase`: the data made or reused, then the engine and psql on fresh subjects each, in
/// both orders; the better time of each counts.
pub fn run() {
    setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let project = Arc::new(write_project(dir.path()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let before = peak_rss_kib().unwrap_or(0);
    let (mut d, mut p) = (Duration::MAX, Duration::MAX);
    let mut steps = 0;
    for dsrctl_first in [true, false] {
        let (rd, rp) = (take_round(), take_round());
        let mut engine = || {
            let before = cpu();
            let (took, n) = rt.block_on(erase_dsrctl(&project, dir.path(), rd));
            steps = n;
            println!(
                "dsrctl: {} subjects ({n} steps each) in {:.2} s; {}",
                subject_count(),
                took.as_secs_f64(),
                cpu_since(before)
            );
            took
        };
        let raw = || {
            let before = cpu();
            let took = erase_psql(rp);
            println!(
                "psql:   {} subjects in {:.2} s; {}",
                subject_count(),
                took.as_secs_f64(),
                cpu_since(before)
            );
            took
        };
        if dsrctl_first {
            d = d.min(engine());
            p = p.min(raw());
        } else {
            p = p.min(raw());
            d = d.min(engine());
        }
        for r in [rd, rp] {
            assert_eq!(
                remaining(r),
                ("0".to_owned(), "0".to_owned()),
                "round {r}: every subject's rows gone"
            );
        }
    }
    println!(
        "erase {} subjects, {TABLES} tables, {CUSTOMERS} customers + {} related rows, {AT_ONCE} at a time: \
         dsrctl {:.2} s ({steps} steps per subject), psql {:.2} s, ratio {:.2}; peak RSS {:.1} MiB (before: {:.1} MiB)",
        subject_count(),
        per_table() * (TABLES as u64 - 1),
        d.as_secs_f64(),
        p.as_secs_f64(),
        d.as_secs_f64() / p.as_secs_f64(),
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
        before as f64 / 1024.0
    );
}
