//! `create_connection` with Happy Eyeballs on (`ConnectOptions::happy_eyeballs_delay`): the
//! staggered race itself is unit-tested in `src/net/staggered.rs` on a virtual clock; here the
//! option is exercised end to end on loopback.

use std::net::TcpListener;
use std::time::Duration;

use asyncio::{BaseProtocol, ConnectOptions, ErrorKind, EventLoop, Protocol};

struct Quiet;
impl BaseProtocol for Quiet {}
impl Protocol for Quiet {}

/// Runs `f` on a thread and fails the test if it takes longer than 30 s.
fn watchdog(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() && !t.is_finished() {
        panic!("test did not finish within 30 s");
    }
    t.join().unwrap();
}

#[test]
fn connects_with_happy_eyeballs_and_interleave() {
    watchdog(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lp = EventLoop::new().unwrap();
        let l2 = lp.clone();
        let peer = lp
            .run_until_complete(async move {
                let options = ConnectOptions::new()
                    .happy_eyeballs_delay(0.25)
                    .interleave(1);
                let (t, _p) = l2
                    .create_connection(|| Quiet, Some("127.0.0.1"), Some(port), options)
                    .await?;
                let peer = format!("{:?}", t.get_extra_info("peername"));
                t.close();
                Ok::<_, asyncio::Error>(peer)
            })
            .unwrap()
            .unwrap();
        assert!(peer.contains(&port.to_string()), "{peer}");
        let (_conn, _) = listener.accept().unwrap();
        lp.close().unwrap();
    });
}

#[test]
fn a_refused_race_reports_the_refusal_and_nan_is_rejected() {
    watchdog(|| {
        // A port that was just free: nobody listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let lp = EventLoop::new().unwrap();
        let l2 = lp.clone();
        let (refused, nan) = lp
            .run_until_complete(async move {
                let refused = l2
                    .create_connection(
                        || Quiet,
                        Some("127.0.0.1"),
                        Some(port),
                        ConnectOptions::new().happy_eyeballs_delay(0.0),
                    )
                    .await
                    .map(|_| ())
                    .unwrap_err();
                let nan = l2
                    .create_connection(
                        || Quiet,
                        Some("127.0.0.1"),
                        Some(port),
                        ConnectOptions::new().happy_eyeballs_delay(f64::NAN),
                    )
                    .await
                    .map(|_| ())
                    .unwrap_err();
                (refused, nan)
            })
            .unwrap();
        assert_eq!(refused.kind(), ErrorKind::Io);
        assert_eq!(
            refused.io_error_kind(),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
        assert_eq!(nan.kind(), ErrorKind::InvalidArgument);
        lp.close().unwrap();
    });
}
