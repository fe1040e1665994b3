//! One drill, start to end: resolve the target, check the steady state, run the load with
//! the actions, pollers and probes beside it, undo every action, check again, evaluate the
//! thresholds and write the report.
//!
//! Exit codes: 0 every threshold passed, 1 one failed (or a `during`/`after` probe, an
//! action or an undo), 3 the scenario names something the run never saw, 4 the target was
//! unreachable or the steady state failed before the first action.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

use crate::{
    action::Actions,
    admin::Admin,
    chaos::Chaos,
    control::Base,
    embedded::{Embedded, EmbeddedError},
    events::Timeline,
    gateway_events::{GatewayEvents, unix_ms},
    load::{self, Plan, client::Target, record::Recording},
    poll::{Polled, lock, poll_breakers, poll_metrics, poll_probes},
    probe::{self, ProbeTargets},
    progress::Progress,
    report::{self, Report},
    scenario::Scenario,
    threshold::{
        self,
        eval::{Observed, Span, Verdict},
    },
};

/// Exit code: every threshold passed.
pub const EXIT_PASS: u8 = 0;
/// Exit code: a threshold (or a `during`/`after` probe) failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the scenario is invalid.
pub const EXIT_INVALID: u8 = 3;
/// Exit code: the target is unreachable or not in its steady state before the first action.
pub const EXIT_UNREACHABLE: u8 = 4;

/// How to run.
#[derive(Debug)]
pub struct Options {
    /// The scenario's folder: `target.embedded` is relative to it.
    pub base_dir: PathBuf,
    /// Where the report goes.
    pub out: PathBuf,
    /// The progress line.
    pub progress: Progress,
    /// Turns true on Ctrl-C: the load stops early and everything is undone.
    pub stop: watch::Receiver<bool>,
    /// The version string the report records.
    pub version: String,
}

/// How a drill ended.
#[derive(Debug)]
pub struct Outcome {
    /// The process exit code.
    pub code: u8,
    /// A few lines for the terminal.
    pub summary: String,
    /// The report folder, when one was written.
    pub report: Option<PathBuf>,
}

/// The resolved target.
struct Resolved {
    gateway: Base,
    admin: Option<Admin>,
    chaos: Option<Chaos>,
    embedded: Option<Embedded>,
}

async fn resolve(s: &Scenario, o: &Options) -> Result<Resolved, (u8, String)> {
    let token = std::env::var(&s.target.admin_token_env)
        .ok()
        .filter(|t| !t.is_empty());
    let parse = |u: &str| Base::parse(u).map_err(|e| (EXIT_INVALID, e.to_string()));
    let chaos = match &s.target.chaos {
        Some(u) => Some(Chaos { base: parse(u)? }),
        None => None,
    };
    if let Some(config) = &s.target.embedded {
        let e = Embedded::start(&o.base_dir.join(config))
            .await
            .map_err(|e| match e {
                EmbeddedError::Config(d) => (EXIT_INVALID, d.to_string()),
                other => (EXIT_UNREACHABLE, other.to_string()),
            })?;
        return Ok(Resolved {
            gateway: Base::of(e.traffic),
            admin: e.admin.map(|a| Admin {
                base: Base::of(a),
                token: token.clone(),
            }),
            chaos,
            embedded: Some(e),
        });
    }
    let gateway = parse(s.target.gateway.as_deref().unwrap_or_default())?;
    let admin = match &s.target.admin {
        Some(u) => Some(Admin {
            base: parse(u)?,
            token,
        }),
        None => None,
    };
    Ok(Resolved {
        gateway,
        admin,
        chaos,
        embedded: None,
    })
}

/// Runs `scenario`.
pub async fn run(scenario: Scenario, options: Options) -> Outcome {
    let target = match resolve(&scenario, &options).await {
        Ok(t) => t,
        Err((code, message)) => {
            return Outcome {
                code,
                summary: format!("error: {message}"),
                report: None,
            };
        }
    };
    let outcome = drill(&scenario, &options, &target).await;
    if let Some(e) = target.embedded {
        e.stop(Duration::from_secs(2)).await;
    }
    outcome
}

/// The pieces of one run that its steps share.
struct Run<'a> {
    s: &'a Scenario,
    o: &'a Options,
    timeline: Timeline,
    polled: Arc<Mutex<Polled>>,
    targets: ProbeTargets,
    started_at: std::time::SystemTime,
}

async fn drill(s: &Scenario, o: &Options, t: &Resolved) -> Outcome {
    let addr = match t.gateway.resolve().await {
        Ok(a) => a,
        Err(e) => return unreachable_outcome(format!("cannot resolve {}: {e}", t.gateway)),
    };
    if let Err(e) = tokio::net::TcpStream::connect(addr).await {
        return unreachable_outcome(format!("the gateway at {} is unreachable: {e}", t.gateway));
    }
    let run = Run {
        s,
        o,
        timeline: Timeline::default(),
        polled: Arc::default(),
        targets: ProbeTargets {
            gateway: t.gateway.clone(),
            admin: t.admin.as_ref().map(|a| a.base.clone()),
            token: t.admin.as_ref().and_then(|a| a.token.clone()),
        },
        started_at: std::time::SystemTime::now(),
    };
    if let Some(failed) = run.gate().await {
        return failed;
    }
    let target = Target {
        addr,
        authority: t.gateway.authority.clone(),
        protocol: s.load.protocol,
        timeout: s.load.timeout.get(),
    };
    let Some(plan) = Plan::new(&s.load, target, s.seed) else {
        return Outcome {
            code: EXIT_INVALID,
            summary: "error: a request of the mix cannot be built".into(),
            report: None,
        };
    };
    let actions = Arc::new(Actions::new(t.admin.clone(), t.chaos.clone()));
    let start = Instant::now() + Duration::from_millis(50);
    let mut events = match &t.admin {
        Some(a) => GatewayEvents::subscribe(a, unix_ms(start.into_std()))
            .await
            .map_err(|e| tracing::debug!(error = %e, "No gateway events."))
            .ok(),
        None => None,
    };
    let (recording, interrupted) = run.load(plan, t, &actions, start).await;
    run.undo(&actions, start).await;
    if let Some(e) = events.as_mut() {
        // The undo's own events (faults switched off) are on their way.
        tokio::time::sleep(Duration::from_millis(200)).await;
        run.timeline.merge(e);
    }
    run.conclude(&recording, interrupted).await
}

impl Run<'_> {
    /// The `before` probes; on a failure, the aborted outcome (exit 4, no load sent).
    async fn gate(&self) -> Option<Outcome> {
        for p in &self.s.steady_state.before {
            let r = probe::run(p, &self.targets).await;
            lock(&self.polled).probes.push(("before".into(), r.clone()));
            if !r.ok {
                self.timeline
                    .push(Duration::ZERO, "probe_failed", &r.name, &r.detail);
                let message = format!(
                    "steady state failed before the first action: {} ({})",
                    r.name, r.detail
                );
                let code = EXIT_UNREACHABLE;
                let report =
                    self.write_report(&Recording::default(), &[], code, vec![message.clone()]);
                return Some(Outcome {
                    code,
                    summary: message,
                    report,
                });
            }
        }
        None
    }

    /// Runs the load with the actions, pollers, probes and progress line beside it; returns
    /// the recording and whether a signal cut it short.
    async fn load(
        &self,
        plan: Plan,
        t: &Resolved,
        actions: &Arc<Actions>,
        start: Instant,
    ) -> (Recording, bool) {
        let s = self.s;
        let total = s.duration();
        let recording = Arc::new(Mutex::new(Recording::with_seconds(
            // One per started second of the load: a 5 s load has seconds 0 to 4.
            usize::try_from(total.as_millis().div_ceil(1000)).unwrap_or(0),
        )));
        let (done_tx, done) = watch::channel(false);
        let action_task = tokio::spawn(run_actions(
            s.clone(),
            actions.clone(),
            self.timeline.clone(),
            start,
            self.o.stop.clone(),
        ));
        let background = self.spawn_pollers(t, start, &done);
        let progress = tokio::spawn(self.o.progress.run(
            recording.clone(),
            s.clone(),
            start,
            done.clone(),
        ));
        let mut stop = self.o.stop.clone();
        load::run(plan, start, self.o.stop.clone(), recording.clone()).await;
        let interrupted = *stop.borrow_and_update();
        if interrupted {
            let why = "stopped by a signal; undoing every action";
            self.timeline
                .push(start.elapsed(), "interrupt", "drill", why);
        }
        let _ = done_tx.send(true);
        for mut b in background {
            // Pollers take a last reading and end.
            if tokio::time::timeout(Duration::from_secs(3), &mut b)
                .await
                .is_err()
            {
                b.abort();
            }
        }
        // It may be waiting for an end the load did not reach; the undo covers that.
        action_task.abort();
        let _ = progress.await;
        let rec = recording.lock().map(|r| r.clone()).unwrap_or_default();
        (rec, interrupted)
    }

    fn spawn_pollers(
        &self,
        t: &Resolved,
        start: Instant,
        done: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut background = Vec::new();
        if let Some(admin) = t.admin.clone() {
            let base = admin.base.clone();
            background.push(tokio::spawn(poll_breakers(
                admin,
                self.polled.clone(),
                self.timeline.clone(),
                start,
                done.clone(),
            )));
            background.push(tokio::spawn(poll_metrics(
                base,
                self.polled.clone(),
                start,
                done.clone(),
            )));
        }
        if !self.s.steady_state.during.is_empty() {
            background.push(tokio::spawn(poll_probes(
                self.s.clone(),
                self.targets.clone(),
                self.polled.clone(),
                self.timeline.clone(),
                start,
                done.clone(),
            )));
        }
        background
    }

    /// Undoes whatever is still in place, on every path out (the action task may have been
    /// cut off between taking an action and its end).
    async fn undo(&self, actions: &Actions, start: Instant) {
        for (undo, result) in actions.undo_all().await {
            let (kind, detail) = match &result {
                Ok(()) => ("undo", format!("{undo}: done")),
                Err(e) => ("undo_failed", format!("{undo}: failed: {e}")),
            };
            self.timeline.push(start.elapsed(), kind, "cleanup", detail);
        }
    }

    /// The `after` probes, the thresholds, the exit code and the report.
    async fn conclude(&self, rec: &Recording, interrupted: bool) -> Outcome {
        let mut failures = Vec::new();
        for p in &self.s.steady_state.after {
            let r = probe::run(p, &self.targets).await;
            if !r.ok {
                failures.push(format!(
                    "steady state after the drill: {} ({})",
                    r.name, r.detail
                ));
            }
            lock(&self.polled).probes.push(("after".into(), r));
        }
        failures.extend(
            lock(&self.polled)
                .probes
                .iter()
                .filter(|(w, r)| w == "during" && !r.ok)
                .take(1)
                .map(|(_, r)| format!("steady state during the drill: {} ({})", r.name, r.detail)),
        );
        // An action that did not take effect makes every threshold about its window
        // meaningless, and an undo that failed leaves the system changed: both fail the drill.
        failures.extend(
            self.timeline
                .events()
                .iter()
                .filter(|e| e.kind == "action_error" || e.kind == "undo_failed")
                .map(|e| format!("{} `{}`: {}", e.kind.replace('_', " "), e.name, e.detail)),
        );
        let (verdicts, unknown) = evaluate(self.s, rec, &self.polled);
        let code = if !unknown.is_empty() {
            EXIT_INVALID
        } else if interrupted || !failures.is_empty() || verdicts.iter().any(|v| !v.passed) {
            EXIT_FAILED
        } else {
            EXIT_PASS
        };
        if interrupted {
            failures.push("interrupted before the end of the load".to_owned());
        }
        failures.extend(unknown);
        let report = self.write_report(rec, &verdicts, code, failures.clone());
        Outcome {
            code,
            summary: summary(code, &verdicts, &failures, report.as_ref()),
            report,
        }
    }

    fn write_report(
        &self,
        rec: &Recording,
        verdicts: &[Verdict],
        code: u8,
        failures: Vec<String>,
    ) -> Option<PathBuf> {
        let p = lock(&self.polled);
        let r = Report::build(report::Inputs {
            scenario: self.s,
            version: &self.o.version,
            started_at: self.started_at,
            recording: rec,
            windows: &windows(self.s),
            events: self.timeline.events(),
            breakers: &p.breakers,
            probes: &p.probes,
            verdicts,
            exit_code: code,
            failures,
        });
        match report::write(&r, &self.o.out) {
            Ok(()) => Some(self.o.out.clone()),
            Err(e) => {
                eprintln!(
                    "error: cannot write the report to {}: {e}",
                    self.o.out.display()
                );
                None
            }
        }
    }
}

fn unreachable_outcome(message: String) -> Outcome {
    Outcome {
        code: EXIT_UNREACHABLE,
        summary: format!("error: {message}"),
        report: None,
    }
}

/// The windows of the phases and actions, as planned.
pub fn windows(s: &Scenario) -> BTreeMap<String, Span> {
    let total = s.duration();
    let mut out = BTreeMap::new();
    let mut at = Duration::ZERO;
    for p in &s.load.phases {
        out.insert(
            p.name.clone(),
            Span {
                start: at,
                end: at + p.duration.get(),
            },
        );
        at += p.duration.get();
    }
    for a in &s.actions {
        let end = a.lasts.map_or(total, |d| (a.at.get() + d.get()).min(total));
        out.insert(
            a.name.clone(),
            Span {
                start: a.at.get(),
                end,
            },
        );
    }
    out
}

fn evaluate(s: &Scenario, rec: &Recording, polled: &Mutex<Polled>) -> (Vec<Verdict>, Vec<String>) {
    let windows = windows(s);
    let p = lock(polled);
    let observed = Observed {
        seconds: &rec.seconds,
        windows: &windows,
        total: s.duration(),
        breakers: &p.breakers,
        scrapes: &p.scrapes,
    };
    let mut verdicts = Vec::new();
    let mut unknown = Vec::new();
    for text in &s.thresholds {
        match threshold::parse::parse(text) {
            Ok(rule) => match threshold::eval::evaluate(text, &rule, &observed) {
                Ok(v) => verdicts.push(v),
                Err(e) => unknown.push(format!("threshold `{text}`: {e}")),
            },
            Err(e) => unknown.push(format!("threshold `{text}`: {e}")),
        }
    }
    (verdicts, unknown)
}

fn summary(
    code: u8,
    verdicts: &[Verdict],
    failures: &[String],
    report: Option<&PathBuf>,
) -> String {
    let mut out = String::new();
    let word = match code {
        EXIT_PASS => "PASSED",
        EXIT_INVALID => "INVALID SCENARIO",
        _ => "FAILED",
    };
    out.push_str(&format!(
        "drill {word}: {} of {} thresholds passed\n",
        verdicts.iter().filter(|v| v.passed).count(),
        verdicts.len()
    ));
    for v in verdicts {
        out.push_str(&format!(
            "  {} {}  ({})\n",
            if v.passed { "ok  " } else { "FAIL" },
            v.threshold,
            v.shown
        ));
    }
    for f in failures {
        out.push_str(&format!("  {f}\n"));
    }
    if let Some(r) = report {
        out.push_str(&format!("report: {}", r.join("report.html").display()));
    }
    out
}

async fn run_actions(
    s: Scenario,
    actions: Arc<Actions>,
    timeline: Timeline,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let total = s.duration();
    // Starts and ends, in time order.
    let mut steps: Vec<(Duration, bool, usize)> = Vec::new();
    for (i, a) in s.actions.iter().enumerate() {
        steps.push((a.at.get(), true, i));
        if a.fault.is_some() || a.toxic.is_some() {
            steps.push((
                a.lasts.map_or(total, |d| (a.at.get() + d.get()).min(total)),
                false,
                i,
            ));
        }
    }
    steps.sort_by_key(|(at, is_start, _)| (*at, *is_start));
    for (at, is_start, i) in steps {
        tokio::select! {
            () = tokio::time::sleep_until(start + at) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let a = &s.actions[i];
        if is_start {
            match actions.start(a).await {
                Ok(what) => timeline.push(start.elapsed(), "action_start", &a.name, what),
                Err(e) => timeline.push(start.elapsed(), "action_error", &a.name, e),
            }
        } else {
            for (undo, r) in actions.end(&a.name).await {
                let detail = match r {
                    Ok(()) => undo.to_string(),
                    Err(e) => format!("{undo}: {e}"),
                };
                timeline.push(start.elapsed(), "action_end", &a.name, detail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_phases_in_order_and_actions_end_at_for_or_the_load() {
        let s = crate::scenario::parse::parse(
            "w.yaml",
            "target: {gateway: 'http://127.0.0.1:1', chaos: 'http://127.0.0.1:2'}
load:
  phases: [{name: a, duration: 2s, rate: 1}, {name: b, duration: 3s, rate: 1}]
  requests: [{path: /}]
actions:
  - {name: short, at: 1s, for: 1s, toxic: {proxy: p, type: latency}}
  - {name: long, at: 4s, for: 10s, toxic: {proxy: p, type: latency}}
  - {name: open, at: 3s, toxic: {proxy: p, type: latency}}
",
            &[],
        )
        .unwrap();
        let w = windows(&s);
        let span = |n: &str| (w[n].start.as_secs(), w[n].end.as_secs());
        assert_eq!(span("a"), (0, 2));
        assert_eq!(span("b"), (2, 5));
        assert_eq!(span("short"), (1, 2));
        assert_eq!(span("long"), (4, 5), "clipped to the load");
        assert_eq!(span("open"), (3, 5));
    }
}
