//! Rules about listener TLS (`listeners[].tls`): the certificate and key files exist and
//! look like what they should hold, ALPN offers something, the handshake has time.
//!
//! The files are only looked at, not parsed as X.509 (this crate knows the file format of
//! the config, not of certificates): the gateway parses them when it builds the listener,
//! at start and on every reload, and refuses the config if they do not load. Checking
//! here too is what lets `seawall check` catch a wrong path or swapped files before a
//! deploy. Relative paths are taken from the working directory, as the gateway does.

use std::path::Path;

use super::Found;
use crate::{
    Config, ListenerTlsConfig,
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
            let hint = if what == "certificate" && text.contains("PRIVATE KEY-----") {
                "this file holds a private key; are `cert_file` and `key_file` swapped?"
            } else if what == "private key" && text.contains("BEGIN CERTIFICATE-----") {
                "this file holds a certificate; are `cert_file` and `key_file` swapped?"
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
