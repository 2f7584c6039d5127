//! [`SubprocessTransport`]: a child process as asyncio's `base_subprocess.py` sees it, one pipe
//! transport per piped descriptor plus the exit notification of the policy's child watcher.
//!
//! Event order to the protocol: `connection_made`; each pipe's data and then its
//! `pipe_connection_lost`; `process_exited`; `connection_lost` last. Calls that happen before
//! `connection_made` (a child quicker than the pipe set-up) are queued and replayed after it,
//! as asyncio's `_pending_calls`.
//!
//! `process_exited` waits, when the exit arrives, for the pipes the exit closed (a read pipe
//! whose writer is gone, a stdin pipe whose reader is gone, found with a zero-timeout `poll`),
//! so their data and end come first; a pipe whose other end is still open is looked at again a
//! few times over 127 ms (another thread's fork may hold a copy until its `exec`), and then a
//! pipe a grandchild still holds open, or a paused one, does not hold it back (CPython's
//! `wait()` hangs there, gh-119710). `wait()` resolves with `process_exited`.
//!
//! The watcher's callback holds no reference to the transport (a key into a per-thread table):
//! a transport dropped before the exit leaves the handler registered, so the child is still
//! reaped, and the exit is then dropped quietly.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use crate::error::{Error, ErrorKind, Result};
use crate::protocols::{BaseProtocol, Protocol, SubprocessProtocol};
use crate::runtime::core::EventLoop;
use crate::runtime::running::try_running_loop;
use crate::transports::Transport;

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The live subprocess transports of this thread's loops, by key: where a watcher's exit
    /// callback (which must be `Send`) finds its transport.
    static LIVE: RefCell<HashMap<u64, Weak<SubInner>>> = RefCell::new(HashMap::new());
}

type ProtoRef = Rc<RefCell<dyn SubprocessProtocol>>;
type Pending = Box<dyn FnOnce(&ProtoRef)>;

/// One piped descriptor of the child.
struct Pipe {
    transport: Transport,
    fd: RawFd,
    connected: bool,
}

pub(crate) struct SubInner {
    lp: EventLoop,
    key: u64,
    pid: i32,
    pidfd: Option<OwnedFd>,
    kill_on_drop: bool,
    protocol: RefCell<Option<ProtoRef>>,
    /// `Some` until `connection_made`: protocol calls to replay after it.
    pending: RefCell<Option<Vec<Pending>>>,
    pipes: RefCell<[Option<Pipe>; 3]>,
    returncode: Cell<Option<i32>>,
    /// The pipes `process_exited` waits for (child fds), once the exit is known.
    exit_waits_for: RefCell<Vec<usize>>,
    /// The exit is known and open pipes are being looked at again (see `settle_exit`).
    settling: Cell<bool>,
    exit_delivered: Cell<bool>,
    finished: Cell<bool>,
    closed: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

/// A running (or finished) child process (asyncio's `SubprocessTransport`), from
/// [`EventLoop::subprocess_exec`] or [`EventLoop::subprocess_shell`].
///
/// Cheap to clone (all clones are the same transport) and `!Send`. The child is reaped by the
/// policy's child watcher whatever happens to the transport; dropping every clone closes the
/// pipes (and kills a running child with [`kill_on_drop`](super::SubprocessOptions::kill_on_drop)).
///
/// - Signals are sent through a pidfd where the kernel has them, and never once the exit was
///   seen ([`ErrorKind::ProcessLookup`]), so never to a recycled pid.
/// - [`close`](SubprocessTransport::close) closes the pipes and kills the child only if it is
///   still running: not one whose exit is known, nor one that exited and was not yet reported.
#[derive(Clone)]
pub struct SubprocessTransport {
    pub(crate) inner: Rc<SubInner>,
}

impl fmt::Debug for SubprocessTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubprocessTransport")
            .field("pid", &self.inner.pid)
            .field("returncode", &self.inner.returncode.get())
            .field("closed", &self.inner.closed.get())
            .finish()
    }
}

/// What a non-reaping look at the child says.
#[derive(Debug, PartialEq, Eq)]
enum Liveness {
    Running,
    /// Exited, not yet reaped: a zombie (its pid cannot be reused yet).
    Exited,
    /// Reaped already (its exit is on the way to the loop).
    Gone,
}

impl SubInner {
    /// `waitid(WEXITED | WNOHANG | WNOWAIT)` on the pidfd (or the pid): never reaps.
    fn liveness(&self) -> Liveness {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        loop {
            let got = match (&self.pidfd, Pid::from_raw(self.pid)) {
                (Some(fd), _) => rustix::process::waitid(WaitId::PidFd(fd.as_fd_ref()), options),
                (None, Some(p)) => rustix::process::waitid(WaitId::Pid(p), options),
                (None, None) => return Liveness::Gone,
            };
            return match got {
                Ok(Some(_)) => Liveness::Exited,
                Ok(None) => Liveness::Running,
                Err(Errno::INTR) => continue,
                Err(_) => Liveness::Gone,
            };
        }
    }

    /// Sends `sig` unless the exit was seen; a child that exited (reported or not) is not
    /// signalled.
    fn send_signal(&self, sig: i32) -> Result<()> {
        let Some(signal) = Signal::from_named_raw(sig) else {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("invalid signal number {sig}"),
            ));
        };
        if self.returncode.get().is_some() {
            return Err(Error::new(
                ErrorKind::ProcessLookup,
                "process already exited",
            ));
        }
        let sent = match &self.pidfd {
            // A pidfd names this child and no other, even after it is reaped.
            Some(fd) => rustix::process::pidfd_send_signal(fd, signal),
            None => {
                // Without a pidfd: signal only a child that is not reaped (a running child or
                // a zombie cannot have given its pid away).
                if self.liveness() == Liveness::Gone {
                    return Ok(());
                }
                let pid = Pid::from_raw(self.pid)
                    .ok_or_else(|| Error::from_kind(ErrorKind::ProcessLookup))?;
                rustix::process::kill_process(pid, signal)
            }
        };
        match sent {
            // Exited and reaped while we looked: its exit is on the way; nothing was signalled.
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(std::io::Error::from(e).into()),
        }
    }

    /// Calls the protocol now, or queues the call until `connection_made`.
    fn call(&self, f: impl FnOnce(&ProtoRef) + 'static) {
        if let Some(pending) = self.pending.borrow_mut().as_mut() {
            pending.push(Box::new(f));
            return;
        }
        let proto = self.protocol.borrow().clone();
        if let Some(p) = proto {
            f(&p);
        }
    }

    fn pipe_data_received(&self, fd: usize, data: &[u8]) {
        if self.pending.borrow().is_some() {
            let data = data.to_vec();
            self.call(move |p| p.borrow_mut().pipe_data_received(fd as i32, &data));
            return;
        }
        let proto = self.protocol.borrow().clone();
        if let Some(p) = proto {
            p.borrow_mut().pipe_data_received(fd as i32, data);
        }
    }

    fn pipe_connection_lost(self: &Rc<Self>, fd: usize, exc: Option<Error>) {
        if let Some(pipe) = self.pipes.borrow_mut()[fd].as_mut() {
            pipe.connected = false;
        }
        self.call(move |p| p.borrow_mut().pipe_connection_lost(fd as i32, exc));
        self.exit_waits_for.borrow_mut().retain(|&f| f != fd);
        self.maybe_deliver_exit();
        self.try_finish();
    }

    /// The watcher reported the exit (on the loop thread).
    fn process_exited(self: &Rc<Self>, returncode: i32) {
        if self.returncode.get().is_some() {
            return;
        }
        self.returncode.set(Some(returncode));
        self.settle_exit(0);
    }

    /// Finds the pipes the exit closed (their data and end come before `process_exited`).
    /// A pipe whose other end is still open may be held by a grandchild, or for a moment by a
    /// process another thread is forking (descriptors are copied until `exec` closes them):
    /// it is looked at again after 1, 2, 4, ... 64 ms, then no longer waited for.
    fn settle_exit(self: &Rc<Self>, attempt: u32) {
        let mut undecided = false;
        {
            let pipes = self.pipes.borrow();
            let mut waits = self.exit_waits_for.borrow_mut();
            for (i, p) in pipes.iter().enumerate() {
                let Some(p) = p else { continue };
                if !p.connected || waits.contains(&i) {
                    continue;
                }
                let gone = if p.transport.is_closing() {
                    true // its connection_lost is on the way
                } else if i == 0 {
                    peer_gone(p.fd, PollFlags::OUT, PollFlags::ERR)
                } else if p.transport.is_reading() {
                    peer_gone(p.fd, PollFlags::IN, PollFlags::HUP)
                } else {
                    continue; // paused: its reader decides when it is read
                };
                if gone {
                    waits.push(i);
                } else {
                    undecided = true;
                }
            }
        }
        self.settling.set(false);
        if undecided && attempt < 7 {
            let this = self.clone();
            let delay = f64::from(1u32 << attempt) / 1000.0;
            if self
                .lp
                .call_later(delay, move || this.settle_exit(attempt + 1))
                .is_ok()
            {
                self.settling.set(true);
            }
        }
        self.maybe_deliver_exit();
    }

    /// Delivers `process_exited` once the exit is known and settled, and the pipes it closed
    /// are done.
    fn maybe_deliver_exit(self: &Rc<Self>) {
        if self.returncode.get().is_some()
            && !self.settling.get()
            && self.exit_waits_for.borrow().is_empty()
        {
            self.deliver_exit();
        }
    }

    fn deliver_exit(self: &Rc<Self>) {
        if self.exit_delivered.replace(true) {
            return;
        }
        self.call(|p| p.borrow_mut().process_exited());
        for w in self.waiters.take() {
            w.wake();
        }
        self.try_finish();
    }

    fn try_finish(self: &Rc<Self>) {
        if self.finished.get() || !self.exit_delivered.get() {
            return;
        }
        if self.pipes.borrow().iter().flatten().any(|p| p.connected) {
            return;
        }
        self.finished.set(true);
        let this = self.clone();
        let lost = move || {
            this.call(|p| p.borrow_mut().connection_lost(None));
            // The protocol usually holds this transport: break the cycle.
            if this.pending.borrow().is_none() {
                this.protocol.take();
            }
            unregister(this.key);
        };
        if self.lp.call_soon(lost).is_err() {
            unregister(self.key);
        }
    }

    fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        let transports: Vec<Transport> = self
            .pipes
            .borrow()
            .iter()
            .flatten()
            .map(|p| p.transport.clone())
            .collect();
        for t in transports {
            t.close();
        }
        if self.returncode.get().is_none() && self.liveness() == Liveness::Running {
            let _ = self.send_signal(libc::SIGKILL);
        }
    }
}

/// Whether the other end of pipe `fd` is gone: `poll` with no wait reports `gone` (HUP for a
/// read end, ERR for a write end).
fn peer_gone(fd: RawFd, interest: PollFlags, gone: PollFlags) -> bool {
    // SAFETY: `fd` belongs to a pipe transport that is still connected, so it is open for the
    // duration of this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(&fd, interest)];
    match poll(
        &mut fds,
        Some(&rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    ) {
        Ok(_) => fds[0].revents().intersects(gone),
        Err(_) => false,
    }
}

fn unregister(key: u64) {
    let _ = LIVE.try_with(|l| l.borrow_mut().remove(&key));
}

/// Runs on the loop thread when the watcher reports `key`'s child.
fn exited(key: u64, returncode: i32) {
    let inner = LIVE
        .try_with(|l| l.borrow().get(&key).and_then(Weak::upgrade))
        .ok()
        .flatten();
    if let Some(inner) = inner {
        inner.process_exited(returncode);
    }
}

impl Drop for SubInner {
    fn drop(&mut self) {
        unregister(self.key);
        // The pipes' adapters can no longer reach us: close them, and tell the protocol (a
        // `Process`'s reader taken out of it gets its EOF).
        let open: Vec<(usize, Transport)> = self
            .pipes
            .get_mut()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                p.as_ref()
                    .filter(|p| p.connected)
                    .map(|p| (i, p.transport.clone()))
            })
            .collect();
        let proto = self.protocol.get_mut().take();
        for (fd, t) in open {
            t.abort();
            if let Some(Ok(mut p)) = proto.as_ref().map(|p| p.try_borrow_mut()) {
                p.pipe_connection_lost(fd as i32, None);
            }
        }
        if self.kill_on_drop
            && self.returncode.get().is_none()
            && self.liveness() == Liveness::Running
        {
            let _ = self.send_signal(libc::SIGKILL);
        }
    }
}

/// The protocol of each pipe transport: forwards to the subprocess transport (asyncio's
/// `ReadSubprocessPipeProto` / `WriteSubprocessPipeProto`).
struct PipeProto {
    fd: usize,
    proc: Weak<SubInner>,
}

impl BaseProtocol for PipeProto {
    fn connection_lost(&mut self, exc: Option<Error>) {
        if let Some(p) = self.proc.upgrade() {
            p.pipe_connection_lost(self.fd, exc);
        }
    }

    fn pause_writing(&mut self) {
        if let Some(p) = self.proc.upgrade() {
            p.call(|proto| proto.borrow_mut().pause_writing());
        }
    }

    fn resume_writing(&mut self) {
        if let Some(p) = self.proc.upgrade() {
            p.call(|proto| proto.borrow_mut().resume_writing());
        }
    }
}

impl Protocol for PipeProto {
    fn data_received(&mut self, data: &[u8]) {
        if let Some(p) = self.proc.upgrade() {
            p.pipe_data_received(self.fd, data);
        }
    }
}

/// Borrows an `OwnedFd` for rustix's `WaitId::PidFd`.
trait AsFdRef {
    fn as_fd_ref(&self) -> BorrowedFd<'_>;
}

impl AsFdRef for OwnedFd {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

impl SubprocessTransport {
    /// Builds the transport over a spawned child, starts its pipe transports and registers
    /// the exit with `watcher`. Returns the transport and the pipes' connection waiters.
    pub(crate) fn start(
        lp: &EventLoop,
        spawned: super::spawn::Spawned,
        protocol: ProtoRef,
        kill_on_drop: bool,
        watcher: &dyn crate::unix::child_watcher::ChildWatcher,
    ) -> Result<(SubprocessTransport, Vec<crate::task::LoopFuture<()>>)> {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let super::spawn::Spawned { pid, pidfd, pipes } = spawned;
        let inner = Rc::new(SubInner {
            lp: lp.clone(),
            key,
            pid,
            pidfd,
            kill_on_drop,
            protocol: RefCell::new(Some(protocol)),
            pending: RefCell::new(Some(Vec::new())),
            pipes: RefCell::new([None, None, None]),
            returncode: Cell::new(None),
            exit_waits_for: RefCell::new(Vec::new()),
            settling: Cell::new(false),
            exit_delivered: Cell::new(false),
            finished: Cell::new(false),
            closed: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
        });
        LIVE.with(|l| l.borrow_mut().insert(key, Rc::downgrade(&inner)));
        let transport = SubprocessTransport { inner };
        // From here on, dropping `transport` on an error closes the pipes; the child must be
        // reaped: register it first.
        let (handle, loop_id) = (lp.handle(), lp.id());
        let pidfd = transport.inner.pidfd.as_ref().map(std::os::fd::AsFd::as_fd);
        let registered = watcher.add_child_handler_with_pidfd(
            pid,
            pidfd,
            Box::new(move |_pid, rc| {
                if try_running_loop().is_some_and(|l| l.id() == loop_id) {
                    exited(key, rc);
                } else {
                    // Safe/Fast deliver on their attached loop, which may be another one.
                    let _ = handle.call_soon_threadsafe(move || exited(key, rc));
                }
            }),
        );
        if let Err(e) = registered {
            // Nobody will reap it: kill and reap it here (SIGKILL ends it promptly).
            let _ = transport.inner.send_signal(libc::SIGKILL);
            if let Some(p) = Pid::from_raw(pid) {
                while let Err(Errno::INTR) =
                    rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty())
                {
                }
            }
            transport.inner.returncode.set(Some(-libc::SIGKILL));
            return Err(e);
        }
        let mut waiters = Vec::new();
        if let Err(e) = transport.connect_pipes(lp, pipes, &mut waiters) {
            transport.close();
            return Err(e);
        }
        Ok((transport, waiters))
    }

    /// Starts one pipe transport per parent end, each with its connection waiter.
    fn connect_pipes(
        &self,
        lp: &EventLoop,
        pipes: [Option<OwnedFd>; 3],
        waiters: &mut Vec<crate::task::LoopFuture<()>>,
    ) -> Result<()> {
        let transport = self;
        for (fd, end) in pipes.into_iter().enumerate() {
            let Some(end) = end else { continue };
            let raw = end.as_raw_fd();
            let file = crate::transports::pipe::prepare(end)?;
            let adapter = Rc::new(RefCell::new(PipeProto {
                fd,
                proc: Rc::downgrade(&transport.inner),
            }));
            let waiter = lp.create_future::<()>();
            let mode = if fd == 0 {
                crate::transports::endpoint::Mode::WritePipe
            } else {
                crate::transports::endpoint::Mode::ReadPipe
            };
            let t = Transport::start_pipe(
                lp,
                file,
                mode,
                crate::transports::stream::ProtocolRefs::plain(&adapter),
                Some(waiter.clone()),
            )?;
            transport.inner.pipes.borrow_mut()[fd] = Some(Pipe {
                transport: t,
                fd: raw,
                connected: true,
            });
            waiters.push(waiter);
        }
        Ok(())
    }

    /// The pipes are connected: `connection_made`, then the calls queued until now.
    pub(crate) fn connected(&self) {
        let proto = self.inner.protocol.borrow().clone();
        if let Some(p) = &proto {
            p.borrow_mut().connection_made(self.clone());
        }
        loop {
            let batch = match self.inner.pending.borrow_mut().as_mut() {
                Some(b) if !b.is_empty() => std::mem::take(b),
                _ => break,
            };
            if let Some(p) = &proto {
                for call in batch {
                    call(p);
                }
            }
        }
        self.inner.pending.take();
        if self.inner.finished.get() {
            // connection_lost ran while calls were still queued: let the cycle go now.
            self.inner.protocol.take();
        }
    }

    /// The child's pid.
    pub fn get_pid(&self) -> i32 {
        self.inner.pid
    }

    /// The child's return code once its exit is known: `n` for `exit(n)`, `-s` for death by
    /// signal `s`; `None` while it runs.
    pub fn get_returncode(&self) -> Option<i32> {
        self.inner.returncode.get()
    }

    /// The pipe transport of the child's descriptor `fd` (0 stdin, 1 stdout, 2 stderr), if
    /// that descriptor is a pipe.
    pub fn get_pipe_transport(&self, fd: i32) -> Option<Transport> {
        let i = usize::try_from(fd).ok().filter(|&i| i < 3)?;
        self.inner.pipes.borrow()[i]
            .as_ref()
            .map(|p| p.transport.clone())
    }

    /// Sends signal `sig` (e.g. `libc::SIGTERM`) to the child.
    ///
    /// # Errors
    /// [`ErrorKind::ProcessLookup`] ("process already exited") once the exit was seen (no
    /// signal is sent, so never to a recycled pid); [`ErrorKind::InvalidArgument`] for an
    /// unknown signal number. A child that exited but whose exit is not yet reported is left
    /// alone without an error (Python's `Popen.send_signal` does the same).
    pub fn send_signal(&self, sig: i32) -> Result<()> {
        self.inner.send_signal(sig)
    }

    /// `send_signal(SIGTERM)`.
    ///
    /// # Errors
    /// As [`send_signal`](SubprocessTransport::send_signal).
    pub fn terminate(&self) -> Result<()> {
        self.inner.send_signal(libc::SIGTERM)
    }

    /// `send_signal(SIGKILL)`.
    ///
    /// # Errors
    /// As [`send_signal`](SubprocessTransport::send_signal).
    pub fn kill(&self) -> Result<()> {
        self.inner.send_signal(libc::SIGKILL)
    }

    /// Closes the pipes and kills the child if it still runs: not when its exit is known, nor
    /// when it exited and the exit is not yet reported (asyncio's check, without reaping).
    /// Idempotent. The child is reaped by the watcher either way.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether [`close`](SubprocessTransport::close) was called.
    pub fn is_closing(&self) -> bool {
        self.inner.closed.get()
    }

    /// Waits for the child's exit (asyncio's `transport._wait()`); any number of waits may run
    /// at once. Resolves with `process_exited`.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future does nothing to the child.
    pub async fn wait(&self) -> i32 {
        std::future::poll_fn(|cx| {
            if self.inner.exit_delivered.get() {
                if let Some(rc) = self.inner.returncode.get() {
                    return Poll::Ready(rc);
                }
            }
            let mut w = self.inner.waiters.borrow_mut();
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// The loop the transport runs on.
    pub fn get_loop(&self) -> EventLoop {
        self.inner.lp.clone()
    }
}
