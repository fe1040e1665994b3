//! Rules about listener TLS (`listeners[].tls`): the certificate and key files exist and
//! look like what they should hold, ALPN offers something, the handshake has time. And
//! about upstream TLS (`upstreams[].tls`): the CA and client certificate files the same
//! way, a client certificate comes with its key, ALPN agrees with `protocol`.
//!
//! The files are only looked at, not parsed as X.509 (this crate knows the file format of
//! the config, not of certificates): the gateway parses them when it builds the listener,
//! at start and on every reload, and refuses the config if they do not load. Checking
//! here too is what lets `seawall check` catch a wrong path or swapped files before a
//! deploy. Relative paths are taken from the working directory, as the gateway does.

use std::path::Path;

use super::Found;
use crate::{
    AlpnProtocol, Config, ListenerTlsConfig, UpstreamProtocol, UpstreamTlsConfig,
    locate::{join_index, join_key},
};

impl Found {
    pub(super) fn listener_tls(&mut self, config: &Config) {
        for (i, listener) in config.listeners.iter().enumerate() {
            if let Some(tls) = &listener.tls {
                let path = join_key(&join_index("listeners", i), "tls");
                self.tls(&path, tls);
            }
        }
    }

    fn tls(&mut self, path: &str, tls: &ListenerTlsConfig) {
        self.pem_file(
            join_key(path, "cert_file"),
            &tls.cert_file,
            "certificate",
            &["CERTIFICATE"],
        );
        self.pem_file(
            join_key(path, "key_file"),
            &tls.key_file,
            "private key",
            &["PRIVATE KEY"],
        );
        self.nonzero_duration(join_key(path, "handshake_timeout"), tls.handshake_timeout);
        let alpn_path = join_key(path, "alpn");
        if tls.alpn.is_empty() {
            let hint =
                "list `h2`, `http/1.1` or both, or remove the key for the default [h2, http/1.1]";
            self.push(
                alpn_path,
                Some("[]".into()),
                "alpn must offer at least one protocol",
                Some(hint.into()),
            );
        } else {
            for (j, protocol) in tls.alpn.iter().enumerate() {
                if tls.alpn[..j].contains(protocol) {
                    self.push(
                        join_index(&alpn_path, j),
                        Some(protocol.as_str().into()),
                        format!("`{}` is listed twice", protocol.as_str()),
                        Some("list each protocol once, in order of preference".into()),
                    );
                }
            }
        }
    }

    /// `upstreams[i].tls`, with `path` that key's path and `protocol` the upstream's.
    pub(super) fn upstream_tls(
        &mut self,
        path: &str,
        tls: &UpstreamTlsConfig,
        protocol: UpstreamProtocol,
    ) {
        if let Some(name) = &tls.server_name {
            let name_ok = !name.trim().is_empty()
                && !name.contains(char::is_whitespace)
                && !name.contains('/');
            if !name_ok {
                let hint = "a DNS name such as `api.internal` or an IP address, without scheme, port or path";
                self.push(
                    join_key(path, "server_name"),
                    Some(format!("{name:?}")),
                    "server_name is not a host name",
                    Some(hint.into()),
                );
            }
        }
        if let Some(ca) = &tls.ca_file {
            self.pem_file(
                join_key(path, "ca_file"),
                ca,
                "CA certificate",
                &["CERTIFICATE"],
            );
        }
        match (&tls.client_cert_file, &tls.client_key_file) {
            (Some(cert), Some(key)) => {
                self.pem_file(
                    join_key(path, "client_cert_file"),
                    cert,
                    "client certificate",
                    &["CERTIFICATE"],
                );
                self.pem_file(
                    join_key(path, "client_key_file"),
                    key,
                    "client private key",
                    &["PRIVATE KEY"],
                );
            }
            (Some(cert), None) => self.push(
                join_key(path, "client_cert_file"),
                Some(cert.display().to_string()),
                "client_cert_file is set without client_key_file",
                Some("mutual TLS needs both the certificate and its private key: add `client_key_file`, or remove `client_cert_file`".into()),
            ),
            (None, Some(key)) => self.push(
                join_key(path, "client_key_file"),
                Some(key.display().to_string()),
                "client_key_file is set without client_cert_file",
                Some("mutual TLS needs both the certificate and its private key: add `client_cert_file`, or remove `client_key_file`".into()),
            ),
            (None, None) => {}
        }
        if let Some(alpn) = &tls.alpn {
            self.upstream_alpn(&join_key(path, "alpn"), alpn, protocol);
        }
    }

    /// An explicit `upstreams[i].tls.alpn` must agree with `upstreams[i].protocol`: the
    /// pool speaks what the protocol says, whatever ALPN picked.
    fn upstream_alpn(
        &mut self,
        alpn_path: &str,
        alpn: &[AlpnProtocol],
        protocol: UpstreamProtocol,
    ) {
        let offered = |p| alpn.contains(&p);
        let conflict = match protocol {
            UpstreamProtocol::Http1 => alpn.iter().position(|p| *p == AlpnProtocol::H2).map(|j| {
                (
                    join_index(alpn_path, j),
                    "`h2` is offered to an upstream with `protocol: http1`".to_owned(),
                    "set `protocol: http2` (or `auto`) to speak HTTP/2 to it, or offer `http/1.1` only",
                )
            }),
            UpstreamProtocol::Http2 => alpn.iter().position(|p| *p == AlpnProtocol::Http11).map(|j| {
                (
                    join_index(alpn_path, j),
                    "`http/1.1` is offered to an upstream with `protocol: http2`".to_owned(),
                    "the pool would speak HTTP/2 even if the upstream chose HTTP/1.1: offer `[h2]` (or remove `alpn`), or set `protocol: auto`",
                )
            }),
            UpstreamProtocol::Auto if !(offered(AlpnProtocol::H2) && offered(AlpnProtocol::Http11)) => Some((
                alpn_path.to_owned(),
                "`protocol: auto` needs both `h2` and `http/1.1` offered".to_owned(),
                "remove `alpn` (auto offers [h2, http/1.1]), or set `protocol` to the one version offered",
            )),
            UpstreamProtocol::Auto => None,
        };
        if let Some((at, message, hint)) = conflict {
            let shown = alpn
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            self.push(at, Some(format!("[{shown}]")), message, Some(hint.into()));
        }
        for (j, protocol) in alpn.iter().enumerate() {
            if alpn[..j].contains(protocol) {
                self.push(
                    join_index(alpn_path, j),
                    Some(protocol.as_str().into()),
                    format!("`{}` is listed twice", protocol.as_str()),
                    Some("list each protocol once".into()),
                );
            }
        }
    }

    /// The file at `file` exists, is readable and holds a PEM section whose label ends with
    /// one of `labels` (`BEGIN CERTIFICATE`, `BEGIN EC PRIVATE KEY`, ...).
    fn pem_file(&mut self, path: String, file: &Path, what: &str, labels: &[&str]) {
        let shown = file.display().to_string();
        if shown.trim().is_empty() {
            self.push(
                path,
                None,
                format!("{what} file path is empty"),
                Some(format!("give the path of the PEM file holding the {what}")),
            );
            return;
        }
        let text = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(error) => {
                let hint = if file.is_relative() {
                    "check the path and its permissions; relative paths are taken from the gateway's working directory"
                } else {
                    "check the path and its permissions"
                };
                self.push(
                    path,
                    Some(shown),
                    format!("cannot read the {what} file: {error}"),
                    Some(hint.into()),
                );
                return;
            }
        };
        let text = String::from_utf8_lossy(&text);
        let found = text.lines().any(|line| {
            line.trim()
                .strip_prefix("-----BEGIN ")
                .and_then(|rest| rest.strip_suffix("-----"))
                .is_some_and(|label| labels.iter().any(|l| label.ends_with(l)))
        });
        if !found {
            let hint = if what.ends_with("certificate") && text.contains("PRIVATE KEY-----") {
                "this file holds a private key; are the certificate and key files swapped?"
            } else if what.ends_with("private key") && text.contains("BEGIN CERTIFICATE-----") {
                "this file holds a certificate; are the certificate and key files swapped?"
            } else {
                "the file must be PEM text with `-----BEGIN ...-----` sections"
            };
            self.push(
                path,
                Some(shown),
                format!("no PEM {what} found in the file"),
                Some(hint.into()),
            );
        }
    }
}
