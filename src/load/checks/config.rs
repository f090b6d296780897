//! Checks on `dsrctl.yaml`: secrets only by reference.

use serde_json::Value;

use super::Report;
use crate::load::Code;
use crate::load::position::escape_token;
use crate::model::ProjectConfig;

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

/// Every check on the config beyond its schema.
pub fn check_config(_config: &ProjectConfig, r: &mut Report<'_>) {
    let doc = r.doc;
    walk(&doc.value, String::new(), r);
}

fn walk(v: &Value, ptr: String, r: &mut Report<'_>) {
    match v {
        Value::String(s) => {
            if let Ok(url) = url::Url::parse(s)
                && url.password().is_some()
            {
                r.error(
                    Code::LiteralSecret,
                    &ptr,
                    "URL contains a password; secrets must not be written in dsrctl.yaml"
                        .to_owned(),
                )
                .help("give the URL by reference: `{ env: VARIABLE }` or `{ file: path }`");
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, format!("{ptr}/{i}"), r);
            }
        }
        Value::Object(m) => {
            let is_headers = ptr.ends_with("/headers");
            for (k, x) in m {
                let child = format!("{ptr}/{}", escape_token(k));
                if is_headers && SECRET_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                    r.error(
                        Code::LiteralSecret,
                        &child,
                        format!("header `{k}` carries a credential written in dsrctl.yaml"),
                    )
                    .help("configure `auth:` with `{ env: VARIABLE }` or `{ file: path }` instead");
                    continue;
                }
                walk(x, child, r);
            }
        }
        _ => {}
    }
}
