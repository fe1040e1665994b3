//! Upstream TLS: the per-pool client configuration, the session store that outlives it,
//! and the handshake that runs after the TCP connect.
//!
//! One [`UpstreamTls`] per pool wraps one `Arc<rustls::ClientConfig>`, built once from
//! [`TlsSettings`] with the *ring* provider passed explicitly (never the process default:
//! if a dependency ever enables aws-lc-rs too, `ClientConfig::builder()` would panic).
//! Session resumption is on, backed by a [`SessionStore`] the caller passes in, so that
//! rebuilding the pool on a config reload keeps the tickets: a fresh store would make
//! every first connection after a reload a full handshake. 0-RTT stays off (early data
//! can be replayed).
//!
//! Failures are classified by [`classify_tls`], the single place that maps a TLS failure
//! to an `ErrorKind`; the detail says which check failed, taken from rustls' error.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, ResolvesClientCert, Resumption,
    VerifierBuilderError, WebPkiServerVerifier,
};

use crate::pinned::{UpstreamVerifier, is_ca_used_as_end_entity};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{CertificateError, ClientConfig, HandshakeKind, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use seawall_core::ErrorKind;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Where PEM data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file, read once when the [`UpstreamTls`] is built.
    File(PathBuf),
    /// PEM text already in memory.
    Inline(Vec<u8>),
}

impl PemSource {
    fn certificates(
        &self,
        what: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
        let parsed: Result<Vec<_>, _> = match self {
            PemSource::File(path) => match CertificateDer::pem_file_iter(path) {
                Ok(iter) => iter.collect(),
                Err(source) => Err(source),
            },
            PemSource::Inline(pem) => CertificateDer::pem_slice_iter(pem).collect(),
        };
        let certs = parsed.map_err(|source| TlsConfigError::Pem {
            what,
            from: self.describe(),
            source,
        })?;
        if certs.is_empty() {
            return Err(TlsConfigError::Empty {
                what,
                from: self.describe(),
            });
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
        match self {
            PemSource::File(path) => PrivateKeyDer::from_pem_file(path),
            PemSource::Inline(pem) => PrivateKeyDer::from_pem_slice(pem),
        }
        .map_err(|source| TlsConfigError::Pem {
            what: "client private key",
            from: self.describe(),
            source,
        })
    }

    fn describe(&self) -> String {
        match self {
            PemSource::File(path) => path.display().to_string(),
            PemSource::Inline(_) => "inline PEM".to_owned(),
        }
    }
}

/// Which certificate authorities the pool trusts for the upstream's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsRoots {
    /// The Mozilla root program, compiled in (`webpki-roots`).
    #[default]
    WebPki,
    /// Only the CA certificates in this PEM (one or more `CERTIFICATE` sections).
    Pem(PemSource),
}

/// A client certificate chain and its key, for upstreams that require mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The leaf certificate first, then intermediates.
    pub cert_chain: PemSource,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PemSource,
}

/// TLS towards one upstream, as resolved plain values (the gateway maps its config here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The name sent as SNI and checked against the certificate. `None`: the endpoint's IP
    /// address, which only matches certificates with an IP subjectAltName.
    pub server_name: Option<String>,
    /// Trusted roots.
    pub roots: TlsRoots,
    /// Client certificate for mTLS; `None` sends none.
    pub client_identity: Option<ClientIdentity>,
    /// ALPN protocols offered, in preference order. The pool speaks HTTP/1.1 only, so the
    /// default offers just `http/1.1`; an empty list sends no ALPN extension.
    pub alpn: Vec<Vec<u8>>,
    /// Bound on the handshake, which starts after the TCP connect (the request deadline
    /// bounds it too).
    pub handshake_timeout: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            server_name: None,
            roots: TlsRoots::WebPki,
            client_identity: None,
            alpn: vec![b"http/1.1".to_vec()],
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// The TLS session cache of one upstream: a cheap handle around a shared store.
///
/// Sessions live in the store, not in the client configuration. To resume them after a
/// config reload, keep the previous [`UpstreamTls`] and call [`UpstreamTls::reload`],
/// which carries the store over (see there for why the store alone is not enough).
#[derive(Clone)]
pub struct SessionStore(Arc<dyn ClientSessionStore>);

impl SessionStore {
    /// rustls' default capacity.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// An in-memory store holding sessions for up to `capacity` server names.
    pub fn in_memory(capacity: usize) -> Self {
        Self(Arc::new(ClientSessionMemoryCache::new(capacity)))
    }

    /// Any rustls store (e.g. one shared across upstreams).
    pub fn from_store(store: Arc<dyn ClientSessionStore>) -> Self {
        Self(store)
    }

    /// True if both handles share one store.
    pub fn same_store(&self, other: &SessionStore) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Default for SessionStore {
    fn default() -> Self {
        Self::in_memory(Self::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore").finish_non_exhaustive()
    }
}

/// Why [`UpstreamTls::new`] could not build a client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A PEM source could not be read or parsed.
    #[error("cannot read {what} from {from}: {source}")]
    Pem {
        what: &'static str,
        from: String,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM source held no certificate.
    #[error("no {what} found in {from}")]
    Empty { what: &'static str, from: String },
    /// `server_name` is neither a DNS name nor an IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// rustls refused the configuration (e.g. a CA certificate it cannot parse, or a key
    /// that does not match the client certificate).
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// No usable trust anchor among the roots.
    #[error("invalid TLS roots: {0}")]
    Roots(#[from] VerifierBuilderError),
}

/// The TLS side of one upstream's pool: one client configuration (shared by every
/// connection), the server name and the handshake bound. Cheap to clone.
///
/// Resumption across reloads. rustls resumes a stored session only if the new
/// configuration has *the same* certificate verifier and client-certificate resolver
/// (compared by pointer: a session proven against one trust configuration must not be
/// resumed under another). So a configuration rebuilt with [`UpstreamTls::new`] never
/// resumes the previous one's sessions, even with the same [`SessionStore`]; rebuild with
/// [`UpstreamTls::reload`] instead, which keeps the verifier while the trusted roots are
/// byte-for-byte the same and the resolver while the client identity is.
#[derive(Clone)]
pub struct UpstreamTls {
    connector: TlsConnector,
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    handshake_timeout: Duration,
    sessions: SessionStore,
    trust: Trust,
    identity: Identity,
}

/// The roots as loaded (`None`: webpki-roots) and the verifier built from them.
#[derive(Clone)]
struct Trust {
    roots: Option<Vec<CertificateDer<'static>>>,
    verifier: Arc<UpstreamVerifier>,
}

/// The client certificate chain and key DER as loaded (`None`: no client certificate) and
/// the resolver built from them.
#[derive(Clone)]
struct Identity {
    loaded: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
    resolver: Arc<dyn ResolvesClientCert>,
}

impl UpstreamTls {
    /// Builds the client configuration, storing sessions in `sessions`. Reads PEM files
    /// now, so errors surface at config load, not on the first request.
    pub fn new(settings: &TlsSettings, sessions: &SessionStore) -> Result<Self, TlsConfigError> {
        Self::build(settings, sessions, None)
    }

    /// Builds the configuration for new `settings` (a config reload), keeping this one's
    /// session store, and its verifier and client-certificate resolver when the loaded
    /// roots and identity are unchanged, so that connections of the new pool resume the
    /// sessions of the old one. PEM files are read again: a rotated CA or client
    /// certificate takes effect (and, correctly, starts with full handshakes).
    pub fn reload(&self, settings: &TlsSettings) -> Result<Self, TlsConfigError> {
        Self::build(settings, &self.sessions, Some(self))
    }

    fn build(
        settings: &TlsSettings,
        sessions: &SessionStore,
        previous: Option<&UpstreamTls>,
    ) -> Result<Self, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match &settings.roots {
            TlsRoots::WebPki => None,
            TlsRoots::Pem(source) => Some(source.certificates("CA certificates")?),
        };
        let trust = match previous {
            Some(previous) if previous.trust.roots == roots => previous.trust.clone(),
            _ => {
                let mut store = RootCertStore::empty();
                match &roots {
                    None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                    Some(certs) => {
                        for cert in certs {
                            store.add(cert.clone())?;
                        }
                    }
                }
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    Arc::clone(&provider),
                )
                .build()?;
                let pinned = roots.clone().unwrap_or_default();
                let verifier = Arc::new(UpstreamVerifier::new(webpki, pinned));
                Trust { roots, verifier }
            }
        };
        let loaded = match &settings.client_identity {
            None => None,
            Some(identity) => Some((
                identity.cert_chain.certificates("client certificates")?,
                identity.key.private_key()?.secret_der().to_vec(),
            )),
        };
        let identity = match previous {
            Some(previous) if previous.identity.loaded == loaded => previous.identity.clone(),
            _ => {
                let resolver: Arc<dyn ResolvesClientCert> = match &loaded {
                    None => Arc::new(NoClientCert),
                    Some((chain, key)) => {
                        let key = PrivateKeyDer::try_from(key.clone()).map_err(|error| {
                            TlsConfigError::Rustls(rustls::Error::General(error.to_owned()))
                        })?;
                        // `from_der` also checks that the key matches the certificate.
                        let certified = CertifiedKey::from_der(chain.clone(), key, &provider)?;
                        Arc::new(SingleCertAndKey::from(certified))
                    }
                };
                Identity { loaded, resolver }
            }
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            // webpki's checks, plus a self-signed `ca_file` certificate trusted as itself
            // (see `crate::pinned`).
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&trust.verifier) as _)
            .with_client_cert_resolver(Arc::clone(&identity.resolver));
        config.alpn_protocols = settings.alpn.clone();
        config.resumption = Resumption::store(Arc::clone(&sessions.0));
        let server_name = match &settings.server_name {
            None => None,
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| TlsConfigError::ServerName(name.clone()))?,
            ),
        };
        let config = Arc::new(config);
        Ok(Self {
            connector: TlsConnector::from(Arc::clone(&config)),
            config,
            server_name,
            handshake_timeout: settings.handshake_timeout,
            sessions: sessions.clone(),
            trust,
            identity,
        })
    }

    /// This configuration with `host` as the server name if none was set: a DNS-named
    /// upstream is checked against its name, not its addresses.
    pub(crate) fn or_server_name(&self, host: &str) -> UpstreamTls {
        let mut tls = self.clone();
        if tls.server_name.is_none() {
            tls.server_name = ServerName::try_from(host.to_owned()).ok();
        }
        tls
    }

    /// The rustls configuration every connection of the pool uses.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The session store.
    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// The handshake bound.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Runs the client handshake on a connected socket. The caller bounds it in time.
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> std::io::Result<(TlsStream<TcpStream>, Handshake)> {
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        let stream = self.connector.connect(name, stream).await?;
        let kind = match stream.get_ref().1.handshake_kind() {
            Some(HandshakeKind::Resumed) => Handshake::Resumed,
            _ => Handshake::Full,
        };
        Ok((stream, kind))
    }
}

/// Sends no client certificate. Our own type rather than `with_no_client_auth()`, because
/// the resolver must be one long-lived `Arc` for resumption across reloads.
#[derive(Debug)]
struct NoClientCert;

impl ResolvesClientCert for NoClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.server_name)
            .field("alpn", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Whether a handshake resumed an earlier session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    Full,
    Resumed,
}

/// How a TLS handshake failed; see [`classify_tls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The handshake did not finish within `handshake_timeout`.
    Timeout,
    /// The handshake failed: a certificate check, an alert from the peer, a protocol error
    /// or the connection closing during the handshake.
    Error,
}

/// The one place that maps a TLS failure to an error kind: `TlsHandshakeTimeout` (504)
/// and `TlsError` (502), their own kinds so that an operator can tell a slow or failing
/// handshake from a slow or refused TCP connect.
pub fn classify_tls(failure: TlsFailure) -> ErrorKind {
    match failure {
        TlsFailure::Timeout => ErrorKind::TlsHandshakeTimeout,
        TlsFailure::Error => ErrorKind::TlsError,
    }
}

/// A sentence naming the check that failed, from the rustls error inside tokio-rustls'
/// I/O error; other I/O errors are described as they are.
pub(crate) fn describe_handshake_error(error: &std::io::Error) -> String {
    let Some(rustls_error) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return format!("connection failed during the handshake ({error})");
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(certificate) => {
            format!(
                "upstream certificate rejected: {}",
                describe_certificate(certificate)
            )
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the upstream aborted the handshake with alert {alert:?}")
        }
        rustls::Error::NoApplicationProtocol => {
            "the upstream accepts none of the offered ALPN protocols".to_owned()
        }
        other => other.to_string(),
    }
}

fn describe_certificate(error: &CertificateError) -> String {
    match error {
        CertificateError::UnknownIssuer => "unknown issuer (not signed by a trusted CA): add the CA that signed it to the upstream's `tls.ca_file` (for a self-signed certificate, the certificate itself)".to_owned(),
        other if is_ca_used_as_end_entity(other) => "the certificate is a CA certificate (basicConstraints CA:TRUE, the OpenSSL 3 default for `req -x509`), which is accepted as a server's own certificate only when the upstream's `tls.ca_file` holds exactly that certificate: list it there, or re-issue it with `-addext basicConstraints=critical,CA:FALSE`, or sign a leaf certificate with a CA".to_owned(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("expired ({error})")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("not valid yet ({error})")
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("name mismatch ({error})")
        }
        CertificateError::Revoked => "revoked".to_owned(),
        CertificateError::BadSignature => "bad signature".to_owned(),
        CertificateError::BadEncoding => "malformed certificate".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!("not valid for server authentication ({error})")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_issuer_and_name_mismatch_are_named() {
        let wrap = |e: CertificateError| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(e),
            )
        };
        let issuer = describe_handshake_error(&wrap(CertificateError::UnknownIssuer));
        assert!(issuer.contains("unknown issuer"), "{issuer}");
        let name = describe_handshake_error(&wrap(CertificateError::NotValidForName));
        assert!(name.contains("name mismatch"), "{name}");
        let expired = describe_handshake_error(&wrap(CertificateError::Expired));
        assert!(expired.contains("expired"), "{expired}");
    }

    #[test]
    fn bad_inputs_are_config_errors_not_panics() {
        let settings = TlsSettings {
            roots: TlsRoots::Pem(PemSource::Inline(b"not pem".to_vec())),
            ..TlsSettings::default()
        };
        let error = UpstreamTls::new(&settings, &SessionStore::default()).unwrap_err();
        assert!(matches!(error, TlsConfigError::Empty { .. }), "{error}");
        let settings = TlsSettings {
            server_name: Some("bad name!".to_owned()),
            ..TlsSettings::default()
        };
        let error = UpstreamTls::new(&settings, &SessionStore::default()).unwrap_err();
        assert!(matches!(error, TlsConfigError::ServerName(_)), "{error}");
        let settings = TlsSettings {
            roots: TlsRoots::Pem(PemSource::File("/nonexistent/ca.pem".into())),
            ..TlsSettings::default()
        };
        let error = UpstreamTls::new(&settings, &SessionStore::default()).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn webpki_roots_build_with_http1_alpn_and_the_given_store() {
        let store = SessionStore::in_memory(8);
        let tls = UpstreamTls::new(&TlsSettings::default(), &store).unwrap();
        assert_eq!(
            tls.client_config().alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );
        assert!(!tls.client_config().enable_early_data);
    }
}
