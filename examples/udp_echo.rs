//! A UDP echo server and its client in one process: the server is a
//! [`DatagramProtocol`](asyncio::DatagramProtocol) on an endpoint from
//! `create_datagram_endpoint` that sends each datagram back; the client uses the loop's
//! `sock_sendto` / `sock_recvfrom` on a nonblocking `UdpSocket`. Exits by itself.
//! `unix_datagram` does the same over Unix datagram sockets, with endpoints on both sides.
//!
//! ```text
//! cargo run --example udp_echo
//! ```

use std::net::UdpSocket;

use asyncio::{
    get_running_loop, Address, BaseProtocol, DatagramOptions, DatagramProtocol, DatagramTransport,
    Error,
};

// ANCHOR: protocol
/// Sends every datagram back to where it came from.
#[derive(Default)]
struct UdpEcho {
    transport: Option<DatagramTransport>,
}

impl BaseProtocol for UdpEcho {}

impl DatagramProtocol for UdpEcho {
    fn connection_made(&mut self, transport: DatagramTransport) {
        self.transport = Some(transport);
    }

    fn datagram_received(&mut self, data: &[u8], addr: Address) {
        if let Some(t) = &self.transport {
            // An error here (a sender that cannot be answered) drops this one reply.
            let _ = t.sendto(data, addr);
        }
    }
}
// ANCHOR_END: protocol

fn main() -> Result<(), Error> {
    asyncio::run(async {
        let lp = get_running_loop()?;
        // ANCHOR: main
        let options = DatagramOptions::new().local_addr(("127.0.0.1", 0));
        let (server, _) = lp
            .create_datagram_endpoint(UdpEcho::default, options)
            .await?;
        let server_addr = server.sockname().and_then(|a| a.as_inet()).expect("bound");
        println!("udp_echo: server on {server_addr}");

        let client = UdpSocket::bind("127.0.0.1:0")?;
        client.set_nonblocking(true)?;
        for message in ["one", "two", "three"] {
            lp.sock_sendto(&client, message.as_bytes(), server_addr)
                .await?;
            let (data, from) = lp.sock_recvfrom(&client, 1024).await?;
            println!(
                "udp_echo: sent {message:?}, got {:?} from {:?}",
                String::from_utf8_lossy(&data),
                from.as_socket()
            );
            assert_eq!(data, message.as_bytes());
        }
        server.close();
        // ANCHOR_END: main
        Ok(())
    })?
}
