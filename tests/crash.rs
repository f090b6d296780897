//! A run killed with SIGKILL in the middle, then resumed, sends every deletion exactly once.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::items::{ItemServer, write_project};

const PLAYBOOK: &str = r#"
service: things
connector: api
needs_identities: [email]
dsr:
  access: { unsupported: "test" }
  export: { unsupported: "test" }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete:
    - id: list
      http: { method: GET, path: /things/items, query: { owner: "{{subject.email}}", n: "24" } }
      capture: { ids: /value }
    - id: drop
      for_each: list.ids
      http: { method: DELETE, path: "/things/items/{{seg item.id}}" }
      absent_on: [404]
      preview: item
      verify:
        http: { method: GET, path: "/things/items/{{seg item.id}}" }
        expect_status: [404]
"#;

const REQUEST: &str = "id: r-crash\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@example.com }\n";

fn dsrctl(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dsrctl"));
    cmd.arg("-C").arg(dir).args([
        "run",
        "request.yaml",
        "--approve",
        "test",
        "--parallelism",
        "4",
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn sigkill_mid_run_then_resume_sends_each_deletion_once() {
    let server = ItemServer::start_background(Duration::from_millis(120));
    let dir = tempfile::tempdir().unwrap();
    write_project(
        dir.path(),
        &server.url(),
        &[("things", PLAYBOOK.to_owned())],
    );
    std::fs::write(dir.path().join("request.yaml"), REQUEST).unwrap();

    let mut child = dsrctl(dir.path()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.delete_counts().len() < 6 {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the run ended ({status}) before it was killed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let sent_before = server.delete_counts().len();
    assert!(sent_before < 24, "the run finished before it was killed");

    let out = dsrctl(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "resume failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("resuming run"), "did not resume: {stderr}");
    assert!(stdout.contains("completed"), "{stdout}");

    let counts = server.delete_counts();
    assert_eq!(counts.len(), 24, "every item deleted");
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "deletions sent more than once: {repeated:?}"
    );
}
