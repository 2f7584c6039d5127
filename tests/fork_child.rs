//! `fork()` from inside a running loop: the child has no running loop (asyncio's `on_fork`
//! resets it), so it can start a fresh loop of its own. In its own test binary, as design.md
//! asks of fork tests.

use asyncio::{get_running_loop, ErrorKind, EventLoop};

/// What the child checks; its exit code is the answer (0: all good).
fn in_child() -> i32 {
    match get_running_loop() {
        Err(e) if e.kind() == ErrorKind::NoRunningLoop => {}
        Err(_) => return 2,
        Ok(_) => return 3,
    }
    let Ok(fresh) = EventLoop::new() else {
        return 4;
    };
    let ran = fresh.run_until_complete(async {
        asyncio::sleep(0.0).await.unwrap();
        // Inside the fresh loop, that loop is the running one.
        get_running_loop().map(|l| l.id())
    });
    match ran {
        Ok(Ok(id)) if id == fresh.id() => {}
        _ => return 5,
    }
    if fresh.close().is_err() {
        return 6;
    }
    0
}

#[test]
fn a_child_forked_inside_a_running_loop_has_no_running_loop() {
    let lp = EventLoop::new().unwrap();
    let status = lp
        .run_until_complete(async {
            let parent = get_running_loop().unwrap();
            // SAFETY: the child only runs `in_child` and then `_exit`s, without returning into
            // the test harness.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let code = in_child();
                // SAFETY: `_exit` ends the child at once, without running the parent's atexit
                // handlers or destructors twice.
                unsafe { libc::_exit(code) };
            }
            // The parent still runs its loop.
            assert!(get_running_loop().unwrap().ptr_eq(&parent));
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(rc, pid);
            status
        })
        .unwrap();
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the child's check failed");
    lp.close().unwrap();
}
