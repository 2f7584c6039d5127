//! [`Stream`]: one read+write value over a connection, for crates that take
//! `S: AsyncRead + AsyncWrite + Unpin`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{open_connection, StreamReader, StreamWriter};
use crate::error::Result;

/// A connection as one value: a [`StreamReader`] and a [`StreamWriter`] together, implementing
/// both [`futures::io::AsyncRead`] and [`futures::io::AsyncWrite`].
///
/// Crates built on the `futures::io` traits (async-tungstenite, async-h1, futures-rustls, ...)
/// take one value that does both; this is it. [`into_split`](Stream::into_split) gives the two
/// halves back, to read and write from different tasks.
///
/// ```
/// use futures::io::{AsyncReadExt, AsyncWriteExt};
/// use asyncio::streams::{start_server, Stream};
///
/// let event_loop = asyncio::EventLoop::new()?;
/// event_loop.run_until_complete(async {
///     let server = start_server(|r, w| async move {
///         let mut s = Stream::from_parts(r, w);
///         let mut buf = [0; 5];
///         s.read_exact(&mut buf).await.unwrap();
///         s.write_all(&buf).await.unwrap();
///     }, "127.0.0.1", 0).await?;
///     let addr = server.sockets()[0].address.clone();
///     let port = addr.as_ref().and_then(asyncio::Address::as_inet).unwrap().port();
///     let mut stream = Stream::connect("127.0.0.1", port).await?;
///     stream.write_all(b"hello").await?;
///     let mut back = [0; 5];
///     stream.read_exact(&mut back).await?;
///     assert_eq!(&back, b"hello");
///     server.close();
///     Ok::<(), asyncio::Error>(())
/// })??;
/// # Ok::<(), asyncio::Error>(())
/// ```
pub struct Stream {
    reader: StreamReader,
    writer: StreamWriter,
}

impl Stream {
    /// Joins the two halves of one connection (from [`open_connection`], a
    /// [`start_server`](super::start_server) callback, ...).
    pub fn from_parts(reader: StreamReader, writer: StreamWriter) -> Self {
        Stream { reader, writer }
    }

    /// Opens a TCP connection ([`open_connection`]) as one `Stream`.
    ///
    /// # Errors
    /// As [`open_connection`].
    pub async fn connect(host: &str, port: u16) -> Result<Self> {
        let (reader, writer) = open_connection(host, port).await?;
        Ok(Stream::from_parts(reader, writer))
    }

    /// The reading half, for asyncio's `readline`, `readuntil`, ...
    pub fn reader(&self) -> &StreamReader {
        &self.reader
    }

    /// The writing half, for asyncio's `write`, `drain`, `close`, ...
    pub fn writer(&self) -> &StreamWriter {
        &self.writer
    }

    /// Splits the stream into its reader and writer.
    pub fn into_split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl futures::io::AsyncRead for Stream {
    /// As [`StreamReader`]'s `poll_read`.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl futures::io::AsyncWrite for Stream {
    /// As [`StreamWriter`]'s `poll_write`.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    /// As [`StreamWriter`]'s `poll_flush` (drain).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    /// As [`StreamWriter`]'s `poll_close` (drain, then `write_eof`).
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}
