//! Semantic validation: the rules a well-typed config must still satisfy (references resolve,
//! names and addresses are unique, timeouts are consistent, limits make sense).
//!
//! It works on the typed [`Config`] so the runtime can run it too (e.g. before a hot reload);
//! each [`Problem`] names its key path, which [`crate::parse`] turns into a line and column.
//! Rules about listeners and routes are in `route` (their TLS in `tls`), about upstreams in
//! `upstream`, about the `chaos:` section in `chaos`; this module holds the cross-cutting ones (addresses, admin, metrics).

use std::{collections::HashMap, fmt, net::SocketAddr};

mod chaos;
mod fault;
pub use fault::{route_names, runtime_fault as validate_runtime_fault};
mod http2;
mod policy;
mod rate_limit;
mod route;
mod slo;
mod tls;
mod upstream;

use crate::{
    Config,
    locate::{join_index, join_key},
    units::HumanDuration,
};

/// One semantic problem, located by key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `upstreams[1].timeouts.connect`.
    pub path: String,
    /// The offending value, rendered.
    pub value: Option<String>,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(value) = &self.value {
            write!(f, " (value: {value})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every semantic problem of `config`; empty when it is valid.
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut found = Found::default();
    found.listeners(config);
    found.listener_tls(config);
    found.upstreams(config);
    found.addresses(config);
    found.admin(config);
    found.metrics(config);
    found.rate_limits(config);
    found.faults(config);
    found.chaos(config);
    found.0
}

/// What `config` allows but probably does not mean: each still loads and runs, so these are
/// shown as warnings (`seawall check`), never refused.
pub fn warnings(config: &Config) -> Vec<Problem> {
    let mut found = Found::default();
    found.redis_timeout_warnings(config);
    found.route_timeouts(config);
    found.0
}

#[derive(Default)]
struct Found(Vec<Problem>);

impl Found {
    fn push(
        &mut self,
        path: String,
        value: Option<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.0.push(Problem {
            path,
            value,
            message: message.into(),
            hint,
        });
    }

    fn nonzero_duration(&mut self, path: String, d: HumanDuration) {
        if d.get().is_zero() {
            let hint = "a zero timeout fails every request; use a positive duration such as \"5s\"";
            self.push(
                path,
                Some(d.to_string()),
                "timeout must be greater than zero",
                Some(hint.into()),
            );
        }
    }

    fn nonzero_count(&mut self, path: String, n: usize, what: &str) {
        if n == 0 {
            self.push(
                path,
                Some("0".into()),
                format!("{what} must be greater than zero"),
                Some("zero would refuse all traffic".into()),
            );
        }
    }

    fn unique_names<'a>(&mut self, section: &str, names: impl Iterator<Item = &'a str>) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, name) in names.enumerate() {
            let path = join_key(&join_index(section, i), "name");
            if name.trim().is_empty() {
                self.push(
                    path,
                    Some(format!("{name:?}")),
                    "name must not be empty",
                    Some("names appear in logs and metrics".into()),
                );
            } else if let Some(first) = seen.get(name) {
                let hint = format!("already used by {section}[{first}]; names must be unique");
                self.push(
                    path,
                    Some(name.to_owned()),
                    format!("duplicate name `{name}`"),
                    Some(hint),
                );
            } else {
                seen.insert(name, i);
            }
        }
    }

    /// Two sockets bound to the same address fail at startup; catch it before.
    fn addresses(&mut self, config: &Config) {
        let mut bound: Vec<(String, SocketAddr)> = Vec::new();
        let listeners = config
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| (join_key(&join_index("listeners", i), "listen"), l.listen));
        let others = [
            ("admin.listen".to_owned(), Some(config.admin.listen)),
            (
                "sim.listen".to_owned(),
                config.sim.as_ref().map(|s| s.listen),
            ),
        ];
        let chaos = config.chaos.iter().flat_map(|c| {
            let proxies = c.proxies.iter().enumerate().map(|(i, p)| {
                (
                    join_key(&join_index("chaos.proxies", i), "listen"),
                    p.listen,
                )
            });
            std::iter::once(("chaos.listen".to_owned(), c.listen)).chain(proxies)
        });
        let all = listeners
            .chain(others.into_iter().filter_map(|(p, a)| Some((p, a?))))
            .chain(chaos);
        for (path, addr) in all {
            // Port 0 asks the OS for a free port, so it never collides (tests rely on this).
            if addr.port() != 0
                && let Some((first, _)) = bound.iter().find(|(_, other)| conflicts(*other, addr))
            {
                let hint = format!("already used by {first}; give each socket its own port");
                self.push(
                    path.clone(),
                    Some(addr.to_string()),
                    "listen address is already in use by this config",
                    Some(hint),
                );
            }
            bound.push((path, addr));
        }
    }

    fn admin(&mut self, config: &Config) {
        let admin = &config.admin;
        let token_env = admin.token_env.trim();
        if !admin.listen.ip().is_loopback() && token_env.is_empty() {
            self.push(
                "admin.listen".into(),
                Some(admin.listen.to_string()),
                "admin API listens on a non-loopback address without a token",
                Some(ADMIN_TOKEN_HINT.into()),
            );
        }
        for (path, name) in [
            ("admin.token_env", token_env),
            ("debug.token_env", config.debug.token_env.trim()),
        ] {
            if !name.is_empty() && !is_env_var_name(name) {
                let hint = "use letters, digits and `_`, not starting with a digit, e.g. `SEAWALL_ADMIN_TOKEN`";
                self.push(
                    path.into(),
                    Some(name.to_owned()),
                    "not a valid environment variable name",
                    Some(hint.into()),
                );
            }
        }
    }

    fn metrics(&mut self, config: &Config) {
        let path = "metrics.request_duration_buckets";
        let buckets = &config.metrics.request_duration_buckets;
        if buckets.is_empty() {
            self.push(
                path.into(),
                None,
                "histogram needs at least one bucket",
                Some("remove the key to use the default buckets".into()),
            );
        }
        for (i, bucket) in buckets.iter().enumerate() {
            if !bucket.is_finite() || *bucket <= 0.0 {
                let hint =
                    "buckets are upper bounds in seconds; use positive numbers such as 0.005";
                self.push(
                    join_index(path, i),
                    Some(bucket.to_string()),
                    "bucket must be a positive number of seconds",
                    Some(hint.into()),
                );
            } else if let Some(previous) = i
                .checked_sub(1)
                .and_then(|p| buckets.get(p))
                .filter(|p| *p >= bucket)
            {
                let hint = "list buckets in strictly increasing order, each once";
                let message =
                    format!("bucket {bucket} is not greater than the previous bucket {previous}");
                self.push(
                    join_index(path, i),
                    Some(bucket.to_string()),
                    message,
                    Some(hint.into()),
                );
            }
        }
    }
}

/// The hint for an admin API reachable from other hosts.
pub(crate) const ADMIN_TOKEN_HINT: &str = "a non-loopback admin API must be token-protected: set `admin.token_env` to the name of an environment variable and put the token in it (the gateway refuses to start when it is empty), or listen on 127.0.0.1";

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether binding `a` and `b` together would fail: same port and same IP, or one of them is
/// the unspecified address of the same family (`0.0.0.0` covers every IPv4 address).
fn conflicts(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && (a.ip() == b.ip()
            || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified())))
}
