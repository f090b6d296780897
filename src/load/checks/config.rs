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
    check_email_connectors(&doc.value, r);
    secrets.sort();
    secrets.dedup();
    secrets
}

/// The settings of `kind: email` connectors that their schema cannot check: the sender is
/// an address, `tls: none` only to this machine, the credentials together.
fn check_email_connectors(config: &Value, r: &mut Report<'_>) {
    for (tenant, t) in config["tenants"].as_object().into_iter().flatten() {
        for (name, c) in t["connectors"].as_object().into_iter().flatten() {
            if c["kind"] != "email" {
                continue;
            }
            let mut settings = c.clone();
            if let Some(m) = settings.as_object_mut() {
                m.remove("kind");
            }
            let Ok(cfg) = serde_json::from_value::<crate::model::EmailConnector>(settings) else {
                continue; // the schema check names what is wrong
            };
            let at = format!(
                "/tenants/{}/connectors/{}",
                escape_token(tenant),
                escape_token(name)
            );
            if let Err(e) = cfg.from.parse::<lettre::message::Mailbox>() {
                r.error(
                    Code::InvalidValue,
                    &format!("{at}/from"),
                    format!("`from` of email connector `{name}` is not an email address ({e})"),
                )
                .help("write an address, e.g. `privacy@example.com` or `Privacy team <privacy@example.com>`");
            }
            if cfg.host.trim().is_empty() {
                r.error(
                    Code::InvalidValue,
                    &format!("{at}/host"),
                    format!("`host` of email connector `{name}` is empty"),
                )
                .help("write the SMTP relay's host name, e.g. `smtp.example.com`");
            }
            if cfg.tls == crate::model::EmailTls::None && !cfg.host_is_loopback() {
                r.error(
                    Code::InvalidValue,
                    &format!("{at}/tls"),
                    format!(
                        "email connector `{name}` would send to `{}` unencrypted, and its messages name data subjects",
                        cfg.host
                    ),
                )
                .help("use `tls: starttls` (port 587) or `tls: tls` (port 465); `none` is only for a relay on this machine");
            }
            if cfg.username.is_some() != cfg.password.is_some() {
                let (key, missing) = if cfg.username.is_some() {
                    ("username", "password")
                } else {
                    ("password", "username")
                };
                r.error(
                    Code::InvalidValue,
                    &format!("{at}/{key}"),
                    format!("email connector `{name}` has a `{key}` but no `{missing}`"),
                )
                .help("give both for SMTP AUTH, or neither for a relay that needs none");
            }
        }
    }
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

/// The keys whose values are secrets or may hold one: those the config schema gives a
/// secret reference (or a URL that may carry a password), and credential headers.
fn secret_keys() -> Vec<String> {
    fn collect(root: &Value, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, p) in m
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if holds_secret(root, p, 0) {
                        out.push(k.clone());
                    }
                }
                for x in m.values() {
                    collect(root, x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect(root, x, out)),
            _ => {}
        }
    }
    let schema = schema_value(SchemaKind::Config);
    let mut keys: Vec<String> = SECRET_HEADERS.iter().map(|h| (*h).to_owned()).collect();
    collect(&schema, &schema, &mut keys);
    keys.sort();
    keys.dedup();
    keys
}

/// Whether a schema node is a secret reference or a choice that includes one.
fn holds_secret(root: &Value, node: &Value, depth: usize) -> bool {
    const MAX_DEPTH: usize = 4;
    let (node, def) = resolve(root, node);
    def == Some(SECRET_REF)
        || (depth < MAX_DEPTH
            && ["anyOf", "oneOf"].iter().any(|k| {
                node.get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|b| holds_secret(root, b, depth + 1)))
            }))
}

/// For a config whose YAML could not be parsed (so its secrets are not known): mask the
/// value after every secret key (`token: ...`) in the source lines of its findings.
pub fn mask_unparsed(diags: &mut Diagnostics, file: &str) {
    let keys = secret_keys();
    for d in diags.0.iter_mut().filter(|d| d.file == file) {
        if let Some(line) = &mut d.source_line {
            *line = mask_after_keys(line, &keys);
        }
    }
}

/// `line` with the value after each `key:` replaced by `*`, up to `,`, `}` or a comment.
fn mask_after_keys(line: &str, keys: &[String]) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    for key in keys {
        let pattern: Vec<char> = format!("{key}:").chars().collect();
        let mut i = 0;
        while i + pattern.len() <= chars.len() {
            let starts_word = i == 0 || matches!(chars[i - 1], ' ' | '{' | ',' | '"' | '\'' | '\t');
            if starts_word && chars[i..i + pattern.len()] == pattern[..] {
                let mut j = i + pattern.len();
                while j < chars.len() && !matches!(chars[j], ',' | '}' | '#') {
                    if !chars[j].is_whitespace() {
                        chars[j] = '*';
                    }
                    j += 1;
                }
                i = j;
            } else {
                i += 1;
            }
        }
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_come_from_the_schema() {
        let keys = secret_keys();
        for k in [
            "token",
            "client_secret",
            "password",
            "url",
            "state",
            "hmac_key",
            "x-api-key",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} in {keys:?}");
        }
        assert!(
            !keys.iter().any(|x| x == "base_url" || x == "client_id"),
            "{keys:?}"
        );
    }

    #[test]
    fn values_after_secret_keys_are_masked() {
        let keys = secret_keys();
        assert_eq!(
            mask_after_keys("  auth: { type: bearer, token: hunter2, x: 1 }", &keys),
            "  auth: { type: bearer, token: *******, x: 1 }"
        );
        assert_eq!(
            mask_after_keys("        url: postgres://u:p@h/db # prod", &keys),
            "        url: ******************* # prod"
        );
        assert_eq!(
            mask_after_keys("  base_url: https://x", &keys),
            "  base_url: https://x"
        );
    }
}
