//! Remote write, remote read and their wire format.
//!
//! The protocol is Prometheus's remote storage protocol, version 1.0: a
//! protobuf message (see [`proto`]) compressed with snappy's block format
//! (see [`codec`]), sent over HTTP POST.

pub mod codec;
pub mod proto;
