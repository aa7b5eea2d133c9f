//! Remote write, remote read and their wire format.
//!
//! The protocol is Prometheus's remote storage protocol, version 1.0: a
//! protobuf message (see [`proto`]) compressed with snappy's block format
//! (see [`codec`]), sent over HTTP POST. [`receive`] applies received writes
//! to the database and [`read`] answers remote read queries from it.
//!
//! Sending: [`write::RemoteWrite`] runs one queue per `remote_write` entry; each
//! follows Aion's own WAL ([`watcher`]), spreads samples over shards ([`queue`]) and
//! records how far it got ([`progress`]) so restarts neither lose nor resend data.
//!
//! Reading: [`fanout::RemoteRead`] merges the `remote_read` endpoints into queries.

pub mod chunked;
pub mod client;
pub mod codec;
pub mod fanout;
pub mod progress;
pub mod proto;
pub mod queue;
pub mod read;
pub mod receive;
pub mod watcher;
pub mod write;

#[cfg(test)]
mod tests;
