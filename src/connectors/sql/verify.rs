//! Previews (the rows a structured mutation would touch) and verification (the rows after).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::builder::{Builder, Projection, Target};
use super::update::{Written, column_problems, key_columns};
use super::{SqlClient, action, mask, op_key, refused, tables};
use crate::connectors::{ChangePreview, ConnectorError, Operation};
use crate::journal::Verification;
use crate::model::{SqlAction, SqlMatch};

/// Most rows shown in a preview (the count is always exact).
pub const PREVIEW_ROWS: u64 = 1000;
/// Keys re-read per verification query.
const KEYS_PER_QUERY: usize = 200;
/// Deletes checked per query by [`SqlClient::verify_deletes`].
const CHECKS_PER_QUERY: usize = 100;

impl SqlClient {
    async fn count(&self, t: &Target<'_>, m: SqlMatch) -> Result<u64, ConnectorError> {
        let types = self.column_types(&tables(t)).await?;
        let mut b = Builder::new(self.dialect, &types).matching(m);
        b.select(t, Projection::Count, &[], false)
            .map_err(refused)?;
        let st = b.finish();
        let (rows, _) = self
            .retrying(|| self.pools.fetch_all(&st, self.timeout))
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.get("n"))
            .and_then(|n| {
                n.as_u64()
                    .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0))
    }

    async fn rows(
        &self,
        t: &Target<'_>,
        m: SqlMatch,
        limit: Option<u64>,
    ) -> Result<Vec<Map<String, Value>>, ConnectorError> {
        let types = self.column_types(&tables(t)).await?;
        let mut b = Builder::new(self.dialect, &types).matching(m);
        b.select(t, Projection::Columns(&[]), &[], false)
            .map_err(refused)?;
        if let Some(n) = limit {
            b.limit(n);
        }
        let st = b.finish();
        Ok(self
            .retrying(|| self.pools.fetch_all(&st, self.timeout))
            .await?
            .0)
    }

    /// The rows a structured update/delete would change (reads only).
    pub(super) async fn preview_change(
        &self,
        a: &SqlAction,
    ) -> Result<Option<ChangePreview>, ConnectorError> {
        let (t, set) = match (&a.update, &a.delete) {
            (Some(u), _) => (
                Target {
                    table: &u.table,
                    filter: &u.filter,
                    through: u.through.as_ref(),
                    any: &u.any,
                    unless: &u.unless,
                },
                Some(&u.set),
            ),
            (None, Some(d)) => (
                Target {
                    table: &d.table,
                    filter: &d.filter,
                    through: d.through.as_ref(),
                    any: &d.any,
                    unless: &d.unless,
                },
                None,
            ),
            _ => return Ok(None),
        };
        t.require_predicate().map_err(refused)?;
        if let Some(u) = &a.update {
            let types = self.column_types(&[u.table.as_str()]).await?;
            let problems = column_problems(u, &types, self.dialect);
            if !problems.is_empty() {
                return Err(ConnectorError::Refused(problems.join("; ")));
            }
        }
        let count = self.count(&t, a.matching).await?;
        let before = self.rows(&t, a.matching, Some(PREVIEW_ROWS)).await?;
        let after = set.map(|set| {
            Value::Array(
                before
                    .iter()
                    .map(|row| {
                        let mut row = row.clone();
                        for (c, v) in set {
                            row.insert(c.clone(), mask::preview(v));
                        }
                        Value::Object(row)
                    })
                    .collect(),
            )
        });
        Ok(Some(ChangePreview {
            before: Value::Array(before.into_iter().map(Value::Object).collect()),
            after,
            count,
        }))
    }

    /// Checks an operation's effect as [`SqlClient::verify_change`] does.
    pub(super) async fn verify_op(
        &self,
        op: &Operation,
        deleted: &[&str],
    ) -> Result<Option<Verification>, ConnectorError> {
        self.verify_change(action(op)?, deleted).await
    }

    /// Checks a structured mutation's effect (reads only). `deleted` names the tables the
    /// same committed transaction also deleted from: an updated row of one of them that is
    /// gone was deleted after its update (a derived detach writes rows the erasure then
    /// deletes), which is what the erasure wanted, not a failed write.
    pub(super) async fn verify_change(
        &self,
        a: &SqlAction,
        deleted: &[&str],
    ) -> Result<Option<Verification>, ConnectorError> {
        if let Some(d) = &a.delete {
            let t = Target {
                table: &d.table,
                filter: &d.filter,
                through: d.through.as_ref(),
                any: &d.any,
                unless: &d.unless,
            };
            let n = self.count(&t, a.matching).await?;
            return Ok(Some(delete_verification(&d.table, n)));
        }
        let Some(u) = &a.update else {
            return Ok(None);
        };
        let written = self
            .written
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&op_key(a)));
        let Some(written) = written else {
            return self.verify_by_predicate(a).await.map(Some);
        };
        let key = key_columns(u);
        let types = self.column_types(&[u.table.as_str()]).await?;
        let mut seen: Vec<Map<String, Value>> = Vec::with_capacity(written.len());
        for chunk in written.chunks(KEYS_PER_QUERY) {
            let keys: Vec<Vec<Value>> = chunk.iter().map(|w| w.new_key(&key)).collect();
            let mut b = Builder::new(self.dialect, &types);
            b.select_by_keys(&u.table, &key, &keys).map_err(refused)?;
            let st = b.finish();
            seen.extend(
                self.retrying(|| self.pools.fetch_all(&st, self.timeout))
                    .await?
                    .0,
            );
        }
        let (missing, differ) = compare(&written, &seen, &key);
        let gone_since = missing > 0 && deleted.contains(&u.table.as_str());
        let mut detail = format!(
            "re-read {} updated row(s) of `{}` by key: ",
            written.len(),
            u.table
        );
        if missing == 0 && differ.is_empty() {
            detail.push_str("all hold the written values");
        } else if gone_since && differ.is_empty() {
            detail.push_str(&format!(
                "{} hold the written values, {missing} deleted since by the same transaction's delete from `{}`",
                written.len() - missing,
                u.table
            ));
        } else {
            detail.push_str(&format!("{missing} missing, {} differ", differ.len()));
            if !differ.is_empty() {
                detail.push_str(&format!(" (columns: {})", differ.join(", ")));
            }
        }
        Ok(Some(Verification {
            passed: differ.is_empty() && (missing == 0 || gone_since),
            detail,
        }))
    }

    /// Checks structured deletes as [`SqlClient::verify_change`] does, `CHECKS_PER_QUERY` in
    /// one query (`SELECT 0 AS i, COUNT(*) AS n FROM ... UNION ALL SELECT 1 ...`): the
    /// verifications by the index given with each. A query that fails checks none of its
    /// deletes (the caller checks each alone, so that a failure is that delete's own).
    pub(super) async fn verify_deletes(
        &self,
        deletes: &[(usize, &SqlAction)],
    ) -> HashMap<usize, Verification> {
        let mut out = HashMap::new();
        for chunk in deletes.chunks(CHECKS_PER_QUERY) {
            if let Ok(counts) = self.count_deletes(chunk).await {
                for ((i, a), n) in chunk.iter().zip(counts) {
                    if let Some(d) = &a.delete {
                        out.insert(*i, delete_verification(&d.table, n));
                    }
                }
            }
        }
        out
    }

    /// The rows still matching each delete's predicate, in one query.
    async fn count_deletes(
        &self,
        chunk: &[(usize, &SqlAction)],
    ) -> Result<Vec<u64>, ConnectorError> {
        let mut targets = Vec::with_capacity(chunk.len());
        for (_, a) in chunk {
            let Some(d) = &a.delete else {
                return Err(ConnectorError::Refused("not a delete".into()));
            };
            targets.push((
                Target {
                    table: &d.table,
                    filter: &d.filter,
                    through: d.through.as_ref(),
                    any: &d.any,
                    unless: &d.unless,
                },
                a.matching,
            ));
        }
        let mut names: Vec<&str> = targets.iter().flat_map(|(t, _)| tables(t)).collect();
        names.sort_unstable();
        names.dedup();
        let types = self.column_types(&names).await?;
        let mut b = Builder::new(self.dialect, &types);
        for (tag, (t, matching)) in targets.iter().enumerate() {
            if tag > 0 {
                b.union_all();
            }
            b.tagged_count(t, tag, *matching).map_err(refused)?;
        }
        let st = b.finish();
        let (rows, _) = self
            .retrying(|| self.pools.fetch_all(&st, self.timeout))
            .await?;
        let mut counts: Vec<Option<u64>> = vec![None; targets.len()];
        for row in rows {
            let (Some(i), Some(n)) = (row.get("i").and_then(number), row.get("n").and_then(number))
            else {
                continue;
            };
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| counts.get_mut(i)) {
                *slot = Some(n);
            }
        }
        counts
            .into_iter()
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| ConnectorError::Refused("a count is missing from the answer".into()))
    }

    /// Without a record of what was written (another process ran the update): re-read by the
    /// predicate and check the constant values.
    async fn verify_by_predicate(&self, a: &SqlAction) -> Result<Verification, ConnectorError> {
        let Some(u) = &a.update else {
            return Err(ConnectorError::Refused("not an update".into()));
        };
        let t = Target {
            table: &u.table,
            filter: &u.filter,
            through: u.through.as_ref(),
            any: &u.any,
            unless: &u.unless,
        };
        let rows = self.rows(&t, a.matching, Some(PREVIEW_ROWS)).await?;
        if rows.is_empty() {
            let renamed = u.filter.keys().any(|c| u.set.contains_key(c));
            return Ok(Verification {
                passed: true,
                detail: if renamed {
                    format!(
                        "no row of `{}` matches the old values of the updated columns any more",
                        u.table
                    )
                } else {
                    format!("no row of `{}` matches the predicate", u.table)
                },
            });
        }
        let mut bad = Vec::new();
        let mut unchecked = Vec::new();
        for (c, v) in &u.set {
            match mask::constant(v) {
                Some(want)
                    if rows
                        .iter()
                        .all(|r| same(r.get(c).unwrap_or(&Value::Null), &want)) => {}
                Some(_) => bad.push(c.clone()),
                None => unchecked.push(c.clone()),
            }
        }
        let mut detail = format!(
            "re-read {} row(s) of `{}` by the predicate",
            rows.len(),
            u.table
        );
        if !bad.is_empty() {
            detail.push_str(&format!(
                "; columns not holding the new value: {}",
                bad.join(", ")
            ));
        }
        if !unchecked.is_empty() {
            detail.push_str(&format!(
                "; masked columns not checkable here: {}",
                unchecked.join(", ")
            ));
        }
        Ok(Verification {
            passed: bad.is_empty(),
            detail,
        })
    }
}

/// A delete's verification: no row of `table` matches its predicate any more.
fn delete_verification(table: &str, n: u64) -> Verification {
    Verification {
        passed: n == 0,
        detail: format!("rows of `{table}` matching the delete's predicate afterwards: {n}"),
    }
}

/// A count as the database returns it (a number, or text for a big integer).
fn number(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Rows missing, and columns whose value differs from what was written.
fn compare(
    written: &[Written],
    seen: &[Map<String, Value>],
    key: &[String],
) -> (usize, Vec<String>) {
    let mut missing = 0;
    let mut differ: Vec<String> = Vec::new();
    for w in written {
        let new_key = w.new_key(key);
        let row = seen.iter().find(|r| {
            key.iter()
                .zip(&new_key)
                .all(|(k, v)| same(r.get(k).unwrap_or(&Value::Null), v))
        });
        let Some(row) = row else {
            missing += 1;
            continue;
        };
        for (c, want) in &w.values {
            if !same(row.get(c).unwrap_or(&Value::Null), want) && !differ.contains(c) {
                differ.push(c.clone());
            }
        }
    }
    (missing, differ)
}

/// Equality across representations: `"42"` written to an integer column reads back as `42`.
fn same(got: &Value, want: &Value) -> bool {
    if got == want {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    match (text(got), text(want)) {
        (Some(a), Some(b)) => {
            a == b
                || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
                || matches!(
                    (a.as_str(), b.as_str()),
                    ("1" | "true", "true" | "1") | ("0" | "false", "false" | "0")
                )
        }
        _ => false,
    }
}
