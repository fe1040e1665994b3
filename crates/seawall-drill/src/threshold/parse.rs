//! The threshold language, text to [`Rule`]: a small hand-written tokenizer and a
//! recursive-descent parser whose errors name what was expected and where.
//!
//! ```text
//! rule      := compare [window] | breaker | recovered
//! compare   := operand OP operand                OP: < <= > >= == !=
//! operand   := term ['*' term]
//! term      := NUMBER[unit] | stat               units: us ms s m (time), % (ratio)
//! stat      := p(N) | max | min | mean | throughput
//!            | ratio(pred) | rate(pred) | count(pred)
//!            | requests | dropped | late | errors | degraded | retries
//!            | metric(NAME[{label="value",...}])
//! pred      := status OP CODE | Nxx | degraded | error[(KIND)] | dropped | late
//! window    := overall | during NAME | after NAME | before NAME
//! breaker   := breaker(UPSTREAM) == STATE within DURATION of NAME (start|end)
//! recovered := recovered within DURATION after NAME [end]
//! ```

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::Serialize;

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rule {
    /// A comparison of two operands over a window.
    Compare {
        /// The left side.
        left: Operand,
        /// The comparison.
        op: CmpOp,
        /// The right side.
        right: Operand,
        /// Which part of the run it is computed over.
        window: WindowRef,
    },
    /// The breaker of `upstream` reaches `state` within `within` of a window's edge.
    Breaker {
        /// The upstream whose breaker is read from the admin `/breakers`.
        upstream: String,
        /// `open`, `closed` or `half_open`.
        state: String,
        /// The allowed delay.
        within: Duration,
        /// The window whose edge starts the clock.
        window: String,
        /// Its start or end.
        edge: Edge,
    },
    /// After a window ends, the load is healthy again within `within`.
    Recovered {
        /// The allowed time to recover.
        within: Duration,
        /// The window whose end starts the clock.
        window: String,
    },
}

/// One side of a comparison: a term, or the product of two.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operand {
    /// The factors, multiplied.
    pub factors: Vec<Term>,
}

/// A number or a measured statistic.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    /// A literal; times are in seconds and percentages are ratios.
    Number(f64),
    /// A value measured over the window.
    Stat(Stat),
}

/// A statistic of the run over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "stat", rename_all = "snake_case")]
pub enum Stat {
    /// A latency percentile (0 to 100), in seconds, from intended send time.
    Percentile {
        /// The percentile.
        p: f64,
    },
    /// The highest latency, in seconds.
    Max,
    /// The lowest latency, in seconds.
    Min,
    /// The mean latency, in seconds.
    Mean,
    /// Completed responses per second.
    Throughput,
    /// The share of scheduled requests matching the predicate.
    Ratio {
        /// What is counted.
        of: Pred,
    },
    /// How many requests match.
    Count {
        /// What is counted.
        of: Pred,
    },
    /// Scheduled requests (sent, dropped or still waiting at the end).
    Requests,
    /// Retries the gateway started (`seawall_retries_total{outcome="attempted"}`).
    Retries,
    /// A `/metrics` value: the increase over the window for counters, else the last value.
    Metric {
        /// The metric family.
        name: String,
        /// Labels that must match.
        labels: BTreeMap<String, String>,
    },
}

/// Which requests a ratio or count is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "pred", rename_all = "snake_case")]
pub enum Pred {
    /// Answers whose status compares so to `code`.
    Status {
        /// The comparison.
        op: CmpOp,
        /// The status code.
        code: u16,
    },
    /// Answers of a status class (`5` for 5xx).
    Class {
        /// The first digit.
        class: u16,
    },
    /// Answers marked `seawall-degraded`.
    Degraded,
    /// Requests that failed without an answer, or answered with this `seawall-error` kind.
    Error {
        /// A `seawall-error` kind or a transport error kind; `None` for every transport error.
        kind: Option<String>,
    },
    /// Requests that were never sent (backlog full, or still waiting at the end).
    Dropped,
    /// Requests sent later than their intended time.
    Late,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CmpOp {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl CmpOp {
    /// Whether `a OP b` holds. Equality on measured floats allows a tiny tolerance.
    pub fn holds(self, a: f64, b: f64) -> bool {
        let eq = (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        match self {
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b || eq,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b || eq,
            CmpOp::Eq => eq,
            CmpOp::Ne => !eq,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        })
    }
}

/// The part of the run a comparison is computed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "window", content = "name", rename_all = "snake_case")]
pub enum WindowRef {
    /// The whole load.
    Overall,
    /// A phase or action, start to end.
    During(String),
    /// From the start of the load to the window's start.
    Before(String),
    /// From the window's end to the end of the load.
    After(String),
}

impl WindowRef {
    /// The phase or action name it refers to, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            WindowRef::Overall => None,
            WindowRef::During(n) | WindowRef::Before(n) | WindowRef::After(n) => Some(n),
        }
    }
}

/// A window's start or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// When it starts.
    Start,
    /// When it ends.
    End,
}

/// Why a threshold did not parse: what was expected, at which character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {at})")]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// 1-based character offset in the threshold text.
    pub at: usize,
    /// How to fix it.
    pub hint: String,
}

/// Parses one threshold.
pub fn parse(text: &str) -> Result<Rule, ParseError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        len: text.chars().count(),
    };
    let rule = p.rule()?;
    if let Some(t) = p.peek() {
        return Err(p.error_at(
            t.at,
            format!("unexpected `{}` after the end of the rule", t.kind),
            "a rule ends after its window (`overall`, `during NAME`, `after NAME`, `before NAME`)",
        ));
    }
    Ok(rule)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// A number with the letters (or `%`) written right after it.
    Number(f64, String),
    Str(String),
    Punct(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => f.write_str(s),
            Tok::Number(n, u) => write!(f, "{n}{u}"),
            Tok::Str(s) => write!(f, "{s:?}"),
            Tok::Punct(p) => f.write_str(p),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    /// 1-based character offset.
    at: usize,
}

const PUNCTS: [&str; 14] = [
    "<=", ">=", "==", "!=", "<", ">", "(", ")", "{", "}", ",", "*", "=", "/",
];

fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let unit_start = i;
            while i < chars.len() && (chars[i].is_ascii_alphabetic() || chars[i] == '%') {
                i += 1;
            }
            let unit: String = chars[unit_start..i].iter().collect();
            let value = digits.parse().map_err(|_| ParseError {
                message: format!("`{digits}` is not a number"),
                at,
                hint: "write numbers like 300, 0.2 or 1.5".to_owned(),
            })?;
            out.push(Token {
                kind: Tok::Number(value, unit),
                at,
            });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | ':'))
            {
                i += 1;
            }
            out.push(Token {
                kind: Tok::Ident(chars[start..i].iter().collect()),
                at,
            });
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            if i == chars.len() {
                return Err(ParseError {
                    message: "unterminated string".to_owned(),
                    at,
                    hint: "close the label value with `\"`".to_owned(),
                });
            }
            out.push(Token {
                kind: Tok::Str(chars[start..i].iter().collect()),
                at,
            });
            i += 1;
        } else if let Some(p) = PUNCTS.iter().find(|p| {
            let n = p.chars().count();
            chars
                .get(i..i + n)
                .is_some_and(|s| s.iter().copied().eq(p.chars()))
        }) {
            i += p.chars().count();
            out.push(Token {
                kind: Tok::Punct(p),
                at,
            });
        } else {
            return Err(ParseError {
                message: format!("unexpected character `{c}`"),
                at,
                hint: "see docs/drills.md, \"Thresholds\", for the grammar".to_owned(),
            });
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    len: usize,
}

const STATS: &str = "p(N), max, min, mean, throughput, ratio(...), rate(...), count(...), requests, dropped, late, errors, degraded, retries, metric(NAME)";

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn here(&self) -> usize {
        self.peek().map_or(self.len + 1, |t| t.at)
    }

    fn error_at(&self, at: usize, message: String, hint: &str) -> ParseError {
        ParseError {
            message,
            at,
            hint: hint.to_owned(),
        }
    }

    fn error(&self, expected: &str, hint: &str) -> ParseError {
        let found = self.peek().map_or("the end of the rule".to_owned(), |t| {
            format!("`{}`", t.kind)
        });
        self.error_at(
            self.here(),
            format!("expected {expected}, found {found}"),
            hint,
        )
    }

    fn punct(&mut self, p: &str) -> Result<(), ParseError> {
        match self.peek() {
            Some(Token {
                kind: Tok::Punct(q),
                ..
            }) if *q == p => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.error(&format!("`{p}`"), "see docs/drills.md, \"Thresholds\"")),
        }
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Tok::Punct(q), .. }) if *q == p)
    }

    fn keyword(&mut self, word: &str, hint: &str) -> Result<(), ParseError> {
        match self.peek() {
            Some(Token {
                kind: Tok::Ident(w),
                ..
            }) if w == word => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.error(&format!("`{word}`"), hint)),
        }
    }

    fn name(&mut self, what: &str, hint: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token {
                kind: Tok::Ident(w),
                ..
            }) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.error(what, hint)),
        }
    }

    fn rule(&mut self) -> Result<Rule, ParseError> {
        match self.peek().map(|t| &t.kind) {
            Some(Tok::Ident(w)) if w == "breaker" => self.breaker(),
            Some(Tok::Ident(w)) if w == "recovered" => self.recovered(),
            _ => self.compare(),
        }
    }

    fn compare(&mut self) -> Result<Rule, ParseError> {
        let left = self.operand()?;
        let op = self.cmp_op()?;
        let right = self.operand()?;
        let window = self.window()?;
        Ok(Rule::Compare {
            left,
            op,
            right,
            window,
        })
    }

    fn cmp_op(&mut self) -> Result<CmpOp, ParseError> {
        let op = match self.peek().map(|t| &t.kind) {
            Some(Tok::Punct("<")) => CmpOp::Lt,
            Some(Tok::Punct("<=")) => CmpOp::Le,
            Some(Tok::Punct(">")) => CmpOp::Gt,
            Some(Tok::Punct(">=")) => CmpOp::Ge,
            Some(Tok::Punct("==")) => CmpOp::Eq,
            Some(Tok::Punct("!=")) => CmpOp::Ne,
            _ => {
                return Err(self.error(
                    "a comparison (`<`, `<=`, `>`, `>=`, `==`, `!=`)",
                    "a rule compares a statistic with a limit, e.g. `p(99) < 300ms`",
                ));
            }
        };
        self.pos += 1;
        Ok(op)
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let mut factors = vec![self.term()?];
        while self.is_punct("*") {
            self.pos += 1;
            factors.push(self.term()?);
        }
        Ok(Operand { factors })
    }

    fn term(&mut self) -> Result<Term, ParseError> {
        match self.peek().cloned() {
            Some(Token {
                kind: Tok::Number(n, unit),
                at,
            }) => {
                self.pos += 1;
                number(n, &unit).map(Term::Number).ok_or_else(|| {
                    self.error_at(
                        at,
                        format!("unknown unit `{unit}` in `{n}{unit}`"),
                        "times take us, ms, s or m; ratios take %",
                    )
                })
            }
            Some(Token {
                kind: Tok::Ident(_),
                ..
            }) => self.stat().map(Term::Stat),
            _ => Err(self.error(
                "a number or a statistic",
                &format!("statistics are: {STATS}"),
            )),
        }
    }

    fn stat(&mut self) -> Result<Stat, ParseError> {
        let Some(Token {
            kind: Tok::Ident(word),
            at,
        }) = self.next()
        else {
            return Err(self.error("a statistic", STATS));
        };
        let stat = match word.as_str() {
            "p" => {
                self.punct("(")?;
                let p = match self.next() {
                    Some(Token {
                        kind: Tok::Number(p, u),
                        ..
                    }) if u.is_empty() && p > 0.0 && p <= 100.0 => p,
                    _ => {
                        self.pos -= 1;
                        return Err(self.error(
                            "a percentile between 0 and 100",
                            "e.g. `p(99)` or `p(99.9)`",
                        ));
                    }
                };
                self.punct(")")?;
                Stat::Percentile { p }
            }
            "max" => Stat::Max,
            "min" => Stat::Min,
            "mean" | "avg" => Stat::Mean,
            "throughput" | "rps" => Stat::Throughput,
            "requests" => Stat::Requests,
            "retries" => Stat::Retries,
            "dropped" => Stat::Count { of: Pred::Dropped },
            "late" => Stat::Count { of: Pred::Late },
            "errors" => Stat::Count {
                of: Pred::Error { kind: None },
            },
            "degraded" => Stat::Count { of: Pred::Degraded },
            "ratio" | "rate" | "count" => {
                self.punct("(")?;
                let of = self.pred()?;
                self.punct(")")?;
                if word == "count" {
                    Stat::Count { of }
                } else {
                    Stat::Ratio { of }
                }
            }
            "metric" => self.metric()?,
            other => {
                return Err(self.error_at(
                    at,
                    format!("unknown statistic `{other}`"),
                    &format!("statistics are: {STATS}"),
                ));
            }
        };
        Ok(stat)
    }

    fn pred(&mut self) -> Result<Pred, ParseError> {
        const PREDS: &str = "`status == 503`, `status >= 500`, `5xx`, `degraded`, `error`, `error(KIND)`, `dropped`, `late`";
        match self.next() {
            Some(Token {
                kind: Tok::Number(n, unit),
                ..
            }) if unit == "xx" && (1.0..=5.0).contains(&n) && n.fract() == 0.0 => {
                Ok(Pred::Class { class: n as u16 })
            }
            Some(Token {
                kind: Tok::Ident(w),
                at,
            }) => match w.as_str() {
                "status" => {
                    let op = self.cmp_op()?;
                    match self.next() {
                        Some(Token {
                            kind: Tok::Number(code, u),
                            ..
                        }) if u.is_empty() && (100.0..=999.0).contains(&code) => Ok(Pred::Status {
                            op,
                            code: code as u16,
                        }),
                        _ => {
                            self.pos -= 1;
                            Err(self.error("a status code (100 to 999)", "e.g. `status == 206`"))
                        }
                    }
                }
                "degraded" => Ok(Pred::Degraded),
                "dropped" => Ok(Pred::Dropped),
                "late" => Ok(Pred::Late),
                "error" | "errors" => {
                    if self.is_punct("(") {
                        self.pos += 1;
                        let kind = self.name(
                            "an error kind",
                            "e.g. `error(timeout)` or `error(circuit_open)`",
                        )?;
                        self.punct(")")?;
                        Ok(Pred::Error { kind: Some(kind) })
                    } else {
                        Ok(Pred::Error { kind: None })
                    }
                }
                other => Err(self.error_at(
                    at,
                    format!("unknown request class `{other}`"),
                    &format!("use one of {PREDS}"),
                )),
            },
            _ => {
                self.pos -= 1;
                Err(self.error("what to count", &format!("use one of {PREDS}")))
            }
        }
    }

    fn metric(&mut self) -> Result<Stat, ParseError> {
        self.punct("(")?;
        let name = self.name(
            "a metric name",
            "e.g. `metric(seawall_fallbacks_total{route=\"checkout\"})`",
        )?;
        let mut labels = BTreeMap::new();
        if self.is_punct("{") {
            self.pos += 1;
            while !self.is_punct("}") {
                let key = self.name("a label name", "labels are written `{name=\"value\"}`")?;
                self.punct("=")?;
                let value = match self.next() {
                    Some(Token {
                        kind: Tok::Str(v), ..
                    }) => v,
                    _ => {
                        self.pos -= 1;
                        return Err(self.error("a quoted label value", "e.g. `{route=\"api\"}`"));
                    }
                };
                labels.insert(key, value);
                if self.is_punct(",") {
                    self.pos += 1;
                }
            }
            self.punct("}")?;
        }
        self.punct(")")?;
        Ok(Stat::Metric { name, labels })
    }

    fn window(&mut self) -> Result<WindowRef, ParseError> {
        const HINT: &str = "end a rule with `overall`, `during NAME`, `after NAME` or `before NAME` (a phase or action name), or nothing for the whole load";
        let Some(Token {
            kind: Tok::Ident(w),
            ..
        }) = self.peek().cloned()
        else {
            return Ok(WindowRef::Overall);
        };
        self.pos += 1;
        let window = match w.as_str() {
            "overall" => WindowRef::Overall,
            "during" => WindowRef::During(self.name("a phase or action name", HINT)?),
            "after" => WindowRef::After(self.name("a phase or action name", HINT)?),
            "before" => WindowRef::Before(self.name("a phase or action name", HINT)?),
            _ => {
                self.pos -= 1;
                return Err(self.error("a window", HINT));
            }
        };
        Ok(window)
    }

    fn duration(&mut self) -> Result<Duration, ParseError> {
        match self.next() {
            Some(Token {
                kind: Tok::Number(n, unit),
                ..
            }) if matches!(unit.as_str(), "us" | "ms" | "s" | "m") => number(n, &unit)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| self.error("a duration", "e.g. `2s` or `500ms`")),
            _ => {
                self.pos -= 1;
                Err(self.error("a duration with a unit", "e.g. `2s` or `500ms`"))
            }
        }
    }

    fn breaker(&mut self) -> Result<Rule, ParseError> {
        const HINT: &str = "write `breaker(UPSTREAM) == open within 2s of WINDOW start`";
        self.pos += 1;
        self.punct("(")?;
        let upstream = self.name("an upstream name", HINT)?;
        self.punct(")")?;
        self.punct("==")?;
        let at = self.here();
        let state = self.name("a breaker state", HINT)?;
        if !matches!(state.as_str(), "open" | "closed" | "half_open") {
            return Err(self.error_at(
                at,
                format!("unknown breaker state `{state}`"),
                "states are `open`, `closed` and `half_open`",
            ));
        }
        self.keyword("within", HINT)?;
        let within = self.duration()?;
        self.keyword("of", HINT)?;
        let window = self.name("a phase or action name", HINT)?;
        let edge = match self.next() {
            Some(Token {
                kind: Tok::Ident(e),
                ..
            }) if e == "start" => Edge::Start,
            Some(Token {
                kind: Tok::Ident(e),
                ..
            }) if e == "end" => Edge::End,
            _ => {
                self.pos -= 1;
                return Err(self.error("`start` or `end`", HINT));
            }
        };
        Ok(Rule::Breaker {
            upstream,
            state,
            within,
            window,
            edge,
        })
    }

    fn recovered(&mut self) -> Result<Rule, ParseError> {
        const HINT: &str = "write `recovered within 10s after WINDOW end`";
        self.pos += 1;
        self.keyword("within", HINT)?;
        let within = self.duration()?;
        self.keyword("after", HINT)?;
        let window = self.name("a phase or action name", HINT)?;
        if matches!(self.peek(), Some(Token { kind: Tok::Ident(e), .. }) if e == "end") {
            self.pos += 1;
        }
        Ok(Rule::Recovered { within, window })
    }
}

/// A literal in base units: seconds for times, a ratio for percentages.
fn number(n: f64, unit: &str) -> Option<f64> {
    match unit {
        "" => Some(n),
        "us" => Some(n / 1e6),
        "ms" => Some(n / 1e3),
        "s" => Some(n),
        "m" => Some(n * 60.0),
        "%" => Some(n / 100.0),
        _ => None,
    }
}

impl Rule {
    /// Every phase or action name the rule refers to.
    pub fn windows(&self) -> Vec<&str> {
        match self {
            Rule::Compare { window, .. } => window.name().into_iter().collect(),
            Rule::Breaker { window, .. } | Rule::Recovered { window, .. } => vec![window],
        }
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
