//! A `fork()`ed child (of a process whose loop ran subprocesses) starts a fresh loop and spawns
//! a child of its own. In its own test binary, as design.md asks of fork tests.

use asyncio::subprocess::{create_subprocess_exec, SubprocessOptions};
use asyncio::EventLoop;

fn exit_code_of_a_child() -> i32 {
    let event_loop = EventLoop::new().expect("loop");
    let rc = event_loop
        .run_until_complete(async {
            match create_subprocess_exec("sh", ["-c", "exit 3"], SubprocessOptions::new()).await {
                Ok(p) => p.wait().await,
                Err(_) => 100,
            }
        })
        .unwrap_or(101);
    let _ = event_loop.close();
    rc
}

#[test]
fn a_forked_child_uses_a_fresh_loop_and_spawns() {
    // The parent used subprocesses first (the policy's watcher exists).
    assert_eq!(exit_code_of_a_child(), 3);
    // SAFETY: the child runs a fresh loop and `_exit`s without returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let rc = exit_code_of_a_child();
        // SAFETY: `_exit` ends the child without running the parent's destructors twice.
        unsafe { libc::_exit(if rc == 3 { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the forked child could not spawn"
    );
}
