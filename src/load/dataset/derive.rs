//! Derives ordinary steps from a dataset: the access traversal and the erasure, so that dry
//! run, saved plans, the journal, reports and verification see nothing new.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::graph::{Condition, Edge, Link, Reached, edges, links, traverse};
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
    links: Vec<Link>,
    order: Vec<(String, Reached)>,
    ids: BTreeMap<String, String>,
}

impl<'a> Derivation<'a> {
    /// Traverses the dataset.
    pub fn new(d: &'a Dataset, strategies: &'a BTreeMap<String, SetValue>) -> Self {
        let edges = edges(d);
        let order = traverse(d, &edges);
        let links = links(d, &edges);
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
            links,
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

    /// The columns of `table` whose values other steps use: each one alone, or the columns
    /// of a composite key together.
    fn captured(&self, table: &str, erasure: bool) -> BTreeSet<Vec<String>> {
        let mut cols: BTreeSet<Vec<String>> = BTreeSet::new();
        for (_, r) in &self.order {
            for c in &r.conditions {
                if let Condition::Keys {
                    source_table,
                    source_columns,
                    ..
                } = c
                    && source_table == table
                {
                    cols.insert(source_columns.clone());
                }
            }
        }
        if erasure {
            for e in &self.edges {
                if e.to_table == table && !e.traverse {
                    cols.insert(vec![e.to_column.clone()]);
                }
            }
            for l in &self.links {
                let guarded = self.guards(&l.from_table).contains(&l);
                if l.to_table == table && (self.shared_checked(table) || guarded) {
                    cols.insert(l.to_columns.clone());
                }
            }
        }
        cols
    }

    /// The references of `table`'s rows to the subject's own rows (tables reached from an
    /// identity or downward) that erasure checks: a row of `table` found for the subject
    /// that references another person's row through one of them (a message from the
    /// subject to someone else) is shared, so kept. None when the table's rows are kept
    /// anyway or the dataset says `shared_rows: erase`.
    fn guards(&self, table: &str) -> Vec<&Link> {
        let Some(t) = self.d.tables.get(table) else {
            return Vec::new();
        };
        if t.shared_rows != SharedRows::Keep || matches!(t.erasure(), TableErasure::Keep(_)) {
            return Vec::new();
        }
        let Some(here) = self.reach(table) else {
            return Vec::new();
        };
        self.links
            .iter()
            .filter(|l| l.from_table == table)
            .filter(|l| self.reach(&l.to_table).is_some_and(|r| r.down))
            // The one way the rows are found already says it.
            .filter(|l| {
                !(here.conditions.len() == 1
                    && matches!(&here.conditions[0], Condition::Keys { columns, source_table, .. }
                        if columns == &l.from_columns && source_table == &l.to_table))
            })
            .collect()
    }

    /// The guard of `table`'s mutations: each checked reference is NULL or points at one of
    /// the subject's rows. In the statement itself, so a row that became shared after the
    /// dry run is kept too.
    fn guard_predicates(&self, table: &str, prefix: &str) -> BTreeMap<String, SqlValue> {
        self.guards(table)
            .into_iter()
            .map(|l| {
                (
                    key_name(&l.from_columns),
                    SqlValue::Any(vec![
                        Value::String(format!(
                            "{{{{json {}.{}}}}}",
                            self.id(prefix, &l.to_table),
                            tuple_capture_name(&l.to_columns)
                        )),
                        Value::Null,
                    ]),
                )
            })
            .collect()
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
                    columns,
                    source_table,
                    source_columns,
                    ..
                } => [(
                    key_name(columns),
                    SqlValue::Any(vec![Value::String(format!(
                        "{{{{json {}.{}}}}}",
                        self.id(prefix, source_table),
                        tuple_capture_name(source_columns)
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

    /// The predicate of a table's mutation: its subject rows, less those shared.
    fn guarded_predicate(
        &self,
        table: &str,
        r: &Reached,
    ) -> (BTreeMap<String, SqlValue>, Vec<BTreeMap<String, SqlValue>>) {
        let (mut filter, any) = self.predicate(r, "find");
        let guards = self.guard_predicates(table, "find");
        if guards.is_empty() {
            return (filter, any);
        }
        if any.is_empty() {
            // One condition: the guards join it; a guard on the same column is implied.
            for (k, v) in guards {
                filter.entry(k).or_insert(v);
            }
        } else {
            debug_assert!(filter.is_empty());
            filter = guards;
        }
        (filter, any)
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
                    columns,
                    source_table,
                    source_columns,
                    ..
                } => format!(
                    "`{}` is the `{}` of a row of `{source_table}`",
                    key_name(columns),
                    key_name(source_columns)
                ),
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
            for col in captured.iter().flatten() {
                if !c.contains(col) {
                    c.push(col.clone());
                }
            }
            c
        } else {
            Vec::new()
        };
        let mut step = new_step(
            self.id(prefix, table),
            format!("Rows of `{table}` where {}.", self.describe(r)),
        );
        step.needs = self.needs_of(r, prefix);
        step.sql = boxed(sql_select(SqlSelect {
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
            .map(|c| (tuple_capture_name(c), capture_source(c)))
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
        let mut shared: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
        for (table, _) in &self.order {
            if !self.shared_checked(table) {
                continue;
            }
            for l in self.links.iter().filter(|l| &l.to_table == table) {
                let id = format!(
                    "shared-{}-{}",
                    self.ids.get(table).cloned().unwrap_or_default(),
                    kebab(&format!("{}-{}", l.from_table, l.from_columns.join("-")))
                );
                let mut step = new_step(
                    id.clone(),
                    format!(
                        "Rows of `{table}` that rows of `{}` other than the subject's reference \
                         (through `{}`): shared with someone else, so kept.",
                        l.from_table,
                        key_name(&l.from_columns)
                    ),
                );
                let mut needs = vec![self.id("find", table)];
                let unless = match self.reach(&l.from_table) {
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
                step.sql = boxed(sql_select(SqlSelect {
                    table: l.from_table.clone(),
                    columns: l.from_columns.clone(),
                    filter: [(
                        key_name(&l.from_columns),
                        SqlValue::Any(vec![Value::String(format!(
                            "{{{{json {}.{}}}}}",
                            self.id("find", table),
                            tuple_capture_name(&l.to_columns)
                        ))]),
                    )]
                    .into(),
                    through: None,
                    any: Vec::new(),
                    unless,
                    order_by: Vec::new(),
                }));
                step.capture = [("keys".to_owned(), capture_source(&l.from_columns))].into();
                shared
                    .entry(table.clone())
                    .or_default()
                    .push((id, l.to_columns.clone()));
                steps.push(step);
                // The referencing table's rows kept as shared reference rows of this one
                // too: those are kept with them (an address kept for someone else keeps
                // its region).
                let kept_referrers = shared.get(&l.from_table).cloned().unwrap_or_default();
                for (kept, kept_columns) in kept_referrers {
                    let id = format!(
                        "{kept}-then-{}",
                        kebab(&format!("{}-{}", table, l.from_columns.join("-")))
                    );
                    let step = kept_read(
                        &id,
                        format!(
                            "Rows of `{table}` that the rows of `{}` kept as shared reference \
                             (through `{}`): kept with them.",
                            l.from_table,
                            key_name(&l.from_columns)
                        ),
                        &kept,
                        (&l.from_table, &kept_columns),
                        &l.from_columns,
                    );
                    shared
                        .entry(table.clone())
                        .or_default()
                        .push((id, l.to_columns.clone()));
                    steps.push(step);
                }
            }
        }
        // Every set of rows kept, by table: those above, and the rows kept by a guard.
        let mut kept = shared.clone();
        // Rows found downward that also reference another person's rows (a message from
        // the subject to someone else): listed here, kept by the guard of the mutation.
        for (table, r) in &self.order {
            let guards = self.guard_predicates(table, "find");
            if guards.is_empty() {
                continue;
            }
            let links = self.guards(table);
            let (filter, any) = self.predicate(r, "find");
            let mut step = new_step(
                self.id("shared", table),
                format!(
                    "Rows of `{table}` of the subject that also reference someone else's rows \
                     (through {}): shared with someone else, so kept.",
                    links
                        .iter()
                        .map(|l| format!("`{}`", key_name(&l.from_columns)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            let mut needs = self.needs_of(r, "find");
            needs.extend(links.iter().map(|l| self.id("find", &l.to_table)));
            needs.sort();
            needs.dedup();
            step.needs = needs;
            step.sql = boxed(sql_select(SqlSelect {
                table: table.clone(),
                columns: Vec::new(),
                filter,
                through: None,
                any,
                unless: vec![guards],
                order_by: self.key_of(table),
            }));
            let key = self.key_of(table);
            if !key.is_empty() {
                step.capture = [("keys".to_owned(), capture_source(&key))].into();
                kept.entry(table.clone())
                    .or_default()
                    .push((step.id.clone(), key));
            }
            steps.push(step);
        }
        // The children of rows kept as shared belong to them (the files of a message kept
        // for its recipient): kept with them, and their children in turn, in the order the
        // traversal reached them.
        for (table, r) in &self.order {
            let key = self.key_of(table);
            if key.is_empty() || !self.d.tables.contains_key(table) {
                continue;
            }
            for c in &r.conditions {
                let Condition::Keys {
                    columns,
                    source_table,
                    source_columns,
                    upward: false,
                } = c
                else {
                    continue;
                };
                let parents = kept.get(source_table).cloned().unwrap_or_default();
                for (parent, parent_columns) in parents {
                    if &parent_columns != source_columns {
                        continue;
                    }
                    let id = format!(
                        "{parent}-then-{}",
                        kebab(&format!("{}-{}", table, columns.join("-")))
                    );
                    let step = kept_read(
                        &id,
                        format!(
                            "Rows of `{table}` under the rows of `{source_table}` kept as shared \
                             (through `{}`): kept with them.",
                            key_name(columns)
                        ),
                        &parent,
                        (table, columns),
                        &key,
                    );
                    for map in [&mut shared, &mut kept] {
                        map.entry(table.clone())
                            .or_default()
                            .push((id.clone(), key.clone()));
                    }
                    steps.push(step);
                }
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
            step.sql = boxed(SqlAction {
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
        // Rows kept as shared still reference the subject's rows about to be deleted: once
        // the table's own mutation has run, the rows left that point at them are those kept,
        // and the reference is set to NULL (a NOT NULL column makes the step fail, loudly).
        for (table, _) in &self.order {
            let Some(mutation) = self.mutation_id(table) else {
                continue;
            };
            let guards = self.guard_predicates(table, "find");
            if guards.is_empty() {
                continue;
            }
            for l in self.links.iter().filter(|l| &l.from_table == table) {
                let deletes_parent = self.reach(&l.to_table).is_some_and(|r| r.down)
                    && self.d.tables.get(&l.to_table).is_some_and(|t| {
                        matches!(t.erasure(), TableErasure::Mode(ErasureMode::Delete))
                    });
                // A row is kept when some other checked reference points elsewhere: with no
                // other, nothing the subject references through this one is kept.
                let others = self.guards(table).iter().any(|g| *g != l);
                if !deletes_parent
                    || !others
                    || !self.captured(&l.to_table, true).contains(&l.to_columns)
                {
                    continue;
                }
                let id = format!(
                    "detach-shared-{}",
                    kebab(&format!("{}-{}", table, l.from_columns.join("-")))
                );
                let mut step = new_step(
                    id.clone(),
                    format!(
                        "Set `{}` of the rows of `{table}` kept as shared to NULL where it \
                         points at a row of `{}` about to be deleted.",
                        key_name(&l.from_columns),
                        l.to_table
                    ),
                );
                step.needs = vec![mutation.clone(), self.id("find", &l.to_table)];
                step.sql = boxed(SqlAction {
                    max_rows,
                    ..sql_update(SqlUpdate {
                        table: table.clone(),
                        set: l
                            .from_columns
                            .iter()
                            .map(|c| (c.clone(), SetValue::Value(Value::Null)))
                            .collect(),
                        filter: [(
                            key_name(&l.from_columns),
                            SqlValue::Any(vec![Value::String(format!(
                                "{{{{json {}.{}}}}}",
                                self.id("find", &l.to_table),
                                tuple_capture_name(&l.to_columns)
                            ))]),
                        )]
                        .into(),
                        through: None,
                        any: Vec::new(),
                        // Only the rows kept as shared (what the dry run shows, too).
                        unless: vec![guards.clone()],
                        key: self.key_of(table),
                    })
                });
                step.needs.push(self.id("shared", table));
                step.needs.sort();
                detach.entry(l.to_table.clone()).or_default().push(id);
                steps.push(step);
            }
        }
        // The mutations, children first.
        for (table, r) in &self.order {
            let Some(t) = self.d.tables.get(table) else {
                continue;
            };
            let (filter, any) = self.guarded_predicate(table, r);
            let unless: Vec<BTreeMap<String, SqlValue>> = shared
                .get(table)
                .map(|list| {
                    let mut by_col: BTreeMap<String, Vec<Value>> = BTreeMap::new();
                    for (id, col) in list {
                        by_col
                            .entry(key_name(col))
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
                    s.sql = boxed(SqlAction {
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
                    s.sql = boxed(SqlAction {
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

    /// The id of the step that deletes or masks the table's rows (none when kept).
    fn mutation_id(&self, table: &str) -> Option<String> {
        match self.d.tables.get(table)?.erasure() {
            TableErasure::Keep(_) => None,
            TableErasure::Mode(ErasureMode::Delete) => Some(self.id("erase", table)),
            TableErasure::Mode(ErasureMode::Mask) => {
                (!self.masks(table).is_empty()).then(|| self.id("mask", table))
            }
        }
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

/// A read of the `columns` of the rows of `from.0` whose `from.1` columns are among the
/// `keys` step `source` captured, capturing them as `keys`: the rows kept with those.
fn kept_read(
    id: &str,
    description: String,
    source: &str,
    from: (&str, &[String]),
    columns: &[String],
) -> Step {
    let mut step = new_step(id.to_owned(), description);
    step.needs = vec![source.to_owned()];
    step.sql = boxed(sql_select(SqlSelect {
        table: from.0.to_owned(),
        columns: columns.to_vec(),
        filter: [(
            key_name(from.1),
            SqlValue::Any(vec![Value::String(format!("{{{{json {source}.keys}}}}"))]),
        )]
        .into(),
        through: None,
        any: Vec::new(),
        unless: Vec::new(),
        order_by: columns.to_vec(),
    }));
    step.capture = [("keys".to_owned(), capture_source(columns))].into();
    step
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

/// A step's SQL action.
fn boxed(a: SqlAction) -> Option<Box<SqlAction>> {
    Some(Box::new(a))
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
        select: Some(Box::new(s)),
        ..empty_sql()
    }
}

fn sql_update(u: SqlUpdate) -> SqlAction {
    SqlAction {
        update: Some(Box::new(u)),
        ..empty_sql()
    }
}

fn sql_delete(d: SqlDelete) -> SqlAction {
    SqlAction {
        delete: Some(Box::new(d)),
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

/// A predicate key: the column, or `(a, b)` for the columns of a composite key.
fn key_name(columns: &[String]) -> String {
    match columns {
        [one] => one.clone(),
        many => format!("({})", many.join(", ")),
    }
}

/// The capture of a column's values (`id`), or of a composite key's pairs
/// (`tuple_region__no`).
fn tuple_capture_name(columns: &[String]) -> String {
    match columns {
        [one] => capture_name(one),
        many => format!(
            "tuple_{}",
            many.iter()
                .map(|c| capture_name(c))
                .collect::<Vec<_>>()
                .join("__")
        ),
    }
}

/// Where a capture takes its values: `/*/id`, or `/*/(region,no)` for pairs.
fn capture_source(columns: &[String]) -> String {
    match columns {
        [one] => format!("/*/{}", pointer_token(one)),
        many => format!(
            "/*/({})",
            many.iter()
                .map(|c| pointer_token(c))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
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
