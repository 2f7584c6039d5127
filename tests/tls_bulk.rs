//! TLS under load: 100 MB each way at once with slow readers (the buffers stay bounded), and
//! many concurrent TLS connections.

mod net_support;
mod tls_support;

use std::cell::RefCell;
use std::rc::Rc;

use asyncio::transports::{DEFAULT_HIGH_WATER, MAX_READ_SIZE};
use asyncio::{BaseProtocol, ConnectOptions, EventLoop, Protocol, ServerOptions, Transport};
use net_support::{loopback_server, run, wait_until, watchdog, Recorder};
use tls_support::Pki;

const TOTAL: usize = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// The byte stream both sides send: byte `i` is `i % 251`. Long enough to cut any chunk from.
fn pattern() -> Rc<Vec<u8>> {
    Rc::new((0..251 * 1200).map(|i| (i % 251) as u8).collect())
}

/// What one end saw.
#[derive(Default)]
struct Stats {
    transport: Option<Transport>,
    sent: usize,
    received: usize,
    pauses: u32,
    max_write_buffer: usize,
    max_chunk: usize,
    lost: bool,
}

/// Sends `TOTAL` bytes as fast as flow control lets it, and reads slowly: after each chunk it
/// pauses reading and resumes on the next iteration (from the start it stays paused until
/// the test resumes it, so the peer's sender must hit its high-water mark).
struct Bulk {
    lp: EventLoop,
    stats: Rc<RefCell<Stats>>,
    pattern: Rc<Vec<u8>>,
}

impl Bulk {
    fn pump(&mut self) {
        let mut st = self.stats.borrow_mut();
        let t = st.transport.clone().unwrap();
        let (_, high) = t.get_write_buffer_limits();
        while st.sent < TOTAL && t.get_write_buffer_size() <= high && !t.is_closing() {
            let n = CHUNK.min(TOTAL - st.sent);
            let off = st.sent % 251;
            t.write(&self.pattern[off..off + n]).unwrap();
            st.sent += n;
            st.max_write_buffer = st.max_write_buffer.max(t.get_write_buffer_size());
        }
    }
}

impl BaseProtocol for Bulk {
    fn pause_writing(&mut self) {
        self.stats.borrow_mut().pauses += 1;
    }
    fn resume_writing(&mut self) {
        self.pump();
    }
    fn connection_lost(&mut self, exc: Option<asyncio::Error>) {
        assert!(exc.is_none(), "{exc:?}");
        self.stats.borrow_mut().lost = true;
    }
}

impl Protocol for Bulk {
    fn connection_made(&mut self, transport: Transport) {
        transport.pause_reading();
        self.stats.borrow_mut().transport = Some(transport);
        self.pump();
    }
    fn data_received(&mut self, data: &[u8]) {
        let mut st = self.stats.borrow_mut();
        let t = st.transport.clone().unwrap();
        assert!(t.is_reading(), "data arrived while reading was paused");
        let off = st.received % 251;
        assert!(data == &self.pattern[off..off + data.len()], "corrupt data");
        st.received += data.len();
        st.max_chunk = st.max_chunk.max(data.len());
        // Slow: one chunk per iteration.
        t.pause_reading();
        let _ = self.lp.call_soon(move || t.resume_reading());
    }
}

#[test]
fn hundred_megabytes_each_way_with_slow_readers() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let pattern = pattern();
            let server_stats = Rc::new(RefCell::new(Stats::default()));
            let (s, p, l) = (server_stats.clone(), pattern.clone(), lp.clone());
            let (server, port) = loopback_server(
                &lp,
                move || Bulk {
                    lp: l.clone(),
                    stats: s.clone(),
                    pattern: p.clone(),
                },
                ServerOptions::new().ssl(pki.server()),
            )
            .await;
            let client_stats = Rc::new(RefCell::new(Stats::default()));
            let (c, p, l) = (client_stats.clone(), pattern.clone(), lp.clone());
            let options = ConnectOptions::new()
                .ssl(pki.client())
                .server_hostname("localhost");
            let (client, _) = lp
                .create_connection(
                    move || Bulk {
                        lp: l,
                        stats: c,
                        pattern: p,
                    },
                    Some("127.0.0.1"),
                    Some(port),
                    options,
                )
                .await
                .unwrap();
            wait_until("the server's connection", || {
                server_stats.borrow().transport.is_some()
            })
            .await;
            // Nobody reads yet: both senders fill the socket buffers and must pause.
            wait_until("both senders to pause", || {
                client_stats.borrow().pauses > 0 && server_stats.borrow().pauses > 0
            })
            .await;
            for st in [&client_stats, &server_stats] {
                let (sent, buffered) = {
                    let st = st.borrow();
                    (
                        st.sent,
                        st.transport.as_ref().unwrap().get_write_buffer_size(),
                    )
                };
                assert!(sent < TOTAL, "paused before the end");
                assert!(
                    buffered > DEFAULT_HIGH_WATER,
                    "paused over the high-water mark"
                );
            }
            client.resume_reading();
            server_stats
                .borrow()
                .transport
                .as_ref()
                .unwrap()
                .resume_reading();
            for _ in 0..60_000 {
                let done = |s: &Rc<RefCell<Stats>>| s.borrow().received == TOTAL;
                if done(&client_stats) && done(&server_stats) {
                    break;
                }
                asyncio::sleep(0.001).await.unwrap();
            }
            for (name, st) in [("client", &client_stats), ("server", &server_stats)] {
                let st = st.borrow();
                assert_eq!(st.received, TOTAL, "{name} received everything");
                assert_eq!(st.sent, TOTAL);
                // Bounded memory: the sender never buffered more than the high-water mark and
                // one write; the receiver got at most one socket read (plus a record) at a time.
                assert!(
                    st.max_write_buffer <= DEFAULT_HIGH_WATER + CHUNK + 1024,
                    "{name} write buffer reached {}",
                    st.max_write_buffer
                );
                assert!(
                    st.max_chunk <= MAX_READ_SIZE + 17 * 1024,
                    "{name} got {} bytes at once",
                    st.max_chunk
                );
            }
            client.close();
            wait_until("both ends lost", || {
                client_stats.borrow().lost && server_stats.borrow().lost
            })
            .await;
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

/// 1,000 concurrent TLS connections (about 4 s in a debug build: Cargo.toml builds ring and
/// rustls optimised in debug builds).
const CONCURRENT: usize = 1000;

#[test]
fn many_concurrent_tls_connections() {
    watchdog(|| {
        run(|lp| async move {
            let pki = Pki::new("CA");
            let (server, port) = loopback_server(
                &lp,
                Recorder::echo,
                ServerOptions::new().ssl(pki.server()).backlog(2048),
            )
            .await;
            let ctx = pki.client();
            let mut tasks = Vec::new();
            for i in 0..CONCURRENT {
                let (lp2, ctx) = (lp.clone(), ctx.clone());
                tasks.push(
                    lp.create_task(async move {
                        let client = Recorder::default();
                        let c = client.clone();
                        let options = ConnectOptions::new().ssl(ctx).server_hostname("localhost");
                        let (t, _) = lp2
                            .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
                            .await
                            .unwrap();
                        let msg = format!("connection {i}");
                        t.write(msg.as_bytes()).unwrap();
                        wait_until("the echo", || client.len() == msg.len()).await;
                        assert_eq!(client.seen.borrow().data, msg.as_bytes());
                        (t, client)
                    })
                    .unwrap(),
                );
            }
            let mut open = Vec::new();
            for t in tasks {
                open.push(t.await.unwrap());
            }
            // All were open at once.
            assert_eq!(server.connection_count(), CONCURRENT);
            for (t, _) in &open {
                t.close();
            }
            for (_, c) in &open {
                wait_until("connection_lost", || c.lost()).await;
            }
            wait_until("the server's side", || server.connection_count() == 0).await;
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}
