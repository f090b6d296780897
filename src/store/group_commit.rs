//! The loop shared by the store's batching tasks: take whatever callers have queued (up to a
//! bound) as one batch and commit it; on close, commit what came before it and stop. The
//! channel has room for a few batches, so callers wait rather than queue without bound.

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// What callers send a batching task.
pub(crate) enum Msg<T> {
    /// One item of the next batch.
    Item(T),
    /// Commit everything queued before this, then stop and acknowledge.
    Close(oneshot::Sender<()>),
}

/// What a batching task does with each batch.
#[async_trait]
pub(crate) trait Commit<T>: Send + 'static {
    /// Commits one batch and answers each of its callers.
    async fn commit_batch(&mut self, batch: Vec<T>);
}

/// Starts a batching task on the current runtime: it takes whatever callers have queued (at
/// most `max_batch` items) and commits it as one batch, until every sender is gone or a
/// [`Msg::Close`] arrives.
pub(crate) fn start<T: Send + 'static>(
    max_batch: usize,
    committer: impl Commit<T>,
) -> mpsc::Sender<Msg<T>> {
    let (tx, rx) = mpsc::channel(4 * max_batch);
    tokio::spawn(serve(rx, max_batch, committer));
    tx
}

async fn serve<T: Send>(
    mut rx: mpsc::Receiver<Msg<T>>,
    max_batch: usize,
    mut committer: impl Commit<T>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::with_capacity(max_batch);
        let mut close = None;
        match first {
            Msg::Item(item) => batch.push(item),
            Msg::Close(ack) => close = Some(ack),
        }
        // Let callers that are ready to send do so before the batch is cut, so the batch
        // holds every concurrent item rather than whichever arrived first.
        tokio::task::yield_now().await;
        while close.is_none() && batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Msg::Item(item)) => batch.push(item),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            committer.commit_batch(batch).await;
        }
        if let Some(ack) = close {
            let _ = ack.send(());
            return;
        }
    }
}

/// Asks the task behind `tx` to commit what is queued and stop, and waits until it has.
pub(crate) async fn close<T>(tx: &mpsc::Sender<Msg<T>>) {
    let (ack, done) = oneshot::channel();
    if tx.send(Msg::Close(ack)).await.is_ok() {
        let _ = done.await;
    }
}

/// The error of a call made after the store was closed.
pub(crate) fn closed() -> StoreError {
    StoreError::Database("the state store is closed".into())
}
