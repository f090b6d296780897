//! A live schema as the checks of `coverage` and the drafts of `dataset introspect` see it,
//! kept apart from the connector that read it (loading never talks to a database).

use std::collections::BTreeMap;

/// Tables and foreign keys as the database has them now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveView {
    /// Tables by name.
    pub tables: BTreeMap<String, LiveTableView>,
    /// Foreign keys, one per column pair.
    pub foreign_keys: Vec<LiveReference>,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveTableView {
    /// Column name and type, in order.
    pub columns: Vec<(String, String)>,
    /// Primary key columns.
    pub key: Vec<String>,
}

/// One column pair of a foreign key.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveReference {
    /// `table.column` referencing.
    pub from: String,
    /// `table.column` referenced.
    pub to: String,
    /// Whether it is one pair of a composite key.
    pub composite: bool,
}
