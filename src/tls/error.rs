//! TLS failures as [`ErrorKind::Tls`] errors whose message names the reason, in the words a
//! Python user knows from `ssl.SSLError` ("certificate verify failed: ...").

use rustls::{AlertDescription as Alert, CertificateError as Cert, PeerIncompatible};

use crate::error::{Error, ErrorKind};

/// The [`ErrorKind::Tls`] error for a rustls failure; `hostname` is the name the client
/// checked the server's certificate against, if any.
pub(crate) fn tls_error(e: &rustls::Error, hostname: Option<&str>) -> Error {
    Error::new(ErrorKind::Tls, reason(e, hostname)).with_source(e.clone())
}

/// An [`ErrorKind::Tls`] error with this message.
pub(crate) fn tls_error_msg(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Tls, message)
}

fn reason(e: &rustls::Error, hostname: Option<&str>) -> String {
    use rustls::Error as E;
    const VERIFY: &str = "certificate verify failed";
    match e {
        E::InvalidCertificate(c) => match c {
            Cert::UnknownIssuer => {
                format!("{VERIFY}: unknown issuer (unable to get local issuer certificate)")
            }
            Cert::Expired | Cert::ExpiredContext { .. } => {
                format!("{VERIFY}: certificate has expired")
            }
            Cert::NotValidYet | Cert::NotValidYetContext { .. } => {
                format!("{VERIFY}: certificate is not yet valid")
            }
            Cert::NotValidForName | Cert::NotValidForNameContext { .. } => format!(
                "{VERIFY}: hostname mismatch, certificate is not valid for '{}'",
                hostname.unwrap_or("?")
            ),
            other => format!("{VERIFY}: {other:?}"),
        },
        E::NoCertificatesPresented => {
            "handshake failure: peer did not return a certificate (client certificate required)"
                .into()
        }
        E::AlertReceived(a) => alert(*a),
        E::PeerIncompatible(p) => match p {
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled => {
                format!("unsupported protocol version: no TLS version in common ({p:?})")
            }
            PeerIncompatible::NoCipherSuitesInCommon => {
                "handshake failure: no cipher suites in common".into()
            }
            other => format!("handshake failure: peer is incompatible ({other:?})"),
        },
        E::InvalidMessage(m) => format!(
            "handshake failure: invalid TLS record or message ({m:?}): the peer does not speak TLS"
        ),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            format!("handshake failure: unexpected message ({e})")
        }
        E::NoApplicationProtocol => {
            "handshake failure: no application protocol (ALPN) in common".into()
        }
        other => format!("TLS failure: {other}"),
    }
}

/// The reason for an alert the peer sent (its description of our failure).
fn alert(a: Alert) -> String {
    let what = match a {
        Alert::HandshakeFailure => "handshake failure",
        Alert::ProtocolVersion => "unsupported protocol version",
        Alert::UnknownCA => "certificate verify failed (by the peer): unknown issuer",
        Alert::CertificateExpired => {
            "certificate verify failed (by the peer): certificate has expired"
        }
        Alert::BadCertificate => "certificate verify failed (by the peer): bad certificate",
        Alert::CertificateRequired => "handshake failure: the peer requires a client certificate",
        Alert::NoApplicationProtocol => {
            "handshake failure: no application protocol (ALPN) in common"
        }
        _ => "TLS failure",
    };
    format!("{what} (peer sent alert {a:?})")
}
