//! UNIX-only parts: signal handling ([`signals`]), child watchers ([`child_watcher`]) and the
//! process facts the policy needs (main thread, fork detection).

pub mod child_watcher;
pub mod signals;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Only an atomic increment: async-signal-safe, as code run after fork() must be.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// How many times this process is a `fork()`ed child of the process that first asked: per-thread
/// state recorded under an older generation belongs to the parent and must be ignored.
pub(crate) fn fork_generation() -> u64 {
    ATFORK.call_once(|| {
        // SAFETY: `pthread_atfork` stores three optional C function pointers for the lifetime of
        // the process. We pass only a child handler, a plain `extern "C" fn` with no captured
        // state that performs one atomic increment (async-signal-safe, as required after fork).
        // Registration happens once (guarded by `Once`). A failure (ENOMEM) only disables fork
        // detection, so the return code is ignored.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Whether the calling thread is the process's main thread.
pub fn is_main_thread() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::thread::gettid() == rustix::process::getpid()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        std::thread::current().name() == Some("main")
    }
}

/// The name asyncio would print for this thread ("MainThread" for the main thread).
pub(crate) fn thread_display_name() -> String {
    if is_main_thread() {
        return "MainThread".to_owned();
    }
    match std::thread::current().name() {
        Some(n) => n.to_owned(),
        None => format!("{:?}", std::thread::current().id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_threads_are_not_main() {
        // libtest runs tests on worker threads.
        assert!(!is_main_thread());
        let g = fork_generation();
        assert_eq!(fork_generation(), g);
    }

    #[test]
    fn fork_bumps_the_generation_in_the_child() {
        let before = fork_generation();
        // SAFETY: the child only reads an atomic and calls `_exit`, both async-signal-safe, so
        // it is sound to fork from a multi-threaded test process.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = if fork_generation() == before + 1 {
                0
            } else {
                1
            };
            // SAFETY: `_exit` ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        let status = rustix::process::waitpid(
            Some(rustix::process::Pid::from_raw(pid).expect("positive pid")),
            rustix::process::WaitOptions::empty(),
        )
        .expect("waitpid")
        .expect("status")
        .1;
        assert_eq!(status.exit_status(), Some(0));
        assert_eq!(fork_generation(), before);
    }
}
