//! [`Process`]: asyncio's high-level `asyncio.subprocess.Process`, a [`SubprocessTransport`]
//! with a [`StreamWriter`] on stdin and [`StreamReader`]s on stdout and stderr (fed by
//! asyncio's `SubprocessStreamProtocol`).

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fmt;
use std::process::Command;
use std::rc::Rc;

use super::options::{Stdio, SubprocessOptions};
use super::transport::SubprocessTransport;
use super::{exec_command, shell_command};
use crate::error::{Error, Result};
use crate::protocols::{BaseProtocol, SubprocessProtocol};
use crate::runtime::core::EventLoop;
use crate::runtime::running::get_running_loop;
use crate::streams::protocol::Shared;
use crate::streams::{StreamReader, StreamWriter};

/// asyncio's `SubprocessStreamProtocol`: one [`Shared`] per piped descriptor.
struct StreamProtocol {
    lp: EventLoop,
    limit: usize,
    shared: [Option<Rc<Shared>>; 3],
}

impl BaseProtocol for StreamProtocol {
    fn pause_writing(&mut self) {
        if let Some(s) = &self.shared[0] {
            s.pause_writing();
        }
    }

    fn resume_writing(&mut self) {
        if let Some(s) = &self.shared[0] {
            s.resume_writing();
        }
    }
}

impl SubprocessProtocol for StreamProtocol {
    fn connection_made(&mut self, transport: SubprocessTransport) {
        for fd in 0..3 {
            if let Some(pipe) = transport.get_pipe_transport(fd as i32) {
                let shared = Shared::new(&self.lp, self.limit);
                // stdout and stderr: the pipe's data comes only here (through
                // `pipe_data_received`), so the reader may read the pipe itself.
                if fd != 0 {
                    pipe.allow_read_direct();
                }
                // Lets the reader pause the pipe when its buffer is full.
                shared.st.borrow_mut().transport = Some(pipe);
                self.shared[fd] = Some(shared);
            }
        }
    }

    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        if let Some(Some(s)) = self.shared.get(fd as usize) {
            s.feed_data(data);
        }
    }

    fn pipe_connection_lost(&mut self, fd: i32, exc: Option<Error>) {
        let Some(Some(s)) = self.shared.get(fd as usize) else {
            return;
        };
        if fd == 0 {
            // The stdin writer's connection_lost: drain and wait_closed see it.
            s.connection_lost(exc);
        } else {
            match exc {
                None => s.feed_eof(),
                Some(e) => s.set_exception(e),
            }
        }
    }
}

/// A child process with streams (asyncio's `asyncio.subprocess.Process`), from
/// [`create_subprocess_exec`] or [`create_subprocess_shell`].
///
/// `stdin`, `stdout` and `stderr` are `Some` for the descriptors given [`Stdio::Pipe`]. Take
/// them out (`process.stdout.take()`) to use them in other tasks.
///
/// Dropping a `Process` without waiting leaves the child running (unless
/// [`kill_on_drop`](SubprocessOptions::kill_on_drop)) and closes its pipes; the policy's child
/// watcher still reaps it, so it never stays a zombie.
pub struct Process {
    /// The child's pid.
    pub pid: i32,
    /// The writer on the child's stdin, if piped.
    pub stdin: Option<StreamWriter>,
    /// The reader of the child's stdout, if piped.
    pub stdout: Option<StreamReader>,
    /// The reader of the child's stderr, if piped.
    pub stderr: Option<StreamReader>,
    transport: SubprocessTransport,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("returncode", &self.returncode())
            .finish()
    }
}

impl Process {
    /// The return code once the exit is known (`n` for `exit(n)`, `-s` for signal `s`), else
    /// `None`.
    pub fn returncode(&self) -> Option<i32> {
        self.transport.get_returncode()
    }

    /// The underlying transport.
    pub fn transport(&self) -> &SubprocessTransport {
        &self.transport
    }

    /// Waits for the child to exit and returns its return code. Any number of `wait`s may run
    /// at once; all get the code.
    ///
    /// # Cancel safety
    /// Cancel-safe: cancelling a `wait` leaves the child running.
    pub async fn wait(&self) -> i32 {
        self.transport.wait().await
    }

    /// Sends signal `sig` to the child.
    ///
    /// # Errors
    /// [`ErrorKind::ProcessLookup`](crate::ErrorKind::ProcessLookup) once the exit was seen;
    /// see [`SubprocessTransport::send_signal`].
    pub fn send_signal(&self, sig: i32) -> Result<()> {
        self.transport.send_signal(sig)
    }

    /// `send_signal(SIGTERM)`.
    ///
    /// # Errors
    /// As [`send_signal`](Process::send_signal).
    pub fn terminate(&self) -> Result<()> {
        self.transport.terminate()
    }

    /// `send_signal(SIGKILL)`.
    ///
    /// # Errors
    /// As [`send_signal`](Process::send_signal).
    pub fn kill(&self) -> Result<()> {
        self.transport.kill()
    }

    /// Writes `input` to stdin (then closes it) while reading stdout and stderr to their end,
    /// all at once, so no pipe fills up while another is waited for; then waits for the exit.
    /// Returns what stdout and stderr gave (`None` for one that is not piped). A stdin the
    /// child does not read to the end (broken pipe) is not an error, as in asyncio.
    ///
    /// # Errors
    /// A read error of stdout or stderr.
    ///
    /// # Cancel safety
    /// Not cancel-safe: data read so far is lost; the child is not affected.
    ///
    /// ```
    /// use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};
    ///
    /// let out = asyncio::run(async {
    ///     let options = SubprocessOptions::new().stdin(Stdio::Pipe).stdout(Stdio::Pipe);
    ///     let mut cat = create_subprocess_exec("cat", [] as [&str; 0], options).await?;
    ///     let (stdout, stderr) = cat.communicate(Some(b"echo")).await?;
    ///     assert_eq!(stderr, None);
    ///     Ok::<_, asyncio::Error>(stdout.unwrap())
    /// })??;
    /// assert_eq!(out, b"echo");
    /// # Ok::<(), asyncio::Error>(())
    /// ```
    pub async fn communicate(
        &mut self,
        input: Option<&[u8]>,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>)> {
        let stdin = self.stdin.take();
        let feed = async move {
            if let Some(w) = stdin {
                if let Some(data) = input {
                    // A child that stops reading (broken pipe, reset) is not an error.
                    if w.write(data).is_ok() {
                        let _ = w.drain().await;
                    }
                }
                w.close();
            }
        };
        let transport = &self.transport;
        let (out, err) = (self.stdout.as_ref(), self.stderr.as_ref());
        let ((), out, err) = futures::future::join3(
            feed,
            read_all(transport, out, 1),
            read_all(transport, err, 2),
        )
        .await;
        let (out, err) = (out?, err?);
        self.wait().await;
        Ok((out, err))
    }
}

/// Reads `reader` to its end, then closes its pipe (asyncio's `_read_stream`).
async fn read_all(
    transport: &SubprocessTransport,
    reader: Option<&StreamReader>,
    fd: i32,
) -> Result<Option<Vec<u8>>> {
    let Some(r) = reader else {
        return Ok(None);
    };
    let out = r.read_to_eof().await?;
    if let Some(t) = transport.get_pipe_transport(fd) {
        t.close();
    }
    Ok(Some(out))
}

async fn create(command: Command, options: SubprocessOptions) -> Result<Process> {
    let lp = get_running_loop()?;
    let protocol = Rc::new(RefCell::new(StreamProtocol {
        lp: lp.clone(),
        limit: options.stream_limit(),
        shared: [None, None, None],
    }));
    let transport = lp
        .start_subprocess(command, options, protocol.clone(), || Stdio::Inherit)
        .await?;
    let shared = std::mem::take(&mut protocol.borrow_mut().shared);
    let [s_in, s_out, s_err] = shared.clone();
    // The protocol keeps its own references for the callbacks.
    protocol.borrow_mut().shared = shared;
    let stdin = match (s_in, transport.get_pipe_transport(0)) {
        (Some(s), Some(t)) => Some(StreamWriter::new(t, s)),
        _ => None,
    };
    Ok(Process {
        pid: transport.get_pid(),
        stdin,
        stdout: s_out.map(StreamReader::new),
        stderr: s_err.map(StreamReader::new),
        transport,
    })
}

/// Starts `program` with `args` on the running loop (asyncio's
/// `asyncio.create_subprocess_exec`). Unset stdio is inherited, as in asyncio; ask for
/// [`Stdio::Pipe`] to get streams.
///
/// # Errors
/// As [`EventLoop::subprocess_exec`]; [`ErrorKind::NoRunningLoop`](crate::ErrorKind::NoRunningLoop)
/// outside a running loop.
///
/// # Cancel safety
/// As [`EventLoop::subprocess_exec`].
///
/// ```
/// use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};
///
/// let line = asyncio::run(async {
///     let process = create_subprocess_exec(
///         "echo",
///         ["one line"],
///         SubprocessOptions::new().stdout(Stdio::Pipe),
///     )
///     .await?;
///     let line = process.stdout.as_ref().unwrap().readline().await?;
///     assert_eq!(process.wait().await, 0);
///     Ok::<_, asyncio::Error>(line)
/// })??;
/// assert_eq!(line, b"one line\n");
/// # Ok::<(), asyncio::Error>(())
/// ```
pub async fn create_subprocess_exec<I, S>(
    program: impl AsRef<OsStr>,
    args: I,
    options: SubprocessOptions,
) -> Result<Process>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    create(exec_command(program, args), options).await
}

/// Runs `cmd` with `/bin/sh -c` on the running loop (asyncio's
/// `asyncio.create_subprocess_shell`); otherwise as [`create_subprocess_exec`].
///
/// # Errors
/// As [`create_subprocess_exec`].
///
/// # Cancel safety
/// As [`create_subprocess_exec`].
///
/// ```
/// use asyncio::subprocess::{create_subprocess_shell, SubprocessOptions};
///
/// let rc = asyncio::run(async {
///     let process = create_subprocess_shell("exit 4", SubprocessOptions::new()).await?;
///     Ok::<_, asyncio::Error>(process.wait().await)
/// })??;
/// assert_eq!(rc, 4);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub async fn create_subprocess_shell(cmd: &str, options: SubprocessOptions) -> Result<Process> {
    create(shell_command(cmd), options).await
}

/// Starts a `std::process::Command` the caller already built, on the running loop; otherwise as
/// [`create_subprocess_exec`]. The command's stdio settings are replaced by `options`'
/// (inherited by default).
///
/// # Errors
/// As [`create_subprocess_exec`].
///
/// # Cancel safety
/// As [`create_subprocess_exec`].
///
/// ```
/// use asyncio::subprocess::{create_subprocess_command, SubprocessOptions};
///
/// let rc = asyncio::run(async {
///     let mut command = std::process::Command::new("sh");
///     command.args(["-c", "exit $CODE"]).env("CODE", "6");
///     let process = create_subprocess_command(command, SubprocessOptions::new()).await?;
///     Ok::<_, asyncio::Error>(process.wait().await)
/// })??;
/// assert_eq!(rc, 6);
/// # Ok::<(), asyncio::Error>(())
/// ```
pub async fn create_subprocess_command(
    command: Command,
    options: SubprocessOptions,
) -> Result<Process> {
    create(command, options).await
}
