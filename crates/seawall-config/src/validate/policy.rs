//! Rules about the resilience policies: ratios in range, counts and durations that make
//! sense, durations in the right order, and `failure_on` / `retry_on` entries that name a
//! status or an error kind. The same bounds as `seawall-resilience`'s `try_new`s, so a
//! config that passes here never fails to build.

use seawall_core::ErrorKind;

use super::Found;
use crate::{
    BackoffConfig, BreakerConfig, ConcurrencyConfig, FallbackConfig, HealthCheckConfig,
    HedgeConfig, HedgeDelayConfig, OutcomeMatch, OutlierConfig, RetryBudgetConfig, RetryConfig,
    StaticResponseConfig,
    locate::{join_index, join_key},
    suggest,
    units::HumanDuration,
};

impl Found {
    pub(super) fn breaker(&mut self, path: &str, b: &BreakerConfig) {
        let key = |k: &str| join_key(path, k);
        if b.buckets == 0 || b.buckets > 1000 {
            self.push(
                key("buckets"),
                Some(b.buckets.to_string()),
                "buckets must be between 1 and 1000",
                Some("10 buckets forget a tenth of the window at a time".into()),
            );
        } else if b.window.get() / b.buckets < std::time::Duration::from_millis(1) {
            self.push(
                key("window"),
                Some(b.window.to_string()),
                format!(
                    "a window of {} split into {} buckets gives buckets shorter than 1ms",
                    b.window, b.buckets
                ),
                Some("lengthen the window or use fewer buckets".into()),
            );
        }
        self.at_least_one(key("min_calls"), b.min_calls, "min_calls");
        self.unit_ratio(key("failure_ratio"), b.failure_ratio);
        self.unit_ratio(key("slow_call_ratio"), b.slow_call_ratio);
        self.positive(key("slow_call_duration"), b.slow_call_duration);
        self.positive(key("open_duration"), b.open_duration);
        self.multiplier(key("open_multiplier"), b.open_multiplier);
        if b.max_open_duration < b.open_duration {
            self.push(
                key("max_open_duration"),
                Some(b.max_open_duration.to_string()),
                format!(
                    "max_open_duration is shorter than open_duration ({})",
                    b.open_duration
                ),
                Some(
                    "the open period starts at open_duration and grows up to max_open_duration"
                        .into(),
                ),
            );
        }
        self.at_least_one(
            key("half_open_probes"),
            b.half_open_probes,
            "half_open_probes",
        );
        self.outcome_list(&key("failure_on"), &b.failure_on);
    }

    pub(super) fn outlier(&mut self, path: &str, o: &OutlierConfig) {
        let key = |k: &str| join_key(path, k);
        self.at_least_one(
            key("consecutive_failures"),
            o.consecutive_failures,
            "consecutive_failures",
        );
        self.positive(key("base_ejection_time"), o.base_ejection_time);
        self.positive(key("interval"), o.interval);
        if o.max_ejection_time < o.base_ejection_time {
            self.push(
                key("max_ejection_time"),
                Some(o.max_ejection_time.to_string()),
                format!(
                    "max_ejection_time is shorter than base_ejection_time ({})",
                    o.base_ejection_time
                ),
                Some("make it at least base_ejection_time".into()),
            );
        }
        if o.max_ejection_percent > 100 {
            self.push(
                key("max_ejection_percent"),
                Some(o.max_ejection_percent.to_string()),
                "max_ejection_percent must be between 0 and 100",
                Some("it is a percentage of the upstream's endpoints; 0 disables ejection".into()),
            );
        }
    }

    pub(super) fn concurrency(&mut self, path: &str, c: &ConcurrencyConfig) {
        self.at_least_one(
            join_key(path, "max_concurrent"),
            c.max_concurrent,
            "max_concurrent",
        );
        self.positive(join_key(path, "queue_timeout"), c.queue_timeout);
        if let Some(a) = &c.adaptive {
            let path = join_key(path, "adaptive");
            self.at_least_one(join_key(&path, "min_limit"), a.min_limit, "min_limit");
            if !(a.min_limit <= a.initial_limit && a.initial_limit <= a.max_limit) {
                self.push(
                    join_key(&path, "initial_limit"),
                    Some(a.initial_limit.to_string()),
                    format!(
                        "limits must satisfy min_limit ≤ initial_limit ≤ max_limit, got {} ≤ {} ≤ {}",
                        a.min_limit, a.initial_limit, a.max_limit
                    ),
                    Some("e.g. `{min_limit: 20, initial_limit: 20, max_limit: 200}`".into()),
                );
            }
        }
    }

    pub(super) fn retry_budget(&mut self, path: &str, b: &RetryBudgetConfig) {
        if !(b.ratio.is_finite() && (0.0..=1000.0).contains(&b.ratio)) {
            self.push(
                join_key(path, "ratio"),
                Some(b.ratio.to_string()),
                "ratio must be between 0 and 1000",
                Some("it is retries per request: 0.2 lets retries add at most 20 % load".into()),
            );
        }
        let ttl = b.ttl.get();
        if ttl < std::time::Duration::from_secs(1) || ttl > std::time::Duration::from_secs(60) {
            self.push(
                join_key(path, "ttl"),
                Some(b.ttl.to_string()),
                "ttl must be between 1s and 60s",
                Some("the default, 10s, is Finagle's and linkerd's".into()),
            );
        }
    }

    /// `deadline` is the route's `timeout`.
    pub(super) fn retry(&mut self, path: &str, r: &RetryConfig, deadline: HumanDuration) {
        let key = |k: &str| join_key(path, k);
        if r.max_attempts == 0 || r.max_attempts > 10 {
            self.push(
                key("max_attempts"),
                Some(r.max_attempts.to_string()),
                "max_attempts must be between 1 and 10",
                Some("it counts every try, the first included: 2 means one retry".into()),
            );
        }
        if let Some(t) = r.per_try_timeout {
            self.positive(key("per_try_timeout"), t);
            if t >= deadline && r.max_attempts > 1 {
                self.push(
                    key("per_try_timeout"),
                    Some(t.to_string()),
                    format!("per_try_timeout {t} is not shorter than the route's {deadline} timeout"),
                    Some(format!(
                        "a first try may then use the whole deadline and leave no time for a retry; make it a fraction of {deadline}, or remove it"
                    )),
                );
            }
        }
        self.outcome_list(&key("retry_on"), &r.retry_on);
        self.backoff(&key("backoff"), &r.backoff);
    }

    /// `upstreams` are the names defined in `upstreams`; `own` is the route's upstream.
    pub(super) fn fallback(
        &mut self,
        path: &str,
        f: &FallbackConfig,
        upstreams: &[&str],
        own: &str,
    ) {
        if f.static_response.is_none() && f.stale_cache.is_none() && f.upstream.is_none() {
            self.push(
                path.to_owned(),
                None,
                "fallback needs `upstream`, `stale_cache`, `static`, or several of them",
                Some("e.g. `fallback: {stale_cache: {}}`".into()),
            );
        }
        if let Some(name) = &f.upstream {
            let key = join_key(path, "upstream");
            if !upstreams.contains(&name.as_str()) {
                let hint = match suggest::closest(name, upstreams.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("defined upstreams: {}", suggest::quoted_list(upstreams)),
                };
                self.push(
                    key,
                    Some(name.clone()),
                    format!("fallback refers to unknown upstream `{name}`"),
                    Some(hint),
                );
            } else if name == own {
                self.push(
                    key,
                    Some(name.clone()),
                    "the fallback upstream is the route's own upstream",
                    Some("name another upstream (a standby, another region), or remove it".into()),
                );
            }
        }
        if let Some(status) = f.status {
            if !(200..=599).contains(&status) {
                self.push(
                    join_key(path, "status"),
                    Some(status.to_string()),
                    "status must be between 200 and 599",
                    Some("e.g. 206 for clients that expect a partial answer".into()),
                );
            }
            if f.stale_cache.is_none() {
                self.push(
                    join_key(path, "status"),
                    Some(status.to_string()),
                    "status overrides stale-cache answers, but there is no `stale_cache`",
                    Some("set the static answer's status under `static.status`".into()),
                );
            }
        }
        if let Some(c) = &f.stale_cache {
            let cache = join_key(path, "stale_cache");
            self.at_least_one(
                join_key(&cache, "max_entries"),
                c.max_entries,
                "max_entries",
            );
            if c.max_body_bytes.bytes() == 0 {
                self.push(
                    join_key(&cache, "max_body_bytes"),
                    Some(c.max_body_bytes.to_string()),
                    "max_body_bytes must be greater than zero",
                    Some("zero caches nothing; e.g. \"1MiB\"".into()),
                );
            }
            self.positive(join_key(&cache, "max_age"), c.max_age);
        }
        if let Some(r) = &f.static_response {
            self.static_fallback(&join_key(path, "static"), r);
        }
    }

    pub(super) fn health_check(&mut self, path: &str, h: &HealthCheckConfig) {
        let key = |k: &str| join_key(path, k);
        if !h.path.starts_with('/') {
            self.push(
                key("path"),
                Some(h.path.clone()),
                "path must start with `/`",
                Some(format!("write `/{}`", h.path.trim_start_matches('/'))),
            );
        }
        self.positive(key("interval"), h.interval);
        self.positive(key("timeout"), h.timeout);
        if h.timeout > h.interval {
            self.push(
                key("timeout"),
                Some(h.timeout.to_string()),
                format!("timeout is longer than interval ({})", h.interval),
                Some("a probe must end before the next one starts".into()),
            );
        }
        self.at_least_one(
            key("healthy_threshold"),
            h.healthy_threshold,
            "healthy_threshold",
        );
        self.at_least_one(
            key("unhealthy_threshold"),
            h.unhealthy_threshold,
            "unhealthy_threshold",
        );
        if !(100..=599).contains(&h.expected_status) {
            self.push(
                key("expected_status"),
                Some(h.expected_status.to_string()),
                "expected_status must be between 100 and 599",
                Some("e.g. 200".into()),
            );
        }
    }

    /// `deadline` is the route's `timeout`.
    pub(super) fn hedge(&mut self, path: &str, h: &HedgeConfig, deadline: HumanDuration) {
        if !(1..=3).contains(&h.max_extra) {
            self.push(
                join_key(path, "max_extra"),
                Some(h.max_extra.to_string()),
                "max_extra must be between 1 and 3",
                Some("each extra copy adds load; 1 is The Tail at Scale's choice".into()),
            );
        }
        if let HedgeDelayConfig::Fixed(d) = h.delay {
            self.positive(join_key(path, "delay"), d);
            if d >= deadline {
                self.push(
                    join_key(path, "delay"),
                    Some(d.to_string()),
                    format!("hedge delay {d} is not shorter than the route's {deadline} timeout"),
                    Some(
                        "no hedge could ever be sent; use about the p95 latency, or \"p95\"".into(),
                    ),
                );
            }
        }
    }

    fn static_fallback(&mut self, path: &str, r: &StaticResponseConfig) {
        if !(200..=599).contains(&r.status) {
            self.push(
                join_key(path, "status"),
                Some(r.status.to_string()),
                "status must be between 200 and 599",
                Some("a fallback is a complete answer, e.g. 200 with cached data or 503".into()),
            );
        }
        let headers = join_key(path, "headers");
        for (name, value) in &r.headers {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(token) {
                self.push(
                    join_key(&headers, name),
                    Some(name.clone()),
                    "not a valid header name",
                    Some("use letters, digits and `-`, e.g. `x-fallback`".into()),
                );
            } else if value.chars().any(|c| c.is_control() && c != '\t') {
                self.push(
                    join_key(&headers, name),
                    Some(value.clone()),
                    "header value contains a control character",
                    Some("remove line breaks and other control characters".into()),
                );
            }
        }
    }

    fn backoff(&mut self, path: &str, b: &BackoffConfig) {
        self.positive(join_key(path, "base"), b.base);
        self.multiplier(join_key(path, "multiplier"), b.multiplier);
        if b.max < b.base {
            self.push(
                join_key(path, "max"),
                Some(b.max.to_string()),
                format!("max is shorter than base ({})", b.base),
                Some("max is the largest backoff ceiling; make it at least base".into()),
            );
        }
    }

    fn outcome_list(&mut self, path: &str, list: &[String]) {
        let kinds: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.reason()).collect();
        for (i, entry) in list.iter().enumerate() {
            let problem = match OutcomeMatch::parse(entry) {
                None => Some((
                    "not a status, a status range or a status class".to_owned(),
                    "write a status (`503`), a range (`500-599`, within 100-599) or a class (`5xx`)".to_owned(),
                )),
                Some(OutcomeMatch::Kind(k)) if !kinds.contains(&k) => Some((
                    format!("unknown error kind `{k}`"),
                    suggest::hint(k, &kinds),
                )),
                Some(_) => None,
            };
            if let Some((message, hint)) = problem {
                self.push(
                    join_index(path, i),
                    Some(entry.clone()),
                    message,
                    Some(hint),
                );
            }
        }
    }

    fn unit_ratio(&mut self, path: String, value: f64) {
        if !(value > 0.0 && value <= 1.0) {
            self.push(
                path,
                Some(value.to_string()),
                "ratio must be greater than 0 and at most 1",
                Some("write a fraction such as 0.5 (50 %)".into()),
            );
        }
    }

    fn multiplier(&mut self, path: String, value: f64) {
        if !(value.is_finite() && value >= 1.0) {
            self.push(
                path,
                Some(value.to_string()),
                "multiplier must be at least 1",
                Some("1 keeps the period constant; 2 doubles it each time".into()),
            );
        }
    }

    fn positive(&mut self, path: String, d: HumanDuration) {
        if d.get().is_zero() {
            self.push(
                path,
                Some(d.to_string()),
                "duration must be greater than zero",
                Some("use a positive duration such as \"500ms\"".into()),
            );
        }
    }

    fn at_least_one(&mut self, path: String, n: u32, what: &str) {
        if n == 0 {
            self.push(
                path,
                Some("0".into()),
                format!("{what} must be at least 1"),
                None,
            );
        }
    }
}
