//! What the language server knows about a file, as plain functions of the text: the
//! findings of `validate` over the editor's unsaved buffers, the schema description of the
//! key under the cursor, completions, and where a step named in `needs`/`after`/`same_as` is
//! defined. No protocol here (see `server.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;

use serde_json::Value;

use crate::load::{
    CONFIG_FILE, Cache, Diagnostics, FsSource, SchemaKind, Source, parse_yaml, schema_value,
    validate_project_with,
};
use crate::model::DsrKind;

/// The working tree with the editor's open buffers over it: what is typed counts before it
/// is saved.
pub struct Overlay {
    /// The project on disk.
    pub fs: FsSource,
    /// Open buffers by root-relative path.
    pub open: HashMap<String, String>,
}

impl Source for Overlay {
    fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        match self.open.get(rel) {
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => self.fs.read(rel),
        }
    }

    fn stamp(&self, rel: &str) -> Option<crate::load::Stamp> {
        // An open buffer has no stamp: its text is hashed each time.
        if self.open.contains_key(rel) {
            return None;
        }
        self.fs.stamp(rel)
    }

    fn list_yaml(&self, rel_dir: &str) -> io::Result<Vec<String>> {
        let listed = self.fs.list_yaml(rel_dir);
        let prefix = format!("{}/", rel_dir.trim_end_matches('/'));
        let unsaved = self.open.keys().filter(|k| {
            crate::load::is_yaml_name(k) && (rel_dir.is_empty() || k.starts_with(&prefix))
        });
        let mut all: BTreeSet<String> = match listed {
            Ok(l) => l.into_iter().collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(e),
        };
        all.extend(unsaved.cloned());
        Ok(all.into_iter().collect())
    }
}

/// Every finding of `validate` for the project as the editor has it, by file. Files that
/// did not change since the last call take their findings from `cache` (an edit re-checks
/// the edited buffer and the checks across files, not every playbook).
pub fn findings(overlay: &Overlay, cache: &mut Cache) -> BTreeMap<String, Diagnostics> {
    let mut by_file: BTreeMap<String, Diagnostics> = BTreeMap::new();
    for d in validate_project_with(overlay, Some(cache)).iter() {
        by_file.entry(d.file.clone()).or_default().push(d.clone());
    }
    by_file
}

/// What kind of file `rel` is, for its schema: the config, a request, or a playbook.
pub fn kind_of(rel: &str, text: &str) -> SchemaKind {
    if rel == CONFIG_FILE {
        return SchemaKind::Config;
    }
    let request_like = rel.starts_with("requests/")
        || (text.lines().any(|l| l.starts_with("subject:"))
            && text.lines().any(|l| l.starts_with("kind:")));
    if request_like {
        SchemaKind::Request
    } else {
        SchemaKind::Playbook
    }
}

/// A 0-based place in a text (line, character), as the protocol counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// 0-based line.
    pub line: u32,
    /// 0-based character on the line.
    pub character: u32,
}

/// A span on one line: its start and its width in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Where it starts.
    pub start: At,
    /// Its width.
    pub len: u32,
}

/// The JSON pointer of the key or value under the cursor, and whether it is the key.
fn node_at(doc: &crate::load::Document, at: At) -> Option<(String, bool)> {
    let (line, col) = (at.line as usize + 1, at.character as usize + 1);
    let inside =
        |p: &crate::load::Pos| p.line == line && col >= p.col && col <= p.col + p.len.max(1);
    let mut best: Option<(String, bool)> = None;
    for (pointer, pos) in doc.positions.iter() {
        let hit = if pos.key.as_ref().is_some_and(inside) {
            Some(true)
        } else if inside(&pos.value) {
            Some(false)
        } else {
            None
        };
        if let Some(is_key) = hit
            && best.as_ref().is_none_or(|(b, _)| pointer.len() > b.len())
        {
            best = Some((pointer.to_owned(), is_key));
        }
    }
    best
}

/// The schema's description of the key (or value) under the cursor.
pub fn hover(rel: &str, text: &str, at: At) -> Option<String> {
    let doc = parse_yaml(rel, text.as_bytes()).0?;
    let (pointer, _) = node_at(&doc, at)?;
    let schema = schema_value(kind_of(rel, text));
    let mut node = &schema;
    let mut title = String::from("(document)");
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        node = child(&schema, node, &segment)?;
        title = segment;
    }
    let node = resolve(&schema, node);
    let description = node
        .get("description")
        .and_then(Value::as_str)
        .or_else(|| describe_variants(&schema, node))?;
    Some(format!("**{title}**\n\n{description}"))
}

fn describe_variants<'a>(schema: &'a Value, node: &'a Value) -> Option<&'a str> {
    ["oneOf", "anyOf", "allOf"].iter().find_map(|k| {
        node.get(*k)?
            .as_array()?
            .iter()
            .find_map(|v| resolve(schema, v).get("description")?.as_str())
    })
}

/// A `$ref` followed to its definition.
fn resolve<'a>(schema: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| schema.pointer(p)) {
                Some(target) => node = target,
                None => return node,
            },
            None => return node,
        }
    }
    node
}

/// The schema of `segment` under `node`: a property, a list item, or a map value, also
/// through `oneOf`/`anyOf`/`allOf` variants.
fn child<'a>(schema: &'a Value, node: &'a Value, segment: &str) -> Option<&'a Value> {
    let node = resolve(schema, node);
    if let Some(p) = node.get("properties").and_then(|p| p.get(segment)) {
        return Some(p);
    }
    if segment.parse::<usize>().is_ok()
        && let Some(items) = node.get("items")
    {
        return Some(items);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(variants) = node.get(key).and_then(Value::as_array) {
            for v in variants {
                if let Some(found) = child(schema, v, segment) {
                    return Some(found);
                }
            }
        }
    }
    node.get("additionalProperties").filter(|v| v.is_object())
}

/// One completion: the text to insert and a word on what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The text.
    pub label: String,
    /// What it is (`step`, `connector`, `identity`, ...).
    pub detail: &'static str,
}

/// The template helpers and roots a step's templates may use.
const TEMPLATE_WORDS: &[(&str, &str)] = &[
    ("subject.", "the subject's identities"),
    ("request.id", "the request id"),
    ("request.corrections.", "rectify: the corrected values"),
    ("item", "for_each: the current item"),
    ("seg ", "helper: one URL path segment, escaped"),
    ("odata ", "helper: an OData string literal"),
    ("json ", "helper: the value as JSON"),
    ("lower ", "helper: the text in lower case"),
    (
        "md5 ",
        "helper: the MD5 of the text, lower-case hex (e.g. a subscriber hash)",
    ),
    ("sha256 ", "helper: the SHA-256 of the text, lower-case hex"),
    ("base64 ", "helper: the text in base64"),
    ("scim ", "helper: a SCIM filter string's inside, escaped"),
    ("soql ", "helper: a SOQL string literal's inside, escaped"),
];

/// Completions at the cursor: step ids after `needs`/`after`, connectors after `connector:`,
/// kinds after `same_as`, tenants after `tenant:`, identities and helpers inside `{{ }}`.
pub fn complete(overlay: &Overlay, rel: &str, text: &str, at: At) -> Vec<Completion> {
    let line = text.lines().nth(at.line as usize).unwrap_or("");
    let before: String = line.chars().take(at.character as usize).collect();
    let words = |items: Vec<String>, detail| {
        items
            .into_iter()
            .map(|label| Completion { label, detail })
            .collect::<Vec<_>>()
    };
    if let Some(open) = before.rfind("{{")
        && !before[open..].contains("}}")
    {
        let typed = before[open + 2..].rsplit(' ').next().unwrap_or("");
        if typed.starts_with("subject.") {
            return words(identities(overlay, text), "identity")
                .into_iter()
                .map(|c| Completion {
                    label: format!("subject.{}", c.label),
                    ..c
                })
                .collect();
        }
        let mut out: Vec<Completion> = TEMPLATE_WORDS
            .iter()
            .map(|(w, _)| Completion {
                label: (*w).to_owned(),
                detail: "template",
            })
            .collect();
        out.extend(words(step_ids(text), "step (its captures)"));
        return out;
    }
    let key = before.trim_start().trim_start_matches("- ");
    let in_list_under = |name: &str| {
        key.starts_with(&format!("{name}:"))
            || (before.trim_start().starts_with("- ")
                && enclosing_key(text, at.line as usize).as_deref() == Some(name))
    };
    if in_list_under("needs") || in_list_under("after") {
        return words(step_ids(text), "step");
    }
    if in_list_under("same_as") {
        return words(
            DsrKind::ALL.iter().map(|k| k.as_str().to_owned()).collect(),
            "request kind",
        );
    }
    if key.starts_with("connector:") {
        return words(config_names(overlay, "connectors"), "connector");
    }
    if key.starts_with("tenant:") && kind_of(rel, text) == SchemaKind::Request {
        return words(config_names(overlay, "tenants"), "tenant");
    }
    if key.starts_with("kind:") && kind_of(rel, text) == SchemaKind::Request {
        return words(
            DsrKind::ALL.iter().map(|k| k.as_str().to_owned()).collect(),
            "request kind",
        );
    }
    Vec::new()
}

/// The key of the block a `- item` line belongs to (the nearest line above with less
/// indentation that ends in `:`).
fn enclosing_key(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let own = indent(lines.get(line)?);
    lines[..line].iter().rev().find_map(|l| {
        let t = l.trim_start().trim_start_matches("- ");
        (indent(l) < own && !l.trim().is_empty())
            .then(|| t.split_once(':').map(|(k, _)| k.trim().to_owned()))
            .flatten()
    })
}

/// The step ids defined in a playbook's text (`- id: NAME`).
fn step_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .strip_prefix("- id:")
                .map(|v| v.trim().trim_matches('"').to_owned())
        })
        .filter(|v| !v.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The identities a playbook needs (its `needs_identities`), else the common ones.
fn identities(overlay: &Overlay, text: &str) -> Vec<String> {
    let _ = overlay;
    let doc = parse_yaml("(buffer)", text.as_bytes()).0;
    let listed: Vec<String> = doc
        .as_ref()
        .and_then(|d| d.value.get("needs_identities"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        vec!["email".to_owned(), "phone".to_owned(), "user_id".to_owned()]
    } else {
        listed
    }
}

/// Names under every tenant's `what` (`connectors`) in `dsrctl.yaml`, or the tenants.
fn config_names(overlay: &Overlay, what: &str) -> Vec<String> {
    let Ok(bytes) = overlay.read(CONFIG_FILE) else {
        return Vec::new();
    };
    let Some(doc) = parse_yaml(CONFIG_FILE, &bytes).0 else {
        return Vec::new();
    };
    let Some(tenants) = doc.value.get("tenants").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut names: Vec<String> = if what == "tenants" {
        tenants.keys().cloned().collect()
    } else {
        tenants
            .values()
            .filter_map(|t| t.get(what)?.as_object())
            .flat_map(|m| m.keys().cloned())
            .collect()
    };
    names.sort();
    names.dedup();
    names
}

/// Where the step (or request kind) named under the cursor in `needs`, `after` or
/// `same_as` is defined in the same playbook.
pub fn definition(rel: &str, text: &str, at: At) -> Option<Span> {
    let doc = parse_yaml(rel, text.as_bytes()).0?;
    let (pointer, is_key) = node_at(&doc, at)?;
    if is_key {
        return None;
    }
    let name = doc.value.pointer(&pointer)?.as_str()?;
    let parts: Vec<&str> = pointer.split('/').collect();
    // /dsr/KIND/N/needs/M, /dsr/KIND/N/after, /dsr/KIND/same_as/M
    let field = parts
        .iter()
        .rev()
        .find(|p| p.parse::<usize>().is_err())
        .copied()?;
    let target = match field {
        "needs" | "after" => {
            let kind = parts.get(2)?;
            let steps = doc.value.pointer(&format!("/dsr/{kind}"))?.as_array()?;
            let index = steps
                .iter()
                .position(|s| s.get("id").and_then(Value::as_str) == Some(name))?;
            format!("/dsr/{kind}/{index}/id")
        }
        "same_as" => format!("/dsr/{name}"),
        _ => return None,
    };
    let pos = doc.positions.get(&target)?;
    let p = if field == "same_as" {
        pos.key.unwrap_or(pos.value)
    } else {
        pos.value
    };
    Some(Span {
        start: At {
            line: u32::try_from(p.line.saturating_sub(1)).ok()?,
            character: u32::try_from(p.col.saturating_sub(1)).ok()?,
        },
        len: u32::try_from(p.len.max(1)).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYBOOK: &str = "\
service: crm
connector: api
needs_identities: [email]
dsr:
  access:
    - id: find
      http: { method: GET, path: /contacts }
    - id: drop
      needs: [find]
      http: { method: DELETE, path: \"/c/{{seg subject.email}}\" }
  export: { same_as: [access] }
";

    #[test]
    fn definition_of_a_needed_step_is_its_id() {
        // `find` in `needs: [find]` (line 8, 0-based; the word starts at column 14).
        let span = definition(
            "policies/crm.yaml",
            PLAYBOOK,
            At {
                line: 8,
                character: 15,
            },
        )
        .expect("a definition");
        assert_eq!(
            span.start,
            At {
                line: 5,
                character: 10
            }
        );
        let kind = definition(
            "policies/crm.yaml",
            PLAYBOOK,
            At {
                line: 10,
                character: 23,
            },
        )
        .expect("same_as");
        assert_eq!(kind.start.line, 4);
    }

    #[test]
    fn hover_gives_the_schema_description() {
        let text = hover(
            "policies/crm.yaml",
            PLAYBOOK,
            At {
                line: 8,
                character: 7,
            },
        )
        .expect("hover on needs");
        assert!(text.starts_with("**needs**"), "{text}");
        assert!(text.len() > 20, "{text}");
    }

    #[test]
    fn step_ids_complete_in_needs() {
        let overlay = Overlay {
            fs: FsSource(std::env::temp_dir()),
            open: HashMap::new(),
        };
        let got = complete(
            &overlay,
            "policies/crm.yaml",
            PLAYBOOK,
            At {
                line: 8,
                character: 14,
            },
        );
        let labels: Vec<&str> = got.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["drop", "find"]);
        let inside = complete(
            &overlay,
            "policies/crm.yaml",
            PLAYBOOK,
            At {
                line: 9,
                character: 54,
            },
        );
        assert!(
            inside.iter().any(|c| c.label == "subject.email"),
            "{inside:?}"
        );
    }
}
