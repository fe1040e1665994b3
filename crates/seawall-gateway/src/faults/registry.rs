//! The gateway's fault registry: every fault rule that is not inside a route's `fault`
//! layer, by where it acts. Upstream-side rules from the config (`upstreams[].faults`) and
//! runtime rules put through the admin API (`PUT /faults/{name}`) live here, outside the
//! config snapshot, so that a drill can switch faults on and off without a reload.
//!
//! Readers (every try, every request) load one [`ArcSwap`] snapshot, [`FaultTable`]; when
//! nothing is set that is one atomic load and an emptiness check: no lock, no allocation,
//! no hashing. Writers (reload, admin, ttl expiry) are serialised by a mutex that the hot
//! path never touches, build a new table and swap it in whole.
//!
//! A reload rebuilds the config's rules (their `first` counters start again) and keeps each
//! runtime rule, with its counters and its ttl, whose route or upstream still exists; the
//! others are dropped and logged. A rule with a `ttl` is removed by a sweep task when it
//! expires, and before that is already skipped by selection (checked lazily at read).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use arc_swap::ArcSwap;
use http::Request;
use seawall_config::{Config, RuntimeFault};
use tokio::time::Instant;

use super::rule::{Place, Rule, Slot, select_first};
use crate::metrics::{FaultScopeLabels, Metrics};

/// Every rule of the registry, by place, as of one change.
#[derive(Default)]
pub struct FaultTable {
    routes: HashMap<String, Vec<Arc<Rule>>>,
    upstreams: HashMap<String, Vec<Arc<Rule>>>,
    /// Rules from the config (`upstreams[].faults`), in config order.
    pub config: Vec<Entry>,
    /// Rules put through the admin API, by name.
    pub runtime: Vec<Entry>,
}

/// One rule with where it came from, for `GET /faults`.
#[derive(Clone)]
pub struct Entry {
    pub place: Place,
    pub rule: Arc<Rule>,
    /// The runtime fault as put (runtime rules only).
    pub spec: Option<RuntimeFault>,
    /// When a runtime rule removes itself.
    pub expires: Option<Instant>,
    /// Tells a rule apart from a later one of the same name (for the ttl sweep).
    id: u64,
}

/// Why a runtime fault was not set.
#[derive(Debug)]
pub enum PutError {
    /// Its route or upstream, or its endpoint, is not in the running config.
    Target(String),
    /// The rule does not build (validation normally catches it first).
    Rule(String),
}

/// The registry; one per gateway, in [`crate::runtime::Shared`].
pub struct FaultRegistry {
    table: ArcSwap<FaultTable>,
    writer: Mutex<Writer>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Writer {
    config: Option<Arc<Config>>,
    next_id: u64,
    /// Places whose `seawall_faults_active` gauge was set, to zero the ones left.
    gauged: BTreeSet<Place>,
}

impl FaultRegistry {
    /// An empty registry.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            table: ArcSwap::from_pointee(FaultTable::default()),
            writer: Mutex::new(Writer::default()),
            metrics,
        })
    }

    /// The current table (for the admin API).
    pub fn table(&self) -> Arc<FaultTable> {
        self.table.load_full()
    }

    /// The first upstream-side rule of `upstream` that selects `req`, sent to endpoint
    /// `endpoint`.
    pub fn select_upstream<B>(
        &self,
        upstream: &str,
        req: &Request<B>,
        endpoint: usize,
    ) -> Option<Slot> {
        let table = self.table.load();
        if table.upstreams.is_empty() {
            return None;
        }
        select_first(table.upstreams.get(upstream)?, req, Some(endpoint))
    }

    /// The first runtime rule of `route` that selects `req`.
    pub fn select_route<B>(&self, route: &str, req: &Request<B>) -> Option<Slot> {
        let table = self.table.load();
        if table.routes.is_empty() {
            return None;
        }
        select_first(table.routes.get(route)?, req, None)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A poisoned lock only means a panic in another writer; the table is whole.
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a new config (start and every reload): rebuilds its rules, keeps the runtime
    /// rules whose place still exists. Errors name the rule; the table is then unchanged.
    pub fn reconfigure(&self, config: &Arc<Config>) -> Result<(), String> {
        let mut w = self.lock();
        let old = self.table.load_full();
        let mut entries = Vec::new();
        for u in &config.upstreams {
            let place = Place::Upstream(u.name.clone());
            for r in &u.faults {
                let rule = Rule::build(r, &place, &u.endpoints, None, None, &self.metrics)
                    .map_err(|e| format!("upstream `{}`: {e}", u.name))?;
                w.next_id += 1;
                entries.push(Entry {
                    place: place.clone(),
                    rule: Arc::new(rule),
                    spec: None,
                    expires: None,
                    id: w.next_id,
                });
            }
        }
        let routes: BTreeSet<String> = seawall_config::route_names(config).collect();
        let mut runtime = Vec::new();
        for e in &old.runtime {
            match self.carry_over(e, config, &routes) {
                Some(kept) => runtime.push(kept),
                None => tracing::warn!(
                    fault = %e.rule.name,
                    scope = e.place.scope(),
                    target = e.place.target(),
                    "Runtime fault dropped: its target is not in the reloaded config."
                ),
            }
        }
        w.config = Some(config.clone());
        self.install(&mut w, entries, runtime);
        Ok(())
    }

    /// `e` as it stays under the new `config`, or `None` when its place is gone.
    fn carry_over(&self, e: &Entry, config: &Config, routes: &BTreeSet<String>) -> Option<Entry> {
        match &e.place {
            Place::Route(r) => routes.contains(r).then(|| e.clone()),
            Place::Upstream(name) => {
                let u = config.upstreams.iter().find(|u| u.name == *name)?;
                let spec = e.spec.as_ref()?;
                let Some(endpoint) = &spec.rule.endpoint else {
                    return Some(e.clone());
                };
                let index = u
                    .endpoints
                    .iter()
                    .position(|x| x.trim() == endpoint.trim())?;
                if e.rule.endpoint == Some(index) {
                    return Some(e.clone());
                }
                // The endpoint moved in the list: the rule is rebuilt for its new index.
                let left = e
                    .expires
                    .map(|t| t.saturating_duration_since(Instant::now()));
                let rule = Rule::build(
                    &spec.rule,
                    &e.place,
                    &u.endpoints,
                    None,
                    left,
                    &self.metrics,
                )
                .ok()?;
                Some(Entry {
                    rule: Arc::new(rule),
                    ..e.clone()
                })
            }
        }
    }

    /// Sets (or replaces) runtime fault `fault`, already validated against the running
    /// config. A `ttl` starts a task that removes it when it expires.
    pub fn put(self: &Arc<Self>, fault: RuntimeFault) -> Result<(), PutError> {
        let mut w = self.lock();
        let Some(config) = w.config.clone() else {
            return Err(PutError::Target("the gateway has no config yet".into()));
        };
        let (place, endpoints) = match (&fault.route, &fault.upstream) {
            (Some(r), None) if seawall_config::route_names(&config).any(|n| n == *r) => {
                (Place::Route(r.clone()), Vec::new())
            }
            (None, Some(u)) => match config.upstreams.iter().find(|x| x.name == *u) {
                Some(x) => (Place::Upstream(u.clone()), x.endpoints.clone()),
                None => return Err(PutError::Target(format!("no upstream `{u}`"))),
            },
            (Some(r), None) => return Err(PutError::Target(format!("no route `{r}`"))),
            _ => return Err(PutError::Target("give `route` or `upstream`".into())),
        };
        let ttl = fault.ttl.map(|t| t.get());
        let rule = Rule::build(&fault.rule, &place, &endpoints, None, ttl, &self.metrics)
            .map_err(PutError::Rule)?;
        let name = fault.rule.name.clone();
        w.next_id += 1;
        let id = w.next_id;
        let entry = Entry {
            place,
            expires: ttl.map(|t| rule.loaded + t),
            rule: Arc::new(rule),
            spec: Some(fault),
            id,
        };
        let old = self.table.load_full();
        let mut runtime: Vec<Entry> = old
            .runtime
            .iter()
            .filter(|e| e.rule.name != name)
            .cloned()
            .collect();
        runtime.push(entry);
        self.install(&mut w, old.config.clone(), runtime);
        drop(w);
        if let Some(ttl) = ttl {
            let registry = Arc::downgrade(self);
            tokio::spawn(sweep(registry, name, id, ttl));
        }
        Ok(())
    }

    /// Removes runtime fault `name`; false when there is none.
    pub fn delete(&self, name: &str) -> bool {
        self.remove_if(|e| e.rule.name == name)
    }

    fn remove_if(&self, gone: impl Fn(&Entry) -> bool) -> bool {
        let mut w = self.lock();
        let old = self.table.load_full();
        let runtime: Vec<Entry> = old.runtime.iter().filter(|e| !gone(e)).cloned().collect();
        if runtime.len() == old.runtime.len() {
            return false;
        }
        self.install(&mut w, old.config.clone(), runtime);
        true
    }

    /// Builds the lookup maps, swaps the table in, sets the gauges.
    fn install(&self, w: &mut Writer, config: Vec<Entry>, runtime: Vec<Entry>) {
        let mut table = FaultTable::default();
        let mut counts: BTreeMap<Place, i64> = BTreeMap::new();
        for e in config.iter().chain(&runtime) {
            let map = match &e.place {
                Place::Route(_) => &mut table.routes,
                Place::Upstream(_) => &mut table.upstreams,
            };
            map.entry(e.place.target().to_owned())
                .or_default()
                .push(e.rule.clone());
            *counts.entry(e.place.clone()).or_default() += 1;
        }
        table.config = config;
        table.runtime = runtime;
        self.table.store(Arc::new(table));
        for place in w.gauged.iter().chain(counts.keys()) {
            self.metrics
                .faults_active
                .get_or_create(&FaultScopeLabels {
                    scope: place.scope().to_owned(),
                    target: place.target().to_owned(),
                })
                .set(counts.get(place).copied().unwrap_or(0));
        }
        w.gauged.extend(counts.into_keys());
    }
}

/// Removes runtime fault `name` (the one put as `id`, not a later one) once `ttl` has
/// passed.
async fn sweep(registry: Weak<FaultRegistry>, name: String, id: u64, ttl: Duration) {
    tokio::time::sleep(ttl).await;
    if let Some(r) = registry.upgrade()
        && r.remove_if(|e| e.id == id)
    {
        tracing::info!(fault = %name, "Runtime fault expired (ttl) and was removed.");
        // As a DELETE does: a drill's timeline shows the fault ending either way.
        r.metrics
            .events
            .publish("fault_off", &name, || "ttl expired".to_owned());
    }
}
