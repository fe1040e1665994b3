//! The open-loop load generator.
//!
//! A scheduler takes requests off the [`schedule::Schedule`] as they fall due and hands
//! each to an idle worker; there are as many workers as the connection cap. When none is
//! idle the request waits in a bounded backlog: it is sent late (and counted late, its
//! latency still measured from its due time), or dropped (and counted) when the backlog is
//! full or the run ends. Nothing due is ever silently skipped, which is what makes a stall
//! visible (coordinated omission).
//!
//! Workers send their [`record::Sample`]s to one collector, which files them by due second
//! in a shared [`record::Recording`] that the progress line and the report read.

pub mod backlog;
pub mod client;
pub mod record;
pub mod schedule;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use self::{
    backlog::{Backlog, Job, Mixes},
    client::{Prepared, Sender, Target},
    record::{Outcome, Recording, Sample},
    schedule::Schedule,
};
use crate::scenario::{Load, Protocol};

/// Everything the generator needs, prepared.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The arrival times.
    pub schedule: Schedule,
    /// Every request of every mix, prepared.
    pub requests: Vec<Prepared>,
    /// Per phase: cumulative weights and the index into `requests` they pick.
    pub mixes: Mixes,
    /// Where to send.
    pub target: Target,
    /// Workers (the in-flight cap).
    pub connections: usize,
    /// h2c: connections the workers share.
    pub h2_connections: usize,
    /// The largest backlog before requests are dropped.
    pub max_backlog: usize,
    /// Seed of the mix's random choices.
    pub seed: u64,
}

impl Plan {
    /// The plan of `load` against `target`.
    pub fn new(load: &Load, target: Target, seed: u64) -> Option<Self> {
        let mut requests = Vec::new();
        let mut mixes = Vec::new();
        for phase in &load.phases {
            let mut total = 0;
            let mut mix = Vec::new();
            for spec in phase.requests.as_deref().unwrap_or(&load.requests) {
                if spec.weight > 0 {
                    total += u64::from(spec.weight);
                    mix.push((total, requests.len()));
                    requests.push(Prepared::new(spec, &target.authority)?);
                }
            }
            mixes.push(mix);
        }
        Some(Self {
            schedule: Schedule::new(&load.phases),
            requests,
            mixes: Mixes(mixes),
            target,
            connections: load.connections.max(1),
            h2_connections: load.h2_connections.max(1),
            max_backlog: load.max_backlog,
            seed,
        })
    }
}

/// Runs the plan from `start`; stops early when `stop` turns true. Every due request ends
/// up in `recording`. Returns when all sent requests have finished.
pub async fn run(
    plan: Plan,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    recording: Arc<Mutex<Recording>>,
) {
    let (samples, collected) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(collected, recording));
    let (idle_tx, mut idle) = mpsc::unbounded_channel::<usize>();
    let workers = spawn_workers(&plan, start, idle_tx, samples.clone());
    let mut scheduler = Scheduler::new(&plan, samples.clone());
    // With no more due requests, waiting ones get at most one request timeout.
    let give_up = plan
        .schedule
        .segments()
        .last()
        .map_or(Duration::ZERO, |s| s.start + s.length)
        + plan.target.timeout;
    // A stop sender that went away means nobody can stop the run: stop listening.
    let mut stoppable = true;
    loop {
        let now = start.elapsed();
        scheduler.take_due(now);
        while !scheduler.backlog.is_empty() {
            let Ok(worker) = idle.try_recv() else { break };
            scheduler.hand(&workers, worker);
        }
        let next_due = scheduler.next_due();
        if next_due.is_none() && (scheduler.backlog.is_empty() || now > give_up) {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(start + next_due.unwrap_or(give_up)) => {}
            worker = idle.recv(), if !scheduler.backlog.is_empty() => {
                if let Some(w) = worker {
                    scheduler.hand(&workers, w);
                }
            }
            changed = stop.changed(), if stoppable => {
                match changed {
                    Ok(()) if *stop.borrow() => break,
                    Ok(()) => {}
                    Err(_) => stoppable = false,
                }
            }
        }
    }
    // Requests never taken off the schedule (a stop) are not counted: they were never due.
    scheduler.drop_all(start.elapsed());
    drop((workers, scheduler, samples));
    let _ = collector.await;
}

/// Takes requests off the schedule as they fall due and hands them to idle workers.
struct Scheduler {
    schedule: std::iter::Peekable<Schedule>,
    backlog: Backlog,
    mixes: Mixes,
    rng: fastrand::Rng,
    samples: mpsc::UnboundedSender<Sample>,
}

impl Scheduler {
    fn new(plan: &Plan, samples: mpsc::UnboundedSender<Sample>) -> Self {
        Self {
            schedule: plan.schedule.clone().peekable(),
            backlog: Backlog::new(plan.max_backlog),
            mixes: plan.mixes.clone(),
            rng: fastrand::Rng::with_seed(plan.seed),
            samples,
        }
    }

    fn next_due(&mut self) -> Option<Duration> {
        self.schedule.peek().map(|a| a.due)
    }

    /// Moves every request due by `now` into the backlog (dropping the oldest when full).
    fn take_due(&mut self, now: Duration) {
        while let Some(arrival) = self.schedule.next_if(|a| a.due <= now) {
            let request = self.mixes.pick(arrival.phase, self.rng.u64(..));
            let job = Job {
                due: arrival.due,
                queued: now,
                request,
            };
            if let Some(oldest) = self.backlog.push(job) {
                self.dropped(oldest, now);
            }
        }
    }

    /// Gives the oldest waiting request to idle worker `worker`.
    fn hand(&mut self, workers: &[mpsc::Sender<Job>], worker: usize) {
        if let Some(job) = self.backlog.pop()
            && let Err(job) = hand(workers, worker, job)
        {
            self.backlog.unpop(job);
        }
    }

    fn dropped(&self, job: Job, at: Duration) {
        let _ = self.samples.send(Sample {
            due: job.due,
            queued: job.queued,
            sent: None,
            done: at,
            outcome: Outcome::Dropped,
        });
    }

    fn drop_all(&mut self, at: Duration) {
        let jobs: Vec<Job> = self.backlog.drain().collect();
        for job in jobs {
            self.dropped(job, at);
        }
    }
}

/// Gives `job` to idle worker `worker`, or hands it back.
fn hand(workers: &[mpsc::Sender<Job>], worker: usize, job: Job) -> Result<(), Job> {
    match workers.get(worker) {
        Some(w) => w.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
        }),
        None => Err(job),
    }
}

fn spawn_workers(
    plan: &Plan,
    start: Instant,
    idle: mpsc::UnboundedSender<usize>,
    samples: mpsc::UnboundedSender<Sample>,
) -> Vec<mpsc::Sender<Job>> {
    let shared: Vec<_> = (0..plan.h2_connections)
        .map(|_| Arc::new(tokio::sync::Mutex::new(None)))
        .collect();
    let mix: Arc<Vec<Prepared>> = Arc::new(plan.requests.clone());
    (0..plan.connections)
        .map(|id| {
            let (tx, mut rx) = mpsc::channel::<Job>(1);
            let mut sender = match plan.target.protocol {
                Protocol::Http1 => Sender::Http1(None),
                Protocol::H2c => Sender::H2(shared[id % shared.len()].clone()),
            };
            let (idle, samples, mix, target) = (
                idle.clone(),
                samples.clone(),
                mix.clone(),
                plan.target.clone(),
            );
            tokio::spawn(async move {
                while idle.send(id).is_ok() {
                    let Some(job) = rx.recv().await else { break };
                    let sent = start.elapsed();
                    let outcome = match mix.get(job.request) {
                        Some(r) => sender.send(&target, r).await,
                        None => Outcome::Failed("request"),
                    };
                    let _ = samples.send(Sample {
                        due: job.due,
                        queued: job.queued,
                        sent: Some(sent),
                        done: start.elapsed(),
                        outcome,
                    });
                }
            });
            tx
        })
        .collect()
}

async fn collect(mut samples: mpsc::UnboundedReceiver<Sample>, recording: Arc<Mutex<Recording>>) {
    let mut batch = Vec::with_capacity(1024);
    while samples.recv_many(&mut batch, 1024).await > 0 {
        // One lock per batch: the progress line and the report read it rarely.
        if let Ok(mut r) = recording.lock() {
            for s in &batch {
                r.record(s);
            }
        }
        batch.clear();
    }
}
