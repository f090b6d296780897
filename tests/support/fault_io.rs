//! A listener whose connections a handler can break: each accepted connection gets an id
//! (the handler's `ConnectInfo`) and a switch; once the handler sets the switch, the next
//! write on that connection fails and the server drops it, after setting SO_LINGER 0 for a
//! reset.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::Fault;

/// Identifies one accepted connection, so a handler can break its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct ConnId(u64);

impl Connected<IncomingStream<'_, FaultListener>> for ConnId {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        *stream.remote_addr()
    }
}

/// Set by a handler: the next write on its connection fails.
type Switch = Arc<Mutex<Option<Fault>>>;

/// The open connections' switches: a handler sets one, and the next write on that
/// connection fails, which makes the server drop it (reset first, for [`Fault::Reset`]).
#[derive(Default, Clone)]
pub(super) struct Connections {
    next: Arc<AtomicU64>,
    switches: Arc<Mutex<HashMap<ConnId, Switch>>>,
}

impl Connections {
    fn open(&self) -> (ConnId, Switch) {
        let id = ConnId(self.next.fetch_add(1, Ordering::SeqCst));
        let switch = Arc::new(Mutex::new(None));
        self.switches
            .lock()
            .expect("switches")
            .insert(id, switch.clone());
        (id, switch)
    }
    pub(super) fn break_on_write(&self, id: ConnId, fault: Fault) {
        if let Some(s) = self.switches.lock().expect("switches").get(&id) {
            *s.lock().expect("switch") = Some(fault);
        }
    }
    fn close(&self, id: ConnId) {
        self.switches.lock().expect("switches").remove(&id);
    }
}

pub(super) struct FaultListener {
    pub(super) inner: TcpListener,
    pub(super) connections: Connections,
}

impl axum::serve::Listener for FaultListener {
    type Io = FaultyIo;
    type Addr = ConnId;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, _)) = self.inner.accept().await {
                let _ = stream.set_nodelay(true);
                let (id, switch) = self.connections.open();
                let io = FaultyIo {
                    stream,
                    switch,
                    id,
                    connections: self.connections.clone(),
                };
                return (io, id);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(ConnId(u64::MAX))
    }
}

/// A server-side connection whose writes fail once its switch is set.
pub(super) struct FaultyIo {
    stream: TcpStream,
    switch: Switch,
    id: ConnId,
    connections: Connections,
}

impl Drop for FaultyIo {
    fn drop(&mut self) {
        self.connections.close(self.id);
    }
}

impl AsyncRead for FaultyIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let fault = *self.switch.lock().expect("switch");
        match fault {
            Some(fault) => {
                if fault == Fault::Reset {
                    // SO_LINGER 0: closing sends RST instead of FIN.
                    let _ = self.stream.set_zero_linger();
                }
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "broken by the test server",
                )))
            }
            None => Pin::new(&mut self.stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
