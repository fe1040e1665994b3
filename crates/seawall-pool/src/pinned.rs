//! The upstream certificate verifier: webpki's, plus a self-signed certificate trusted as
//! itself when `ca_file` lists it verbatim.
//!
//! Why: the most common private setup is one self-signed certificate, made with OpenSSL 3's
//! `req -x509`, put in `ca_file`. OpenSSL marks such a certificate `CA:TRUE`, and webpki
//! refuses a CA certificate as a server's own certificate (`CaUsedAsEndEntity`) even when
//! that very certificate is the trust anchor, while curl and Go accept it. So a
//! certificate that is byte for byte one of the configured roots is accepted as the
//! server's, on these conditions:
//! - webpki failed with exactly `CaUsedAsEndEntity`: it checks the validity period before
//!   the basic constraints, so the dates have been checked by then;
//! - the name is checked here, as webpki would have;
//! - the handshake signature is verified as usual, so the server proves it holds the key.
//!
//! Every other certificate goes through webpki unchanged.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// webpki's verifier, which also accepts a pinned self-signed certificate (module docs).
#[derive(Debug)]
pub(crate) struct UpstreamVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The configured roots (empty with the built-in webpki roots: nothing is pinned).
    pinned: Vec<CertificateDer<'static>>,
}

impl UpstreamVerifier {
    pub(crate) fn new(
        webpki: Arc<WebPkiServerVerifier>,
        pinned: Vec<CertificateDer<'static>>,
    ) -> Self {
        Self { webpki, pinned }
    }
}

/// True for webpki's "a CA certificate was presented as the server's own".
pub(crate) fn is_ca_used_as_end_entity(error: &CertificateError) -> bool {
    match error {
        CertificateError::Other(other) => other
            .0
            .downcast_ref::<webpki::Error>()
            .is_some_and(|e| matches!(e, webpki::Error::CaUsedAsEndEntity)),
        _ => false,
    }
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(error))
                if is_ca_used_as_end_entity(&error)
                    && self
                        .pinned
                        .iter()
                        .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
                    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
                })?;
                cert.verify_is_valid_for_subject_name(server_name)
                    .map_err(|_| {
                        rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
                    })?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}
