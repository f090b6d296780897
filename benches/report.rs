//! Evidence report and export package for a run over 50 services with 100,000 exported
//! records: wall time and peak memory (VmHWM). Target: under 2 s and 200 MiB.
//!
//! `cargo bench --bench report`

use std::io::{BufWriter, Write};
use std::time::Instant;

use chrono::NaiveDate;
use dsrctl::journal::{Plan, RunRecord, StepOutcome};
use dsrctl::report::package::{PackageFormat, PackageOptions, build_package};
use dsrctl::report::{Format, ReportKind, RunView, render};
use serde_json::json;

const SERVICES: usize = 50;
const RECORDS: usize = 100_000;
const INSTANCES_PER_SERVICE: usize = 20;

fn plan() -> Plan {
    let services: Vec<_> = (0..SERVICES)
        .map(|i| {
            json!({"service": format!("service-{i:02}"), "playbook": format!("policies/service-{i:02}.yaml"),
                   "disposition": {"status": "run", "kinds": ["export"]},
                   "connector": {"tenant": "contoso", "name": "api", "kind": "http"},
                   "redact": ["/manager/displayName", "/attendees/*/email"]})
        })
        .collect();
    let steps: Vec<_> = (0..SERVICES)
        .flat_map(|i| {
            let s = format!("service-{i:02}");
            [
                json!({"key": format!("{s}/list"), "service": s, "id": "list", "kind": "export",
                       "connector": "api", "action": {"http": {"method": "GET", "path": "/items"}},
                       "mutates": false, "idempotent": true}),
                json!({"key": format!("{s}/collect"), "service": s, "id": "collect", "kind": "export",
                       "connector": "api", "action": {"http": {"method": "GET", "path": "/items/{{seg item.id}}"}},
                       "collect": "items", "needs": [format!("{s}/list")], "mutates": false, "idempotent": true}),
            ]
        })
        .collect();
    serde_json::from_value(json!({
        "format_version": 1, "created_at": "2026-03-10T09:00:00Z",
        "request": {"id": "r-bench", "kind": "export", "tenant": "contoso", "received": "2026-03-02",
                    "subject": {"email": "ana.lopez@example.com"}},
        "inputs": {"dsrctl.yaml": "00"},
        "services": services, "steps": steps
    }))
    .expect("plan")
}

fn spool_and_outcomes(dir: &std::path::Path) -> Vec<StepOutcome> {
    let per_service = RECORDS / SERVICES;
    let mut outcomes = Vec::new();
    for i in 0..SERVICES {
        let s = format!("service-{i:02}");
        let rel = format!("spool/{s}/items.ndjson");
        let path = dir.join(&rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let mut w = BufWriter::new(std::fs::File::create(&path).expect("spool"));
        for n in 0..per_service {
            let rec = json!({"id": format!("{s}-{n}"), "mail": "ana.lopez@example.com",
                "displayName": "Ana Lopez", "created": "2025-01-01T00:00:00Z", "score": n,
                "manager": {"displayName": "Bob Boss", "id": "m1"},
                "attendees": [{"email": "x@example.com"}, {"email": "y@example.com"}],
                "note": "lorem ipsum dolor sit amet consectetur adipiscing elit"});
            serde_json::to_writer(&mut w, &rec).expect("write");
            w.write_all(b"\n").expect("write");
        }
        w.flush().expect("flush");
        outcomes.push(
            serde_json::from_value(
                json!({"instance": format!("{s}/list"), "step": format!("{s}/list"),
            "status": "succeeded", "attempts": 1, "found": INSTANCES_PER_SERVICE,
            "started_at": "2026-03-10T09:00:00Z", "finished_at": "2026-03-10T09:00:01Z"}),
            )
            .expect("o"),
        );
        for k in 0..INSTANCES_PER_SERVICE {
            outcomes.push(
                serde_json::from_value(
                    json!({"instance": format!("{s}/collect#{k}"), "step": format!("{s}/collect"),
                "status": "succeeded", "attempts": 1, "found": per_service / INSTANCES_PER_SERVICE,
                "started_at": "2026-03-10T09:00:01Z", "finished_at": "2026-03-10T09:00:02Z",
                "collected": rel}),
                )
                .expect("o"),
            );
        }
    }
    outcomes
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) used by this process so far; wall time on a loaded machine
/// includes waiting for a core.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outcomes = spool_and_outcomes(tmp.path());
    let run: RunRecord = serde_json::from_value(json!({
        "id": "run-bench", "request_id": "r-bench", "mode": "apply", "status": "completed",
        "created_at": "2026-03-10T09:00:00Z", "updated_at": "2026-03-10T09:10:00Z", "plan": plan()
    }))
    .expect("run");
    let before = vm_hwm_kib();

    let cpu0 = cpu_secs();
    let start = Instant::now();
    let view = RunView::build(
        &run,
        &outcomes,
        NaiveDate::from_ymd_opt(2026, 3, 20).expect("date"),
    );
    let mut report_bytes = 0;
    for format in [Format::Markdown, Format::Html, Format::Json] {
        report_bytes += render(&view, ReportKind::Evidence, format, None)
            .expect("render")
            .len();
    }
    let t_report = start.elapsed();
    let c_report = cpu_secs() - cpu0;
    let dir_manifest = build_package(
        &run.plan,
        &outcomes,
        tmp.path(),
        &tmp.path().join("pkg"),
        &PackageOptions::default(),
    )
    .expect("package");
    let t_dir = start.elapsed();
    let c_dir = cpu_secs() - cpu0;
    let zip_opts = PackageOptions {
        format: PackageFormat::Zip,
        ..Default::default()
    };
    build_package(
        &run.plan,
        &outcomes,
        tmp.path(),
        &tmp.path().join("pkg.zip"),
        &zip_opts,
    )
    .expect("zip");
    let t_zip = start.elapsed();
    let c_zip = cpu_secs() - cpu0;

    println!(
        "services: {SERVICES}, records: {}, step instances: {}",
        dir_manifest.total_records,
        outcomes.len()
    );
    println!(
        "evidence reports (md+html+json, {report_bytes} bytes): {:.3} s wall, {c_report:.2} s CPU",
        t_report.as_secs_f64()
    );
    println!(
        "report + package directory: {:.3} s wall, {c_dir:.2} s CPU",
        t_dir.as_secs_f64()
    );
    println!(
        "report + package directory + package zip: {:.3} s wall, {c_zip:.2} s CPU",
        t_zip.as_secs_f64()
    );
    let dir_bytes: u64 = dir_manifest
        .services
        .iter()
        .flat_map(|s| &s.files)
        .map(|f| f.bytes)
        .sum();
    let zip_bytes = std::fs::metadata(tmp.path().join("pkg.zip"))
        .expect("zip size")
        .len();
    println!(
        "package size: directory {:.1} MiB, zip {:.1} MiB",
        dir_bytes as f64 / 1048576.0,
        zip_bytes as f64 / 1048576.0
    );
    match (before, vm_hwm_kib()) {
        (Some(b), Some(a)) => println!(
            "peak RSS (VmHWM): {:.1} MiB (after setup: {:.1} MiB)",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        ),
        _ => println!("peak RSS: not available on this platform"),
    }
}
