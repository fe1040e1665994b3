//! The metric catalogue of `seawall rules` and `seawall dashboard`
//! (`seawall_ops::catalogue`) against the gateway's own registry: every family the
//! generators may name is registered by `seawall_gateway::metrics::Metrics` under that
//! name and type. A family appears in the exposition only once it has a series, so the
//! test gives each one a series through its typed handle, then reads the encoded text.

use seawall_gateway::metrics::*;

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn every_catalogued_family_is_registered_by_the_gateway_with_its_type() {
    let m = Metrics::new(&seawall_config::default_buckets());
    let up = || UpstreamLabel { upstream: s("u") };
    let up_reason = || UpstreamReasonLabels {
        upstream: s("u"),
        reason: s("r"),
    };
    let route_outcome = || RetryLabels {
        route: s("r"),
        outcome: s("o"),
    };
    m.request_duration
        .get_or_create(&RequestLabels {
            route: s("r"),
            method: s("GET"),
            status_class: s("2xx"),
        })
        .observe(0.1);
    m.errors
        .get_or_create(&ErrorLabels {
            route: s("r"),
            kind: s("k"),
        })
        .inc();
    m.shed.get_or_create(&up_reason()).inc();
    m.breaker_state.get_or_create(&up()).set(1);
    m.breaker_transitions
        .get_or_create(&TransitionLabels {
            upstream: s("u"),
            from: s("closed"),
            to: s("open"),
            cause: s("failure_ratio"),
        })
        .inc();
    m.breaker_rejected.get_or_create(&up()).inc();
    m.retries.get_or_create(&route_outcome()).inc();
    m.hedges.get_or_create(&route_outcome()).inc();
    m.fallbacks
        .get_or_create(&FallbackLabels {
            route: s("r"),
            kind: s("stale_cache"),
            reason: s("k"),
        })
        .inc();
    m.endpoints_ejected.get_or_create(&up()).set(1);
    m.endpoints_unhealthy.get_or_create(&up()).set(1);
    m.outlier_events.get_or_create(&up_reason()).inc();
    m.concurrency_limit.get_or_create(&up()).set(1);
    m.ratelimit_decisions
        .get_or_create(&RateLimitLabels {
            route: s("r"),
            limit: s("l"),
            outcome: s("fail_open"),
        })
        .inc();
    m.reloads
        .get_or_create(&ReloadLabels {
            outcome: s("error"),
        })
        .inc();
    m.upstream_requests
        .get_or_create(&ReuseLabels {
            upstream: s("u"),
            reused: s("true"),
        })
        .inc();
    m.upstream_in_use.get_or_create(&up()).set(1);
    m.upstream_idle.get_or_create(&up()).set(1);
    m.upstream_connecting.get_or_create(&up()).set(1);
    m.upstream_closed
        .get_or_create(&CloseLabels {
            upstream: s("u"),
            reason: s("r"),
        })
        .inc();
    m.upstream_checkout_wait.get_or_create(&up()).observe(0.1);
    m.upstream_response_head_duration
        .get_or_create(&up())
        .observe(0.1);
    m.downstream_rejected
        .get_or_create(&ListenerLabel { listener: s("l") })
        .inc();
    m.downstream_open
        .get_or_create(&ListenerLabel { listener: s("l") })
        .set(1);

    // OpenMetrics, as the registry encodes it: a counter family is named without `_total`.
    let text = m.encode();
    for (name, ty) in seawall_ops::catalogue::FAMILIES {
        let family = match *ty {
            "counter" => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        assert!(
            text.contains(&format!("# TYPE {family} {ty}\n")),
            "the gateway registers no {ty} `{family}`:\n{text}"
        );
    }
    assert_eq!(
        seawall_ops::catalogue::FAMILIES.len(),
        text.matches("# TYPE ").count(),
        "each catalogued family was given exactly one series"
    );
}
