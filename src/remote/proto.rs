//! The protobuf messages of Prometheus's remote write 1.0 and remote read
//! protocols (`prompb`), declared with `prost`'s derive macros.
//!
//! Field numbers and types follow the published `.proto` files
//! (`types.proto`, `remote.proto`). Fields this crate does not use (the
//! contents of native histograms, exemplar-free details) are left out: protobuf
//! decoders skip unknown fields, so messages that carry them still decode.

use prost::bytes::Bytes;

/// `prometheus.WriteRequest`: the body of a remote write.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WriteRequest {
    /// The series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (type, help, unit) sent alongside.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.WriteRequest` as the write receiver decodes it: the same wire format as
/// [`WriteRequest`], but each series is kept as its encoded bytes (a [`Bytes`] slice of
/// the body when decoded from a `Bytes` buffer), to be decoded one at a time into a
/// reused [`RawTimeSeries`] with [`prost::Message::merge`], so the per-series vectors
/// are allocated once per request rather than once per series.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RawWriteRequest {
    /// The encoded `prometheus.TimeSeries` messages.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub timeseries: Vec<Bytes>,
    /// Metric metadata (type, help, unit) sent alongside.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries` as the write receiver decodes it (see [`RawWriteRequest`]):
/// label names and values stay bytes sharing the body (the receiver checks their UTF-8),
/// and exemplars and histograms are only counted.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RawTimeSeries {
    /// Labels, sorted by name (senders are expected to sort them).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<RawLabel>,
    /// Samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars, only counted.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Histogram>,
    /// Native histogram samples, only counted.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Label` with its strings left as bytes (UTF-8 not yet checked).
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct RawLabel {
    /// Label name.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    /// Label value.
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// `prometheus.TimeSeries`: one label set and its samples.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TimeSeries {
    /// Labels, sorted by name (senders are expected to sort them).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars attached to the series.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histogram samples, which Aion does not store: only counted.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Histogram` (or any message the receiver only counts), with none of its
/// fields decoded: a decoder skips the fields it does not know.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct Histogram {}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: a float value at a timestamp in milliseconds.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Exemplar {
    /// Exemplar labels (e.g. a trace id).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetricMetadata {
    /// The metric type.
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    /// The metric family name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// HELP text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// UNIT.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `prometheus.MetricMetadata.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// unknown
    Unknown = 0,
    /// counter
    Counter = 1,
    /// gauge
    Gauge = 2,
    /// histogram
    Histogram = 3,
    /// gaugehistogram
    Gaugehistogram = 4,
    /// summary
    Summary = 5,
    /// info
    Info = 6,
    /// stateset
    Stateset = 7,
}

/// `prometheus.ReadRequest`: the body of a remote read.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReadRequest {
    /// The queries, answered in order.
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// Response types the client accepts, in order of preference.
    #[prost(enumeration = "ResponseType", repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// `prometheus.ReadRequest.ResponseType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    /// A snappy-compressed `ReadResponse` with raw samples.
    Samples = 0,
    /// A stream of `ChunkedReadResponse` frames.
    StreamedXorChunks = 1,
}

/// `prometheus.ReadResponse`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReadResponse {
    /// One result per query, in request order.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// `prometheus.Query`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Query {
    /// Start of the range, inclusive, in milliseconds.
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    /// End of the range, inclusive, in milliseconds.
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    /// Label matchers, all of which must match.
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
    /// Optional hints about the query.
    #[prost(message, optional, tag = "4")]
    pub hints: Option<ReadHints>,
}

/// `prometheus.QueryResult`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct QueryResult {
    /// Matching series, sorted by labels.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.LabelMatcher`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct LabelMatcher {
    /// The match operator.
    #[prost(enumeration = "MatcherType", tag = "1")]
    pub r#type: i32,
    /// Label name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Value or regular expression.
    #[prost(string, tag = "3")]
    pub value: String,
}

/// `prometheus.LabelMatcher.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum MatcherType {
    /// `=`
    Eq = 0,
    /// `!=`
    Neq = 1,
    /// `=~`
    Re = 2,
    /// `!~`
    Nre = 3,
}

/// `prometheus.ReadHints`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReadHints {
    /// Query step in milliseconds.
    #[prost(int64, tag = "1")]
    pub step_ms: i64,
    /// The function wrapping the selector, if any.
    #[prost(string, tag = "2")]
    pub func: String,
    /// Start of the selection in milliseconds.
    #[prost(int64, tag = "3")]
    pub start_ms: i64,
    /// End of the selection in milliseconds.
    #[prost(int64, tag = "4")]
    pub end_ms: i64,
    /// Grouping labels of the enclosing aggregation.
    #[prost(string, repeated, tag = "5")]
    pub grouping: Vec<String>,
    /// Whether grouping is `by` (true) or `without`.
    #[prost(bool, tag = "6")]
    pub by: bool,
    /// Range of the selector in milliseconds.
    #[prost(int64, tag = "7")]
    pub range_ms: i64,
}

/// `prometheus.ChunkedReadResponse`: one frame of a `STREAMED_XOR_CHUNKS` response.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ChunkedReadResponse {
    /// Series of this frame (one per frame, as Prometheus sends them).
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// Index of the query in the request.
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

/// `prometheus.ChunkedSeries`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ChunkedSeries {
    /// Labels, sorted.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Chunks in time order.
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// `prometheus.Chunk`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Chunk {
    /// Time of the first sample.
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    /// Time of the last sample.
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// How `data` is encoded.
    #[prost(enumeration = "ChunkEncoding", tag = "3")]
    pub r#type: i32,
    /// The chunk bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// `prometheus.Chunk.Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum ChunkEncoding {
    /// Unknown encoding.
    Unknown = 0,
    /// Prometheus's XOR float chunk.
    Xor = 1,
    /// Native histogram chunk.
    Histogram = 2,
    /// Float native histogram chunk.
    FloatHistogram = 3,
}
