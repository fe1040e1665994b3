//! Certificates generated at test time (rcgen, ring) and a TLS upstream on 127.0.0.1 port 0:
//! tokio-rustls in front of a hyper HTTP/1 (or, by ALPN, HTTP/2) server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{HandshakeKind, RootCertStore, ServerConfig};
use seawall_pool::{ClientIdentity, PemSource, SessionStore, TlsRoots, TlsSettings, UpstreamTls};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A certificate authority that exists only for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate signed by a [`TestCa`] and its key, as PEM.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Identity {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A server certificate for `names` that expired in 2001.
    pub fn expired_server(&self, names: &[&str]) -> Identity {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A client certificate.
    pub fn client(&self, name: &str) -> Identity {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Identity {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Pool-side settings trusting only this CA, checking `server_name`.
    pub fn trusted_by_pool(&self, server_name: &str) -> TlsSettings {
        TlsSettings {
            server_name: Some(server_name.to_owned()),
            roots: TlsRoots::Pem(PemSource::Inline(self.pem().into_bytes())),
            ..TlsSettings::default()
        }
    }
}

impl Identity {
    pub fn for_pool(&self) -> ClientIdentity {
        ClientIdentity {
            cert_chain: PemSource::Inline(self.cert_pem.clone().into_bytes()),
            key: PemSource::Inline(self.key_pem.clone().into_bytes()),
        }
    }
}

pub fn upstream_tls(settings: &TlsSettings, store: &SessionStore) -> UpstreamTls {
    UpstreamTls::new(settings, store).unwrap()
}

/// A TLS upstream answering "hello" on every path.
pub struct TlsUpstream {
    pub addr: SocketAddr,
    /// TCP connections accepted.
    pub accepts: Arc<AtomicUsize>,
    /// Handshakes completed, and how many of them resumed a session.
    pub handshakes: Arc<AtomicUsize>,
    pub resumed: Arc<AtomicUsize>,
}

impl TlsUpstream {
    /// Serves with `identity`; with `client_ca`, requires a client certificate from it.
    pub async fn start(identity: &Identity, client_ca: Option<&TestCa>) -> Self {
        Self::start_with_alpn(identity, client_ca, &[b"http/1.1"]).await
    }

    /// Like [`TlsUpstream::start`], choosing among `alpn` by ALPN; with `h2` among them it
    /// serves HTTP/2 too (whichever the client speaks).
    pub async fn start_with_alpn(
        identity: &Identity,
        client_ca: Option<&TestCa>,
        alpn: &[&[u8]],
    ) -> Self {
        let h2 = alpn.contains(&&b"h2"[..]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
                    .unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let resumed = Arc::new(AtomicUsize::new(0));
        let (a, h, r) = (
            Arc::clone(&accepts),
            Arc::clone(&handshakes),
            Arc::clone(&resumed),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let (h, r) = (Arc::clone(&h), Arc::clone(&r));
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    if stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                    let service = service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"hello",
                        ))))
                    });
                    if h2 {
                        let _ = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    } else {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                });
            }
        });
        Self {
            addr,
            accepts,
            handshakes,
            resumed,
        }
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    pub fn resumed(&self) -> usize {
        self.resumed.load(Ordering::SeqCst)
    }
}
