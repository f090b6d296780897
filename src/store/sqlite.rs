//! The embedded state store: one SQLite file in WAL mode.
//!
//! Two threads each own one connection: a writer that commits every queued write job in one
//! transaction (group commit: concurrent journal records, run status changes, request state
//! changes and audit appends share one commit), and a reader for queries. A caller's job runs
//! whole on its thread, so a transaction of several statements costs one hand-over, not one
//! per statement.
//!
//! `synchronous=NORMAL`: a commit is in the WAL when the call returns, so it survives the
//! process being killed at any point (the SIGKILL tests prove it), without an fsync per
//! commit; a power loss may lose the newest commits. Where that matters, use the
//! PostgreSQL store, which commits with `synchronous_commit=on`.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::oneshot;

use super::group_commit::closed;
use super::util::*;
use super::{StoreError, sqlite_schema};
use crate::journal::{RequestRecord, RunRecord};

pub(super) const RUN_COLUMNS: &str = "id, request_id, mode, status, created_at, updated_at, plan";
pub(super) const REQUEST_COLUMNS: &str = "body, state, reason, received, deadline, extended, \
                               extension_reason, created_at, updated_at";

/// Most write jobs committed in one transaction.
const MAX_BATCH: usize = 512;

/// How long the writer waits for more jobs before committing what it has.
const GATHER: Duration = Duration::from_micros(200);

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite state store.
pub struct SqliteStore {
    writer: Worker,
    reader: Worker,
    pub(super) audit_key: super::AuditKey,
}

/// A job for a connection thread; it sends its own result. `None`: its transaction could
/// not begin, so it only reports that.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Finish + Send>;

/// A job for a connection thread, and whether it needs a savepoint of its own (writes of
/// several statements; SQLite undoes a failed single statement by itself).
struct Queued {
    job: Job,
    savepoint: bool,
}

impl Queued {
    /// A job running `f`, and where its result arrives once its transaction's fate is known.
    fn new<T, F>(f: F, savepoint: bool) -> (Queued, oneshot::Receiver<Result<T, StoreError>>)
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = conn.map(f);
            Finish {
                ok: matches!(result, Some(Ok(_))),
                deliver: Box::new(move |not_committed| {
                    let _ = tx.send(match (not_committed, result) {
                        (_, Some(Err(e))) => Err(e),
                        (None, Some(result)) => result,
                        (Some(e), _) => Err(StoreError::Database(e.to_owned())),
                        (None, None) => Err(closed()),
                    });
                }),
            }
        });
        (Queued { job, savepoint }, rx)
    }
}

/// What a write job hands back: whether it succeeded (else its changes are rolled back), and
/// how to deliver its result once the transaction's fate is known (given the database's
/// message when it was not committed).
struct Finish {
    ok: bool,
    deliver: Deliver,
}

/// Sends a job's result, or the database's message when its transaction did not commit.
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;

enum Msg {
    Job(Queued),
    Close(oneshot::Sender<()>),
}

/// One connection on a thread of its own.
struct Worker {
    tx: mpsc::Sender<Msg>,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the store at `path` and migrates
    /// its schema.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Location(dir.display().to_string(), e.to_string()))?;
        }
        let location =
            |e: rusqlite::Error| StoreError::Location(path.display().to_string(), e.to_string());
        let write_conn = connect(path, true).map_err(location)?;
        migrate(&write_conn)?;
        let read_conn = connect(path, false).map_err(location)?;
        Ok(SqliteStore {
            writer: Worker::spawn("dsrctl-sqlite-writer", write_conn, write_loop)?,
            reader: Worker::spawn("dsrctl-sqlite-reader", read_conn, read_loop)?,
            audit_key: super::AuditKey::default(),
        })
    }

    /// Runs `f` in the writer's next transaction (`BEGIN IMMEDIATE`, shared with whatever
    /// else is queued). Its result is returned once that transaction committed; when `f`
    /// fails, its own changes are rolled back and its neighbours' kept.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.queue_write(f, true).await
    }

    /// [`Self::write`] for an `f` whose only change is one statement, and that fails only
    /// when that statement fails (SQLite undoes it) or changed nothing: it needs no savepoint
    /// of its own.
    pub(super) async fn write_one<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.queue_write(f, false).await
    }

    async fn queue_write<T, F>(&self, f: F, savepoint: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (write, answer) = Queued::new(f, savepoint);
        self.writer.send(write)?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs a query on the reader's connection.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(conn.map_or_else(|| Err(closed()), f));
            Finish {
                ok: true,
                deliver: Box::new(|_| {}),
            }
        });
        self.reader.send(Queued {
            job,
            savepoint: false,
        })?;
        rx.await.map_err(|_| closed())?
    }

    /// Commits what is queued and stops both threads; later calls fail.
    pub(super) async fn shutdown(&self) {
        for worker in [&self.writer, &self.reader] {
            let (ack, done) = oneshot::channel();
            if worker.tx.send(Msg::Close(ack)).is_ok() {
                let _ = done.await;
            }
        }
    }
}

impl Worker {
    /// Starts a thread named `name` that serves `conn` with `serve`.
    fn spawn(
        name: &str,
        conn: Connection,
        serve: fn(&Connection, &mpsc::Receiver<Msg>),
    ) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serve(&conn, &rx))
            .map_err(|e| {
                StoreError::Database(format!("cannot start a thread for the store: {e}"))
            })?;
        Ok(Worker { tx })
    }

    fn send(&self, queued: Queued) -> Result<(), StoreError> {
        self.tx.send(Msg::Job(queued)).map_err(|_| closed())
    }
}

fn read_loop(conn: &Connection, rx: &mpsc::Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Job(w) => {
                let _ = (w.job)(Some(conn));
            }
            Msg::Close(ack) => {
                let _ = ack.send(());
                return;
            }
        }
    }
}

/// Takes whatever is queued (up to [`MAX_BATCH`]) and commits it in one transaction, each
/// job of several statements inside a savepoint, so a failing job leaves its neighbours'
/// changes in.
fn write_loop(conn: &Connection, rx: &mpsc::Receiver<Msg>) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        let mut close = None;
        match first {
            Msg::Job(w) => batch.push(w),
            Msg::Close(ack) => close = Some(ack),
        }
        // Jobs arrive one by one from many callers: waiting a moment (`GATHER`, far below
        // any service's latency) lets one commit carry many of them. The writer sleeps
        // through it rather than waiting on the queue, so the callers' jobs do not wake it
        // one by one.
        if close.is_none() {
            std::thread::sleep(GATHER);
        }
        while close.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(w)) => batch.push(w),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(conn, &mut batch);
        }
        if let Some(ack) = close {
            let _ = ack.send(());
            return;
        }
    }
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Queued>) {
    let mut jobs = batch.drain(..).peekable();
    while jobs.peek().is_some() {
        commit_some(conn, &mut jobs);
    }
}

/// Runs jobs in one transaction until they run out, or until a failing job made SQLite
/// roll the whole transaction back (a full disk, an I/O error): the jobs run so far are then
/// told they were not committed, and the rest go in the next transaction.
fn commit_some(conn: &Connection, jobs: &mut impl Iterator<Item = Queued>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let message = e.to_string();
        for w in jobs {
            ((w.job)(None).deliver)(Some(&message));
        }
        return;
    }
    let mut finished = Vec::new();
    let mut lost = None;
    for w in jobs.by_ref() {
        if w.savepoint
            && let Err(e) = exec(conn, "SAVEPOINT job")
        {
            ((w.job)(None).deliver)(Some(&e.to_string()));
            continue;
        }
        let finish = (w.job)(Some(conn));
        let ok = finish.ok;
        finished.push(finish);
        let undone = if !ok && w.savepoint {
            exec(conn, "ROLLBACK TO job").map(drop)
        } else {
            Ok(())
        };
        let released = undone.and_then(|()| {
            if w.savepoint {
                exec(conn, "RELEASE job").map(drop)
            } else {
                Ok(())
            }
        });
        if let Err(e) = released {
            // The failed job's changes cannot be told apart from the others': none stay.
            let _ = exec(conn, "ROLLBACK");
            lost = Some(format!("the transaction was rolled back ({e})"));
            break;
        }
        if conn.is_autocommit() {
            lost = Some("the transaction was rolled back by a failing statement".to_owned());
            break;
        }
    }
    let not_committed = lost.or_else(|| {
        exec(conn, "COMMIT").err().map(|e| {
            let _ = exec(conn, "ROLLBACK");
            e.to_string()
        })
    });
    for f in finished {
        (f.deliver)(not_committed.as_deref());
    }
}

/// Runs a parameterless statement, prepared once per connection.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

fn connect(path: &Path, writes: bool) -> Result<Connection, rusqlite::Error> {
    let flags = if writes {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "normal")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(lite)?;
    let result = (|| {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .map_err(lite)?;
        let current: Option<i64> = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .map_err(lite)?;
        let current = current.unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "schema version {current} is newer than this dsrctl knows ({SCHEMA_VERSION}); upgrade dsrctl"
            )));
        }
        for (version, statements) in [(1, sqlite_schema::V1), (2, sqlite_schema::V2)] {
            if current < version {
                conn.execute_batch(statements).map_err(lite)?;
                conn.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [version],
                )
                .map_err(lite)?;
            }
        }
        if let Err(e) = conn.execute_batch(sqlite_schema::ONE_LIVE_RUN) {
            // Only a store that already holds two live runs of one request (written before
            // the index existed) cannot have it; `dsrctl abandon` one of them.
            tracing::warn!("one live run per request is not enforced by the store: {e}");
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(lite),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// A SQLite error as a store error.
pub(super) fn lite(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Whether a statement broke a constraint of this kind (`SQLITE_CONSTRAINT_*`).
pub(super) fn violates(e: &rusqlite::Error, extended: i32) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::ConstraintViolation && f.extended_code == extended)
}

pub(super) const FOREIGN_KEY: i32 = rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY;
pub(super) const UNIQUE: [i32; 2] = [
    rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE,
];

pub(super) fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get("id")?,
        request_id: r.get("request_id")?,
        mode: r.get("mode")?,
        status: r.get("status")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        plan: r.get("plan")?,
    })
}

pub(super) fn request_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        body: r.get("body")?,
        state: r.get("state")?,
        reason: r.get("reason")?,
        received: r.get("received")?,
        deadline: r.get("deadline")?,
        extended: r.get("extended")?,
        extension_reason: r.get("extension_reason")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// The records a query returns: each row read by `read`, then converted by `into`.
fn records<R, T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    into: fn(R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(lite)?;
    let rows = stmt
        .query_map(params, read)
        .map_err(lite)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(lite)?;
    rows.into_iter().map(into).collect()
}

/// The runs a query returns.
pub(super) fn run_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RunRecord>, StoreError> {
    records(conn, sql, params, run_row, RunRow::into_record)
}

/// The requests a query returns.
pub(super) fn request_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RequestRecord>, StoreError> {
    records(conn, sql, params, request_row, RequestRow::into_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(n: i64) -> impl FnOnce(&Connection) -> Result<(), StoreError> {
        move |c| {
            c.execute("INSERT INTO t (n) VALUES (?1)", [n])
                .map(drop)
                .map_err(lite)
        }
    }

    fn rows(conn: &Connection) -> Vec<i64> {
        let mut st = conn.prepare("SELECT n FROM t ORDER BY n").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// One batch: jobs with and without savepoints, one breaking a constraint (only its own
    /// change is undone), one whose failure ends the whole transaction (the jobs before it
    /// learn they were not committed; the jobs after it commit in a new transaction).
    #[tokio::test]
    async fn a_batch_keeps_what_committed_and_reports_what_did_not() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("s.db"), true).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY CHECK (n < 100))")
            .unwrap();
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        let mut push = |w: (Queued, oneshot::Receiver<Result<(), StoreError>>)| {
            batch.push(w.0);
            answers.push(w.1);
        };
        push(Queued::new(insert(1), false));
        push(Queued::new(
            |c: &Connection| {
                c.execute("INSERT INTO t (n) VALUES (2)", [])
                    .map_err(lite)?;
                c.execute("INSERT INTO t (n) VALUES (200)", [])
                    .map_err(lite)?;
                Ok(())
            },
            true,
        ));
        push(Queued::new(insert(300), false));
        push(Queued::new(insert(3), false));
        push(Queued::new(
            |c: &Connection| {
                c.execute_batch("ROLLBACK").map_err(lite)?;
                Err(StoreError::Database("gave up".into()))
            },
            false,
        ));
        push(Queued::new(insert(4), true));
        push(Queued::new(insert(5), false));
        commit_batch(&conn, &mut batch);

        let mut results = Vec::new();
        for a in answers {
            results.push(a.await.unwrap());
        }
        let failed: Vec<String> = results
            .iter()
            .map(|r| {
                r.as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .collect();
        // 1 and 3 were in the transaction that was rolled back: told so, not silently lost.
        assert!(failed[0].contains("rolled back"), "{failed:?}");
        assert!(failed[1].contains("CHECK"), "{failed:?}");
        assert!(failed[2].contains("CHECK"), "{failed:?}");
        assert!(failed[3].contains("rolled back"), "{failed:?}");
        assert!(failed[4].contains("gave up"), "{failed:?}");
        assert!(results[5].is_ok() && results[6].is_ok(), "{failed:?}");
        assert!(conn.is_autocommit());
        assert_eq!(rows(&conn), vec![4, 5]);
    }
}
