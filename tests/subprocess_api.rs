//! Subprocesses on the default policy's child watcher (issue 10's contract): protocol event
//! order, `communicate` without deadlock, concurrent and cancelled `wait`s, `close`/`kill`
//! semantics without signals to recycled pids, refused options, no zombies, other threads,
//! and `async-process` beside our API. Every test is bounded by the watchdog.

mod subprocess_support;

use std::time::Duration;

use asyncio::subprocess::{
    create_subprocess_exec, create_subprocess_shell, Stdio, SubprocessOptions,
};
use asyncio::{ErrorKind, SubprocessTransport};
use subprocess_support::watchdog::watchdog;
use subprocess_support::{
    is_reaped, is_running, proc_state, run, until_reaped, wait_exited, Recorder,
};

const NO_ARGS: [&str; 0] = [];

fn piped() -> SubprocessOptions {
    SubprocessOptions::new()
        .stdin(Stdio::Pipe)
        .stdout(Stdio::Pipe)
        .stderr(Stdio::Pipe)
}

#[test]
fn protocol_events_come_in_order() {
    watchdog(|| {
        run(async {
            let lp = asyncio::get_running_loop().unwrap();
            for _ in 0..20 {
                let (transport, protocol) = lp
                    .subprocess_exec(
                        Recorder::new,
                        "sh",
                        ["-c", "echo out; echo err >&2; exit 2"],
                        SubprocessOptions::new().stdin(Stdio::DevNull),
                    )
                    .await
                    .unwrap();
                assert!(transport.get_pipe_transport(0).is_none());
                assert!(transport.get_pipe_transport(1).is_some());
                assert_eq!(transport.wait().await, 2);
                // connection_lost comes with call_soon after the exit.
                while protocol.borrow().events.borrow().last().map(String::as_str)
                    != Some("connection_lost")
                {
                    asyncio::sleep(0.0).await.unwrap();
                }
                let p = protocol.borrow();
                let ev = p.events.borrow().clone();
                let at = |s: &str| {
                    ev.iter()
                        .position(|e| e == s)
                        .unwrap_or_else(|| panic!("{s} missing: {ev:?}"))
                };
                assert_eq!(at("made"), 0, "{ev:?}");
                assert!(at("data 1") < at("lost 1"), "{ev:?}");
                assert!(at("data 2") < at("lost 2"), "{ev:?}");
                assert!(at("lost 1") < at("exited"), "{ev:?}");
                assert!(at("lost 2") < at("exited"), "{ev:?}");
                assert_eq!(at("connection_lost"), ev.len() - 1, "{ev:?}");
                assert_eq!(ev.len(), 7, "{ev:?}");
                assert_eq!(&p.out.borrow()[1], b"out\n");
                assert_eq!(&p.out.borrow()[2], b"err\n");
                assert_eq!(transport.get_returncode(), Some(2));
            }
        });
    });
}

#[test]
fn communicate_moves_10_mb_each_way_through_cat() {
    watchdog(|| {
        let input: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let expected = input.clone();
        let (out, err, rc) = run(async move {
            let mut cat = create_subprocess_exec("cat", NO_ARGS, piped())
                .await
                .unwrap();
            let (out, err) = cat.communicate(Some(&input)).await.unwrap();
            (out.unwrap(), err.unwrap(), cat.returncode())
        });
        assert_eq!(out.len(), expected.len());
        assert!(out == expected);
        assert!(err.is_empty());
        assert_eq!(rc, Some(0));
    });
}

#[test]
fn ten_concurrent_waits_all_get_the_code() {
    watchdog(|| {
        let codes = run(async {
            let p = std::rc::Rc::new(
                create_subprocess_exec("sh", ["-c", "read x; exit 7"], piped())
                    .await
                    .unwrap(),
            );
            let lp = asyncio::get_running_loop().unwrap();
            let tasks: Vec<_> = (0..10)
                .map(|_| {
                    let p = p.clone();
                    lp.create_task(async move { p.wait().await }).unwrap()
                })
                .collect();
            asyncio::sleep(0.0).await.unwrap();
            p.stdin.as_ref().unwrap().write(b"go\n").unwrap();
            let mut codes = Vec::new();
            for t in tasks {
                codes.push(t.await.unwrap());
            }
            codes
        });
        assert_eq!(codes, vec![7; 10]);
    });
}

#[test]
fn a_cancelled_wait_leaves_the_child_running_and_kill_then_wait_gives_minus_9() {
    watchdog(|| {
        run(async {
            let p = create_subprocess_exec("cat", NO_ARGS, piped())
                .await
                .unwrap();
            let timed_out = asyncio::wait_for(p.wait(), 0.02).await;
            assert_eq!(timed_out.unwrap_err().kind(), ErrorKind::Timeout);
            assert!(is_running(p.pid));
            assert_eq!(p.returncode(), None);
            p.kill().unwrap();
            assert_eq!(p.wait().await, -9);
            assert_eq!(p.returncode(), Some(-9));
        });
    });
}

#[test]
fn close_kills_a_running_child() {
    watchdog(|| {
        run(async {
            let lp = asyncio::get_running_loop().unwrap();
            let (t, _p) = lp
                .subprocess_exec(Recorder::new, "cat", NO_ARGS, SubprocessOptions::new())
                .await
                .unwrap();
            assert!(!t.is_closing());
            t.close();
            assert!(t.is_closing());
            assert_eq!(t.wait().await, -9);
        });
    });
}

#[test]
fn close_does_not_kill_a_child_that_exited_but_is_not_reported() {
    watchdog(|| {
        run(async {
            let lp = asyncio::get_running_loop().unwrap();
            let (t, _p) = lp
                .subprocess_exec(
                    Recorder::new,
                    "sh",
                    ["-c", "exit 5"],
                    SubprocessOptions::new()
                        .stdin(Stdio::DevNull)
                        .stdout(Stdio::DevNull)
                        .stderr(Stdio::DevNull),
                )
                .await
                .unwrap();
            // The loop does not turn here, so the watcher has not reported the exit.
            wait_exited(t.get_pid());
            assert_eq!(t.get_returncode(), None);
            t.close();
            assert_eq!(t.wait().await, 5);
        });
    });
}

fn assert_process_lookup(e: asyncio::Error) {
    assert_eq!(e.kind(), ErrorKind::ProcessLookup);
    assert_eq!(e.to_string(), "process already exited");
}

#[test]
fn signals_after_the_exit_was_seen_are_process_lookup_errors() {
    watchdog(|| {
        run(async {
            let p = create_subprocess_shell("exit 0", SubprocessOptions::new())
                .await
                .unwrap();
            assert_eq!(p.wait().await, 0);
            assert_process_lookup(p.kill().unwrap_err());
            assert_process_lookup(p.terminate().unwrap_err());
            assert_process_lookup(p.send_signal(libc::SIGUSR1).unwrap_err());
            assert_eq!(
                p.send_signal(12345).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
        });
    });
}

#[test]
fn send_signal_racing_the_exit_never_gives_255() {
    watchdog(|| {
        run(async {
            for i in 0..40 {
                let p = create_subprocess_exec("true", NO_ARGS, SubprocessOptions::new())
                    .await
                    .unwrap();
                if i % 2 == 0 {
                    // Exited, not yet reported: the signal is not sent, nothing is reaped.
                    wait_exited(p.pid);
                    p.send_signal(libc::SIGTERM).unwrap();
                    assert_eq!(p.wait().await, 0);
                } else {
                    // Racing: either the child dies of it or it exits first.
                    p.send_signal(libc::SIGTERM).unwrap();
                    let rc = p.wait().await;
                    assert!(rc == 0 || rc == -libc::SIGTERM, "rc {rc}");
                }
            }
        });
    });
}

#[test]
fn options_asyncio_refuses_are_invalid_arguments() {
    watchdog(|| {
        run(async {
            let cases = [
                (
                    SubprocessOptions::new().universal_newlines(true),
                    "universal_newlines must be False",
                ),
                (SubprocessOptions::new().bufsize(1), "bufsize must be 0"),
                (SubprocessOptions::new().text(true), "text must be False"),
                (
                    SubprocessOptions::new().encoding("utf-8"),
                    "encoding must be None",
                ),
                (
                    SubprocessOptions::new().errors("strict"),
                    "errors must be None",
                ),
                (
                    SubprocessOptions::new().stdout(Stdio::Stdout),
                    "Stdio::Stdout is only valid for stderr",
                ),
            ];
            for (options, message) in cases {
                let e = create_subprocess_exec("true", NO_ARGS, options)
                    .await
                    .unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidArgument);
                assert_eq!(e.to_string(), message);
            }
        });
    });
}

#[test]
fn spawn_errors_are_io_errors_with_their_kind() {
    watchdog(|| {
        run(async {
            let e = create_subprocess_exec("/no/such/program", NO_ARGS, piped())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Io);
            assert_eq!(e.io_error_kind(), Some(std::io::ErrorKind::NotFound));
            let e = create_subprocess_exec("true", NO_ARGS, piped().cwd("/no/such/dir"))
                .await
                .unwrap_err();
            assert_eq!(e.io_error_kind(), Some(std::io::ErrorKind::NotFound));
        });
    });
}

#[test]
fn a_dropped_process_is_reaped_never_a_zombie() {
    watchdog(|| {
        run(async {
            // Exits by itself once dropped (its stdin closes).
            let cat = create_subprocess_exec("cat", NO_ARGS, piped())
                .await
                .unwrap();
            let pid = cat.pid;
            drop(cat);
            until_reaped(pid).await;
            // Exits on its own, never waited for.
            let quick = create_subprocess_shell("exit 0", SubprocessOptions::new())
                .await
                .unwrap();
            let pid = quick.pid;
            drop(quick);
            until_reaped(pid).await;
            // Would run for a minute: kill_on_drop ends it, and it is reaped.
            let sleeper = create_subprocess_exec(
                "sleep",
                ["60"],
                SubprocessOptions::new().kill_on_drop(true),
            )
            .await
            .unwrap();
            let pid = sleeper.pid;
            assert_eq!(proc_state(pid).map(|s| s != 'Z'), Some(true));
            drop(sleeper);
            until_reaped(pid).await;
        });
    });
}

#[test]
fn without_kill_on_drop_a_dropped_process_keeps_running() {
    watchdog(|| {
        run(async {
            let p = create_subprocess_exec("sleep", ["60"], SubprocessOptions::new())
                .await
                .unwrap();
            let pid = p.pid;
            drop(p);
            asyncio::sleep(0.01).await.unwrap();
            assert!(is_running(pid));
            // Clean up: the watcher still reaps it.
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
            until_reaped(pid).await;
        });
    });
}

#[test]
fn a_loop_on_another_thread_gets_exit_3() {
    watchdog(|| {
        let rc = std::thread::spawn(|| {
            run(async {
                create_subprocess_exec("sh", ["-c", "exit 3"], SubprocessOptions::new())
                    .await
                    .unwrap()
                    .wait()
                    .await
            })
        })
        .join()
        .unwrap();
        assert_eq!(rc, 3);
    });
}

#[test]
fn options_reach_the_child() {
    watchdog(|| {
        run(async {
            // stderr with stdout, cwd, env, a new session.
            let options = SubprocessOptions::new()
                .stdout(Stdio::Pipe)
                .stderr(Stdio::Stdout)
                .cwd("/")
                .env_clear()
                .env("GREETING", "hi")
                .start_new_session(true);
            let script = "echo $GREETING; pwd; echo err >&2; \
                          test \"$(cut -d' ' -f6 /proc/$$/stat)\" = $$ && echo leader";
            let mut p = create_subprocess_exec("/bin/sh", ["-c", script], options)
                .await
                .unwrap();
            let (out, err) = p.communicate(None).await.unwrap();
            assert_eq!(err, None);
            assert_eq!(
                String::from_utf8(out.unwrap()).unwrap(),
                "hi\n/\nerr\nleader\n"
            );
            // pass_fds: the child writes to a pipe descriptor we pass by number.
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
            let fd = std::os::fd::AsRawFd::as_raw_fd(&w);
            let p = create_subprocess_exec(
                "sh",
                [
                    "-c".to_string(),
                    format!("echo passed > /proc/self/fd/{fd}"),
                ],
                SubprocessOptions::new().pass_fds([fd]),
            )
            .await
            .unwrap();
            assert_eq!(p.wait().await, 0);
            drop(w);
            let mut buf = [0u8; 16];
            let n = rustix::io::read(&r, &mut buf).unwrap();
            assert_eq!(&buf[..n], b"passed\n");
            // A Command the caller already has.
            let mut command = std::process::Command::new("sh");
            command.args(["-c", "exit $CODE"]).env("CODE", "9");
            let p =
                asyncio::subprocess::create_subprocess_command(command, SubprocessOptions::new())
                    .await
                    .unwrap();
            assert_eq!(p.wait().await, 9);
        });
    });
}

#[test]
fn stdin_flow_control_pauses_a_fast_writer() {
    watchdog(|| {
        run(async {
            let lp = asyncio::get_running_loop().unwrap();
            struct Paused(std::rc::Rc<std::cell::Cell<u32>>);
            impl asyncio::BaseProtocol for Paused {
                fn pause_writing(&mut self) {
                    self.0.set(self.0.get() + 1);
                }
            }
            impl asyncio::SubprocessProtocol for Paused {}
            let count = std::rc::Rc::new(std::cell::Cell::new(0));
            let c = count.clone();
            let (t, _p) = lp
                .subprocess_exec(
                    move || Paused(c),
                    "sh",
                    ["-c", "read x; cat >/dev/null"],
                    SubprocessOptions::new(),
                )
                .await
                .unwrap();
            let stdin = t.get_pipe_transport(0).unwrap();
            stdin.write(&vec![b'x'; 1 << 20]).unwrap();
            assert_eq!(count.get(), 1);
            stdin.write_eof();
            assert_eq!(t.wait().await, 0);
        });
    });
}

#[test]
fn async_process_runs_beside_our_api_on_our_loop() {
    watchdog(|| {
        let (theirs, ours) = run(async {
            let lp = asyncio::get_running_loop().unwrap();
            let theirs = lp
                .create_task(async {
                    async_process::Command::new("sh")
                        .args(["-c", "echo theirs; exit 4"])
                        .output()
                        .await
                        .unwrap()
                })
                .unwrap();
            let mut ours = create_subprocess_exec(
                "sh",
                ["-c", "echo ours; exit 5"],
                SubprocessOptions::new().stdout(Stdio::Pipe),
            )
            .await
            .unwrap();
            let (out, _) = ours.communicate(None).await.unwrap();
            let theirs = theirs.await.unwrap();
            (theirs, (out.unwrap(), ours.returncode()))
        });
        assert_eq!(theirs.stdout, b"theirs\n");
        assert_eq!(theirs.status.code(), Some(4));
        assert_eq!(ours, (b"ours\n".to_vec(), Some(5)));
    });
}

/// A transport that keeps its clone in the protocol is released after connection_lost.
#[test]
fn the_protocol_transport_cycle_is_broken_after_connection_lost() {
    watchdog(|| {
        run(async {
            let lp = asyncio::get_running_loop().unwrap();
            let (t, p) = lp
                .subprocess_exec(Recorder::new, "true", NO_ARGS, SubprocessOptions::new())
                .await
                .unwrap();
            let weak: std::rc::Weak<_> = std::rc::Rc::downgrade(&p);
            assert_eq!(t.wait().await, 0);
            for _ in 0..10 {
                asyncio::sleep(0.0).await.unwrap();
            }
            drop(p);
            assert!(weak.upgrade().is_none(), "the protocol is still held");
            let _: &SubprocessTransport = &t;
            assert!(is_reaped(t.get_pid()));
        });
        let _ = Duration::ZERO;
    });
}
