//! Rules about the `chaos:` section: the API stays on loopback unless `allow_remote`;
//! proxy names are unique; an upstream is `host:port`; each toxic has a known type that
//! fits its proxy's protocol, a toxicity from 0 to 1 and a name unique in its proxy. The
//! listen addresses are checked against every other socket of the config in `addresses`.
//! Attribute values are checked by the chaos proxies themselves when `seawall run` starts
//! them (a bad one stops the start with the proxy's name).

use std::collections::HashMap;

use super::Found;
use crate::{
    CHAOS_HTTP_TOXIC_TYPES, CHAOS_TOXIC_TYPES, ChaosProtocol, ChaosProxyConfig, ChaosStream,
    Config,
    locate::{join_index, join_key},
    suggest,
};

impl Found {
    pub(super) fn chaos(&mut self, config: &Config) {
        let Some(chaos) = &config.chaos else { return };
        if !chaos.listen.ip().is_loopback() && !chaos.allow_remote {
            let hint = "the chaos API has no token and can cut every proxied connection: listen on 127.0.0.1, or set `chaos.allow_remote: true` on a trusted network";
            self.push(
                "chaos.listen".into(),
                Some(chaos.listen.to_string()),
                "chaos API listens on a non-loopback address",
                Some(hint.into()),
            );
        }
        self.unique_names(
            "chaos.proxies",
            chaos.proxies.iter().map(|p| p.name.as_str()),
        );
        for (i, proxy) in chaos.proxies.iter().enumerate() {
            self.chaos_proxy(&join_index("chaos.proxies", i), proxy);
        }
    }

    fn chaos_proxy(&mut self, path: &str, proxy: &ChaosProxyConfig) {
        let port = proxy
            .upstream
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .and_then(|(_, port)| port.parse::<u16>().ok());
        if port.is_none() {
            self.push(
                join_key(path, "upstream"),
                Some(proxy.upstream.clone()),
                "upstream must be `host:port`",
                Some("e.g. `127.0.0.1:9000` or `localhost:5432`".into()),
            );
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        for (j, toxic) in proxy.toxics.iter().enumerate() {
            let at = join_index(&join_key(path, "toxics"), j);
            let kind = toxic.kind.as_str();
            if !CHAOS_TOXIC_TYPES.contains(&kind) {
                self.push(
                    join_key(&at, "type"),
                    Some(kind.to_owned()),
                    format!("unknown toxic type `{kind}`"),
                    Some(suggest::hint(kind, CHAOS_TOXIC_TYPES)),
                );
            } else if let Some(problem) = misfit(proxy.protocol, kind) {
                self.push(
                    join_key(&at, "type"),
                    Some(kind.to_owned()),
                    problem,
                    Some(format!(
                        "`http_status`, `http_delay` and `http_reset` need `protocol: http` on the proxy ({path}.protocol); the other types need a tcp proxy"
                    )),
                );
            }
            if let Some(t) = toxic.toxicity.filter(|t| !(0.0..=1.0).contains(t)) {
                self.push(
                    join_key(&at, "toxicity"),
                    Some(t.to_string()),
                    "toxicity must be from 0 to 1",
                    Some("it is the chance that the toxic acts: 0.25 acts on a quarter".into()),
                );
            }
            let stream = match toxic.stream.unwrap_or(ChaosStream::Downstream) {
                ChaosStream::Upstream => "upstream",
                ChaosStream::Downstream => "downstream",
            };
            let name = toxic
                .name
                .clone()
                .unwrap_or_else(|| format!("{kind}_{stream}"));
            if let Some(first) = names.get(&name) {
                self.push(
                    join_key(&at, "name"),
                    Some(name.clone()),
                    format!("duplicate toxic name `{name}` in this proxy"),
                    Some(format!(
                        "already used by toxics[{first}] (a toxic without a name is `<type>_<stream>`); give each its own `name`"
                    )),
                );
            } else {
                names.insert(name, j);
            }
        }
    }
}

/// Why a toxic type cannot act on a proxy of this protocol, if it cannot.
fn misfit(protocol: ChaosProtocol, kind: &str) -> Option<String> {
    let http = CHAOS_HTTP_TOXIC_TYPES.contains(&kind);
    match protocol {
        _ if kind == "noop" => None,
        ChaosProtocol::Tcp if http => Some(format!(
            "toxic type `{kind}` needs a proxy with `protocol: http`"
        )),
        ChaosProtocol::Http if !http => Some(format!(
            "toxic type `{kind}` acts on bytes and cannot be used on an http proxy"
        )),
        _ => None,
    }
}
