//! Structured updates: lock the matched rows, then write constants in one statement or
//! masks row by row (hash/HMAC need each row's old value; random differs per row).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::builder::{BuildError, Builder, ColumnTypes, Projection, Target};
use super::dialect::Dialect;
use super::mask;
use super::statement::Statement;
use crate::model::{SetValue, SqlUpdate};

/// One matched row after the update: its key and the values written.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Key column values, in key order.
    pub key: Vec<Value>,
    /// Column to the value written.
    pub values: Map<String, Value>,
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
        };
        target.require_predicate()?;
        let mut columns = key.clone();
        for (c, v) in &set {
            if mask::needs_old_value(v) && !columns.contains(c) {
                columns.push(c.clone());
            }
        }
        let mut b = Builder::new(dialect, &types);
        b.select(&target, Projection::Columns(&columns), &[], true)?;
        let lock = b.finish();
        let bulk = if set.iter().any(|(_, v)| mask::is_per_row(v)) {
            None
        } else {
            let constants: Vec<(String, Value)> = set
                .iter()
                .map(|(c, v)| (c.clone(), mask::constant(v).unwrap_or(Value::Null)))
                .collect();
            let mut b = Builder::new(dialect, &types);
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
