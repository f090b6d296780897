//! JSON Schema validation of a parsed document against the generated schemas, with each
//! error mapped back to file:line:col and phrased for the person who wrote the YAML.
//!
//! `anyOf`/`oneOf` errors (untagged enums such as a DSR kind's steps or a preview) are
//! resolved to the branch the author evidently meant; when none fits, the finding lists the
//! valid shapes instead of "not valid under any of the schemas".

use std::cell::RefCell;
use std::sync::OnceLock;

use jsonschema::Validator;
use jsonschema::error::{ValidationError, ValidationErrorKind};

use crate::model::DURATION_PATTERN;
use serde_json::Value;

use super::context::{describe, name_and_context, nearest_names};
use super::deserialize::unknown_key;
use super::position::{escape_token, last_token};
use super::recover::Fix;
use super::schema::{SchemaKind, schema_value};
use super::shape::{describe_shape, type_words, value_words};
use super::yaml::Document;
use super::{Code, Diagnostic, Diagnostics};

struct Compiled {
    schema: Value,
    validator: Option<Validator>,
}

/// The schema and its validator, compiled once per process.
fn compiled(kind: SchemaKind) -> &'static Compiled {
    static CELLS: [OnceLock<Compiled>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = match kind {
        SchemaKind::Playbook => 0,
        SchemaKind::Request => 1,
        SchemaKind::Config => 2,
    };
    CELLS[i].get_or_init(|| {
        let schema = schema_value(kind);
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .ok();
        Compiled { schema, validator }
    })
}

/// Validate the document against the schema of `kind`: findings that point at
/// file:line:col, and for each how to take the failing part out of the document so that the
/// rest can still be checked for meaning (see `recover.rs`).
pub(crate) fn check(kind: SchemaKind, doc: &Document) -> (Diagnostics, Vec<Fix>) {
    let c = compiled(kind);
    let mut out = Diagnostics::default();
    let Some(validator) = &c.validator else {
        // The generated schema always compiles; a test guards it.
        return (out, Vec::new());
    };
    if validator.is_valid(&doc.value) {
        return (out, Vec::new());
    }
    let mapper = Mapper {
        doc,
        schema: &c.schema,
        fixes: RefCell::default(),
    };
    for e in validator.iter_errors(&doc.value) {
        mapper.map(&e, &mut out);
    }
    (out, mapper.fixes.into_inner())
}

struct Mapper<'a> {
    doc: &'a Document,
    schema: &'a Value,
    fixes: RefCell<Vec<Fix>>,
}

/// The schema node at a keyword's location, and the schema object holding the keyword.
fn parent_path(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

impl Mapper<'_> {
    fn fix(&self, fix: Fix) {
        self.fixes.borrow_mut().push(fix);
    }

    fn remove(&self, pointer: &str) {
        self.fix(Fix::Remove(pointer.to_owned()));
    }

    fn at(&self, code: Code, pointer: &str, on_key: bool, message: String) -> Diagnostic {
        let p = if on_key {
            self.doc.positions.key_or_value(pointer)
        } else {
            self.doc.positions.value(pointer)
        };
        Diagnostic::error(code, &self.doc.file, p.line, p.col, message).with_len(p.len)
    }

    fn map(&self, e: &ValidationError<'_>, out: &mut Diagnostics) {
        let ptr = e.instance_path().as_str();
        let schema_path = e.schema_path().as_str();
        let (name, context) = name_and_context(&self.doc.value, ptr);
        let owner_context = describe(&self.doc.value, ptr);
        match e.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let owner = self.schema.pointer(parent_path(schema_path));
                let valid: Vec<&str> = owner
                    .and_then(|o| o.get("properties"))
                    .and_then(Value::as_object)
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for key in unexpected {
                    let child = format!("{ptr}/{}", escape_token(key));
                    let d = unknown_key(self.doc, &child, key, &valid, &owner_context);
                    self.fix(Fix::for_unknown_key(
                        &self.doc.value,
                        ptr,
                        &child,
                        key,
                        &valid,
                    ));
                    out.push(d);
                }
            }
            ValidationErrorKind::Required { property } => {
                let key = property.as_str().unwrap_or_default();
                let owner = self.schema.pointer(parent_path(schema_path));
                self.fix(Fix::for_missing_key(self.schema, owner, ptr, key));
                out.push(
                    self.at(
                        Code::MissingKey,
                        ptr,
                        true,
                        format!("missing key `{key}`{owner_context}"),
                    )
                    .with_key(key)
                    .with_help(format!("add `{key}:`")),
                );
            }
            ValidationErrorKind::Type { .. } => {
                self.remove(ptr);
                let expected = self
                    .schema
                    .pointer(schema_path)
                    .map(type_words)
                    .unwrap_or_else(|| "another type".to_owned());
                let found = self
                    .doc
                    .value
                    .pointer(ptr)
                    .map(value_words)
                    .unwrap_or("nothing");
                out.push(
                    self.at(
                        Code::WrongType,
                        ptr,
                        false,
                        format!("{name} must be {expected}, found {found}{context}"),
                    )
                    .with_key(last_token(ptr)),
                );
            }
            ValidationErrorKind::Format { format } => {
                self.remove(ptr);
                out.push(
                    self.at(
                        Code::InvalidFormat,
                        ptr,
                        false,
                        format!("{name} is not a valid {format}{context}"),
                    )
                    .with_key(last_token(ptr)),
                );
            }
            ValidationErrorKind::Pattern { pattern } if pattern == DURATION_PATTERN => {
                self.remove(ptr);
                out.push(
                    self.at(
                        Code::InvalidValue,
                        ptr,
                        false,
                        format!(
                            "{name} is `{}`, which is not a duration{context}",
                            value_text(e.instance())
                        ),
                    )
                    .with_key(last_token(ptr))
                    .with_help("write a number and a unit, e.g. 30s, 5m, 1h 30m, 30d"),
                );
            }
            ValidationErrorKind::AnyOf { context: branches }
            | ValidationErrorKind::OneOfNotValid { context: branches } => {
                self.map_alternatives(ptr, schema_path, branches, out);
            }
            ValidationErrorKind::MinLength { limit: 1 } => {
                self.remove(ptr);
                out.push(
                    self.at(
                        Code::EmptyValue,
                        ptr,
                        false,
                        format!("{name} must not be empty{context}"),
                    )
                    .with_key(last_token(ptr)),
                );
            }
            ValidationErrorKind::Enum { options } => {
                let valid: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(value_text).collect())
                    .unwrap_or_default();
                self.unknown_value(ptr, &valid, out);
            }
            ValidationErrorKind::Constant { expected_value } => {
                self.unknown_value(ptr, &[value_text(expected_value)], out);
            }
            _ => {
                self.remove(ptr);
                let mut msg = e.to_string();
                if msg.len() > 200 {
                    let cut = (0..=200)
                        .rev()
                        .find(|i| msg.is_char_boundary(*i))
                        .unwrap_or(0);
                    msg.truncate(cut);
                    msg.push('…');
                }
                out.push(
                    self.at(
                        Code::InvalidValue,
                        ptr,
                        false,
                        format!("{name}: {msg}{context}"),
                    )
                    .with_key(last_token(ptr)),
                );
            }
        }
    }

    fn unknown_value(&self, ptr: &str, valid: &[String], out: &mut Diagnostics) {
        let found = self
            .doc
            .value
            .pointer(ptr)
            .map(value_text)
            .unwrap_or_default();
        let (name, context) = name_and_context(&self.doc.value, ptr);
        let refs: Vec<&str> = valid.iter().map(String::as_str).collect();
        let mut d = self
            .at(
                Code::UnknownValue,
                ptr,
                false,
                format!("`{found}` is not a valid value for {name}{context}"),
            )
            .with_key(last_token(ptr))
            .with_help(format!("valid values: {}", refs.join(", ")));
        let best = nearest_names(&found, &refs).first().copied();
        if let Some(best) = best {
            d = d.with_label(format!("did you mean `{best}`?"));
        }
        // A misspelt value is taken as the valid one it nearly is, for the checks of meaning.
        let current = self.doc.value.pointer(ptr);
        self.fix(match best {
            Some(best) if current.is_some_and(Value::is_string) => Fix::Replace {
                pointer: ptr.to_owned(),
                value: Value::String(best.to_owned()),
            },
            _ => Fix::Remove(ptr.to_owned()),
        });
        out.push(d);
    }

    fn map_alternatives(
        &self,
        ptr: &str,
        schema_path: &str,
        branches: &[Vec<ValidationError<'static>>],
        out: &mut Diagnostics,
    ) {
        // A choice of constants (an enum): name the valid values.
        let consts: Option<Vec<String>> = branches
            .iter()
            .map(|b| match b.as_slice() {
                [e] => match e.kind() {
                    ValidationErrorKind::Constant { expected_value } => {
                        Some(value_text(expected_value))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        if let Some(valid) = consts {
            self.unknown_value(ptr, &valid, out);
            return;
        }
        let candidates: Vec<usize> = (0..branches.len())
            .filter(|i| !mismatch(&branches[*i], ptr))
            .collect();
        let chosen = match candidates.as_slice() {
            [one] => Some(*one),
            [] => None,
            many => self.best_of(ptr, schema_path, branches, many),
        };
        match chosen {
            Some(i) => {
                for e in &branches[i] {
                    self.map(e, out);
                }
            }
            None => {
                if !self.wrong_tag(ptr, branches, out) {
                    self.wrong_shape(ptr, schema_path, branches.len(), out);
                }
            }
        }
    }

    /// Among several plausible branches, the one whose required keys are all present, or
    /// whose properties cover most of the instance's keys; `None` when still ambiguous.
    fn best_of(
        &self,
        ptr: &str,
        schema_path: &str,
        branches: &[Vec<ValidationError<'static>>],
        candidates: &[usize],
    ) -> Option<usize> {
        let complete: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|i| {
                !branches[*i].iter().any(|e| {
                    e.instance_path().as_str() == ptr
                        && matches!(e.kind(), ValidationErrorKind::Required { .. })
                })
            })
            .collect();
        if let [one] = complete.as_slice() {
            return Some(*one);
        }
        let keys: Vec<&String> = self
            .doc
            .value
            .pointer(ptr)
            .and_then(Value::as_object)
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        let mut scored: Vec<(usize, usize)> = candidates
            .iter()
            .map(|i| {
                let props = self.branch_properties(&format!("{schema_path}/{i}"));
                (keys.iter().filter(|k| props.contains(k)).count(), *i)
            })
            .collect();
        scored.sort_by_key(|s| std::cmp::Reverse(s.0));
        match scored.as_slice() {
            [(best, i), rest @ ..] if *best > 0 && rest.first().is_none_or(|r| r.0 < *best) => {
                Some(*i)
            }
            _ => None,
        }
    }

    fn branch_properties(&self, path: &str) -> Vec<String> {
        let mut node = self.schema.pointer(path);
        for _ in 0..8 {
            match node.and_then(|n| n.get("$ref")).and_then(Value::as_str) {
                Some(r) => node = self.schema.pointer(r.trim_start_matches('#')),
                None => break,
            }
        }
        node.and_then(|n| n.get("properties"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// An internally tagged choice (`kind: http|sql|manual`) where every branch rejects the
    /// same key's constant: report that key's value with the valid tags.
    fn wrong_tag(
        &self,
        ptr: &str,
        branches: &[Vec<ValidationError<'static>>],
        out: &mut Diagnostics,
    ) -> bool {
        let mut tag_ptr: Option<String> = None;
        let mut valid = Vec::new();
        for b in branches {
            let found = b.iter().find_map(|e| match e.kind() {
                ValidationErrorKind::Constant { expected_value }
                    if parent_path(e.instance_path().as_str()) == ptr
                        && e.instance_path().as_str().len() > ptr.len() =>
                {
                    Some((
                        e.instance_path().as_str().to_owned(),
                        value_text(expected_value),
                    ))
                }
                _ => None,
            });
            match (found, &tag_ptr) {
                (Some((p, v)), None) => {
                    tag_ptr = Some(p);
                    valid.push(v);
                }
                (Some((p, v)), Some(t)) if &p == t => valid.push(v),
                _ => return false,
            }
        }
        match tag_ptr {
            Some(t) => {
                self.unknown_value(&t, &valid, out);
                true
            }
            None => false,
        }
    }

    fn wrong_shape(&self, ptr: &str, schema_path: &str, count: usize, out: &mut Diagnostics) {
        self.remove(ptr);
        let shapes: Vec<String> = (0..count)
            .filter_map(|i| describe_shape(self.schema, &format!("{schema_path}/{i}")))
            .collect();
        let found = self
            .doc
            .value
            .pointer(ptr)
            .map(value_words)
            .unwrap_or("nothing");
        let (name, context) = name_and_context(&self.doc.value, ptr);
        let mut d = self
            .at(
                Code::WrongShape,
                ptr,
                false,
                format!("{name} has none of the valid shapes (found {found}){context}"),
            )
            .with_key(last_token(ptr));
        if !shapes.is_empty() {
            d = d.with_help(format!("write one of: {}", shapes.join("; ")));
        }
        out.push(d);
    }
}

/// Whether a branch's errors show the value has another shape than the branch: a wrong
/// type or constant at the value itself, or a wrong tag (`kind: http`) one level down.
fn mismatch(errors: &[ValidationError<'_>], ptr: &str) -> bool {
    errors.iter().any(|e| {
        let at = e.instance_path().as_str();
        let here = at == ptr;
        let tag = parent_path(at) == ptr && at.len() > ptr.len();
        match e.kind() {
            ValidationErrorKind::Type { .. } | ValidationErrorKind::FalseSchema => here,
            ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. } => here || tag,
            ValidationErrorKind::AnyOf { context }
            | ValidationErrorKind::OneOfNotValid { context } => {
                here && context.iter().all(|b| mismatch(b, ptr))
            }
            _ => false,
        }
    })
}

/// A scalar as text for messages (strings without quotes).
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_schema_compiles() {
        for kind in SchemaKind::ALL {
            assert!(compiled(kind).validator.is_some(), "{kind:?}");
        }
    }
}
