//! A TCP echo server built on a [`Protocol`](asyncio::Protocol): every byte a client sends is
//! written back. Serves until SIGINT or SIGTERM (or `--max-seconds N`).
//!
//! ```text
//! cargo run --example echo_server -- --host 127.0.0.1 --port 8888 [--max-seconds N]
//! cargo run --example echo_client -- --port 8888 --message hello
//! ```

#[path = "common/server_args.rs"]
mod server_args;

use asyncio::{get_running_loop, BaseProtocol, Error, Protocol, ServerOptions, Transport};

// ANCHOR: protocol
/// Writes back whatever it receives, and stops reading from a client that does not read its
/// echoes: asyncio's flow-control pattern.
#[derive(Default)]
struct Echo {
    transport: Option<Transport>,
}

impl BaseProtocol for Echo {
    // The transport's write buffer went over its high-water mark (the client reads slower than
    // it sends): stop reading, so the buffer stops growing.
    fn pause_writing(&mut self) {
        if let Some(t) = &self.transport {
            t.pause_reading();
        }
    }

    // The buffer drained to its low-water mark: read again.
    fn resume_writing(&mut self) {
        if let Some(t) = &self.transport {
            t.resume_reading();
        }
    }
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            // Never blocks: what the socket does not take now is buffered by the transport,
            // and `pause_writing` above keeps that buffer bounded.
            let _ = t.write(data);
        }
    }
}
// ANCHOR_END: protocol

fn main() -> Result<(), Error> {
    let args = server_args::parse_args("echo_server")?;
    asyncio::run(async move {
        let lp = get_running_loop()?;
        // ANCHOR: serve
        let server = lp
            .create_server(
                Echo::default,
                &[args.host.as_str()],
                Some(args.port),
                ServerOptions::new(),
            )
            .await?;
        for s in server.sockets() {
            println!("echo_server: serving on {:?}", s.address);
        }
        // Stop on SIGINT / SIGTERM, or after --max-seconds.
        let stop = lp.create_future::<()>();
        for signum in [libc::SIGINT, libc::SIGTERM] {
            let stop = stop.clone();
            lp.add_signal_handler(signum, move || {
                if !stop.done() {
                    let _ = stop.set_result(());
                }
            })?;
        }
        if let Some(secs) = args.max_seconds {
            let stop = stop.clone();
            lp.call_later(secs, move || {
                if !stop.done() {
                    let _ = stop.set_result(());
                }
            })?;
        }
        stop.await?;
        server.close();
        server.abort_clients();
        server.wait_closed().await?;
        println!("echo_server: stopped");
        // ANCHOR_END: serve
        Ok(())
    })?
}
