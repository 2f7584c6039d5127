//! The crate's one error type: [`Error`], with a matchable [`ErrorKind`].
//!
//! Every misuse of the library (a closed loop, a loop run twice, a NaN delay, an executor that was
//! shut down, ...) is an `Error`, never a panic. Where CPython has a message for the same
//! situation, the `Display` text is CPython's, so a Python user recognises it.
//!
//! ```
//! use asyncio::{EventLoop, ErrorKind};
//!
//! let event_loop = EventLoop::new().unwrap();
//! event_loop.close().unwrap();
//! let err = event_loop.call_soon(|| ()).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Closed);
//! assert_eq!(err.to_string(), "Event loop is closed");
//! ```

use std::fmt;
use std::sync::Arc;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in a form a caller can `match` on.
///
/// The enum is `#[non_exhaustive]`: later versions may add kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The event loop is closed ("Event loop is closed").
    Closed,
    /// The loop is already running ("This event loop is already running").
    AlreadyRunning,
    /// Another loop is running on this thread.
    AnotherLoopRunning,
    /// `run_until_complete` returned because the loop was stopped first.
    StoppedBeforeComplete,
    /// The policy has no current event loop for this thread.
    NoCurrentLoop,
    /// No loop is running on this thread (`get_running_loop`).
    NoRunningLoop,
    /// The operation was invoked from the wrong thread.
    WrongThread,
    /// An argument is out of its domain (a NaN delay, zero workers, a bad fd, ...).
    InvalidArgument,
    /// The object is not in a state that allows the operation (result already set, ...).
    InvalidState,
    /// The task or future was cancelled.
    Cancelled,
    /// A timeout expired (`wait_for`, `timeout`).
    Timeout,
    /// A callback, task or executor job panicked; the message is the panic's.
    Panicked,
    /// The executor was shut down ("Executor shutdown has been called").
    ExecutorShutdown,
    /// The operation is not supported by this loop, platform or component.
    NotSupported,
    /// An operating-system I/O error; [`Error::io_error_kind`] and [`Error::raw_os_error`] say
    /// which.
    Io,
    /// A stream ended before the requested bytes arrived (asyncio's `IncompleteReadError`);
    /// the partial data is in an [`IncompleteReadError`](crate::streams::IncompleteReadError)
    /// source.
    IncompleteRead,
    /// A stream's buffer limit was reached while looking for a separator (asyncio's
    /// `LimitOverrunError`); see [`LimitOverrunError`](crate::streams::LimitOverrunError).
    LimitOverrun,
    /// A TLS failure (asyncio's `ssl.SSLError`): the message names the reason, for example
    /// "certificate verify failed: unknown issuer", "... certificate has expired",
    /// "... hostname mismatch", "handshake failure: ..." or "unsupported protocol version".
    Tls,
    /// A SIGINT (Ctrl-C) cancelled the main task of [`run`](crate::run) or
    /// [`Runner::run`](crate::Runner::run) (Python's `KeyboardInterrupt`).
    Interrupted,
    /// The process is gone (Python's `ProcessLookupError`): a signal for a child whose exit was
    /// already seen ("process already exited"); never sent, so never to a recycled pid.
    ProcessLookup,
    /// `put_nowait` on a full queue (asyncio's `QueueFull`).
    QueueFull,
    /// `get_nowait` on an empty queue (asyncio's `QueueEmpty`).
    QueueEmpty,
    /// The queue was shut down (asyncio 3.13's `QueueShutDown`).
    QueueShutDown,
    /// A [`Barrier`](crate::locks::Barrier) was aborted or reset (asyncio's `BrokenBarrierError`).
    BrokenBarrier,
    /// One or more children of a [`TaskGroup`](crate::TaskGroup) failed (Python's
    /// `ExceptionGroup`); the errors are in an [`ExceptionGroup`](crate::ExceptionGroup) source.
    ExceptionGroup,
}

impl ErrorKind {
    /// A short, stable description of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Closed => "event loop closed",
            ErrorKind::AlreadyRunning => "event loop already running",
            ErrorKind::AnotherLoopRunning => "another event loop is running",
            ErrorKind::StoppedBeforeComplete => "event loop stopped before future completed",
            ErrorKind::NoCurrentLoop => "no current event loop",
            ErrorKind::NoRunningLoop => "no running event loop",
            ErrorKind::WrongThread => "wrong thread",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::InvalidState => "invalid state",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Panicked => "panicked",
            ErrorKind::ExecutorShutdown => "executor shut down",
            ErrorKind::NotSupported => "not supported",
            ErrorKind::Io => "I/O error",
            ErrorKind::IncompleteRead => "incomplete read",
            ErrorKind::LimitOverrun => "limit overrun",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::ProcessLookup => "no such process",
            ErrorKind::QueueFull => "queue full",
            ErrorKind::QueueEmpty => "queue empty",
            ErrorKind::QueueShutDown => "queue shut down",
            ErrorKind::BrokenBarrier => "broken barrier",
            ErrorKind::ExceptionGroup => "unhandled errors in a TaskGroup",
            ErrorKind::Tls => "TLS error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error type of this crate: a [`ErrorKind`], a message, and optionally a source error.
///
/// `Error` is `Clone` (its message and source are shared), `Send` and `Sync`, so a future's
/// stored error can be read several times and carried across threads. It is two words, so a
/// `Result<T>` is small where every task output and every `sleep` passes one: an error that is
/// its kind alone (a cancellation, a timeout) allocates nothing.
#[derive(Clone)]
pub struct Error {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// The kind alone; its message is the kind's description.
    Kind(ErrorKind),
    /// A message or a source as well.
    Full(Arc<Full>),
}

struct Full {
    kind: ErrorKind,
    message: Option<Box<str>>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` whose message is the kind's description.
    pub fn from_kind(kind: ErrorKind) -> Self {
        Error {
            repr: Repr::Kind(kind),
        }
    }

    fn full(&self) -> Option<&Full> {
        match &self.repr {
            Repr::Kind(_) => None,
            Repr::Full(f) => Some(f),
        }
    }

    fn own_message(&self) -> Option<&str> {
        self.full().and_then(|f| f.message.as_deref())
    }

    fn source_arc(&self) -> Option<&Arc<dyn std::error::Error + Send + Sync + 'static>> {
        self.full().and_then(|f| f.source.as_ref())
    }

    /// An error of `kind` with a message.
    ///
    /// ```
    /// use asyncio::{Error, ErrorKind};
    /// let e = Error::new(ErrorKind::InvalidArgument, "delay must not be NaN");
    /// assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    /// assert_eq!(e.to_string(), "delay must not be NaN");
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            repr: Repr::Full(Arc::new(Full {
                kind,
                message: Some(message.into().into_boxed_str()),
                source: None,
            })),
        }
    }

    /// Attaches a source error (shown by [`std::error::Error::source`]).
    pub fn with_source(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        let source: Arc<dyn std::error::Error + Send + Sync + 'static> = Arc::new(source);
        let full = match self.repr {
            Repr::Kind(kind) => Full {
                kind,
                message: None,
                source: Some(source),
            },
            // The only holder of its parts (as just made by `new`): they are reused.
            Repr::Full(f) => match Arc::try_unwrap(f) {
                Ok(mut full) => {
                    full.source = Some(source);
                    full
                }
                Err(shared) => Full {
                    kind: shared.kind,
                    message: shared.message.clone(),
                    source: Some(source),
                },
            },
        };
        Error {
            repr: Repr::Full(Arc::new(full)),
        }
    }

    /// The kind of error, to match on.
    pub fn kind(&self) -> ErrorKind {
        match &self.repr {
            Repr::Kind(kind) => *kind,
            Repr::Full(f) => f.kind,
        }
    }

    /// The message (CPython's wording where CPython has one).
    pub fn message(&self) -> &str {
        match self.own_message() {
            Some(m) => m,
            None => self.kind().as_str(),
        }
    }

    /// For [`ErrorKind::Io`] errors, the `std::io::ErrorKind` of the underlying error.
    pub fn io_error_kind(&self) -> Option<std::io::ErrorKind> {
        self.io_source().map(std::io::Error::kind)
    }

    /// For [`ErrorKind::Io`] errors, the raw OS error number, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_source().and_then(std::io::Error::raw_os_error)
    }

    fn io_source(&self) -> Option<&std::io::Error> {
        self.source_arc()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
    }

    /// `Error` of kind [`ErrorKind::Closed`]: "Event loop is closed".
    pub fn closed() -> Self {
        Error::new(ErrorKind::Closed, "Event loop is closed")
    }

    /// `Error` of kind [`ErrorKind::Cancelled`].
    pub fn cancelled() -> Self {
        Error::from_kind(ErrorKind::Cancelled)
    }

    /// `Error` of kind [`ErrorKind::Panicked`] built from a panic payload.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        Error::new(ErrorKind::Panicked, panic_message(payload))
    }

    /// Whether this error is of kind [`ErrorKind::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.kind() == ErrorKind::Cancelled
    }
}

/// The text of a panic payload (`&str` or `String`; anything else is "Box<dyn Any>").
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind())
            .field("message", &self.message());
        if let Some(s) = self.source_arc() {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())?;
        if self.own_message().is_some() || self.kind() != ErrorKind::Io {
            return Ok(());
        }
        if let Some(s) = self.source_arc() {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source_arc()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error {
            repr: Repr::Full(Arc::new(Full {
                kind: ErrorKind::Io,
                message: Some(e.to_string().into_boxed_str()),
                source: Some(Arc::new(e)),
            })),
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::from_kind(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two words, so that `Result<T>` (every task output, every `sleep`) stays small; a kind
    /// alone allocates nothing, and the message and source survive clones and `with_source`.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_error_is_two_words_and_keeps_its_parts() {
        assert_eq!(std::mem::size_of::<Error>(), 16);
        assert_eq!(std::mem::size_of::<Result<u64, Error>>(), 16);
        assert_eq!(std::mem::size_of::<Result<(), Error>>(), 16);
        let bare = Error::cancelled();
        assert!(matches!(bare.repr, Repr::Kind(ErrorKind::Cancelled)));
        assert_eq!(bare.message(), ErrorKind::Cancelled.as_str());
        let sourced = Error::from_kind(ErrorKind::Io).with_source(std::io::Error::other("inner"));
        assert_eq!(sourced.kind(), ErrorKind::Io);
        assert_eq!(
            sourced.to_string(),
            format!("{}: inner", ErrorKind::Io.as_str())
        );
        let e = Error::new(ErrorKind::InvalidArgument, "bad");
        let shared = e.clone();
        let e = e.with_source(std::io::Error::other("why"));
        assert_eq!(e.message(), "bad");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            std::error::Error::source(&e).map(ToString::to_string),
            Some("why".to_owned())
        );
        assert!(
            std::error::Error::source(&shared).is_none(),
            "the clone is unchanged"
        );
        assert_eq!(shared.message(), "bad");
    }

    #[test]
    fn io_errors_keep_their_kind_and_errno() {
        let e: Error = std::io::Error::from_raw_os_error(libc::ECONNREFUSED).into();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
        assert_eq!(
            e.io_error_kind(),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn messages_default_to_the_kind() {
        let e = Error::from_kind(ErrorKind::Timeout);
        assert_eq!(e.to_string(), "timed out");
        assert_eq!(Error::closed().to_string(), "Event loop is closed");
        let p: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(Error::from_panic(&*p).message(), "boom");
        let p: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert_eq!(Error::from_panic(&*p).message(), "Box<dyn Any>");
    }

    #[test]
    fn error_is_send_sync_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Error>();
    }
}
