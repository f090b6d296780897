//! The three concrete pools behind one type, and the primitive operations on them: read
//! rows, stream rows, run one mutation in one transaction.

use std::future::Future;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::{MySql, MySqlPool, PgPool, Postgres, Sqlite, SqlitePool};

use super::failure::Failure;
use super::row::RowJson;
use super::statement::{self, Bind, Statement};
use super::update::{UpdatePlan, Written};
use crate::connectors::RecordSink;

/// One pool per connector, of the backend its URL names.
#[derive(Debug, Clone)]
pub enum Pools {
    /// PostgreSQL.
    Pg(PgPool),
    /// MySQL / MariaDB.
    My(MySqlPool),
    /// SQLite.
    Lite(SqlitePool),
}

/// Runs `$body` with `$p` bound to the concrete pool and `$db` to its database type.
macro_rules! on_pool {
    ($pools:expr, $p:ident, $db:ident => $body:expr) => {
        match $pools {
            Pools::Pg($p) => {
                type $db = Postgres;
                $body
            }
            Pools::My($p) => {
                type $db = MySql;
                $body
            }
            Pools::Lite($p) => {
                type $db = Sqlite;
                $body
            }
        }
    };
}

/// A mutation, run in one transaction.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// A structured delete: idempotent, so it may run again after an ambiguous failure.
    Delete(Statement),
    /// Raw `execute`.
    Execute(Statement),
    /// A structured update.
    Update(UpdatePlan),
}

/// What a committed mutation did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Rows changed.
    pub affected: u64,
    /// For updates: each row's key and the values written.
    pub written: Vec<Written>,
}

async fn timed<T>(
    after: Duration,
    binds: &[Bind],
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(after, fut).await {
        Ok(r) => r.map_err(|e| Failure::db(e, binds)),
        Err(_) => Err(Failure::Timeout(after)),
    }
}

fn too_many(n: u64, max: u64) -> Failure {
    Failure::Refused(format!(
        "would change {n} rows, more than max_rows {max}; rolled back"
    ))
}

impl Pools {
    /// All rows of a read.
    pub async fn fetch_all(
        &self,
        st: &Statement,
        timeout: Duration,
    ) -> Result<Vec<Map<String, Value>>, Failure> {
        on_pool!(self, p, Db => {
            let rows = timed(timeout, &st.binds, statement::query::<Db>(st).fetch_all(p)).await?;
            rows.iter().map(|r| r.to_json().map_err(Failure::from)).collect()
        })
    }

    /// Streams the rows of a read into `sink`, one at a time; returns how many.
    /// `written` counts rows already handed to the sink (a retry after that would duplicate).
    pub async fn stream(
        &self,
        st: &Statement,
        timeout: Duration,
        sink: &mut (dyn RecordSink + '_),
        written: &mut u64,
    ) -> Result<u64, Failure> {
        on_pool!(self, p, Db => {
            let mut rows = statement::query::<Db>(st).fetch(p);
            while let Some(row) = timed(timeout, &st.binds, rows.try_next()).await? {
                let v = Value::Object(row.to_json()?);
                sink.write(&v).map_err(Failure::Sink)?;
                *written += 1;
            }
            Ok(*written)
        })
    }

    /// Runs a mutation in one transaction; more than `max_rows` changed rolls it back.
    pub async fn mutate(
        &self,
        m: &Mutation,
        max_rows: Option<u64>,
        timeout: Duration,
    ) -> Result<Applied, Failure> {
        let max = max_rows.unwrap_or(u64::MAX);
        let sqlite = matches!(self, Pools::Lite(_));
        on_pool!(self, p, Db => {
            // A delete without a row limit is atomic by itself and idempotent (a re-run after a
            // lost answer deletes nothing more): no explicit transaction, one round trip.
            if let (Mutation::Delete(st), None) = (m, max_rows) {
                // Without a transaction, a statement that times out may have committed.
                let r = timed(timeout, &st.binds, statement::query::<Db>(st).execute(p))
                    .await
                    .map_err(|f| match f {
                        Failure::Timeout(d) => Failure::CommitUnknown(format!("no answer within {d:?}")),
                        other => other,
                    })?;
                return Ok(Applied { affected: r.rows_affected(), written: Vec::new() });
            }
            // SQLite: take the write lock up front, so a read-then-write transaction cannot
            // fail on lock upgrade halfway (busy_timeout covers the wait).
            let begin = async {
                if sqlite { p.begin_with("BEGIN IMMEDIATE").await } else { p.begin().await }
            };
            let mut tx = timed(timeout, &[], begin).await?;
            let applied = match m {
                Mutation::Delete(st) | Mutation::Execute(st) => {
                    let r = timed(timeout, &st.binds, statement::query::<Db>(st).execute(&mut *tx)).await?;
                    Applied { affected: r.rows_affected(), written: Vec::new() }
                }
                Mutation::Update(plan) => {
                    let rows = timed(timeout, &plan.lock.binds, statement::query::<Db>(&plan.lock).fetch_all(&mut *tx)).await?;
                    let n = rows.len() as u64;
                    if n > max {
                        // Dropping the transaction rolls it back.
                        return Err(too_many(n, max));
                    }
                    let mut applied = Applied::default();
                    for row in &rows {
                        let row = row.to_json()?;
                        if plan.bulk.is_some() {
                            applied.written.push(plan.bulk_written(&row).map_err(|e| Failure::Refused(e.to_string()))?);
                        } else {
                            let (st, w) = plan.row_update(&row).map_err(|e| Failure::Refused(e.to_string()))?;
                            let r = timed(timeout, &st.binds, statement::query::<Db>(&st).execute(&mut *tx)).await?;
                            applied.affected += r.rows_affected();
                            applied.written.push(w);
                        }
                    }
                    if let Some(bulk) = &plan.bulk {
                        let r = timed(timeout, &bulk.binds, statement::query::<Db>(bulk).execute(&mut *tx)).await?;
                        applied.affected = r.rows_affected();
                    }
                    applied
                }
            };
            if applied.affected > max {
                let _ = tokio::time::timeout(timeout, tx.rollback()).await;
                return Err(too_many(applied.affected, max));
            }
            match tokio::time::timeout(timeout, tx.commit()).await {
                Ok(Ok(())) => Ok(applied),
                Ok(Err(e)) => Err(Failure::CommitUnknown(e.to_string())),
                Err(_) => Err(Failure::CommitUnknown(format!("no answer within {timeout:?}"))),
            }
        })
    }

    /// PostgreSQL column types of a table (`schema.table` as quoted), for casts.
    pub async fn pg_column_types(
        &self,
        quoted_table: &str,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>, Failure> {
        let Pools::Pg(p) = self else {
            return Ok(Vec::new());
        };
        let st = Statement {
            sql: "SELECT a.attname::text, quote_ident(n.nspname) || '.' || quote_ident(t.typname) \
                  FROM pg_catalog.pg_attribute a \
                  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
                  WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped"
                .to_owned(),
            binds: vec![Bind::Text(quoted_table.to_owned())],
        };
        let rows = timed(timeout, &[], statement::query::<Postgres>(&st).fetch_all(p)).await?;
        use sqlx::Row;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0).map_err(|e| Failure::db(e, &[]))?,
                    r.try_get::<String, _>(1).map_err(|e| Failure::db(e, &[]))?,
                ))
            })
            .collect()
    }
}
