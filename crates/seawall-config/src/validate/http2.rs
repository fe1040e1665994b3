//! Rules about `upstreams[].http2`: the keep-alive PING has an interval and a timeout
//! that are not zero, and a connection may carry at least one stream.

use super::Found;
use crate::{Http2Config, locate::join_key};

impl Found {
    /// `upstreams[i].http2`, with `path` that key's path.
    pub(super) fn http2(&mut self, path: &str, http2: &Http2Config) {
        if let Some(interval) = http2.keep_alive_interval {
            self.nonzero_duration(join_key(path, "keep_alive_interval"), interval);
        }
        self.nonzero_duration(
            join_key(path, "keep_alive_timeout"),
            http2.keep_alive_timeout,
        );
        if http2.max_concurrent_streams == 0 {
            self.push(
                join_key(path, "max_concurrent_streams"),
                Some("0".into()),
                "max_concurrent_streams must be at least 1",
                Some(
                    "a connection that may carry no stream serves nothing; the default is 100"
                        .into(),
                ),
            );
        }
    }
}
