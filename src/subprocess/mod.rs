//! Child processes (asyncio's subprocess support): the low-level
//! [`EventLoop::subprocess_exec`] / [`EventLoop::subprocess_shell`] with a
//! [`SubprocessProtocol`] and a [`SubprocessTransport`], and the
//! high-level [`create_subprocess_exec`] / [`create_subprocess_shell`] returning a [`Process`]
//! with streams.
//!
//! The exit is learnt through the current policy's child watcher
//! ([`get_child_watcher`](crate::get_child_watcher)), the only reaper: whatever happens to the
//! `Process` or transport (dropped, cancelled, closed), the child is reaped, never left a
//! zombie. Exit `n` gives `n`, death by signal `s` gives `-s`.
//!
//! ```
//! use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};
//!
//! let out = asyncio::run(async {
//!     let mut process = create_subprocess_exec(
//!         "sh",
//!         ["-c", "echo hello; exit 3"],
//!         SubprocessOptions::new().stdout(Stdio::Pipe),
//!     )
//!     .await?;
//!     let (stdout, _) = process.communicate(None).await?;
//!     Ok::<_, asyncio::Error>((stdout.unwrap(), process.returncode()))
//! })??;
//! assert_eq!(out, (b"hello\n".to_vec(), Some(3)));
//! # Ok::<(), asyncio::Error>(())
//! ```

mod options;
mod process;
mod spawn;
mod transport;

use std::cell::RefCell;
use std::ffi::OsStr;
use std::process::Command;
use std::rc::Rc;

pub use options::{Stdio, SubprocessOptions};
pub use process::{
    create_subprocess_command, create_subprocess_exec, create_subprocess_shell, Process,
};
pub use transport::SubprocessTransport;

use crate::error::{Error, ErrorKind, Result};
use crate::protocols::SubprocessProtocol;
use crate::runtime::core::EventLoop;

/// asyncio's message when the watcher cannot deliver exits (R52).
const WATCHER_INACTIVE: &str =
    "asyncio.get_child_watcher() is not activated, subprocess support is not installed.";

/// The command of `subprocess_shell`: `/bin/sh -c CMD`.
fn shell_command(cmd: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(cmd);
    command
}

fn exec_command<I, S>(program: impl AsRef<OsStr>, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args);
    command
}

/// Closes the transport (killing a running child) if the starting future is dropped before
/// the pipes are connected.
struct CloseOnDrop(Option<SubprocessTransport>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.close();
        }
    }
}

impl EventLoop {
    /// Starts `program` with `args` (asyncio's `loop.subprocess_exec`): returns once the child
    /// runs and its pipes are connected, with the transport and the protocol from
    /// `protocol_factory`, whose `connection_made` has run. Unset stdio defaults to
    /// [`Stdio::Pipe`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for options asyncio refuses ("text must be False", ...);
    /// [`ErrorKind::InvalidState`] when the policy's child watcher is not active ("asyncio.get_child_watcher() is not activated, ..."), checked before
    /// spawning; [`ErrorKind::Io`] when the spawn fails (a missing program or `cwd`:
    /// `io_error_kind()` is `NotFound`), leaving no descriptor behind; [`ErrorKind::Closed`] on a
    /// closed loop; the watcher's registration error (the child is then killed and reaped).
    ///
    /// # Cancel safety
    /// Dropping the future before it returns closes the transport (a running child is killed,
    /// and reaped by the watcher).
    ///
    /// ```
    /// use asyncio::{BaseProtocol, EventLoop, SubprocessProtocol};
    /// use asyncio::subprocess::SubprocessOptions;
    ///
    /// #[derive(Default)]
    /// struct Out(Vec<u8>);
    /// impl BaseProtocol for Out {}
    /// impl SubprocessProtocol for Out {
    ///     fn pipe_data_received(&mut self, _fd: i32, data: &[u8]) {
    ///         self.0.extend_from_slice(data);
    ///     }
    /// }
    ///
    /// let out = asyncio::run(async {
    ///     let lp = asyncio::get_running_loop()?;
    ///     let (transport, protocol) =
    ///         lp.subprocess_exec(Out::default, "echo", ["hi"], SubprocessOptions::new()).await?;
    ///     let rc = transport.wait().await;
    ///     let out = protocol.borrow().0.clone();
    ///     Ok::<_, asyncio::Error>((rc, out))
    /// })??;
    /// assert_eq!(out, (0, b"hi\n".to_vec()));
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub async fn subprocess_exec<P, F, I, S>(
        &self,
        protocol_factory: F,
        program: impl AsRef<OsStr>,
        args: I,
        options: SubprocessOptions,
    ) -> Result<(SubprocessTransport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: SubprocessProtocol + 'static,
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.subprocess_command(protocol_factory, exec_command(program, args), options)
            .await
    }

    /// Runs `cmd` with `/bin/sh -c` (asyncio's `loop.subprocess_shell`); otherwise as
    /// [`subprocess_exec`](EventLoop::subprocess_exec).
    ///
    /// # Errors
    /// As [`subprocess_exec`](EventLoop::subprocess_exec).
    ///
    /// # Cancel safety
    /// As [`subprocess_exec`](EventLoop::subprocess_exec).
    pub async fn subprocess_shell<P, F>(
        &self,
        protocol_factory: F,
        cmd: &str,
        options: SubprocessOptions,
    ) -> Result<(SubprocessTransport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: SubprocessProtocol + 'static,
    {
        self.subprocess_command(protocol_factory, shell_command(cmd), options)
            .await
    }

    /// Starts a `std::process::Command` the caller already built (program, arguments,
    /// environment, directory, ...); otherwise as [`subprocess_exec`](EventLoop::subprocess_exec).
    /// The command's stdio settings are replaced by `options`' (pipes by default).
    ///
    /// # Errors
    /// As [`subprocess_exec`](EventLoop::subprocess_exec).
    ///
    /// # Cancel safety
    /// As [`subprocess_exec`](EventLoop::subprocess_exec).
    pub async fn subprocess_command<P, F>(
        &self,
        protocol_factory: F,
        command: Command,
        options: SubprocessOptions,
    ) -> Result<(SubprocessTransport, Rc<RefCell<P>>)>
    where
        F: FnOnce() -> P,
        P: SubprocessProtocol + 'static,
    {
        let protocol = Rc::new(RefCell::new(protocol_factory()));
        let transport = self
            .start_subprocess(command, options, protocol.clone(), || Stdio::Pipe)
            .await?;
        Ok((transport, protocol))
    }

    /// asyncio's `_make_subprocess_transport` (R52): the watcher must be active before the
    /// spawn; the exit is registered right after it; then the pipes connect and
    /// `connection_made` runs.
    pub(crate) async fn start_subprocess(
        &self,
        command: Command,
        mut options: SubprocessOptions,
        protocol: Rc<RefCell<dyn SubprocessProtocol>>,
        default: fn() -> Stdio,
    ) -> Result<SubprocessTransport> {
        self.check_closed()?;
        options.validate()?;
        let watcher = crate::policy::get_child_watcher()?;
        if !watcher.is_active() {
            return Err(Error::new(ErrorKind::InvalidState, WATCHER_INACTIVE));
        }
        let spawned = spawn::spawn(command, &mut options, default)?;
        let (transport, waiters) =
            SubprocessTransport::start(self, spawned, protocol, options.kill_on_drop, &*watcher)?;
        let mut guard = CloseOnDrop(Some(transport.clone()));
        for waiter in waiters {
            waiter.await?;
        }
        guard.0 = None;
        transport.connected();
        Ok(transport)
    }
}
