//! The shared state store on PostgreSQL: several workers on several machines share runs
//! through leases (`FOR NO KEY UPDATE SKIP LOCKED` plus an expiry), journal writes are
//! group-committed by one writer task per process.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::journal_writer::{BatchSink, JournalWriter};
use super::pg_batch::PgBatcher;
use super::util::*;
use super::{StoreError, postgres_schema};
use crate::journal::{RequestRecord, RunRecord};

pub(super) const RUN_COLUMNS: &str =
    "id, request_id, mode, status, created_at, updated_at, plan::text AS plan";
pub(super) const REQUEST_COLUMNS: &str = "body::text AS body, state, reason, received, deadline, extended, \
                               extension_reason, created_at, updated_at";

/// Key of the advisory lock serialising schema migrations of concurrently starting workers.
const MIGRATION_LOCK: i64 = 0x6473_7263_746c_0001;

/// Connections per process (one is kept by the batching task while it works).
const POOL_SIZE: u32 = 7;

/// The PostgreSQL state store.
pub struct PostgresStore {
    pub(super) pool: PgPool,
    pub(super) journal: JournalWriter,
    pub(super) batch: PgBatcher,
    pub(super) audit_key: super::AuditKey,
}

impl PostgresStore {
    /// Connects to `url` and migrates the schema. A `schema=NAME` query parameter puts the
    /// store's tables in that schema (created if missing); the URL may also set
    /// `options=-csearch_path%3DNAME` itself.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let (url, schema) = split_schema(url)?;
        let mut options = PgConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Location(redact(&url), e.to_string()))?;
        if let Some(schema) = &schema {
            options = options.options([("search_path", schema.as_str())]);
        }
        // A journal write is durable when it returns, whatever the server's default.
        options = options.options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Location(redact(&url), e.to_string()))?;
        migrate(&pool, schema.as_deref()).await?;
        let journal = JournalWriter::start(PgSink { pool: pool.clone() });
        let audit_key = super::AuditKey::default();
        let batch = PgBatcher::start(pool.clone());
        Ok(PostgresStore {
            pool,
            journal,
            batch,
            audit_key,
        })
    }

    pub(super) async fn write_tx(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(db)
    }

    pub(super) async fn run_rows(
        &self,
        sql: String,
        arg: &str,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(arg)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter()
            .map(|r| run_row(&r)?.into_record())
            .collect()
    }

    pub(super) async fn request_rows(
        &self,
        sql: String,
        arg: Option<&str>,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(arg) = arg {
            query = query.bind(arg.to_owned());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db)?;
        rows.into_iter()
            .map(|r| request_row(&r)?.into_record())
            .collect()
    }
}

/// Takes the `schema` query parameter out of a URL.
fn split_schema(url: &str) -> Result<(String, Option<String>), StoreError> {
    let mut parsed =
        url::Url::parse(url).map_err(|e| StoreError::Location(redact(url), e.to_string()))?;
    let mut schema = None;
    let rest: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "schema" {
                schema = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if schema.is_none() {
        return Ok((url.to_owned(), None));
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok((parsed.to_string(), schema))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the PostgreSQL URL".to_owned(),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn migrate(pool: &PgPool, schema: Option<&str>) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    if let Some(schema) = schema {
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
    let current = current.unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "schema version {current} is newer than this dsrctl knows ({SCHEMA_VERSION}); upgrade dsrctl"
        )));
    }
    for (version, statements) in [(1, postgres_schema::V1), (2, postgres_schema::V2)] {
        if current < version {
            sqlx::raw_sql(statements)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
    }
    sqlx::raw_sql("SAVEPOINT one_live_run")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let rollback = match sqlx::raw_sql(postgres_schema::ONE_LIVE_RUN)
        .execute(&mut *tx)
        .await
    {
        Ok(_) => "RELEASE SAVEPOINT one_live_run",
        Err(e) => {
            // Only a store that already holds two live runs of one request (written before
            // the index existed) cannot have it; `dsrctl abandon` one of them.
            tracing::warn!("one live run per request is not enforced by the store: {e}");
            "ROLLBACK TO SAVEPOINT one_live_run"
        }
    };
    sqlx::raw_sql(rollback)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)
}

pub(super) fn run_row(r: &PgRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: r.try_get("id").map_err(db)?,
        request_id: r.try_get("request_id").map_err(db)?,
        mode: r.try_get("mode").map_err(db)?,
        status: r.try_get("status").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
        updated_at: r.try_get("updated_at").map_err(db)?,
        plan: r.try_get("plan").map_err(db)?,
    })
}

pub(super) fn request_row(r: &PgRow) -> Result<RequestRow, StoreError> {
    Ok(RequestRow {
        body: r.try_get("body").map_err(db)?,
        state: r.try_get("state").map_err(db)?,
        reason: r.try_get("reason").map_err(db)?,
        received: r.try_get("received").map_err(db)?,
        deadline: r.try_get("deadline").map_err(db)?,
        extended: r.try_get("extended").map_err(db)?,
        extension_reason: r.try_get("extension_reason").map_err(db)?,
        created_at: r.try_get("created_at").map_err(db)?,
        updated_at: r.try_get("updated_at").map_err(db)?,
    })
}

struct PgSink {
    pool: PgPool,
}

#[async_trait]
impl BatchSink for PgSink {
    async fn commit(&mut self, rows: &[JournalRow]) -> Result<(), StoreError> {
        // One statement for the whole batch (one round trip, one commit). A batch may hold
        // the same instance twice (start, then end): the last one wins.
        let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            last.insert((&row.run_id, &row.instance), i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        let pick = |f: fn(&JournalRow) -> String| keep.iter().map(|&i| f(&rows[i])).collect();
        let run_ids: Vec<String> = pick(|r| r.run_id.clone());
        let instances: Vec<String> = pick(|r| r.instance.clone());
        let steps: Vec<String> = pick(|r| r.step.clone());
        let statuses: Vec<String> = pick(|r| r.status.to_owned());
        let bodies: Vec<String> = pick(|r| r.body.clone());
        let due: Vec<Option<i64>> = keep.iter().map(|&i| rows[i].due_at).collect();
        sqlx::query(
            "INSERT INTO outcomes (run_id, instance, step, status, due_at, body) \
             SELECT r, i, s, st, d, b::json \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[]) \
                 AS t (r, i, s, st, d, b) \
             ON CONFLICT (run_id, instance) DO UPDATE SET step = EXCLUDED.step, \
             status = EXCLUDED.status, due_at = EXCLUDED.due_at, body = EXCLUDED.body",
        )
        .bind(run_ids)
        .bind(instances)
        .bind(steps)
        .bind(statuses)
        .bind(due)
        .bind(bodies)
        .execute(&self.pool)
        .await
        .map_err(|e| match rows {
            [row] if is_foreign_key_violation(&e) => StoreError::RunNotFound(row.run_id.clone()),
            _ => db(e),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parameter_is_taken_out_of_the_url() {
        let (url, schema) =
            split_schema("postgres://u@h:5432/db?schema=t_1&sslmode=disable").expect("valid url");
        assert_eq!(url, "postgres://u@h:5432/db?sslmode=disable");
        assert_eq!(schema.as_deref(), Some("t_1"));
        let (url, schema) = split_schema("postgres://u@h/db?schema=x").expect("valid url");
        assert_eq!(
            (url.as_str(), schema.as_deref()),
            ("postgres://u@h/db", Some("x"))
        );
        let (url, schema) = split_schema("postgres://u@h/db").expect("valid url");
        assert_eq!((url.as_str(), schema), ("postgres://u@h/db", None));
    }

    #[test]
    fn messages_hide_the_password() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}
