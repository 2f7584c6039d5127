//! A TCP echo server built on a [`Protocol`](asyncio::Protocol): every byte a client sends is
//! written back. Serves until SIGINT or SIGTERM (or `--max-seconds N`).
//!
//! ```text
//! cargo run --example echo_server -- --host 127.0.0.1 --port 8888 [--max-seconds N]
//! cargo run --example echo_client -- --port 8888 --message hello
//! ```

use asyncio::{
    get_running_loop, BaseProtocol, Error, ErrorKind, Protocol, ServerOptions, Transport,
};

// ANCHOR: protocol
/// Writes back whatever it receives.
#[derive(Default)]
struct Echo {
    transport: Option<Transport>,
}

impl BaseProtocol for Echo {}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            // Never blocks: what the socket does not take now is buffered by the transport.
            let _ = t.write(data);
        }
    }
}
// ANCHOR_END: protocol

/// `--host`, `--port` and `--max-seconds`.
struct Args {
    host: String,
    port: u16,
    max_seconds: Option<f64>,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 8888,
        max_seconds: None,
    };
    let mut it = std::env::args().skip(1);
    let bad = |what: &str| Error::new(ErrorKind::InvalidArgument, what.to_owned());
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| bad("a flag needs a value"))?;
        match flag.as_str() {
            "--host" => args.host = value,
            "--port" => args.port = value.parse().map_err(|_| bad("bad --port"))?,
            "--max-seconds" => {
                args.max_seconds = Some(value.parse().map_err(|_| bad("bad --max-seconds"))?)
            }
            _ => {
                return Err(bad(
                    "usage: echo_server [--host H] [--port P] [--max-seconds N]",
                ))
            }
        }
    }
    Ok(args)
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
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
