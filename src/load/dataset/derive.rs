//! Derives ordinary steps from a dataset: the access traversal and the erasure, so that dry
//! run, saved plans, the journal, reports and verification see nothing new.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::graph::{Condition, Edge, Reached, edges, traverse};
use crate::model::{
    DataCategory, Dataset, DsrKind, ErasureMode, KindSpec, Playbook, Reuse, SetValue, SharedRows,
    SqlAction, SqlDelete, SqlSelect, SqlUpdate, SqlValue, Step, TableErasure,
};

/// The masking strategy of a category: the longest configured category it starts with.
pub fn strategy_for<'a>(
    category: &str,
    strategies: &'a BTreeMap<String, SetValue>,
) -> Option<&'a SetValue> {
    strategies
        .iter()
        .filter(|(k, _)| {
            category == k.as_str()
                || category
                    .strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|(k, _)| k.len())
        .map(|(_, v)| v)
}

/// The steps, holds, identities and notes a dataset gives a playbook. Kinds written by hand
/// in `dsr` are kept; the others are filled in.
pub fn expand(p: &mut Playbook, strategies: &BTreeMap<String, SetValue>) {
    let Some(d) = p.dataset.clone() else {
        return;
    };
    let plan = Derivation::new(&d, strategies);
    if p.dsr.access.is_none() {
        p.dsr.access = Some(KindSpec::Steps(plan.access()));
    }
    if p.dsr.delete.is_none() {
        p.dsr.delete = Some(KindSpec::Steps(plan.erasure()));
    }
    if p.dsr.export.is_none() {
        p.dsr.export = Some(KindSpec::Reuse(Reuse {
            same_as: vec![DsrKind::Access],
        }));
    }
    if p.dsr.restrict.is_none() {
        p.dsr.restrict = Some(KindSpec::Reuse(Reuse {
            same_as: vec![DsrKind::Access, DsrKind::Delete],
        }));
    }
    if p.holds.is_empty() {
        for (table, t) in &d.tables {
            for (column, c) in t.described_columns() {
                if let Some(category) = c.category {
                    p.holds.push(DataCategory {
                        category,
                        location: Some(format!("{table}.{column}")),
                        note: None,
                    });
                }
            }
        }
    }
    if p.needs_identities.is_empty() {
        let ids: BTreeSet<String> = d
            .tables
            .values()
            .flat_map(|t| t.described_columns())
            .filter_map(|(_, c)| c.identity)
            .collect();
        p.needs_identities = ids.into_iter().collect();
    }
    for (table, t) in &d.tables {
        if let Some(TableErasure::Keep(k)) = &t.erasure {
            p.notes
                .push(format!("Table `{table}` is kept on erasure: {}", k.keep));
        }
    }
}

/// The traversal of one dataset and the names of its steps.
pub struct Derivation<'a> {
    d: &'a Dataset,
    strategies: &'a BTreeMap<String, SetValue>,
    edges: Vec<Edge>,
    order: Vec<(String, Reached)>,
    ids: BTreeMap<String, String>,
}

impl<'a> Derivation<'a> {
    /// Traverses the dataset.
    pub fn new(d: &'a Dataset, strategies: &'a BTreeMap<String, SetValue>) -> Self {
        let edges = edges(d);
        let order = traverse(d, &edges);
        let mut ids = BTreeMap::new();
        let mut used = BTreeSet::new();
        for table in d.tables.keys() {
            let base = kebab(table);
            let mut id = base.clone();
            let mut n = 2;
            while !used.insert(id.clone()) {
                id = format!("{base}-{n}");
                n += 1;
            }
            ids.insert(table.clone(), id);
        }
        Derivation {
            d,
            strategies,
            edges,
            order,
            ids,
        }
    }

    /// The tables reached, in traversal order.
    pub fn reached(&self) -> &[(String, Reached)] {
        &self.order
    }

    fn reach(&self, table: &str) -> Option<&Reached> {
        self.order.iter().find(|(t, _)| t == table).map(|(_, r)| r)
    }

    fn id(&self, prefix: &str, table: &str) -> String {
        format!(
            "{prefix}-{}",
            self.ids.get(table).cloned().unwrap_or_else(|| kebab(table))
        )
    }

    /// The columns of `table` whose values other steps use.
    fn captured(&self, table: &str, erasure: bool) -> BTreeSet<String> {
        let mut cols: BTreeSet<String> = BTreeSet::new();
        for (_, r) in &self.order {
            for c in &r.conditions {
                if let Condition::Keys {
                    source_table,
                    source_column,
                    ..
                } = c
                    && source_table == table
                {
                    cols.insert(source_column.clone());
                }
            }
        }
        if erasure {
            for e in &self.edges {
                if e.to_table == table && (self.shared_checked(table) || !e.traverse) {
                    cols.insert(e.to_column.clone());
                }
            }
        }
        cols
    }

    /// Whether erasure checks the table's rows for other subjects' references.
    fn shared_checked(&self, table: &str) -> bool {
        let Some(t) = self.d.tables.get(table) else {
            return false;
        };
        t.shared_rows == SharedRows::Keep
            && !matches!(t.erasure(), TableErasure::Keep(_))
            && self.reach(table).is_some_and(Reached::has_upward)
    }

    /// The predicate of a table's subject rows: `where` for one condition, `any` for more.
    fn predicate(
        &self,
        r: &Reached,
        prefix: &str,
    ) -> (BTreeMap<String, SqlValue>, Vec<BTreeMap<String, SqlValue>>) {
        let mut groups: Vec<BTreeMap<String, SqlValue>> = r
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Identity { column, identity } => [(
                    column.clone(),
                    SqlValue::One(Value::String(format!("{{{{subject.{identity}}}}}"))),
                )]
                .into(),
                Condition::Keys {
                    column,
                    source_table,
                    source_column,
                    ..
                } => [(
                    column.clone(),
                    SqlValue::Any(vec![Value::String(format!(
                        "{{{{json {}.{}}}}}",
                        self.id(prefix, source_table),
                        capture_name(source_column)
                    ))]),
                )]
                .into(),
            })
            .collect();
        if groups.len() == 1 {
            (groups.remove(0), Vec::new())
        } else {
            (BTreeMap::new(), groups)
        }
    }

    fn needs_of(&self, r: &Reached, prefix: &str) -> Vec<String> {
        r.sources().iter().map(|t| self.id(prefix, t)).collect()
    }

    fn describe(&self, r: &Reached) -> String {
        let parts: Vec<String> = r
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Identity { column, identity } => {
                    format!("`{column}` is the subject's {identity}")
                }
                Condition::Keys {
                    column,
                    source_table,
                    source_column,
                    ..
                } => format!("`{column}` is the `{source_column}` of a row of `{source_table}`"),
            })
            .collect();
        parts.join(", or ")
    }

    fn read(&self, table: &str, r: &Reached, prefix: &str, erasure: bool) -> Step {
        let (filter, any) = self.predicate(r, prefix);
        let captured = self.captured(table, erasure);
        let key = self
            .d
            .tables
            .get(table)
            .map(|t| t.key_columns())
            .unwrap_or_default();
        let columns = if erasure {
            let mut c: Vec<String> = key.clone();
            c.extend(captured.iter().filter(|x| !key.contains(x)).cloned());
            c
        } else {
            Vec::new()
        };
        let mut step = new_step(
            self.id(prefix, table),
            format!("Rows of `{table}` where {}.", self.describe(r)),
        );
        step.needs = self.needs_of(r, prefix);
        step.sql = Some(sql_select(SqlSelect {
            table: table.to_owned(),
            columns,
            filter,
            through: None,
            any,
            unless: Vec::new(),
            order_by: key,
        }));
        step.capture = captured
            .iter()
            .map(|c| (capture_name(c), format!("/*/{}", pointer_token(c))))
            .collect();
        if !erasure {
            // The package names a collection after the table, without its schema.
            step.collect = Some(table.rsplit('.').next().unwrap_or(table).to_owned());
        }
        step
    }

    /// Access: one read per table reached, collected into the export package.
    pub fn access(&self) -> Vec<Step> {
        self.order
            .iter()
            .map(|(t, r)| self.read(t, r, "read", false))
            .collect()
    }

    /// Erasure: the same rows found first, rows shared with other subjects found and left
    /// out, references not followed detached, then each table deleted or masked, children
    /// before the rows they reference.
    pub fn erasure(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        let max_rows = Some(self.d.max_rows());
        for (table, r) in &self.order {
            if !self.captured(table, true).is_empty() {
                steps.push(self.read(table, r, "find", true));
            }
        }
        // Shared rows: rows of a parent reached from a child that other rows reference too.
        let mut shared: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (table, _) in &self.order {
            if !self.shared_checked(table) {
                continue;
            }
            for e in self
                .edges
                .iter()
                .filter(|e| e.traverse && &e.to_table == table && &e.from_table != table)
            {
                let id = format!(
                    "shared-{}-{}",
                    self.ids.get(table).cloned().unwrap_or_default(),
                    kebab(&format!("{}-{}", e.from_table, e.from_column))
                );
                let mut step = new_step(
                    id.clone(),
                    format!(
                        "Rows of `{table}` that rows of `{}` other than the subject's reference \
                         (through `{}`): shared with someone else, so kept.",
                        e.from_table, e.from_column
                    ),
                );
                let mut needs = vec![self.id("find", table)];
                let unless = match self.reach(&e.from_table) {
                    Some(child) => {
                        let (f, any) = self.predicate(child, "find");
                        needs.extend(self.needs_of(child, "find"));
                        if any.is_empty() { vec![f] } else { any }
                    }
                    None => Vec::new(),
                };
                needs.sort();
                needs.dedup();
                step.needs = needs;
                step.sql = Some(sql_select(SqlSelect {
                    table: e.from_table.clone(),
                    columns: vec![e.from_column.clone()],
                    filter: [(
                        e.from_column.clone(),
                        SqlValue::Any(vec![Value::String(format!(
                            "{{{{json {}.{}}}}}",
                            self.id("find", table),
                            capture_name(&e.to_column)
                        ))]),
                    )]
                    .into(),
                    through: None,
                    any: Vec::new(),
                    unless,
                    order_by: Vec::new(),
                }));
                step.capture = [(
                    "keys".to_owned(),
                    format!("/*/{}", pointer_token(&e.from_column)),
                )]
                .into();
                shared
                    .entry(table.clone())
                    .or_default()
                    .push((id, e.to_column.clone()));
                steps.push(step);
            }
        }
        // References not followed: set to NULL where they point at a row to be deleted.
        let mut detach: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in self.edges.iter().filter(|e| !e.traverse) {
            let deleted = self.reach(&e.to_table).is_some()
                && self.d.tables.get(&e.to_table).is_some_and(|t| {
                    matches!(t.erasure(), TableErasure::Mode(ErasureMode::Delete))
                });
            if !deleted {
                continue;
            }
            let id = format!(
                "detach-{}",
                kebab(&format!("{}-{}", e.from_table, e.from_column))
            );
            let mut step = new_step(
                id.clone(),
                format!(
                    "Set `{}.{}` to NULL where it points at a row of `{}` about to be deleted.",
                    e.from_table, e.from_column, e.to_table
                ),
            );
            step.needs = vec![self.id("find", &e.to_table)];
            step.sql = Some(SqlAction {
                max_rows,
                ..sql_update(SqlUpdate {
                    table: e.from_table.clone(),
                    set: [(e.from_column.clone(), SetValue::Value(Value::Null))].into(),
                    filter: [(
                        e.from_column.clone(),
                        SqlValue::Any(vec![Value::String(format!(
                            "{{{{json {}.{}}}}}",
                            self.id("find", &e.to_table),
                            capture_name(&e.to_column)
                        ))]),
                    )]
                    .into(),
                    through: None,
                    any: Vec::new(),
                    unless: Vec::new(),
                    key: self.key_of(&e.from_table),
                })
            });
            detach.entry(e.to_table.clone()).or_default().push(id);
            steps.push(step);
        }
        // The mutations, children first.
        for (table, r) in &self.order {
            let Some(t) = self.d.tables.get(table) else {
                continue;
            };
            let (filter, any) = self.predicate(r, "find");
            let unless: Vec<BTreeMap<String, SqlValue>> = shared
                .get(table)
                .map(|list| {
                    let mut by_col: BTreeMap<String, Vec<Value>> = BTreeMap::new();
                    for (id, col) in list {
                        by_col
                            .entry(col.clone())
                            .or_default()
                            .push(Value::String(format!("{{{{json {id}.keys}}}}")));
                    }
                    by_col
                        .into_iter()
                        .map(|(c, v)| [(c, SqlValue::Any(v))].into())
                        .collect()
                })
                .unwrap_or_default();
            let mut needs = self.needs_of(r, "find");
            needs.extend(
                shared
                    .get(table)
                    .into_iter()
                    .flatten()
                    .map(|(id, _)| id.clone()),
            );
            needs.extend(detach.get(table).into_iter().flatten().cloned());
            let step = match t.erasure() {
                TableErasure::Keep(_) => continue,
                TableErasure::Mode(ErasureMode::Delete) => {
                    for child in self.children_deleted(table) {
                        needs.push(self.id("erase", &child));
                    }
                    let mut s = new_step(
                        self.id("erase", table),
                        format!("Delete the rows of `{table}` where {}.", self.describe(r)),
                    );
                    s.sql = Some(SqlAction {
                        max_rows,
                        ..sql_delete(SqlDelete {
                            table: table.clone(),
                            filter,
                            through: None,
                            any,
                            unless,
                        })
                    });
                    s
                }
                TableErasure::Mode(ErasureMode::Mask) => {
                    let set = self.masks(table);
                    if set.is_empty() {
                        continue;
                    }
                    let mut s = new_step(
                        self.id("mask", table),
                        format!(
                            "Mask {} of the rows of `{table}` where {}.",
                            set.keys()
                                .map(|c| format!("`{c}`"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            self.describe(r)
                        ),
                    );
                    s.sql = Some(SqlAction {
                        max_rows,
                        ..sql_update(SqlUpdate {
                            table: table.clone(),
                            set,
                            filter,
                            through: None,
                            any,
                            unless,
                            key: self.key_of(table),
                        })
                    });
                    s
                }
            };
            let mut step = step;
            needs.sort();
            needs.dedup();
            step.needs = needs;
            steps.push(step);
        }
        steps
    }

    fn key_of(&self, table: &str) -> Vec<String> {
        self.d
            .tables
            .get(table)
            .map(|t| t.key_columns())
            .unwrap_or_default()
    }

    /// The reached tables deleted by erasure whose rows reference `table` (followed
    /// references): their rows go first.
    pub fn children_deleted(&self, table: &str) -> BTreeSet<String> {
        self.edges
            .iter()
            .filter(|e| e.traverse && e.to_table == table && e.from_table != table)
            .filter(|e| self.reach(&e.from_table).is_some())
            .filter(|e| {
                self.d
                    .tables
                    .get(&e.from_table)
                    .is_some_and(|t| matches!(t.erasure(), TableErasure::Mode(ErasureMode::Delete)))
            })
            .map(|e| e.from_table.clone())
            .collect()
    }

    /// The masks of a masked table: each column with a category, as it or dsrctl.yaml says.
    pub fn masks(&self, table: &str) -> BTreeMap<String, SetValue> {
        let Some(t) = self.d.tables.get(table) else {
            return BTreeMap::new();
        };
        t.described_columns()
            .into_iter()
            .filter_map(|(col, c)| {
                let v = c.erasure.clone().or_else(|| {
                    c.category
                        .as_deref()
                        .and_then(|cat| strategy_for(cat, self.strategies).cloned())
                })?;
                Some((col, v))
            })
            .collect()
    }
}

fn new_step(id: String, description: String) -> Step {
    Step {
        id,
        description: Some(description),
        needs: Vec::new(),
        after: Vec::new(),
        for_each: None,
        connector: None,
        http: None,
        sql: None,
        manual: None,
        wait: None,
        email: None,
        mutates: None,
        idempotent: None,
        select: None,
        capture: BTreeMap::new(),
        absent_on: Vec::new(),
        collect: None,
        preview: None,
        verify: None,
        poll: None,
    }
}

fn empty_sql() -> SqlAction {
    SqlAction {
        select: None,
        update: None,
        delete: None,
        query: None,
        execute: None,
        params: BTreeMap::new(),
        max_rows: None,
        matching: Default::default(),
        guard: None,
    }
}

fn sql_select(s: SqlSelect) -> SqlAction {
    SqlAction {
        select: Some(s),
        ..empty_sql()
    }
}

fn sql_update(u: SqlUpdate) -> SqlAction {
    SqlAction {
        update: Some(u),
        ..empty_sql()
    }
}

fn sql_delete(d: SqlDelete) -> SqlAction {
    SqlAction {
        delete: Some(d),
        ..empty_sql()
    }
}

/// A step-id-safe name: lower case, runs of other characters as one `-`.
pub fn kebab(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// A capture name for a column: letters, digits and `_`.
pub fn capture_name(column: &str) -> String {
    let s: String = column
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
        format!("c_{s}")
    } else {
        s
    }
}

fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
