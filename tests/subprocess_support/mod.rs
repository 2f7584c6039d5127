//! Helpers of the `subprocess_*` tests: a bounded loop run, child state from `/proc` and
//! `waitid(WNOWAIT)` (never reaping), and a recording protocol.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use asyncio::subprocess::{Stdio, SubprocessOptions};
use asyncio::{BaseProtocol, Error, EventLoop, SubprocessProtocol, SubprocessTransport};
use rustix::io::Errno;
use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};

#[path = "../common/watchdog.rs"]
pub mod watchdog;

/// No arguments, for `create_subprocess_exec`.
pub const NO_ARGS: [&str; 0] = [];

/// The tests of a binary that count descriptors take turns, so that one test's count is not
/// disturbed by another's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `body` under the watchdog, one test at a time (see `ONE_AT_A_TIME`).
pub fn serial(body: impl FnOnce() + Send + 'static) {
    watchdog::watchdog(move || {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        body();
    });
}

/// Piped stdin and stdout: what a `cat` needs.
pub fn cat_options() -> SubprocessOptions {
    SubprocessOptions::new()
        .stdin(Stdio::Pipe)
        .stdout(Stdio::Pipe)
}

/// A `cat` with piped stdin and stdout, and those two streams.
pub async fn spawn_cat() -> (
    asyncio::subprocess::Process,
    asyncio::streams::StreamWriter,
    asyncio::streams::StreamReader,
) {
    let mut cat = asyncio::subprocess::create_subprocess_exec("cat", NO_ARGS, cat_options())
        .await
        .unwrap();
    let stdin = cat.stdin.take().unwrap();
    let stdout = cat.stdout.take().unwrap();
    (cat, stdin, stdout)
}

/// This process's open descriptors.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Runs `future` on a fresh loop of this thread and closes the loop.
pub fn run<T: 'static>(future: impl Future<Output = T> + 'static) -> T {
    let event_loop = EventLoop::new().expect("loop");
    let out = event_loop.run_until_complete(future).expect("run");
    event_loop.close().expect("close");
    out
}

fn pid(p: i32) -> Pid {
    Pid::from_raw(p).expect("positive pid")
}

/// Blocks until `p` has exited, without reaping it; returns at once if it is not our child.
pub fn wait_exited(p: i32) {
    while let Err(Errno::INTR) = waitid(
        WaitId::Pid(pid(p)),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    ) {}
}

/// Whether `p` is running: our child, not exited (never reaps).
pub fn is_running(p: i32) -> bool {
    matches!(
        waitid(
            WaitId::Pid(pid(p)),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        ),
        Ok(None)
    )
}

/// Whether `p` was reaped: no longer a child of ours.
pub fn is_reaped(p: i32) -> bool {
    matches!(
        waitid(
            WaitId::Pid(pid(p)),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        ),
        Err(Errno::CHILD)
    )
}

/// The state letter of `p` in `/proc/<p>/stat` (field 3), `None` if the pid is gone.
pub fn proc_state(p: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

/// Runs the loop (in 2 ms slices, bounded) until `p` is reaped; then checks `/proc` shows no
/// zombie for it.
pub async fn until_reaped(p: i32) {
    for _ in 0..5_000 {
        if is_reaped(p) {
            assert_ne!(proc_state(p), Some('Z'), "pid {p} is a zombie");
            return;
        }
        asyncio::sleep(0.002).await.unwrap();
    }
    panic!("pid {p} was never reaped (state {:?})", proc_state(p));
}

/// What a [`Recorder`] saw, in order.
pub type Events = Rc<RefCell<Vec<String>>>;

/// A protocol that records every event: "made", "data N", "lost N", "exited", "connection_lost".
pub struct Recorder {
    pub events: Events,
    pub out: Rc<RefCell<[Vec<u8>; 3]>>,
    pub transport: Option<SubprocessTransport>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            events: Rc::default(),
            out: Rc::default(),
            transport: None,
        }
    }
}

impl BaseProtocol for Recorder {
    fn connection_lost(&mut self, exc: Option<Error>) {
        assert!(exc.is_none());
        self.events.borrow_mut().push("connection_lost".into());
    }
}

impl SubprocessProtocol for Recorder {
    fn connection_made(&mut self, transport: SubprocessTransport) {
        self.transport = Some(transport);
        self.events.borrow_mut().push("made".into());
    }
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        self.out.borrow_mut()[fd as usize].extend_from_slice(data);
        let mut ev = self.events.borrow_mut();
        let tag = format!("data {fd}");
        if ev.last() != Some(&tag) {
            ev.push(tag);
        }
    }
    fn pipe_connection_lost(&mut self, fd: i32, exc: Option<Error>) {
        assert!(exc.is_none(), "pipe {fd}: {exc:?}");
        self.events.borrow_mut().push(format!("lost {fd}"));
    }
    fn process_exited(&mut self) {
        self.events.borrow_mut().push("exited".into());
    }
}
