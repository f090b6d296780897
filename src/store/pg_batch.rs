//! Group commit of the PostgreSQL store's state changes: one task takes the write jobs queued
//! by this process (run status, request states, leases, audit appends) and runs them in one
//! transaction (a round trip per statement and no more: when a job fails, the batch is rolled
//! back and each job runs again alone, so every caller gets its own answer). Many concurrent
//! runs thus share one commit (one WAL flush) and take the audit log's head row once per
//! batch instead of once per entry.
//!
//! Audit jobs run last in a batch, so a batch holding the head row waits for nothing but its
//! commit: batches of several workers cannot wait on each other through it.

use std::any::Any;

use async_trait::async_trait;
use futures::future::BoxFuture;
use sqlx::postgres::PgPool;
use sqlx::{Acquire, PgConnection};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::group_commit::{self, Msg, closed};
use super::util::db;

/// Most jobs in one transaction.
const MAX_BATCH: usize = 256;

type Output = Box<dyn Any + Send>;
/// A write job: may run twice (alone, after its batch failed to commit as a whole).
type Step = Box<
    dyn for<'c> FnMut(&'c mut PgConnection) -> BoxFuture<'c, Result<Output, StoreError>> + Send,
>;

struct Job {
    step: Step,
    audit: bool,
    reply: oneshot::Sender<Result<Output, StoreError>>,
}

/// Handle to the batching task.
pub(crate) struct PgBatcher {
    tx: mpsc::Sender<Msg<Job>>,
}

impl PgBatcher {
    /// Starts the task on the current runtime.
    pub(crate) fn start(pool: PgPool) -> PgBatcher {
        PgBatcher {
            tx: group_commit::start(MAX_BATCH, Jobs(pool)),
        }
    }

    /// Runs `step` in the next batch transaction and returns its result once committed.
    /// `audit`: the job appends to the audit log (run after the others).
    pub(crate) async fn write<T, F>(&self, audit: bool, mut step: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut PgConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let step: Step = Box::new(move |conn| {
            let fut = step(conn);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Output) })
        });
        self.tx
            .send(Msg::Item(Job { step, audit, reply }))
            .await
            .map_err(|_| closed())?;
        let out = answer.await.map_err(|_| closed())??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Database("a write job returned an unexpected type".into()))
    }

    /// Commits what is queued, then stops the task.
    pub(crate) async fn close(&self) {
        group_commit::close(&self.tx).await;
    }
}

/// Commits jobs on a pool's connections.
struct Jobs(PgPool);

#[async_trait]
impl group_commit::Commit<Job> for Jobs {
    async fn commit_batch(&mut self, batch: Vec<Job>) {
        commit(&self.0, batch).await;
    }
}

async fn commit(pool: &PgPool, mut batch: Vec<Job>) {
    batch.sort_by_key(|j| j.audit);
    match attempt(pool, &mut batch).await {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(job) = batch.pop() {
                let _ = job.reply.send(Err(e));
            }
        }
        Err(_) => {
            // The batch could not commit as a whole (e.g. a deadlock with another worker):
            // each job runs again alone, so every caller gets its own answer.
            for mut job in batch {
                let result = match attempt(pool, std::slice::from_mut(&mut job)).await {
                    Ok(mut results) => results.pop().unwrap_or_else(|| Err(closed())),
                    Err(e) => Err(e),
                };
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Runs the jobs in one transaction. `Err`: nothing was committed. A job that fails alone
/// reports its own error; one that fails among others fails the attempt (its changes and the
/// others' are rolled back), and [`commit`] runs each job again alone.
async fn attempt(
    pool: &PgPool,
    jobs: &mut [Job],
) -> Result<Vec<Result<Output, StoreError>>, StoreError> {
    let mut conn = pool.acquire().await.map_err(db)?;
    let mut tx = conn.begin().await.map_err(db)?;
    if let [job] = jobs {
        let result = (job.step)(&mut tx).await;
        if result.is_ok() {
            tx.commit().await.map_err(db)?;
        }
        return Ok(vec![result]);
    }
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs.iter_mut() {
        match (job.step)(&mut tx).await {
            Ok(out) => results.push(Ok(out)),
            Err(e) => return Err(e),
        }
    }
    tx.commit().await.map_err(db)?;
    Ok(results)
}
