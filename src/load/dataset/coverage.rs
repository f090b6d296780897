//! `dsrctl coverage`: a dataset against the live schema it describes. Tables and columns
//! that exist but are not described, described columns that look personal but have no
//! category, and described tables and columns that no longer exist, as findings placed in
//! the playbook, so they render like `validate`'s (human, JSON, SARIF, GitHub).

use super::graph::esc;
use super::guess::guess_category;
use super::live::LiveView;
use crate::load::{Code, Diagnostic, Diagnostics, Severity, parse_yaml};
use crate::model::Dataset;

/// The findings for one dataset playbook (`file`, its text `text`) against `live`.
pub fn coverage(file: &str, text: &str, dataset: &Dataset, live: &LiveView) -> Diagnostics {
    let mut out = Diagnostics::default();
    let doc = parse_yaml(file, text.as_bytes()).0;
    let at = |pointer: &str, on_key: bool| {
        doc.as_ref().map_or((0, 0, 1), |d| {
            let p = if on_key {
                d.positions.key_or_value(pointer)
            } else {
                d.positions.value(pointer)
            };
            (p.line, p.col, p.len)
        })
    };
    let mut push =
        |severity: Severity, code: Code, pointer: &str, message: String, help: String| {
            let (line, col, len) = at(pointer, true);
            let mut d = Diagnostic::new(severity, code, file, line, col, message).with_len(len);
            d.help = Some(help);
            out.push(d);
        };
    for (table, live_table) in &live.tables {
        let Some(described) = dataset.tables.get(table) else {
            let personal: Vec<&str> = live_table
                .columns
                .iter()
                .filter(|(c, ty)| guess_category(c, ty).is_some())
                .map(|(c, _)| c.as_str())
                .collect();
            let why = if personal.is_empty() {
                String::new()
            } else {
                format!(" (columns that look personal: {})", personal.join(", "))
            };
            push(
                Severity::Error,
                Code::UndescribedTable,
                "/dataset/tables",
                format!(
                    "table `{table}` exists in the database but the dataset does not describe it{why}"
                ),
                "describe it under `dataset.tables` (`dsrctl dataset introspect` drafts it), with `erasure: { keep: ... }` if it holds nothing to erase".to_owned(),
            );
            continue;
        };
        let tp = format!("/dataset/tables/{}", esc(table));
        for (column, ty) in &live_table.columns {
            match described.column(column) {
                None => {
                    let guess = guess_category(column, ty);
                    let severity = if guess.is_some() {
                        Severity::Error
                    } else {
                        Severity::Warning
                    };
                    push(
                        severity,
                        Code::UndescribedColumn,
                        &format!("{tp}/columns"),
                        match guess {
                            Some(cat) => format!(
                                "column `{table}.{column}` exists but is not described, and looks personal (`{cat}`?)"
                            ),
                            None => {
                                format!("column `{table}.{column}` exists but is not described")
                            }
                        },
                        format!(
                            "add `{column}:` under `columns` of `{table}`, with its category if it holds personal data"
                        ),
                    );
                }
                Some(c) if c.category.is_none() && c.identity.is_none() && !c.not_personal() => {
                    if let Some(cat) = guess_category(column, ty) {
                        push(
                            Severity::Error,
                            Code::UncategorisedColumn,
                            &format!("{tp}/columns/{}", esc(column)),
                            format!(
                                "column `{table}.{column}` looks personal (`{cat}`?) but has no category, so erasure leaves it as it is"
                            ),
                            format!(
                                "give it a category, e.g. `{column}: {cat}`; if it holds no personal data, say so: `{column}: {{ personal: false }}`"
                            ),
                        );
                    }
                }
                Some(_) => {}
            }
        }
        for column in described.columns.keys() {
            if !live_table.columns.iter().any(|(c, _)| c == column) {
                push(
                    Severity::Error,
                    Code::VanishedColumn,
                    &format!("{tp}/columns/{}", esc(column)),
                    format!(
                        "column `{table}.{column}` is described but no longer exists in the database"
                    ),
                    "remove it from the dataset, or point the dataset at the right database"
                        .to_owned(),
                );
            }
        }
    }
    for table in dataset.tables.keys() {
        if !live.tables.contains_key(table) {
            push(
                Severity::Error,
                Code::VanishedColumn,
                &format!("/dataset/tables/{}", esc(table)),
                format!("table `{table}` is described but does not exist in the database"),
                "remove it from the dataset, or check the table's name (schema-qualified on PostgreSQL)".to_owned(),
            );
        }
    }
    if let Some(doc) = &doc {
        for d in out.0.iter_mut() {
            d.attach_source(&doc.text);
        }
    }
    out.sort();
    out
}
