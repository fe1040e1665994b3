//! The live progress line: elapsed / total, req/s, p99, errors, current phase. Redrawn in
//! place on a terminal, plain lines (every 5 s) otherwise; colour only on a terminal and
//! never with `NO_COLOR`.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

use crate::{load::record::Recording, scenario::Scenario};

/// How progress is shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Redraw one line in place (stderr is a terminal).
    pub tty: bool,
    /// Colour the failures (a terminal, and no `NO_COLOR`).
    pub color: bool,
    /// Show nothing (tests).
    pub quiet: bool,
}

impl Progress {
    /// From the environment: stderr a terminal or not, `NO_COLOR`.
    pub fn detect() -> Self {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            tty,
            color: tty && !no_color,
            quiet: false,
        }
    }

    /// Shows progress until `done`.
    pub async fn run(
        self,
        rec: Arc<Mutex<Recording>>,
        s: Scenario,
        start: Instant,
        mut done: watch::Receiver<bool>,
    ) {
        if self.quiet {
            return;
        }
        let every = if self.tty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        let mut tick = tokio::time::interval_at(start + every, every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = done.wait_for(|d| *d) => break,
            }
            let line = self.line(&rec, &s, start.elapsed());
            let mut err = std::io::stderr().lock();
            let _ = if self.tty {
                write!(err, "\r\x1b[2K{line}")
            } else {
                writeln!(err, "{line}")
            };
            let _ = err.flush();
        }
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }

    fn line(&self, rec: &Mutex<Recording>, s: &Scenario, elapsed: Duration) -> String {
        let total = s.duration();
        let mut at = Duration::ZERO;
        let phase = s
            .load
            .phases
            .iter()
            .find(|p| {
                at += p.duration.get();
                elapsed < at
            })
            .map_or("ending", |p| p.name.as_str());
        // The last full second: the current one is still filling.
        let i = usize::try_from(elapsed.as_secs())
            .unwrap_or(0)
            .saturating_sub(1);
        let (rps, p99, errors, dropped) = rec
            .lock()
            .ok()
            .and_then(|r| {
                r.seconds.get(i).map(|sec| {
                    let h = sec.merged_latency();
                    (
                        sec.answered(),
                        h.value_at_quantile(0.99) as f64 / 1000.0,
                        sec.class(5) + sec.failed,
                        sec.dropped,
                    )
                })
            })
            .unwrap_or_default();
        let errors_text = if errors > 0 && self.color {
            format!("\x1b[31m{errors} errors\x1b[0m")
        } else {
            format!("{errors} errors")
        };
        format!(
            "{:>5.1}s / {:.0}s  {phase:<12} {rps:>6} req/s  p99 {p99:>8.1}ms  {errors_text}  {dropped} dropped",
            elapsed.as_secs_f64().min(total.as_secs_f64()),
            total.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_phase_and_colours_only_when_asked() {
        let s = crate::scenario::parse::parse(
            "p.yaml",
            "target: {gateway: 'http://127.0.0.1:1'}
load:
  phases: [{name: warm, duration: 2s, rate: 1}, {name: hot, duration: 2s, rate: 1}]
  requests: [{path: /}]
",
            &[],
        )
        .unwrap();
        let mut rec = Recording::with_seconds(4);
        rec.seconds[2].statuses.insert(503, 3);
        rec.seconds[2].scheduled = 3;
        let rec = Mutex::new(rec);
        let plain = Progress {
            tty: false,
            color: false,
            quiet: false,
        };
        let line = plain.line(&rec, &s, Duration::from_millis(3500));
        assert!(line.contains("hot") && line.contains("3 errors"), "{line}");
        assert!(!line.contains('\x1b'), "{line}");
        let coloured = Progress {
            color: true,
            ..plain
        };
        assert!(
            coloured
                .line(&rec, &s, Duration::from_millis(3500))
                .contains("\x1b[31m")
        );
        assert!(
            plain
                .line(&rec, &s, Duration::from_millis(500))
                .contains("warm")
        );
    }
}
