//! One file through the pipeline: bytes → YAML with positions → schema → model type.

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::deserialize::from_document;
use super::schema::SchemaKind;
use super::yaml::{Document, parse_yaml};
use super::{Diagnostics, schema_check};

/// The result of loading one file.
#[derive(Debug)]
pub struct LoadedFile<T> {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The parsed document, when the YAML was readable.
    pub doc: Option<Document>,
    /// The model value, when the document was valid.
    pub value: Option<T>,
    /// Findings so far.
    pub diags: Diagnostics,
}

/// Parse, schema-check and deserialize one file.
pub fn load_file<T: DeserializeOwned>(file: &str, bytes: &[u8], kind: SchemaKind) -> LoadedFile<T> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let (doc, mut diags) = parse_yaml(file, bytes);
    let mut value = None;
    if let Some(doc) = &doc {
        let schema_diags = schema_check::check(kind, doc);
        let schema_ok = !schema_diags.has_errors();
        diags.extend(schema_diags);
        if schema_ok {
            match from_document::<T>(doc) {
                Ok(v) if !diags.has_errors() => value = Some(v),
                Ok(_) => {}
                Err(d) => diags.extend(d),
            }
        }
    }
    if let Some(doc) = &doc {
        attach_sources(&mut diags, &doc.file, &doc.text);
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        attach_sources(&mut diags, file, text);
    }
    LoadedFile {
        sha256,
        doc,
        value,
        diags,
    }
}

/// Give every finding about `file` its source line.
pub fn attach_sources(diags: &mut Diagnostics, file: &str, text: &str) {
    for d in diags.0.iter_mut().filter(|d| d.file == file) {
        d.attach_source(text);
    }
}
