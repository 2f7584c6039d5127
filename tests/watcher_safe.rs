//! The child-watcher contract for [`SafeChildWatcher`] (`SIGCHLD`, `waitpid(pid)` per child),
//! plus what only the signal watchers do. `SIGCHLD` is process-wide, so this binary holds only
//! these tests, run one at a time.

#[macro_use]
mod watcher_support;

use std::sync::Arc;

use asyncio::{ChildWatcher, SafeChildWatcher};
use watcher_support::{Env, Kind};

const KIND: Kind = Kind {
    name: "SafeChildWatcher",
    make: || Arc::new(SafeChildWatcher::new()) as Arc<dyn ChildWatcher>,
    supported: || true,
    sigchld: true,
};

watcher_contract!(KIND);
sigchld_watcher_checks!(KIND);

/// Safe waits only for the pids it was given: another child of the process stays for its own
/// waiter.
fn leaves_foreign_children_alone(kind: Kind) {
    let env = Env::new(kind);
    let foreign = watcher_support::spawn_exit(42);
    watcher_support::wait_exited(foreign);
    let mine = watcher_support::spawn_exit(0);
    env.watch(mine, "mine");
    env.reports.run_until(&env.event_loop, 1);
    // Our SIGCHLD passes have run (at least the one that reported `mine`): the foreign child is
    // still there for its owner, with its status.
    assert!(!watcher_support::is_reaped(foreign));
    let status = rustix::process::waitpid(
        Some(watcher_support::pid(foreign)),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap()
    .unwrap()
    .1;
    assert_eq!(status.exit_status(), Some(42));
}

#[test]
fn foreign_children_are_left_to_their_owner() {
    watcher_support::check(KIND, leaves_foreign_children_alone);
}

// The book's child-watcher chapter includes this function (between the ANCHOR lines).
// ANCHOR: usage
/// Starts two children and reports their exits through a `SafeChildWatcher`.
fn two_children_through_a_watcher() -> asyncio::Result<Vec<(i32, i32)>> {
    use asyncio::EventLoop;
    use std::process::Command;
    use std::sync::Mutex;

    let event_loop = EventLoop::new()?;
    let watcher = SafeChildWatcher::new();
    // Installs the watcher's SIGCHLD handler on this loop (so: call it on the loop's thread).
    watcher.attach_loop(Some(&event_loop))?;

    let exits = Arc::new(Mutex::new(Vec::new()));
    for code in [0, 7] {
        let child = Command::new("sh")
            .args(["-c", &format!("exit {code}")])
            .spawn()?;
        let (exits, handle) = (exits.clone(), event_loop.handle());
        // Any thread may register; the callback runs on the loop's thread. A child that has
        // already exited is reported too.
        watcher.add_child_handler(
            child.id() as i32,
            Box::new(move |pid, returncode| {
                let mut exits = exits.lock().unwrap();
                exits.push((pid, returncode));
                if exits.len() == 2 {
                    handle.stop();
                }
            }),
        )?;
    }
    event_loop.run_forever()?;

    watcher.close(); // removes the SIGCHLD handler from the loop
    event_loop.close()?;
    let exits = exits.lock().unwrap().clone();
    Ok(exits)
}
// ANCHOR_END: usage

#[test]
fn the_book_example_reports_both_children() {
    watcher_support::check(KIND, |_| {
        let mut codes: Vec<i32> = two_children_through_a_watcher()
            .unwrap()
            .into_iter()
            .map(|(_, rc)| rc)
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, [0, 7]);
    });
}
