//! [`SubprocessOptions`]: what asyncio passes to `Popen` as keyword arguments, as a builder.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::streams::DEFAULT_LIMIT;

/// Where one of the child's standard descriptors goes (asyncio's `PIPE`, `None`, `DEVNULL`,
/// a file descriptor, `STDOUT`).
#[derive(Debug)]
pub enum Stdio {
    /// A new pipe to the parent (asyncio's `subprocess.PIPE`): the transport's pipe transport,
    /// or the `Process`'s stream.
    Pipe,
    /// The parent's own descriptor (asyncio's `None`).
    Inherit,
    /// `/dev/null` (asyncio's `subprocess.DEVNULL`).
    DevNull,
    /// This descriptor (a file, a socket, one end of a pipe); it is closed in the parent once
    /// the child is started.
    Fd(OwnedFd),
    /// stderr only: the same place as stdout (asyncio's `subprocess.STDOUT`).
    Stdout,
}

impl<T: Into<OwnedFd>> From<T> for Stdio {
    fn from(fd: T) -> Self {
        Stdio::Fd(fd.into())
    }
}

/// How to start a child: its standard descriptors, directory, environment, session and the
/// descriptors it inherits, plus this crate's `kill_on_drop` (as tokio's).
///
/// Every setter takes and returns the options, so they chain. Unset stdio follows the API's
/// default, as in asyncio: [`Stdio::Pipe`] for
/// [`EventLoop::subprocess_exec`](crate::EventLoop::subprocess_exec) /
/// [`subprocess_shell`](crate::EventLoop::subprocess_shell), [`Stdio::Inherit`] for
/// [`create_subprocess_exec`](super::create_subprocess_exec) /
/// [`create_subprocess_shell`](super::create_subprocess_shell).
///
/// The options asyncio refuses can be given, so that code ported from Python fails the same
/// way: [`text`](SubprocessOptions::text), [`universal_newlines`](SubprocessOptions::universal_newlines),
/// a [`bufsize`](SubprocessOptions::bufsize) other than 0, an
/// [`encoding`](SubprocessOptions::encoding) or [`errors`](SubprocessOptions::errors) are
/// refused with [`ErrorKind::InvalidArgument`] and asyncio's message ("text must be False", ...).
///
/// ```
/// use asyncio::subprocess::{Stdio, SubprocessOptions};
///
/// let options = SubprocessOptions::new()
///     .stdin(Stdio::DevNull)
///     .stdout(Stdio::Pipe)
///     .stderr(Stdio::Stdout)
///     .cwd("/")
///     .env("LANG", "C")
///     .kill_on_drop(true);
/// # let _ = options;
/// ```
#[derive(Default)]
pub struct SubprocessOptions {
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
    pub(crate) stderr: Option<Stdio>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) env_clear: bool,
    pub(crate) process_group: Option<i32>,
    pub(crate) start_new_session: bool,
    pub(crate) pass_fds: Vec<RawFd>,
    pub(crate) kill_on_drop: bool,
    pub(crate) limit: Option<usize>,
    pub(crate) pipesize: usize,
    text: bool,
    universal_newlines: bool,
    bufsize: i64,
    encoding: Option<String>,
    errors: Option<String>,
}

impl fmt::Debug for SubprocessOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubprocessOptions")
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("cwd", &self.cwd)
            .field("env_clear", &self.env_clear)
            .field("process_group", &self.process_group)
            .field("start_new_session", &self.start_new_session)
            .field("pass_fds", &self.pass_fds)
            .field("kill_on_drop", &self.kill_on_drop)
            .field("pipesize", &self.pipesize)
            .finish_non_exhaustive()
    }
}

impl SubprocessOptions {
    /// Options with every default (stdio from the API, the parent's directory and
    /// environment).
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the child's stdin comes from.
    pub fn stdin(mut self, stdio: Stdio) -> Self {
        self.stdin = Some(stdio);
        self
    }

    /// Where the child's stdout goes.
    pub fn stdout(mut self, stdio: Stdio) -> Self {
        self.stdout = Some(stdio);
        self
    }

    /// Where the child's stderr goes ([`Stdio::Stdout`]: with stdout).
    pub fn stderr(mut self, stdio: Stdio) -> Self {
        self.stderr = Some(stdio);
        self
    }

    /// The child's working directory (a missing one fails the spawn with `NotFound`).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets one environment variable of the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Sets several environment variables of the child.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Removes one environment variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child with an empty environment, plus what [`env`](SubprocessOptions::env)
    /// sets (Python's `env={...}`).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Puts the child in process group `pgid` (0: a new group led by the child; Python's
    /// `process_group`).
    pub fn process_group(mut self, pgid: i32) -> Self {
        self.process_group = Some(pgid);
        self
    }

    /// Runs the child in a new session (`setsid`, Python's `start_new_session=True`).
    pub fn start_new_session(mut self, yes: bool) -> Self {
        self.start_new_session = yes;
        self
    }

    /// Descriptors the child inherits under the same numbers (Python's `pass_fds`); every other
    /// descriptor of the parent is close-on-exec, as Rust opens them.
    pub fn pass_fds(mut self, fds: impl IntoIterator<Item = RawFd>) -> Self {
        self.pass_fds.extend(fds);
        self
    }

    /// The size in bytes of the pipes created for [`Stdio::Pipe`] (Python's
    /// `Popen(pipesize=...)`, which asyncio passes through): each pipe is resized with
    /// `fcntl(F_SETPIPE_SZ)`. The kernel rounds the size up (to a power of two pages); 0, the
    /// default, keeps its default (64 KiB on Linux). A larger pipe lets a fast writer hand
    /// more to the child per system call.
    ///
    /// An unprivileged process cannot go above `/proc/sys/fs/pipe-max-size` (1 MiB by
    /// default): the spawn then fails with the kernel's error (`EPERM`, an
    /// [`ErrorKind::Io`]), and nothing is left open.
    ///
    /// ```
    /// use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};
    ///
    /// asyncio::run(async {
    ///     let options = SubprocessOptions::new()
    ///         .stdin(Stdio::Pipe)
    ///         .stdout(Stdio::Pipe)
    ///         .pipesize(1 << 20);
    ///     let mut cat = create_subprocess_exec("cat", ["-"], options).await?;
    ///     let (out, _) = cat.communicate(Some(b"big pipes")).await?;
    ///     assert_eq!(out.unwrap(), b"big pipes");
    ///     Ok::<_, asyncio::Error>(())
    /// })??;
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub fn pipesize(mut self, bytes: usize) -> Self {
        self.pipesize = bytes;
        self
    }

    /// Kills the child (`SIGKILL`) when its transport or [`Process`](super::Process) is dropped
    /// while it still runs (tokio's `kill_on_drop`). Either way the child is reaped.
    pub fn kill_on_drop(mut self, yes: bool) -> Self {
        self.kill_on_drop = yes;
        self
    }

    /// The buffer limit of the [`Process`](super::Process)'s stdout and stderr readers
    /// (asyncio's `limit`, [`DEFAULT_LIMIT`] by default).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Python's `text=True`: refused ("text must be False"); pipes carry bytes.
    pub fn text(mut self, yes: bool) -> Self {
        self.text = yes;
        self
    }

    /// Python's `universal_newlines=True`: refused ("universal_newlines must be False").
    pub fn universal_newlines(mut self, yes: bool) -> Self {
        self.universal_newlines = yes;
        self
    }

    /// Python's `bufsize`: anything but 0 is refused ("bufsize must be 0").
    pub fn bufsize(mut self, bufsize: i64) -> Self {
        self.bufsize = bufsize;
        self
    }

    /// Python's `encoding=...`: refused ("encoding must be None").
    pub fn encoding(mut self, encoding: impl Into<String>) -> Self {
        self.encoding = Some(encoding.into());
        self
    }

    /// Python's `errors=...`: refused ("errors must be None").
    pub fn errors(mut self, errors: impl Into<String>) -> Self {
        self.errors = Some(errors.into());
        self
    }

    /// The stream limit for a `Process`.
    pub(crate) fn stream_limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }

    /// asyncio's argument checks (`BaseEventLoop.subprocess_exec`), in its order.
    pub(crate) fn validate(&self) -> Result<()> {
        let refuse = |msg: &str| Err(Error::new(ErrorKind::InvalidArgument, msg));
        if self.universal_newlines {
            return refuse("universal_newlines must be False");
        }
        if self.bufsize != 0 {
            return refuse("bufsize must be 0");
        }
        if self.text {
            return refuse("text must be False");
        }
        if self.encoding.is_some() {
            return refuse("encoding must be None");
        }
        if self.errors.is_some() {
            return refuse("errors must be None");
        }
        if matches!(self.stdin, Some(Stdio::Stdout)) || matches!(self.stdout, Some(Stdio::Stdout)) {
            return refuse("Stdio::Stdout is only valid for stderr");
        }
        if let Some(&fd) = self.pass_fds.iter().find(|&&fd| fd < 0) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("bad value(s) in fds_to_keep: {fd}"),
            ));
        }
        Ok(())
    }
}
