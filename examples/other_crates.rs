//! Using other crates on this loop: futures-io and smol-rs crates as they are, tokio's reactor
//! crates through `async_compat::Compat`.
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
    let port = server.sockets()[0]
        .address
        .as_ref()
        .and_then(Address::as_inet)
        .map(|a| a.port())
        .unwrap_or(0);
    Ok((server, port))
}

// ANCHOR: futures_io
/// A function written for any futures-io connection, as crates built on
/// `futures::io` (async-tungstenite, async-h1, ...) are.
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
