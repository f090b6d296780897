//! `dsrctl plan --compare REF` says what changed in each step, field by field, and warns when a
//! change removes or weakens an erasure or an export. Regression (issue 19): it said "step
//! changed" without saying what, and a change that dropped an erasure's verification or a
//! collected export passed without a word.

mod support;

use support::tools::git;

use support::cli::ProjectDir;

const PLAYBOOK: &str = r#"service: crm
connector: api
needs_identities: [email]
dsr:
  access:
    - id: find
      http: { method: GET, path: /contacts, query: { email: "{{subject.email}}" } }
      capture: { id: /0/id }
      collect: contacts
  export: { same_as: [access] }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete:
    - id: find
      http: { method: GET, path: /contacts, query: { email: "{{subject.email}}" } }
      capture: { id: /0/id }
    - id: drop
      needs: [find]
      http: { method: DELETE, path: "/contacts/{{seg find.id}}" }
      absent_on: [404]
      preview: { http: { method: GET, path: "/contacts/{{seg find.id}}" } }
      verify: { http: { method: GET, path: "/contacts/{{seg find.id}}" }, expect_status: [404] }
"#;

fn project() -> ProjectDir {
    let p = ProjectDir::new()
        .file(
            "dsrctl.yaml",
            "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: http://127.0.0.1:9\n",
        )
        .file("policies/crm.yaml", PLAYBOOK)
        .file(
            "requests/delete.yaml",
            "id: r-del\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: alice@example.com\n",
        )
        .file(
            "requests/access.yaml",
            "id: r-acc\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: alice@example.com\n",
        );
    git(p.path(), &["init", "-q", "-b", "main"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "playbooks"]);
    p
}

#[tokio::test]
async fn a_changed_step_shows_each_field_that_changed() {
    let p = project();
    p.write(
        "policies/crm.yaml",
        &PLAYBOOK.replace(
            "method: DELETE, path: \"/contacts/{{seg find.id}}\"",
            "method: DELETE, path: \"/people/{{seg find.id}}\"",
        ),
    );
    let out = p
        .expect(0, &["plan", "--compare", "HEAD", "--format", "markdown"])
        .await;
    assert!(
        out.stdout.contains(
            "| r-del | crm | step changed: `crm/drop`<br>action.http.path: `/contacts/{{seg find.id}}` → `/people/{{seg find.id}}` |"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("[!WARNING]"), "{}", out.stdout);
    assert!(!out.stdout.contains("alice"), "{}", out.stdout);
}

#[tokio::test]
async fn weakening_an_erasure_or_an_export_is_a_warning_in_every_format() {
    let p = project();
    let weaker = PLAYBOOK
        .replace(
            "      verify: { http: { method: GET, path: \"/contacts/{{seg find.id}}\" }, expect_status: [404] }\n",
            "",
        )
        .replace("      collect: contacts\n", "");
    p.write("policies/crm.yaml", &weaker);

    let md = p
        .expect(0, &["plan", "--compare", "HEAD", "--format", "markdown"])
        .await
        .stdout;
    assert!(md.contains("> [!WARNING]"), "{md}");
    assert!(
        md.contains("> - r-del (crm): `crm/drop`: its erasure is no longer verified"),
        "{md}"
    );
    assert!(
        md.contains("> - r-acc (crm): `crm/find`: no longer collects into the export package"),
        "{md}"
    );

    let json = p
        .expect(0, &["plan", "--compare", "HEAD", "--format", "json"])
        .await
        .json();
    let warnings: Vec<&str> = json["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["warning"].as_str())
        .collect();
    assert_eq!(warnings.len(), 2, "{json}");

    let text = p.expect(0, &["plan", "--compare", "HEAD"]).await.stdout;
    assert!(
        text.contains("warning: `crm/drop`: its erasure is no longer verified"),
        "{text}"
    );
}

#[tokio::test]
async fn removing_an_erasure_step_is_a_warning() {
    let p = project();
    let cut = PLAYBOOK.find("    - id: drop\n").expect("the drop step");
    p.write("policies/crm.yaml", &PLAYBOOK[..cut]);
    let md = p
        .expect(0, &["plan", "--compare", "HEAD", "--format", "markdown"])
        .await
        .stdout;
    assert!(
        md.contains("> - r-del (crm): an erasure step is gone: `crm/drop`"),
        "{md}"
    );
}

const DATASET: &str = r#"service: shop
connector: db
dataset:
  tables:
    customer:
      columns: { id: , email: { identity: email, category: user.contact.email }, name: user.name }
    orders:
      columns: { id: , customer_id: { references: customer.id }, note: user.content }
    invoice:
      erasure: mask
      columns:
        id:
        customer_id: { references: customer.id }
        billing_name: user.name
        billing_email: user.contact.email
    login:
      columns: { id: , customer_id: { references: customer.id }, ip: user.device.ip_address }
dsr:
  rectify: { unsupported: "test" }
"#;

/// A dataset change that narrows the erasure (a table kept, a column no longer masked, a
/// reference removed so a table is no longer reached) is a warning, in the dataset's terms.
#[tokio::test]
async fn a_dataset_change_that_shrinks_the_erasure_is_a_warning() {
    let p = ProjectDir::new()
        .file(
            "dsrctl.yaml",
            "tenants:\n  t1:\n    connectors:\n      db:\n        kind: sql\n        url: \"sqlite:shop.db\"\n\
             erasure:\n  user.contact: { mask: null }\n  user.name: { mask: fixed, value: erased }\n",
        )
        .file("policies/shop.yaml", DATASET)
        .file(
            "requests/delete.yaml",
            "id: r-del\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: alice@example.com\n",
        );
    git(p.path(), &["init", "-q", "-b", "main"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "dataset"]);
    let unchanged = p
        .expect(0, &["plan", "--compare", "HEAD", "--format", "markdown"])
        .await
        .stdout;
    assert!(!unchanged.contains("[!WARNING]"), "{unchanged}");
    let narrower = DATASET
        .replace(
            "    orders:\n",
            "    orders:\n      erasure: { keep: \"tax law\" }\n",
        )
        .replace("billing_email: user.contact.email", "billing_email:")
        .replace(
            "login:\n      columns: { id: , customer_id: { references: customer.id },",
            "login:\n      columns: { id: , customer_id: ,",
        );
    assert_ne!(narrower, DATASET);
    p.write("policies/shop.yaml", &narrower);
    let md = p
        .expect(0, &["plan", "--compare", "HEAD", "--format", "markdown"])
        .await
        .stdout;
    for warning in [
        "> - r-del (shop): `orders`: rows are kept now, no longer erased",
        "> - r-del (shop): `invoice`: `billing_email` is no longer masked",
        "> - r-del (shop): `login` is no longer reached by the erasure (a table or reference removed)",
    ] {
        assert!(md.contains(warning), "{warning}\n{md}");
    }
    // Widening it again is no warning.
    git(p.path(), &["commit", "-q", "-am", "narrower"]);
    p.write("policies/shop.yaml", DATASET);
    let wider = p
        .expect(0, &["plan", "--compare", "HEAD", "--format", "markdown"])
        .await
        .stdout;
    assert!(!wider.contains("[!WARNING]"), "{wider}");
}
