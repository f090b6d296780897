//! Outside programs the tests drive (git), and what a test does when a tool it needs is
//! missing: fail under CI, say "SKIPPED" otherwise. Included by path where `support` as a
//! whole is not (`tests/report`, `tests/ci_examples.rs`).
#![allow(dead_code)]

use std::path::Path;

/// Runs `git -C DIR ARGS` as a fixed, configuration-free user; fails the test on an error.
pub fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tool the test needs is missing: a failure when `CI` is set, else a visible skip.
pub fn missing(tool: &str, how: &str) {
    let message = format!("{tool} not found; {how}");
    if std::env::var_os("CI").is_some() {
        panic!("{message} (required when CI is set)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
}
