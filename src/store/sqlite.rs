//! The embedded state store: one SQLite file in WAL mode, journal writes group-committed by
//! one writer task.
//!
//! `synchronous=NORMAL`: a commit is in the WAL when the call returns, so it survives the
//! process being killed at any point (the SIGKILL tests prove it), without an fsync per
//! commit; a power loss may lose the newest commits. Where that matters, use the
//! PostgreSQL store, which commits with `synchronous_commit=on`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::journal_writer::{BatchSink, JournalWriter};
use super::util::*;
use super::{RequestRecord, RunRecord, StoreError, sqlite_schema};

pub(super) const RUN_COLUMNS: &str = "id, request_id, mode, status, created_at, updated_at, plan";
pub(super) const REQUEST_COLUMNS: &str = "body, state, reason, received, deadline, extended, \
                               extension_reason, created_at, updated_at";

/// The SQLite state store.
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    pub(super) journal: JournalWriter,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the store at `path` and migrates
    /// its schema.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Location(dir.display().to_string(), e.to_string()))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(db)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Location(path.display().to_string(), e.to_string()))?;
        migrate(&pool).await?;
        let journal = JournalWriter::start(SqliteSink { pool: pool.clone() });
        Ok(SqliteStore { pool, journal })
    }

    pub(super) async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)
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

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
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
    if current < 1 {
        sqlx::raw_sql(sqlite_schema::V1)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO schema_version (version) VALUES (?1)")
            .bind(SCHEMA_VERSION)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

pub(super) fn run_row(r: &SqliteRow) -> Result<RunRow, StoreError> {
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

pub(super) fn request_row(r: &SqliteRow) -> Result<RequestRow, StoreError> {
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

struct SqliteSink {
    pool: SqlitePool,
}

#[async_trait]
impl BatchSink for SqliteSink {
    async fn commit(&mut self, rows: &[JournalRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        for row in rows {
            sqlx::query(
                "INSERT INTO outcomes (run_id, instance, step, status, due_at, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (run_id, instance) DO UPDATE SET step = excluded.step, \
                 status = excluded.status, due_at = excluded.due_at, body = excluded.body",
            )
            .bind(&row.run_id)
            .bind(&row.instance)
            .bind(&row.step)
            .bind(row.status)
            .bind(row.due_at)
            .bind(&row.body)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    StoreError::RunNotFound(row.run_id.clone())
                } else {
                    db(e)
                }
            })?;
        }
        tx.commit().await.map_err(db)
    }
}
