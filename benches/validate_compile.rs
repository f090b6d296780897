//! Validate and compile a generated policy repository of 2,000 playbooks with
//! about 10,000 steps; prints wall time per phase and the peak resident memory.
//!
//! Run: `cargo bench --bench validate_compile` (set `DSRCTL_BENCH_PLAYBOOKS` for another size).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const CONFIG: &str = "\
tenants:
  contoso:
    connectors:
      api: { kind: http, base_url: \"https://api.example.com\" }
      db: { kind: sql, url: { env: DB_URL } }
      ops: { kind: manual }
";

/// An HTTP service with five steps across the DSR kinds; every tenth discovers an identity
/// and every seventh runs after another service.
fn http_playbook(i: usize) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "# yaml-language-server: $schema=../../schemas/playbook.schema.json
service: svc-{i}
description: Generated service {i}.
connector: api
needs_identities: [email, object_id]
holds:
  - {{ category: contact.email, location: users.mail }}
"
    );
    if i.is_multiple_of(10) {
        let _ = writeln!(s, "discovers: {{ account_{i}: find.id }}");
    }
    // Service i-1 is a SQL one when (i-1) % 4 == 3; then order after i-2.
    let prev = i.saturating_sub(1);
    let before = if prev % 4 == 3 { prev - 1 } else { prev };
    let after = if i.is_multiple_of(7) && i > 0 {
        format!("      after: [svc-{before}/drop-user]\n")
    } else {
        String::new()
    };
    let _ = write!(
        s,
        r#"dsr:
  export:
    - id: find
      http: {{ method: GET, path: "/users/{{{{seg subject.object_id}}}}", query: {{ mail: "{{{{subject.email}}}}" }} }}
      capture: {{ id: /id, items: /items }}
      absent_on: [404]
      collect: profile
  delete:
    - id: list
      http:
        method: GET
        path: "/users/{{{{seg subject.object_id}}}}/items"
        paginate: {{ next_link: /nextLink }}
      capture: {{ items: /value }}
    - id: drop-items
      needs: [list]
      for_each: list.items
      http: {{ method: DELETE, path: "/items/{{{{seg item.id}}}}" }}
      preview: item
      absent_on: [404]
    - id: drop-user
      needs: [drop-items]
{after}      http: {{ method: DELETE, path: "/users/{{{{seg subject.object_id}}}}" }}
      preview: {{ http: {{ method: GET, path: "/users/{{{{seg subject.object_id}}}}" }} }}
      verify: {{ http: {{ method: GET, path: "/users/{{{{seg subject.object_id}}}}" }}, expect_status: [404] }}
    - id: confirm
      needs: [drop-user]
      connector: ops
      manual: {{ instructions: "Check the backups of {{{{subject.email}}}}", evidence: [ticket] }}
  access: {{ same_as: [export] }}
  rectify: {{ unsupported: "generated services hold no correctable data" }}
  restrict: {{ same_as: [export, delete] }}
"#
    );
    s
}

/// A SQL service with five steps.
fn sql_playbook(i: usize) -> String {
    format!(
        r#"service: db-{i}
connector: db
needs_identities: [email]
dsr:
  export:
    - id: customer
      sql: {{ select: {{ table: customers, where: {{ email: "{{{{subject.email}}}}" }} }} }}
      collect: customer
    - id: orders
      sql:
        select:
          table: orders
          through: {{ table: customers, column: customer_id, where: {{ email: "{{{{subject.email}}}}" }} }}
      collect: orders
  delete:
    - id: orders
      sql: {{ delete: {{ table: orders, through: {{ table: customers, column: customer_id, where: {{ email: "{{{{subject.email}}}}" }} }} }} }}
    - id: customer
      needs: [orders]
      sql: {{ delete: {{ table: customers, where: {{ email: "{{{{subject.email}}}}" }} }}, max_rows: 1 }}
  rectify:
    - id: fix
      sql: {{ update: {{ table: customers, set: {{ city: "{{{{request.corrections.city}}}}" }}, where: {{ email: "{{{{subject.email}}}}" }} }} }}
  access: {{ same_as: [export] }}
  restrict: {{ unsupported: "the shop cannot restrict processing per customer" }}
"#
    )
}

fn generate(root: &Path, n: usize) -> std::io::Result<usize> {
    std::fs::write(root.join("dsrctl.yaml"), CONFIG)?;
    let mut steps = 0;
    for i in 0..n {
        let dir = root.join(format!("policies/group-{:02}", i % 40));
        std::fs::create_dir_all(&dir)?;
        let (name, text) = if i % 4 == 3 {
            steps += 5;
            (format!("db-{i}.yaml"), sql_playbook(i))
        } else {
            steps += 5;
            (format!("svc-{i}.yaml"), http_playbook(i))
        };
        std::fs::write(dir.join(name), text)?;
    }
    Ok(steps)
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
