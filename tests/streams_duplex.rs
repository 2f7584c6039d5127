//! `Stream`: one value that is both `futures::io::AsyncRead` and `AsyncWrite`, as crates built
//! on those traits take it, and splits back into a reader and a writer.

#[path = "net_support/mod.rs"]
mod net_support;

use asyncio::streams::{start_server, Stream, StreamReader, StreamWriter};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use net_support::{port_of, run, watchdog};

/// What a futures-io crate's entry point looks like (async-tungstenite's `client_async`, ...).
async fn ping<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, msg: &[u8]) -> Vec<u8> {
    io.write_all(msg).await.unwrap();
    io.flush().await.unwrap();
    let mut back = vec![0; msg.len()];
    io.read_exact(&mut back).await.unwrap();
    back
}

async fn echo(reader: StreamReader, writer: StreamWriter) {
    let mut s = Stream::from_parts(reader, writer);
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
}

#[test]
fn a_stream_is_read_and_write_in_one_value() {
    watchdog(|| {
        run(|_lp| async move {
            let server = start_server(echo, "127.0.0.1", 0).await.unwrap();
            let mut stream = Stream::connect("127.0.0.1", port_of(&server))
                .await
                .unwrap();
            for i in 0..5 {
                let msg = format!("message {i}");
                assert_eq!(ping(&mut stream, msg.as_bytes()).await, msg.as_bytes());
            }
            // The asyncio API is still there through the halves.
            stream.writer().write(b"line\n").unwrap();
            assert_eq!(stream.reader().readline().await.unwrap(), b"line\n");
            // Split: the halves work on their own.
            let (reader, writer) = stream.into_split();
            writer.write(b"split\n").unwrap();
            writer.drain().await.unwrap();
            assert_eq!(reader.readline().await.unwrap(), b"split\n");
            // close() on the joined stream sends EOF: the echo server ends, we read EOF.
            let mut stream = Stream::from_parts(reader, writer);
            stream.close().await.unwrap();
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            server.close();
        });
    });
}
