//! Reading and setting a signal's disposition directly with `sigaction`, for the signal tests.
//! Included with `#[path]` (it is not a test binary).
#![allow(dead_code)]

/// The current handler address of `sig` (`SIG_DFL` 0, `SIG_IGN` 1).
pub fn disposition(sig: i32) -> libc::sighandler_t {
    // SAFETY: a zeroed `sigaction` is a valid value to be overwritten.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: with a null `act`, `sigaction` only writes the current disposition into `cur`.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut cur) };
    assert_eq!(rc, 0);
    cur.sa_sigaction
}

/// Installs `handler` (a `SIG_*` constant or a plain `extern "C" fn(c_int)` address) for `sig`.
pub fn set_disposition(sig: i32, handler: libc::sighandler_t) {
    // SAFETY: a zeroed `sigaction` is valid (empty mask, no flags).
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    // SAFETY: `act` is initialised; callers pass SIG_DFL, SIG_IGN or an async-signal-safe
    // `extern "C" fn(c_int)`, matching the flags (no SA_SIGINFO).
    let rc = unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}
