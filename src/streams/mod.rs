//! Streams: asyncio's high-level `async`/`await` API for connections (asyncio's `streams`
//! module).
//!
//! [`open_connection`] connects and returns a [`StreamReader`] and a [`StreamWriter`];
//! [`start_server`] calls a callback with a reader and a writer for each client and runs the
//! future it returns as a task. Both are built, as in asyncio, on a protocol
//! (`StreamReaderProtocol`) that feeds the reader from the transport and tracks the
//! transport's `pause_writing` / `resume_writing` for [`StreamWriter::drain`].
//!
//! ```
//! use asyncio::streams::{open_connection, start_server, StreamReader, StreamWriter};
//! use asyncio::EventLoop;
//!
//! async fn echo(reader: StreamReader, writer: StreamWriter) {
//!     while let Ok(line) = reader.readline().await {
//!         if line.is_empty() || writer.write(&line).is_err() || writer.drain().await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! let event_loop = EventLoop::new()?;
//! event_loop.run_until_complete(async {
//!     let server = start_server(echo, "127.0.0.1", 0).await?;
//!     let port = server.sockets()[0].address.as_ref().unwrap().as_inet().unwrap().port();
//!     let (reader, writer) = open_connection("127.0.0.1", port).await?;
//!     writer.write(b"hello\n")?;
//!     writer.drain().await?;
//!     assert_eq!(reader.readline().await?, b"hello\n");
//!     writer.close();
//!     writer.wait_closed().await?;
//!     server.close();
//!     server.wait_closed().await
//! })??;
//! event_loop.close()?;
//! # Ok::<(), asyncio::Error>(())
//! ```
//!
//! The coroutines here use the running loop ([`get_running_loop`]), as asyncio's do.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use crate::error::{Error, ErrorKind, Result};
use crate::events::ExceptionContext;
use crate::net::ConnectOptions;
use crate::runtime::core::EventLoop;
use crate::runtime::running::get_running_loop;
use crate::server::{Server, ServerOptions};
use crate::transports::Transport;

mod duplex;
pub(crate) mod protocol;
mod reader;
mod writer;

pub use duplex::Stream;
use protocol::{Shared, StreamReaderProtocol};
pub use reader::StreamReader;
pub use writer::StreamWriter;

/// The default buffer limit of a [`StreamReader`] (64 KiB, asyncio's `_DEFAULT_LIMIT`).
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// The detail of an [`ErrorKind::IncompleteRead`] error (asyncio's `IncompleteReadError`):
/// the stream ended before the requested bytes arrived. Found as the error's
/// [`source`](std::error::Error::source); [`IncompleteReadError::of`] gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteReadError {
    /// The bytes read before EOF (consumed from the stream).
    pub partial: Vec<u8>,
    /// How many bytes were expected: `Some(n)` for `readexactly(n)`, `None` for `readuntil`.
    pub expected: Option<usize>,
}

impl IncompleteReadError {
    /// The detail of an [`ErrorKind::IncompleteRead`] error.
    pub fn of(err: &Error) -> Option<&IncompleteReadError> {
        std::error::Error::source(err).and_then(|s| s.downcast_ref())
    }
}

impl fmt::Display for IncompleteReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(n) => write!(
                f,
                "{} bytes read on a total of {n} expected bytes",
                self.partial.len()
            ),
            None => write!(
                f,
                "{} bytes read on a total of undefined expected bytes",
                self.partial.len()
            ),
        }
    }
}

impl std::error::Error for IncompleteReadError {}

/// The detail of an [`ErrorKind::LimitOverrun`] error (asyncio's `LimitOverrunError`): the
/// buffer limit was reached while looking for a separator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitOverrunError {
    /// How many bytes were examined (and are still buffered, for `readuntil`).
    pub consumed: usize,
}

impl LimitOverrunError {
    /// The detail of an [`ErrorKind::LimitOverrun`] error.
    pub fn of(err: &Error) -> Option<&LimitOverrunError> {
        std::error::Error::source(err).and_then(|s| s.downcast_ref())
    }
}

impl fmt::Display for LimitOverrunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "limit overrun after {} bytes", self.consumed)
    }
}

impl std::error::Error for LimitOverrunError {}

pub(crate) fn incomplete_read(partial: Vec<u8>, expected: Option<usize>) -> Error {
    let detail = IncompleteReadError { partial, expected };
    Error::new(ErrorKind::IncompleteRead, detail.to_string()).with_source(detail)
}

pub(crate) fn limit_overrun(message: &str, consumed: usize) -> Error {
    Error::new(ErrorKind::LimitOverrun, message).with_source(LimitOverrunError { consumed })
}

fn check_limit(limit: usize) -> Result<()> {
    if limit == 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "Limit cannot be <= 0",
        ));
    }
    Ok(())
}

fn pair(transport: Transport, shared: Rc<Shared>) -> (StreamReader, StreamWriter) {
    (
        StreamReader::new(shared.clone()),
        StreamWriter::new(transport, shared),
    )
}

/// Opens a TCP connection to `host`:`port` and returns its reader and writer (asyncio's
/// `open_connection`), with the default limit.
///
/// # Errors
/// As [`EventLoop::create_connection`]; [`ErrorKind::NoRunningLoop`] outside a running loop.
///
/// # Cancel safety
/// As [`EventLoop::create_connection`]: dropping the future closes the socket.
pub async fn open_connection(host: &str, port: u16) -> Result<(StreamReader, StreamWriter)> {
    open_connection_with(Some(host), Some(port), DEFAULT_LIMIT, ConnectOptions::new()).await
}

/// [`open_connection`] with a buffer `limit` and [`ConnectOptions`] (give `host` and `port`
/// as `None` with `options.sock`).
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for a zero limit; else as [`open_connection`].
///
/// # Cancel safety
/// As [`open_connection`].
pub async fn open_connection_with(
    host: Option<&str>,
    port: Option<u16>,
    limit: usize,
    options: ConnectOptions,
) -> Result<(StreamReader, StreamWriter)> {
    check_limit(limit)?;
    let lp = get_running_loop()?;
    let shared = Shared::new(&lp, limit);
    let s = shared.clone();
    let (transport, _) = lp
        .create_connection(
            move || StreamReaderProtocol::new(s, None),
            host,
            port,
            options,
        )
        .await?;
    Ok(pair(transport, shared))
}

/// Opens a Unix-socket connection to `path` (asyncio's `open_unix_connection`).
///
/// # Errors
/// As [`EventLoop::create_unix_connection`]; [`ErrorKind::NoRunningLoop`] outside a running
/// loop.
///
/// # Cancel safety
/// As [`open_connection`].
pub async fn open_unix_connection(path: impl AsRef<Path>) -> Result<(StreamReader, StreamWriter)> {
    open_unix_connection_with(path, DEFAULT_LIMIT).await
}

/// [`open_unix_connection`] with a buffer `limit`.
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for a zero limit; else as [`open_unix_connection`].
///
/// # Cancel safety
/// As [`open_connection`].
pub async fn open_unix_connection_with(
    path: impl AsRef<Path>,
    limit: usize,
) -> Result<(StreamReader, StreamWriter)> {
    open_unix_connection_with_options(path, limit, ConnectOptions::new()).await
}

/// [`open_unix_connection`] with a buffer `limit` and the options of
/// [`EventLoop::create_unix_connection_with`] (TLS: `ssl` and `server_hostname`).
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for a zero limit; else as
/// [`EventLoop::create_unix_connection_with`].
///
/// # Cancel safety
/// As [`open_connection`].
pub async fn open_unix_connection_with_options(
    path: impl AsRef<Path>,
    limit: usize,
    options: ConnectOptions,
) -> Result<(StreamReader, StreamWriter)> {
    check_limit(limit)?;
    let lp = get_running_loop()?;
    let shared = Shared::new(&lp, limit);
    let s = shared.clone();
    let (transport, _) = lp
        .create_unix_connection_with(
            move || StreamReaderProtocol::new(s, None),
            Some(path.as_ref()),
            options,
        )
        .await?;
    Ok(pair(transport, shared))
}

/// The protocol factory of a stream server: each connection gets a fresh reader and writer,
/// passed to `cb`, whose future runs as a task. A panic in that task is reported to the
/// exception handler ("Unhandled exception in client_connected_cb") and closes the transport.
fn server_factory<F, Fut>(lp: &EventLoop, cb: F, limit: usize) -> impl Fn() -> StreamReaderProtocol
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
{
    let cb = Rc::new(cb);
    let lp = lp.clone();
    move || {
        let shared = Shared::new(&lp, limit);
        shared.st.borrow_mut().server_side = true;
        let cb = cb.clone();
        let lp = lp.clone();
        StreamReaderProtocol::new(
            shared,
            Some(Box::new(move |shared, transport: Transport| {
                let (reader, writer) = pair(transport.clone(), shared);
                let fut = cb(reader, writer);
                match lp.create_task(fut) {
                    Ok(task) => {
                        let lp2 = lp.clone();
                        // The callback keeps the task handle alive until it has looked at the
                        // outcome, so a panic is reported once, here, and not as "Task
                        // exception was never retrieved".
                        let slot = Rc::new(std::cell::Cell::new(None));
                        let held = slot.clone();
                        let _ = task.add_done_callback(move |t| {
                            let exc = t.exception();
                            drop(held.take());
                            if let Some(e) = exc {
                                if !e.is_cancelled() {
                                    lp2.call_exception_handler(
                                        &ExceptionContext::new(
                                            "Unhandled exception in client_connected_cb",
                                        )
                                        .with_exception(e)
                                        .with("transport", format!("{transport:?}")),
                                    );
                                    transport.close();
                                }
                            }
                        });
                        slot.set(Some(task));
                    }
                    Err(_) => transport.abort(),
                }
            })),
        )
    }
}

/// Starts a TCP server on `host`:`port` (port 0 picks one) whose clients are handled by
/// `client_connected_cb` (asyncio's `start_server`): for each connection it is called with a
/// [`StreamReader`] and a [`StreamWriter`], and the future it returns runs as a task (its
/// output is dropped). Dropping the writer closes the connection.
///
/// # Errors
/// As [`EventLoop::create_server`]; [`ErrorKind::NoRunningLoop`] outside a running loop.
///
/// # Cancel safety
/// As [`EventLoop::create_server`]: dropping the future during resolution creates no server.
pub async fn start_server<F, Fut>(client_connected_cb: F, host: &str, port: u16) -> Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
{
    start_server_with(
        client_connected_cb,
        &[host],
        Some(port),
        DEFAULT_LIMIT,
        ServerOptions::new(),
    )
    .await
}

/// [`start_server`] with several hosts (empty: all interfaces), an optional port, a buffer
/// `limit` and [`ServerOptions`].
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for a zero limit; else as [`start_server`].
///
/// # Cancel safety
/// As [`start_server`].
pub async fn start_server_with<F, Fut>(
    client_connected_cb: F,
    hosts: &[&str],
    port: Option<u16>,
    limit: usize,
    options: ServerOptions,
) -> Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
{
    check_limit(limit)?;
    let lp = get_running_loop()?;
    let factory = server_factory(&lp, client_connected_cb, limit);
    lp.create_server(factory, hosts, port, options).await
}

/// Starts a Unix-socket server on `path` (asyncio's `start_unix_server`); see
/// [`start_server`].
///
/// # Errors
/// As [`EventLoop::create_unix_server`]; [`ErrorKind::NoRunningLoop`] outside a running loop.
///
/// # Cancel safety
/// Completes without suspending: nothing to cancel.
pub async fn start_unix_server<F, Fut>(
    client_connected_cb: F,
    path: impl AsRef<Path>,
) -> Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
{
    start_unix_server_with(
        client_connected_cb,
        path,
        DEFAULT_LIMIT,
        ServerOptions::new(),
    )
    .await
}

/// [`start_unix_server`] with a buffer `limit` and [`ServerOptions`].
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for a zero limit; else as [`start_unix_server`].
///
/// # Cancel safety
/// As [`start_unix_server`].
pub async fn start_unix_server_with<F, Fut>(
    client_connected_cb: F,
    path: impl AsRef<Path>,
    limit: usize,
    options: ServerOptions,
) -> Result<Server>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
{
    check_limit(limit)?;
    let lp = get_running_loop()?;
    let factory = server_factory(&lp, client_connected_cb, limit);
    lp.create_unix_server(factory, Some(path.as_ref()), options)
        .await
}
