//! 1,000 concurrent stream connections to one server on one loop: each client sends a line
//! and reads it back.

#[path = "net_support/mod.rs"]
mod net_support;

use std::cell::Cell;
use std::rc::Rc;

use asyncio::streams::{open_connection, start_server_with, StreamReader, StreamWriter};
use asyncio::ServerOptions;
use net_support::{port_of, run, watchdog};
use rustix::process::{getrlimit, setrlimit, Resource};

const WANTED: usize = 1000;

/// Raises the soft fd limit towards 4096 (each connection takes two fds in this process) and
/// returns how many connections fit: `WANTED`, or fewer when the hard limit is too low.
fn connections_that_fit() -> usize {
    let lim = getrlimit(Resource::Nofile);
    let cur = lim.current.unwrap_or(u64::MAX);
    let max = lim.maximum.unwrap_or(u64::MAX);
    let mut have = cur;
    if cur < 4096 {
        let target = max.min(4096);
        let new = rustix::process::Rlimit {
            current: Some(target),
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, new).is_ok() {
            have = target;
        }
    }
    // Two fds per connection plus headroom for the loop, the listener and the test harness.
    let fit = (have.saturating_sub(64) / 2) as usize;
    if fit < WANTED {
        eprintln!("fd limit {have}: scaling down to {fit} connections");
    }
    fit.min(WANTED)
}

async fn echo_line(reader: StreamReader, writer: StreamWriter) {
    if let Ok(line) = reader.readline().await {
        let _ = writer.write(&line);
        let _ = writer.drain().await;
    }
}

#[test]
fn a_thousand_concurrent_connections() {
    let n = connections_that_fit();
    assert!(n >= 100, "fd limit too low for this test");
    watchdog(move || {
        run(move |lp| async move {
            let server = start_server_with(
                echo_line,
                &["127.0.0.1"],
                Some(0),
                asyncio::streams::DEFAULT_LIMIT,
                ServerOptions::new().backlog(1024),
            )
            .await
            .unwrap();
            let port = port_of(&server);
            let ok = Rc::new(Cell::new(0usize));
            let mut tasks = Vec::new();
            for i in 0..n {
                let ok = ok.clone();
                tasks.push(
                    lp.create_task(async move {
                        let (reader, writer) = open_connection("127.0.0.1", port).await.unwrap();
                        let line = format!("client {i}\n");
                        writer.write(line.as_bytes()).unwrap();
                        writer.drain().await.unwrap();
                        let back = reader.readline().await.unwrap();
                        assert_eq!(back, line.as_bytes());
                        ok.set(ok.get() + 1);
                        // Keep every connection open until all have been made.
                        (reader, writer)
                    })
                    .unwrap(),
                );
            }
            let mut conns = Vec::new();
            for t in tasks {
                conns.push(t.await.unwrap());
            }
            assert_eq!(ok.get(), n);
            drop(conns);
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}
