//! The gateway's `/metrics` as data: Prometheus text parsed into samples, and the lookups
//! thresholds and probes make (a family's value with some labels, summed).

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name as exposed (with `_total`, `_bucket`, ... suffixes).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// One scrape of `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Every sample, in exposition order.
    pub samples: Vec<Sample>,
    /// Families declared by `# TYPE` lines: a labelled counter nothing has touched yet has
    /// no sample, yet it is a known metric whose value is 0.
    pub families: std::collections::BTreeSet<String>,
}

impl Scrape {
    /// Parses Prometheus text (0.0.4) or OpenMetrics text; comments and unparsable lines
    /// are skipped (a new exposition feature must not fail a drill).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(sample)
            .collect();
        let families = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        Self { samples, families }
    }

    /// The sum over every series of `name` whose labels include `labels`; `None` when no
    /// family of that name exists (an unknown metric, which a drill must not pass over),
    /// 0 for a declared family without a matching series. A name without `_total` also
    /// matches its counter series.
    pub fn value(&self, name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
        let total = format!("{name}_total");
        let mut found = self.declared(name).then_some(0.0);
        for s in &self.samples {
            if (s.name == name || s.name == total)
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
            {
                *found.get_or_insert(0.0) += s.value;
            }
        }
        found
    }

    /// Whether any series of `name` exists, whatever its labels, or its family is declared.
    pub fn has(&self, name: &str) -> bool {
        let total = format!("{name}_total");
        self.declared(name)
            || self
                .samples
                .iter()
                .any(|s| s.name == name || s.name == total)
    }

    /// Whether `# TYPE` declares `name` (OpenMetrics declares counters without `_total`).
    fn declared(&self, name: &str) -> bool {
        self.families.contains(name)
            || name
                .strip_suffix("_total")
                .is_some_and(|n| self.families.contains(n))
    }
}

/// Whether `name` is a counter by the naming convention (increase over a window, not last).
pub fn is_counter(name: &str) -> bool {
    name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_sum")
}

fn sample(line: &str) -> Option<Sample> {
    let (series, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..].find('}')? + open;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_once(' ')?,
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((n, l)) => (n, labels(l.trim_end_matches('}'))),
        None => (series, BTreeMap::new()),
    };
    Some(Sample {
        name: name.trim().to_owned(),
        labels,
        value,
    })
}

fn labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP seawall_retries_total x\n# TYPE seawall_retries_total counter\n\
        seawall_retries_total{route=\"api\",outcome=\"attempted\"} 7\n\
        seawall_retries_total{route=\"web\",outcome=\"attempted\"} 3\n\
        seawall_retries_total{route=\"web\",outcome=\"budget_exhausted\"} 1\n\
        seawall_up 1\n";

    #[test]
    fn values_are_summed_over_matching_series() {
        let s = Scrape::parse(TEXT);
        let attempted = BTreeMap::from([("outcome".to_owned(), "attempted".to_owned())]);
        assert_eq!(s.value("seawall_retries", &attempted), Some(10.0));
        assert_eq!(
            s.value("seawall_retries_total", &BTreeMap::new()),
            Some(11.0)
        );
        assert_eq!(s.value("seawall_up", &BTreeMap::new()), Some(1.0));
    }

    #[test]
    fn a_declared_family_without_series_is_zero() {
        let s = Scrape::parse("# TYPE seawall_retries counter\n# HELP seawall_retries x\n");
        assert_eq!(
            s.value("seawall_retries_total", &BTreeMap::new()),
            Some(0.0)
        );
        assert!(s.has("seawall_retries_total"));
    }

    #[test]
    fn an_unknown_metric_is_none_not_zero() {
        assert_eq!(
            Scrape::parse(TEXT).value("seawall_nope", &BTreeMap::new()),
            None
        );
    }
}
