//! The multi-window, multi-burn-rate alert windows of the SRE workbook ("Alerting on
//! SLOs"), scaled to an SLO period.
//!
//! For 30 days: page on 1h and 5m at 14.4× (2% of the budget in an hour), or 6h and 30m at
//! 6× (5% in six hours); ticket on 1d and 2h at 3× (10% in a day), or 3d and 6h at 1× (10%
//! in three days). For another period every window keeps its share of the period (1h is
//! 1/720 of 30 days), rounded to whole minutes, and the factors stay: a factor is the share
//! of the budget spent over the share of the period, which scaling leaves unchanged.

use std::time::Duration;

use crate::decimal::Decimal;

/// Who is told: a page wakes someone, a ticket waits for working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Fast burn: the budget is gone in days.
    Page,
    /// Slow burn: the budget is gone before the period ends.
    Ticket,
}

impl Severity {
    /// The `severity` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One window pair: both error ratios must be above `factor × budget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurnWindow {
    /// Page or ticket.
    pub severity: Severity,
    /// The window that proves the burn is significant.
    pub long: Duration,
    /// The window that proves it is still going on (the alert resets fast once fixed).
    pub short: Duration,
    /// The burn rate: how many times faster than the budget allows.
    pub factor: Decimal,
}

/// The workbook's period, its windows are given for.
const WORKBOOK_PERIOD_SECS: u64 = 30 * 24 * 3600;

/// (severity, long, short, factor) for 30 days, in seconds and tenths.
const WORKBOOK: [(Severity, u64, u64, u128); 4] = [
    (Severity::Page, 3600, 300, 144),
    (Severity::Page, 6 * 3600, 1800, 60),
    (Severity::Ticket, 24 * 3600, 2 * 3600, 30),
    (Severity::Ticket, 3 * 24 * 3600, 6 * 3600, 10),
];

/// The four window pairs for `period`.
pub fn burn_windows(period: Duration) -> Vec<BurnWindow> {
    WORKBOOK
        .iter()
        .map(|&(severity, long, short, tenths)| BurnWindow {
            severity,
            long: scale(long, period),
            short: scale(short, period),
            factor: Decimal::new(tenths, 1),
        })
        .collect()
}

/// Every window the recording rules need for `period`: the standard ones (5m, 30m, 1h,
/// 2h, 6h, 1d, 3d, scaled), then the period itself.
pub fn recorded_windows(period: Duration) -> Vec<Duration> {
    let mut windows: Vec<Duration> = burn_windows(period)
        .iter()
        .flat_map(|w| [w.short, w.long])
        .collect();
    windows.sort();
    windows.dedup();
    windows.push(whole_minutes(period));
    windows.dedup();
    windows
}

/// `workbook_secs` of 30 days, as the same share of `period`, in whole minutes (≥ 1).
fn scale(workbook_secs: u64, period: Duration) -> Duration {
    let secs =
        u128::from(workbook_secs) * period.as_millis() / 1000 / u128::from(WORKBOOK_PERIOD_SECS);
    let minutes = ((secs + 30) / 60).max(1);
    Duration::from_secs(u64::try_from(minutes * 60).unwrap_or(u64::MAX))
}

fn whole_minutes(d: Duration) -> Duration {
    Duration::from_secs((d.as_secs() / 60).max(1) * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::duration;

    fn names(ws: &[Duration]) -> Vec<String> {
        ws.iter().map(|w| duration(*w)).collect()
    }

    #[test]
    fn thirty_days_gives_the_workbook_windows() {
        let ws = burn_windows(Duration::from_secs(WORKBOOK_PERIOD_SECS));
        let got: Vec<(String, String, String)> = ws
            .iter()
            .map(|w| (duration(w.long), duration(w.short), w.factor.to_string()))
            .collect();
        let want = [
            ("1h", "5m", "14.4"),
            ("6h", "30m", "6"),
            ("1d", "2h", "3"),
            ("3d", "6h", "1"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
        let recorded = recorded_windows(Duration::from_secs(WORKBOOK_PERIOD_SECS));
        assert_eq!(
            names(&recorded),
            ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
        );
    }

    #[test]
    fn other_periods_scale_every_window() {
        let week = recorded_windows(Duration::from_secs(7 * 86400));
        assert_eq!(
            names(&week),
            ["1m", "7m", "14m", "28m", "84m", "336m", "1008m", "7d"]
        );
        let quarter = burn_windows(Duration::from_secs(90 * 86400));
        assert_eq!(duration(quarter[0].long), "3h");
        assert_eq!(duration(quarter[0].short), "15m");
    }
}
