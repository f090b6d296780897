//! A parsed document into a model type, with serde's error mapped back to file:line:col.

use serde::de::DeserializeOwned;

use super::context::{describe, nearest_names};
use super::position::{escape_token, last_token};
use super::yaml::Document;
use super::{Code, Diagnostic, Diagnostics};

/// Deserialize the document; on failure one finding at the offending node.
pub fn from_document<T: DeserializeOwned>(doc: &Document) -> Result<T, Diagnostics> {
    // Tracking the path costs on every node; it is only needed to place a failure, so a
    // document is deserialised again with it only when it fails.
    if let Ok(v) = T::deserialize(&doc.value) {
        return Ok(v);
    }
    match serde_path_to_error::deserialize::<_, T>(&doc.value) {
        Ok(v) => Ok(v),
        Err(e) => {
            let pointer = error_pointer(&e);
            let msg = e.inner().to_string();
            let mut d = map_serde_error(doc, &pointer, &msg);
            d.attach_source(&doc.text);
            Err(Diagnostics(vec![d]))
        }
    }
}

/// Deserialize a value; on failure the JSON pointer of the offending node.
pub(crate) fn from_value_or_pointer<T: DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, String> {
    if let Ok(v) = T::deserialize(value) {
        return Ok(v);
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| error_pointer(&e))
}

fn error_pointer<E>(e: &serde_path_to_error::Error<E>) -> String {
    let mut pointer = String::new();
    for seg in e.path().iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            serde_path_to_error::Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&escape_token(key));
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    pointer
}

/// Backticked names in a serde message, in order.
fn backticked(msg: &str) -> Vec<&str> {
    msg.split('`').skip(1).step_by(2).collect()
}

fn map_serde_error(doc: &Document, pointer: &str, msg: &str) -> Diagnostic {
    let file = doc.file.as_str();
    let pos = &doc.positions;
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let names = backticked(rest);
        let unknown = names.first().copied().unwrap_or("");
        let valid: Vec<&str> = names.iter().skip(1).copied().collect();
        let ptr = if last_token(pointer) == unknown {
            pointer.to_owned()
        } else {
            format!("{pointer}/{}", escape_token(unknown))
        };
        let parent = ptr.rsplit_once('/').map_or("", |(p, _)| p);
        return unknown_key(doc, &ptr, unknown, &valid, &describe(&doc.value, parent));
    }
    if msg.starts_with("missing field ") {
        let names = backticked(msg);
        let missing = names.first().copied().unwrap_or("");
        let p = pos.key_or_value(pointer);
        return Diagnostic::error(
            Code::MissingKey,
            file,
            p.line,
            p.col,
            format!("missing key `{missing}`{}", describe(&doc.value, pointer)),
        )
        .with_len(p.len)
        .with_key(missing)
        .with_help(format!("add `{missing}:`"));
    }
    let p = pos.value(pointer);
    let key = last_token(pointer);
    let (code, help) = if msg.starts_with("invalid type") {
        (Code::WrongType, None)
    } else if msg.starts_with("unknown variant") {
        let names = backticked(msg);
        let valid: Vec<&str> = names.iter().skip(1).copied().collect();
        (
            Code::UnknownValue,
            Some(format!("valid values: {}", valid.join(", "))),
        )
    } else {
        (Code::InvalidValue, None)
    };
    let mut d = Diagnostic::error(
        code,
        file,
        p.line,
        p.col,
        format!("{msg}{}", describe(&doc.value, pointer)),
    )
    .with_len(p.len)
    .with_key(key);
    if let Some(h) = help {
        d = d.with_help(h);
    }
    d
}

/// An `unknown-key` finding at the key, naming the nearest valid key.
pub fn unknown_key(
    doc: &Document,
    pointer: &str,
    unknown: &str,
    valid: &[&str],
    context: &str,
) -> Diagnostic {
    let p = doc.positions.key_or_value(pointer);
    let mut d = Diagnostic::error(
        Code::UnknownKey,
        &doc.file,
        p.line,
        p.col,
        format!("unknown key `{unknown}`{context}"),
    )
    .with_len(p.len)
    .with_key(unknown);
    if let Some(best) = nearest_names(unknown, valid).first() {
        d = d.with_label(format!("did you mean `{best}`?"));
    }
    if !valid.is_empty() {
        d = d.with_help(format!("valid keys: {}", valid.join(", ")));
    }
    d
}
