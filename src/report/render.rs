//! Rendering a [`RunView`] through handlebars templates in strict mode.

use std::path::Path;

use handlebars::Handlebars;
use serde_json::Value;

use super::RunView;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// The evidence report for auditors (counts only, no subject values).
    Evidence,
    /// The response letter to the data subject.
    Letter,
    /// The run summary for CI job summaries (Markdown only).
    Summary,
}

impl ReportKind {
    fn stem(self) -> &'static str {
        match self {
            ReportKind::Evidence => "evidence",
            ReportKind::Letter => "letter",
            ReportKind::Summary => "summary",
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown.
    Markdown,
    /// Self-contained HTML.
    Html,
    /// JSON (evidence only; produced from the view model, not a template).
    Json,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Json => "json",
        }
    }
}

/// Report rendering errors.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report does not exist in that format.
    #[error("the {kind} report has no {format} format; available: {available}")]
    Unsupported {
        /// Report kind.
        kind: &'static str,
        /// Requested format.
        format: &'static str,
        /// Formats that exist.
        available: &'static str,
    },
    /// A template could not be parsed.
    #[error("template `{name}` is invalid: {message}")]
    TemplateSyntax {
        /// Template file name.
        name: String,
        /// Parser message with position.
        message: String,
    },
    /// A template failed while rendering (strict mode: a name it uses does not exist).
    #[error("template `{name}` failed to render: {message}")]
    Render {
        /// Template file name.
        name: String,
        /// What failed.
        message: String,
    },
    /// No template by that name, built in or in the template directory.
    #[error("no template `{name}`; built-in templates: {available}")]
    UnknownTemplate {
        /// Requested name.
        name: String,
        /// Built-in names.
        available: String,
    },
    /// An override file could not be read.
    #[error("cannot read template {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The view could not be serialised.
    #[error("cannot serialise the report: {0}")]
    Json(#[from] serde_json::Error),
}

const BUILTIN: &[(&str, &str)] = &[
    (
        "evidence.md.hbs",
        include_str!("../../templates/evidence.md.hbs"),
    ),
    (
        "evidence.html.hbs",
        include_str!("../../templates/evidence.html.hbs"),
    ),
    (
        "letter.md.hbs",
        include_str!("../../templates/letter.md.hbs"),
    ),
    (
        "letter.html.hbs",
        include_str!("../../templates/letter.html.hbs"),
    ),
    (
        "letter.de.md.hbs",
        include_str!("../../templates/letter.de.md.hbs"),
    ),
    (
        "letter.de.html.hbs",
        include_str!("../../templates/letter.de.html.hbs"),
    ),
    (
        "summary.md.hbs",
        include_str!("../../templates/summary.md.hbs"),
    ),
];

/// The text of a built-in template by file name (e.g. `evidence.md.hbs`).
pub fn builtin_template(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Renders a report. JSON evidence is the serialised view; other formats go through the
/// template `<kind>.<md|html>.hbs`, taken from `overrides` when that directory holds a file
/// of that name, else the built-in one.
pub fn render(
    view: &RunView,
    which: ReportKind,
    format: Format,
    overrides: Option<&Path>,
) -> Result<String, ReportError> {
    let unsupported = |available| ReportError::Unsupported {
        kind: which.stem(),
        format: format.extension(),
        available,
    };
    match (which, format) {
        (ReportKind::Evidence, Format::Json) => {
            let mut s = serde_json::to_string_pretty(view)?;
            s.push('\n');
            return Ok(s);
        }
        (ReportKind::Letter, Format::Json) => return Err(unsupported("md, html")),
        (ReportKind::Summary, Format::Json | Format::Html) => return Err(unsupported("md")),
        _ => {}
    }
    let name = format!("{}.{}.hbs", which.stem(), format.extension());
    // A letter in the subject's language where a template for it exists (`letter.de.html.hbs`),
    // built in or in the project's template directory; else English.
    if which == ReportKind::Letter {
        let lang = view
            .request
            .language
            .split(['-', '_'])
            .next()
            .unwrap_or("en")
            .to_ascii_lowercase();
        let localized = format!("{}.{lang}.{}.hbs", which.stem(), format.extension());
        if lang != "en" && template_text(&localized, overrides).is_ok() {
            return render_named(view, &localized, true, overrides);
        }
    }
    render_named(view, &name, which == ReportKind::Letter, overrides)
}

/// Renders a view through a template by file name (`--template NAME`): a file of that name in
/// `overrides` wins over a built-in one. Names ending in `.html.hbs` are HTML-escaped,
/// others Markdown-escaped. `personal` adds the subject's contact address as `recipient`
/// (only for reports to the subject).
pub fn render_named(
    view: &RunView,
    name: &str,
    personal: bool,
    overrides: Option<&Path>,
) -> Result<String, ReportError> {
    let text = template_text(name, overrides)?;
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    if name.ends_with(".html.hbs") {
        hb.register_escape_fn(handlebars::html_escape);
    } else {
        hb.register_escape_fn(markdown_escape);
    }
    hb.register_helper("time", Box::new(time_helper));
    hb.register_template_string(name, text.as_str())
        .map_err(|e| ReportError::TemplateSyntax {
            name: name.to_owned(),
            message: e.to_string(),
        })?;
    let mut data = serde_json::to_value(view)?;
    if let Value::Object(map) = &mut data {
        // The subject's address and name reach letters only.
        let (recipient, name) = if personal {
            (view.recipient.clone(), view.subject_name.clone())
        } else {
            (None, None)
        };
        map.insert(
            "recipient".into(),
            recipient.map_or(Value::Null, Value::String),
        );
        map.insert(
            "subject_name".into(),
            name.map_or(Value::Null, Value::String),
        );
    }
    hb.render(name, &data).map_err(|e| ReportError::Render {
        name: name.to_owned(),
        message: e.to_string(),
    })
}

handlebars::handlebars_helper!(time_helper: |at: str| readable_time(at));

/// A stored timestamp (RFC 3339) as people read it in a report: to the second, in UTC.
fn readable_time(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_owned())
}

fn template_text(name: &str, overrides: Option<&Path>) -> Result<String, ReportError> {
    // A name with a path separator would escape the template directory.
    let plain = !name.contains(['/', '\\']) && name != ".." && !name.is_empty();
    if let (Some(dir), true) = (overrides, plain) {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => return Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ReportError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
    }
    builtin_template(name)
        .map(str::to_owned)
        .ok_or_else(|| ReportError::UnknownTemplate {
            name: name.to_owned(),
            available: BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Escapes text for Markdown: characters that would start markup or break a table cell,
/// raw HTML, and line breaks (a value stays on its line).
fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '|' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod time_tests {
    use super::readable_time;

    #[test]
    fn timestamps_read_to_the_second_in_utc() {
        assert_eq!(
            readable_time("2026-11-23T04:42:27.123456789Z"),
            "2026-11-23 04:42:27 UTC"
        );
        assert_eq!(
            readable_time("2026-11-23T06:42:27+02:00"),
            "2026-11-23 04:42:27 UTC"
        );
        // Not a timestamp: shown as it is rather than hidden.
        assert_eq!(readable_time("soon"), "soon");
    }
}
