//! Helpers shared by the `asyncio-policies` integration tests: a watchdog, the lock that
//! serialises tests touching the process-wide policy slot, a thread-local capturing logger and
//! named thread pools. All are the root crate's test helpers (`tests/common`), included by path.
#![allow(dead_code)]

#[path = "../../../tests/common/capture_log.rs"]
mod capture_log;
#[path = "../../../tests/common/watchdog.rs"]
mod common_watchdog;
#[path = "../../../tests/common/policy_lock.rs"]
mod policy_lock;
#[path = "../../../tests/common/pool.rs"]
mod pool;

#[allow(unused_imports)]
pub use capture_log::{install_capturing_logger, slow_lines, take_logs};
#[allow(unused_imports)]
pub use common_watchdog::{watchdog, WATCHDOG};
#[allow(unused_imports)]
pub use policy_lock::global_policy_lock;
#[allow(unused_imports)]
pub use pool::{named_pool, worker_name};
