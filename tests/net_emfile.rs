//! A server that runs out of file descriptors (`EMFILE` from `accept`) logs it once, stops
//! accepting instead of spinning, and accepts again once descriptors are freed.
//!
//! This binary holds a single test: it lowers the process's `RLIMIT_NOFILE`, which would
//! disturb any other test running beside it.

mod net_support;

use std::cell::Cell;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Mutex;

use asyncio::{Address, BaseProtocol, EventLoop, Protocol, ServerOptions, Transport};
use net_support::{run, wait_until, watchdog};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use socket2::{Domain, SockAddr, Socket, Type};

/// A `log` logger that keeps every record of the `asyncio` target.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "asyncio" {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

fn emfile_logs() -> usize {
    LOGGER
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("socket.accept() out of system resource"))
        .count()
}

/// Counts accepted connections and keeps their transports open.
struct Count(Rc<Cell<usize>>, Option<Transport>);
impl BaseProtocol for Count {}
impl Protocol for Count {
    fn connection_made(&mut self, transport: Transport) {
        self.0.set(self.0.get() + 1);
        self.1 = Some(transport);
    }
}

const CLIENTS: usize = 12;
const RESERVE: usize = 16;
/// Free descriptor numbers left under the lowered limit: fewer than `CLIENTS`.
const HEADROOM: u64 = 3;

#[test]
fn emfile_on_accept_logs_once_does_not_spin_and_recovers() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    watchdog(|| {
        run(|lp: EventLoop| async move {
            let accepted = Rc::new(Cell::new(0));
            let acc = accepted.clone();
            let server = lp
                .create_server(
                    move || Count(acc.clone(), None),
                    &["127.0.0.1"],
                    Some(0),
                    ServerOptions::new().backlog(64),
                )
                .await
                .unwrap();
            let addr = server.sockets()[0]
                .address
                .as_ref()
                .and_then(Address::as_inet)
                .unwrap();

            // Pre-open everything the test needs: the client sockets and a reserve of
            // descriptors to free later.
            let clients: Vec<Socket> = (0..CLIENTS)
                .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
                .collect();
            let reserve: Vec<OwnedFd> = (0..RESERVE)
                .map(|_| OwnedFd::from(std::fs::File::open("/dev/null").unwrap()))
                .collect();
            // The lowest free descriptor number: every number below it is in use.
            let probe = std::fs::File::open("/dev/null").unwrap();
            let lowest_free = probe.as_raw_fd() as u64;
            drop(probe);
            let original = getrlimit(Resource::Nofile);
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(lowest_free + HEADROOM),
                    maximum: original.maximum,
                },
            )
            .unwrap();

            // Connect from another thread with the pre-opened sockets (no new descriptors).
            let target = SockAddr::from(addr);
            let clients = std::thread::spawn(move || {
                for c in &clients {
                    c.connect(&target).unwrap();
                }
                clients
            })
            .join()
            .unwrap();

            wait_until("EMFILE logged", || emfile_logs() > 0).await;
            let got = accepted.get();
            assert!(got < CLIENTS, "only the headroom could be accepted ({got})");

            // Paused, not spinning: over a window the loop runs a bounded number of
            // iterations (a busy accept loop would run thousands).
            let before = lp.iteration_count();
            asyncio::sleep(0.3).await.unwrap();
            let during = lp.iteration_count() - before;
            assert!(during < 1000, "{during} iterations while paused");
            assert_eq!(emfile_logs(), 1);

            // Free descriptors: the server retries and accepts every remaining client.
            drop(reserve);
            wait_until("all accepted", || accepted.get() == CLIENTS).await;
            assert_eq!(emfile_logs(), 1, "logged once");

            setrlimit(Resource::Nofile, original).unwrap();
            let streams: Vec<TcpStream> = clients.into_iter().map(Into::into).collect();
            drop(streams);
            server.close();
            server.abort_clients();
            server.wait_closed().await.unwrap();
        })
    });
}
