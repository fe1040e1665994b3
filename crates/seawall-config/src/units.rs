//! Unit-bearing scalar types of the config: durations (`"250ms"`) and byte sizes (`"16KiB"`).
//!
//! Durations must carry a unit: a bare number is rejected, because `timeout: 30` is
//! ambiguous (seconds? milliseconds?) and that ambiguity has caused real outages.

use std::{borrow::Cow, fmt, str::FromStr, time::Duration};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration written with a unit, such as `"250ms"`, `"3s"` or `"1m 30s"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The longest duration a config may give (a year): longer is surely a typo, and
    /// deadlines computed as `now + duration` must not overflow the clock.
    pub const MAX: HumanDuration = HumanDuration(Duration::from_secs(365 * 24 * 3600));

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// A duration of `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    /// The inner duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "duration `{t}` has no unit; write it with one, e.g. \"{t}s\" or \"{t}ms\""
            ));
        }
        let d = humantime::parse_duration(t).map_err(|e| {
            format!("invalid duration `{t}` ({e}); use a number with a unit, e.g. \"250ms\", \"3s\", \"1m\"")
        })?;
        if d > HumanDuration::MAX.0 {
            return Err(format!(
                "duration `{t}` is longer than the longest Seawall accepts, 365d; write at most \"365d\""
            ));
        }
        Ok(HumanDuration(d))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, such as \"250ms\" or \"3s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit; write it with one, e.g. \"{v}s\" or \"{v}ms\""
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit; write it as a string with one, e.g. \"{v}s\""
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit; write it as a string with one, e.g. \"{v}s\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with a unit: \"250ms\", \"3s\", \"1m 30s\". Bare numbers are rejected.",
            // Every unit humantime accepts, so editors never flag a value the parser takes.
            "pattern": "^\\s*([0-9]+(\\.[0-9]+)?\\s*(nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)\\s*)+$"
        })
    }
}

/// A size in bytes: an integer, or a string with a unit (`"16KiB"`, `"1MB"`, `"512B"`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (div, unit) in [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
            if n >= div && n.is_multiple_of(div) {
                return write!(f, "{}{unit}", n / div);
            }
        }
        write!(f, "{n}B")
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let hint = "use an integer number of bytes or a unit: B, KB, KiB, MB, MiB, GB, GiB (e.g. \"16KiB\")";
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid size `{t}`; {hint}"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            other => return Err(format!("unknown size unit `{other}` in `{t}`; {hint}")),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{t}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte size such as 16384 or \"16KiB\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("size `{v}` must not be negative")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size in bytes: an integer, or a string with a unit (B, KB, KiB, MB, MiB, GB, GiB).",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9]+\\s*(B|KB|kB|KiB|MB|MiB|GB|GiB)?\\s*$" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_longer_than_a_year_are_refused() {
        assert_eq!(
            "365d".parse::<HumanDuration>().unwrap().get(),
            Duration::from_secs(365 * 24 * 3600)
        );
        let e = "366d".parse::<HumanDuration>().unwrap_err();
        assert!(
            e.contains("`366d`") && e.contains("at most \"365d\""),
            "{e}"
        );
        assert!("99999999999y".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().get(),
            Duration::from_millis(250)
        );
        assert_eq!(
            "1m 30s".parse::<HumanDuration>().unwrap().get(),
            Duration::from_secs(90)
        );
        let err = "30".parse::<HumanDuration>().unwrap_err();
        assert!(err.contains("no unit") && err.contains("\"30s\""), "{err}");
        assert!("fast".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn the_schema_pattern_accepts_what_the_parser_accepts() {
        let pattern = HumanDuration::json_schema(&mut SchemaGenerator::default())
            .get("pattern")
            .and_then(|p| p.as_str().map(str::to_owned))
            .unwrap();
        for unit in [
            "ns", "us", "ms", "s", "sec", "seconds", "m", "min", "minutes", "h", "hours", "d",
            "days", "w", "weeks",
        ] {
            let value = format!("2{unit}");
            assert!(value.parse::<HumanDuration>().is_ok(), "{value}");
            assert!(
                pattern.contains(&format!("|{unit}|")) || pattern.contains(&format!("({unit}|")),
                "{unit} missing from {pattern}"
            );
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!("16KiB".parse::<ByteSize>().unwrap().bytes(), 16384);
        assert_eq!("1MB".parse::<ByteSize>().unwrap().bytes(), 1_000_000);
        assert_eq!("512".parse::<ByteSize>().unwrap().bytes(), 512);
        assert!(
            "12 parsecs"
                .parse::<ByteSize>()
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert_eq!(ByteSize(16384).to_string(), "16KiB");
    }
}
