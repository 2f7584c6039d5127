//! Helpers shared by the `asyncio-policies` integration tests: a watchdog, the lock that
//! serialises tests touching the process-wide policy slot, and a thread-local capturing logger.
//! All three are the root crate's test helpers (`tests/common`), included by path.
#![allow(dead_code)]

#[path = "../../../tests/common/capture_log.rs"]
mod capture_log;
#[path = "../../../tests/common/watchdog.rs"]
mod common_watchdog;
#[path = "../../../tests/common/policy_lock.rs"]
mod policy_lock;

#[allow(unused_imports)]
pub use capture_log::{install_capturing_logger, take_logs};
#[allow(unused_imports)]
pub use common_watchdog::{watchdog, WATCHDOG};
#[allow(unused_imports)]
pub use policy_lock::global_policy_lock;
