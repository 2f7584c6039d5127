//! A Unix datagram echo server and client in one process, both endpoints from
//! `create_datagram_endpoint`: the server is bound to a socket path; the client binds its own
//! path (an unnamed client could send, but could not be answered) and connects to the server's.
//! The client sends its messages one at a time and closes after the last echo. The socket files
//! live in a temporary directory, removed at the end. Exits by itself.
//!
//! ```text
//! cargo run --example unix_datagram
//! ```

use std::collections::VecDeque;
use std::path::PathBuf;

use asyncio::{
    get_running_loop, Address, BaseProtocol, DatagramOptions, DatagramProtocol, DatagramTransport,
    Error, LoopFuture,
};

/// Sends every datagram back to the path it came from.
#[derive(Default)]
struct Echo {
    transport: Option<DatagramTransport>,
}

impl BaseProtocol for Echo {}

impl DatagramProtocol for Echo {
    fn connection_made(&mut self, transport: DatagramTransport) {
        self.transport = Some(transport);
    }

    fn datagram_received(&mut self, data: &[u8], addr: Address) {
        if let Some(t) = &self.transport {
            if let Err(e) = t.sendto(data, addr) {
                // An unnamed sender (Address::Unix(None)) cannot be answered.
                println!("unix_datagram: server cannot answer: {e}");
            }
        }
    }
}

// ANCHOR: client
/// Sends its messages one at a time, each after the echo of the previous one, then closes.
struct Client {
    transport: Option<DatagramTransport>,
    messages: VecDeque<&'static str>,
    done: LoopFuture<()>,
}

impl Client {
    fn send_next(&mut self) {
        let Some(t) = &self.transport else { return };
        match self.messages.pop_front() {
            // Connected: `None` sends to the server's path.
            Some(message) => {
                if let Err(e) = t.sendto(message.as_bytes(), None) {
                    println!("unix_datagram: send failed: {e}");
                    t.close();
                }
            }
            None => t.close(),
        }
    }
}

impl BaseProtocol for Client {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        let _ = self.done.set_result(());
    }
}

impl DatagramProtocol for Client {
    fn connection_made(&mut self, transport: DatagramTransport) {
        self.transport = Some(transport);
        self.send_next();
    }

    fn datagram_received(&mut self, data: &[u8], addr: Address) {
        println!(
            "unix_datagram: got {:?} from {addr}",
            String::from_utf8_lossy(data)
        );
        self.send_next();
    }

    fn error_received(&mut self, exc: Error) {
        println!("unix_datagram: error: {exc}");
    }
}
// ANCHOR_END: client

/// The example's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> Result<(), Error> {
    let dir =
        TempDir(std::env::temp_dir().join(format!("asyncio-unix-datagram-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let server_path = dir.0.join("server.sock");
    let client_path = dir.0.join("client.sock");
    asyncio::run(async move {
        let lp = get_running_loop()?;
        // ANCHOR: main
        let options = DatagramOptions::new().local_addr(server_path.as_path());
        let (server, _) = lp.create_datagram_endpoint(Echo::default, options).await?;
        println!("unix_datagram: server on {}", server_path.display());

        let done = lp.create_future();
        let client = Client {
            transport: None,
            messages: VecDeque::from(["one", "two", "three"]),
            done: done.clone(),
        };
        let options = DatagramOptions::new()
            .local_addr(client_path.as_path())
            .remote_addr(server_path.as_path());
        lp.create_datagram_endpoint(move || client, options).await?;
        done.await?;
        server.close();
        // ANCHOR_END: main
        Ok(())
    })?
}
