//! Runs `examples/signals.rs` as a real program: once stopped by SIGINT, once by SIGTERM. Each
//! run must print its two ready lines, then "got signal NAME: exit", and exit with status 0.
//!
//! The example binary is built with `cargo build --example signals` (the `cargo` that runs the
//! tests, same profile and target directory): a no-op when `cargo test` already built it, and
//! correct when only this test target was asked for or the binary is stale.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The hard bound of one run of the example.
const WATCHDOG: Duration = Duration::from_secs(30);
/// The bound of building the example (a cold build compiles the library).
const BUILD_LIMIT: Duration = Duration::from_secs(600);

/// Waits for `child` with a bound; kills it when the bound passes.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The path of the example binary, built once per test process.
fn example_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_build = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    BIN.get_or_init(|| {
        // target/<profile>/deps/signals_example-<hash> -> target/<profile>
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("<target>/<profile>");
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--quiet", "--example", "signals"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target_dir)
            .stdin(Stdio::null());
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let mut child = build.spawn().expect("run cargo build --example signals");
        let status = wait_bounded(&mut child, BUILD_LIMIT, "cargo build --example signals");
        assert!(status.success(), "cargo build --example signals: {status}");
        let bin = profile_dir
            .join("examples")
            .join(format!("signals{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// Starts the example, waits for its ready lines, sends `signal`, and checks the exit.
fn run_example_and_send(signal: rustix::process::Signal, name: &str) {
    let bin = example_binary();
    let mut child = Command::new(bin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line.clone());
            lines.push(line);
        }
        lines
    });

    // Send the signal only once the handlers are installed: the second ready line is printed
    // after both `add_signal_handler` calls.
    let expected_ready = format!("pid {pid}: send SIGINT or SIGTERM to exit.");
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line == expected_ready => break,
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the example did not print its ready line within {WATCHDOG:?}");
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait");
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("the example ended before it was ready: {status}; stderr: {err}");
            }
        }
    }
    let target = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(target, signal).expect("send the signal");

    let status = wait_bounded(&mut child, WATCHDOG, "the example after its signal");
    let lines = reader.join().expect("stdout reader");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "exit status {status}; stderr: {err}");
    assert_eq!(
        lines,
        [
            "Event loop running, press Ctrl+C to interrupt.".to_owned(),
            expected_ready,
            format!("got signal {name}: exit"),
        ],
        "stderr: {err}"
    );
}

#[test]
fn sigint_stops_the_example_with_status_0() {
    run_example_and_send(rustix::process::Signal::INT, "SIGINT");
}

#[test]
fn sigterm_stops_the_example_with_status_0() {
    run_example_and_send(rustix::process::Signal::TERM, "SIGTERM");
}
