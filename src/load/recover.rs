//! Recovery after schema errors, so the checks of meaning run on every file they can.
//!
//! The schema findings of a file come with [`Fix`]es: a misspelt key or value is taken as
//! the valid one it nearly is, a missing key gets a placeholder, any other failing part is
//! removed. Fixes are applied (to the value and its positions) and the schema checked
//! again until the document deserializes. The checks of meaning then run on the recovered
//! document; their findings at a removed or stand-in place, or at the node holding it,
//! follow from the schema error already reported and are dropped ([`FollowOn`]).

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::context::nearest_names;
use super::deserialize::from_value_or_pointer;
use super::position::{escape_token, unescape_token};
use super::schema::SchemaKind;
use super::schema_check::check;
use super::shape::placeholder_value;
use super::yaml::Document;
use super::{Diagnostic, Diagnostics};

/// Most rounds of fixing before giving up on a document.
const MAX_ROUNDS: usize = 32;

/// How to take one failing part out of a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fix {
    /// Remove the node.
    Remove(String),
    /// Rename the key of the node at `pointer` to `to`.
    RenameKey { pointer: String, to: String },
    /// Replace the node's value.
    Replace { pointer: String, value: Value },
    /// Add a missing key with a placeholder value to the mapping at `pointer`.
    Insert {
        pointer: String,
        key: String,
        value: Value,
    },
}

impl Fix {
    fn pointer(&self) -> &str {
        match self {
            Fix::Remove(p) => p,
            Fix::RenameKey { pointer, .. }
            | Fix::Replace { pointer, .. }
            | Fix::Insert { pointer, .. } => pointer,
        }
    }

    /// For an unknown key `key` (at `child`) of the mapping at `owner`: a misspelt key is
    /// taken as the valid key it nearly is, unless that key is also written; any other
    /// unknown key is removed.
    pub fn for_unknown_key(
        value: &Value,
        owner: &str,
        child: &str,
        key: &str,
        valid: &[&str],
    ) -> Fix {
        let taken = |k: &str| {
            value
                .pointer(owner)
                .and_then(Value::as_object)
                .is_some_and(|m| m.contains_key(k))
        };
        match nearest_names(key, valid).first() {
            Some(best) if !taken(best) => Fix::RenameKey {
                pointer: child.to_owned(),
                to: (*best).to_owned(),
            },
            _ => Fix::Remove(child.to_owned()),
        }
    }

    /// For a missing key of the mapping at `pointer`, whose schema is `owner`: a placeholder
    /// of the key's shape, or the mapping's removal when none can be made.
    pub fn for_missing_key(schema: &Value, owner: Option<&Value>, pointer: &str, key: &str) -> Fix {
        let placeholder = owner
            .and_then(|o| o.get("properties"))
            .and_then(|p| p.get(key))
            .and_then(|p| placeholder_value(schema, p, 0));
        match placeholder {
            Some(value) => Fix::Insert {
                pointer: pointer.to_owned(),
                key: key.to_owned(),
                value,
            },
            None => Fix::Remove(pointer.to_owned()),
        }
    }
}

/// What recovery took out of a document: the places (line, column) whose findings of
/// meaning follow from a schema error, and the mapping entries removed or stood in for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FollowOn {
    places: BTreeSet<(usize, usize)>,
    broken: BTreeSet<String>,
}

impl FollowOn {
    fn note(&mut self, doc: &Document, pointer: &str) {
        if let Some(n) = doc.positions.get(pointer) {
            self.places.insert((n.value.line, n.value.col));
            if let Some(k) = n.key {
                self.places.insert((k.line, k.col));
            }
        }
    }

    /// Whether the mapping entry at `pointer`, or one inside it, was removed or is a
    /// stand-in, for a schema error.
    pub fn broken(&self, pointer: &str) -> bool {
        let inside = format!("{pointer}/");
        self.broken.contains(pointer)
            || self
                .broken
                .range(inside.clone()..)
                .next()
                .is_some_and(|b| b.starts_with(&inside))
    }

    /// Whether a finding follows from a schema error.
    pub fn covers(&self, d: &Diagnostic) -> bool {
        self.covers_at(d.line, d.col)
    }

    /// Whether a finding at this line and column follows from a schema error.
    pub fn covers_at(&self, line: usize, col: usize) -> bool {
        self.places.contains(&(line, col))
    }

    /// Drop the findings that follow from a schema error.
    pub fn drop_from(&self, diags: &mut Diagnostics) {
        if !self.places.is_empty() {
            diags.0.retain(|d| !self.covers(d));
        }
    }
}

/// A document recovered from its schema errors.
#[derive(Debug)]
pub(crate) struct Recovered<T> {
    pub value: T,
    /// The recovered document (same text; value and positions without the failing parts).
    pub doc: Document,
    pub follow_on: FollowOn,
}

/// Recover `doc` by applying `fixes` (from its schema check) and those found after them;
/// `None` when the document cannot be recovered (its root would have to go).
pub(crate) fn recover<T: DeserializeOwned>(
    kind: SchemaKind,
    doc: &Document,
    mut fixes: Vec<Fix>,
) -> Option<Recovered<T>> {
    let mut doc = doc.clone();
    let mut follow_on = FollowOn::default();
    let mut inserted: BTreeSet<(String, String)> = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        if fixes.is_empty() {
            match from_value_or_pointer::<T>(&doc.value) {
                Ok(value) => {
                    return Some(Recovered {
                        value,
                        doc,
                        follow_on,
                    });
                }
                Err(pointer) => fixes.push(Fix::Remove(pointer)),
            }
        }
        // Later array items first, so earlier removals do not shift the pointers of later ones.
        fixes.sort_by(|a, b| pointer_order(b.pointer(), a.pointer()));
        fixes.dedup();
        for fix in std::mem::take(&mut fixes) {
            let fix = match fix {
                // A placeholder that did not satisfy the schema the first time: remove the
                // mapping instead of trying again.
                Fix::Insert { pointer, key, .. }
                    if inserted.contains(&(pointer.clone(), key.clone())) =>
                {
                    Fix::Remove(pointer)
                }
                Fix::Insert {
                    pointer,
                    key,
                    value,
                } => {
                    inserted.insert((pointer.clone(), key.clone()));
                    Fix::Insert {
                        pointer,
                        key,
                        value,
                    }
                }
                other => other,
            };
            if !apply(&mut doc, &fix, &mut follow_on) {
                return None;
            }
        }
        fixes = check(kind, &doc).1;
    }
    None
}

/// Pointer order with array indices compared as numbers.
fn pointer_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |p: &str| -> Vec<(u64, String)> {
        p.split('/')
            .map(|t| match t.parse::<u64>() {
                Ok(n) => (n, String::new()),
                Err(_) => (u64::MAX, t.to_owned()),
            })
            .collect()
    };
    key(a).cmp(&key(b))
}

fn parent_and_token(pointer: &str) -> Option<(&str, String)> {
    pointer
        .rsplit_once('/')
        .map(|(parent, t)| (parent, unescape_token(t)))
}

/// Apply one fix; false when it would remove the whole document.
fn apply(doc: &mut Document, fix: &Fix, follow_on: &mut FollowOn) -> bool {
    match fix {
        Fix::Remove(pointer) => {
            let Some((parent, token)) = parent_and_token(pointer) else {
                return false;
            };
            follow_on.note(doc, pointer);
            follow_on.note(doc, parent);
            // Entries of a list shift when one goes; only mapping entries keep their pointer.
            if doc.value.pointer(parent).is_some_and(Value::is_object) {
                follow_on.broken.insert(pointer.clone());
            }
            remove(doc, parent, &token);
        }
        Fix::RenameKey { pointer, to } => {
            let Some((parent, from)) = parent_and_token(pointer) else {
                return false;
            };
            if let Some(m) = doc.value.pointer_mut(parent).and_then(Value::as_object_mut)
                && let Some(v) = m.remove(&from)
            {
                m.insert(to.clone(), v);
                let new = format!("{parent}/{}", escape_token(to));
                doc.positions.rekey(|k| {
                    Some(replace_prefix(k, pointer, &new).unwrap_or_else(|| k.to_owned()))
                });
            }
        }
        Fix::Replace { pointer, value } => {
            if let Some(v) = doc.value.pointer_mut(pointer) {
                *v = value.clone();
            }
        }
        Fix::Insert {
            pointer,
            key,
            value,
        } => {
            follow_on.note(doc, pointer);
            follow_on
                .broken
                .insert(format!("{pointer}/{}", escape_token(key)));
            match doc
                .value
                .pointer_mut(pointer)
                .and_then(Value::as_object_mut)
            {
                Some(m) => {
                    m.insert(key.clone(), value.clone());
                }
                None => return false,
            }
        }
    }
    true
}

/// `k` with the prefix `old` (a whole pointer or a pointer of an ancestor) replaced by `new`.
fn replace_prefix(k: &str, old: &str, new: &str) -> Option<String> {
    let rest = k.strip_prefix(old)?;
    (rest.is_empty() || rest.starts_with('/')).then(|| format!("{new}{rest}"))
}

/// Remove the child `token` of the node at `parent`, shifting the positions of later items
/// when the parent is a list.
fn remove(doc: &mut Document, parent: &str, token: &str) {
    let pointer = format!("{parent}/{}", escape_token(token));
    match doc.value.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(token);
            doc.positions.rekey(|k| {
                replace_prefix(k, &pointer, "")
                    .is_none()
                    .then(|| k.to_owned())
            });
        }
        Some(Value::Array(a)) => {
            let Ok(i) = token.parse::<usize>() else {
                return;
            };
            if i >= a.len() {
                return;
            }
            a.remove(i);
            let items = format!("{parent}/");
            doc.positions.rekey(|k| {
                let Some(rest) = k.strip_prefix(&items) else {
                    return Some(k.to_owned());
                };
                let (index, tail) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
                match index.parse::<usize>() {
                    Ok(j) if j == i => None,
                    Ok(j) if j > i => Some(if tail.is_empty() {
                        format!("{items}{}", j - 1)
                    } else {
                        format!("{items}{}/{tail}", j - 1)
                    }),
                    _ => Some(k.to_owned()),
                }
            });
        }
        _ => {}
    }
}
