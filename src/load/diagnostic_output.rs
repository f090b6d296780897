//! The views of [`Diagnostics`]: human text (rustc style), JSON, SARIF 2.1.0 and GitHub
//! workflow annotations.

use std::fmt::Write as _;

use owo_colors::{OwoColorize, Style};
use serde_json::json;

use super::{Code, Diagnostic, Diagnostics, Severity};

/// Version of the `render_json` document.
pub const DIAGNOSTICS_FORMAT_VERSION: u32 = 1;

fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        text.style(style).to_string()
    } else {
        text.to_owned()
    }
}

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Error => Style::new().red().bold(),
        Severity::Warning => Style::new().yellow().bold(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Diagnostic {
    /// This finding as human text: header, location, source line with a caret, help.
    pub fn render_human(&self, color: bool) -> String {
        let mut out = String::new();
        let sev = severity_style(self.severity);
        let gutter = Style::new().blue().bold();
        let header = format!("{}[{}]", self.severity.as_str(), self.code);
        let _ = writeln!(
            out,
            "{}{} {}",
            paint(&header, sev, color),
            paint(":", Style::new().bold(), color),
            paint(&self.message, Style::new().bold(), color)
        );
        let width = self.line.max(1).to_string().len();
        let pad = " ".repeat(width);
        let location = match (self.line, self.col) {
            (0, _) => self.file.clone(),
            (l, 0) => format!("{}:{l}", self.file),
            (l, c) => format!("{}:{l}:{c}", self.file),
        };
        let _ = writeln!(out, "{pad}{} {location}", paint("-->", gutter, color));
        if let (Some(src), true) = (&self.source_line, self.line > 0) {
            let bar = paint("|", gutter, color);
            let _ = writeln!(out, "{pad} {bar}");
            let num = paint(&self.line.to_string(), gutter, color);
            let _ = writeln!(out, "{num} {bar} {}", src.trim_end());
            // Keep tabs before the column so the caret lines up with the source.
            let prefix: String = src
                .chars()
                .take(self.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(self.len.max(1));
            let label = self
                .label
                .as_deref()
                .map(|l| format!(" {l}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{pad} {bar} {prefix}{}",
                paint(&format!("{carets}{label}"), sev, color)
            );
        } else if let Some(label) = &self.label {
            let _ = writeln!(out, "{pad} {} {label}", paint("=", gutter, color));
        }
        if let Some(help) = &self.help {
            let _ = writeln!(
                out,
                "{pad} {} {} {}",
                paint("=", gutter, color),
                paint("help:", Style::new().bold(), color),
                help
            );
        }
        out
    }
}

impl Diagnostics {
    /// Human text for every finding, a blank line between them, a summary line
    /// (`error: 3 problems in 2 files`) and where to read more about a code (the first
    /// error's). Empty when there are no findings.
    pub fn render_human(&self, color: bool) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        for d in &self.0 {
            out.push_str(&d.render_human(color));
            out.push('\n');
        }
        let files = plural(self.file_count(), "file", "files");
        let summary = if self.has_errors() {
            format!(
                "{}: {} in {files}",
                paint("error", severity_style(Severity::Error), color),
                plural(self.len(), "problem", "problems")
            )
        } else {
            format!(
                "{}: {} in {files}",
                paint("warning", severity_style(Severity::Warning), color),
                plural(self.len(), "warning", "warnings")
            )
        };
        out.push_str(&summary);
        out.push('\n');
        let example = self
            .iter()
            .find(|d| d.severity == Severity::Error)
            .or_else(|| self.0.first())
            .map(|d| d.code);
        if let Some(code) = example {
            let _ = writeln!(out, "for more about a code, try `dsrctl explain {code}`");
        }
        out
    }

    /// A versioned JSON document: counts and every finding.
    pub fn render_json(&self) -> String {
        let errors = self
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let doc = json!({
            "format_version": DIAGNOSTICS_FORMAT_VERSION,
            "errors": errors,
            "warnings": self.len() - errors,
            "diagnostics": self.0,
        });
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    }

    /// A SARIF 2.1.0 log for code scanning. The rules are the whole table of codes (so a
    /// code scanning UI can explain any of them); each result points at its rule.
    pub fn render_sarif(&self) -> String {
        let rules: Vec<_> = Code::ALL.iter().map(|c| sarif_rule(*c)).collect();
        let results: Vec<_> = self
            .iter()
            .map(|d| {
                let text = match &d.help {
                    Some(h) => format!("{}\nhelp: {h}", d.message),
                    None => d.message.clone(),
                };
                let mut physical = json!({ "artifactLocation": { "uri": d.file } });
                if d.line > 0 {
                    let mut region = json!({ "startLine": d.line });
                    if d.col > 0 {
                        region["startColumn"] = json!(d.col);
                        region["endColumn"] = json!(d.col + d.len.max(1));
                    }
                    physical["region"] = region;
                }
                json!({
                    "ruleId": d.code,
                    "ruleIndex": Code::ALL.iter().position(|c| *c == d.code),
                    "level": d.severity.as_str(),
                    "message": { "text": text },
                    "locations": [ { "physicalLocation": physical } ],
                })
            })
            .collect();
        let doc = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [ {
                "tool": { "driver": {
                    "name": "dsrctl",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                } },
                "results": results,
            } ],
        });
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    }

    /// GitHub workflow commands, one line per finding:
    /// `::error file=..,line=..,col=..,title=code::message`.
    pub fn render_github(&self) -> String {
        let mut out = String::new();
        for d in self.iter() {
            let mut props = format!("file={}", escape_property(&d.file));
            if d.line > 0 {
                let _ = write!(props, ",line={}", d.line);
            }
            if d.col > 0 {
                let _ = write!(props, ",col={}", d.col);
            }
            let _ = write!(props, ",title={}", escape_property(d.code.as_str()));
            let text = match &d.help {
                Some(h) => format!("{}\nhelp: {h}", d.message),
                None => d.message.clone(),
            };
            let _ = writeln!(
                out,
                "::{} {props}::{}",
                d.severity.as_str(),
                escape_data(&text)
            );
        }
        out
    }
}

/// A SARIF `reportingDescriptor` for a code: its summary, the first paragraph of its
/// explanation, and the whole explanation as help.
fn sarif_rule(code: Code) -> serde_json::Value {
    let explanation = code.explanation();
    let first = explanation
        .split("\n\n")
        .next()
        .unwrap_or(explanation)
        .replace('\n', " ");
    json!({
        "id": code.as_str(),
        "name": code.as_str(),
        "shortDescription": { "text": code.summary() },
        "fullDescription": { "text": first },
        "help": {
            "text": explanation,
            "markdown": explanation,
        },
    })
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
