//! Validate and compile a generated policy repository of 2,000 playbooks with
//! about 10,000 steps; prints wall time per phase and the peak resident memory.
//!
//! Run: `cargo bench --bench validate_compile` (set `DSRCTL_BENCH_PLAYBOOKS` for another size).

use std::time::{Duration, Instant};

#[path = "support/generated.rs"]
mod generated;
use generated::generate;

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
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not need.
    let n: usize = std::env::var("DSRCTL_BENCH_PLAYBOOKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("temp dir");
    let steps = generate(dir.path(), n).expect("generate playbooks");
    let rss_before = peak_rss_kib().unwrap_or(0);

    let start = Instant::now();
    let project = match dsrctl::load::load_project(dir.path()) {
        Ok(p) => p,
        Err(d) => {
            eprint!("{}", d.render_human(false));
            std::process::exit(1);
        }
    };
    let validate = start.elapsed();
    assert_eq!(project.playbooks.len(), n);

    // Compile one request of each DSR kind against the whole repository.
    let tenant = project
        .config
        .tenants
        .keys()
        .next()
        .cloned()
        .unwrap_or_default();
    let start = Instant::now();
    let mut planned = 0;
    for kind in dsrctl::model::DsrKind::ALL {
        let request: dsrctl::model::Request = serde_json::from_value(serde_json::json!({
            "id": format!("bench-{kind}"), "kind": kind, "tenant": tenant, "received": "2026-11-02",
            "subject": {"email": "alice@example.com", "object_id": "u-1"},
            "corrections": {"city": "Berlin"},
        }))
        .expect("request");
        let plan =
            dsrctl::compile::compile(&project, &request, chrono::Utc::now()).expect("compile");
        planned += plan.steps.len();
    }
    let compile = start.elapsed();
    println!("compiled 5 requests: {planned} step instances");

    let peak = peak_rss_kib().unwrap_or(0);
    println!("playbooks: {n}, steps: {steps}");
    println!(
        "validate (load + schema + semantic checks): {}",
        ms(validate)
    );
    println!("compile: {}", ms(compile));
    println!("total: {}", ms(validate + compile));
    println!(
        "peak RSS: {:.1} MiB (before loading: {:.1} MiB)",
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
}
