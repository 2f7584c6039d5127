//! [`StreamWriter`]: asyncio's `StreamWriter`, the write side of a stream connection.

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::protocol::Shared;
use crate::error::{Error, Result};
use crate::runtime::core::EventLoop;
use crate::transports::{DirectWrite, ExtraInfo, Transport};

/// The write side of a stream connection (asyncio's `StreamWriter`).
///
/// [`write`](StreamWriter::write) never blocks: it hands the data to the [`Transport`], which
/// sends what it can and buffers the rest. Await [`drain`](StreamWriter::drain) after writing
/// to respect flow control: it waits while the transport's write buffer is over its high-water
/// mark (the protocol is paused) and returns once it is back under the low-water mark.
///
/// Several tasks of the loop may write through one connection, as in asyncio: cloning a
/// `StreamWriter` is cheap (an `Rc` inside) and every clone is the same writer (one transport,
/// one flow control). Writes from different tasks go out in the order they were made (each
/// `write` call, and each `poll_write` step of `AsyncWrite`, as a whole: a `write_all` that has
/// to wait for the socket is several steps, so another clone's write may land between two of
/// them, as with two tokio tasks sharing a writer; send a message with one `write` to keep it
/// whole); tasks
/// that `drain` at the same time all wait while writing is paused and are all woken once the
/// buffer is back under the low-water mark (asyncio's list of `_drain_waiters`);
/// [`close`](StreamWriter::close) through one clone is seen by the others
/// ([`is_closing`](StreamWriter::is_closing), and `drain` fails once the connection is lost).
/// It is not `Send`: the clones belong to the connection's loop.
///
/// ```
/// use asyncio::streams::{open_connection, start_server};
///
/// asyncio::run(async {
///     let server = start_server(
///         |reader, writer| async move {
///             // Two tasks answer through clones of the one writer.
///             let lp = asyncio::get_running_loop()?;
///             let tasks = ["ping\n", "pong\n"].map(|line| {
///                 let writer = writer.clone();
///                 lp.create_task(async move {
///                     writer.write(line.as_bytes())?;
///                     writer.drain().await
///                 })
///             });
///             for t in tasks {
///                 t?.await??;
///             }
///             writer.close(); // seen by every clone
///             drop(reader);
///             Ok::<_, asyncio::Error>(())
///         },
///         "127.0.0.1",
///         0,
///     )
///     .await?;
///     let address = server.sockets()[0].address.clone().unwrap();
///     let port = address.as_inet().unwrap().port();
///     let (reader, _writer) = open_connection("127.0.0.1", port).await?;
///     assert_eq!(reader.read_to_eof().await?, b"ping\npong\n");
///     Ok::<_, asyncio::Error>(())
/// })??;
/// # Ok::<(), asyncio::Error>(())
/// ```
///
/// Dropping the last clone of a `StreamWriter` closes its transport (after the buffered data
/// is sent), so a server callback's connection ends with its task; asyncio leaves that to the
/// garbage collector. It implements [`futures::io::AsyncWrite`]: `poll_write` writes from the
/// caller's buffer straight to the socket or pipe when nothing is buffered (no copy; see
/// [`poll_write`](#method.poll_write)), else buffers as `write` does and waits while writing
/// is paused; `poll_flush` is [`drain`](StreamWriter::drain), and `poll_close` is
/// [`write_eof`](StreamWriter::write_eof) after a drain.
#[derive(Clone)]
pub struct StreamWriter {
    inner: Rc<Inner>,
}

/// What the clones share: the transport (replaced by `start_tls`) and the protocol's state.
struct Inner {
    transport: RefCell<Transport>,
    shared: Rc<Shared>,
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("transport", &*self.inner.transport.borrow())
            .finish()
    }
}

fn to_io(e: Error) -> std::io::Error {
    let kind = e.io_error_kind().unwrap_or(std::io::ErrorKind::Other);
    std::io::Error::new(kind, e)
}

impl StreamWriter {
    pub(crate) fn new(transport: Transport, shared: Rc<Shared>) -> Self {
        StreamWriter {
            inner: Rc::new(Inner {
                transport: RefCell::new(transport),
                shared,
            }),
        }
    }

    /// The transport, for one call (never held across an `await`; `start_tls` replaces it).
    /// A handle is cloned (a reference count) rather than the cell kept borrowed: the call may
    /// run user code (a write error goes to the exception handler), which may `start_tls` on
    /// this very writer.
    fn with_transport<R>(&self, f: impl FnOnce(&Transport) -> R) -> R {
        let transport = self.inner.transport.borrow().clone();
        f(&transport)
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The underlying transport (a handle to it: transports are shared, cloning is cheap).
    pub fn transport(&self) -> Transport {
        self.inner.transport.borrow().clone()
    }

    /// Whether `self` and `other` are clones of one writer.
    pub fn ptr_eq(&self, other: &StreamWriter) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// The loop the connection runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.shared().lp.clone()
    }

    /// Writes `data` (see [`Transport::write`]); follow with [`drain`](StreamWriter::drain).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`](crate::ErrorKind::InvalidState) after
    /// [`write_eof`](StreamWriter::write_eof).
    pub fn write(&self, data: &[u8]) -> Result<()> {
        self.with_transport(|t| t.write(data))
    }

    /// Writes each buffer of `list` in turn (asyncio's `writelines`).
    ///
    /// # Errors
    /// As [`write`](StreamWriter::write).
    pub fn writelines<I, B>(&self, list: I) -> Result<()>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        self.with_transport(|t| t.writelines(list))
    }

    /// Shuts down the write side once the buffered data is sent; reading goes on.
    pub fn write_eof(&self) {
        self.with_transport(Transport::write_eof);
    }

    /// Whether [`write_eof`](StreamWriter::write_eof) is supported (always for sockets).
    pub fn can_write_eof(&self) -> bool {
        self.with_transport(Transport::can_write_eof)
    }

    /// Closes the transport (after the buffered data is sent); await
    /// [`wait_closed`](StreamWriter::wait_closed) to know when it is done. Every clone sees it.
    pub fn close(&self) {
        self.with_transport(Transport::close);
    }

    /// Whether the transport is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.with_transport(Transport::is_closing)
    }

    /// The transport's extra information (`"peername"`, `"sockname"`, `"socket"`).
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.with_transport(|t| t.get_extra_info(name))
    }

    /// Waits until the connection is lost (asyncio's `wait_closed`), normally after
    /// [`close`](StreamWriter::close).
    ///
    /// # Errors
    /// The error the connection ended with, if any (for example a reset: [`ErrorKind::Io`]).
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future only stops the waiting.
    ///
    /// [`ErrorKind::Io`]: crate::ErrorKind::Io
    pub async fn wait_closed(&self) -> Result<()> {
        poll_fn(|cx| self.shared().poll_closed(cx)).await
    }

    /// Waits until it is appropriate to write again (asyncio's `drain`): returns at once
    /// unless the transport paused the protocol (its write buffer went over the high-water
    /// mark); then waits for `resume_writing`. Several tasks may drain one writer (through
    /// clones) at once: all of them wait, and all are woken together.
    ///
    /// # Errors
    /// The reader's exception if the connection failed; an [`ErrorKind::Io`] error of
    /// `io_error_kind()` `ConnectionReset` ("Connection lost") once the connection is lost,
    /// for example after [`close`](StreamWriter::close).
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future only stops the waiting; written data stays buffered
    /// in the transport.
    ///
    /// [`ErrorKind::Io`]: crate::ErrorKind::Io
    pub async fn drain(&self) -> Result<()> {
        if let Some(e) = self.shared().exception() {
            return Err(e);
        }
        if self.is_closing() {
            // Let connection_lost run if it is scheduled, so a drain after close reports the
            // lost connection (asyncio does the same `sleep(0)`).
            crate::task::sleep(0.0).await?;
        }
        poll_fn(|cx| self.shared().poll_drain(cx)).await
    }
}

impl StreamWriter {
    /// Upgrades the connection to TLS (asyncio's `StreamWriter.start_tls`, for STARTTLS):
    /// drains, runs the handshake (as the server for a stream from
    /// [`start_server`](crate::streams::start_server), else as a client checking the server
    /// against `server_hostname`), and from then on this writer and its reader speak TLS.
    /// Data the reader had already buffered stays readable. Every clone of the writer speaks
    /// TLS from then on.
    ///
    /// # Errors
    /// As [`EventLoop::start_tls`]; the reader's exception if the connection failed.
    ///
    /// # Cancel safety
    /// Dropping the future aborts the connection.
    pub async fn start_tls(
        &self,
        context: &crate::tls::TlsContext,
        server_hostname: Option<&str>,
    ) -> Result<()> {
        self.drain().await?;
        let server_side = self.shared().st.borrow().server_side;
        let plain = self.transport();
        let Some(refs) = plain.protocol_refs() else {
            return Err(super::protocol::connection_lost_error());
        };
        let timeouts = crate::tls::TlsTimeouts::default();
        let lp = self.shared().lp.clone();
        let transport = lp
            .start_tls_refs(
                &plain,
                refs,
                context,
                server_side,
                server_hostname,
                timeouts,
            )
            .await?;
        self.shared().st.borrow_mut().transport = Some(transport.clone());
        *self.inner.transport.borrow_mut() = transport;
        Ok(())
    }
}

impl Drop for Inner {
    /// The last clone is gone: close the transport.
    fn drop(&mut self) {
        let transport = self.transport.get_mut();
        if !transport.is_closing() {
            transport.close();
        }
    }
}

impl futures::io::AsyncWrite for StreamWriter {
    /// Writes `buf` without copying it when it can: with the transport's write buffer empty,
    /// the bytes go straight from `buf` to the socket or pipe, and the answer is how many it
    /// took; when it takes none, this waits for writability (`Pending`), holding nothing.
    /// Bytes buffered by earlier [`write`](StreamWriter::write)s go first: while the buffer
    /// is not empty (and on a TLS transport) `buf` is handed to the transport as by `write`
    /// (all of it, copied), once writing is not paused. Fails with the connection's error if
    /// it failed, `BrokenPipe` once the transport is closing (closed, or a pipe whose reader
    /// left), and with the write's own error (a pipe whose reader is gone: `BrokenPipe`).
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.shared().exception() {
            return Poll::Ready(Err(to_io(e)));
        }
        if self.is_closing() {
            // Closed by us, or the transport saw the reader leave (a pipe's `EPIPE` without
            // a write): nothing more can be written.
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the transport is closing",
            )));
        }
        match self.shared().poll_drain(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(e))),
            Poll::Ready(Ok(())) => match self.with_transport(|t| t.write_direct(buf, cx.waker())) {
                DirectWrite::Written(n) => Poll::Ready(Ok(n)),
                DirectWrite::Blocked => Poll::Pending,
                DirectWrite::Failed(e) => Poll::Ready(Err(e)),
                DirectWrite::Unavailable => match self.write(buf) {
                    Ok(()) => Poll::Ready(Ok(buf.len())),
                    Err(e) => Poll::Ready(Err(to_io(e))),
                },
            },
        }
    }

    /// [`drain`](StreamWriter::drain): waits while writing is paused.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.shared().exception() {
            return Poll::Ready(Err(to_io(e)));
        }
        self.shared().poll_drain(cx).map_err(to_io)
    }

    /// Drains, then [`write_eof`](StreamWriter::write_eof).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.is_closing() {
            return Poll::Ready(Ok(()));
        }
        match self.shared().poll_drain(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(e))),
            Poll::Ready(Ok(())) => {
                self.write_eof();
                Poll::Ready(Ok(()))
            }
        }
    }
}
