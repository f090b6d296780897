//! The largest estates (issue 23), through the `dsrctl` binary as a user runs it:
//!
//! 1. `validate` of a generated 10,000-playbook project, cold (no validation cache): wall
//!    time and peak RSS, against `ajv validate` (ajv-cli) of the same files with the same
//!    JSON Schema;
//! 2. `validate` warm, one file of the 10,000 changed since the last run;
//! 3. `plan --offline` of a deletion request over the 10,000 playbooks: wall time, peak RSS;
//! 4. `dsrctl lsp` in a 2,000-playbook project: the time from an edit (`didChange`) to the
//!    findings for the edited buffer.
//!
//! Run: `cargo bench --bench large_project`. ajv-cli is taken from `DSRCTL_AJV` or
//! `node_modules/.bin/ajv` (`npm ci` installs it); without it that comparison is left out.
//! `DSRCTL_BENCH_PLAYBOOKS` and `DSRCTL_BENCH_LSP_PLAYBOOKS` change the sizes;
//! `DSRCTL_BENCH_KEEP` keeps the generated 10,000-playbook project (its path is printed).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/generated.rs"]
mod generated;

const DSRCTL: &str = env!("CARGO_BIN_EXE_dsrctl");

const REQUEST: &str = "\
id: bench-delete
kind: delete
tenant: contoso
received: 2026-11-02
subject: { email: alice@example.com, object_id: u-1 }
";

/// One run of a command: wall time, peak RSS (KiB) and CPU time (user + system, seconds)
/// from `/usr/bin/time`, success.
struct Run {
    wall: Duration,
    rss_kib: u64,
    cpu_s: f64,
    ok: bool,
}

fn measure(dir: &Path, program: &str, args: &[&str]) -> Run {
    let report = dir.join(".time-report");
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M %U %S")
        .arg("-o")
        .arg(&report)
        .arg(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run /usr/bin/time");
    let wall = start.elapsed();
    let report = std::fs::read_to_string(&report).unwrap_or_default();
    let fields: Vec<&str> = report
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Run {
        wall,
        rss_kib: num(0).unwrap_or(0.0) as u64,
        cpu_s: num(1).unwrap_or(0.0) + num(2).unwrap_or(0.0),
        ok: status.success(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn fmt_runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn project(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    generated::generate(dir.path(), n).expect("generate playbooks");
    std::fs::create_dir_all(dir.path().join("requests")).expect("requests dir");
    std::fs::write(dir.path().join("requests/delete-bench.yaml"), REQUEST).expect("request");
    dir
}

fn ajv() -> Option<PathBuf> {
    let path = std::env::var_os("DSRCTL_AJV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/ajv"));
    path.is_file().then_some(path)
}

/// The `n`-th generated playbook's file.
fn playbook_file(dir: &Path, i: usize) -> PathBuf {
    let name = if i % 4 == 3 {
        format!("db-{i}.yaml")
    } else {
        format!("svc-{i}.yaml")
    };
    dir.join(format!("policies/group-{:02}", i % 40)).join(name)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let n: usize = std::env::var("DSRCTL_BENCH_PLAYBOOKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let lsp_n: usize = std::env::var("DSRCTL_BENCH_LSP_PLAYBOOKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    println!("load average before: {}", load());
    let dir = project(n);
    let root = dir.path();
    println!("generated {n} playbooks");
    let keep = std::env::var_os("DSRCTL_BENCH_KEEP").is_some();
    if keep {
        // Kept for profiling by hand: the directory outlives the bench.
        println!("project kept in {}", root.display());
    }

    // 1. Cold: no validation cache.
    let mut cold = Vec::new();
    let mut cold_rss = 0;
    let mut cold_cpu = Vec::new();
    for _ in 0..3 {
        let r = measure(root, DSRCTL, &["validate", "--no-cache"]);
        assert!(r.ok, "dsrctl validate failed on the generated project");
        cold.push(ms(r.wall));
        cold_cpu.push(r.cpu_s * 1000.0);
        cold_rss = cold_rss.max(r.rss_kib);
    }
    println!(
        "validate, cold (--no-cache): {} ms, median {:.0} ms; CPU (user + sys) {} ms; peak RSS {:.1} MiB",
        fmt_runs(&cold),
        median(cold.clone()),
        fmt_runs(&cold_cpu),
        mib(cold_rss)
    );
    let schema = root.join("playbook.schema.json");
    let out = Command::new(DSRCTL)
        .args(["schema", "playbook"])
        .output()
        .expect("dsrctl schema");
    std::fs::write(&schema, out.stdout).expect("write schema");
    match ajv() {
        Some(ajv) => {
            let ajv = ajv.to_string_lossy().into_owned();
            let args = [
                "validate",
                "--spec=draft2020",
                "--strict=false",
                "-c",
                "ajv-formats",
                "-s",
                "playbook.schema.json",
                "-d",
                "policies/**/*.yaml",
            ];
            let mut runs = Vec::new();
            let mut rss = 0;
            let mut cpu = Vec::new();
            for _ in 0..3 {
                let r = measure(root, &ajv, &args);
                assert!(r.ok, "ajv validate failed on the generated project");
                runs.push(ms(r.wall));
                cpu.push(r.cpu_s * 1000.0);
                rss = rss.max(r.rss_kib);
            }
            println!(
                "ajv validate (schema only, same files): {} ms, median {:.0} ms; CPU (user + sys) {} ms; peak RSS {:.1} MiB",
                fmt_runs(&runs),
                median(runs.clone()),
                fmt_runs(&cpu),
                mib(rss)
            );
            println!(
                "dsrctl cold vs ajv: {:.2}x faster",
                median(runs) / median(cold.clone())
            );
        }
        None => println!("ajv-cli not found (npm ci, or DSRCTL_AJV): comparison left out"),
    }

    // 2. Warm: the cache written by a full run, then one file changed before each run.
    let first = measure(root, DSRCTL, &["validate"]);
    assert!(first.ok);
    println!(
        "validate, cold, writing the cache: {:.0} ms; peak RSS {:.1} MiB",
        ms(first.wall),
        mib(first.rss_kib)
    );
    let unchanged = measure(root, DSRCTL, &["validate"]);
    println!(
        "validate, warm, nothing changed: {:.0} ms",
        ms(unchanged.wall)
    );
    let mut warm = Vec::new();
    let mut warm_rss = 0;
    let mut warm_cpu = Vec::new();
    for k in 0..5 {
        let file = playbook_file(root, 17 + 1000 * k);
        let text = std::fs::read_to_string(&file).expect("read playbook");
        std::fs::write(&file, format!("{text}# edited {k}\n")).expect("edit playbook");
        let r = measure(root, DSRCTL, &["validate"]);
        assert!(r.ok);
        warm.push(ms(r.wall));
        warm_cpu.push(r.cpu_s * 1000.0);
        warm_rss = warm_rss.max(r.rss_kib);
    }
    println!(
        "validate, warm, one file of {n} changed: {} ms, median {:.0} ms; CPU (user + sys) {} ms; peak RSS {:.1} MiB",
        fmt_runs(&warm),
        median(warm.clone()),
        fmt_runs(&warm_cpu),
        mib(warm_rss)
    );
    let one = measure(
        root,
        DSRCTL,
        &[
            "validate",
            &playbook_file(root, 17)
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy(),
        ],
    );
    println!(
        "validate FILE, warm (the file and its referrers): {:.0} ms",
        ms(one.wall)
    );

    // 3. plan --offline over the whole project.
    let mut plans = Vec::new();
    let mut plan_rss = 0;
    for _ in 0..3 {
        let r = measure(
            root,
            DSRCTL,
            &["plan", "--offline", "requests/delete-bench.yaml"],
        );
        assert!(r.ok, "plan --offline failed");
        plans.push(ms(r.wall));
        plan_rss = plan_rss.max(r.rss_kib);
    }
    println!(
        "plan --offline over {n} playbooks: {} ms, median {:.0} ms; peak RSS {:.1} MiB",
        fmt_runs(&plans),
        median(plans),
        mib(plan_rss)
    );
    if keep {
        let _ = dir.keep();
    }

    // 4. The language server after an edit.
    let dir = project(lsp_n);
    lsp_latency(dir.path(), lsp_n);
    println!("load average after: {}", load());
}

struct Client {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn read(&mut self) -> Value {
        let mut len = 0;
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).expect("read") > 0,
                "server closed"
            );
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                len = n.parse().expect("length");
            }
        }
        let mut body = vec![0; len];
        self.stdout.read_exact(&mut body).expect("body");
        serde_json::from_slice(&body).expect("json")
    }

    /// Waits for findings for `uri`, with errors or without; the time it took.
    fn findings(&mut self, uri: &str, with_errors: bool, since: Instant) -> Duration {
        loop {
            let m = self.read();
            if m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && m["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|d| d.is_empty() != with_errors)
            {
                return since.elapsed();
            }
        }
    }
}

fn lsp_latency(root: &Path, n: usize) {
    let mut child = Command::new(DSRCTL)
        .arg("lsp")
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dsrctl lsp");
    let mut c = Client {
        stdin: child.stdin.take().expect("stdin"),
        stdout: BufReader::new(child.stdout.take().expect("stdout")),
    };
    let root_uri = format!("file://{}", root.display());
    c.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"processId": null, "rootUri": root_uri, "capabilities": {}}}));
    while c.read().get("id") != Some(&json!(1)) {}
    c.send(&json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    let file = playbook_file(root, 5);
    let uri = format!("file://{}", file.display());
    let good = std::fs::read_to_string(&file).expect("read playbook");
    // A mistake only the checks across files see: `after` a step no service has.
    let bad = good.replace(
        "needs: [drop-items]\n",
        "needs: [drop-items]\n      after: [svc-1/no-such-step]\n",
    );
    assert_ne!(good, bad);
    // The first findings include the server's cold start over the whole project.
    let start = Instant::now();
    c.send(
        &json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": bad}}}),
    );
    let first = c.findings(&uri, true, start);
    println!(
        "lsp, {n} playbooks: first findings (cold start over the project) after {:.0} ms",
        ms(first)
    );
    let mut times = Vec::new();
    for version in 2..22 {
        let (text, with_errors) = if version % 2 == 0 {
            (&good, false)
        } else {
            (&bad, true)
        };
        let start = Instant::now();
        c.send(
            &json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"text": text}]}}),
        );
        times.push(ms(c.findings(&uri, with_errors, start)));
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    println!(
        "lsp, {n} playbooks: findings after an edit: median {:.1} ms, max {max:.1} ms over {} edits",
        median(times.clone()),
        times.len()
    );
    c.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": null}));
    while c.read().get("id") != Some(&json!(2)) {}
    c.send(&json!({"jsonrpc": "2.0", "method": "exit", "params": null}));
    let _ = child.wait();
}
