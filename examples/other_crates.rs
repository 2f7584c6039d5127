//! Using other crates on this loop: futures-io crates (async-tungstenite for WebSockets) and
//! smol-rs crates as they are, tokio's reactor crates through `async_compat::Compat`.
//!
//! ```text
//! cargo run --example other_crates
//! ```
//!
//! Each part asserts what it shows, so the example fails if the behaviour changes.

use std::time::Duration;

use asyncio::streams::{start_server, Stream, StreamReader, StreamWriter};
use asyncio::{Address, Error};

fn main() -> Result<(), Error> {
    asyncio::run(async {
        futures_io().await?;
        websocket().await?;
        smol_crates().await?;
        tokio_crates().await?;
        Ok(())
    })?
}

async fn echo(reader: StreamReader, mut writer: StreamWriter) {
    let _ = futures::io::copy(reader, &mut writer).await;
}

async fn echo_server() -> Result<(asyncio::Server, u16), Error> {
    let server = start_server(echo, "127.0.0.1", 0).await?;
    let port = port_of(&server);
    Ok((server, port))
}

fn port_of(server: &asyncio::Server) -> u16 {
    server.sockets()[0]
        .address
        .as_ref()
        .and_then(Address::as_inet)
        .map(|a| a.port())
        .unwrap_or(0)
}

// ANCHOR: futures_io
/// A function written for any futures-io connection, as crates built on
/// `futures::io` (async-h1, futures-rustls, ...) are.
async fn greet<S>(io: &mut S) -> std::io::Result<Vec<u8>>
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    io.write_all(b"hello").await?;
    let mut back = vec![0; 5];
    io.read_exact(&mut back).await?;
    Ok(back)
}

async fn futures_io() -> Result<(), Error> {
    let (server, port) = echo_server().await?;
    // One value that is both AsyncRead and AsyncWrite.
    let mut stream = Stream::connect("127.0.0.1", port).await?;
    let back = greet(&mut stream).await?;
    assert_eq!(back, b"hello");
    println!("futures-io: {:?}", String::from_utf8_lossy(&back));
    server.close();
    Ok(())
}
// ANCHOR_END: futures_io

// ANCHOR: websocket
/// async-tungstenite, as it is (futures-io flavour, no tokio): a WebSocket server and client on
/// this loop, each over a `Stream`.
async fn websocket() -> Result<(), Error> {
    use async_tungstenite::tungstenite::Message;
    use futures::StreamExt;

    // Echoes text and binary messages until the client closes.
    let server = start_server(
        |reader, writer| async move {
            let stream = Stream::from_parts(reader, writer);
            let Ok(mut ws) = async_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
        },
        "127.0.0.1",
        0,
    )
    .await?;
    let port = port_of(&server);
    let stream = Stream::connect("127.0.0.1", port).await?;
    let url = format!("ws://127.0.0.1:{port}/");
    let (mut ws, _response) = async_tungstenite::client_async(url, stream)
        .await
        .map_err(ws_error)?;
    ws.send(Message::text("hello")).await.map_err(ws_error)?;
    let echoed = ws.next().await.and_then(Result::ok);
    assert_eq!(echoed, Some(Message::text("hello")));
    ws.close(None).await.map_err(ws_error)?;
    println!("websocket: {echoed:?}");
    server.close();
    Ok(())
}

fn ws_error(e: async_tungstenite::tungstenite::Error) -> Error {
    Error::new(asyncio::ErrorKind::Io, e.to_string())
}
// ANCHOR_END: websocket

// ANCHOR: smol
async fn smol_crates() -> Result<(), Error> {
    let lp = asyncio::get_running_loop()?;
    // async-channel and async-io's Timer (through the smol facade), on asyncio tasks.
    let (tx, rx) = smol::channel::bounded::<u32>(1);
    lp.create_task(async move {
        for i in 1..=3 {
            smol::Timer::after(Duration::from_millis(1)).await;
            let _ = tx.send(i).await;
        }
    })?;
    let mut got = Vec::new();
    while let Ok(v) = rx.recv().await {
        got.push(v);
    }
    assert_eq!(got, [1, 2, 3]);
    println!("smol crates: received {got:?}");
    Ok(())
}
// ANCHOR_END: smol

// ANCHOR: tokio
async fn tokio_crates() -> Result<(), Error> {
    let (server, port) = echo_server().await?;
    // tokio::net needs tokio's reactor: Compat provides one around each poll. Create tokio's
    // futures inside the wrapped block (some look for the runtime when they are created).
    let back = async_compat::Compat::new(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"from tokio").await?;
        s.shutdown().await?;
        let mut back = Vec::new();
        s.read_to_end(&mut back).await?;
        Ok::<_, std::io::Error>(back)
    })
    .await?;
    assert_eq!(back, b"from tokio");
    println!(
        "tokio through async-compat: {:?}",
        String::from_utf8_lossy(&back)
    );
    server.close();
    Ok(())
}
// ANCHOR_END: tokio
