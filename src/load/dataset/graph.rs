//! The reference graph of a dataset and the breadth-first traversal over it: which tables
//! the subject's rows are in, and through which columns each is reached.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::{Dataset, split_column_ref};

/// One foreign key between described columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The referencing table and column.
    pub from_table: String,
    pub from_column: String,
    /// The referenced table and column.
    pub to_table: String,
    pub to_column: String,
    /// Whether the traversal follows it (false: detached on erasure instead).
    pub traverse: bool,
    /// Where it is written (a JSON pointer into the playbook).
    pub pointer: String,
}

/// How one table's rows of the subject are found: rows meeting any of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `column` equals the subject's `identity`.
    Identity { column: String, identity: String },
    /// `columns` are among the values of `source_table.source_columns` of the subject's
    /// rows: one column, or the columns of a composite foreign key, met as one.
    Keys {
        columns: Vec<String>,
        source_table: String,
        source_columns: Vec<String>,
        /// Whether the source references this table (the row was reached from a child, so
        /// another subject's rows may reference it too).
        upward: bool,
    },
}

/// A table the traversal reaches.
#[derive(Debug, Clone, Default)]
pub struct Reached {
    /// The conditions, ORed.
    pub conditions: Vec<Condition>,
    /// Whether the table was reached from an identity or downward (a child of the subject's
    /// rows): the traversal continues down from it. A table reached only upward (a parent
    /// of the subject's rows, e.g. an address) continues only upward, so an order never
    /// leads to the other orders of its product.
    pub down: bool,
}

impl Reached {
    /// The tables whose captured values the conditions use.
    pub fn sources(&self) -> BTreeSet<&str> {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::Keys { source_table, .. } => Some(source_table.as_str()),
                Condition::Identity { .. } => None,
            })
            .collect()
    }

    /// Whether some condition reaches the table from a child.
    pub fn has_upward(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| matches!(c, Condition::Keys { upward: true, .. }))
    }
}

/// A followed reference as the traversal uses it: one column, or the columns of a composite
/// foreign key (references from one table to the columns of another's composite `key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The referencing table and column(s).
    pub from_table: String,
    pub from_columns: Vec<String>,
    /// The referenced table and column(s), in the same order.
    pub to_table: String,
    pub to_columns: Vec<String>,
}

/// The followed references between two different tables, each composite foreign key as one
/// link: references from one table that name every column of another table's composite
/// `key` are that key's foreign key, so its rows are reached by the pairs, never by each
/// column alone (which would combine the values of different rows).
pub fn links(d: &Dataset, edges: &[Edge]) -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    let followed: Vec<&Edge> = edges
        .iter()
        .filter(|e| e.traverse && e.from_table != e.to_table)
        .collect();
    let mut grouped: BTreeSet<usize> = BTreeSet::new();
    for (i, e) in followed.iter().enumerate() {
        if grouped.contains(&i) {
            continue;
        }
        let key = d
            .tables
            .get(&e.to_table)
            .map(|t| t.key.clone())
            .unwrap_or_default();
        if key.len() >= 2 && key.contains(&e.to_column) {
            // One reference from this table to each key column, in key order.
            let parts: Vec<Option<usize>> = key
                .iter()
                .map(|k| {
                    let mut hits = followed.iter().enumerate().filter(|(j, o)| {
                        !grouped.contains(j)
                            && o.from_table == e.from_table
                            && o.to_table == e.to_table
                            && &o.to_column == k
                    });
                    let first = hits.next().map(|(j, _)| j);
                    // Two references to the same key column: not one key, say nothing.
                    if hits.next().is_some() { None } else { first }
                })
                .collect();
            if parts.iter().all(Option::is_some) {
                let parts: Vec<usize> = parts.into_iter().flatten().collect();
                grouped.extend(parts.iter().copied());
                out.push(Link {
                    from_table: e.from_table.clone(),
                    from_columns: parts
                        .iter()
                        .map(|&j| followed[j].from_column.clone())
                        .collect(),
                    to_table: e.to_table.clone(),
                    to_columns: key,
                });
                continue;
            }
        }
        out.push(Link {
            from_table: e.from_table.clone(),
            from_columns: vec![e.from_column.clone()],
            to_table: e.to_table.clone(),
            to_columns: vec![e.to_column.clone()],
        });
    }
    out
}

/// The references of a dataset, resolved; references naming what the dataset does not
/// describe are left out (the checks report them).
pub fn edges(d: &Dataset) -> Vec<Edge> {
    let mut out = Vec::new();
    let known = |t: &str, c: &str| d.tables.get(t).is_some_and(|x| x.columns.contains_key(c));
    let mut push = |from: &str, to: &str, traverse: Option<bool>, pointer: String| {
        let (Some((ft, fc)), Some((tt, tc))) = (split_column_ref(from), split_column_ref(to))
        else {
            return;
        };
        if !known(ft, fc) || !known(tt, tc) {
            return;
        }
        let e = Edge {
            from_table: ft.to_owned(),
            from_column: fc.to_owned(),
            to_table: tt.to_owned(),
            to_column: tc.to_owned(),
            traverse: traverse.unwrap_or(ft != tt),
            pointer,
        };
        if !out.iter().any(|o: &Edge| {
            o.from_table == e.from_table
                && o.from_column == e.from_column
                && o.to_table == e.to_table
                && o.to_column == e.to_column
        }) {
            out.push(e);
        }
    };
    for (table, t) in &d.tables {
        for (column, c) in t.described_columns() {
            if let Some(to) = &c.references {
                push(
                    &format!("{table}.{column}"),
                    to,
                    None,
                    format!(
                        "/dataset/tables/{}/columns/{}/references",
                        esc(table),
                        esc(&column)
                    ),
                );
            }
        }
    }
    for (i, r) in d.references.iter().enumerate() {
        if let Some(r) = r.resolve() {
            push(
                &r.from,
                &r.to,
                r.traverse,
                format!("/dataset/references/{i}"),
            );
        }
    }
    out
}

/// A JSON pointer token.
pub fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Whether a table holds personal data: a column with a category or an identity.
pub fn personal(d: &Dataset, table: &str) -> bool {
    d.tables.get(table).is_some_and(|t| {
        t.described_columns()
            .iter()
            .any(|(_, c)| c.category.is_some() || c.identity.is_some())
    })
}

/// The traversal: every table reached, in the order it was processed (each table's
/// conditions use only tables processed before it).
pub fn traverse(d: &Dataset, edges: &[Edge]) -> Vec<(String, Reached)> {
    let links = links(d, edges);
    let mut reached: BTreeMap<String, Reached> = BTreeMap::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    for (table, t) in &d.tables {
        for (column, c) in t.described_columns() {
            if let Some(identity) = c.identity {
                let r = reached.entry(table.clone()).or_default();
                r.down = true;
                r.conditions.push(Condition::Identity { column, identity });
            }
        }
        if reached.contains_key(table) {
            queue.push_back(table.clone());
        }
    }
    // Tables reached downward first: every upward edge into a table reached only upward
    // (an address) is known before that table is processed.
    let mut up_queue: VecDeque<String> = VecDeque::new();
    let mut order: Vec<(String, Reached)> = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    loop {
        let table = match queue.pop_front() {
            Some(t) => t,
            None => match up_queue.pop_front() {
                Some(t) => t,
                None => break,
            },
        };
        if !done.insert(table.clone()) {
            continue;
        }
        let here = reached.get(&table).cloned().unwrap_or_default();
        let mut add = |target: &str, cond: Condition, down: bool| {
            if done.contains(target) {
                return;
            }
            let r = reached.entry(target.to_owned()).or_default();
            r.down |= down;
            if !r.conditions.contains(&cond) {
                r.conditions.push(cond);
            }
            if r.down {
                up_queue.retain(|q| q != target);
                if !queue.iter().any(|q| q == target) {
                    queue.push_back(target.to_owned());
                }
            } else if !up_queue.iter().any(|q| q == target) {
                up_queue.push_back(target.to_owned());
            }
        };
        for l in &links {
            if here.down && l.to_table == table {
                add(
                    &l.from_table,
                    Condition::Keys {
                        columns: l.from_columns.clone(),
                        source_table: table.clone(),
                        source_columns: l.to_columns.clone(),
                        upward: false,
                    },
                    true,
                );
            }
            if l.from_table == table && personal(d, &l.to_table) {
                add(
                    &l.to_table,
                    Condition::Keys {
                        columns: l.to_columns.clone(),
                        source_table: table.clone(),
                        source_columns: l.from_columns.clone(),
                        upward: true,
                    },
                    false,
                );
            }
        }
        order.push((table.clone(), reached.get(&table).cloned().unwrap_or(here)));
    }
    order
}
