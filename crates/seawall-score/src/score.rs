//! The score: 0 to 100 per unit, and the mean over units for the whole config.
//!
//! Formula (also in `docs/score.md`):
//!
//! - Each unit (the global settings, each listener, each route, each upstream) starts at
//!   100 and loses [`ERROR_WEIGHT`] per error, [`WARNING_WEIGHT`] per warning and
//!   [`INFO_WEIGHT`] per info finding charged to it, down to 0.
//! - The config's score is the mean of its units' scores, rounded down.
//!
//! Why the mean and not the minimum: the minimum says only how bad the worst unit is, so
//! fixing anything else never moves it and a config with fifty careful routes and one
//! sloppy one scores like a config that is sloppy everywhere. The mean moves with every
//! fix, which is what a ratchet in CI (`--min-score`) needs. The worst unit is not hidden:
//! findings are listed per unit with the unit's own score. Why penalties and not
//! Polaris' passes-over-checks ratio: a check that does not apply (no retries, so no retry
//! budget to check) would count as a pass and dilute the score of a config that uses
//! little.

use seawall_config::Severity;

use crate::{finding::Finding, scope::Unit};

/// Points an error costs its unit.
pub const ERROR_WEIGHT: u32 = 25;
/// Points a warning costs its unit.
pub const WARNING_WEIGHT: u32 = 10;
/// Points an info finding costs its unit.
pub const INFO_WEIGHT: u32 = 2;

/// The points a finding of `level` costs.
pub fn weight(level: Severity) -> u32 {
    match level {
        Severity::Error => ERROR_WEIGHT,
        Severity::Warning => WARNING_WEIGHT,
        Severity::Info => INFO_WEIGHT,
    }
}

/// The score of a unit with findings of these levels.
pub fn unit_score(levels: impl IntoIterator<Item = Severity>) -> u32 {
    let lost: u32 = levels.into_iter().map(weight).sum();
    100u32.saturating_sub(lost)
}

/// The score of a config from its units' scores: their mean, rounded down; 100 for no
/// units.
pub fn config_score(unit_scores: &[u32]) -> u32 {
    let n = unit_scores.len() as u64;
    if n == 0 {
        return 100;
    }
    let sum: u64 = unit_scores.iter().map(|s| u64::from(*s)).sum();
    u32::try_from(sum / n).unwrap_or(100)
}

/// One unit's score and its findings (indices into [`Scored::findings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitScore {
    /// The unit.
    pub unit: Unit,
    /// Its score, 0-100.
    pub score: u32,
    /// Its findings, as indices into [`Scored::findings`].
    pub findings: Vec<usize>,
}

/// A fix worth making: a finding, and the config's score once it is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopFix {
    /// Index into [`Scored::findings`].
    pub finding: usize,
    /// The config's score with that finding fixed.
    pub score_after: u32,
}

/// A config's findings and scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The config file.
    pub file: String,
    /// The config's score, 0-100.
    pub score: u32,
    /// Every unit with its score, in the config's order.
    pub units: Vec<UnitScore>,
    /// Every finding, in code then file order.
    pub findings: Vec<Finding>,
    /// At most three fixes that raise the score most, best first.
    pub top_fixes: Vec<TopFix>,
}

/// How many fixes [`Scored::top_fixes`] lists.
const TOP_FIXES: usize = 3;

impl Scored {
    /// Scores `findings` over `units`.
    pub fn new(file: String, units: Vec<Unit>, findings: Vec<Finding>) -> Self {
        let scores = unit_scores(&units, &findings, None);
        let units: Vec<UnitScore> = units
            .into_iter()
            .zip(&scores)
            .map(|(unit, &score)| UnitScore {
                findings: (0..findings.len())
                    .filter(|&i| findings[i].unit == unit)
                    .collect(),
                unit,
                score,
            })
            .collect();
        let top_fixes = top_fixes(&units, &findings, &scores);
        Self {
            file,
            score: config_score(&scores),
            units,
            findings,
            top_fixes,
        }
    }

    /// How many findings have `level`.
    pub fn count(&self, level: Severity) -> usize {
        self.findings.iter().filter(|f| f.level() == level).count()
    }
}

/// Each unit's score, leaving out finding `without`.
fn unit_scores(units: &[Unit], findings: &[Finding], without: Option<usize>) -> Vec<u32> {
    units
        .iter()
        .map(|unit| {
            unit_score(
                findings
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| Some(*i) != without && f.unit == *unit)
                    .map(|(_, f)| f.level()),
            )
        })
        .collect()
}

/// The fixes that raise the score most, found by scoring the config again without each
/// finding. Ranked by the exact gain of the units' total (the rounded mean ties too often),
/// then by severity, then file order; fixes that gain nothing (their unit stays at 0) are
/// left out.
fn top_fixes(units: &[UnitScore], findings: &[Finding], scores: &[u32]) -> Vec<TopFix> {
    let plain: Vec<Unit> = units.iter().map(|u| u.unit.clone()).collect();
    let total: u32 = scores.iter().sum();
    let mut gains: Vec<(u32, usize, Vec<u32>)> = (0..findings.len())
        .map(|i| {
            let after = unit_scores(&plain, findings, Some(i));
            (after.iter().sum::<u32>().saturating_sub(total), i, after)
        })
        .filter(|(gain, _, _)| *gain > 0)
        .collect();
    gains.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(weight(findings[b.1].level()).cmp(&weight(findings[a.1].level())))
            .then(a.1.cmp(&b.1))
    });
    gains
        .into_iter()
        .take(TOP_FIXES)
        .map(|(_, finding, after)| TopFix {
            finding,
            score_after: config_score(&after),
        })
        .collect()
}
