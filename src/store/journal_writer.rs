//! Group commit for the journal: one writer task receives outcomes over a channel and
//! commits whatever is queued in one transaction, then acknowledges each caller. Many
//! concurrent `record` calls thus share one durable commit (one fsync) instead of paying
//! one each.

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::group_commit::{self, Msg, closed};
use super::util::JournalRow;

/// Most rows committed in one transaction.
const MAX_BATCH: usize = 256;

type Ack = oneshot::Sender<Result<(), StoreError>>;

/// Where batches go: one transaction per call, durable when it returns `Ok`.
#[async_trait]
pub(crate) trait BatchSink: Send + 'static {
    /// Commits `rows` (in order; a later row for the same instance replaces an earlier one).
    async fn commit(&mut self, rows: &[JournalRow]) -> Result<(), StoreError>;
}

/// Handle to the writer task; dropping it lets the task drain the queue and end.
pub(crate) struct JournalWriter {
    tx: mpsc::Sender<Msg<(JournalRow, Ack)>>,
}

impl JournalWriter {
    /// Starts the writer task on the current runtime.
    pub(crate) fn start(sink: impl BatchSink) -> JournalWriter {
        JournalWriter {
            tx: group_commit::start(MAX_BATCH, sink),
        }
    }

    /// Queues a row and waits until it is committed.
    pub(crate) async fn write(&self, row: JournalRow) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Item((row, ack)))
            .await
            .map_err(|_| closed())?;
        done.await.map_err(|_| closed())?
    }

    /// Commits every row queued before it, then stops the task; later writes fail.
    pub(crate) async fn close(&self) {
        group_commit::close(&self.tx).await;
    }
}

/// A sink commits the writer's batches: the rows in one transaction, then each caller told.
#[async_trait]
impl<S: BatchSink> group_commit::Commit<(JournalRow, Ack)> for S {
    async fn commit_batch(&mut self, batch: Vec<(JournalRow, Ack)>) {
        commit_rows(self, batch).await;
    }
}

async fn commit_rows(sink: &mut impl BatchSink, batch: Vec<(JournalRow, Ack)>) {
    let (rows, acks): (Vec<JournalRow>, Vec<Ack>) = batch.into_iter().unzip();
    match sink.commit(&rows).await {
        Ok(()) => {
            for ack in acks {
                let _ = ack.send(Ok(()));
            }
        }
        Err(e) if rows.len() == 1 => {
            if let Some(ack) = acks.into_iter().next() {
                let _ = ack.send(Err(e));
            }
        }
        Err(_) => {
            // One bad row (e.g. an unknown run) must not fail its neighbours: retry each
            // alone so every caller gets its own answer.
            for (row, ack) in rows.into_iter().zip(acks) {
                let result = sink.commit(std::slice::from_ref(&row)).await;
                let _ = ack.send(result);
            }
        }
    }
}
