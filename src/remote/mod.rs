//! Remote write, remote read and their wire format.
//!
//! The protocol is Prometheus's remote storage protocol, version 1.0: a
//! protobuf message (see [`proto`]) compressed with snappy's block format
//! (see [`codec`]), sent over HTTP POST. [`receive`] applies received writes
//! to the database and [`read`] answers remote read queries from it.

pub mod chunked;
pub mod codec;
pub mod proto;
pub mod read;
pub mod receive;
