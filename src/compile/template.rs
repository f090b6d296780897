//! Safe templating of step actions. Subject values reach a URL path only through `seg`
//! (one encoded path segment), a query through form encoding (done by the connector), an
//! OData string literal through `odata`, and JSON through `json`. Identifiers a service
//! derives from a subject value come from `lower`, `md5`, `sha256` (lower-case hex) and
//! `base64`, which compose: `{{seg (md5 (lower subject.email))}}` is Mailchimp's
//! subscriber hash as one path segment. A SCIM (or Okta search) filter value goes through
//! `scim`, which escapes it as the inside of a JSON string; a SOQL string literal's value
//! through `soql`, which escapes it with backslashes.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, ScopedJson,
};
use std::sync::RwLock;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// Characters left as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A template could not be parsed or rendered.
#[derive(Debug, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct TemplateError {
    /// The template source.
    pub template: String,
    /// What went wrong.
    pub message: String,
    /// The variable that had no value, when that is what went wrong.
    pub missing: Option<String>,
}

/// Most distinct templates kept parsed; past it the cache starts over. Templates come from
/// playbooks, so a project has far fewer.
const MAX_CACHED_TEMPLATES: usize = 4096;

/// Renders action templates with the safety helpers, in strict mode (a missing variable is
/// an error, never an empty string). Each distinct template text is parsed once and kept,
/// named by its own text: a run renders the same few templates thousands of times.
pub struct Renderer {
    registry: RwLock<Handlebars<'static>>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// A renderer with the `seg`, `odata` and `json` helpers, the derivations (`lower`,
    /// `md5`, `sha256`, `base64`) and no HTML escaping.
    pub fn new() -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper("seg", Box::new(seg_helper));
        registry.register_helper("odata", Box::new(odata_helper));
        registry.register_helper("json", Box::new(json_helper));
        for (name, f) in DERIVATIONS {
            registry.register_helper(name, Box::new(Derive { name, f: *f }));
        }
        Renderer {
            registry: RwLock::new(registry),
        }
    }

    /// Renders one template string against a context.
    pub fn render(&self, template: &str, ctx: &Value) -> Result<String, TemplateError> {
        if !template.contains("{{") {
            return Ok(template.to_owned());
        }
        let error = |e: RenderError| TemplateError {
            template: template.to_owned(),
            message: describe(&e),
            missing: match e.reason() {
                RenderErrorReason::MissingVariable(path) => path.clone(),
                _ => None,
            },
        };
        {
            let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
            if registry.has_template(template) {
                return registry.render(template, ctx).map_err(error);
            }
        }
        let mut registry = self.registry.write().unwrap_or_else(|e| e.into_inner());
        if !registry.has_template(template) {
            if registry.get_templates().len() >= MAX_CACHED_TEMPLATES {
                registry.clear_templates();
            }
            registry
                .register_template_string(template, template)
                .map_err(|e| error(e.into()))?;
        }
        registry.render(template, ctx).map_err(error)
    }

    /// Number of parsed templates kept.
    pub fn cached_templates(&self) -> usize {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get_templates()
            .len()
    }

    /// Renders every string inside a JSON value. A string that is exactly one `{{json x}}`
    /// expression becomes the JSON value of `x` rather than a string.
    pub fn render_json(&self, value: &Value, ctx: &Value) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(s) => {
                let rendered = self.render(s, ctx)?;
                if is_whole_json_expression(s) {
                    serde_json::from_str(&rendered).map_err(|e| TemplateError {
                        template: s.clone(),
                        message: format!("`json` produced invalid JSON: {e}"),
                        missing: None,
                    })?
                } else {
                    Value::String(rendered)
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_json(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_json(v, ctx)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }
}

fn is_whole_json_expression(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("{{json ") && t.ends_with("}}") && t.matches("{{").count() == 1
}

fn describe(e: &RenderError) -> String {
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            format!("`{path}` has no value here")
        }
        other => other.to_string(),
    }
}

/// Encodes a value as exactly one URL path segment. Empty, `.` and `..` are refused: they
/// would address a different resource (the collection, or the parent).
pub fn encode_segment(raw: &str) -> Result<String, String> {
    match raw {
        "" => Err("an empty value cannot address a path segment".to_owned()),
        "." | ".." => Err(format!("`{raw}` cannot address a path segment")),
        _ => Ok(utf8_percent_encode(raw, SEGMENT).to_string()),
    }
}

/// Quotes a value for the inside of an OData string literal (`'` doubled).
pub fn odata_literal(raw: &str) -> String {
    raw.replace('\'', "''")
}

fn param_text(h: &Helper, name: &str) -> Result<String, RenderError> {
    let param = h
        .param(0)
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("seg", 0))?;
    match param.value() {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(RenderErrorReason::MissingVariable(Some(
            param
                .relative_path()
                .cloned()
                .unwrap_or_else(|| name.to_owned()),
        ))
        .into()),
        _ => Err(RenderErrorReason::Other(format!(
            "`{name}` needs a single value, got a list or object from `{}`",
            param.relative_path().map(String::as_str).unwrap_or("?")
        ))
        .into()),
    }
}

type Derivation = fn(&str) -> String;

/// Helpers that derive a text from a text; each is a value, so they nest as subexpressions.
const DERIVATIONS: &[(&str, Derivation)] = &[
    ("lower", |s| s.to_lowercase()),
    ("md5", |s| hex::encode(md5::Md5::digest(s.as_bytes()))),
    ("sha256", |s| {
        hex::encode(sha2::Sha256::digest(s.as_bytes()))
    }),
    ("base64", |s| {
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    }),
    ("scim", scim_string),
    ("soql", soql_string),
];

/// The inside of a SCIM filter string (RFC 7644 3.4.2.2: a JSON string): quotes,
/// backslashes and control characters escaped, so the value cannot end the string and add
/// a term. Written between double quotes: `userName eq "{{scim subject.email}}"`.
pub fn scim_string(raw: &str) -> String {
    let quoted = serde_json::Value::String(raw.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// The inside of a SOQL string literal (Salesforce "Quoted String Escape Sequences"): the
/// reserved `'` and `\`, `"` and the control characters SOQL names are escaped with a
/// backslash, any other control character as `\uXXXX`, so the value cannot end the literal
/// and add a condition. Written between single quotes: `Email = '{{soql subject.email}}'`.
/// For `=` only: in a `LIKE` pattern `%` and `_` would still be wildcards.
pub fn soql_string(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

use base64::Engine as _;
use sha2::Digest as _;

/// A derivation helper: one text parameter, one text value.
struct Derive {
    name: &'static str,
    f: Derivation,
}

impl HelperDef for Derive {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let raw = param_text(h, self.name)?;
        Ok(ScopedJson::Derived(Value::String((self.f)(&raw))))
    }
}

fn seg_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let raw = param_text(h, "seg")?;
    let encoded = encode_segment(&raw).map_err(RenderErrorReason::Other)?;
    out.write(&encoded)?;
    Ok(())
}

fn odata_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    out.write(&odata_literal(&param_text(h, "odata")?))?;
    Ok(())
}

fn json_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let param = h
        .param(0)
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("json", 0))?;
    let text = serde_json::to_string(param.value())
        .map_err(|e| RenderErrorReason::Other(e.to_string()))?;
    out.write(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hostile_segments_stay_one_segment() {
        let r = Renderer::new();
        for raw in [
            "a/../../admin",
            "x?y=1",
            "a#frag",
            "o'brien@x.com",
            "ünï/cødé",
            "%2e%2e",
        ] {
            let out = r
                .render(
                    "/users/{{seg subject.email}}",
                    &json!({"subject": {"email": raw}}),
                )
                .unwrap();
            let seg = out.strip_prefix("/users/").unwrap();
            assert!(
                !seg.contains('/') && !seg.contains('?') && !seg.contains('#'),
                "{out}"
            );
            let decoded = percent_encoding::percent_decode_str(seg)
                .decode_utf8()
                .unwrap();
            assert_eq!(decoded, raw);
        }
    }

    #[test]
    fn dot_segments_and_empty_are_refused() {
        let r = Renderer::new();
        for raw in ["", ".", ".."] {
            let err = r
                .render("/u/{{seg subject.id}}", &json!({"subject": {"id": raw}}))
                .unwrap_err();
            assert!(err.message.contains("path segment"), "{}", err.message);
        }
    }

    #[test]
    fn missing_variable_is_an_error_not_empty() {
        let r = Renderer::new();
        let err = r
            .render("/u/{{seg subject.id}}", &json!({"subject": {}}))
            .unwrap_err();
        assert!(err.message.contains("subject.id"), "{}", err.message);
    }

    #[test]
    fn odata_doubles_quotes_and_json_keeps_structure() {
        let r = Renderer::new();
        let ctx = json!({"subject": {"email": "o'brien@x.com"}, "request": {"corrections": {"city": "Köln", "n": 1}}});
        assert_eq!(
            r.render("mail eq '{{odata subject.email}}'", &ctx).unwrap(),
            "mail eq 'o''brien@x.com'"
        );
        let body = r
            .render_json(
                &json!({"patch": "{{json request.corrections}}", "who": "{{subject.email}}"}),
                &ctx,
            )
            .unwrap();
        assert_eq!(
            body,
            json!({"patch": {"city": "Köln", "n": 1}, "who": "o'brien@x.com"})
        );
    }

    #[test]
    fn templates_are_parsed_once_and_render_each_context() {
        let r = Renderer::new();
        for id in ["a", "b/c", "d"] {
            let out = r
                .render("/u/{{seg subject.id}}", &json!({"subject": {"id": id}}))
                .unwrap();
            assert_eq!(out, format!("/u/{}", encode_segment(id).unwrap()));
        }
        assert_eq!(r.render("plain", &json!({})).unwrap(), "plain");
        assert_eq!(r.cached_templates(), 1, "one parse for three renders");
        // A cached template still reports what is missing, and a bad template is an error
        // every time without being kept.
        let err = r
            .render("/u/{{seg subject.id}}", &json!({"subject": {}}))
            .unwrap_err();
        assert_eq!(err.missing.as_deref(), Some("subject.id"));
        for _ in 0..2 {
            let bad = r.render("/u/{{seg subject.id", &json!({})).unwrap_err();
            assert_eq!(bad.template, "/u/{{seg subject.id");
        }
        assert_eq!(r.cached_templates(), 1);
    }

    #[test]
    fn derivations_compose_and_keep_segments_safe() {
        let r = Renderer::new();
        let ctx = json!({"subject": {"email": "Urist.McVankab@Freddiesjokes.com", "id": 7}});
        // Mailchimp's documented example: the MD5 of the lower-cased address.
        assert_eq!(
            r.render("/members/{{seg (md5 (lower subject.email))}}", &ctx)
                .unwrap(),
            "/members/62eeb292278cc15f5817cb78f7790b08"
        );
        assert_eq!(
            r.render("{{sha256 \"abc\"}}", &ctx).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(r.render("{{base64 subject.id}}", &ctx).unwrap(), "Nw==");
        let hostile = json!({"subject": {"email": "x\" or userName sw \"b\\"}});
        assert_eq!(
            r.render("userName eq \"{{scim subject.email}}\"", &hostile)
                .unwrap(),
            r#"userName eq "x\" or userName sw \"b\\""#
        );
        // base64 output may hold `/`: through `seg` it stays one segment.
        let slashy = json!({"subject": {"id": "\u{ff}\u{ff}\u{ff}"}});
        assert_eq!(
            r.render("{{seg (base64 subject.id)}}", &slashy).unwrap(),
            "w7%2FDv8O%2F"
        );
        let err = r
            .render("{{md5 (lower subject.missing)}}", &ctx)
            .unwrap_err();
        assert!(err.message.contains("subject.missing"), "{}", err.message);
    }

    #[test]
    fn soql_keeps_a_hostile_value_one_literal() {
        let r = Renderer::new();
        let hostile = json!({"subject": {"email": "x' OR Email != '\\\"\n\u{1}"}});
        assert_eq!(
            r.render("Email = '{{soql subject.email}}'", &hostile)
                .unwrap(),
            r#"Email = 'x\' OR Email != \'\\\"\n\u0001'"#
        );
        // Nothing but the reserved characters changes.
        assert_eq!(
            soql_string("o.brien+dsr@example.com"),
            "o.brien+dsr@example.com"
        );
    }

    #[test]
    fn long_values_render() {
        let r = Renderer::new();
        let long = "x".repeat(10 * 1024);
        let out = r
            .render("/{{seg subject.id}}", &json!({"subject": {"id": long}}))
            .unwrap();
        assert_eq!(out.len(), 10 * 1024 + 1);
    }
}
