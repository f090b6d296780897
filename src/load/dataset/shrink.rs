//! What a dataset change takes away from erasure: tables no longer reached, rows no longer
//! deleted or masked, columns no longer masked, ways of finding rows gone. `plan --compare`
//! warns about each.

use std::collections::{BTreeMap, BTreeSet};

use super::derive::Derivation;
use super::graph::Condition;
use crate::model::{Dataset, ErasureMode, SetValue, SharedRows, TableErasure};

/// What erasure does to one table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    Delete,
    /// The columns masked.
    Mask(BTreeSet<String>),
    Keep,
}

struct TableErasureView {
    effect: Effect,
    shared: SharedRows,
    conditions: Vec<Condition>,
}

fn view(
    d: &Dataset,
    strategies: &BTreeMap<String, SetValue>,
) -> BTreeMap<String, TableErasureView> {
    let plan = Derivation::new(d, strategies);
    plan.reached()
        .iter()
        .filter_map(|(table, r)| {
            let t = d.tables.get(table)?;
            let effect = match t.erasure() {
                TableErasure::Keep(_) => Effect::Keep,
                TableErasure::Mode(ErasureMode::Delete) => Effect::Delete,
                TableErasure::Mode(ErasureMode::Mask) => {
                    Effect::Mask(plan.masks(table).into_keys().collect())
                }
            };
            Some((
                table.clone(),
                TableErasureView {
                    effect,
                    shared: t.shared_rows,
                    conditions: r.conditions.clone(),
                },
            ))
        })
        .collect()
}

fn condition(c: &Condition) -> String {
    match c {
        Condition::Identity { column, identity } => format!("`{column}` (the {identity})"),
        Condition::Keys {
            columns,
            source_table,
            ..
        } => format!("`{}` from `{source_table}`", columns.join("`, `")),
    }
}

/// Each way the change narrows what erasure covers, in words; empty when it does not.
pub fn erasure_shrinks(
    old: &Dataset,
    old_strategies: &BTreeMap<String, SetValue>,
    new: &Dataset,
    new_strategies: &BTreeMap<String, SetValue>,
) -> Vec<String> {
    let (before, after) = (view(old, old_strategies), view(new, new_strategies));
    let mut out = Vec::new();
    for (table, was) in &before {
        if was.effect == Effect::Keep {
            continue;
        }
        let Some(now) = after.get(table) else {
            out.push(format!(
                "`{table}` is no longer reached by the erasure (a table or reference removed)"
            ));
            continue;
        };
        match (&was.effect, &now.effect) {
            (Effect::Delete, Effect::Mask(_)) => {
                out.push(format!("`{table}`: rows are masked now, no longer deleted"));
            }
            (_, Effect::Keep) => {
                out.push(format!("`{table}`: rows are kept now, no longer erased"));
            }
            (Effect::Mask(a), Effect::Mask(b)) => {
                for c in a.difference(b) {
                    out.push(format!("`{table}`: `{c}` is no longer masked"));
                }
            }
            _ => {}
        }
        if now.effect != Effect::Keep {
            for c in was
                .conditions
                .iter()
                .filter(|c| !now.conditions.contains(c))
            {
                out.push(format!(
                    "`{table}`: rows are no longer found through {}",
                    condition(c)
                ));
            }
            if was.shared == SharedRows::Erase && now.shared == SharedRows::Keep {
                out.push(format!(
                    "`{table}`: rows shared with someone else are kept now, no longer erased"
                ));
            }
        }
    }
    out
}
