//! One connection direction's chain of toxics, and the items that flow through it.
//!
//! The API's toxic list for a proxy is published through a `watch`; each direction of each
//! connection keeps its own [`Chain`] built from it, holding per-connection state
//! (the toxicity draw, limit_data's count, a timeout's deadline). When the list changes
//! the chain is rebuilt: stages whose toxic is unchanged keep everything, updated ones
//! keep their draw (unless the toxicity changed) and limit_data's count, new ones draw
//! afresh. Toxiproxy re-links its goroutine chain the same way, but redraws every
//! toxic it restarts; keeping the draw means an unrelated change never turns a toxic
//! on or off for a live connection.

use bytes::Bytes;
use tokio::time::Instant;

use crate::toxic::{Kind, Toxic, bandwidth, limit_data, limit_time, reset_peer, timeout};

/// Bytes read from the source, stamped with the time they were read.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) data: Bytes,
    pub(crate) stamp: Instant,
}

/// What flows through a chain.
#[derive(Debug)]
pub(crate) enum Item {
    Data(Chunk),
    /// The source half-closed: pass the half-close on.
    Eof,
    /// A toxic ends the connection, after what is already ahead of it.
    Close,
}

/// An item a stage lets out, at a time (`None`: now).
#[derive(Debug)]
pub(crate) struct Emit {
    pub(crate) at: Option<Instant>,
    pub(crate) item: Item,
}

/// What a stage sees while it handles one item.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) rng: &'a mut fastrand::Rng,
    pub(crate) out: &'a mut Vec<Emit>,
}

impl Ctx<'_> {
    pub(crate) fn pass(&mut self, item: Item) {
        self.out.push(Emit { at: None, item });
    }

    pub(crate) fn emit_at(&mut self, at: Instant, item: Item) {
        let at = (at > self.now).then_some(at);
        self.out.push(Emit { at, item });
    }
}

/// What a stage's timer does when it fires.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fired {
    Close,
    Reset,
}

/// Per-connection state of one stage, for the kinds that have any.
#[derive(Debug)]
enum State {
    None,
    Bandwidth(bandwidth::State),
    Timeout(timeout::State),
    ResetPeer(reset_peer::State),
    LimitData(limit_data::State),
    LimitTime(limit_time::State),
}

impl State {
    fn new(kind: &Kind, now: Instant) -> Self {
        match kind {
            Kind::Bandwidth(_) => State::Bandwidth(bandwidth::State::default()),
            Kind::Timeout(t) => State::Timeout(t.start(now)),
            Kind::ResetPeer(_) => State::ResetPeer(reset_peer::State::default()),
            Kind::LimitData(_) => State::LimitData(limit_data::State::default()),
            Kind::LimitTime(t) => State::LimitTime(t.start(now)),
            _ => State::None,
        }
    }
}

/// One toxic on one connection direction.
#[derive(Debug)]
pub(crate) struct Stage {
    toxic: Toxic,
    /// The toxicity draw: does this toxic act on this connection direction?
    active: bool,
    state: State,
}

impl Stage {
    fn new(toxic: &Toxic, now: Instant, rng: &mut fastrand::Rng) -> Self {
        Self {
            active: draw(toxic.toxicity, rng),
            state: State::new(&toxic.kind, now),
            toxic: toxic.clone(),
        }
    }

    /// Handles one item; what it lets out goes to `ctx.out`.
    pub(crate) fn apply(&mut self, item: Item, ctx: &mut Ctx<'_>) {
        if !self.active {
            ctx.pass(item);
            return;
        }
        match (&self.toxic.kind, &mut self.state) {
            (Kind::Latency(t), _) => t.apply(item, ctx),
            (Kind::Bandwidth(t), State::Bandwidth(s)) => t.apply(s, item, ctx),
            (Kind::SlowClose(t), _) => t.apply(item, ctx),
            (Kind::Timeout(t), _) => t.apply(item, ctx),
            (Kind::ResetPeer(t), State::ResetPeer(s)) => t.apply(s, item, ctx),
            (Kind::Slicer(t), _) => t.apply(item, ctx),
            (Kind::LimitData(t), State::LimitData(s)) => t.apply(s, item, ctx),
            (Kind::DropData(t), _) => t.apply(item, ctx),
            _ => ctx.pass(item),
        }
    }

    fn deadline(&self) -> Option<(Instant, Fired)> {
        if !self.active {
            return None;
        }
        match &self.state {
            State::Timeout(s) => s.deadline.map(|d| (d, Fired::Close)),
            State::ResetPeer(s) => s.deadline.map(|d| (d, Fired::Reset)),
            State::LimitTime(s) => s.deadline.map(|d| (d, Fired::Close)),
            _ => None,
        }
    }

    fn disarm(&mut self) {
        match &mut self.state {
            State::Timeout(s) => s.deadline = None,
            State::ResetPeer(s) => s.deadline = None,
            State::LimitTime(s) => s.deadline = None,
            _ => {}
        }
    }

    /// Removing an acting `timeout` closes the connection (Toxiproxy's cleanup does).
    fn closes_when_removed(&self) -> bool {
        self.active && matches!(self.toxic.kind, Kind::Timeout(_))
    }
}

/// Toxicity 0 never acts and 1 always does; `f32()` is in `[0, 1)`.
pub(crate) fn draw(toxicity: f32, rng: &mut fastrand::Rng) -> bool {
    rng.f32() < toxicity
}

/// How a rebuild moved the stages.
#[derive(Debug, Default)]
pub(crate) struct Rebuild {
    /// For each old stage index, its new index (`None`: removed).
    moved: Vec<Option<usize>>,
    /// For each old stage index: was the stage changed (updated or removed)?
    changed: Vec<bool>,
    /// The old index of a removed stage that closes the connection.
    pub(crate) close_at: Option<usize>,
}

impl Rebuild {
    /// The new index for an item that was about to enter old stage `next`: the number
    /// of surviving stages it had already passed. New toxics only ever join at the end,
    /// so order is kept.
    pub(crate) fn next_index(&self, next: usize) -> usize {
        self.moved[..next.min(self.moved.len())]
            .iter()
            .filter(|m| m.is_some())
            .count()
    }

    /// Was the stage that let out an item about to enter old stage `next` changed? Its
    /// wait is then cut short, as Toxiproxy flushes an interrupted toxic's chunk.
    pub(crate) fn emitter_changed(&self, next: usize) -> bool {
        next > 0 && self.changed.get(next - 1).copied().unwrap_or(true)
    }
}

/// The stages of one connection direction, in order.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    stages: Vec<Stage>,
}

impl Chain {
    /// A chain for `toxics` (already filtered to this direction).
    pub(crate) fn new<'a>(
        toxics: impl Iterator<Item = &'a Toxic>,
        now: Instant,
        rng: &mut fastrand::Rng,
    ) -> Self {
        let stages = toxics.map(|t| Stage::new(t, now, rng)).collect();
        Self { stages }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.stages.len()
    }

    pub(crate) fn stage(&mut self, index: usize) -> Option<&mut Stage> {
        self.stages.get_mut(index)
    }

    /// The earliest stage timer: its time, its stage index and what it does.
    pub(crate) fn deadline(&self) -> Option<(Instant, usize, Fired)> {
        self.stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.deadline().map(|(at, f)| (at, i, f)))
            .min_by_key(|(at, _, _)| *at)
    }

    /// Stops the timer of stage `index` (it has fired).
    pub(crate) fn disarm(&mut self, index: usize) {
        if let Some(stage) = self.stages.get_mut(index) {
            stage.disarm();
        }
    }

    /// Rebuilds for a new toxic list (this direction's, in order).
    pub(crate) fn rebuild<'a>(
        &mut self,
        toxics: impl Iterator<Item = &'a Toxic>,
        now: Instant,
        rng: &mut fastrand::Rng,
    ) -> Rebuild {
        let mut old: Vec<Option<Stage>> = std::mem::take(&mut self.stages)
            .into_iter()
            .map(Some)
            .collect();
        let mut rebuild = Rebuild {
            moved: vec![None; old.len()],
            changed: vec![true; old.len()],
            close_at: None,
        };
        for toxic in toxics {
            let found = old
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.toxic.id == toxic.id));
            let stage = match found.and_then(|i| old[i].take().map(|s| (i, s))) {
                Some((i, stage)) => {
                    rebuild.moved[i] = Some(self.stages.len());
                    rebuild.changed[i] = stage.toxic != *toxic;
                    updated(stage, toxic, now, rng)
                }
                None => Stage::new(toxic, now, rng),
            };
            self.stages.push(stage);
        }
        rebuild.close_at = old
            .iter()
            .position(|s| s.as_ref().is_some_and(Stage::closes_when_removed));
        rebuild
    }
}

/// A stage carried over to a new version of its toxic.
fn updated(mut stage: Stage, toxic: &Toxic, now: Instant, rng: &mut fastrand::Rng) -> Stage {
    if stage.toxic == *toxic {
        return stage;
    }
    if stage.toxic.toxicity != toxic.toxicity {
        stage.active = draw(toxic.toxicity, rng);
    }
    // limit_data's count survives an update; every other kind starts over, as
    // Toxiproxy restarts an updated toxic's loop.
    let keep = matches!(
        (&stage.state, &toxic.kind),
        (State::LimitData(_), Kind::LimitData(_))
    );
    if !keep {
        stage.state = State::new(&toxic.kind, now);
    }
    stage.toxic = toxic.clone();
    stage
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Stream;
    use serde_json::json;

    fn toxic(id: u64, kind: &str, attributes: serde_json::Value, toxicity: f32) -> Toxic {
        Toxic {
            id,
            name: format!("t{id}"),
            stream: Stream::Downstream,
            toxicity,
            kind: Kind::parse(kind, &attributes).unwrap().unwrap(),
            ttl: None,
        }
    }

    #[test]
    fn toxicity_zero_never_acts_and_one_always_does() {
        let mut rng = fastrand::Rng::with_seed(7);
        let now = Instant::now();
        for _ in 0..1000 {
            let off = toxic(1, "noop", json!({}), 0.0);
            let on = toxic(2, "noop", json!({}), 1.0);
            assert!(!Stage::new(&off, now, &mut rng).active);
            assert!(Stage::new(&on, now, &mut rng).active);
        }
    }

    #[test]
    fn rebuild_maps_indices_and_keeps_unchanged_stages() {
        let mut rng = fastrand::Rng::with_seed(1);
        let now = Instant::now();
        let a = toxic(1, "latency", json!({"latency": 10}), 1.0);
        let b = toxic(2, "timeout", json!({"timeout": 0}), 1.0);
        let c = toxic(3, "noop", json!({}), 1.0);
        let mut chain = Chain::new([&a, &b, &c].into_iter(), now, &mut rng);
        let a2 = toxic(1, "latency", json!({"latency": 20}), 1.0);
        let rebuild = chain.rebuild([&a2, &c].into_iter(), now, &mut rng);
        assert_eq!(chain.len(), 2);
        assert_eq!(rebuild.next_index(0), 0);
        assert_eq!(rebuild.next_index(2), 1);
        assert_eq!(rebuild.next_index(3), 2);
        assert!(rebuild.emitter_changed(1), "a was updated");
        assert!(!rebuild.emitter_changed(3), "c is unchanged");
        assert_eq!(
            rebuild.close_at,
            Some(1),
            "removing an acting timeout closes"
        );
    }
}
