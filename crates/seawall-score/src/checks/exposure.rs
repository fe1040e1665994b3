//! `SW6xx`: security and exposure. Listeners that face the internet need explicit,
//! tight client limits, and the admin API and the debug trace belong on loopback.

use std::time::Duration;

use seawall_config::MiddlewareConfig;

use crate::{
    finding::Hit,
    scope::{Scope, Unit, UnitKind},
};

/// Honest clients send their headers well within this.
const MAX_HEADER_READ: Duration = Duration::from_secs(10);

fn listener_unit(index: usize, name: &str) -> Unit {
    Unit {
        kind: UnitKind::Listener,
        name: name.to_owned(),
        path: format!("listeners[{index}]"),
    }
}

/// `SW601`: a public listener whose `header_read_timeout` is defaulted or above 10s.
pub(crate) fn public_header_read_timeout(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .config
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_public())
        .filter_map(|(i, l)| {
            let key = format!("listeners[{i}].header_read_timeout");
            let fires = !scope.written(&key) || l.header_read_timeout.get() > MAX_HEADER_READ;
            fires.then(|| Hit {
                unit: listener_unit(i, &l.name),
                fix: format!("set `{key}: 5s`"),
                path: key,
                value: Some(l.header_read_timeout.to_string()),
                message: format!(
                    "public listener `{}` has no short header-read timeout of its own",
                    l.name
                ),
            })
        })
        .collect()
}

/// `SW602`: a public listener whose `max_connections` is defaulted.
pub(crate) fn public_connection_cap(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .config
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_public())
        .filter_map(|(i, l)| {
            let key = format!("listeners[{i}].max_connections");
            (!scope.written(&key)).then(|| Hit {
                unit: listener_unit(i, &l.name),
                fix: format!(
                    "set `{key}` to what the host's file descriptors and memory allow, e.g. `{key}: 5000`"
                ),
                path: key,
                value: Some(l.max_connections.to_string()),
                message: format!(
                    "public listener `{}` relies on the default connection cap",
                    l.name
                ),
            })
        })
        .collect()
}

/// `SW603`: the admin API off loopback.
pub(crate) fn admin_off_loopback(scope: &Scope<'_>) -> Vec<Hit> {
    let listen = scope.config.admin.listen;
    if listen.ip().is_loopback() {
        return Vec::new();
    }
    vec![Hit {
        unit: Unit::global(),
        path: "admin.listen".to_owned(),
        value: Some(listen.to_string()),
        message: format!("the admin API listens on {listen}"),
        fix: format!(
            "set `admin.listen: 127.0.0.1:{}` and reach it through a sidecar or an SSH tunnel",
            listen.port()
        ),
    }]
}

/// `SW604`: the `debug` layer on a route of a public listener.
pub(crate) fn debug_on_public_listener(scope: &Scope<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for r in scope.routes().filter(|r| r.listener.is_public()) {
        for (k, layer) in r.route.middleware.iter().enumerate() {
            if matches!(layer, MiddlewareConfig::Debug) {
                let key = r.key(&format!("middleware[{k}]"));
                hits.push(Hit {
                    unit: r.unit(),
                    fix: format!(
                        "remove `debug` from `{}`, or serve the route on a loopback listener for debugging",
                        r.key("middleware")
                    ),
                    path: key,
                    value: Some("debug".to_owned()),
                    message: format!(
                        "route `{}` returns debug traces on public listener `{}`",
                        r.name(),
                        r.listener.name
                    ),
                });
            }
        }
    }
    hits
}
