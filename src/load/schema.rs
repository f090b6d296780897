//! JSON Schemas (draft 2020-12) generated from the model types; `schemas/` holds them.

use std::path::Path;

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::{RestrictFormats, transform_subschemas};

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
    // Only the formats of the standard, so strict validators (ajv, SchemaStore) accept the
    // schemas: schemars' `uint16`/`uint32`/`uint64` become ranges first.
    let settings = SchemaSettings::draft2020_12()
        .with_transform(integer_ranges)
        .with_transform(RestrictFormats::default());
    let generator = settings.into_generator();
    let schema = match which {
        SchemaKind::Playbook => generator.into_root_schema_for::<Playbook>(),
        SchemaKind::Request => generator.into_root_schema_for::<Request>(),
        SchemaKind::Config => generator.into_root_schema_for::<ProjectConfig>(),
    };
    schema.to_value()
}

/// The bounds a Rust integer format (`uint16`, ...) implies, as `minimum`/`maximum`.
fn integer_ranges(schema: &mut Schema) {
    let bounds: Option<(i64, u64)> = match schema.get("format").and_then(|f| f.as_str()) {
        Some("uint8") => Some((0, u8::MAX.into())),
        Some("uint16") => Some((0, u16::MAX.into())),
        Some("uint32") => Some((0, u32::MAX.into())),
        Some("uint64" | "uint") => Some((0, u64::MAX)),
        _ => None,
    };
    if let Some((min, max)) = bounds {
        if schema.get("minimum").is_none() {
            schema.insert("minimum".to_owned(), min.into());
        }
        // JSON numbers above 2^53 are not exact in most validators: no maximum for u64.
        if schema.get("maximum").is_none() && max < (1 << 53) {
            schema.insert("maximum".to_owned(), max.into());
        }
    }
    transform_subschemas(&mut integer_ranges, schema);
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
