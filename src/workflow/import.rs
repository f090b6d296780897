//! Bulk intake (`dsrctl request import FILE`, `POST /v1/requests/import`): requests from CSV
//! or JSON Lines, recorded in one store transaction.
//!
//! Each row is checked like a request file; a row that is not valid is rejected with its line
//! number and nothing of it is recorded, while the valid rows are recorded all the same. A
//! row's request id is its `id` column when it has one, else derived from the row's content
//! (tenant, kind, identities, ...), so importing the same file again records nothing new.
//!
//! CSV: the header names each column. `id`, `kind`, `tenant`, `jurisdiction`, `received`,
//! `note`, `name` and `language` are the request's fields; `corrections.FIELD` a correction;
//! every other column (or `subject.NAME`) an identity of the subject, e.g. `email`,
//! `object_id`; a column named twice gives a list. Empty cells are left out.
//! JSON Lines: one request object per line, as `POST /v1/requests` takes it.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Workflow, WorkflowError};
use crate::model::Request;
use crate::store::RequestImport;

/// The format of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

/// A row as read: its line number, and its request document or why it could not be read.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// Line number in the file (from 1; a CSV row's first line).
    pub line: u64,
    /// The request's fields as JSON, or why the row is unreadable.
    pub doc: Result<Map<String, Value>, String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows read.
    pub rows: usize,
    /// Ids of the requests recorded now.
    pub created: Vec<String>,
    /// Ids already recorded before (an earlier import of the same rows).
    pub existing: Vec<String>,
    /// Rows repeating an earlier row of the same file: `(line, line of the first)`.
    pub repeated: Vec<(u64, u64)>,
    /// Rows rejected: `(line, why)`.
    pub rejected: Vec<(u64, String)>,
}

/// Reads the rows of an import. A file that cannot be read at all (no CSV header) is an
/// error; a row that cannot be read is a rejected row.
pub fn read_rows(bytes: &[u8], format: ImportFormat) -> Result<Vec<ImportRow>, WorkflowError> {
    match format {
        ImportFormat::JsonLines => Ok(bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .map(|(i, l)| ImportRow {
                line: i as u64 + 1,
                doc: match serde_json::from_slice::<Value>(l) {
                    Ok(Value::Object(m)) => Ok(m),
                    Ok(_) => Err("a line must be one JSON object".to_owned()),
                    Err(e) => Err(format!("not JSON: {e}")),
                },
            })
            .collect()),
        ImportFormat::Csv => csv_rows(bytes),
    }
}

const FIELDS: [&str; 8] = [
    "id",
    "kind",
    "tenant",
    "jurisdiction",
    "received",
    "note",
    "name",
    "language",
];

fn csv_rows(bytes: &[u8]) -> Result<Vec<ImportRow>, WorkflowError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| WorkflowError::Import(format!("the CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if !header.iter().any(|h| h == "kind") {
        return Err(WorkflowError::Import(
            "the CSV header has no `kind` column; name the columns, e.g. `id,kind,tenant,email`"
                .to_owned(),
        ));
    }
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                let doc = if record.len() != header.len() {
                    Err(format!(
                        "{} field(s) where the header names {}",
                        record.len(),
                        header.len()
                    ))
                } else {
                    Ok(csv_doc(&header, &record))
                };
                rows.push(ImportRow { line, doc });
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                rows.push(ImportRow {
                    line,
                    doc: Err(format!("unreadable CSV: {e}")),
                });
            }
        }
    }
    Ok(rows)
}

fn csv_doc(header: &[String], record: &csv::StringRecord) -> Map<String, Value> {
    let mut doc = Map::new();
    let mut subject: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut corrections = Map::new();
    for (name, cell) in header.iter().zip(record.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        if FIELDS.contains(&name.as_str()) {
            doc.insert(name.clone(), json!(cell));
        } else if let Some(field) = name.strip_prefix("corrections.") {
            corrections.insert(field.to_owned(), json!(cell));
        } else {
            let identity = name.strip_prefix("subject.").unwrap_or(name);
            subject
                .entry(identity.to_owned())
                .or_default()
                .push(cell.to_owned());
        }
    }
    let subject: Map<String, Value> = subject
        .into_iter()
        .map(|(k, mut v)| {
            let value = if v.len() == 1 {
                json!(v.remove(0))
            } else {
                json!(v)
            };
            (k, value)
        })
        .collect();
    doc.insert("subject".to_owned(), Value::Object(subject));
    if !corrections.is_empty() {
        doc.insert("corrections".to_owned(), Value::Object(corrections));
    }
    doc
}

/// The id of a row without one: derived from its content, so the same row always gets it.
fn row_id(doc: &Map<String, Value>) -> String {
    // `serde_json`'s maps keep insertion order; sort the keys so column order does not count.
    let sorted: BTreeMap<&String, &Value> = doc.iter().collect();
    let text = serde_json::to_string(&sorted).unwrap_or_default();
    format!("r-{}", &hex::encode(Sha256::digest(text.as_bytes()))[..24])
}

impl Workflow {
    /// Checks each row like a request file and records the valid ones in one store
    /// transaction, each with its audit entries (`request.received` by `actor`, and
    /// `request.approved` by intake when the approval rule approves it). `default_tenant`
    /// fills a row without one; `may_use` says whether the caller may record requests of a
    /// tenant (a row of another is rejected).
    pub async fn import(
        &self,
        rows: Vec<ImportRow>,
        default_tenant: Option<&str>,
        may_use: impl Fn(&str) -> bool,
        actor: Option<&str>,
    ) -> Result<ImportReport, WorkflowError> {
        let mut report = ImportReport {
            rows: rows.len(),
            ..ImportReport::default()
        };
        let mut batch: Vec<RequestImport> = Vec::new();
        let mut first_line: HashMap<String, u64> = HashMap::new();
        for row in rows {
            let request = match self.import_row(row.doc, default_tenant, &may_use) {
                Ok(r) => r,
                Err(why) => {
                    report.rejected.push((row.line, why));
                    continue;
                }
            };
            if let Some(first) = first_line.get(&request.id) {
                report.repeated.push((row.line, *first));
                continue;
            }
            first_line.insert(request.id.clone(), row.line);
            batch.push(self.intake(request, actor, true).1);
        }
        let recorded = self.store().import_requests(&batch).await?;
        for (r, new) in batch.into_iter().zip(recorded) {
            if new {
                report.created.push(r.request.id);
            } else {
                report.existing.push(r.request.id);
            }
        }
        Ok(report)
    }

    fn import_row(
        &self,
        doc: Result<Map<String, Value>, String>,
        default_tenant: Option<&str>,
        may_use: &impl Fn(&str) -> bool,
    ) -> Result<Request, String> {
        let mut doc = doc?;
        if !doc.contains_key("tenant") {
            match default_tenant {
                Some(t) => {
                    doc.insert("tenant".to_owned(), json!(t));
                }
                None => return Err("no `tenant` (give the column, or a default tenant)".into()),
            }
        }
        let tenant = doc
            .get("tenant")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !may_use(&tenant) {
            return Err(format!(
                "tenant `{tenant}` is not one this import may record"
            ));
        }
        self.known_tenant(&tenant).map_err(|e| e.to_string())?;
        if !doc.contains_key("id") {
            let id = row_id(&doc);
            doc.insert("id".to_owned(), json!(id));
        }
        if let Some(id) = doc.get("id").and_then(Value::as_str) {
            super::intake::reject_reserved_id(id).map_err(|e| e.to_string())?;
        }
        let text = serde_json::to_string(&doc).map_err(|e| e.to_string())?;
        crate::load::load_request_str("(row)", &text).map_err(|d| {
            d.iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}
