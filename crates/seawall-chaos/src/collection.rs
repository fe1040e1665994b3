//! The set of proxies and every change the API makes to it, with Toxiproxy's rules.
//!
//! The API holds this behind one async mutex, so changes apply one at a time; the data
//! path never takes it (connections see toxics through each proxy's `watch`).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::protocol::Protocol;
use crate::proxy::Proxy;
use crate::stream::Stream;
use crate::toxic::{Kind, NewToxic, Toxic, ToxicUpdate, nullable};

/// The body of `POST /proxies`, and one entry of `POST /populate`; `null` fields are
/// absent ones.
#[derive(Deserialize, Debug, Default)]
pub struct NewProxy {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub listen: String,
    #[serde(default, deserialize_with = "nullable")]
    pub upstream: String,
    /// Absent means enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Extension: toxics created with the proxy, all or nothing.
    #[serde(default)]
    pub toxics: Option<Vec<Value>>,
    /// Extension: `tcp` (absent, the default) or `http`.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// The body of `POST|PATCH /proxies/{p}`: absent fields keep their value.
#[derive(Deserialize, Debug, Default)]
pub struct ProxyUpdate {
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Extension: a new protocol restarts the proxy; its toxics must fit it.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// All proxies.
#[derive(Debug)]
pub struct Collection {
    proxies: BTreeMap<String, Proxy>,
    next_toxic: u64,
    /// Seeds each proxy's accept loop, so that `--seed` makes every draw repeatable.
    rng: fastrand::Rng,
    metrics: Arc<Metrics>,
    /// This collection, for the timers that remove toxics with a `ttl`.
    me: Weak<Mutex<Collection>>,
}

impl Collection {
    /// A collection behind the mutex the API locks.
    pub fn shared(seed: u64, metrics: Arc<Metrics>) -> Arc<Mutex<Collection>> {
        Arc::new_cyclic(|me| {
            Mutex::new(Self {
                proxies: BTreeMap::new(),
                next_toxic: 1,
                rng: fastrand::Rng::with_seed(seed),
                metrics,
                me: me.clone(),
            })
        })
    }

    /// Removes toxic `id` of `proxy` after its ttl, if it is still there then (a toxic
    /// removed and created again under the same name has another id).
    fn expire_later(&self, proxy: &str, toxic: &Toxic) {
        let Some(ttl) = toxic.ttl else { return };
        let (me, proxy, id) = (self.me.clone(), proxy.to_owned(), toxic.id);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ttl)).await;
            if let Some(collection) = me.upgrade()
                && let Some(p) = collection.lock().await.proxies.get_mut(&proxy)
                && p.remove_toxic_id(id)
            {
                tracing::info!(proxy = %proxy, toxic = id, "Toxic removed at the end of its ttl.");
            }
        });
    }

    pub(crate) fn proxies(&self) -> impl Iterator<Item = &Proxy> {
        self.proxies.values()
    }

    pub(crate) fn get(&self, name: &str) -> Result<&Proxy, ApiError> {
        self.proxies.get(name).ok_or_else(ApiError::proxy_not_found)
    }

    fn get_mut(&mut self, name: &str) -> Result<&mut Proxy, ApiError> {
        self.proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)
    }

    async fn start(&mut self, name: &str) -> Result<(), ApiError> {
        let seed = self.rng.u64(..);
        let metrics = self.metrics.clone();
        self.get_mut(name)?.start(&metrics, seed).await
    }

    /// `POST /proxies`.
    pub async fn create(&mut self, input: NewProxy) -> Result<&Proxy, ApiError> {
        if input.name.is_empty() {
            return Err(ApiError::missing_field("name"));
        }
        if input.upstream.is_empty() {
            return Err(ApiError::missing_field("upstream"));
        }
        if self.proxies.contains_key(&input.name) {
            return Err(ApiError::proxy_exists());
        }
        let protocol = Protocol::parse(input.protocol.as_deref())?;
        let proxy = Proxy::new(input.name.clone(), input.listen, input.upstream, protocol);
        let proxy = self.with_toxics(proxy, input.toxics, "")?;
        for toxic in proxy.toxics() {
            self.expire_later(&input.name, toxic);
        }
        let name = input.name;
        self.proxies.insert(name.clone(), proxy);
        if input.enabled.unwrap_or(true)
            && let Err(error) = self.start(&name).await
        {
            self.proxies.remove(&name);
            return Err(error);
        }
        self.get(&name)
    }

    /// `proxy` with the toxics of a create body (an extension), all or none; an error
    /// names the toxic (`toxic 2`, followed by `where`).
    fn with_toxics(
        &mut self,
        mut proxy: Proxy,
        bodies: Option<Vec<Value>>,
        place: &str,
    ) -> Result<Proxy, ApiError> {
        for (i, body) in bodies.unwrap_or_default().into_iter().enumerate() {
            let toxic = serde_json::from_value::<NewToxic>(body)
                .map_err(ApiError::bad_body)
                .and_then(|t| new_toxic(&mut self.next_toxic, &proxy, t))
                .and_then(|t| proxy.protocol.check(&t.kind).map(|()| t))
                .map_err(|e| ApiError {
                    message: format!("{} (toxic {}{place})", e.message, i + 1),
                    status: e.status,
                })?;
            proxy.add_toxic(toxic);
        }
        Ok(proxy)
    }

    /// `POST|PATCH /proxies/{p}`. A move to a new listen address binds it before the old
    /// listener is closed, so that an address that is taken changes nothing.
    pub async fn update(&mut self, name: &str, input: ProxyUpdate) -> Result<&Proxy, ApiError> {
        let proxy = self.get(name)?;
        let listen = input.listen.unwrap_or_else(|| proxy.listen.clone());
        let upstream = input.upstream.unwrap_or_else(|| proxy.upstream.clone());
        let enabled = input.enabled.unwrap_or(proxy.enabled);
        let protocol = match input.protocol.as_deref() {
            Some(given) => Protocol::parse(Some(given))?,
            None => proxy.protocol,
        };
        for toxic in proxy.toxics() {
            protocol.check(&toxic.kind)?;
        }
        if proxy.differs(&listen, &upstream, protocol).await? {
            let addr = crate::proxy::resolve_listen(&listen).await?;
            let moved = addr.to_string() != proxy.listen;
            let restart = proxy.enabled && enabled;
            // Bound now, while the old listener still runs: an error leaves it running.
            let listener = match (restart, moved) {
                (true, true) => Some(crate::proxy::bind(addr)?),
                _ => None,
            };
            let seed = self.rng.u64(..);
            let metrics = self.metrics.clone();
            let proxy = self.get_mut(name)?;
            proxy.stop().await;
            proxy.listen = listen;
            proxy.upstream = upstream;
            proxy.protocol = protocol;
            match listener {
                Some(listener) => proxy.start_on(listener, &metrics, seed)?,
                None if restart => self.start(name).await?,
                None => {}
            }
        }
        let proxy = self.get_mut(name)?;
        if enabled != proxy.enabled {
            if enabled {
                self.start(name).await?;
            } else {
                proxy.stop().await;
            }
        }
        self.get(name)
    }

    /// `DELETE /proxies/{p}`.
    pub async fn remove(&mut self, name: &str) -> Result<(), ApiError> {
        let mut proxy = self
            .proxies
            .remove(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        proxy.stop().await;
        Ok(())
    }

    /// `POST /reset`: every proxy enabled, every toxic removed.
    pub async fn reset(&mut self) -> Result<(), ApiError> {
        let names: Vec<String> = self.proxies.keys().cloned().collect();
        for name in names {
            self.start(&name).await?;
            self.get_mut(&name)?.clear_toxics();
        }
        Ok(())
    }

    /// `POST /populate`: every entry is checked (names, upstreams, listen addresses, and
    /// the toxics an entry may carry, an extension) before any is applied; a proxy with
    /// the same name, listener and upstream is kept as it is, toxics and connections
    /// included; one that differs is replaced. On an error part way (a listener that
    /// cannot be bound), the proxies done so far stay.
    pub async fn populate(&mut self, input: Vec<NewProxy>) -> (Vec<String>, Option<ApiError>) {
        let mut fresh = Vec::with_capacity(input.len());
        for (i, entry) in input.into_iter().enumerate() {
            match self.checked(entry, i + 1).await {
                Ok(checked) => fresh.push(checked),
                Err(error) => return (Vec::new(), Some(error)),
            }
        }
        let mut done = Vec::with_capacity(fresh.len());
        for (proxy, enabled) in fresh {
            match self.add_or_replace(proxy, enabled).await {
                Ok(name) => done.push(name),
                Err(error) => return (done, Some(error)),
            }
        }
        (done, None)
    }

    /// One populate entry, checked and built (not started): the proxy and `enabled`.
    async fn checked(&mut self, entry: NewProxy, n: usize) -> Result<(Proxy, bool), ApiError> {
        if entry.name.is_empty() {
            return Err(ApiError::missing_field(format!("name at proxy {n}")));
        }
        if entry.upstream.is_empty() {
            return Err(ApiError::missing_field(format!("upstream at proxy {n}")));
        }
        crate::proxy::resolve_listen(&entry.listen).await?;
        let protocol = Protocol::parse(entry.protocol.as_deref())?;
        let proxy = Proxy::new(entry.name, entry.listen, entry.upstream, protocol);
        let proxy = self.with_toxics(proxy, entry.toxics, &format!(" of proxy {n}"))?;
        Ok((proxy, entry.enabled.unwrap_or(true)))
    }

    /// Keeps an identical proxy as it is; else puts `proxy` in place of any other of
    /// that name and starts it if `enabled`.
    async fn add_or_replace(&mut self, proxy: Proxy, enabled: bool) -> Result<String, ApiError> {
        let name = proxy.name.clone();
        if let Some(existing) = self.proxies.get_mut(&name) {
            if !existing
                .differs(&proxy.listen, &proxy.upstream, proxy.protocol)
                .await?
            {
                return Ok(name);
            }
            existing.stop().await;
            self.proxies.remove(&name);
        }
        for toxic in proxy.toxics() {
            self.expire_later(&name, toxic);
        }
        self.proxies.insert(name.clone(), proxy);
        if enabled {
            self.start(&name).await?;
        }
        Ok(name)
    }

    /// `POST /proxies/{p}/toxics`.
    pub fn add_toxic(&mut self, name: &str, input: NewToxic) -> Result<Toxic, ApiError> {
        let proxy = self
            .proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let toxic = new_toxic(&mut self.next_toxic, proxy, input)?;
        proxy.protocol.check(&toxic.kind)?;
        proxy.add_toxic(toxic.clone());
        self.expire_later(name, &toxic);
        Ok(toxic)
    }

    /// `POST|PATCH /proxies/{p}/toxics/{t}`: attributes merged, toxicity kept if absent.
    pub fn update_toxic(
        &mut self,
        proxy: &str,
        name: &str,
        input: ToxicUpdate,
    ) -> Result<Toxic, ApiError> {
        let proxy = self.get_mut(proxy)?;
        let current = proxy.toxic(name).ok_or_else(ApiError::toxic_not_found)?;
        let kind = current
            .kind
            .merged(&input.attributes)
            .map_err(ApiError::bad_body)?;
        let toxic = Toxic {
            kind,
            toxicity: input.toxicity.unwrap_or(current.toxicity),
            ..current.clone()
        };
        proxy.replace_toxic(toxic.clone());
        Ok(toxic)
    }

    /// `DELETE /proxies/{p}/toxics/{t}`.
    pub fn remove_toxic(&mut self, proxy: &str, name: &str) -> Result<(), ApiError> {
        if self.get_mut(proxy)?.remove_toxic(name) {
            Ok(())
        } else {
            Err(ApiError::toxic_not_found())
        }
    }

    /// Stops every proxy (server shutdown).
    pub async fn stop_all(&mut self) {
        for proxy in self.proxies.values_mut() {
            proxy.stop().await;
        }
    }
}

/// Checks a new toxic against `proxy`, in Toxiproxy's order (stream, type, name taken,
/// attributes), and gives it the next id.
fn new_toxic(next_id: &mut u64, proxy: &Proxy, input: NewToxic) -> Result<Toxic, ApiError> {
    let stream = Stream::parse(&input.stream).ok_or_else(ApiError::invalid_stream)?;
    let name = if input.name.is_empty() {
        format!("{}_{}", input.kind, stream)
    } else {
        input.name
    };
    let parsed =
        Kind::parse(&input.kind, &input.attributes).ok_or_else(ApiError::invalid_toxic_type)?;
    if proxy.toxic(&name).is_some() {
        return Err(ApiError::toxic_exists());
    }
    let kind = parsed.map_err(ApiError::bad_body)?;
    let id = *next_id;
    *next_id += 1;
    Ok(Toxic {
        id,
        name,
        stream,
        toxicity: input.toxicity,
        kind,
        ttl: input.ttl,
    })
}
