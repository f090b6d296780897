//! A dataset: a database described once (tables, identities, references, data categories,
//! erasure), from which the access traversal and the erasure order are derived.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SetValue;

/// Most rows one derived step may reach in one table unless the dataset says otherwise.
pub const DEFAULT_DATASET_MAX_ROWS: u64 = 10_000;

/// A database described once: dsrctl derives the access traversal (breadth first from the
/// identity columns along the references) and the erasure (the same rows, children first in
/// foreign-key order) as ordinary steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The tables by name (optionally `schema.table`).
    pub tables: BTreeMap<String, DatasetTable>,
    /// Foreign keys: `orders.customer_id -> customer.id`, or
    /// `{ from: orders.customer_id, to: customer.id, traverse: false }`. A column's own
    /// `references` says the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceEntry>,
    /// The bound on fan-out: most rows a derived step may reach in one table (default
    /// 10000). A mutation that would change more rolls back and fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_rows: Option<u64>,
}

impl Dataset {
    /// The fan-out bound.
    pub fn max_rows(&self) -> u64 {
        self.max_rows.unwrap_or(DEFAULT_DATASET_MAX_ROWS)
    }
}

/// One table of a dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetTable {
    /// What the table holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Primary key column(s) (default `id`): masked rows are read back by it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// The columns by name: `{}` (or nothing) for a column that holds no personal data, a
    /// data category as text (`user.contact.email`), or the column's description.
    #[serde(default)]
    pub columns: BTreeMap<String, Option<ColumnEntry>>,
    /// What erasure does to the subject's rows: `delete` (the default), `mask` (the columns
    /// with a category, as `erasure` in dsrctl.yaml or the column says), or
    /// `{ keep: <legal reason> }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure: Option<TableErasure>,
    /// A row of this table also referenced by another subject's rows (an address on someone
    /// else's order): `keep` it and report it (the default), or `erase` it anyway.
    #[serde(default, skip_serializing_if = "SharedRows::is_keep")]
    pub shared_rows: SharedRows,
    /// Marks a table drafted by `dsrctl dataset introspect` whose description a person
    /// should check; validate warns until it is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

impl DatasetTable {
    /// The primary key columns.
    pub fn key_columns(&self) -> Vec<String> {
        if self.key.is_empty() {
            vec!["id".to_owned()]
        } else {
            self.key.clone()
        }
    }

    /// The column's description (none for a plain column).
    pub fn column(&self, name: &str) -> Option<DatasetColumn> {
        self.columns.get(name).map(|c| match c {
            None => DatasetColumn::default(),
            Some(ColumnEntry::Category(cat)) => DatasetColumn {
                category: Some(cat.clone()),
                ..DatasetColumn::default()
            },
            Some(ColumnEntry::Column(c)) => c.clone(),
        })
    }

    /// Every column with its description, by name.
    pub fn described_columns(&self) -> Vec<(String, DatasetColumn)> {
        self.columns
            .keys()
            .filter_map(|k| self.column(k).map(|c| (k.clone(), c)))
            .collect()
    }

    /// The erasure, `delete` when not said.
    pub fn erasure(&self) -> TableErasure {
        self.erasure
            .clone()
            .unwrap_or(TableErasure::Mode(ErasureMode::Delete))
    }
}

/// A column: a data category as text, or its full description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ColumnEntry {
    /// The column's data category, e.g. `user.contact.email`.
    Category(String),
    /// The column's full description.
    Column(DatasetColumn),
}

/// One column of a dataset table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetColumn {
    /// The personal data category the column holds, e.g. `user.contact.email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The subject identity the column holds (`email`, `customer_number`, ...): the
    /// traversal starts at rows whose value equals the request's identity, compared exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The column this one references, `table.column` (same as a `references` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
    /// How erasure masks this column, overriding `erasure` in dsrctl.yaml for its category:
    /// a masking strategy (`{ mask: hash }`) or a literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure: Option<SetValue>,
    /// Marks a guess of `dsrctl dataset introspect` (the category, the identity) a person
    /// should check; validate warns until it is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
    /// `false`: the column holds no personal data although its name or type looks so (a
    /// product's `name`, a shop's `email`), so `dsrctl coverage` no longer asks for its
    /// category. Not together with a `category` or an `identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<bool>,
}

impl DatasetColumn {
    /// Whether the column is declared to hold no personal data (`personal: false`).
    pub fn not_personal(&self) -> bool {
        self.personal == Some(false)
    }
}

/// What erasure does to a table's rows of the subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TableErasure {
    /// Delete the rows, or mask their categorised columns.
    Mode(ErasureMode),
    /// Keep the rows, for a stated legal reason shown in every report.
    Keep(KeepRows),
}

/// Delete or mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureMode {
    /// Delete the rows (after the rows that reference them).
    Delete,
    /// Mask the columns that have a category, keeping the rows.
    Mask,
}

/// Rows kept on erasure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepRows {
    /// The legal reason, e.g. `invoices: 10 years (tax law)`.
    #[schemars(length(min = 1))]
    pub keep: String,
}

/// What happens to a row shared with another subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SharedRows {
    /// Keep it and report it.
    #[default]
    Keep,
    /// Erase it anyway.
    Erase,
}

impl SharedRows {
    /// Whether this is the default.
    pub fn is_keep(&self) -> bool {
        *self == SharedRows::Keep
    }
}

/// A foreign key, as text or structured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ReferenceEntry {
    /// `child_table.column -> parent_table.column`.
    Text(#[schemars(regex(pattern = r"^\S+\.\S+\s*->\s*\S+\.\S+$"))] String),
    /// The structured form.
    Full(Reference),
}

/// A foreign key from one column to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// The referencing column, `table.column`.
    pub from: String,
    /// The referenced column, `table.column`.
    pub to: String,
    /// Whether the traversal follows it (default true; false for a self-reference). A
    /// reference not followed is detached on erasure: its column is set to NULL in the rows
    /// that point at an erased row, before that row is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traverse: Option<bool>,
}

impl ReferenceEntry {
    /// The structured form; `None` when the text is not `a.b -> c.d`.
    pub fn resolve(&self) -> Option<Reference> {
        match self {
            ReferenceEntry::Full(r) => Some(r.clone()),
            ReferenceEntry::Text(t) => {
                let (from, to) = t.split_once("->")?;
                Some(Reference {
                    from: from.trim().to_owned(),
                    to: to.trim().to_owned(),
                    traverse: None,
                })
            }
        }
    }
}

/// `table.column` split at its last dot (a table may be `schema.table`).
pub fn split_column_ref(s: &str) -> Option<(&str, &str)> {
    let (t, c) = s.trim().rsplit_once('.')?;
    (!t.is_empty() && !c.is_empty()).then_some((t, c))
}
