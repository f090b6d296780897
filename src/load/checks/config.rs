//! Checks on `dsrctl.yaml`: secrets only by reference, and never echoed.
//!
//! The walk follows the config's JSON Schema alongside the document as written (before any
//! recovery from schema errors), so a string where a secret reference (`SecretRef`) belongs
//! is named a literal secret wherever it is, whatever else is wrong with the file.

use serde_json::Value;

use super::Report;
use crate::load::position::escape_token;
use crate::load::schema::{SchemaKind, schema_value};
use crate::load::shape::resolve;
use crate::load::{Code, Diagnostics};

/// Header names whose values are credentials.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "apikey",
    "ocp-apim-subscription-key",
    "cookie",
];

/// The schema definition of a secret reference.
const SECRET_REF: &str = "SecretRef";

/// What the message and help say.
const REFERENCES: &str = "secrets must be references: `{ env: NAME }` or `{ file: PATH }`";
const MOVE_IT: &str = "put the value in an environment variable or a file outside git and refer \
                       to it; rotate the secret, it is in the file's history";

/// Every check on the config as written; returns the secret values found, which no output
/// may show (see [`redact`]).
pub fn check_config(r: &mut Report<'_>) -> Vec<String> {
    let schema = schema_value(SchemaKind::Config);
    let mut secrets = Vec::new();
    let doc = r.doc;
    walk(
        &schema,
        Some(&schema),
        &doc.value,
        String::new(),
        r,
        &mut secrets,
    );
    secrets.sort();
    secrets.dedup();
    secrets
}

fn literal(ptr: &str, value: &str, r: &mut Report<'_>, secrets: &mut Vec<String>, message: String) {
    secrets.push(value.to_owned());
    r.error(Code::LiteralSecret, ptr, message).help(MOVE_IT);
}

/// The name of a mapping entry for messages (`token`, `x-api-key`).
fn name_of(ptr: &str) -> String {
    crate::load::position::last_token(ptr)
}

fn walk(
    root: &Value,
    schema: Option<&Value>,
    v: &Value,
    ptr: String,
    r: &mut Report<'_>,
    secrets: &mut Vec<String>,
) {
    let (node, def) = match schema {
        Some(s) => {
            let (n, def) = resolve(root, s);
            (Some(n), def)
        }
        None => (None, None),
    };
    match v {
        Value::String(s) => {
            if def == Some(SECRET_REF) && !s.is_empty() {
                let msg = format!("`{}` is written literally; {REFERENCES}", name_of(&ptr));
                literal(&ptr, s, r, secrets, msg);
            } else if let Ok(url) = url::Url::parse(s)
                && url.password().is_some()
            {
                let msg = format!(
                    "the URL in `{}` holds a password; {REFERENCES}",
                    name_of(&ptr)
                );
                literal(&ptr, s, r, secrets, msg);
            }
        }
        Value::Number(n) if def == Some(SECRET_REF) => {
            let msg = format!("`{}` is written literally; {REFERENCES}", name_of(&ptr));
            literal(&ptr, &n.to_string(), r, secrets, msg);
        }
        Value::Array(a) => {
            let items = node.and_then(|n| n.get("items"));
            for (i, x) in a.iter().enumerate() {
                walk(root, items, x, format!("{ptr}/{i}"), r, secrets);
            }
        }
        Value::Object(m) => {
            let branch = node.map(|n| branch_for(root, n, m));
            let is_headers = ptr.ends_with("/headers");
            for (k, x) in m {
                let child = format!("{ptr}/{}", escape_token(k));
                if is_headers && SECRET_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                    if let Some(s) = x.as_str() {
                        secrets.push(s.to_owned());
                        r.error(
                            Code::LiteralSecret,
                            &child,
                            format!("header `{k}` holds a credential written literally; {REFERENCES}"),
                        )
                        .help(
                            "configure `auth:` instead (`type: api_key` names the header), with the \
                             secret by reference; rotate it, it is in the file's history",
                        );
                    }
                    continue;
                }
                let sub = branch.and_then(|b| {
                    b.get("properties")
                        .and_then(|p| p.get(k))
                        .or_else(|| b.get("additionalProperties").filter(|a| a.is_object()))
                });
                walk(root, sub, x, child, r, secrets);
            }
        }
        _ => {}
    }
}

/// The schema object describing a mapping: for a choice (`oneOf`/`anyOf`), the branch whose
/// tag (`kind: sql`, `type: bearer`) the mapping carries, else the first branch that is a
/// mapping with properties.
fn branch_for<'a>(
    root: &'a Value,
    node: &'a Value,
    m: &serde_json::Map<String, Value>,
) -> &'a Value {
    let Some(branches) = node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Value::as_array)
    else {
        return node;
    };
    let objects: Vec<&Value> = branches
        .iter()
        .map(|b| resolve(root, b).0)
        .filter(|b| b.get("properties").is_some())
        .collect();
    let tagged = objects.iter().find(|b| {
        b.get("properties")
            .and_then(Value::as_object)
            .is_some_and(|props| {
                props
                    .iter()
                    .any(|(k, p)| p.get("const").is_some_and(|c| m.get(k) == Some(c)))
            })
    });
    tagged.or(objects.first()).copied().unwrap_or(node)
}

/// Replace every secret value in the findings about `file` (message, help, label, key and
/// source line) by as many `*`, so no output format shows it and carets stay aligned.
pub fn redact(diags: &mut Diagnostics, file: &str, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    let hide = |s: &str| -> String {
        let mut out = s.to_owned();
        for secret in secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), &"*".repeat(secret.chars().count()));
            }
        }
        out
    };
    for d in diags.0.iter_mut().filter(|d| d.file == file) {
        d.message = hide(&d.message);
        for text in [&mut d.help, &mut d.label, &mut d.key, &mut d.source_line]
            .into_iter()
            .flatten()
        {
            *text = hide(text);
        }
    }
}
