//! Limits that explain themselves (issue 23): after a tick, the summary says which limit
//! bound throughput (a connector's own cap, its rate limit, `--parallelism`, or
//! `--concurrency`), in words and, with `--log-format json`, as fields.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cli::ProjectDir;
use support::{Reply, TestServer};

/// A playbook whose export makes `steps` independent reads.
fn playbook(steps: usize) -> String {
    let mut export = String::new();
    for n in 0..steps {
        export.push_str(&format!(
            "    - id: read{n}\n      http: {{ method: GET, path: /things/{n}, query: {{ email: \"{{{{subject.email}}}}\" }} }}\n      collect: things{n}\n"
        ));
    }
    format!(
        "service: things\nconnector: api\nneeds_identities: [email]\ndsr:\n  access: {{ unsupported: \"test\" }}\n  export:\n{export}  rectify: {{ unsupported: \"test\" }}\n  restrict: {{ unsupported: \"test\" }}\n  delete: {{ unsupported: \"test\" }}\n"
    )
}

struct Case {
    /// Extra lines of the connector's config.
    connector: &'static str,
    steps: usize,
    requests: usize,
    tick: &'static [&'static str],
}

/// Runs a tick over `case` against a service answering after 100 ms; returns the limits
/// the tick reported (JSON log fields) and its human line.
async fn tick(case: Case) -> (Value, String) {
    let server = TestServer::start(|_, _| {
        Reply::json(200, json!({ "value": [{ "id": 1 }] })).after(Duration::from_millis(100))
    })
    .await;
    let p = ProjectDir::new()
        .file(
            "dsrctl.yaml",
            &format!(
                "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {}\n        timeout: 10s\n{}",
                server.url, case.connector
            ),
        )
        .file("policies/things.yaml", &playbook(case.steps));
    for n in 0..case.requests {
        let email = format!("user{n}@example.com");
        p.expect(
            0,
            &[
                "request", "new", "--kind", "export", "--tenant", "t1", "--email", &email,
            ],
        )
        .await;
    }
    let mut json_args = vec!["--log-format", "json", "tick"];
    json_args.extend(case.tick);
    let out = p.cmd().args(&json_args).run().await.expect_code(0);
    let limits = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|l| l["fields"].get("limits").cloned())
        .unwrap_or_else(|| panic!("no limits in the log:\n{}", out.stderr));
    let human = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|l| {
            l["fields"]
                .get("limits")
                .and(l["fields"]["message"].as_str().map(str::to_owned))
        })
        .expect("message");
    (limits, human)
}

#[tokio::test]
async fn a_connectors_own_cap_is_named_when_it_binds() {
    let (limits, human) = tick(Case {
        connector: "        concurrency: 1\n",
        steps: 1,
        requests: 4,
        tick: &["--concurrency", "4", "--parallelism", "4"],
    })
    .await;
    assert_eq!(
        limits["binding"]["limit"], "connector_concurrency",
        "{limits:#}"
    );
    assert_eq!(limits["binding"]["connector"], "t1/api");
    assert_eq!(limits["binding"]["value"], 1);
    // Three of the four calls waited for the one place, about 0.1 + 0.2 + 0.3 s.
    assert_eq!(limits["binding"]["waits"], 3, "{limits:#}");
    assert!(limits["binding"]["waited_seconds"].as_f64().unwrap() >= 0.5);
    assert!(
        human.contains("connector `api`'s cap of 1 call(s) in flight bound throughput"),
        "{human}"
    );
    assert!(
        human.contains("`--concurrency` and `--parallelism` do not raise"),
        "{human}"
    );
}

#[tokio::test]
async fn parallelism_is_named_when_it_binds() {
    let (limits, human) = tick(Case {
        connector: "        concurrency: 16\n",
        steps: 4,
        requests: 1,
        tick: &["--parallelism", "1"],
    })
    .await;
    assert_eq!(limits["binding"]["limit"], "parallelism", "{limits:#}");
    assert_eq!(limits["binding"]["value"], 1);
    assert!(
        human.contains("--parallelism 1 bound throughput"),
        "{human}"
    );
}

#[tokio::test]
async fn a_rate_limit_is_named_when_it_binds() {
    let (limits, human) = tick(Case {
        connector: "        concurrency: 16\n        rate_limit: { per_second: 4, burst: 1 }\n",
        steps: 4,
        requests: 1,
        tick: &["--parallelism", "8"],
    })
    .await;
    assert_eq!(limits["binding"]["limit"], "rate_limit", "{limits:#}");
    assert_eq!(limits["binding"]["value"], 4);
    assert!(
        human.contains("rate limit of 4/s bound throughput"),
        "{human}"
    );
}

#[tokio::test]
async fn runs_at_once_are_named_when_they_bind() {
    let (limits, human) = tick(Case {
        connector: "        concurrency: 16\n",
        steps: 1,
        requests: 3,
        tick: &["--concurrency", "1"],
    })
    .await;
    assert_eq!(limits["binding"]["limit"], "run_concurrency", "{limits:#}");
    assert_eq!(limits["binding"]["waits"], 2);
    assert!(
        human.contains("--concurrency 1 (runs at once) bound throughput"),
        "{human}"
    );
}

#[tokio::test]
async fn nothing_binds_when_nothing_waits() {
    let (limits, human) = tick(Case {
        connector: "",
        steps: 1,
        requests: 1,
        tick: &[],
    })
    .await;
    assert_eq!(limits["binding"], Value::Null, "{limits:#}");
    assert!(
        human.contains("no call waited on a limit noticeably"),
        "{human}"
    );
}

#[tokio::test]
async fn tick_help_says_how_its_limits_relate_to_a_connectors_cap() {
    let p = ProjectDir::new();
    let out = p.cmd().args(["tick", "--help"]).run().await.expect_code(0);
    let help = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("Neither option raises a connector's cap"),
        "{help}"
    );
    assert!(help.contains("which limit bound"), "{help}");
}

#[tokio::test]
async fn the_run_summary_names_the_limit_that_bound() {
    let server = TestServer::start(|_, _| {
        Reply::json(200, json!({ "value": [{ "id": 1 }] })).after(Duration::from_millis(100))
    })
    .await;
    let p = ProjectDir::new()
        .file(
            "dsrctl.yaml",
            &format!(
                "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {}\n        concurrency: 1\n",
                server.url
            ),
        )
        .file("policies/things.yaml", &playbook(3))
        .file(
            "export.yaml",
            "id: r-1\nkind: export\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: a@example.com }\n",
        );
    let out = p
        .cmd()
        .args(["run", "export.yaml"])
        .run()
        .await
        .expect_code(0);
    assert!(
        out.stderr
            .contains("limits: connector `api`'s cap of 1 call(s) in flight bound throughput"),
        "{}",
        out.stderr
    );
}
