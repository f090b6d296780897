//! A generated policy repository: a `dsrctl.yaml` and N playbooks in 40 directories, five
//! steps each (HTTP services with list / `for_each` delete / previewed delete / manual
//! confirmation, SQL services with structured select/delete/update; identity discovery and
//! cross-service `after`). Shared by the benchmarks that need a large project.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

pub const CONFIG: &str = "\
tenants:
  contoso:
    connectors:
      api: { kind: http, base_url: \"https://api.example.com\" }
      db: { kind: sql, url: { env: DB_URL } }
      ops: { kind: manual }
";

/// An HTTP service with five steps across the DSR kinds; every tenth discovers an identity
/// and every seventh runs after another service.
pub fn http_playbook(i: usize) -> String {
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
pub fn sql_playbook(i: usize) -> String {
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

pub fn generate(root: &Path, n: usize) -> std::io::Result<usize> {
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
