//! SQL connector: PostgreSQL, MySQL/MariaDB and SQLite through `sqlx`, run-time queries only.
//!
//! Structured operations (`select`, `update`, `delete`) become SQL with quoted identifiers
//! and bound values ([`builder`]); raw `query`/`execute` bind named parameters ([`params`]).
//! Every mutation runs in one transaction that rolls back when it would change more than
//! `max_rows` rows; a connection dropped before the commit is retried (the rollback made it
//! safe). With `commit: service` (the default) the engine sends a service's mutations into one
//! unit of work, a transaction kept open until it commits them all ([`Connector::mutate_in`]).
//! Rows become JSON by column type ([`row`]) and stream into the export sink.

pub mod builder;
pub mod connect;
mod connector;
pub mod dialect;
pub mod failure;
pub mod introspect;
pub mod mask;
pub mod numeric;
pub mod params;
pub mod pool;
pub mod row;
pub mod statement;
pub mod update;
mod verify;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use self::builder::{Builder, Column, ColumnTypes, Projection, Target};
use self::connect::Retry;
use self::dialect::Dialect;
use self::failure::Failure;
use self::pool::{Guard, Mutation, OpenTx, Pools};
use self::statement::Statement;
use self::update::{UpdatePlan, Written};
use crate::connectors::{ConnectorError, Operation};
use crate::model::{RetryPolicy, SqlAction, SqlCommit, SqlConnector};

/// Default statement timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default pool size.
const DEFAULT_POOL: u32 = 4;

/// A configured SQL database: one pool, its dialect, timeouts, retries and masking key.
pub struct SqlClient {
    name: String,
    dialect: Dialect,
    pools: Pools,
    timeout: Duration,
    retry: Retry,
    hmac_key: Option<Arc<[u8]>>,
    /// Columns per table: casts of bound values, exact comparisons, mask checks.
    types: Mutex<HashMap<String, Arc<HashMap<String, Column>>>>,
    /// What each committed update wrote, by operation, for its verification.
    written: Mutex<HashMap<String, Vec<Written>>>,
    /// When a service's changes commit.
    commit: SqlCommit,
    /// Units of work still open, by name.
    units: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Unit>>>>,
    /// One per unit that may hold a connection at once: one less than the pool's connections.
    unit_slots: Arc<tokio::sync::Semaphore>,
}

/// A unit of work: the transaction (opened by its first mutation) and what its updates wrote,
/// kept for their verification once it commits.
#[derive(Debug, Default)]
struct Unit {
    tx: Option<OpenTx>,
    written: Vec<(String, Vec<Written>)>,
    /// Held while the transaction is open.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::fmt::Debug for SqlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlClient")
            .field("name", &self.name)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl SqlClient {
    /// Builds the connector `name` for `url` (already resolved from its secret) and the HMAC key
    /// (resolved likewise). The pool connects lazily: an unreachable database fails the first
    /// operation (retried), not the construction. Relative SQLite paths resolve against
    /// `base_dir` (the directory of `dsrctl.yaml`).
    pub fn connect(
        name: &str,
        url: &str,
        cfg: &SqlConnector,
        base_dir: &Path,
        hmac_key: Option<String>,
    ) -> Result<Self, ConnectorError> {
        let dialect = Dialect::from_url(url).ok_or_else(|| {
            ConnectorError::Config(format!(
                "connector `{name}`: the URL must start with postgres://, postgresql://, mysql://, mariadb:// or sqlite:"
            ))
        })?;
        let timeout = cfg.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| t.get());
        let retry = Retry::from_policy(cfg.retry.as_ref().unwrap_or(&RetryPolicy::default()));
        let mut size = cfg.concurrency.unwrap_or(DEFAULT_POOL).max(1);
        if cfg.commit == SqlCommit::Service {
            // A unit of work holds a connection until it commits; one more serves the reads
            // (catalogue, verification) its steps make meanwhile.
            size = size.max(2);
        }
        let pools = connect::pool(dialect, url, base_dir, size, timeout, cfg.create_if_missing)?;
        // Units open at once leave a connection free, so none waits forever for a read.
        let slots = pools.max_connections().saturating_sub(1) as usize;
        Ok(SqlClient {
            name: name.to_owned(),
            dialect,
            pools,
            timeout,
            retry,
            hmac_key: hmac_key.map(|k| Arc::from(k.into_bytes())),
            types: Mutex::new(HashMap::new()),
            written: Mutex::new(HashMap::new()),
            commit: if slots == 0 {
                SqlCommit::Step
            } else {
                cfg.commit
            },
            units: Mutex::new(HashMap::new()),
            unit_slots: Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
        })
    }

    /// The connector's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.pools {
            Pools::Pg(p) => p.close().await,
            Pools::My(p) => p.close().await,
            Pools::Lite(p) => p.close().await,
        }
    }

    /// Runs `f` again after a retryable failure, with exponential backoff and jitter.
    async fn retrying<T, F, Fut>(&self, mut f: F) -> Result<(T, u32), ConnectorError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let start = Instant::now();
        let mut delay = self.retry.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match f().await {
                Ok(v) => return Ok((v, attempt)),
                Err(e) if self.may_retry(&e, attempt, start, delay) => {
                    tracing::warn!(connector = %self.name, attempt, "retrying after: {}", e.clone_message());
                    tokio::time::sleep(jitter(delay)).await;
                    delay = delay.saturating_mul(2);
                }
                Err(e) => return Err(e.into_connector(attempt)),
            }
        }
    }

    fn may_retry(&self, e: &Failure, attempt: u32, start: Instant, delay: Duration) -> bool {
        e.retryable()
            && attempt < self.retry.attempts
            && start.elapsed() + delay <= self.retry.max_elapsed
    }

    /// Removes the unit of work `unit` from those open.
    fn take_unit(&self, unit: &str) -> Option<Arc<tokio::sync::Mutex<Unit>>> {
        self.units
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(unit)
    }

    /// Columns of the tables an operation touches (cached per table once found).
    async fn column_types(&self, tables: &[&str]) -> Result<Arc<ColumnTypes>, ConnectorError> {
        let mut out = ColumnTypes::default();
        for &table in tables {
            let cached = self.types.lock().ok().and_then(|m| m.get(table).cloned());
            let cols = match cached {
                Some(c) => c,
                None => {
                    let quoted = self.dialect.quote(table).map_err(refused)?;
                    let (rows, _) = self
                        .retrying(|| self.pools.columns(table, &quoted, self.timeout))
                        .await?;
                    let map: Arc<HashMap<String, Column>> = Arc::new(rows.into_iter().collect());
                    if !map.is_empty()
                        && let Ok(mut m) = self.types.lock()
                    {
                        m.insert(table.to_owned(), map.clone());
                    }
                    map
                }
            };
            out.insert(table, cols);
        }
        Ok(Arc::new(out))
    }

    /// The statement of a read (`select` or `query`).
    async fn read_statement(&self, a: &SqlAction) -> Result<Statement, ConnectorError> {
        if let Some(q) = &a.query {
            return params::rewrite(q, self.dialect, &a.params).map_err(refused);
        }
        let Some(s) = &a.select else {
            return Err(ConnectorError::Refused(
                "a read needs `select` or `query`; this operation mutates".into(),
            ));
        };
        let t = Target {
            table: &s.table,
            filter: &s.filter,
            through: s.through.as_ref(),
            any: &s.any,
            unless: &s.unless,
        };
        let types = self.column_types(&tables(&t)).await?;
        let mut b = Builder::new(self.dialect, &types).matching(a.matching);
        b.select(&t, Projection::Columns(&s.columns), &s.order_by, false)
            .map_err(refused)?;
        Ok(b.finish())
    }

    /// The mutation of an `update`, `delete` or `execute`.
    async fn mutation(&self, a: &SqlAction) -> Result<Mutation, ConnectorError> {
        if let Some(sql) = &a.execute {
            let st = params::rewrite(sql, self.dialect, &a.params).map_err(refused)?;
            let guard = match &a.guard {
                Some(g) => Some(Guard {
                    read: self.read_statement(g).await?,
                    identity: g.params.clone().into_iter().collect(),
                }),
                None => None,
            };
            return Ok(Mutation::Execute(st, guard));
        }
        if let Some(u) = &a.update {
            let t = Target {
                table: &u.table,
                filter: &u.filter,
                through: u.through.as_ref(),
                any: &u.any,
                unless: &u.unless,
            };
            let types = self.column_types(&tables(&t)).await?;
            let plan = UpdatePlan::new(u, self.dialect, types, self.hmac_key.clone(), a.matching)
                .map_err(refused)?;
            return Ok(Mutation::Update(plan));
        }
        if let Some(d) = &a.delete {
            let t = Target {
                table: &d.table,
                filter: &d.filter,
                through: d.through.as_ref(),
                any: &d.any,
                unless: &d.unless,
            };
            let types = self.column_types(&tables(&t)).await?;
            let mut b = Builder::new(self.dialect, &types).matching(a.matching);
            b.delete(&t).map_err(refused)?;
            return Ok(Mutation::Delete(b.finish()));
        }
        Err(ConnectorError::Refused(
            "a mutation needs `update`, `delete` or `execute`; this operation only reads".into(),
        ))
    }
}

/// The SQL action of an operation, checked to hold exactly one statement kind.
fn action(op: &Operation) -> Result<&SqlAction, ConnectorError> {
    match op {
        Operation::Sql(a) if a.operation_count() == 1 => Ok(a),
        Operation::Sql(a) => Err(ConnectorError::Refused(format!(
            "a SQL operation needs exactly one of select, update, delete, query, execute; it has {}",
            a.operation_count()
        ))),
        _ => Err(ConnectorError::Refused(
            "the SQL connector runs SQL operations only".into(),
        )),
    }
}

fn tables<'a>(t: &Target<'a>) -> Vec<&'a str> {
    let mut v = vec![t.table];
    if let Some(th) = t.through {
        v.push(th.table.as_str());
    }
    v
}

fn refused(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Refused(e.to_string())
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.5..1.5))
}

/// A stable key for one operation (to find what its mutation wrote when verifying).
fn op_key(a: &SqlAction) -> String {
    serde_json::to_string(a).unwrap_or_default()
}

impl Failure {
    fn clone_message(&self) -> String {
        match self {
            Failure::Db { message, .. }
            | Failure::CommitUnknown(message)
            | Failure::Refused(message) => message.clone(),
            Failure::Timeout(d) => format!("timeout after {d:?}"),
            Failure::Row(e) => e.to_string(),
            Failure::Sink(e) => e.to_string(),
        }
    }
}
