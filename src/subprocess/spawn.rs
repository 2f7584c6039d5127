//! Starting the child: `std::process::Command` with the options applied, our own close-on-exec
//! pipes for [`Stdio::Pipe`], and `pre_exec` only for what std cannot do (`setsid`,
//! `pass_fds`).
//!
//! Nothing is left behind on failure: the parent's pipe ends are `OwnedFd`s dropped with the
//! error, the child's ends go with the `Command`, and std reports an `exec` failure (missing
//! program, bad `cwd`) through its own close-on-exec pipe after reaping the failed child.

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::pipe::{pipe_with, PipeFlags};

use super::options::{Stdio, SubprocessOptions};
use crate::error::{Error, Result};
use crate::unix::child_watcher::PidfdChildWatcher;

/// A started child: its pid, a pidfd when the kernel has them, and the parent's ends of the
/// pipes (index = the child's fd).
pub(crate) struct Spawned {
    pub(crate) pid: i32,
    pub(crate) pidfd: Option<OwnedFd>,
    pub(crate) pipes: [Option<OwnedFd>; 3],
}

fn io(e: rustix::io::Errno) -> Error {
    Error::from(std::io::Error::from(e))
}

/// A new close-on-exec pipe `(read, write)`, of `pipesize` bytes if that is not 0 (Python's
/// `Popen(pipesize=...)`: `F_SETPIPE_SZ`; the kernel's refusal is the error).
fn new_pipe(pipesize: usize) -> Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe_with(PipeFlags::CLOEXEC).map_err(io)?;
    if pipesize > 0 {
        rustix::pipe::fcntl_setpipe_size(&write, pipesize).map_err(io)?;
    }
    Ok((read, write))
}

/// The child's end for `stdio` on `fd`, and the parent's end if it is a pipe.
fn child_end(
    stdio: Stdio,
    fd: usize,
    pipesize: usize,
) -> Result<(std::process::Stdio, Option<OwnedFd>)> {
    Ok(match stdio {
        Stdio::Pipe => {
            let (read, write) = new_pipe(pipesize)?;
            if fd == 0 {
                (read.into(), Some(write))
            } else {
                (write.into(), Some(read))
            }
        }
        Stdio::Inherit => (std::process::Stdio::inherit(), None),
        Stdio::DevNull => (std::process::Stdio::null(), None),
        Stdio::Fd(owned) => (owned.into(), None),
        // Refused by `validate` for stdin and stdout; stderr is resolved by the caller.
        Stdio::Stdout => (std::process::Stdio::inherit(), None),
    })
}

/// Spawns `command` with `options` (stdio not given take `default`).
pub(crate) fn spawn(
    mut command: Command,
    options: &mut SubprocessOptions,
    default: fn() -> Stdio,
) -> Result<Spawned> {
    options.validate()?;
    let stdin = options.stdin.take().unwrap_or_else(default);
    let stdout = options.stdout.take().unwrap_or_else(default);
    let stderr = options.stderr.take().unwrap_or_else(default);
    let mut pipes: [Option<OwnedFd>; 3] = [None, None, None];

    // stderr = STDOUT needs the child's stdout end twice: keep a duplicate of it.
    let wants_stdout = matches!(stderr, Stdio::Stdout);
    let stdout_copy = |s: &Stdio| -> Result<Option<std::process::Stdio>> {
        Ok(match s {
            Stdio::Inherit => Some(std::io::stdout().as_fd().try_clone_to_owned()?.into()),
            Stdio::DevNull => Some(std::process::Stdio::null()),
            _ => None,
        })
    };
    let mut stderr_from_stdout = if wants_stdout {
        stdout_copy(&stdout)?
    } else {
        None
    };
    let pipesize = options.pipesize;
    let (child_in, parent_in) = child_end(stdin, 0, pipesize)?;
    pipes[0] = parent_in;
    let (child_out, parent_out) = match stdout {
        Stdio::Pipe => {
            let (read, write) = new_pipe(pipesize)?;
            if wants_stdout {
                stderr_from_stdout = Some(write.try_clone()?.into());
            }
            (write.into(), Some(read))
        }
        Stdio::Fd(owned) => {
            if wants_stdout {
                stderr_from_stdout = Some(owned.try_clone()?.into());
            }
            (owned.into(), None)
        }
        other => child_end(other, 1, pipesize)?,
    };
    pipes[1] = parent_out;
    let child_err = match stderr {
        Stdio::Stdout => stderr_from_stdout.unwrap_or_else(std::process::Stdio::inherit),
        other => {
            let (child, parent) = child_end(other, 2, pipesize)?;
            pipes[2] = parent;
            child
        }
    };
    command.stdin(child_in).stdout(child_out).stderr(child_err);

    if let Some(dir) = options.cwd.take() {
        command.current_dir(dir);
    }
    if options.env_clear {
        command.env_clear();
    }
    for (key, value) in options.env.drain(..) {
        match value {
            Some(v) => command.env(key, v),
            None => command.env_remove(key),
        };
    }
    if let Some(pgid) = options.process_group {
        command.process_group(pgid);
    }
    let new_session = options.start_new_session;
    let pass_fds: Vec<RawFd> = std::mem::take(&mut options.pass_fds);
    if new_session || !pass_fds.is_empty() {
        // SAFETY: the closure runs in the forked child before `exec`, where only
        // async-signal-safe calls are allowed: it calls `setsid` and `fcntl` (both
        // async-signal-safe) on values captured before the fork, and allocates nothing (the
        // Vec was allocated in the parent and is only read).
        unsafe {
            command.pre_exec(move || {
                if new_session && libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for &fd in &pass_fds {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    let child = command.spawn()?;
    // The child's ends of the pipes close with the command.
    drop(command);
    let pid = child.id() as i32;
    // `child` is dropped without waiting: the child watcher reaps it. A pidfd taken now (the
    // child cannot have been reaped yet: only the watcher reaps, and it does not know the pid)
    // makes every later signal immune to pid reuse.
    drop(child);
    let pidfd = if PidfdChildWatcher::is_supported() {
        rustix::process::Pid::from_raw(pid)
            .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
    } else {
        None
    };
    Ok(Spawned { pid, pidfd, pipes })
}
