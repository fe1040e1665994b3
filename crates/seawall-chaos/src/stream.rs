//! The two directions of a proxied connection, named as Toxiproxy names them.
//!
//! `upstream` is what the client sends towards the server; `downstream` is what the
//! server sends back. Each direction has its own chain of toxics.

use std::fmt;

/// One direction of a proxied connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Client to server.
    Upstream,
    /// Server to client.
    Downstream,
}

impl Stream {
    /// Both directions, in the order Toxiproxy lists toxics (upstream first).
    pub const BOTH: [Stream; 2] = [Stream::Upstream, Stream::Downstream];

    /// Parses a stream name the way Toxiproxy does: case-insensitively.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "upstream" => Some(Self::Upstream),
            "downstream" => Some(Self::Downstream),
            _ => None,
        }
    }

    /// The name used in the API and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Downstream => "downstream",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ignores_case_and_rejects_others() {
        assert_eq!(Stream::parse("UpStream"), Some(Stream::Upstream));
        assert_eq!(Stream::parse("downstream"), Some(Stream::Downstream));
        assert_eq!(Stream::parse("sideways"), None);
    }
}
