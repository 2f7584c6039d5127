//! Shared helpers of the `tls_*` tests: certificates made at test time (no key is committed),
//! contexts, and a TLS echo server.
#![allow(dead_code)]

use asyncio::tls::{ClientAuth, TlsContext, TlsVersion};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// A test certificate authority that issues leaf certificates.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate (PEM) and its private key (PEM).
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// How a leaf certificate is made.
#[derive(Clone, Copy, Default)]
pub struct LeafKind {
    /// A client certificate (clientAuth) rather than a server one.
    pub client: bool,
    /// Expired in 2001.
    pub expired: bool,
}

impl Pki {
    /// A fresh CA called `name`.
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `names` (DNS names or IP addresses).
    pub fn leaf(&self, names: &[&str], kind: LeafKind) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "leaf");
        params.extended_key_usages = vec![if kind.client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if kind.expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server context for "localhost" and 127.0.0.1 with this CA's certificate.
    pub fn server(&self) -> TlsContext {
        self.server_with(|b| b)
    }

    /// [`Pki::server`] with extra builder settings.
    pub fn server_with(
        &self,
        f: impl FnOnce(asyncio::tls::ServerContextBuilder) -> asyncio::tls::ServerContextBuilder,
    ) -> TlsContext {
        let leaf = self.leaf(&["localhost", "127.0.0.1"], LeafKind::default());
        let b = TlsContext::server()
            .load_cert_chain_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
            .unwrap();
        f(b).build().unwrap()
    }

    /// A server context that requires client certificates from this CA.
    pub fn server_requiring_client_certs(&self) -> TlsContext {
        let ca = self.ca_pem.clone();
        self.server_with(move |b| {
            b.load_verify_locations_pem(ca.as_bytes())
                .unwrap()
                .client_auth(ClientAuth::Required)
        })
    }

    /// A client context trusting only this CA.
    pub fn client(&self) -> TlsContext {
        self.client_with(|b| b)
    }

    /// [`Pki::client`] with extra builder settings.
    pub fn client_with(
        &self,
        f: impl FnOnce(asyncio::tls::ClientContextBuilder) -> asyncio::tls::ClientContextBuilder,
    ) -> TlsContext {
        let b = TlsContext::client()
            .load_verify_locations_pem(self.ca_pem.as_bytes())
            .unwrap();
        f(b).build().unwrap()
    }

    /// A client context with a client certificate from this CA.
    pub fn client_with_cert(&self) -> TlsContext {
        self.client_with_cert_from(self)
    }

    /// A client context trusting this CA, with a client certificate from `issuer`.
    pub fn client_with_cert_from(&self, issuer: &Pki) -> TlsContext {
        let leaf = issuer.leaf(
            &["client"],
            LeafKind {
                client: true,
                ..Default::default()
            },
        );
        self.client_with(move |b| {
            b.load_cert_chain_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
                .unwrap()
        })
    }
}

/// Only this TLS version.
pub fn only(
    v: TlsVersion,
) -> impl FnOnce(asyncio::tls::ClientContextBuilder) -> asyncio::tls::ClientContextBuilder {
    move |b| b.minimum_version(v).maximum_version(v)
}
