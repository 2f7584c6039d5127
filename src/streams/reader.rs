//! [`StreamReader`]: asyncio's `StreamReader`, the buffered read side of a stream connection.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::protocol::Shared;
use super::{incomplete_read, limit_overrun, LimitOverrunError};
use crate::error::{Error, ErrorKind, Result};
use crate::transports::Transport;

/// `readinto` reads a buffer at least this large straight from the fd; a smaller one through
/// the loop's read buffer (see `poll_readinto`), as `std::io::BufReader` bypasses its buffer
/// for reads at least its size. 8 KiB is `BufReader`'s default size: copying at most that
/// much once more takes a fraction of a microsecond, about what the `EAGAIN` read it saves
/// costs (benches/net.rs, row `timeout`, reads 1 byte at a time; the threshold itself was not
/// tuned by measurement).
const DIRECT_READ_MIN: usize = 8 * 1024;

/// The read side of a stream connection (asyncio's `StreamReader`), from
/// [`open_connection`](super::open_connection) or a [`start_server`](super::start_server)
/// callback.
///
/// Data the transport receives is buffered here. When the buffer holds more than twice the
/// reader's *limit* (64 KiB by default, [`DEFAULT_LIMIT`](super::DEFAULT_LIMIT)) the transport
/// stops reading; it resumes once the buffer is back at or under the limit, or when a read
/// needs more than the buffer holds.
///
/// One task should read at a time (asyncio raises `RuntimeError` for a second concurrent
/// reader; here the last one to wait is the one woken). `StreamReader` also implements
/// [`futures::io::AsyncRead`], so `futures::io::copy` and the `AsyncReadExt` helpers work on
/// it.
pub struct StreamReader {
    shared: Rc<Shared>,
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.st.borrow();
        f.debug_struct("StreamReader")
            .field("buffered", &st.buffer.len())
            .field("limit", &self.shared.limit)
            .field("eof", &st.eof)
            .field("paused", &st.reading_paused)
            .finish()
    }
}

fn to_io(e: Error) -> std::io::Error {
    let kind = e.io_error_kind().unwrap_or(std::io::ErrorKind::Other);
    std::io::Error::new(kind, e)
}

impl StreamReader {
    pub(crate) fn new(shared: Rc<Shared>) -> Self {
        StreamReader { shared }
    }

    /// A reader fed only by [`feed_data`](StreamReader::feed_data) and
    /// [`feed_eof`](StreamReader::feed_eof) (asyncio's `StreamReader(limit=limit)`), for tests
    /// and adapters.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a zero limit.
    pub fn with_limit(event_loop: &crate::EventLoop, limit: usize) -> Result<Self> {
        super::check_limit(limit)?;
        Ok(StreamReader::new(Shared::new(event_loop, limit)))
    }

    /// The buffer limit given at creation.
    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    /// How many bytes are buffered and not yet read.
    pub fn buffered(&self) -> usize {
        self.shared.st.borrow().buffer.len()
    }

    /// The exception the connection ended with, if any (asyncio's `exception()`).
    pub fn exception(&self) -> Option<Error> {
        self.shared.exception()
    }

    /// Whether the buffer is empty and the peer sent EOF (asyncio's `at_eof`).
    pub fn at_eof(&self) -> bool {
        let st = self.shared.st.borrow();
        st.eof && st.buffer.len() == 0
    }

    /// The transport this reader is fed from.
    pub fn transport(&self) -> Option<Transport> {
        self.shared.st.borrow().transport.clone()
    }

    /// Adds `data` to the buffer as if the transport had received it (asyncio's `feed_data`);
    /// for tests and adapters.
    pub fn feed_data(&self, data: &[u8]) {
        self.shared.feed_data(data);
    }

    /// Marks the end of the stream as if the peer had sent EOF (asyncio's `feed_eof`).
    pub fn feed_eof(&self) {
        self.shared.feed_eof();
    }

    fn check_exception(&self) -> Result<()> {
        match self.shared.exception() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reads up to `n` bytes: waits until at least one byte is buffered or EOF, then returns
    /// what is there, at most `n` bytes. An empty result means EOF (or `n == 0`).
    ///
    /// # Errors
    /// The connection's error (for example a reset, [`ErrorKind::Io`]) if it ended with one.
    ///
    /// # Cancel safety
    /// Cancel-safe: no data is consumed unless the future completes.
    pub async fn read(&self, n: usize) -> Result<Vec<u8>> {
        self.check_exception()?;
        if n == 0 {
            return Ok(Vec::new());
        }
        poll_fn(|cx| self.poll_read_some(cx, n)).await
    }

    /// Reads into `buf`: waits until at least one byte is buffered or EOF, then copies what
    /// is there, at most `buf.len()` bytes, and returns how many it copied. `Ok(0)` means EOF
    /// (or an empty `buf`).
    ///
    /// The read side of asyncio's `BufferedProtocol.buffer_updated`, for streams: the bytes
    /// go from the reader's buffer straight into the caller's, with no `Vec` allocated per
    /// read as [`read`](StreamReader::read) does. Like `read`, it resumes a transport that was
    /// paused for the buffer's limit once the buffer is back at or under it.
    ///
    /// ```
    /// # use asyncio::streams::StreamReader;
    /// # let lp = asyncio::EventLoop::new().unwrap();
    /// # let lp2 = lp.clone();
    /// # lp.run_until_complete(async move {
    /// let reader = StreamReader::with_limit(&lp2, 1024)?;
    /// reader.feed_data(b"hello");
    /// reader.feed_eof();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(reader.readinto(&mut buf).await?, 4);
    /// assert_eq!(&buf, b"hell");
    /// assert_eq!(reader.readinto(&mut buf).await?, 1);
    /// assert_eq!(reader.readinto(&mut buf).await?, 0); // EOF
    /// # Ok::<(), asyncio::Error>(())
    /// # }).unwrap().unwrap();
    /// ```
    ///
    /// # Errors
    /// The connection's error (for example a reset, [`ErrorKind::Io`]) if it ended with one;
    /// it is reported even for an empty `buf`, as for `read(0)`.
    ///
    /// # Cancel safety
    /// Cancel-safe: bytes are copied and consumed only in the poll that completes the future,
    /// so a future dropped while waiting has consumed nothing and written nothing to `buf`.
    pub async fn readinto(&self, buf: &mut [u8]) -> Result<usize> {
        self.check_exception()?;
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| self.poll_readinto(cx, buf)).await
    }

    /// One poll of [`readinto`](StreamReader::readinto) (and of `AsyncRead::poll_read`), for a
    /// non-empty `buf`.
    fn poll_readinto(&self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        let direct = {
            let mut st = self.shared.st.borrow_mut();
            if let Some(e) = &st.exception {
                return Poll::Ready(Err(e.clone()));
            }
            let avail = st.buffer.len();
            if avail == 0 && !st.eof {
                st.end_wait(cx.waker());
                st.transport.clone()
            } else {
                let n = avail.min(buf.len());
                buf[..n].copy_from_slice(&st.buffer.as_slice()[..n]);
                st.buffer.consume(n);
                drop(st);
                return self.shared.ready_or_wait(Some(Ok(n)), cx);
            }
        };
        // Nothing buffered, so nothing read earlier can be overtaken: a socket or pipe that
        // only feeds this reader (the transport says so) is read past the protocol. A large
        // `buf` is read into straight (one copy instead of three); a small one through the
        // loop's read buffer, whose remainder is buffered here, so one read usually empties
        // the fd and the next `readinto` waits without an `EAGAIN` read first.
        if let Some(t) = direct {
            let read = if buf.len() >= DIRECT_READ_MIN {
                t.read_direct(buf, cx.waker())
            } else {
                t.read_direct_buffered(cx.waker(), |data| {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    self.shared.feed_data(&data[n..]);
                    n
                })
            };
            if let Some(n) = read {
                return Poll::Ready(Ok(n));
            }
        }
        self.shared.ready_or_wait(None, cx)
    }

    fn poll_read_some(&self, cx: &Context<'_>, n: usize) -> Poll<Result<Vec<u8>>> {
        let out = {
            let mut st = self.shared.st.borrow_mut();
            if let Some(e) = &st.exception {
                return Poll::Ready(Err(e.clone()));
            }
            if st.buffer.len() == 0 && !st.eof {
                None
            } else {
                Some(st.buffer.take(n))
            }
        };
        self.shared.ready_or_wait(out.map(Ok), cx)
    }

    /// Reads until EOF and returns everything (asyncio's `read(-1)`).
    ///
    /// # Errors
    /// The connection's error if it ended with one.
    ///
    /// # Cancel safety
    /// Not cancel-safe: data read before the future is dropped is lost.
    pub async fn read_to_eof(&self) -> Result<Vec<u8>> {
        self.check_exception()?;
        let mut all = Vec::new();
        poll_fn(|cx| {
            let (eof, err) = {
                let mut st = self.shared.st.borrow_mut();
                all.extend_from_slice(st.buffer.as_slice());
                st.buffer.consume(usize::MAX);
                (st.eof, st.exception.clone())
            };
            if let Some(e) = err {
                return Poll::Ready(Err(e));
            }
            self.shared.maybe_resume();
            if eof {
                Poll::Ready(Ok(std::mem::take(&mut all)))
            } else {
                self.shared.wait_for_data(cx);
                Poll::Pending
            }
        })
        .await
    }

    /// Reads exactly `n` bytes (asyncio's `readexactly`).
    ///
    /// # Errors
    /// [`ErrorKind::IncompleteRead`] when EOF comes first: the bytes that were buffered are
    /// consumed and returned in the error's
    /// [`IncompleteReadError`](super::IncompleteReadError) (`expected == Some(n)`); the
    /// connection's error if it ended with one.
    ///
    /// # Cancel safety
    /// Cancel-safe: no data is consumed unless the future completes.
    pub async fn readexactly(&self, n: usize) -> Result<Vec<u8>> {
        self.check_exception()?;
        if n == 0 {
            return Ok(Vec::new());
        }
        poll_fn(|cx| {
            let out = {
                let mut st = self.shared.st.borrow_mut();
                if let Some(e) = &st.exception {
                    return Poll::Ready(Err(e.clone()));
                }
                if st.buffer.len() >= n {
                    Some(Ok(st.buffer.take(n)))
                } else if st.eof {
                    Some(Err(incomplete_read(st.buffer.take_all(), Some(n))))
                } else {
                    None
                }
            };
            self.shared.ready_or_wait(out, cx)
        })
        .await
    }

    /// Reads up to and including `separator` (asyncio's `readuntil`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for an empty separator;
    /// [`ErrorKind::LimitOverrun`] when the separator is not found within the reader's limit,
    /// or is found past it (the data stays in the buffer; the
    /// [`LimitOverrunError`] says how much was examined);
    /// [`ErrorKind::IncompleteRead`] when EOF comes before the separator (the buffered bytes
    /// are consumed and returned in the error, `expected == None`); the connection's error if
    /// it ended with one.
    ///
    /// # Cancel safety
    /// Cancel-safe: no data is consumed unless the future completes.
    pub async fn readuntil(&self, separator: &[u8]) -> Result<Vec<u8>> {
        self.readuntil_any(&[separator]).await
    }

    /// Reads up to and including the first of several separators (asyncio 3.13's `readuntil`
    /// with a tuple): the shortest data that ends with any of them.
    ///
    /// # Errors
    /// As [`readuntil`](StreamReader::readuntil); [`ErrorKind::InvalidArgument`] also for an
    /// empty list.
    ///
    /// # Cancel safety
    /// Cancel-safe: no data is consumed unless the future completes.
    pub async fn readuntil_any(&self, separators: &[&[u8]]) -> Result<Vec<u8>> {
        if separators.is_empty() || separators.iter().any(|s| s.is_empty()) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "Separator should be at least one-byte string",
            ));
        }
        self.check_exception()?;
        let mut offset = 0;
        poll_fn(|cx| self.poll_readuntil(cx, separators, &mut offset)).await
    }

    fn poll_readuntil(
        &self,
        cx: &Context<'_>,
        seps: &[&[u8]],
        offset: &mut usize,
    ) -> Poll<Result<Vec<u8>>> {
        let min_seplen = seps.iter().map(|s| s.len()).min().unwrap_or(1);
        let max_seplen = seps.iter().map(|s| s.len()).max().unwrap_or(1);
        let limit = self.shared.limit;
        let out = {
            let mut st = self.shared.st.borrow_mut();
            if let Some(e) = &st.exception {
                return Poll::Ready(Err(e.clone()));
            }
            let buflen = st.buffer.len();
            // (start, end) of the match that ends first.
            let mut found: Option<(usize, usize)> = None;
            if buflen >= *offset + min_seplen {
                let hay = &st.buffer.as_slice()[*offset..];
                for sep in seps {
                    if let Some(i) = find(hay, sep) {
                        let (start, end) = (i + *offset, i + *offset + sep.len());
                        if found.is_none_or(|(_, e)| end < e) {
                            found = Some((start, end));
                        }
                    }
                }
                if found.is_none() {
                    *offset = (buflen + 1).saturating_sub(max_seplen);
                    if *offset > limit {
                        return Poll::Ready(Err(limit_overrun(
                            "Separator is not found, and chunk exceed the limit",
                            *offset,
                        )));
                    }
                }
            }
            match found {
                Some((isep, _)) if isep > limit => {
                    return Poll::Ready(Err(limit_overrun(
                        "Separator is found, but chunk is longer than limit",
                        isep,
                    )));
                }
                Some((_, end)) => Some(Ok(st.buffer.take(end))),
                None if st.eof => Some(Err(incomplete_read(st.buffer.take_all(), None))),
                None => None,
            }
        };
        self.shared.ready_or_wait(out, cx)
    }

    /// Reads one line, up to and including `\n` (asyncio's `readline`). At EOF the partial
    /// last line is returned without `\n`; an empty result means EOF.
    ///
    /// # Errors
    /// [`ErrorKind::LimitOverrun`] when the line is longer than the limit; unlike
    /// [`readuntil`](StreamReader::readuntil) the examined data is discarded first (up to and
    /// including the separator if it was found, else the whole buffer), as asyncio does before
    /// raising `ValueError`. The connection's error if it ended with one.
    ///
    /// # Cancel safety
    /// Cancel-safe: no data is consumed unless the future completes.
    pub async fn readline(&self) -> Result<Vec<u8>> {
        self.check_exception()?;
        let mut offset = 0;
        let res = poll_fn(|cx| self.poll_readuntil(cx, &[b"\n"], &mut offset)).await;
        match res {
            Ok(line) => Ok(line),
            Err(e) if e.kind() == ErrorKind::IncompleteRead => {
                Ok(super::IncompleteReadError::of(&e)
                    .map(|i| i.partial.clone())
                    .unwrap_or_default())
            }
            Err(e) if e.kind() == ErrorKind::LimitOverrun => {
                let consumed = LimitOverrunError::of(&e).map_or(0, |l| l.consumed);
                {
                    let mut st = self.shared.st.borrow_mut();
                    if st.buffer.as_slice().get(consumed) == Some(&b'\n') {
                        st.buffer.consume(consumed + 1);
                    } else {
                        st.buffer.consume(usize::MAX);
                    }
                }
                self.shared.maybe_resume();
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return haystack.iter().position(|&b| b == needle[0]);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl futures::io::AsyncRead for StreamReader {
    /// [`readinto`](StreamReader::readinto) as a poll: copies buffered bytes into `buf`,
    /// waiting for data when the buffer is empty; `Ok(0)` at EOF or for an empty `buf`. The
    /// connection's error becomes an `io::Error` of the same `io::ErrorKind` (or `Other`).
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.poll_readinto(cx, buf).map_err(to_io)
    }
}
