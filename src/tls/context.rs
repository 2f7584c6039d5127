//! [`TlsContext`]: asyncio's `ssl.SSLContext`, Rust-shaped: a client or server configuration
//! built once and shared by every connection that uses it (cloning is cheap).
//!
//! Crypto is rustls on its `ring` provider (it builds with a C compiler only); certificates and
//! keys are read from PEM with `rustls-pki-types`; a client verifies servers against Mozilla's
//! root store as bundled by `webpki-roots` unless it is given its own CA certificates.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};

use crate::error::{Error, ErrorKind, Result};

/// A TLS protocol version (Python's `ssl.TLSVersion`). rustls speaks TLS 1.2 and 1.3 only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Whether a server asks its clients for a certificate (Python's `verify_mode` on a server
/// context).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for (`CERT_NONE`, the default).
    #[default]
    None,
    /// A certificate is asked for and verified if sent; a client without one is let in
    /// (`CERT_OPTIONAL`).
    Optional,
    /// A client without a valid certificate fails its handshake (`CERT_REQUIRED`).
    Required,
}

/// A TLS configuration for the `ssl` option of connections and servers, and for
/// [`start_tls`](crate::EventLoop::start_tls) (asyncio's `ssl.SSLContext`).
///
/// Build a client context with [`TlsContext::client`] (or [`TlsContext::default_client`],
/// Python's `ssl.create_default_context()`), a server context with [`TlsContext::server`].
/// Clones share the configuration.
///
/// ```
/// use asyncio::tls::{TlsContext, TlsVersion};
///
/// // Verifies servers against the bundled Mozilla roots and checks their host name.
/// let client = TlsContext::client()
///     .alpn_protocols(&["h2", "http/1.1"])
///     .minimum_version(TlsVersion::Tls12)
///     .build()?;
/// assert!(!client.is_server());
/// # Ok::<(), asyncio::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsContext {
    pub(crate) config: Config,
}

#[derive(Clone)]
pub(crate) enum Config {
    Client(Arc<ClientConfig>),
    Server(Arc<ServerConfig>),
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (side, alpn) = match &self.config {
            Config::Client(c) => ("client", &c.alpn_protocols),
            Config::Server(c) => ("server", &c.alpn_protocols),
        };
        let alpn: Vec<_> = alpn.iter().map(|p| String::from_utf8_lossy(p)).collect();
        f.debug_struct("TlsContext")
            .field("side", &side)
            .field("alpn", &alpn)
            .finish()
    }
}

impl TlsContext {
    /// A builder for a client context: verification against the bundled roots and host-name
    /// checking are on until turned off explicitly.
    pub fn client() -> ClientContextBuilder {
        ClientContextBuilder::default()
    }

    /// A builder for a server context: give it a certificate chain and key with
    /// [`load_cert_chain_pem`](ServerContextBuilder::load_cert_chain_pem) or
    /// [`load_cert_chain_file`](ServerContextBuilder::load_cert_chain_file).
    pub fn server() -> ServerContextBuilder {
        ServerContextBuilder::default()
    }

    /// Python's `ssl.create_default_context()`: a client context that verifies servers against
    /// the bundled Mozilla roots and checks their host names.
    ///
    /// # Errors
    /// None in practice; as [`ClientContextBuilder::build`].
    pub fn default_client() -> Result<TlsContext> {
        Self::client().build()
    }

    /// A context from a rustls client configuration made by hand (for what the builders do not
    /// cover).
    pub fn from_client_config(config: Arc<ClientConfig>) -> TlsContext {
        TlsContext {
            config: Config::Client(config),
        }
    }

    /// A context from a rustls server configuration made by hand.
    pub fn from_server_config(config: Arc<ServerConfig>) -> TlsContext {
        TlsContext {
            config: Config::Server(config),
        }
    }

    /// The rustls configuration of a client context (to share it with other rustls users).
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        match &self.config {
            Config::Client(c) => Some(c.clone()),
            Config::Server(_) => None,
        }
    }

    /// The rustls configuration of a server context.
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        match &self.config {
            Config::Server(c) => Some(c.clone()),
            Config::Client(_) => None,
        }
    }

    /// Whether this is a server context.
    pub fn is_server(&self) -> bool {
        matches!(self.config, Config::Server(_))
    }
}

/// rustls's `ring` provider. Deprecated in rustls 0.23.48 for lacking post-quantum key
/// exchange, but it is the provider that builds with only a C compiler (aws-lc-rs needs cmake).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(e: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("invalid TLS configuration: {e}"),
    )
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot read {}: {e}", path.display()),
        )
        .with_source(e)
    })
}

/// Every certificate in `pem`; at least one.
fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("bad PEM certificate: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "no certificate found in the PEM data",
        ));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `pem`.
fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("no usable private key in the PEM data: {e}"),
        )
    })
}

fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
) -> Result<Vec<&'static SupportedProtocolVersion>> {
    let min = min.unwrap_or(TlsVersion::Tls12);
    let max = max.unwrap_or(TlsVersion::Tls13);
    let mut out = Vec::new();
    if min <= TlsVersion::Tls13 && max >= TlsVersion::Tls13 {
        out.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        out.push(&rustls::version::TLS12);
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "minimum_version is above maximum_version",
        ));
    }
    Ok(out)
}

fn alpn(protocols: &[&str]) -> Vec<Vec<u8>> {
    protocols.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// The builder of a client [`TlsContext`] (see [`TlsContext::client`]).
#[derive(Default)]
pub struct ClientContextBuilder {
    cas: Vec<CertificateDer<'static>>,
    bundled_roots: Option<bool>,
    no_hostname_check: bool,
    no_verification: bool,
    alpn: Vec<Vec<u8>>,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
}

impl fmt::Debug for ClientContextBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientContextBuilder")
            .field("cas", &self.cas.len())
            .field("check_hostname", &!self.no_hostname_check)
            .field("verify", &!self.no_verification)
            .field("client_cert", &self.cert.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientContextBuilder {
    /// Trusts the CA certificates in `pem` (Python's `load_verify_locations(cadata=...)`).
    /// Once CAs are given, the bundled roots are no longer trusted unless
    /// [`bundled_roots(true)`](ClientContextBuilder::bundled_roots) says so.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `pem` holds no certificate or a bad one.
    pub fn load_verify_locations_pem(mut self, pem: &[u8]) -> Result<Self> {
        self.cas.extend(certs_from_pem(pem)?);
        Ok(self)
    }

    /// [`load_verify_locations_pem`](ClientContextBuilder::load_verify_locations_pem) from a
    /// file (Python's `load_verify_locations(cafile)`).
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the file cannot be read; else as
    /// [`load_verify_locations_pem`](ClientContextBuilder::load_verify_locations_pem).
    pub fn load_verify_locations_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let pem = read_file(path.as_ref())?;
        self.load_verify_locations_pem(&pem)
    }

    /// Whether Mozilla's roots (bundled by `webpki-roots`) are trusted: by default yes, unless
    /// CA certificates were loaded.
    pub fn bundled_roots(mut self, on: bool) -> Self {
        self.bundled_roots = Some(on);
        self
    }

    /// Python's `check_hostname` (default `true`): whether the server's certificate must name
    /// the `server_hostname`. With `false` the chain is still verified.
    pub fn check_hostname(mut self, on: bool) -> Self {
        self.no_hostname_check = !on;
        self
    }

    /// Accepts any server certificate, with no chain or host-name check (Python's
    /// `check_hostname = False; verify_mode = CERT_NONE`). The handshake's signatures are
    /// still checked, but anyone in the middle can pose as the server: for tests only.
    pub fn danger_disable_verification(mut self) -> Self {
        self.no_verification = true;
        self
    }

    /// The ALPN protocols offered, in order of preference (Python's
    /// `set_alpn_protocols`).
    pub fn alpn_protocols(mut self, protocols: &[&str]) -> Self {
        self.alpn = alpn(protocols);
        self
    }

    /// The client certificate chain and its key, for servers that ask for one (Python's
    /// `load_cert_chain`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the PEM data holds no certificate or no key.
    pub fn load_cert_chain_pem(mut self, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        self.cert = Some((certs_from_pem(cert_pem)?, key_from_pem(key_pem)?));
        Ok(self)
    }

    /// [`load_cert_chain_pem`](ClientContextBuilder::load_cert_chain_pem) from files.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when a file cannot be read; else as
    /// [`load_cert_chain_pem`](ClientContextBuilder::load_cert_chain_pem).
    pub fn load_cert_chain_file(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self> {
        let (c, k) = (read_file(cert.as_ref())?, read_file(key.as_ref())?);
        self.load_cert_chain_pem(&c, &k)
    }

    /// The lowest TLS version spoken (default TLS 1.2).
    pub fn minimum_version(mut self, v: TlsVersion) -> Self {
        self.min = Some(v);
        self
    }

    /// The highest TLS version spoken (default TLS 1.3).
    pub fn maximum_version(mut self, v: TlsVersion) -> Self {
        self.max = Some(v);
        self
    }

    /// Makes the context.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the versions exclude each other, no root is trusted
    /// while verification is on, or the client key does not fit its certificate.
    pub fn build(self) -> Result<TlsContext> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions(self.min, self.max)?)
            .map_err(config_error)?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.no_verification {
            Arc::new(NoVerification(provider.signature_verification_algorithms))
        } else {
            let mut roots = RootCertStore::empty();
            if self.bundled_roots.unwrap_or(self.cas.is_empty()) {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            for ca in self.cas {
                roots.add(ca).map_err(config_error)?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(config_error)?;
            if self.no_hostname_check {
                Arc::new(IgnoreHostname(webpki))
            } else {
                webpki
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match self.cert {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(config_error)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        Ok(TlsContext::from_client_config(Arc::new(config)))
    }
}

/// The builder of a server [`TlsContext`] (see [`TlsContext::server`]).
#[derive(Default)]
pub struct ServerContextBuilder {
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    cas: Vec<CertificateDer<'static>>,
    client_auth: ClientAuth,
    alpn: Vec<Vec<u8>>,
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
}

impl fmt::Debug for ServerContextBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerContextBuilder")
            .field("cert", &self.cert.is_some())
            .field("cas", &self.cas.len())
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl ServerContextBuilder {
    /// The server's certificate chain (leaf first) and private key (Python's
    /// `load_cert_chain`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the PEM data holds no certificate or no key.
    pub fn load_cert_chain_pem(mut self, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        self.cert = Some((certs_from_pem(cert_pem)?, key_from_pem(key_pem)?));
        Ok(self)
    }

    /// [`load_cert_chain_pem`](ServerContextBuilder::load_cert_chain_pem) from files.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when a file cannot be read; else as
    /// [`load_cert_chain_pem`](ServerContextBuilder::load_cert_chain_pem).
    pub fn load_cert_chain_file(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self> {
        let (c, k) = (read_file(cert.as_ref())?, read_file(key.as_ref())?);
        self.load_cert_chain_pem(&c, &k)
    }

    /// The CA certificates that client certificates are verified against.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `pem` holds no certificate or a bad one.
    pub fn load_verify_locations_pem(mut self, pem: &[u8]) -> Result<Self> {
        self.cas.extend(certs_from_pem(pem)?);
        Ok(self)
    }

    /// [`load_verify_locations_pem`](ServerContextBuilder::load_verify_locations_pem) from a
    /// file.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the file cannot be read; else as
    /// [`load_verify_locations_pem`](ServerContextBuilder::load_verify_locations_pem).
    pub fn load_verify_locations_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let pem = read_file(path.as_ref())?;
        self.load_verify_locations_pem(&pem)
    }

    /// Whether clients must present a certificate (default [`ClientAuth::None`]); the CAs come
    /// from [`load_verify_locations_pem`](ServerContextBuilder::load_verify_locations_pem).
    pub fn client_auth(mut self, mode: ClientAuth) -> Self {
        self.client_auth = mode;
        self
    }

    /// The ALPN protocols accepted, in order of preference.
    pub fn alpn_protocols(mut self, protocols: &[&str]) -> Self {
        self.alpn = alpn(protocols);
        self
    }

    /// The lowest TLS version spoken (default TLS 1.2).
    pub fn minimum_version(mut self, v: TlsVersion) -> Self {
        self.min = Some(v);
        self
    }

    /// The highest TLS version spoken (default TLS 1.3).
    pub fn maximum_version(mut self, v: TlsVersion) -> Self {
        self.max = Some(v);
        self
    }

    /// Makes the context.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] without a certificate chain and key, when the key does not
    /// fit the certificate, when the versions exclude each other, or when client
    /// certificates are asked for without CA certificates.
    pub fn build(self) -> Result<TlsContext> {
        let provider = provider();
        let Some((chain, key)) = self.cert else {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a server context needs a certificate chain and key (load_cert_chain)",
            ));
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions(self.min, self.max)?)
            .map_err(config_error)?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            mode => {
                let mut roots = RootCertStore::empty();
                for ca in self.cas {
                    roots.add(ca).map_err(config_error)?;
                }
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let v = if mode == ClientAuth::Optional {
                    v.allow_unauthenticated()
                } else {
                    v
                };
                builder.with_client_cert_verifier(v.build().map_err(config_error)?)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(config_error)?;
        config.alpn_protocols = self.alpn;
        Ok(TlsContext::from_server_config(Arc::new(config)))
    }
}

/// Verifies the chain but not the host name (`check_hostname = False`).
#[derive(Debug)]
struct IgnoreHostname(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name after the chain: this error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate; checks only the handshake signatures (`CERT_NONE`).
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
