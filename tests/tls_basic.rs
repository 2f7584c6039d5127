//! TLS connections and servers: echo over TLS 1.2 and 1.3, extra info, ALPN, BufferedProtocol,
//! streams, close vs abort.

mod net_support;
mod tls_support;

use asyncio::tls::TlsVersion;
use asyncio::{ConnectOptions, ExtraInfo, ServerOptions};
use net_support::{port_of, run, wait_until, watchdog, Recorder};
use tls_support::{only, Pki};

fn text(s: &str) -> Option<ExtraInfo> {
    Some(ExtraInfo::Text(s.to_owned()))
}

fn echo_over(version: TlsVersion, name: &'static str) {
    watchdog(move || {
        run(|lp| async move {
            let pki = Pki::new("test CA");
            let server = lp
                .create_server(
                    Recorder::echo,
                    &["127.0.0.1"],
                    Some(0),
                    ServerOptions::new().ssl(pki.server()),
                )
                .await
                .unwrap();
            let port = port_of(&server);
            let client = Recorder::default();
            let c = client.clone();
            // server_hostname defaults to the host: the certificate names 127.0.0.1 too.
            let options = ConnectOptions::new().ssl(pki.client_with(only(version)));
            let (t, _) = lp
                .create_connection(move || c, Some("127.0.0.1"), Some(port), options)
                .await
                .unwrap();
            assert!(
                client.transport().ptr_eq(&t),
                "connection_made got the TLS transport"
            );
            t.write(b"hello ").unwrap();
            t.writelines([&b"over "[..], b"TLS"]).unwrap();
            wait_until("the echo", || client.len() == 14).await;
            assert_eq!(client.seen.borrow().data, b"hello over TLS");
            assert_eq!(t.get_extra_info("tls_version"), text(name));
            assert!(
                matches!(t.get_extra_info("cipher"), Some(ExtraInfo::Text(c)) if !c.is_empty())
            );
            assert!(
                matches!(t.get_extra_info("peercert"), Some(ExtraInfo::Bytes(der)) if der.len() > 100)
            );
            assert_eq!(t.get_extra_info("compression"), None);
            assert_eq!(t.get_extra_info("alpn_protocol"), None);
            assert_eq!(t.get_extra_info("server_hostname"), text("127.0.0.1"));
            // The socket's keys come through.
            assert!(
                matches!(t.get_extra_info("peername"), Some(ExtraInfo::Address(a)) if a.as_inet().unwrap().port() == port)
            );
            assert!(matches!(t.get_extra_info("socket"), Some(ExtraInfo::Fd(_))));
            assert!(!t.can_write_eof());
            assert!(t.is_reading());
            t.close();
            assert!(t.is_closing());
            wait_until("connection_lost", || client.lost()).await;
            assert!(client.seen.borrow().lost.as_ref().unwrap().is_none());
            assert_eq!(client.seen.borrow().lost_calls, 1);
            server.close();
            server.wait_closed().await.unwrap();
        })
    });
}

#[test]
fn echo_over_tls13() {
    echo_over(TlsVersion::Tls13, "TLSv1.3");
}

#[test]
fn echo_over_tls12() {
    echo_over(TlsVersion::Tls12, "TLSv1.2");
}
