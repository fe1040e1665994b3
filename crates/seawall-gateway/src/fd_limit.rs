//! The file-descriptor budget: every client connection costs a descriptor, and so does
//! every upstream connection it is forwarded on. Client sockets are bounded by
//! `max_connections` summed over the listeners; upstream sockets by the same sum (one per
//! client connection at most, HTTP/1.1 being one request at a time) and, more tightly, by
//! the pools: `max_connections_per_endpoint` per `ip:port` endpoint. A host-name endpoint
//! gets a pool per address it resolves to, which is not known in advance, so an upstream
//! with one counts as unbounded. Both, plus a margin for everything else (listening
//! sockets, the admin API, DNS, health probes, Redis, log files), must fit under the
//! process's `RLIMIT_NOFILE`. Past it, `accept` and `connect` fail with `EMFILE`, which
//! looks like an outage of the gateway or of every upstream at once.
//!
//! Checked at start and on a reload that raises the sum: the soft limit is raised toward
//! the hard one when it is too low (as nginx's `worker_rlimit_nofile` or Go's runtime do);
//! if even the hard limit is too low, a WARN names the numbers and the fix. Never fatal:
//! a gateway that never reaches its `max_connections` works fine under a lower limit.

use seawall_config::Config;

/// Descriptors kept aside for everything that is not a proxied connection.
pub const MARGIN: u64 = 256;

/// The descriptors `config` can use at once, margin included.
pub fn needed(config: &Config) -> u64 {
    let clients = client_sockets(config);
    clients
        .saturating_add(clients.min(upstream_sockets(config)))
        .saturating_add(MARGIN)
}

/// Client connections the listeners accept at once.
fn client_sockets(config: &Config) -> u64 {
    config
        .listeners
        .iter()
        .map(|l| u64::try_from(l.max_connections).unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add)
}

/// Upstream connections the pools allow at once (`u64::MAX` when a host-name endpoint
/// makes it unknowable).
fn upstream_sockets(config: &Config) -> u64 {
    config
        .upstreams
        .iter()
        .map(|u| {
            let per_endpoint =
                u64::try_from(u.pool.max_connections_per_endpoint).unwrap_or(u64::MAX);
            u.endpoints
                .iter()
                .map(|e| {
                    if e.parse::<std::net::SocketAddr>().is_ok() {
                        per_endpoint
                    } else {
                        u64::MAX
                    }
                })
                .fold(0, u64::saturating_add)
        })
        .fold(0, u64::saturating_add)
}

/// What to do about a soft limit `soft` (hard limit `hard`) for `needed` descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The soft limit is already enough.
    Enough,
    /// Raise the soft limit to this (the hard limit, or `needed` when the hard limit is
    /// unlimited: setting "unlimited" is refused by Linux).
    Raise(u64),
    /// Even the hard limit is below `needed`: raise the soft limit to it, and warn.
    TooLow,
}

/// Decides, without touching the process.
pub fn plan(needed: u64, soft: u64, hard: u64) -> Plan {
    if soft >= needed {
        Plan::Enough
    } else if hard < needed {
        Plan::TooLow
    } else if hard == rlimit::INFINITY {
        Plan::Raise(needed)
    } else {
        Plan::Raise(hard)
    }
}

/// Checks the process's limit against `needed`, raises the soft limit if that helps and
/// logs what it did; `why` says what asked (start or reload).
pub fn ensure(needed: u64, why: &str) {
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::debug!(%error, "Cannot read the file descriptor limit; not checked.");
            return;
        }
    };
    let raise = |to: u64| rlimit::setrlimit(rlimit::Resource::NOFILE, to, hard);
    match plan(needed, soft, hard) {
        Plan::Enough => {}
        Plan::Raise(to) => match raise(to) {
            Ok(()) => tracing::info!(
                from = soft,
                to,
                needed,
                "Raised the file descriptor soft limit ({why})."
            ),
            Err(error) => warn_too_low(needed, soft, hard, why, Some(&error)),
        },
        Plan::TooLow => {
            let raised = raise(hard).map(|()| hard).unwrap_or(soft);
            warn_too_low(needed, raised, hard, why, None);
        }
    }
}

fn warn_too_low(needed: u64, soft: u64, hard: u64, why: &str, error: Option<&std::io::Error>) {
    let error = error
        .map(|e| format!(" (raising it failed: {e})"))
        .unwrap_or_default();
    tracing::warn!(
        needed,
        soft_limit = soft,
        hard_limit = hard,
        "File descriptor limit too low ({why}): the listeners' max_connections and the \
         upstream pools' max_connections_per_endpoint allow this many client and upstream \
         sockets, plus {MARGIN} spare: {needed} are needed, but the process may open {soft}{error}. Past that, new \
         connections fail with 'too many open files'. Raise the limit to at least {needed} \
         (`ulimit -n {needed}` in the shell that starts seawall, `LimitNOFILE={needed}` in \
         its systemd unit, `--ulimit nofile={needed}` for docker), or lower max_connections."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Config {
        seawall_config::parse("t.yaml", yaml).unwrap_or_else(|d| panic!("{d}"))
    }

    fn listener(name: &str, max: u32) -> String {
        format!(
            "  - {{name: {name}, listen: 127.0.0.1:0, max_connections: {max}, routes: [{{name: r{name}, match: {{path_prefix: /}}, upstream: up}}]}}\n"
        )
    }

    #[test]
    fn two_descriptors_per_connection_when_the_pools_allow_as_many() {
        let yaml = format!(
            "listeners:\n{}{}upstreams:\n  - {{name: up, endpoints: [127.0.0.1:9, 127.0.0.1:10], pool: {{max_connections_per_endpoint: 5000}}}}\n",
            listener("a", 1000),
            listener("b", 500)
        );
        assert_eq!(needed(&parse(&yaml)), 1500 + 1500 + MARGIN);
    }

    #[test]
    fn upstream_sockets_are_bounded_by_the_pools() {
        let yaml = format!(
            "listeners:\n{}upstreams:\n  - {{name: up, endpoints: [127.0.0.1:9, 127.0.0.1:10], pool: {{max_connections_per_endpoint: 100, max_idle_per_endpoint: 10}}}}\n",
            listener("a", 10_000)
        );
        assert_eq!(needed(&parse(&yaml)), 10_000 + 200 + MARGIN);
    }

    #[test]
    fn a_host_name_endpoint_counts_as_unbounded() {
        let yaml = format!(
            "listeners:\n{}upstreams:\n  - {{name: up, endpoints: [localhost:9], pool: {{max_connections_per_endpoint: 100, max_idle_per_endpoint: 10}}}}\n",
            listener("a", 1000)
        );
        assert_eq!(needed(&parse(&yaml)), 2000 + MARGIN);
    }

    #[test]
    fn the_embedded_default_fits_a_common_20000_descriptor_limit() {
        let config = parse(seawall_config::DEFAULT_CONFIG);
        assert_eq!(needed(&config), 10_000 + 1024 + MARGIN);
        assert_eq!(plan(needed(&config), 20_000, 20_000), Plan::Enough);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one_and_a_short_hard_limit_is_reported() {
        assert_eq!(plan(2256, 4096, 4096), Plan::Enough);
        assert_eq!(plan(20_256, 1024, 524_288), Plan::Raise(524_288));
        assert_eq!(plan(20_256, 1024, rlimit::INFINITY), Plan::Raise(20_256));
        assert_eq!(plan(20_256, 1024, 4096), Plan::TooLow);
    }

    #[test]
    fn ensure_leaves_the_process_with_enough_when_the_hard_limit_allows() {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let want = soft.saturating_add(1).min(hard);
        ensure(want, "test");
        let (now, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert!(now >= want, "soft limit {now}, wanted {want} (hard {hard})");
    }
}
