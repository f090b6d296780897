//! The three concrete pools behind one type, and the primitive operations on them: read
//! rows, stream rows, run mutations in a transaction ([`OpenTx`]).

use std::future::Future;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::{MySql, MySqlPool, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::builder::Column;
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
    /// Raw `execute`, with the read that checks the rows it changes.
    Execute(Statement, Option<Guard>),
    /// A structured update.
    Update(UpdatePlan),
}

/// The check of a raw `execute` (its preview read), run in the mutation's transaction
/// before the statement: every row it returns must hold exactly the bound value in each
/// column named like a parameter (`:email` checks column `email`), and the statement may
/// change no more rows than it returns. Otherwise nothing changes.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The preview read.
    pub read: Statement,
    /// Parameter name to the value bound (the subject's identity, for the usual `:email`).
    pub identity: Vec<(String, String)>,
}

impl Guard {
    /// Why the re-read rows show the statement would touch someone else, if they do.
    fn stranger(&self, rows: &[Map<String, Value>]) -> Option<String> {
        for (i, row) in rows.iter().enumerate() {
            for (param, want) in &self.identity {
                let Some((col, got)) = row.iter().find(|(c, _)| c.eq_ignore_ascii_case(param))
                else {
                    continue;
                };
                let same = match got {
                    Value::String(s) => s == want,
                    Value::Null => false,
                    other => want.as_str() == other.to_string().as_str(),
                };
                if !same {
                    return Some(format!(
                        "row {} of the re-read holds a `{col}` that is not exactly the bound `:{param}` (another case, spacing or person); nothing was changed. Make the statement compare exactly (e.g. `BINARY`, `COLLATE \"C\"`, `COLLATE BINARY`)",
                        i + 1
                    ));
                }
            }
        }
        None
    }
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
        // A delete without a row limit is atomic by itself and idempotent (a re-run after a
        // lost answer deletes nothing more): no explicit transaction, one round trip.
        if let (Mutation::Delete(st), None) = (m, max_rows) {
            let r = on_pool!(self, p, Db => {
                timed(timeout, &st.binds, statement::query::<Db>(st).execute(p))
                    .await
                    .map(|r| r.rows_affected())
            });
            // Without a transaction, a statement that times out may have committed.
            let affected = r.map_err(|f| match f {
                Failure::Timeout(d) => Failure::CommitUnknown(format!("no answer within {d:?}")),
                other => other,
            })?;
            return Ok(Applied {
                affected,
                written: Vec::new(),
            });
        }
        let mut tx = self.begin(timeout).await?;
        // An error drops the transaction, which rolls it back.
        let applied = tx.apply(m, max_rows, timeout).await?;
        tx.commit(timeout).await?;
        Ok(applied)
    }

    /// Most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        on_pool!(self, p, _Db => p.options().get_max_connections())
    }

    /// Opens a transaction (SQLite: with the write lock taken up front, so a read-then-write
    /// transaction cannot fail on lock upgrade halfway; busy_timeout covers the wait).
    pub async fn begin(&self, timeout: Duration) -> Result<OpenTx, Failure> {
        Ok(match self {
            Pools::Pg(p) => OpenTx::Pg(timed(timeout, &[], p.begin()).await?),
            Pools::My(p) => OpenTx::My(timed(timeout, &[], p.begin()).await?),
            Pools::Lite(p) => {
                OpenTx::Lite(timed(timeout, &[], p.begin_with("BEGIN IMMEDIATE")).await?)
            }
        })
    }

    /// The columns of a table (`schema.table` or `table`, unquoted): type, length limit and
    /// nullability, for casts, exact comparisons and mask checks. Empty when it is unknown.
    pub async fn columns(
        &self,
        table: &str,
        quoted_table: &str,
        timeout: Duration,
    ) -> Result<Vec<(String, Column)>, Failure> {
        use sqlx::Row;
        let (schema, name) = match table.split_once('.') {
            Some((s, t)) => (Some(s.to_owned()), t.to_owned()),
            None => (None, table.to_owned()),
        };
        let get = |r: &dyn Fn(usize) -> Result<Option<String>, sqlx::Error>,
                   i: usize|
         -> Result<Option<String>, Failure> {
            r(i).map_err(|e| Failure::db(e, &[]))
        };
        let column = |name: Option<String>,
                      ty: Option<String>,
                      len: Option<String>,
                      nullable: Option<String>| {
            (
                name.unwrap_or_default(),
                Column {
                    ty: ty.unwrap_or_default(),
                    max_len: len.and_then(|l| l.parse().ok()).filter(|l| *l > 0),
                    nullable: !matches!(nullable.as_deref(), Some("NO" | "1" | "t" | "true")),
                },
            )
        };
        match self {
            Pools::Pg(p) => {
                let st = Statement {
                    sql: "SELECT a.attname::text, quote_ident(n.nspname) || '.' || quote_ident(t.typname), \
                          CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 \
                               THEN (a.atttypmod - 4)::text END, \
                          CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END \
                          FROM pg_catalog.pg_attribute a \
                          JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                          JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
                          WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped"
                        .to_owned(),
                    binds: vec![Bind::Text(quoted_table.to_owned())],
                };
                let rows =
                    timed(timeout, &[], statement::query::<Postgres>(&st).fetch_all(p)).await?;
                rows.iter()
                    .map(|r| {
                        let f = |i: usize| r.try_get::<Option<String>, _>(i);
                        Ok(column(get(&f, 0)?, get(&f, 1)?, get(&f, 2)?, get(&f, 3)?))
                    })
                    .collect()
            }
            Pools::My(p) => {
                let mut binds = Vec::new();
                let schema_sql = match schema {
                    Some(s) => {
                        binds.push(Bind::Text(s));
                        "?"
                    }
                    None => "DATABASE()",
                };
                binds.push(Bind::Text(name));
                let st = Statement {
                    sql: format!(
                        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), \
                         CAST(CHARACTER_MAXIMUM_LENGTH AS CHAR), CAST(IS_NULLABLE AS CHAR) \
                         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema_sql} AND TABLE_NAME = ?"
                    ),
                    binds,
                };
                let rows = timed(timeout, &[], statement::query::<MySql>(&st).fetch_all(p)).await?;
                rows.iter()
                    .map(|r| {
                        let f = |i: usize| r.try_get::<Option<String>, _>(i);
                        Ok(column(get(&f, 0)?, get(&f, 1)?, get(&f, 2)?, get(&f, 3)?))
                    })
                    .collect()
            }
            Pools::Lite(p) => {
                let mut binds = vec![Bind::Text(name)];
                if let Some(s) = schema {
                    binds.push(Bind::Text(s));
                }
                let st = Statement {
                    sql: format!(
                        "SELECT name, type, CAST(\"notnull\" AS TEXT) FROM pragma_table_info({})",
                        if binds.len() > 1 { "?, ?" } else { "?" }
                    ),
                    binds,
                };
                let rows =
                    timed(timeout, &[], statement::query::<Sqlite>(&st).fetch_all(p)).await?;
                rows.iter()
                    .map(|r| {
                        let f = |i: usize| r.try_get::<Option<String>, _>(i);
                        Ok(column(get(&f, 0)?, get(&f, 1)?, None, get(&f, 2)?))
                    })
                    .collect()
            }
        }
    }
}

/// A transaction kept open across mutations: one, or every SQL mutation of a service (its
/// unit of work). Dropped without [`OpenTx::commit`], it rolls back.
pub enum OpenTx {
    /// PostgreSQL.
    Pg(Transaction<'static, Postgres>),
    /// MySQL / MariaDB.
    My(Transaction<'static, MySql>),
    /// SQLite.
    Lite(Transaction<'static, Sqlite>),
}

impl std::fmt::Debug for OpenTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenTx")
    }
}

/// Runs `$body` with `$tx` bound to the concrete transaction and `$db` to its database type.
macro_rules! on_tx {
    ($open:expr, $tx:ident, $db:ident => $body:expr) => {
        match $open {
            OpenTx::Pg($tx) => {
                type $db = Postgres;
                $body
            }
            OpenTx::My($tx) => {
                type $db = MySql;
                $body
            }
            OpenTx::Lite($tx) => {
                type $db = Sqlite;
                $body
            }
        }
    };
}

impl OpenTx {
    /// Runs a mutation in this transaction, uncommitted. An error leaves the transaction to be
    /// rolled back (more than `max_rows` changed, a raw `execute` whose re-read finds someone
    /// else, or changes more rows than that re-read).
    pub async fn apply(
        &mut self,
        m: &Mutation,
        max_rows: Option<u64>,
        timeout: Duration,
    ) -> Result<Applied, Failure> {
        let max = max_rows.unwrap_or(u64::MAX);
        let applied = on_tx!(self, tx, Db => {
            match m {
                Mutation::Delete(st) | Mutation::Execute(st, None) => {
                    let r = timed(timeout, &st.binds, statement::query::<Db>(st).execute(&mut **tx)).await?;
                    Applied { affected: r.rows_affected(), written: Vec::new() }
                }
                Mutation::Execute(st, Some(guard)) => {
                    let rows = timed(timeout, &guard.read.binds, statement::query::<Db>(&guard.read).fetch_all(&mut **tx)).await?;
                    let rows = rows.iter().map(|r| r.to_json()).collect::<Result<Vec<_>, _>>()?;
                    if let Some(why) = guard.stranger(&rows) {
                        return Err(Failure::Refused(why));
                    }
                    let r = timed(timeout, &st.binds, statement::query::<Db>(st).execute(&mut **tx)).await?;
                    let affected = r.rows_affected();
                    if affected > rows.len() as u64 {
                        return Err(Failure::Refused(format!(
                            "would change {affected} rows, but its preview read finds {} for this subject; rolled back",
                            rows.len()
                        )));
                    }
                    Applied { affected, written: Vec::new() }
                }
                Mutation::Update(plan) => {
                    let rows = timed(timeout, &plan.lock.binds, statement::query::<Db>(&plan.lock).fetch_all(&mut **tx)).await?;
                    let n = rows.len() as u64;
                    if n > max {
                        return Err(too_many(n, max));
                    }
                    let mut applied = Applied::default();
                    for row in &rows {
                        let row = row.to_json()?;
                        if plan.bulk.is_some() {
                            applied.written.push(plan.bulk_written(&row).map_err(|e| Failure::Refused(e.to_string()))?);
                        } else {
                            let (st, w) = plan.row_update(&row).map_err(|e| Failure::Refused(e.to_string()))?;
                            let r = timed(timeout, &st.binds, statement::query::<Db>(&st).execute(&mut **tx)).await?;
                            applied.affected += r.rows_affected();
                            applied.written.push(w);
                        }
                    }
                    if let Some(bulk) = &plan.bulk {
                        let r = timed(timeout, &bulk.binds, statement::query::<Db>(bulk).execute(&mut **tx)).await?;
                        applied.affected = r.rows_affected();
                    }
                    applied
                }
            }
        });
        if applied.affected > max {
            return Err(too_many(applied.affected, max));
        }
        Ok(applied)
    }

    /// All rows of a read in this transaction (it sees the transaction's changes).
    pub async fn fetch_all(
        &mut self,
        st: &Statement,
        timeout: Duration,
    ) -> Result<Vec<Map<String, Value>>, Failure> {
        on_tx!(self, tx, Db => {
            let rows = timed(timeout, &st.binds, statement::query::<Db>(st).fetch_all(&mut **tx)).await?;
            rows.iter().map(|r| r.to_json().map_err(Failure::from)).collect()
        })
    }

    /// Streams the rows of a read in this transaction into `sink`; returns how many.
    pub async fn stream(
        &mut self,
        st: &Statement,
        timeout: Duration,
        sink: &mut (dyn RecordSink + '_),
    ) -> Result<u64, Failure> {
        on_tx!(self, tx, Db => {
            let mut n = 0;
            let mut rows = statement::query::<Db>(st).fetch(&mut **tx);
            while let Some(row) = timed(timeout, &st.binds, rows.try_next()).await? {
                sink.write(&Value::Object(row.to_json()?)).map_err(Failure::Sink)?;
                n += 1;
            }
            Ok(n)
        })
    }

    /// Commits. The database refusing the commit (a deferred constraint) rolled it back; an
    /// answer lost on the way leaves it unknown ([`Failure::CommitUnknown`]).
    pub async fn commit(self, timeout: Duration) -> Result<(), Failure> {
        let r = on_tx!(self, tx, _Db => tokio::time::timeout(timeout, tx.commit()).await);
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e @ sqlx::Error::Database(_))) => Err(Failure::db(e, &[])),
            Ok(Err(e)) => Err(Failure::CommitUnknown(e.to_string())),
            Err(_) => Err(Failure::CommitUnknown(format!(
                "no answer within {timeout:?}"
            ))),
        }
    }

    /// Rolls back (a failure to say so still discards it: the connection is not reused).
    pub async fn rollback(self, timeout: Duration) {
        on_tx!(self, tx, _Db => {
            let _ = tokio::time::timeout(timeout, tx.rollback()).await;
        });
    }
}
