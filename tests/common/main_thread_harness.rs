//! The harness of the `harness = false` test binaries whose tests need the process's main
//! thread (libtest runs tests on worker threads). Included with `#[path]`.

/// Runs every `(name, test)` in order on this thread and prints one libtest-like line each,
/// then a summary; exits with status 1 if any failed. Every test, passed or failed, is followed
/// by `set_event_loop_policy(None)`, so the next one starts from a fresh default policy.
pub fn run_tests(tests: &[(&str, fn())]) {
    let mut passed = 0;
    let mut failed = 0;
    for &(name, test) in tests {
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
        asyncio::set_event_loop_policy(None);
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
