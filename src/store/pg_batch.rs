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

use futures::future::BoxFuture;
use sqlx::postgres::PgPool;
use sqlx::{Acquire, PgConnection};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
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

enum Msg {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// Handle to the batching task.
pub(crate) struct PgBatcher {
    tx: mpsc::UnboundedSender<Msg>,
}

impl PgBatcher {
    /// Starts the task on the current runtime.
    pub(crate) fn start(pool: PgPool) -> PgBatcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, rx));
        PgBatcher { tx }
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
            .send(Msg::Job(Job { step, audit, reply }))
            .map_err(|_| closed())?;
        let out = answer.await.map_err(|_| closed())??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Database("a write job returned an unexpected type".into()))
    }

    /// Commits what is queued, then stops the task.
    pub(crate) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).is_ok() {
            let _ = done.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Database("the state store is closed".into())
}

async fn run(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut close = None;
        match first {
            Msg::Job(job) => batch.push(job),
            Msg::Close(ack) => close = Some(ack),
        }
        // Let callers that are ready to send do so before the batch is cut.
        tokio::task::yield_now().await;
        while close.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit(&pool, batch).await;
        }
        if let Some(ack) = close {
            let _ = ack.send(());
            return;
        }
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
