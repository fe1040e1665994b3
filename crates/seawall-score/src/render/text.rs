//! The text report: a headline with the score, the findings grouped by unit (each with the
//! unit's score), rendered like config errors with the code added (`warning[SW101]`), then
//! the three fixes that raise the score most.

use std::fmt::{self, Write as _};

use seawall_config::{Severity, redact::escape_controls};

use crate::{Finding, Scored, UnitKind};

/// Renders `scored` for a terminal.
pub fn render(scored: &Scored) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, scored);
    out
}

fn write_report(out: &mut String, s: &Scored) -> fmt::Result {
    writeln!(out, "{}: score {}/100 ({})", s.file, s.score, counts(s))?;
    for unit in s.units.iter().filter(|u| !u.findings.is_empty()) {
        let label = match unit.unit.kind {
            UnitKind::Global => "global settings".to_owned(),
            kind => format!(
                "{} `{}` ({})",
                kind.as_str(),
                unit.unit.name,
                unit.unit.path
            ),
        };
        writeln!(out, "\n{label}: {}/100", unit.score)?;
        for &i in &unit.findings {
            writeln!(out, "\n{}", finding(&s.findings[i]))?;
        }
    }
    let clean = s.units.iter().filter(|u| u.findings.is_empty()).count();
    if clean > 0 && !s.findings.is_empty() {
        writeln!(out, "\n{clean} of {} units have no findings", s.units.len())?;
    }
    if !s.top_fixes.is_empty() {
        writeln!(out, "\nfixes that raise the score most:")?;
        for (n, fix) in s.top_fixes.iter().enumerate() {
            let f = &s.findings[fix.finding];
            writeln!(
                out,
                "  {}. [{}] {} (score {} -> {})",
                n + 1,
                f.code(),
                escape_controls(f.fix()),
                s.score,
                fix.score_after
            )?;
        }
    }
    Ok(())
}

/// `1 error, 2 warnings, 0 info`, or `no findings`.
fn counts(s: &Scored) -> String {
    if s.findings.is_empty() {
        return "no findings".to_owned();
    }
    let plural = |n: usize, one: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    format!(
        "{}, {}, {} info",
        plural(s.count(Severity::Error), "error"),
        plural(s.count(Severity::Warning), "warning"),
        s.count(Severity::Info)
    )
}

/// One finding: `warning[SW101]: message`, the code frame, why and fix.
pub fn finding(f: &Finding) -> String {
    let d = &f.diagnostic;
    let frame = seawall_config::Diagnostic {
        hint: None,
        ..d.clone()
    };
    let gutter = if d.snippet.is_some() {
        " ".repeat(d.line.to_string().len())
    } else {
        " ".to_owned()
    };
    format!(
        "{}[{}]: {}\n{}\n{gutter} = why: {}\n{gutter} = fix: {}",
        f.level().as_str(),
        f.code(),
        escape_controls(&d.message),
        frame.frame(),
        f.rule.why,
        escape_controls(f.fix())
    )
}
