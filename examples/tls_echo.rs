//! TLS with streams: an echo server and its client on 127.0.0.1, then a STARTTLS upgrade of a
//! plain connection. The certificates (a CA and a server certificate for "localhost") are made
//! at run time with rcgen; nothing is read from disk. Runs to completion by itself.
//!
//! ```text
//! cargo run --example tls_echo
//! ```

use asyncio::streams::{open_connection, open_connection_with, start_server, start_server_with};
use asyncio::streams::{StreamReader, StreamWriter};
use asyncio::tls::TlsContext;
use asyncio::{ConnectOptions, Error, ExtraInfo, ServerOptions};

/// A throw-away CA and a server certificate for "localhost", as PEM: (CA, certificate, key).
fn make_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_pem = ca.self_signed(&ca_key).expect("CA certificate").pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf parameters");
    let key = KeyPair::generate().expect("leaf key");
    let cert = leaf.signed_by(&key, &issuer).expect("leaf certificate");
    (ca_pem, cert.pem(), key.serialize_pem())
}

fn text(writer: &StreamWriter, key: &str) -> String {
    match writer.get_extra_info(key) {
        Some(ExtraInfo::Text(t)) => t,
        _ => "-".into(),
    }
}

// ANCHOR: handler
/// Echoes lines until the client closes.
async fn echo(reader: StreamReader, writer: StreamWriter) {
    while let Ok(line) = reader.readline().await {
        if line.is_empty() || writer.write(&line).is_err() || writer.drain().await.is_err() {
            break;
        }
    }
}
// ANCHOR_END: handler

// ANCHOR: starttls_server
/// A plain-text server that upgrades to TLS when the client says "STARTTLS".
async fn starttls_server(reader: StreamReader, writer: StreamWriter, ctx: TlsContext) {
    let Ok(line) = reader.readline().await else {
        return;
    };
    if line != b"STARTTLS\n" {
        return;
    }
    let _ = writer.write(b"220 go ahead\n");
    if writer.start_tls(&ctx, None).await.is_err() {
        return;
    }
    echo(reader, writer).await;
}
// ANCHOR_END: starttls_server

fn main() -> Result<(), Error> {
    let (ca_pem, cert_pem, key_pem) = make_certificates();
    asyncio::run(async move {
        // ANCHOR: contexts
        let server_ctx = TlsContext::server()
            .load_cert_chain_pem(cert_pem.as_bytes(), key_pem.as_bytes())?
            .alpn_protocols(&["echo/1"])
            .build()?;
        // Trusts our CA only (without it, the bundled Mozilla roots are used).
        let client_ctx = TlsContext::client()
            .load_verify_locations_pem(ca_pem.as_bytes())?
            .alpn_protocols(&["echo/1"])
            .build()?;
        // ANCHOR_END: contexts

        // ANCHOR: server
        let server = start_server_with(
            echo,
            &["127.0.0.1"],
            Some(0),
            64 * 1024,
            ServerOptions::new().ssl(server_ctx.clone()),
        )
        .await?;
        // ANCHOR_END: server
        let port = server.sockets()[0]
            .address
            .as_ref()
            .and_then(|a| a.as_inet())
            .unwrap()
            .port();

        // ANCHOR: client
        let (reader, writer) = open_connection_with(
            Some("127.0.0.1"),
            Some(port),
            64 * 1024,
            ConnectOptions::new()
                .ssl(client_ctx.clone())
                .server_hostname("localhost"),
        )
        .await?;
        writer.write(b"hello over TLS\n")?;
        let answer = reader.readline().await?;
        // ANCHOR_END: client
        println!(
            "tls_echo: {} with {} ({}, ALPN {}): {:?}",
            text(&writer, "server_hostname"),
            text(&writer, "tls_version"),
            text(&writer, "cipher"),
            text(&writer, "alpn_protocol"),
            String::from_utf8_lossy(&answer).trim_end()
        );
        writer.close();
        writer.wait_closed().await?;
        server.close();
        server.wait_closed().await?;

        // STARTTLS: plain text first, then an upgrade of the same connection.
        let ctx = server_ctx.clone();
        let plain = start_server(
            move |r, w| starttls_server(r, w, ctx.clone()),
            "127.0.0.1",
            0,
        )
        .await?;
        let port = plain.sockets()[0]
            .address
            .as_ref()
            .and_then(|a| a.as_inet())
            .unwrap()
            .port();
        // ANCHOR: starttls_client
        let (reader, writer) = open_connection("127.0.0.1", port).await?;
        writer.write(b"STARTTLS\n")?;
        let go = reader.readline().await?;
        writer.start_tls(&client_ctx, Some("localhost")).await?;
        writer.write(b"now encrypted\n")?;
        let answer = reader.readline().await?;
        // ANCHOR_END: starttls_client
        println!(
            "tls_echo: STARTTLS ({}) then {}: {:?}",
            String::from_utf8_lossy(&go).trim_end(),
            text(&writer, "tls_version"),
            String::from_utf8_lossy(&answer).trim_end()
        );
        writer.close();
        writer.wait_closed().await?;
        plain.close();
        plain.wait_closed().await?;
        Ok(())
    })?
}
