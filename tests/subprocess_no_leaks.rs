//! A failed spawn (a missing program, a bad `cwd`) leaves nothing behind: no descriptor, pipe,
//! transport or thread. One test in its own binary, so no other test opens descriptors while
//! this one counts them.

#[path = "common/watchdog.rs"]
mod watchdog;

use asyncio::subprocess::{create_subprocess_exec, Stdio, SubprocessOptions};
use asyncio::{ErrorKind, EventLoop};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn piped() -> SubprocessOptions {
    SubprocessOptions::new()
        .stdin(Stdio::Pipe)
        .stdout(Stdio::Pipe)
        .stderr(Stdio::Pipe)
}

#[test]
fn failed_spawns_leave_no_descriptor_or_thread_behind() {
    watchdog::watchdog(|| {
        let event_loop = EventLoop::new().unwrap();
        event_loop
            .run_until_complete(async {
                // Warm up: the policy's watcher and anything created once.
                let p = create_subprocess_exec("true", [] as [&str; 0], piped())
                    .await
                    .unwrap();
                p.wait().await;
                drop(p);
                for _ in 0..5 {
                    asyncio::sleep(0.0).await.unwrap();
                }
                let (fds, threads) = (count("/proc/self/fd"), count("/proc/self/task"));
                for _ in 0..10 {
                    let e = create_subprocess_exec("/no/such/program", [] as [&str; 0], piped())
                        .await
                        .unwrap_err();
                    assert_eq!(e.kind(), ErrorKind::Io);
                    assert_eq!(e.io_error_kind(), Some(std::io::ErrorKind::NotFound));
                    let e = create_subprocess_exec(
                        "true",
                        [] as [&str; 0],
                        piped().stderr(Stdio::Stdout).cwd("/no/such/dir"),
                    )
                    .await
                    .unwrap_err();
                    assert_eq!(e.io_error_kind(), Some(std::io::ErrorKind::NotFound));
                }
                asyncio::sleep(0.0).await.unwrap();
                assert_eq!(count("/proc/self/fd"), fds, "descriptors leaked");
                assert_eq!(count("/proc/self/task"), threads, "threads left behind");
            })
            .unwrap();
        event_loop.close().unwrap();
    });
}
