//! Byte counters with Toxiproxy's metric names and labels, in Prometheus text format.
//!
//! `toxiproxy_proxy_received_bytes_total` counts bytes read from a direction's source,
//! `toxiproxy_proxy_sent_bytes_total` bytes written to its destination; both carry the
//! labels `direction`, `proxy`, `listener`, `upstream`. The data path only touches its
//! own atomic counters; the map of series is locked when a proxy starts and on a scrape.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::stream::Stream;

/// A monotonic counter, shared with the series it belongs to.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counter(Arc<AtomicU64>);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The labels other than `direction`.
type Key = (String, String, String);

/// The counters of one proxy (name, listener, upstream), per direction.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProxyCounters {
    pub(crate) received: [Counter; 2],
    pub(crate) sent: [Counter; 2],
}

impl ProxyCounters {
    pub(crate) fn index(stream: Stream) -> usize {
        match stream {
            Stream::Upstream => 0,
            Stream::Downstream => 1,
        }
    }
}

/// Every series seen since the server started.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<Key, ProxyCounters>>,
}

impl Metrics {
    /// The counters for a proxy with this name, listener and upstream.
    pub(crate) fn proxy(&self, name: &str, listen: &str, upstream: &str) -> ProxyCounters {
        let key = (name.to_owned(), listen.to_owned(), upstream.to_owned());
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        series.entry(key).or_default().clone()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        for (metric, pick) in [
            ("toxiproxy_proxy_received_bytes_total", true),
            ("toxiproxy_proxy_sent_bytes_total", false),
        ] {
            let _ = writeln!(out, "# HELP {metric} Bytes through the proxy.");
            let _ = writeln!(out, "# TYPE {metric} counter");
            for ((proxy, listener, upstream), counters) in series.iter() {
                for stream in Stream::BOTH {
                    let i = ProxyCounters::index(stream);
                    let value = if pick {
                        counters.received[i].get()
                    } else {
                        counters.sent[i].get()
                    };
                    let _ = writeln!(
                        out,
                        "{metric}{{direction=\"{stream}\",listener=\"{}\",proxy=\"{}\",upstream=\"{}\"}} {value}",
                        escape(listener),
                        escape(proxy),
                        escape(upstream)
                    );
                }
            }
        }
        out
    }
}

/// Label values escaped as the text format wants.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
