//! A TCP echo server built on streams: `start_server` runs one task per client, reading lines
//! with a `StreamReader` and writing them back with a `StreamWriter`. Serves until SIGINT or
//! SIGTERM (or `--max-seconds N`).
//!
//! ```text
//! cargo run --example echo_server_streams -- --host 127.0.0.1 --port 8888 [--max-seconds N]
//! cargo run --example echo_client -- --port 8888 --message hello
//! ```

#[path = "common/server_args.rs"]
mod server_args;

use asyncio::streams::{start_server, StreamReader, StreamWriter};
use asyncio::{get_running_loop, Error, ExtraInfo};

// ANCHOR: handler
/// Echoes lines until the client closes; dropping the writer closes the connection.
async fn handle(reader: StreamReader, writer: StreamWriter) {
    let peer = match writer.get_extra_info("peername") {
        Some(ExtraInfo::Address(a)) => format!("{a:?}"),
        _ => "?".into(),
    };
    loop {
        match reader.readline().await {
            Ok(line) if !line.is_empty() => {
                if writer.write(&line).is_err() || writer.drain().await.is_err() {
                    break;
                }
            }
            Ok(_) => break, // EOF
            Err(e) => {
                eprintln!("echo_server_streams: {peer}: {e}");
                break;
            }
        }
    }
}
// ANCHOR_END: handler

fn main() -> Result<(), Error> {
    let args = server_args::parse_args("echo_server_streams")?;
    asyncio::run(async move {
        let lp = get_running_loop()?;
        // ANCHOR: serve
        let server = start_server(handle, &args.host, args.port).await?;
        for s in server.sockets() {
            println!("echo_server_streams: serving on {:?}", s.address);
        }
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
        println!("echo_server_streams: stopped");
        // ANCHOR_END: serve
        Ok(())
    })?
}
