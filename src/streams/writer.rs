//! [`StreamWriter`]: asyncio's `StreamWriter`, the write side of a stream connection.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::protocol::Shared;
use crate::error::{Error, Result};
use crate::runtime::core::EventLoop;
use crate::transports::{ExtraInfo, Transport};

/// The write side of a stream connection (asyncio's `StreamWriter`).
///
/// [`write`](StreamWriter::write) never blocks: it hands the data to the [`Transport`], which
/// sends what it can and buffers the rest. Await [`drain`](StreamWriter::drain) after writing
/// to respect flow control: it waits while the transport's write buffer is over its high-water
/// mark (the protocol is paused) and returns once it is back under the low-water mark.
///
/// Dropping a `StreamWriter` closes its transport (after the buffered data is sent), so a
/// server callback's connection ends with its task; asyncio leaves that to the garbage
/// collector. It implements [`futures::io::AsyncWrite`]: `poll_write` waits while writing is
/// paused, `poll_flush` is [`drain`](StreamWriter::drain), and `poll_close` is
/// [`write_eof`](StreamWriter::write_eof) after a drain.
pub struct StreamWriter {
    transport: Transport,
    shared: Rc<Shared>,
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("transport", &self.transport)
            .finish()
    }
}

fn to_io(e: Error) -> std::io::Error {
    let kind = e.io_error_kind().unwrap_or(std::io::ErrorKind::Other);
    std::io::Error::new(kind, e)
}

impl StreamWriter {
    pub(crate) fn new(transport: Transport, shared: Rc<Shared>) -> Self {
        StreamWriter { transport, shared }
    }

    /// The underlying transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The loop the connection runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.shared.lp.clone()
    }

    /// Writes `data` (see [`Transport::write`]); follow with [`drain`](StreamWriter::drain).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`](crate::ErrorKind::InvalidState) after
    /// [`write_eof`](StreamWriter::write_eof).
    pub fn write(&self, data: &[u8]) -> Result<()> {
        self.transport.write(data)
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
        self.transport.writelines(list)
    }

    /// Shuts down the write side once the buffered data is sent; reading goes on.
    pub fn write_eof(&self) {
        self.transport.write_eof();
    }

    /// Whether [`write_eof`](StreamWriter::write_eof) is supported (always for sockets).
    pub fn can_write_eof(&self) -> bool {
        self.transport.can_write_eof()
    }

    /// Closes the transport (after the buffered data is sent); await
    /// [`wait_closed`](StreamWriter::wait_closed) to know when it is done.
    pub fn close(&self) {
        self.transport.close();
    }

    /// Whether the transport is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.transport.is_closing()
    }

    /// The transport's extra information (`"peername"`, `"sockname"`, `"socket"`).
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.transport.get_extra_info(name)
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
        poll_fn(|cx| self.shared.poll_closed(cx)).await
    }

    /// Waits until it is appropriate to write again (asyncio's `drain`): returns at once
    /// unless the transport paused the protocol (its write buffer went over the high-water
    /// mark); then waits for `resume_writing`.
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
        if let Some(e) = self.shared.exception() {
            return Err(e);
        }
        if self.transport.is_closing() {
            // Let connection_lost run if it is scheduled, so a drain after close reports the
            // lost connection (asyncio does the same `sleep(0)`).
            crate::task::sleep(0.0).await?;
        }
        poll_fn(|cx| self.shared.poll_drain(cx)).await
    }
}

impl StreamWriter {
    /// Upgrades the connection to TLS (asyncio's `StreamWriter.start_tls`, for STARTTLS):
    /// drains, runs the handshake (as the server for a stream from
    /// [`start_server`](crate::streams::start_server), else as a client checking the server
    /// against `server_hostname`), and from then on this writer and its reader speak TLS.
    /// Data the reader had already buffered stays readable.
    ///
    /// # Errors
    /// As [`EventLoop::start_tls`]; the reader's exception if the connection failed.
    ///
    /// # Cancel safety
    /// Dropping the future aborts the connection.
    pub async fn start_tls(
        &mut self,
        context: &crate::tls::TlsContext,
        server_hostname: Option<&str>,
    ) -> Result<()> {
        self.drain().await?;
        let server_side = self.shared.st.borrow().server_side;
        let Some(refs) = self.transport.protocol_refs() else {
            return Err(super::protocol::connection_lost_error());
        };
        let timeouts = crate::tls::TlsTimeouts::default();
        let lp = self.shared.lp.clone();
        let transport = lp
            .start_tls_refs(
                &self.transport,
                refs,
                context,
                server_side,
                server_hostname,
                timeouts,
            )
            .await?;
        self.shared.st.borrow_mut().transport = Some(transport.clone());
        self.transport = transport;
        Ok(())
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        if !self.transport.is_closing() {
            self.transport.close();
        }
    }
}

impl futures::io::AsyncWrite for StreamWriter {
    /// Writes all of `buf` to the transport unless writing is paused, in which case it waits
    /// for `resume_writing`. Fails once the connection is lost.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.shared.poll_drain(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(e))),
            Poll::Ready(Ok(())) => {
                if self.transport.is_closing() {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the transport is closing",
                    )));
                }
                match self.transport.write(buf) {
                    Ok(()) => Poll::Ready(Ok(buf.len())),
                    Err(e) => Poll::Ready(Err(to_io(e))),
                }
            }
        }
    }

    /// [`drain`](StreamWriter::drain): waits while writing is paused.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.shared.exception() {
            return Poll::Ready(Err(to_io(e)));
        }
        self.shared.poll_drain(cx).map_err(to_io)
    }

    /// Drains, then [`write_eof`](StreamWriter::write_eof).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.transport.is_closing() {
            return Poll::Ready(Ok(()));
        }
        match self.shared.poll_drain(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(e))),
            Poll::Ready(Ok(())) => {
                self.transport.write_eof();
                Poll::Ready(Ok(()))
            }
        }
    }
}
