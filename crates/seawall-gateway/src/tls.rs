//! Downstream TLS: the server configuration of a listener with `tls`, built from the
//! certificate and key files, and the bounded handshake every connection of it starts with.
//!
//! One [`ListenerTls`] per TLS listener lives in its [`crate::runtime::ListenerRuntime`], so
//! it is part of the runtime snapshot the acceptor loads on every accept: a reload that
//! builds a new runtime (with the files read again) changes the certificate of new
//! connections, while open connections keep the session they negotiated. If the files do
//! not load, the runtime is not built, the reload fails with the reason, and the old
//! certificate keeps serving.
//!
//! Configuration choices, and why:
//! - the *ring* provider, passed explicitly (as the pool does for upstream TLS): with the
//!   process-default provider, a second provider enabled by some dependency would make the
//!   builder panic;
//! - session resumption: a session cache (TLS 1.2 session ids) and a ticketer (stateless
//!   TLS 1.3 and 1.2 tickets). A config reload that leaves the certificate, key and ALPN
//!   unchanged keeps the whole `ServerConfig`, so clients keep resuming across it; a new
//!   certificate starts with a fresh cache and ticket key, so nothing negotiated under the
//!   replaced key (perhaps replaced because it leaked) is resumed;
//! - no 0-RTT: early data can be replayed;
//! - ALPN from the config, `h2` first by default. The listener serves what ALPN chose.

use std::{io, path::PathBuf, sync::Arc, time::Duration};

use rustls::{ServerConfig, server::ServerSessionMemoryCache};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use seawall_config::ListenerTlsConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// TLS 1.2 sessions remembered per listener (TLS 1.3 uses tickets and needs no server
/// state). Each entry is a few hundred bytes.
const SESSION_CACHE_ENTRIES: usize = 4096;

/// A TLS listener's server configuration and handshake bound. Cheap to share (`Arc`).
pub struct ListenerTls {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    cert_file: PathBuf,
    key_file: PathBuf,
    /// What the configuration was built from, to tell whether a reload must rebuild it.
    loaded: Loaded,
}

/// The file contents and ALPN list a [`ServerConfig`] was built from.
#[derive(PartialEq, Eq)]
struct Loaded {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    alpn: Vec<Vec<u8>>,
}

/// How a handshake failed.
#[derive(Debug)]
pub enum HandshakeFailure {
    /// Not finished within `handshake_timeout`.
    Timeout,
    /// A TLS error (bad ClientHello, no common protocol, an alert), or the client closed.
    Error(io::Error),
}

impl HandshakeFailure {
    /// The `reason` label of `seawall_downstream_connections_closed_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeFailure::Timeout => "tls_handshake_timeout",
            HandshakeFailure::Error(_) => "tls_error",
        }
    }
}

impl ListenerTls {
    /// Reads the certificate and key files and builds the server configuration. When
    /// `previous` (the same listener's TLS in the running runtime) was built from the same
    /// bytes and ALPN list, its configuration is kept, with its sessions and ticket key.
    ///
    /// The error names the listener, the key and the file, e.g. "listener `public`:
    /// tls.cert_file /etc/seawall/cert.pem: cannot read it: No such file or directory".
    pub fn build(
        listener: &str,
        c: &ListenerTlsConfig,
        previous: Option<&ListenerTls>,
    ) -> Result<Self, String> {
        let read = |key: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| {
                format!(
                    "listener `{listener}`: tls.{key} {}: cannot read it: {e}",
                    path.display()
                )
            })
        };
        let loaded = Loaded {
            cert_pem: read("cert_file", &c.cert_file)?,
            key_pem: read("key_file", &c.key_file)?,
            alpn: c
                .alpn
                .iter()
                .map(|p| p.as_str().as_bytes().to_vec())
                .collect(),
        };
        let config = match previous {
            Some(p) if p.loaded == loaded => Arc::clone(&p.config),
            _ => Arc::new(server_config(listener, c, &loaded)?),
        };
        Ok(Self {
            config,
            handshake_timeout: c.handshake_timeout.get(),
            cert_file: c.cert_file.clone(),
            key_file: c.key_file.clone(),
            loaded,
        })
    }

    /// True when the certificate or key file no longer holds what this configuration was
    /// built from (a renewed certificate), or cannot be read: a reload of an otherwise
    /// unchanged config must then rebuild, which picks up the new files or reports why
    /// they do not load.
    pub fn files_changed(&self) -> bool {
        match (
            std::fs::read(&self.cert_file),
            std::fs::read(&self.key_file),
        ) {
            (Ok(cert), Ok(key)) => cert != self.loaded.cert_pem || key != self.loaded.key_pem,
            _ => true,
        }
    }

    /// The rustls configuration new connections get.
    pub fn server_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// The handshake bound.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Runs the server handshake on `io`, bounded by `handshake_timeout` so that a client
    /// that connects and then sends its ClientHello slowly, or never, cannot hold the
    /// connection (slowloris on the handshake).
    pub async fn accept<IO>(&self, io: IO) -> Result<TlsStream<IO>, HandshakeFailure>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = TlsAcceptor::from(Arc::clone(&self.config));
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(io)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(HandshakeFailure::Error(error)),
            Err(_) => Err(HandshakeFailure::Timeout),
        }
    }
}

fn server_config(
    listener: &str,
    c: &ListenerTlsConfig,
    loaded: &Loaded,
) -> Result<ServerConfig, String> {
    let cert_file = c.cert_file.display();
    let key_file = c.key_file.display();
    let certs = CertificateDer::pem_slice_iter(&loaded.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!("listener `{listener}`: tls.cert_file {cert_file}: not valid PEM: {e}")
        })?;
    if certs.is_empty() {
        return Err(format!(
            "listener `{listener}`: tls.cert_file {cert_file}: no certificate found (expected a `-----BEGIN CERTIFICATE-----` section)"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&loaded.key_pem).map_err(|e| {
        let why = match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no private key found (expected a `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` section)".to_owned()
            }
            other => format!("not a valid PEM private key: {other}"),
        };
        format!("listener `{listener}`: tls.key_file {key_file}: {why}")
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("listener `{listener}`: tls: {e}"))?
        .with_no_client_auth()
        // Also checks that the key belongs to the certificate.
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InvalidCertificate(why) => format!(
                "listener `{listener}`: tls.cert_file {cert_file}: the certificate does not parse ({why:?}); is the file complete?"
            ),
            rustls::Error::InconsistentKeys(_) => format!(
                "listener `{listener}`: tls.key_file {key_file}: the key does not belong to the certificate in {cert_file}"
            ),
            other => format!(
                "listener `{listener}`: tls: the certificate in {cert_file} and the key in {key_file} cannot be used: {other}"
            ),
        })?;
    config.alpn_protocols = loaded.alpn.clone();
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| format!("listener `{listener}`: tls: cannot create a ticket key: {e}"))?;
    Ok(config)
}

/// A short description of a failed handshake for the debug log: the TLS error when there
/// is one (e.g. "peer is incompatible: no application protocol"), else the I/O error.
pub fn describe(error: &io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seawall_config::{AlpnProtocol, HumanDuration};

    /// A self-signed certificate and its key, written to a fresh directory.
    struct Files {
        dir: PathBuf,
    }

    impl Files {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "seawall-tls-unit-{}-{name}-{}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let files = Files { dir };
            files.renew();
            files
        }

        /// Writes a new certificate and key over the old ones.
        fn renew(&self) {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            std::fs::write(self.dir.join("cert.pem"), cert.pem()).unwrap();
            std::fs::write(self.dir.join("key.pem"), key.serialize_pem()).unwrap();
        }

        fn config(&self) -> ListenerTlsConfig {
            ListenerTlsConfig {
                cert_file: self.dir.join("cert.pem"),
                key_file: self.dir.join("key.pem"),
                alpn: vec![AlpnProtocol::H2, AlpnProtocol::Http11],
                handshake_timeout: HumanDuration::from_secs(10),
            }
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn configuration_offers_the_configured_alpn_and_resumes_sessions() {
        let files = Files::new("alpn");
        let tls = ListenerTls::build("public", &files.config(), None).unwrap();
        let config = tls.server_config();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(config.ticketer.enabled(), "tickets are issued");
        assert_eq!(config.max_early_data_size, 0, "no 0-RTT");
    }

    #[test]
    fn rebuild_keeps_the_configuration_until_the_files_or_alpn_change() {
        let files = Files::new("keep");
        let c = files.config();
        let first = ListenerTls::build("public", &c, None).unwrap();
        assert!(!first.files_changed());
        let same = ListenerTls::build("public", &c, Some(&first)).unwrap();
        assert!(Arc::ptr_eq(first.server_config(), same.server_config()));

        let mut h1 = c.clone();
        h1.alpn = vec![AlpnProtocol::Http11];
        let other = ListenerTls::build("public", &h1, Some(&first)).unwrap();
        assert!(!Arc::ptr_eq(first.server_config(), other.server_config()));

        files.renew();
        assert!(first.files_changed(), "a renewed certificate is noticed");
        let renewed = ListenerTls::build("public", &c, Some(&first)).unwrap();
        assert!(!Arc::ptr_eq(first.server_config(), renewed.server_config()));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_the_key_file() {
        let (files, other) = (Files::new("mine"), Files::new("other"));
        let mut c = files.config();
        c.key_file = other.dir.join("key.pem");
        let error = ListenerTls::build("public", &c, None).err().unwrap();
        assert!(error.contains("listener `public`: tls.key_file"), "{error}");
        assert!(error.contains("does not belong"), "{error}");
    }

    #[test]
    fn files_without_pem_sections_are_refused_naming_what_is_missing() {
        let files = Files::new("empty");
        let c = files.config();
        std::fs::write(&c.cert_file, "not pem").unwrap();
        let error = ListenerTls::build("public", &c, None).err().unwrap();
        assert!(error.contains("no certificate found"), "{error}");
        files.renew();
        std::fs::write(&c.key_file, "").unwrap();
        let error = ListenerTls::build("public", &c, None).err().unwrap();
        assert!(error.contains("no private key found"), "{error}");
        std::fs::remove_file(&c.key_file).unwrap();
        let error = ListenerTls::build("public", &c, None).err().unwrap();
        assert!(error.contains("cannot read it"), "{error}");
    }
}
