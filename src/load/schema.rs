//! JSON Schemas (draft 2020-12) generated from the model types; `schemas/` holds them.

use std::path::Path;

use crate::model::{Playbook, ProjectConfig, Request};

/// Which document a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    /// A playbook under `policies/`.
    Playbook,
    /// A data subject request.
    Request,
    /// The project config, `dsrctl.yaml`.
    Config,
}

impl SchemaKind {
    /// All kinds.
    pub const ALL: [SchemaKind; 3] = [
        SchemaKind::Playbook,
        SchemaKind::Request,
        SchemaKind::Config,
    ];

    /// `playbook`, `request` or `config`.
    pub fn name(self) -> &'static str {
        match self {
            SchemaKind::Playbook => "playbook",
            SchemaKind::Request => "request",
            SchemaKind::Config => "config",
        }
    }

    /// The committed file name, e.g. `playbook.schema.json`.
    pub fn file_name(self) -> String {
        format!("{}.schema.json", self.name())
    }

    /// The kind for a name (`playbook`, `request`, `config`).
    pub fn from_name(name: &str) -> Option<SchemaKind> {
        SchemaKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The schema as a JSON value.
pub fn schema_value(which: SchemaKind) -> serde_json::Value {
    let schema = match which {
        SchemaKind::Playbook => schemars::schema_for!(Playbook),
        SchemaKind::Request => schemars::schema_for!(Request),
        SchemaKind::Config => schemars::schema_for!(ProjectConfig),
    };
    schema.to_value()
}

/// The schema as pretty JSON with a trailing newline.
pub fn schema_json(which: SchemaKind) -> String {
    let mut s = serde_json::to_string_pretty(&schema_value(which)).unwrap_or_default();
    s.push('\n');
    s
}

/// Write every schema into `dir` (created when missing), e.g. the project's `schemas/`.
pub fn write_schemas(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for kind in SchemaKind::ALL {
        std::fs::write(dir.join(kind.file_name()), schema_json(kind))?;
    }
    Ok(())
}
