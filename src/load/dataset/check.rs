//! Checks on a dataset: references and keys name described columns, the traversal has
//! somewhere to start, masks have a strategy, deleted tables do not reference each other in
//! a cycle, and guesses left for review.

use std::collections::{BTreeMap, BTreeSet};

use super::derive::{Derivation, strategy_for};
use super::graph::{edges, esc, personal};
use crate::load::checks::Report;
use crate::load::{Code, Severity};
use crate::model::{Dataset, ErasureMode, SetValue, TableErasure, split_column_ref};

/// Every check on one dataset.
pub(crate) fn check_dataset(
    d: &Dataset,
    strategies: &BTreeMap<String, SetValue>,
    r: &mut Report<'_>,
) {
    check_references(d, r);
    check_keys(d, r);
    let plan = Derivation::new(d, strategies);
    if plan.reached().is_empty() {
        r.push(
            Severity::Error,
            Code::NoIdentityColumn,
            "/dataset/tables",
            true,
            "no column of the dataset holds an identity: the traversal has nowhere to start"
                .to_owned(),
        )
        .help("mark the column that holds the subject's identity, e.g. `email: { identity: email, category: user.contact.email }`");
        return;
    }
    let reached: BTreeSet<&str> = plan.reached().iter().map(|(t, _)| t.as_str()).collect();
    for (table, t) in &d.tables {
        let tp = format!("/dataset/tables/{}", esc(table));
        if let Some(note) = &t.review {
            r.push(
                Severity::Warning,
                Code::NeedsReview,
                &format!("{tp}/review"),
                true,
                format!("table `{table}` is marked for review: {note}"),
            )
            .help("check the guess, then remove `review`");
        }
        for (column, c) in t.described_columns() {
            if c.not_personal() && (c.category.is_some() || c.identity.is_some()) {
                r.error(
                    Code::InvalidValue,
                    &format!("{tp}/columns/{}/personal", esc(&column)),
                    format!(
                        "column `{table}.{column}` is said to hold no personal data (`personal: false`) but has a category or an identity"
                    ),
                )
                .help("remove `personal: false`, or the category and identity if it really holds no personal data");
            }
            if let Some(note) = &c.review {
                r.push(
                    Severity::Warning,
                    Code::NeedsReview,
                    &format!("{tp}/columns/{}/review", esc(&column)),
                    true,
                    format!("column `{table}.{column}` is marked for review: {note}"),
                )
                .help("check the guess, then remove `review`");
            }
        }
        if !reached.contains(table.as_str()) && personal(d, table) {
            r.push(
                Severity::Warning,
                Code::UnreachableTable,
                &tp,
                true,
                format!(
                    "table `{table}` holds personal data, but no reference leads to it from a column with an identity; its rows are never read or erased"
                ),
            )
            .help("add the reference that links it to the subject's rows, or an identity column");
        }
        if matches!(t.erasure(), TableErasure::Mode(ErasureMode::Mask)) {
            check_masks(table, t, strategies, &tp, r);
        }
    }
    check_cycles(d, &plan, &reached, r);
    check_blocked(d, &plan, &reached, r);
}

fn check_references(d: &Dataset, r: &mut Report<'_>) {
    let check = |text: &str, pointer: String, r: &mut Report<'_>| {
        let Some((t, c)) = split_column_ref(text) else {
            r.error(
                Code::UnknownColumn,
                &pointer,
                format!("`{text}` is not `table.column`"),
            )
            .help("write the referenced column as `table.column`, e.g. `customer.id`");
            return;
        };
        match d.tables.get(t) {
            None => {
                let tables: Vec<&str> = d.tables.keys().map(String::as_str).collect();
                r.error(
                    Code::UnknownColumn,
                    &pointer,
                    format!("`{text}` names table `{t}`, which the dataset does not describe"),
                )
                .suggest(t, &tables, "described tables");
            }
            Some(table) if !table.columns.contains_key(c) => {
                let cols: Vec<&str> = table.columns.keys().map(String::as_str).collect();
                r.error(
                    Code::UnknownColumn,
                    &pointer,
                    format!("`{text}` names column `{c}`, which table `{t}` does not describe"),
                )
                .suggest(c, &cols, "its columns");
            }
            Some(_) => {}
        }
    };
    for (table, t) in &d.tables {
        for (column, c) in t.described_columns() {
            if let Some(to) = &c.references {
                check(
                    to,
                    format!(
                        "/dataset/tables/{}/columns/{}/references",
                        esc(table),
                        esc(&column)
                    ),
                    r,
                );
            }
        }
    }
    for (i, entry) in d.references.iter().enumerate() {
        let p = format!("/dataset/references/{i}");
        if r.broken(&p) {
            continue;
        }
        match entry.resolve() {
            None => {
                r.error(
                    Code::UnknownColumn,
                    &p,
                    "a reference is written `child.column -> parent.column`".to_owned(),
                );
            }
            Some(re) => {
                let pf = if matches!(entry, crate::model::ReferenceEntry::Full(_)) {
                    (format!("{p}/from"), format!("{p}/to"))
                } else {
                    (p.clone(), p.clone())
                };
                check(&re.from, pf.0, r);
                check(&re.to, pf.1, r);
            }
        }
    }
}

fn check_keys(d: &Dataset, r: &mut Report<'_>) {
    for (table, t) in &d.tables {
        for (i, k) in t.key_columns().iter().enumerate() {
            if t.columns.contains_key(k) {
                continue;
            }
            let cols: Vec<&str> = t.columns.keys().map(String::as_str).collect();
            let (pointer, msg) = if t.key.is_empty() {
                (
                    format!("/dataset/tables/{}", esc(table)),
                    format!("table `{table}` has no column `id`, the default key"),
                )
            } else {
                (
                    format!("/dataset/tables/{}/key/{i}", esc(table)),
                    format!("key column `{k}` of table `{table}` is not among its columns"),
                )
            };
            r.push(Severity::Error, Code::UnknownColumn, &pointer, true, msg)
                .suggest(k, &cols, "its columns")
                .help("name the primary key column(s) in `key`, e.g. `key: [order_id, line]`");
        }
    }
}

fn check_masks(
    table: &str,
    t: &crate::model::DatasetTable,
    strategies: &BTreeMap<String, SetValue>,
    tp: &str,
    r: &mut Report<'_>,
) {
    let mut any = false;
    for (column, c) in t.described_columns() {
        let Some(category) = &c.category else {
            continue;
        };
        any = true;
        if c.erasure.is_none() && strategy_for(category, strategies).is_none() {
            r.error(
                Code::MissingErasureStrategy,
                &format!("{tp}/columns/{}", esc(&column)),
                format!(
                    "table `{table}` is masked on erasure, but column `{column}` has category `{category}`, which has no masking strategy"
                ),
            )
            .help(format!(
                "add `{category}: {{ mask: hash }}` (or another strategy) under `erasure:` in dsrctl.yaml, or `erasure:` on the column"
            ));
        }
    }
    if !any {
        r.error(
            Code::MissingErasureStrategy,
            &format!("{tp}/erasure"),
            format!("table `{table}` is masked on erasure, but none of its columns has a category"),
        )
        .help("give the personal columns a category, or erase the table with `delete`");
    }
}

/// Tables deleted by erasure must be deletable children first: a cycle of followed
/// references among them has no such order.
fn check_cycles(d: &Dataset, plan: &Derivation<'_>, reached: &BTreeSet<&str>, r: &mut Report<'_>) {
    let deleted: Vec<&str> = reached
        .iter()
        .copied()
        .filter(|t| {
            d.tables
                .get(*t)
                .is_some_and(|x| matches!(x.erasure(), TableErasure::Mode(ErasureMode::Delete)))
        })
        .collect();
    // Depth-first search for a cycle over "must be deleted after".
    let mut state: BTreeMap<String, u8> = BTreeMap::new();
    let mut reported = false;
    for start in &deleted {
        let mut path: Vec<String> = Vec::new();
        if let Some(cycle) = visit(start, plan, &mut state, &mut path) {
            if reported {
                break;
            }
            reported = true;
            let all = edges(d);
            let pointer = all
                .iter()
                .find(|e| {
                    e.traverse && cycle.contains(&e.from_table) && cycle.contains(&e.to_table)
                })
                .map(|e| e.pointer.clone())
                .unwrap_or_else(|| "/dataset/tables".to_owned());
            r.push(
                Severity::Error,
                Code::ReferenceCycle,
                &pointer,
                false,
                format!(
                    "tables deleted on erasure reference each other in a cycle: {}; no order deletes the rows that reference first",
                    cycle.join(" -> ")
                ),
            )
            .help("mark one of these references `traverse: false` (it is then set to NULL before the delete), or keep or mask one of the tables");
        }
    }
}

fn visit(
    table: &str,
    plan: &Derivation<'_>,
    state: &mut BTreeMap<String, u8>,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    match state.get(table) {
        Some(2) => return None,
        Some(1) => {
            let start = path.iter().position(|p| p == table).unwrap_or(0);
            let mut cycle: Vec<String> = path[start..].to_vec();
            cycle.push(table.to_owned());
            return Some(cycle);
        }
        _ => {}
    }
    state.insert(table.to_owned(), 1);
    path.push(table.to_owned());
    for child in plan.children_deleted(table) {
        if let Some(c) = visit(&child, plan, state, path) {
            return Some(c);
        }
    }
    path.pop();
    state.insert(table.to_owned(), 2);
    None
}

/// A table deleted on erasure whose rows a kept or masked table's rows reference (through
/// a followed reference): the database will refuse the delete.
fn check_blocked(d: &Dataset, plan: &Derivation<'_>, reached: &BTreeSet<&str>, r: &mut Report<'_>) {
    for e in edges(d)
        .iter()
        .filter(|e| e.traverse && e.from_table != e.to_table)
    {
        if !reached.contains(e.from_table.as_str()) || !reached.contains(e.to_table.as_str()) {
            continue;
        }
        let parent_deleted = d
            .tables
            .get(&e.to_table)
            .is_some_and(|t| matches!(t.erasure(), TableErasure::Mode(ErasureMode::Delete)));
        let child = d.tables.get(&e.from_table);
        let child_stays =
            child.is_some_and(|t| !matches!(t.erasure(), TableErasure::Mode(ErasureMode::Delete)));
        let masked_away = plan.masks(&e.from_table).contains_key(&e.from_column);
        if parent_deleted && child_stays && !masked_away {
            r.push(
                Severity::Warning,
                Code::ErasureBlocked,
                &e.pointer,
                false,
                format!(
                    "erasure deletes rows of `{}`, but the rows of `{}` that reference them through `{}` stay; the database will refuse the delete if the foreign key is enforced",
                    e.to_table, e.from_table, e.from_column
                ),
            )
            .help(format!(
                "mask or keep `{}` too, give `{}.{}` a category masked to null, or mark the reference `traverse: false`",
                e.to_table, e.from_table, e.from_column
            ));
        }
    }
}
