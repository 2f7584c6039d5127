//! The lock for tests that touch the process-wide event loop policy slot. Included with
//! `#[path]`.

use std::sync::{Mutex, MutexGuard};

static GLOBAL_POLICY: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary that touch the process-wide policy slot, and resets the
/// slot (a fresh default on next use) before handing out the guard.
pub fn global_policy_lock() -> MutexGuard<'static, ()> {
    let guard = GLOBAL_POLICY.lock().unwrap_or_else(|p| p.into_inner());
    asyncio::set_event_loop_policy(None);
    guard
}
