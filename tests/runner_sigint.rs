//! `asyncio::run` / `Runner::run` and SIGINT (R51), on the process's main thread
//! (`harness = false`: libtest runs tests on worker threads, where no handler is installed).
//!
//! The first SIGINT cancels the main task and the run fails with `ErrorKind::Interrupted`; a
//! second one ends the process as an uncaught Ctrl-C does (checked in a child process, this
//! binary run again with `CHILD_ENV` set); the handler exists only for the run, only on the main
//! thread, only over the default disposition, and a failure to install it is tolerated.

#[path = "common/dispositions.rs"]
mod dispositions;
#[path = "common/main_thread_harness.rs"]
mod main_thread_harness;

use dispositions::{disposition, set_disposition};
use std::cell::Cell;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use asyncio::{ErrorKind, EventLoop, Runner};

/// When set, this binary is the child of `a_second_sigint_ends_the_process`.
const CHILD_ENV: &str = "ASYNCIO_RUNNER_SIGINT_CHILD";
/// The hard bound of the whole binary and of the child.
const WATCHDOG: Duration = Duration::from_secs(60);

/// SIGINT to this thread: its handler has run when this returns.
fn raise_sigint() {
    // SAFETY: `raise` has no memory-safety preconditions; the tests that call it have a
    // handler installed (or want the default action, in the child).
    let rc = unsafe { libc::raise(libc::SIGINT) };
    assert_eq!(rc, 0);
}

/// Sets a flag when dropped: the main task's future was dropped (cancelled).
struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn first_sigint_cancels_the_main_task_and_run_is_interrupted() {
    assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
    let dropped = Rc::new(Cell::new(false));
    let guard = SetOnDrop(dropped.clone());
    let err = asyncio::run(async move {
        let _guard = guard;
        assert_ne!(
            disposition(libc::SIGINT),
            libc::SIG_DFL,
            "no handler installed"
        );
        raise_sigint();
        std::future::pending::<()>().await;
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted);
    assert_eq!(err.to_string(), "KeyboardInterrupt");
    assert!(dropped.get(), "the main task was not cancelled");
    assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL, "not restored");
}

fn a_runner_runs_again_after_an_interrupt() {
    let mut runner = Runner::new();
    let err = runner
        .run(async {
            raise_sigint();
            asyncio::sleep(3600.0).await.unwrap();
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted);
    assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
    // The count starts again: one SIGINT in the next run is a first one, not a second.
    let err = runner
        .run(async {
            raise_sigint();
            std::future::pending::<()>().await;
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted);
    assert_eq!(runner.run(async { 7 }).unwrap(), 7);
    runner.close().unwrap();
    assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
}

fn no_handler_off_the_main_thread() {
    let installed = std::thread::spawn(|| {
        asyncio::run(async { disposition(libc::SIGINT) != libc::SIG_DFL }).unwrap()
    })
    .join()
    .unwrap();
    assert!(!installed);
}

fn no_handler_over_a_non_default_disposition() {
    set_disposition(libc::SIGINT, libc::SIG_IGN);
    let out = asyncio::run(async {
        assert_eq!(disposition(libc::SIGINT), libc::SIG_IGN);
        raise_sigint();
        asyncio::sleep(0.0).await.unwrap();
        5
    });
    assert_eq!(out.unwrap(), 5);
    assert_eq!(disposition(libc::SIGINT), libc::SIG_IGN);
    set_disposition(libc::SIGINT, libc::SIG_DFL);
}

fn a_loop_handler_for_sigint_replaces_the_runners() {
    // As `loop.add_signal_handler(SIGINT)` inside `asyncio.run` replaces `_on_sigint`: the
    // loop's handler gets the signal, the main task goes on, and the default comes back.
    let out = asyncio::run(async {
        let lp = asyncio::get_running_loop().unwrap();
        let got = Rc::new(Cell::new(false));
        let g = got.clone();
        lp.add_signal_handler(libc::SIGINT, move || g.set(true))
            .unwrap();
        raise_sigint();
        while !got.get() {
            asyncio::sleep(0.001).await.unwrap();
        }
        3
    });
    assert_eq!(out.unwrap(), 3);
    assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
}

fn a_handler_that_cannot_be_installed_is_tolerated() {
    // No fd left for the handler's self-pipe: the run goes on without it.
    let mut runner = Runner::builder().loop_factory(EventLoop::new).build();
    runner.get_loop().unwrap();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes into `limit`.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0);
    let saved = limit;
    // A soft limit a little above the lowest free fd, and every fd below it used.
    // SAFETY: `dup` of stdin's fd only makes a new descriptor (or fails).
    let lowest_free = unsafe { libc::dup(0) };
    assert!(lowest_free >= 0);
    limit.rlim_cur = lowest_free as libc::rlim_t + 16;
    // SAFETY: lowers the soft limit only.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0);
    let mut held = vec![lowest_free];
    loop {
        // SAFETY: as above.
        let fd = unsafe { libc::dup(0) };
        if fd < 0 {
            break;
        }
        held.push(fd);
    }
    let out = runner.run(async {
        assert_eq!(disposition(libc::SIGINT), libc::SIG_DFL);
        11
    });
    for fd in held {
        // SAFETY: closes the descriptors this test made.
        unsafe { libc::close(fd) };
    }
    // SAFETY: puts the saved limit back.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &saved) };
    assert_eq!(rc, 0);
    assert_eq!(out.unwrap(), 11);
    runner.close().unwrap();
}

fn a_second_sigint_ends_the_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            panic!("the child did not end");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status}");
}

/// The child: two SIGINTs while the main task runs; the second must end the process.
fn child_main() -> ! {
    let _ = asyncio::run(async {
        raise_sigint();
        raise_sigint();
        std::future::pending::<()>().await;
    });
    // Not reached when the second SIGINT ends the process.
    std::process::exit(3);
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child_main();
    }
    assert!(
        asyncio::unix::is_main_thread(),
        "must run on the main thread"
    );
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("watchdog: runner_sigint did not finish within {WATCHDOG:?}");
        std::process::exit(2);
    });
    let tests: [(&str, fn()); 7] = [
        (
            "first_sigint_cancels_the_main_task_and_run_is_interrupted",
            first_sigint_cancels_the_main_task_and_run_is_interrupted,
        ),
        (
            "a_runner_runs_again_after_an_interrupt",
            a_runner_runs_again_after_an_interrupt,
        ),
        (
            "no_handler_off_the_main_thread",
            no_handler_off_the_main_thread,
        ),
        (
            "no_handler_over_a_non_default_disposition",
            no_handler_over_a_non_default_disposition,
        ),
        (
            "a_loop_handler_for_sigint_replaces_the_runners",
            a_loop_handler_for_sigint_replaces_the_runners,
        ),
        (
            "a_handler_that_cannot_be_installed_is_tolerated",
            a_handler_that_cannot_be_installed_is_tolerated,
        ),
        (
            "a_second_sigint_ends_the_process",
            a_second_sigint_ends_the_process,
        ),
    ];
    main_thread_harness::run_tests(&tests);
}
