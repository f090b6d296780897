//! A small builder for `dsrctl` command lines run as a child process, like a user types them:
//! `Dsrctl::new(dir).args(["plan", "request.yaml"]).run().await.expect_code(0)`.

use std::path::{Path, PathBuf};

/// A playbook of the service `crm` on the connector `api`: its access (and export) reads the
/// subject's contacts into the collection `contacts`; it supports nothing else.
pub const CONTACTS_PLAYBOOK: &str = r#"service: crm
connector: api
needs_identities: [email]
dsr:
  access:
    - id: contacts
      http: { method: GET, path: /contacts, query: { email: "{{subject.email}}" } }
      collect: contacts
  export: { same_as: [access] }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete: { unsupported: "test" }
"#;

/// A `dsrctl` invocation in a project directory (`-C DIR`, no colour).
pub struct Dsrctl {
    dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    bare: bool,
}

/// What a finished invocation printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub command: String,
}

impl Dsrctl {
    pub fn new(dir: &Path) -> Self {
        Dsrctl {
            dir: dir.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            bare: false,
        }
    }

    /// Only the arguments given, started in the directory (no `-C DIR --color never` in
    /// front), as a shell's completion function calls `dsrctl`.
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    pub fn arg(mut self, a: impl AsRef<str>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Runs to the end without blocking the test's runtime (servers in the test keep answering).
    pub async fn run(self) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"));
        if self.bare {
            cmd.current_dir(&self.dir);
        } else {
            cmd.arg("-C").arg(&self.dir).arg("--color").arg("never");
        }
        cmd.args(&self.args)
            .env("NO_COLOR", "1")
            .env_remove("DSRCTL_PROJECT")
            .stdin(std::process::Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.expect("run dsrctl");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command: format!("dsrctl {}", self.args.join(" ")),
        }
    }
}

impl Output {
    /// Asserts the exit code, showing everything printed when it differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "`{}` exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.code, self.stdout, self.stderr
        );
        self
    }

    /// The stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("`{}` printed no JSON ({e}):\n{}", self.command, self.stdout)
        })
    }
}

/// Files of a project in a temporary directory.
pub struct ProjectDir {
    pub dir: tempfile::TempDir,
}

impl ProjectDir {
    pub fn new() -> Self {
        ProjectDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating its directories).
    pub fn file(self, rel: &str, text: &str) -> Self {
        self.write(rel, text);
        self
    }

    pub fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    /// Writes a file from bytes (creating its directories).
    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, bytes).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).expect("read")
    }

    pub fn cmd(&self) -> Dsrctl {
        Dsrctl::new(self.dir.path())
    }

    /// Runs `dsrctl ARGS` in the project and asserts its exit code.
    pub async fn expect(&self, code: i32, args: &[&str]) -> Output {
        self.cmd().args(args).run().await.expect_code(code)
    }
}
