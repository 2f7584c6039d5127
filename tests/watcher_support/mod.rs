//! Helpers and the shared contract of the `watcher_*` integration tests: every child watcher
//! (Safe, Fast, Pidfd, Threaded) runs the same checks through [`watcher_contract!`].
//!
//! Every test body runs under a watchdog and a process-wide lock (signals and `SIGCHLD` are
//! process-wide, and the Fast watcher reaps every child of the process). Nothing sleeps to
//! synchronise: children are released through pipes, exits are awaited with
//! `waitid(WNOWAIT)`, and the loop runs until the expected reports arrived.
#![allow(dead_code)]

mod process_wide;

pub use process_wide::{watchdog, WATCHDOG};

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::process::{ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use asyncio::{ChildCallback, ChildWatcher, ErrorKind, EventLoop, ExceptionHandler, LoopHandle};
use rustix::io::Errno;
use rustix::process::{waitid, waitpid, Pid, Signal, WaitId, WaitIdOptions, WaitOptions};

/// How many times [`drive_until`] turns the loop (2 ms of sleep each) before giving up.
const DRIVE_LIMIT: usize = 10_000;

/// Runs one contract check for `kind` under the [`watchdog`], or skips it (with a note) where
/// the system does not support the watcher.
pub fn check(kind: Kind, body: fn(Kind)) {
    if !(kind.supported)() {
        eprintln!("{} is not supported here: check skipped", kind.name);
        return;
    }
    watchdog(move || body(kind));
}

/// Which watcher a contract run is about.
#[derive(Clone, Copy)]
pub struct Kind {
    /// Its name, for messages.
    pub name: &'static str,
    /// Makes a fresh watcher.
    pub make: fn() -> Arc<dyn ChildWatcher>,
    /// Whether this system supports the watcher (checks are skipped, with a note, if not).
    pub supported: fn() -> bool,
    /// Safe and Fast: `SIGCHLD` on an attached loop, which `add_child_handler` requires.
    pub sigchld: bool,
}

/// One exit report.
#[derive(Clone, Debug)]
pub struct Report {
    /// What the test called this callback.
    pub tag: String,
    /// The pid the callback received.
    pub pid: i32,
    /// The return code the callback received.
    pub rc: i32,
    /// The thread the callback ran on.
    pub thread: ThreadId,
}

/// Collects reports; every report stops the loop, so [`Collector::run_until`] can run the loop
/// until enough arrived without polling.
#[derive(Clone)]
pub struct Collector {
    reports: Arc<Mutex<Vec<Report>>>,
    handle: LoopHandle,
}

impl Collector {
    /// A collector whose reports stop `event_loop`.
    pub fn new(event_loop: &EventLoop) -> Self {
        Collector {
            reports: Arc::default(),
            handle: event_loop.handle(),
        }
    }

    /// A callback that records `(tag, pid, rc, thread)` and stops the loop.
    pub fn callback(&self, tag: impl Into<String>) -> ChildCallback {
        let tag = tag.into();
        let reports = self.reports.clone();
        let handle = self.handle.clone();
        Box::new(move |pid, rc| {
            reports.lock().unwrap().push(Report {
                tag,
                pid,
                rc,
                thread: std::thread::current().id(),
            });
            handle.stop();
        })
    }

    /// A snapshot of the reports so far.
    pub fn reports(&self) -> Vec<Report> {
        self.reports.lock().unwrap().clone()
    }

    /// The reports for `pid`.
    pub fn for_pid(&self, pid: i32) -> Vec<Report> {
        self.reports()
            .into_iter()
            .filter(|r| r.pid == pid)
            .collect()
    }

    /// How many reports arrived.
    pub fn len(&self) -> usize {
        self.reports.lock().unwrap().len()
    }

    /// Runs `event_loop` until at least `n` reports arrived (the watchdog bounds it).
    pub fn run_until(&self, event_loop: &EventLoop, n: usize) {
        while self.len() < n {
            event_loop.run_forever().expect("run_forever");
        }
    }
}

/// A drop detector: [`Token::alive`] tells whether a clone (captured by a callback) still
/// exists.
#[derive(Clone, Default)]
pub struct Token(Arc<()>);

impl Token {
    /// Whether some clone other than this one is alive.
    pub fn alive(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

/// A child that runs until its gate opens: `cat` reading a pipe we hold. Dropping the gate (or
/// [`Gated::open`]) lets it exit with 0, so a failing test leaves no child behind.
pub struct Gated {
    /// The child's pid.
    pub pid: i32,
    stdin: Option<ChildStdin>,
}

impl Gated {
    /// Spawns the gated child.
    #[allow(clippy::zombie_processes)] // the watcher under test reaps it, not std
    pub fn spawn() -> Self {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn cat");
        Gated {
            pid: child.id() as i32,
            stdin: child.stdin.take(),
        }
        // `child` is dropped without waiting: the watcher under test reaps it.
    }

    /// Lets the child exit (code 0).
    pub fn open(&mut self) {
        self.stdin.take();
    }

    /// Sends `signal` to the child.
    pub fn kill(&self, signal: Signal) {
        rustix::process::kill_process(pid(self.pid), signal).expect("kill");
    }
}

/// Spawns `sh -c 'exit CODE'` and returns its pid (std never waits for it).
#[allow(clippy::zombie_processes)] // the watcher under test reaps it, not std
pub fn spawn_exit(code: i32) -> i32 {
    let child = Command::new("sh")
        .args(["-c", &format!("exit {code}")])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    child.id() as i32
}

/// `n` children that all exit together when the returned pipe end is dropped: each runs
/// `sh -c 'read x; exit CODE'` on one shared pipe, `CODE` being `first_code + i`.
#[allow(clippy::zombie_processes)] // the watcher under test reaps them, not std
pub fn spawn_together(n: usize, first_code: i32) -> (Vec<(i32, i32)>, OwnedFd) {
    let (read, write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe for the gate");
    let mut out = Vec::new();
    for i in 0..n {
        let code = first_code + i as i32;
        let child = Command::new("sh")
            .args(["-c", &format!("read x; exit {code}")])
            .stdin(Stdio::from(read.try_clone().expect("dup")))
            .spawn()
            .expect("spawn sh");
        out.push((child.id() as i32, code));
    }
    (out, write)
}

/// The pid as rustix wants it.
pub fn pid(pid: i32) -> Pid {
    Pid::from_raw(pid).expect("positive pid")
}

/// Blocks until `pid` has exited, without reaping it (`waitid(WEXITED | WNOWAIT)`). Returns at
/// once if it is no longer our child.
pub fn wait_exited(p: i32) {
    loop {
        match waitid(
            WaitId::Pid(pid(p)),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(Errno::INTR) => continue,
            _ => return,
        }
    }
}

/// Whether `pid` has been reaped (it is no longer a child of ours, zombie or not).
pub fn is_reaped(p: i32) -> bool {
    matches!(
        waitid(
            WaitId::Pid(pid(p)),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        ),
        Err(Errno::CHILD)
    )
}

/// Reaps `pid` ourselves (blocking), as "someone else" would.
pub fn reap_myself(p: i32) {
    loop {
        match waitpid(Some(pid(p)), WaitOptions::empty()) {
            Err(Errno::INTR) => continue,
            other => {
                other.expect("waitpid by the test");
                return;
            }
        }
    }
}

/// Turns the loop in short slices until `done()` (bounded).
pub fn drive_until(event_loop: &EventLoop, what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..DRIVE_LIMIT {
        if done() {
            return;
        }
        match event_loop.run_until_complete(asyncio::sleep(0.002)) {
            Ok(slept) => slept.expect("sleep"),
            // A report's `stop()` ended this slice early; the next slice goes on.
            Err(e) if e.kind() == ErrorKind::StoppedBeforeComplete => {}
            Err(e) => panic!("run: {e}"),
        }
    }
    panic!("gave up waiting for: {what}");
}

/// An exception handler that records the messages it gets (and prints nothing).
pub fn recording_exception_handler(event_loop: &EventLoop) -> Rc<std::cell::RefCell<Vec<String>>> {
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let s = seen.clone();
    let handler: ExceptionHandler = Rc::new(move |_, ctx| s.borrow_mut().push(ctx.message.clone()));
    event_loop.set_exception_handler(Some(handler));
    seen
}

/// A loop, a watcher attached to it, and a collector.
pub struct Env {
    /// The loop, on the test thread.
    pub event_loop: EventLoop,
    /// The watcher under test, attached to `event_loop`.
    pub watcher: Arc<dyn ChildWatcher>,
    /// Reports of the callbacks.
    pub reports: Collector,
}

impl Env {
    /// Sets up `kind`'s watcher attached to a new loop on this thread.
    pub fn new(kind: Kind) -> Self {
        let event_loop = EventLoop::new().expect("loop");
        let watcher = (kind.make)();
        watcher.attach_loop(Some(&event_loop)).expect("attach");
        let reports = Collector::new(&event_loop);
        Env {
            event_loop,
            watcher,
            reports,
        }
    }

    /// Registers `pid` with a recording callback tagged `tag`.
    pub fn watch(&self, pid: i32, tag: &str) {
        self.watcher
            .add_child_handler(pid, self.reports.callback(tag))
            .expect("add_child_handler");
    }

    /// [`watch`](Env::watch) with a callback that also holds a clone of `token` (so the test
    /// sees when the watcher drops it).
    pub fn watch_holding(&self, pid: i32, tag: &str, token: &Token) {
        let (t, cb) = (token.clone(), self.reports.callback(tag));
        self.watcher
            .add_child_handler(
                pid,
                Box::new(move |pid, rc| {
                    let _keep = &t;
                    cb(pid, rc)
                }),
            )
            .expect("add_child_handler");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.watcher.close();
        let _ = self.event_loop.close();
    }
}

// ---------------------------------------------------------------------------------------------
// The contract, one function per check.
// ---------------------------------------------------------------------------------------------

/// A second handler for a pid replaces the first: only the second runs, and the first is
/// dropped at once.
pub fn replaces_handler(kind: Kind) {
    let env = Env::new(kind);
    let mut child = Gated::spawn();
    let token = Token::default();
    env.watch_holding(child.pid, "first", &token);
    assert!(token.alive());
    env.watch(child.pid, "second");
    assert!(
        !token.alive(),
        "{}: the replaced callback was kept",
        kind.name
    );
    child.open();
    env.reports.run_until(&env.event_loop, 1);
    // A later exit proves nothing else was queued for the first child.
    let sentinel = spawn_exit(0);
    env.watch(sentinel, "sentinel");
    env.reports.run_until(&env.event_loop, 2);
    let got = env.reports.for_pid(child.pid);
    assert_eq!(got.len(), 1, "{}: {got:?}", kind.name);
    assert_eq!(got[0].tag, "second");
    assert_eq!(got[0].rc, 0);
}

/// `remove_child_handler` is true once, then false; the removed callback is dropped and never
/// runs; the child is still reaped.
pub fn remove_is_true_once(kind: Kind) {
    let env = Env::new(kind);
    let mut child = Gated::spawn();
    let token = Token::default();
    env.watch_holding(child.pid, "removed", &token);
    assert!(env.watcher.remove_child_handler(child.pid));
    assert!(
        !token.alive(),
        "{}: the removed callback was kept",
        kind.name
    );
    assert!(!env.watcher.remove_child_handler(child.pid));
    assert!(!env.watcher.remove_child_handler(i32::MAX));
    child.open();
    let pid = child.pid;
    drive_until(&env.event_loop, "the removed child to be reaped", || {
        is_reaped(pid)
    });
    let sentinel = spawn_exit(0);
    env.watch(sentinel, "sentinel");
    env.reports.run_until(&env.event_loop, 1);
    assert!(env.reports.for_pid(pid).is_empty(), "{}", kind.name);
    assert!(!env.watcher.remove_child_handler(sentinel), "{}", kind.name);
}

/// A child that exited before `add_child_handler` is reported, once.
pub fn early_exit_reported_once(kind: Kind) {
    let env = Env::new(kind);
    let pid = spawn_exit(5);
    wait_exited(pid);
    env.watch(pid, "early");
    env.reports.run_until(&env.event_loop, 1);
    let sentinel = spawn_exit(0);
    env.watch(sentinel, "sentinel");
    env.reports.run_until(&env.event_loop, 2);
    let got = env.reports.for_pid(pid);
    assert_eq!(got.len(), 1, "{}: {got:?}", kind.name);
    assert_eq!(got[0].rc, 5, "{}", kind.name);
}

/// Twenty children exiting together (one coalesced `SIGCHLD` for the signal watchers) are all
/// reported, each with its own code.
pub fn twenty_exit_together(kind: Kind) {
    let env = Env::new(kind);
    let (children, gate) = spawn_together(20, 10);
    for (pid, _) in &children {
        env.watch(*pid, "together");
    }
    drop(gate);
    env.reports.run_until(&env.event_loop, 20);
    let got: HashMap<i32, i32> = env
        .reports
        .reports()
        .iter()
        .map(|r| (r.pid, r.rc))
        .collect();
    assert_eq!(env.reports.len(), 20, "{}", kind.name);
    for (pid, code) in &children {
        assert_eq!(got.get(pid), Some(code), "{}: pid {pid}", kind.name);
    }
}

/// Exit `n` is `n`; death by signal `s` is `-s`.
pub fn exit_codes_and_signals(kind: Kind) {
    let env = Env::new(kind);
    let seven = spawn_exit(7);
    let killed = Gated::spawn();
    let termed = Gated::spawn();
    env.watch(seven, "seven");
    env.watch(killed.pid, "killed");
    env.watch(termed.pid, "termed");
    killed.kill(Signal::KILL);
    termed.kill(Signal::TERM);
    env.reports.run_until(&env.event_loop, 3);
    assert_eq!(env.reports.for_pid(seven)[0].rc, 7, "{}", kind.name);
    assert_eq!(env.reports.for_pid(killed.pid)[0].rc, -9, "{}", kind.name);
    assert_eq!(
        env.reports.for_pid(termed.pid)[0].rc,
        -libc::SIGTERM,
        "{}",
        kind.name
    );
}

/// A child reaped by someone else before registration is reported as 255, without a hang.
pub fn reaped_elsewhere_before(kind: Kind) {
    let env = Env::new(kind);
    let pid = spawn_exit(3);
    reap_myself(pid);
    env.watch(pid, "elsewhere");
    env.reports.run_until(&env.event_loop, 1);
    assert_eq!(env.reports.for_pid(pid)[0].rc, 255, "{}", kind.name);
}

/// A registered child reaped by someone else is reported as 255, without a hang. (Not for
/// Threaded: its thread blocks in `waitpid(pid)` and races the other waiter for the status.)
pub fn reaped_elsewhere_after(kind: Kind) {
    let env = Env::new(kind);
    let child = Gated::spawn();
    env.watch(child.pid, "elsewhere");
    child.kill(Signal::KILL);
    // The loop is not running, so the watcher cannot reap it before we do.
    reap_myself(child.pid);
    env.reports.run_until(&env.event_loop, 1);
    assert_eq!(env.reports.for_pid(child.pid)[0].rc, 255, "{}", kind.name);
}

/// A callback that panics goes to the exception handler; the other exits are still reported.
pub fn panicking_callback_loses_nothing(kind: Kind) {
    let env = Env::new(kind);
    let seen = recording_exception_handler(&env.event_loop);
    let (children, gate) = spawn_together(3, 0);
    let handle = env.event_loop.handle();
    env.watcher
        .add_child_handler(
            children[0].0,
            Box::new(move |_, _| {
                handle.stop();
                panic!("callback failure (expected by the test)")
            }),
        )
        .unwrap();
    env.watch(children[1].0, "b");
    env.watch(children[2].0, "c");
    drop(gate);
    env.reports.run_until(&env.event_loop, 2);
    drive_until(&env.event_loop, "the panic to reach the handler", || {
        !seen.borrow().is_empty()
    });
    assert_eq!(env.reports.len(), 2, "{}", kind.name);
    assert!(
        seen.borrow()[0].starts_with("Exception in callback"),
        "{}: {:?}",
        kind.name,
        seen.borrow()
    );
}

/// Callbacks run on the thread of the loop, here a spawned (non-main) thread, whether the child
/// was registered from another thread or from inside the running loop.
pub fn callbacks_on_loop_thread(kind: Kind) {
    let watcher = (kind.make)();
    let (ready_tx, ready_rx) = mpsc::channel();
    let w = watcher.clone();
    let loop_thread = std::thread::Builder::new()
        .name("watcher-loop".into())
        .spawn(move || {
            assert!(!asyncio::unix::is_main_thread());
            let event_loop = EventLoop::new().unwrap();
            w.attach_loop(Some(&event_loop)).unwrap();
            ready_tx
                .send((event_loop.handle(), std::thread::current().id()))
                .unwrap();
            event_loop.run_forever().unwrap();
            w.attach_loop(None).unwrap();
            event_loop.close().unwrap();
        })
        .unwrap();
    let (handle, loop_thread_id) = ready_rx.recv_timeout(WATCHDOG).expect("loop thread ready");
    let (tx, rx) = mpsc::channel::<(i32, i32, ThreadId)>();

    // From a foreign thread.
    let outside = spawn_exit(4);
    let t = tx.clone();
    watcher
        .add_child_handler(
            outside,
            Box::new(move |pid, rc| {
                let _ = t.send((pid, rc, std::thread::current().id()));
            }),
        )
        .unwrap();
    // From inside the running loop.
    let w = watcher.clone();
    let t = tx.clone();
    handle
        .call_soon_threadsafe(move || {
            let inside = spawn_exit(6);
            w.add_child_handler(
                inside,
                Box::new(move |pid, rc| {
                    let _ = t.send((pid, rc, std::thread::current().id()));
                }),
            )
            .unwrap();
        })
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(rx.recv_timeout(WATCHDOG).expect("a report"));
    }
    handle.stop();
    loop_thread.join().expect("loop thread");
    got.sort_by_key(|g| g.1);
    assert_eq!(got[0].0, outside, "{}", kind.name);
    assert_eq!(got[0].1, 4, "{}", kind.name);
    assert_eq!(got[1].1, 6, "{}", kind.name);
    for (_, _, thread) in &got {
        assert_eq!(*thread, loop_thread_id, "{}", kind.name);
    }
    watcher.close();
}

/// 500 children spawned (from another thread, while the loop runs) and exited leave no zombie:
/// each was reported once with its code, and none is our child any more.
pub fn no_zombies_after_500(kind: Kind) {
    const N: usize = 500;
    let env = Env::new(kind);
    let watcher = env.watcher.clone();
    let collector = env.reports.clone();
    let spawner = std::thread::spawn(move || {
        let mut pids = Vec::with_capacity(N);
        for i in 0..N {
            let pid = spawn_exit((i % 3) as i32);
            watcher
                .add_child_handler(pid, collector.callback(format!("{i}")))
                .expect("add_child_handler");
            pids.push(pid);
        }
        pids
    });
    env.reports.run_until(&env.event_loop, N);
    let pids = spawner.join().expect("spawner");
    let reports = env.reports.reports();
    assert_eq!(reports.len(), N, "{}", kind.name);
    for r in &reports {
        let i: usize = r.tag.parse().unwrap();
        assert_eq!(r.pid, pids[i], "{}", kind.name);
        assert_eq!(r.rc, (i % 3) as i32, "{}: child {i}", kind.name);
    }
    for &p in &pids {
        assert_eq!(
            waitpid(Some(pid(p)), WaitOptions::NOHANG).err(),
            Some(Errno::CHILD),
            "{}: child {p} was not reaped",
            kind.name
        );
    }
}

/// Without a loop: the signal watchers need an attached loop; the others need a running or an
/// attached one. Either way a clear error, not a panic.
pub fn needs_a_loop(kind: Kind) {
    let watcher = (kind.make)();
    let mut child = Gated::spawn();
    let err = watcher
        .add_child_handler(child.pid, Box::new(|_, _| {}))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRunningLoop, "{}", kind.name);
    if kind.sigchld {
        assert_eq!(
            err.to_string(),
            "Cannot add child handler, the child watcher does not have a loop attached"
        );
        assert!(!watcher.is_active());
    }
    // Reap the child ourselves: nothing watches it.
    child.open();
    reap_myself(child.pid);
}

/// `close()`: not active any more, registrations fail with `Closed`, idempotent.
pub fn close_semantics(kind: Kind) {
    let env = Env::new(kind);
    assert!(env.watcher.is_active(), "{}", kind.name);
    env.watcher.close();
    env.watcher.close();
    assert!(!env.watcher.is_active(), "{}", kind.name);
    let mut child = Gated::spawn();
    let err = env
        .watcher
        .add_child_handler(child.pid, Box::new(|_, _| {}))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{}", kind.name);
    assert!(!env.watcher.remove_child_handler(child.pid));
    child.open();
    reap_myself(child.pid);
}

/// Detaching and re-attaching loses no exit: the child exits while no loop is attached and is
/// reported on re-attachment (to the same loop, then to another one).
pub fn detach_reattach_loses_nothing(kind: Kind) {
    let env = Env::new(kind);
    let mut a = Gated::spawn();
    env.watch(a.pid, "a");
    env.watcher.attach_loop(None).unwrap();
    assert!(!env.watcher.is_active(), "{}", kind.name);
    let err = env
        .watcher
        .add_child_handler(a.pid, Box::new(|_, _| {}))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRunningLoop);
    a.open();
    wait_exited(a.pid);
    env.watcher.attach_loop(Some(&env.event_loop)).unwrap();
    assert!(env.watcher.is_active());
    env.reports.run_until(&env.event_loop, 1);
    assert_eq!(env.reports.for_pid(a.pid)[0].rc, 0, "{}", kind.name);

    // Now to another loop on this thread: the exit is reported there.
    let other = EventLoop::new().unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    let handle = other.handle();
    let mut b = Gated::spawn();
    env.watcher
        .add_child_handler(
            b.pid,
            Box::new(move |_, rc| {
                assert_eq!(rc, 0);
                g.fetch_add(1, Ordering::SeqCst);
                handle.stop();
            }),
        )
        .unwrap();
    env.watcher.attach_loop(None).unwrap();
    b.open();
    wait_exited(b.pid);
    env.watcher.attach_loop(Some(&other)).unwrap();
    other.run_forever().unwrap();
    assert_eq!(got.load(Ordering::SeqCst), 1, "{}", kind.name);
    env.watcher.attach_loop(None).unwrap();
    other.close().unwrap();
    // The first loop got nothing more.
    assert_eq!(env.reports.len(), 1, "{}", kind.name);
}

/// Generates `#[test] fn $test() { check($kind, $check) }` for each `$test => $check` (the
/// helper of [`watcher_contract!`] and [`sigchld_watcher_checks!`]).
macro_rules! watcher_tests {
    ($kind:expr; $($test:ident => $check:ident,)*) => {
        $(
            #[test]
            fn $test() {
                watcher_support::check($kind, watcher_support::$check);
            }
        )*
    };
}

/// Generates one `#[test]` per contract check for a watcher (use with `#[macro_use]`).
macro_rules! watcher_contract {
    ($kind:expr) => {
        watcher_tests! { $kind;
            second_handler_replaces_the_first => replaces_handler,
            remove_child_handler_is_true_once => remove_is_true_once,
            child_exited_before_registration_is_reported_once => early_exit_reported_once,
            twenty_children_exiting_together_are_all_reported => twenty_exit_together,
            exit_code_n_is_n_and_signal_s_is_minus_s => exit_codes_and_signals,
            child_reaped_elsewhere_before_registration_is_255 => reaped_elsewhere_before,
            a_panicking_callback_loses_no_other_exit => panicking_callback_loses_nothing,
            callbacks_run_on_the_loop_thread_off_the_main_thread => callbacks_on_loop_thread,
            five_hundred_children_leave_no_zombie => no_zombies_after_500,
            without_a_loop_registration_is_an_error => needs_a_loop,
            close_deactivates_and_refuses => close_semantics,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Checks for the `SIGCHLD` watchers (Safe and Fast) only.
// ---------------------------------------------------------------------------------------------

/// The current `SIGCHLD` handler address (`SIG_DFL` is 0).
pub fn sigchld_disposition() -> libc::sighandler_t {
    // SAFETY: a zeroed `sigaction` is a valid value to be overwritten.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: with a null `act`, `sigaction` only writes the current disposition into `cur`.
    let rc = unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut cur) };
    assert_eq!(rc, 0);
    cur.sa_sigaction
}

/// Attaching installs a `SIGCHLD` handler; detaching on the loop thread (and `close`) removes
/// it and restores the disposition from before.
pub fn sigchld_disposition_restored(kind: Kind) {
    assert_eq!(sigchld_disposition(), libc::SIG_DFL);
    let event_loop = EventLoop::new().unwrap();
    let watcher = (kind.make)();
    watcher.attach_loop(Some(&event_loop)).unwrap();
    assert_eq!(event_loop.signal_handlers(), [libc::SIGCHLD]);
    assert_ne!(sigchld_disposition(), libc::SIG_DFL);
    watcher.attach_loop(None).unwrap();
    assert!(event_loop.signal_handlers().is_empty());
    assert_eq!(sigchld_disposition(), libc::SIG_DFL, "{}", kind.name);
    // Re-attaching to the same loop twice keeps one handler, and close removes it.
    watcher.attach_loop(Some(&event_loop)).unwrap();
    watcher.attach_loop(Some(&event_loop)).unwrap();
    assert_eq!(event_loop.signal_handlers(), [libc::SIGCHLD]);
    watcher.close();
    assert!(event_loop.signal_handlers().is_empty());
    assert_eq!(sigchld_disposition(), libc::SIG_DFL, "{}", kind.name);
    // A closed watcher cannot be attached again.
    assert_eq!(
        watcher.attach_loop(Some(&event_loop)).unwrap_err().kind(),
        ErrorKind::Closed
    );
    event_loop.close().unwrap();
}

/// When the attached loop closes, the watcher is inactive and refuses registrations; attaching
/// to a closed loop is refused too.
pub fn closed_loop_deactivates(kind: Kind) {
    let env = Env::new(kind);
    env.event_loop.close().unwrap();
    assert!(!env.watcher.is_active(), "{}", kind.name);
    assert_eq!(sigchld_disposition(), libc::SIG_DFL, "{}", kind.name);
    let mut child = Gated::spawn();
    let err = env
        .watcher
        .add_child_handler(child.pid, Box::new(|_, _| {}))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{}", kind.name);
    let closed = EventLoop::new().unwrap();
    closed.close().unwrap();
    let fresh = (kind.make)();
    assert_eq!(
        fresh.attach_loop(Some(&closed)).unwrap_err().kind(),
        ErrorKind::Closed
    );
    child.open();
    reap_myself(child.pid);
}

/// Re-attaching from another thread: the old loop's handler becomes a no-op, and exits are
/// reported on the new loop only.
pub fn reattach_from_another_thread(kind: Kind) {
    let watcher = (kind.make)();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let w = watcher.clone();
    let first = std::thread::spawn(move || {
        let event_loop = EventLoop::new().unwrap();
        w.attach_loop(Some(&event_loop)).unwrap();
        ready_tx.send(event_loop.handle()).unwrap();
        // Runs until the test has re-attached the watcher elsewhere and seen the exit there.
        event_loop.run_forever().unwrap();
        done_tx.send(event_loop.signal_handlers()).unwrap();
        event_loop.close().unwrap();
    });
    let first_handle = ready_rx.recv_timeout(WATCHDOG).unwrap();

    let event_loop = EventLoop::new().unwrap();
    watcher.attach_loop(Some(&event_loop)).unwrap();
    let reports = Collector::new(&event_loop);
    let pid = spawn_exit(2);
    watcher
        .add_child_handler(pid, reports.callback("here"))
        .unwrap();
    reports.run_until(&event_loop, 1);
    let got = reports.for_pid(pid);
    assert_eq!(got[0].rc, 2, "{}", kind.name);
    assert_eq!(got[0].thread, std::thread::current().id(), "{}", kind.name);

    first_handle.stop();
    // The old loop still carries the (now inert) handler until it closes.
    let left = done_rx.recv_timeout(WATCHDOG).unwrap();
    assert_eq!(left, [libc::SIGCHLD]);
    first.join().unwrap();
    watcher.close();
    event_loop.close().unwrap();
}

/// Generates the extra `#[test]`s of the `SIGCHLD` watchers.
#[allow(unused_macros)]
macro_rules! sigchld_watcher_checks {
    ($kind:expr) => {
        watcher_tests! { $kind;
            child_reaped_elsewhere_after_registration_is_255 => reaped_elsewhere_after,
            detach_and_reattach_lose_no_exit => detach_reattach_loses_nothing,
            attach_installs_and_detach_restores_sigchld => sigchld_disposition_restored,
            closing_the_attached_loop_deactivates_the_watcher => closed_loop_deactivates,
            reattaching_from_another_thread_moves_delivery => reattach_from_another_thread,
        }
    };
}
