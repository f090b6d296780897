//! Structured updates: lock the matched rows, then write constants in one statement or
//! masks row by row (hash/HMAC need each row's old value; random differs per row).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::builder::{BuildError, Builder, ColumnTypes, Projection, Target};
use super::dialect::Dialect;
use super::mask;
use super::statement::Statement;
use crate::model::{MaskStrategy, SetValue, SqlMatch, SqlUpdate};

/// One matched row after the update: its key and the values written.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Key column values, in key order.
    pub key: Vec<Value>,
    /// Column to the value written.
    pub values: Map<String, Value>,
}

impl Written {
    /// The row's key after the update: a masked key column is found by its new value.
    pub fn new_key(&self, key: &[String]) -> Vec<Value> {
        key.iter()
            .zip(&self.key)
            .map(|(k, old)| self.values.get(k).unwrap_or(old).clone())
            .collect()
    }
}

/// Everything needed to run one structured update.
#[derive(Debug, Clone)]
pub struct UpdatePlan {
    /// `SELECT key, old values FROM t WHERE ... FOR UPDATE`.
    pub lock: Statement,
    /// One `UPDATE ... WHERE <predicate>` when every value is a constant.
    pub bulk: Option<Statement>,
    table: String,
    key: Vec<String>,
    set: Vec<(String, SetValue)>,
    dialect: Dialect,
    types: Arc<ColumnTypes>,
    hmac_key: Option<Arc<[u8]>>,
}

impl UpdatePlan {
    /// Plans an update.
    pub fn new(
        u: &SqlUpdate,
        dialect: Dialect,
        types: Arc<ColumnTypes>,
        hmac_key: Option<Arc<[u8]>>,
        matching: SqlMatch,
    ) -> Result<Self, BuildError> {
        let key = key_columns(u);
        let set: Vec<(String, SetValue)> =
            u.set.iter().map(|(c, v)| (c.clone(), v.clone())).collect();
        if set.is_empty() {
            return Err(BuildError::Invalid(
                "an update needs at least one column in `set`".into(),
            ));
        }
        if hmac_key.is_none()
            && set.iter().any(|(_, v)| {
                matches!(
                    v,
                    SetValue::Mask {
                        mask: crate::model::MaskStrategy::Hmac,
                        ..
                    }
                )
            })
        {
            return Err(BuildError::Invalid(
                "the `hmac` mask needs `hmac_key` in the connector's configuration".into(),
            ));
        }
        let target = Target {
            table: &u.table,
            filter: &u.filter,
            through: u.through.as_ref(),
            any: &u.any,
            unless: &u.unless,
        };
        target.require_predicate()?;
        let problems = column_problems(u, &types, dialect);
        if !problems.is_empty() {
            return Err(BuildError::Invalid(problems.join("; ")));
        }
        let mut columns = key.clone();
        for (c, v) in &set {
            if mask::needs_old_value(v) && !columns.contains(c) {
                columns.push(c.clone());
            }
        }
        let mut b = Builder::new(dialect, &types).matching(matching);
        b.select(&target, Projection::Columns(&columns), &[], true)?;
        let lock = b.finish();
        let bulk = if set.iter().any(|(_, v)| mask::is_per_row(v)) {
            None
        } else {
            let constants: Vec<(String, Value)> = set
                .iter()
                .map(|(c, v)| (c.clone(), mask::constant(v).unwrap_or(Value::Null)))
                .collect();
            let mut b = Builder::new(dialect, &types).matching(matching);
            b.update(&target, &constants)?;
            Some(b.finish())
        };
        Ok(UpdatePlan {
            lock,
            bulk,
            table: u.table.clone(),
            key,
            set,
            dialect,
            types,
            hmac_key,
        })
    }

    /// The key column names.
    pub fn key(&self) -> &[String] {
        &self.key
    }

    /// The values a locked row gets, and the `UPDATE` by key that writes them.
    pub fn row_update(&self, row: &Map<String, Value>) -> Result<(Statement, Written), BuildError> {
        let key = self.key_of(row)?;
        let mut values = Map::new();
        let mut set = Vec::with_capacity(self.set.len());
        for (c, v) in &self.set {
            let old = row.get(c).unwrap_or(&Value::Null);
            let new = mask::apply(v, old, self.hmac_key.as_deref()).map_err(BuildError::Invalid)?;
            values.insert(c.clone(), new.clone());
            set.push((c.clone(), new));
        }
        let pairs: Vec<(String, Value)> =
            self.key.iter().cloned().zip(key.iter().cloned()).collect();
        let mut b = Builder::new(self.dialect, &self.types);
        b.update_by_key(&self.table, &set, &pairs)?;
        Ok((b.finish(), Written { key, values }))
    }

    /// What a locked row holds after the bulk statement.
    pub fn bulk_written(&self, row: &Map<String, Value>) -> Result<Written, BuildError> {
        let values = self
            .set
            .iter()
            .map(|(c, v)| (c.clone(), mask::constant(v).unwrap_or(Value::Null)))
            .collect();
        Ok(Written {
            key: self.key_of(row)?,
            values,
        })
    }

    fn key_of(&self, row: &Map<String, Value>) -> Result<Vec<Value>, BuildError> {
        self.key
            .iter()
            .map(|k| match row.get(k) {
                Some(Value::Null) | None => Err(BuildError::Invalid(format!(
                    "a matched row of `{}` has no value in key column `{k}`; set `key` to its primary key",
                    self.table
                ))),
                Some(v) => Ok(v.clone()),
            })
            .collect()
    }
}

/// The key columns of an update (`id` unless stated).
pub fn key_columns(u: &SqlUpdate) -> Vec<String> {
    if u.key.is_empty() {
        vec!["id".to_owned()]
    } else {
        u.key.clone()
    }
}

/// What an update would meet in the database, found from its columns before anything runs:
/// a column that does not exist, NULL into a NOT NULL or key column, text longer than the
/// column takes (`hmac` is 64 characters; say `length:` to cut it), text into a column of
/// another type. Empty when nothing is wrong (or the table's columns are unknown).
pub fn column_problems(u: &SqlUpdate, types: &ColumnTypes, dialect: Dialect) -> Vec<String> {
    if !types.has(&u.table) {
        return Vec::new();
    }
    let key = key_columns(u);
    let mut out = Vec::new();
    for (name, v) in &u.set {
        let Some(col) = types.column(&u.table, name) else {
            out.push(format!("`{}` has no column `{name}`", u.table));
            continue;
        };
        let shown = format!("`{}.{name}` ({})", u.table, col.ty);
        let writes_null = match v {
            SetValue::Value(Value::Null) => true,
            SetValue::Value(_) => false,
            SetValue::Mask { .. } => mask::constant(v).is_some_and(|c| c.is_null()),
        };
        if writes_null && key.contains(name) {
            out.push(format!(
                "{shown} is part of the key; it cannot be set to NULL"
            ));
        } else if writes_null && !col.nullable {
            out.push(format!(
                "{shown} is NOT NULL; mask it with `fixed`, `hash`, `hmac` or `random` instead of NULL"
            ));
        }
        let text_len = match v {
            SetValue::Value(Value::String(s)) => Some(s.chars().count()),
            SetValue::Mask { .. } => match mask::constant(v) {
                Some(Value::String(s)) => Some(s.chars().count()),
                Some(_) => None,
                None => mask::written_len(v),
            },
            SetValue::Value(_) => None,
        };
        let is_mask = mask::is_per_row(v);
        // SQLite stores text in any column; elsewhere a masked value is text.
        if is_mask && dialect != Dialect::Sqlite && !col.is_text() {
            out.push(format!(
                "{shown} does not hold text, but the mask writes text; use `mask: null`, a literal of the column's type, or delete the row"
            ));
            continue;
        }
        if let (Some(len), Some(max)) = (text_len, col.max_len)
            && len as u64 > max
        {
            let hint = match v {
                SetValue::Mask {
                    mask: MaskStrategy::Hash | MaskStrategy::Hmac | MaskStrategy::Random,
                    ..
                } => format!("; add `length: {max}` to cut the mask to fit"),
                _ => String::new(),
            };
            out.push(format!(
                "{shown} takes at most {max} characters; the new value has {len}{hint}"
            ));
        }
    }
    out
}
