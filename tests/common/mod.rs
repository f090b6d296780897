//! A small builder for projects in temporary directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dsrctl::load::{Diagnostic, Diagnostics, validate_paths};

/// A config with one tenant and an HTTP, a SQL and a manual connector.
pub const CONFIG: &str = "\
tenants:
  contoso:
    connectors:
      adt:
        kind: http
        base_url: https://adt.example.com
      shop:
        kind: sql
        url: { env: SHOP_DB_URL }
      ops:
        kind: manual
";

/// A valid playbook (the design's digital-twins example).
pub const TWINS: &str = r#"# yaml-language-server: $schema=../../schemas/playbook.schema.json
service: azure-digital-twins
description: Twins that represent people or their devices.
connector: adt
needs_identities: [object_id]
dsr:
  export:
    - id: twin
      http: { method: GET, path: "/digitaltwins/{{seg subject.object_id}}" }
      absent_on: [404]
      collect: twin
  delete:
    - id: incoming
      http:
        method: GET
        path: "/digitaltwins/{{seg subject.object_id}}/incomingrelationships"
        paginate: { next_link: /nextLink }
      capture: { rels: /value }
    - id: drop-incoming
      needs: [incoming]
      for_each: incoming.rels
      http: { method: DELETE, path: "/digitaltwins/{{seg item.$sourceId}}/relationships/{{seg item.$relationshipId}}" }
      preview: item
      absent_on: [404]
    - id: drop-twin
      needs: [drop-incoming]
      http: { method: DELETE, path: "/digitaltwins/{{seg subject.object_id}}" }
      preview: { none: "the twin was listed by the export" }
      verify: { http: { method: GET, path: "/digitaltwins/{{seg subject.object_id}}" }, expect_status: [404] }
  access: { same_as: [export] }
  rectify: { unsupported: "twins hold device data only" }
  restrict: { same_as: [export, delete] }
"#;

/// The project builder the command-line tests use (`ProjectDir`), shared by path.
#[path = "../support/cli.rs"]
mod cli;

/// A project in a temporary directory with the default config, checked through the library
/// (`validate`) rather than the binary.
pub struct TestProject {
    dir: cli::ProjectDir,
}

impl TestProject {
    /// An empty project with the default config.
    pub fn new() -> TestProject {
        TestProject {
            dir: cli::ProjectDir::new(),
        }
        .file("dsrctl.yaml", CONFIG)
    }

    /// Write a file (parent directories created).
    pub fn file(self, rel: &str, text: &str) -> TestProject {
        self.bytes(rel, text.as_bytes())
    }

    /// Write a file from bytes.
    pub fn bytes(self, rel: &str, bytes: &[u8]) -> TestProject {
        self.dir.write_bytes(rel, bytes);
        self
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `dsrctl validate` on the whole project.
    pub fn validate(&self) -> Diagnostics {
        validate_paths(self.root(), &[])
    }

    /// `dsrctl validate PATH...`.
    pub fn validate_paths(&self, paths: &[&str]) -> Diagnostics {
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        validate_paths(self.root(), &paths)
    }
}

/// The findings with this code.
pub fn with_code<'a>(d: &'a Diagnostics, code: &str) -> Vec<&'a Diagnostic> {
    d.iter().filter(|x| x.code == code).collect()
}

/// The single finding with this code; panics with all findings otherwise.
pub fn one<'a>(d: &'a Diagnostics, code: &str) -> &'a Diagnostic {
    let found = with_code(d, code);
    assert_eq!(
        found.len(),
        1,
        "expected one `{code}`, got:\n{}",
        d.render_human(false)
    );
    found[0]
}
