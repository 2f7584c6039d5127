//! A stream client: connects to an echo server, sends one line and prints the echo.
//!
//! ```text
//! cargo run --example echo_client -- [--host 127.0.0.1] [--port 8888] [--message TEXT]
//! cargo run --example echo_client -- --serve-locally    # starts its own echo server first
//! ```

use asyncio::streams::{open_connection, start_server, StreamReader, StreamWriter};
use asyncio::{Address, Error, ErrorKind};

/// The echo handler used with `--serve-locally`.
async fn echo(reader: StreamReader, writer: StreamWriter) {
    while let Ok(line) = reader.readline().await {
        if line.is_empty() || writer.write(&line).is_err() || writer.drain().await.is_err() {
            break;
        }
    }
}

// ANCHOR: client
async fn client(host: &str, port: u16, message: &str) -> Result<String, Error> {
    let (reader, writer) = open_connection(host, port).await?;
    writer.write(format!("{message}\n").as_bytes())?;
    writer.drain().await?;
    let line = reader.readline().await?;
    writer.close();
    writer.wait_closed().await?;
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}
// ANCHOR_END: client

fn main() -> Result<(), Error> {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 8888u16;
    let mut message = "hello, echo".to_owned();
    let mut serve_locally = false;
    let bad = |what: &str| Error::new(ErrorKind::InvalidArgument, what.to_owned());
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--serve-locally" => serve_locally = true,
            "--host" => host = it.next().ok_or_else(|| bad("--host needs a value"))?,
            "--port" => {
                port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| bad("bad --port"))?
            }
            "--message" => message = it.next().ok_or_else(|| bad("--message needs a value"))?,
            _ => {
                return Err(bad(
                    "usage: echo_client [--host H] [--port P] [--message M] [--serve-locally]",
                ))
            }
        }
    }
    asyncio::run(async move {
        let server = if serve_locally {
            let server = start_server(echo, &host, 0).await?;
            port = server.sockets()[0]
                .address
                .as_ref()
                .and_then(Address::as_inet)
                .map_or(port, |a| a.port());
            Some(server)
        } else {
            None
        };
        let echoed = client(&host, port, &message).await?;
        println!("sent: {message}");
        println!("echo: {echoed}");
        if let Some(server) = server {
            server.close();
            server.wait_closed().await?;
        }
        Ok(())
    })?
}
