//! `dsrctl test`: playbook test cases run offline through the real engine, with every
//! connector call answered by the test's recorded responses.

use std::collections::HashMap;
use std::fmt::Write;

use anyhow::Result;

use super::Outcome;
use super::args::{Cli, TestArgs, TestFormat};
use crate::compile::compile;
use crate::connectors::Response;
use crate::engine::{Calls, Engine, Replay};
use crate::journal::{RunMode, StepOutcome};
use crate::load::Project;
use crate::model::PlaybookTest;

/// The result of one test case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestResult {
    /// Playbook file.
    pub playbook: String,
    /// Service.
    pub service: String,
    /// Test name.
    pub name: String,
    /// What did not match; empty when the test passed.
    pub failures: Vec<String>,
    /// Checks made.
    pub checks: usize,
}

/// Runs every playbook test of the project.
pub async fn run(cli: &Cli, args: &TestArgs, color: bool) -> Result<Outcome> {
    let project = super::workspace::project(&cli.project, color)?;
    let results = run_all(&project).await?;
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    let text = match args.format {
        TestFormat::Human => human(&results),
        TestFormat::Json => serde_json::to_string_pretty(&results)? + "\n",
        TestFormat::Junit => junit(&results),
    };
    out!("{text}");
    Ok(if failed > 0 {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

/// Runs the tests of every playbook.
pub async fn run_all(project: &Project) -> Result<Vec<TestResult>> {
    let scratch = std::env::temp_dir().join(format!("dsrctl-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&scratch)?;
    let store =
        crate::store::open(&scratch.join("state.db").display().to_string(), &scratch).await?;
    let mut results = Vec::new();
    for lp in &project.playbooks {
        for test in &lp.playbook.tests {
            let mut only = project.clone();
            only.playbooks.retain(|p| p.path == lp.path);
            let mut result = TestResult {
                playbook: lp.path.clone(),
                service: lp.playbook.service.clone(),
                name: test.name.clone(),
                failures: Vec::new(),
                checks: 0,
            };
            if let Err(e) = run_one(&only, test, store.clone(), &scratch, &mut result).await {
                result.failures.push(super::error_chain(&e));
            }
            results.push(result);
        }
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(results)
}

async fn run_one(
    project: &Project,
    test: &PlaybookTest,
    store: std::sync::Arc<dyn crate::store::Store>,
    scratch: &std::path::Path,
    result: &mut TestResult,
) -> Result<()> {
    let mut request = test.request.clone();
    if request.tenant.is_empty() {
        request.tenant = project
            .config
            .tenants
            .keys()
            .next()
            .cloned()
            .unwrap_or_default();
    }
    let plan = compile(project, &request, chrono::Utc::now())?;
    let recordings: HashMap<String, Response> = test
        .responses
        .iter()
        .map(|(step, r)| {
            let headers = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            (
                step.clone(),
                Response {
                    status: Some(r.status),
                    body: r.body.clone(),
                    headers,
                    ..Response::default()
                },
            )
        })
        .collect();
    let replay: std::sync::Arc<dyn Calls> = std::sync::Arc::new(Replay::new(recordings));
    let engine = || Engine::new(store.clone(), HashMap::new(), scratch).with_calls(replay.clone());
    let by_id = |outcomes: &[StepOutcome], id: &str| -> Vec<StepOutcome> {
        outcomes
            .iter()
            .filter(|o| plan.step(&o.step).is_some_and(|s| s.id == id) && o.instance == o.step)
            .cloned()
            .collect()
    };
    if !test.expect_changes.is_empty() {
        let run = store.create_run(&plan, RunMode::DryRun).await?;
        let dry = engine().execute(&run, &plan, RunMode::DryRun, None).await?;
        for (id, want) in &test.expect_changes {
            result.checks += 1;
            let changes: Vec<&str> = dry
                .outcomes
                .iter()
                .filter(|o| plan.step(&o.step).is_some_and(|s| &s.id == id))
                .filter_map(|o| o.change.as_ref().map(|c| c.action.as_str()))
                .collect();
            if !changes.contains(&want.as_str()) {
                result.failures.push(format!(
                    "step `{id}`: expected a `{want}` change, the dry run shows {changes:?}"
                ));
            }
        }
    }
    if !test.expect_outcomes.is_empty() {
        let run = store.create_run(&plan, RunMode::Apply).await?;
        let applied = engine().execute(&run, &plan, RunMode::Apply, None).await?;
        for (id, want) in &test.expect_outcomes {
            result.checks += 1;
            let got: Vec<String> = by_id(&applied.outcomes, id)
                .iter()
                .map(|o| {
                    o.status.as_str().to_owned()
                        + &o.message
                            .as_deref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                })
                .collect();
            if !got
                .iter()
                .any(|g| g.split(' ').next() == Some(want.as_str()))
            {
                result
                    .failures
                    .push(format!("step `{id}`: expected `{want}`, got {got:?}"));
            }
        }
    }
    Ok(())
}

fn human(results: &[TestResult]) -> String {
    let mut out = String::new();
    for r in results {
        let status = if r.failures.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        let _ = writeln!(
            out,
            "{status} {}: {} ({} checks)",
            r.service, r.name, r.checks
        );
        for f in &r.failures {
            let _ = writeln!(out, "       {f}");
        }
    }
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    let _ = writeln!(out, "\n{} passed, {failed} failed", results.len() - failed);
    out
}

fn junit(results: &[TestResult]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"dsrctl\" tests=\"{}\" failures=\"{failed}\">\n",
        results.len()
    );
    let mut services: Vec<&str> = results.iter().map(|r| r.playbook.as_str()).collect();
    services.dedup();
    for file in services {
        let cases: Vec<&TestResult> = results.iter().filter(|r| r.playbook == file).collect();
        let f = cases.iter().filter(|r| !r.failures.is_empty()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\">",
            esc(file),
            cases.len()
        );
        for c in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                esc(&c.service),
                esc(&c.name)
            );
            if c.failures.is_empty() {
                out.push_str("/>\n");
            } else {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    esc(&c.failures[0]),
                    esc(&c.failures.join("\n"))
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
