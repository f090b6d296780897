//! One file through the pipeline: bytes → YAML with positions → schema → model type, with
//! recovery from schema errors so the checks of meaning can still run (`recover.rs`).

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::deserialize::from_document;
use super::recover::{FollowOn, recover};
use super::schema::SchemaKind;
use super::yaml::{Document, parse_yaml};
use super::{Diagnostics, schema_check};

/// The result of loading one file.
#[derive(Debug)]
pub struct LoadedFile<T> {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The parsed document, when the YAML was readable; recovered (without the parts that
    /// failed the schema) when `value` was recovered.
    pub doc: Option<Document>,
    /// The document as written, when `doc` is a recovered one.
    pub original: Option<Document>,
    /// The model value: valid when `diags` has no errors, else recovered from them.
    pub value: Option<T>,
    /// Places whose findings of meaning follow from a schema error.
    pub follow_on: FollowOn,
    /// Findings so far.
    pub diags: Diagnostics,
}

impl<T> LoadedFile<T> {
    /// The document as written.
    pub fn written(&self) -> Option<&Document> {
        self.original.as_ref().or(self.doc.as_ref())
    }
}

/// Parse, schema-check and deserialize one file.
pub fn load_file<T: DeserializeOwned>(file: &str, bytes: &[u8], kind: SchemaKind) -> LoadedFile<T> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let (mut doc, mut diags) = parse_yaml(file, bytes);
    let mut value = None;
    let mut original = None;
    let mut follow_on = FollowOn::default();
    if let Some(d) = &doc {
        let (schema_diags, fixes) = schema_check::check(kind, d);
        let schema_ok = !schema_diags.has_errors();
        diags.extend(schema_diags);
        if schema_ok {
            match from_document::<T>(d) {
                Ok(v) => value = Some(v),
                Err(e) => diags.extend(e),
            }
        }
        if value.is_none()
            && let Some(r) = recover::<T>(kind, d, fixes)
        {
            value = Some(r.value);
            follow_on = r.follow_on;
            original = doc.replace(r.doc);
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
        original,
        value,
        follow_on,
        diags,
    }
}

/// Give every finding about `file` its source line.
pub fn attach_sources(diags: &mut Diagnostics, file: &str, text: &str) {
    for d in diags.0.iter_mut().filter(|d| d.file == file) {
        d.attach_source(text);
    }
}
