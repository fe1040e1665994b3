//! Toxics: what the API stores about each one, and how each kind treats the bytes.
//!
//! A [`Toxic`] is the API's record (name, stream, toxicity, attributes). Its JSON form has
//! Toxiproxy's field names and order: `attributes`, `name`, `type`, `stream`, `toxicity`.
//! Each kind lives in its own module with its attributes (Toxiproxy's names and units)
//! and its behaviour on one connection direction ([`crate::chain`] runs them in order).

pub mod bandwidth;
pub mod drop_data;
pub mod http_delay;
pub mod http_reset;
pub mod http_status;
pub mod latency;
pub mod limit_data;
pub mod limit_time;
pub mod reset_peer;
pub mod slicer;
pub mod slow_close;
pub mod timeout;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::stream::Stream;

/// The kinds of toxic, with their attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Delays each chunk.
    Latency(latency::Latency),
    /// Limits the rate.
    Bandwidth(bandwidth::Bandwidth),
    /// Delays the close.
    SlowClose(slow_close::SlowClose),
    /// Passes nothing; closes after a time (or never).
    Timeout(timeout::Timeout),
    /// Resets the connection after a time.
    ResetPeer(reset_peer::ResetPeer),
    /// Cuts chunks into small pieces.
    Slicer(slicer::Slicer),
    /// Closes after a number of bytes.
    LimitData(limit_data::LimitData),
    /// Extension: closes after a time, passing data until then.
    LimitTime(limit_time::LimitTime),
    /// Extension: drops a share of the chunks.
    DropData(drop_data::DropData),
    /// Does nothing.
    Noop,
    /// Extension, HTTP proxies only: answers a share of requests itself.
    HttpStatus(http_status::HttpStatus),
    /// Extension, HTTP proxies only: delays a share of response heads.
    HttpDelay(http_delay::HttpDelay),
    /// Extension, HTTP proxies only: resets a share of responses mid-body.
    HttpReset(http_reset::HttpReset),
}

/// Every type name [`Kind::parse`] knows, TCP ones first, the HTTP ones last.
pub const TYPES: &[&str] = &[
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "limit_time",
    "drop_data",
    "noop",
    "http_status",
    "http_delay",
    "http_reset",
];

/// Why attributes could not be read.
pub type AttributeError = serde_json::Error;

impl Kind {
    /// The kind named `kind` with its attributes read from `attributes` (an object, or
    /// null for all zeros, as Toxiproxy reads an absent object). `None`: no such kind.
    pub fn parse(kind: &str, attributes: &Value) -> Option<Result<Self, AttributeError>> {
        let attributes = match attributes {
            Value::Null => Value::Object(Map::new()),
            other => other.clone(),
        };
        let parsed = match kind {
            "latency" => serde_json::from_value(attributes).map(Kind::Latency),
            "bandwidth" => serde_json::from_value(attributes).map(Kind::Bandwidth),
            "slow_close" => serde_json::from_value(attributes).map(Kind::SlowClose),
            "timeout" => serde_json::from_value(attributes).map(Kind::Timeout),
            "reset_peer" => serde_json::from_value(attributes).map(Kind::ResetPeer),
            "slicer" => serde_json::from_value(attributes).map(Kind::Slicer),
            "limit_data" => serde_json::from_value(attributes).map(Kind::LimitData),
            "limit_time" => serde_json::from_value(attributes).map(Kind::LimitTime),
            "drop_data" => serde_json::from_value(attributes).map(Kind::DropData),
            "noop" => Ok(Kind::Noop),
            "http_status" => serde_json::from_value::<http_status::HttpStatus>(attributes)
                .and_then(http_status::HttpStatus::checked)
                .map(Kind::HttpStatus),
            "http_delay" => serde_json::from_value(attributes).map(Kind::HttpDelay),
            "http_reset" => serde_json::from_value(attributes).map(Kind::HttpReset),
            _ => return None,
        };
        Some(parsed)
    }

    /// The type name used in the API.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Latency(_) => "latency",
            Kind::Bandwidth(_) => "bandwidth",
            Kind::SlowClose(_) => "slow_close",
            Kind::Timeout(_) => "timeout",
            Kind::ResetPeer(_) => "reset_peer",
            Kind::Slicer(_) => "slicer",
            Kind::LimitData(_) => "limit_data",
            Kind::LimitTime(_) => "limit_time",
            Kind::DropData(_) => "drop_data",
            Kind::Noop => "noop",
            Kind::HttpStatus(_) => "http_status",
            Kind::HttpDelay(_) => "http_delay",
            Kind::HttpReset(_) => "http_reset",
        }
    }

    /// The attributes as a JSON object, in the kind's field order.
    pub fn attributes(&self) -> Value {
        let value = match self {
            Kind::Latency(a) => serde_json::to_value(a),
            Kind::Bandwidth(a) => serde_json::to_value(a),
            Kind::SlowClose(a) => serde_json::to_value(a),
            Kind::Timeout(a) => serde_json::to_value(a),
            Kind::ResetPeer(a) => serde_json::to_value(a),
            Kind::Slicer(a) => serde_json::to_value(a),
            Kind::LimitData(a) => serde_json::to_value(a),
            Kind::LimitTime(a) => serde_json::to_value(a),
            Kind::DropData(a) => serde_json::to_value(a),
            Kind::Noop => Ok(Value::Object(Map::new())),
            Kind::HttpStatus(a) => serde_json::to_value(a),
            Kind::HttpDelay(a) => serde_json::to_value(a),
            Kind::HttpReset(a) => serde_json::to_value(a),
        };
        // Plain structs of integers and strings always serialize; an empty object is the safe answer.
        value.unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// These attributes with `patch`'s keys laid over them: Toxiproxy decodes an update
    /// into the existing toxic, so the keys an update leaves out keep their values.
    pub fn merged(&self, patch: &Value) -> Result<Self, AttributeError> {
        let merged = self.merged_attributes(patch)?;
        // A shared bandwidth line stays the same line across updates.
        Ok(match (self, merged) {
            (Kind::Bandwidth(old), Kind::Bandwidth(mut new)) => {
                new.line = old.line.clone();
                Kind::Bandwidth(new)
            }
            (_, merged) => merged,
        })
    }

    /// Does this kind act per request on an HTTP proxy (rather than on the bytes)?
    pub fn is_http(&self) -> bool {
        matches!(
            self,
            Kind::HttpStatus(_) | Kind::HttpDelay(_) | Kind::HttpReset(_)
        )
    }

    fn merged_attributes(&self, patch: &Value) -> Result<Self, AttributeError> {
        let mut current = match self.attributes() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        match patch {
            Value::Null => {}
            Value::Object(keys) => current.extend(keys.clone()),
            other => {
                // Not an object: let the kind's own decoder say what was wrong.
                return Kind::parse(self.type_name(), other).unwrap_or(Ok(Kind::Noop));
            }
        }
        Kind::parse(self.type_name(), &Value::Object(current)).unwrap_or(Ok(Kind::Noop))
    }
}

/// A toxic as the API holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Toxic {
    /// Unique for the life of the server; a running connection matches its state to the
    /// toxic by it, so that an update keeps the state (limit_data's byte count).
    pub id: u64,
    /// Unique within its proxy, across both streams.
    pub name: String,
    /// The direction it acts on.
    pub stream: Stream,
    /// The chance (0 to 1) that it acts on a given connection direction.
    pub toxicity: f32,
    /// What it does.
    pub kind: Kind,
    /// Extension: milliseconds after its creation at which it removes itself.
    pub ttl: Option<u64>,
}

impl Serialize for Toxic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            attributes: Attributes<'a>,
            name: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            stream: &'a str,
            toxicity: f32,
            // Only for toxics created with one, so other clients never see the field.
            #[serde(skip_serializing_if = "Option::is_none")]
            ttl: Option<u64>,
        }
        View {
            attributes: Attributes(&self.kind),
            name: &self.name,
            kind: self.kind.type_name(),
            stream: self.stream.as_str(),
            toxicity: self.toxicity,
            ttl: self.ttl,
        }
        .serialize(serializer)
    }
}

/// A kind's attributes serialized from its struct, so that the keys keep its field order
/// (a `Value` object would sort them).
struct Attributes<'a>(&'a Kind);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Kind::Latency(a) => a.serialize(serializer),
            Kind::Bandwidth(a) => a.serialize(serializer),
            Kind::SlowClose(a) => a.serialize(serializer),
            Kind::Timeout(a) => a.serialize(serializer),
            Kind::ResetPeer(a) => a.serialize(serializer),
            Kind::Slicer(a) => a.serialize(serializer),
            Kind::LimitData(a) => a.serialize(serializer),
            Kind::LimitTime(a) => a.serialize(serializer),
            Kind::DropData(a) => a.serialize(serializer),
            Kind::Noop => Map::new().serialize(serializer),
            Kind::HttpStatus(a) => a.serialize(serializer),
            Kind::HttpDelay(a) => a.serialize(serializer),
            Kind::HttpReset(a) => a.serialize(serializer),
        }
    }
}

/// The body of `POST /proxies/{p}/toxics`, with Toxiproxy's defaults. A `null` field is
/// an absent one, as for Go's decoder (clients send `"name": null`).
#[derive(Deserialize, Debug)]
pub struct NewToxic {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default = "default_stream", deserialize_with = "nullable_stream")]
    pub stream: String,
    #[serde(default = "default_toxicity", deserialize_with = "nullable_toxicity")]
    pub toxicity: f32,
    #[serde(default)]
    pub attributes: Value,
    /// Extension: remove the toxic this many milliseconds after creating it.
    #[serde(default)]
    pub ttl: Option<u64>,
}

/// The body of `POST|PATCH /proxies/{p}/toxics/{t}`: only these two fields change.
#[derive(Deserialize, Debug)]
pub struct ToxicUpdate {
    #[serde(default)]
    pub toxicity: Option<f32>,
    #[serde(default)]
    pub attributes: Value,
}

/// A field where `null` means its default.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn nullable_stream<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_else(default_stream))
}

fn nullable_toxicity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(deserializer)?.unwrap_or_else(default_toxicity))
}

fn default_stream() -> String {
    "downstream".to_owned()
}

fn default_toxicity() -> f32 {
    1.0
}

/// The longest wait a toxic asks for: a year is "forever" for a drill, and it keeps
/// `Instant + wait` from overflowing on absurd attributes.
pub(crate) const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// Milliseconds from an attribute; Toxiproxy accepts negative numbers and treats them
/// as no time at all.
pub(crate) fn millis(value: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(value).unwrap_or(0)).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_has_toxiproxy_field_order() {
        let toxic = Toxic {
            id: 1,
            name: "latency_downstream".into(),
            stream: Stream::Downstream,
            toxicity: 1.0,
            kind: Kind::parse("latency", &json!({"latency": 100}))
                .unwrap()
                .unwrap(),
            ttl: None,
        };
        let text = serde_json::to_string(&toxic).unwrap();
        assert_eq!(
            text,
            r#"{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1.0}"#
        );
    }

    #[test]
    fn every_listed_type_parses_with_no_attributes_and_keeps_its_name() {
        for name in TYPES {
            let kind = Kind::parse(name, &Value::Null).unwrap().unwrap();
            assert_eq!(kind.type_name(), *name);
        }
    }

    #[test]
    fn absurd_waits_are_capped() {
        assert_eq!(millis(i64::MAX), MAX_WAIT);
        assert_eq!(millis(-5), std::time::Duration::ZERO);
    }

    #[test]
    fn merge_keeps_keys_the_update_leaves_out() {
        let kind = Kind::parse("latency", &json!({"latency": 100, "jitter": 5}))
            .unwrap()
            .unwrap();
        let merged = kind.merged(&json!({"jitter": 9})).unwrap();
        assert_eq!(merged.attributes(), json!({"latency": 100, "jitter": 9}));
    }

    #[test]
    fn null_fields_take_their_defaults() {
        let toxic: NewToxic = serde_json::from_str(
            r#"{"name":null,"type":"noop","stream":null,"toxicity":null,"attributes":null}"#,
        )
        .unwrap();
        assert_eq!(toxic.name, "");
        assert_eq!(toxic.stream, "downstream");
        assert_eq!(toxic.toxicity, 1.0);
    }

    #[test]
    fn unknown_kind_and_bad_attribute_are_told_apart() {
        assert!(Kind::parse("teleport", &Value::Null).is_none());
        assert!(
            Kind::parse("latency", &json!({"latency": "slow"}))
                .unwrap()
                .is_err()
        );
    }
}
