//! The soak, a day compressed: requests through the HTTP API of four `dsrctl serve --listen`
//! worker processes sharing one PostgreSQL store, each request a deletion of two items at an
//! emulated service that answers every call after a fixed latency, approved through the API,
//! then listed, deleted item by item and verified gone. Counts requests lost, run twice or
//! overdue (each must be 0) and measures throughput, request-to-done latency and store writes.
//!
//! `cargo bench --bench soak` (PostgreSQL from `DSRCTL_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `DSRCTL_SOAK_REQUESTS` (20000),
//! `DSRCTL_SOAK_WORKERS` (4) and `DSRCTL_SOAK_LATENCY_MS` (20) change it).

#[path = "../tests/support/items.rs"]
#[allow(dead_code)]
mod items;
#[path = "../tests/support/soak.rs"]
#[allow(dead_code)]
mod soak;

use std::time::Duration;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let soak = soak::Soak {
        requests: count("DSRCTL_SOAK_REQUESTS", 20_000),
        workers: count("DSRCTL_SOAK_WORKERS", 4),
        clients: 16,
        latency: Duration::from_millis(count("DSRCTL_SOAK_LATENCY_MS", 20) as u64),
        items: 2,
        concurrency: 16,
        connector_cap: 16,
        deadline: Duration::from_secs(3600),
    };
    let r = runtime.block_on(soak::run(&soak));
    println!(
        "soak: {} requests, {} workers, service latency {:?}",
        r.requests, r.workers, soak.latency
    );
    println!(
        "  intake (post + approve): {:.1}s ({:.0} requests/s)",
        r.intake.as_secs_f64(),
        r.requests as f64 / r.intake.as_secs_f64()
    );
    println!(
        "  all done in {:.1}s: {:.1} requests/s",
        r.elapsed.as_secs_f64(),
        r.throughput()
    );
    println!(
        "  request to done: p50 {:.2}s, p99 {:.2}s",
        r.p50.as_secs_f64(),
        r.p99.as_secs_f64()
    );
    println!(
        "  store writes: {} rows ({:.1} per request); service calls: {} ({:.1} per request)",
        r.store_writes,
        r.store_writes as f64 / r.requests as f64,
        r.service_calls,
        r.service_calls as f64 / r.requests as f64
    );
    println!("  store writes by table: {:?}", r.writes_by_table);
    println!(
        "  store size: {:.1} MiB ({:.0} bytes per request)",
        r.store_bytes as f64 / 1048576.0,
        r.store_bytes as f64 / r.requests as f64
    );
    println!(
        "  steps observed by the workers' /metrics: {}; retries: {}",
        r.steps_observed, r.retries
    );
    println!(
        "  lost {}, run twice {}, overdue {}",
        r.lost, r.run_twice, r.overdue
    );
    assert_eq!(
        (r.lost, r.run_twice, r.overdue),
        (0, 0, 0),
        "lost, run twice, overdue"
    );
}
