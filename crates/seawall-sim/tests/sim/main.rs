//! End-to-end tests of the sim over real sockets on 127.0.0.1, port 0.
//!
//! One test binary with a module per topic; `client` holds the HTTP/1.1 and h2c clients
//! the topics share.

mod client;
mod endpoints;
mod faults;
mod h2;
mod stats;
