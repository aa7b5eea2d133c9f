//! The remote write 1.0 receiver: applies a decoded `WriteRequest` to the
//! database as one transaction.
//!
//! The request is decoded by `prost` ([`super::codec::decode`]) as a
//! [`RawWriteRequest`], whose label names and values share the decompressed body rather
//! than being copied into a `String` each. An existing series is found from its label
//! pairs ([`Head::series_ref_by_pairs`]) and its
//! samples go to [`Appender::append_ref`], so a steady stream of known series builds no
//! [`Labels`] and does no index lookup by name. Only a new series builds a [`Labels`].
//!
//! A request is applied entirely or not at all: every series is checked (labels sorted,
//! unique and non-empty names, a metric name, valid names) and every sample appended to
//! one appender, and the first problem drops the appender, which discards the batch. A
//! sample that only the commit finds out of order or duplicate (another thread committed
//! to its series since this thread last did) refuses the request the same way
//! ([`Appender::commit_all_or_nothing`]).

use std::collections::BTreeMap;

use parking_lot::RwLock;

use prost::Message;

use super::codec::CodecError;
use super::proto::{MetricMetadata, RawTimeSeries, RawWriteRequest};
use crate::db::{Db, DbError};
use crate::head::{AppendError, Appender, Head, SeriesRef, StrictCommitError};
use crate::model::{Labels, Timestamp, METRIC_NAME};

/// Samples more than this far ahead of the receiver's clock are rejected, as
/// Prometheus does.
pub const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// Most metric families kept from remote write metadata.
const MAX_METADATA: usize = 100_000;

/// Why a remote write or remote read request was refused. [`ReceiveError::status`]
/// gives the HTTP status: 4xx when retrying cannot help, 5xx when it can.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The body is not snappy-compressed protobuf, or too large once decompressed.
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// A label name or value is not valid UTF-8.
    #[error("protobuf: label of series {series} is not valid UTF-8")]
    Utf8 {
        /// Position of the series in the request, from 0.
        series: u64,
    },
    /// A series' labels are invalid.
    #[error("invalid labels {labels}: {reason}")]
    InvalidLabels {
        /// The labels as received.
        labels: String,
        /// What is wrong with them.
        reason: String,
    },
    /// A sample was rejected by the storage (out of order, duplicate, out of bounds).
    #[error("{err}; series {labels}")]
    Sample {
        /// The series.
        labels: String,
        /// Why.
        err: AppendError,
    },
    /// A sample lies too far in the future.
    #[error(
        "out of bounds: timestamp {t} is more than 10m ahead of the server's time; series {labels}"
    )]
    TooFarAhead {
        /// The series.
        labels: String,
        /// The timestamp.
        t: Timestamp,
    },
    /// A label matcher of a read query is invalid.
    #[error("invalid matcher: {0}")]
    Matcher(String),
    /// A read query would return more samples than allowed.
    #[error("exceeded sample limit ({0})")]
    SampleLimit(usize),
    /// None of the response types the client accepts is supported.
    #[error(
        "server does not support any of the requested response types: {0:?}; supported: [SAMPLES]"
    )]
    ResponseType(Vec<i32>),
    /// The storage failed; the request can be retried.
    #[error("storage error: {0}")]
    Storage(#[from] DbError),
}

impl ReceiveError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ReceiveError::Codec(CodecError::TooLarge { .. }) => 413,
            ReceiveError::Storage(_) => 500,
            ReceiveError::Sample {
                err: AppendError::UnknownRef(_),
                ..
            } => 500,
            _ => 400,
        }
    }
}

/// What a write request held and what was stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// Series in the request.
    pub series: u64,
    /// Float samples in the request.
    pub samples: u64,
    /// Samples stored (identical re-sends are not stored twice).
    pub appended: u64,
    /// Native histogram samples, which Aion does not store, skipped.
    pub histograms_skipped: u64,
    /// Exemplars, which Aion does not store, skipped.
    pub exemplars_skipped: u64,
    /// Metadata entries received.
    pub metadata: u64,
}

/// Type, help and unit of a metric family, as remote write metadata announces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMeta {
    /// Prometheus's type name (`counter`, `gauge`, ..., `unknown`).
    pub kind: &'static str,
    /// HELP text.
    pub help: String,
    /// UNIT.
    pub unit: String,
}

/// Metadata received by remote write, newest per metric family, for
/// `/api/v1/metadata`.
#[derive(Debug, Default)]
pub struct MetadataStore {
    map: RwLock<BTreeMap<String, MetricMeta>>,
}

impl MetadataStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn set_all(&self, items: Vec<(String, MetricMeta)>) {
        if items.is_empty() {
            return;
        }
        let mut m = self.map.write();
        for (name, meta) in items {
            if m.len() >= MAX_METADATA && !m.contains_key(&name) {
                continue;
            }
            m.insert(name, meta);
        }
    }

    /// Every metric family and its metadata, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, MetricMeta)> {
        self.map
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn type_name(t: i32) -> &'static str {
    match t {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "unknown",
    }
}

/// Renders borrowed labels as `{a="b", ...}` for error messages.
fn show(labels: &[(&str, &str)]) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(n, v)| format!("{n}={}", crate::model::quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Checks a series' labels as received: non-empty names, sorted by name without
/// repeats, and a non-empty metric name.
fn check_labels(pairs: &[(&str, &str)]) -> Result<(), ReceiveError> {
    let bad = |reason: String| ReceiveError::InvalidLabels {
        labels: show(pairs),
        reason,
    };
    let mut prev: Option<&str> = None;
    let mut has_name = false;
    for &(n, v) in pairs {
        if n.is_empty() {
            return Err(bad("empty label name".into()));
        }
        if let Some(p) = prev {
            if p == n {
                return Err(bad(format!("duplicate label name {n:?}")));
            }
            if p > n {
                return Err(bad(format!(
                    "labels are not sorted by name ({p:?} before {n:?})"
                )));
            }
        }
        prev = Some(n);
        if n == METRIC_NAME && !v.is_empty() {
            has_name = true;
        }
    }
    if !has_name {
        return Err(bad("missing metric name".into()));
    }
    Ok(())
}

fn metadata_entry(m: MetricMetadata) -> (String, MetricMeta) {
    (
        m.metric_family_name,
        MetricMeta {
            kind: type_name(m.r#type),
            help: m.help,
            unit: m.unit,
        },
    )
}

/// Per-request working state.
struct Batch<'h> {
    app: Appender<'h>,
    head: &'h Head,
    max_t: Timestamp,
    stats: WriteStats,
    /// Packed label text of the series being looked up.
    scratch: String,
}

impl Batch<'_> {
    fn series(&mut self, ts: &RawTimeSeries) -> Result<(), ReceiveError> {
        let utf8 = ReceiveError::Utf8 {
            series: self.stats.series,
        };
        self.stats.series += 1;
        self.stats.exemplars_skipped += ts.exemplars.len() as u64;
        self.stats.histograms_skipped += ts.histograms.len() as u64;
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(ts.labels.len());
        for l in &ts.labels {
            match (std::str::from_utf8(&l.name), std::str::from_utf8(&l.value)) {
                (Ok(n), Ok(v)) => labels.push((n, v)),
                _ => return Err(utf8),
            }
        }
        check_labels(&labels)?;
        if ts.samples.is_empty() {
            return Ok(());
        }
        self.stats.samples += ts.samples.len() as u64;
        // Aion, like Prometheus's scrape path, treats an empty value as an absent label.
        labels.retain(|(_, v)| !v.is_empty());
        let mut sref: Option<SeriesRef> = self.head.series_ref_by_pairs(&labels, &mut self.scratch);
        for sample in &ts.samples {
            let (t, v) = (sample.timestamp, sample.value);
            if t > self.max_t {
                return Err(ReceiveError::TooFarAhead {
                    labels: show(&labels),
                    t,
                });
            }
            let res = match sref {
                Some(x) => match self.app.append_ref(x, t, v) {
                    Err(AppendError::UnknownRef(_)) => self.append_new(&labels, t, v),
                    other => other.map(|()| x),
                },
                None => self.append_new(&labels, t, v),
            };
            match res {
                Ok(x) => sref = Some(x),
                Err(err) => {
                    return Err(match err {
                        AppendError::InvalidLabels(e) => ReceiveError::InvalidLabels {
                            labels: show(&labels),
                            reason: e.to_string(),
                        },
                        err => ReceiveError::Sample {
                            labels: show(&labels),
                            err,
                        },
                    })
                }
            }
        }
        Ok(())
    }

    /// Appends to the series by its labels (creating it when new).
    fn append_new(
        &mut self,
        pairs: &[(&str, &str)],
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let labels = Labels::from_sorted_pairs(pairs.iter().copied()).unwrap_or_else(Labels::empty);
        self.app.append(&labels, t, v)
    }
}

/// Applies a decompressed, still encoded remote write 1.0 `WriteRequest` to `db`; see
/// [`apply_request`].
pub fn apply_write(
    db: &Db,
    body: &[u8],
    now_ms: Timestamp,
    meta: &MetadataStore,
) -> Result<WriteStats, ReceiveError> {
    let req = RawWriteRequest::decode(body).map_err(CodecError::from)?;
    apply_request(db, req, now_ms, meta)
}

/// Applies a remote write 1.0 `WriteRequest` (decoded as a [`RawWriteRequest`]) to `db` in one commit, with `now_ms` as
/// the current time; its metadata goes to `meta` once the samples are committed. On
/// error nothing of the request is stored.
pub fn apply_request(
    db: &Db,
    req: RawWriteRequest,
    now_ms: Timestamp,
    meta: &MetadataStore,
) -> Result<WriteStats, ReceiveError> {
    let RawWriteRequest {
        timeseries,
        metadata,
    } = req;
    let mut batch = Batch {
        app: db.appender(),
        head: db.head(),
        max_t: now_ms.saturating_add(MAX_AHEAD_MS),
        stats: WriteStats::default(),
        scratch: String::new(),
    };
    // One decoded series at a time, reusing its vectors' capacity.
    let mut ts = RawTimeSeries::default();
    for encoded in timeseries {
        ts.clear();
        ts.merge(encoded).map_err(CodecError::from)?;
        batch.series(&ts)?;
    }
    let mut stats = batch.stats;
    // A sample another thread's commit made out of order since it was appended refuses
    // the request too, so that a request is answered as a whole.
    let committed = batch.app.commit_all_or_nothing().map_err(|e| match e {
        StrictCommitError::Sample { labels, err } => ReceiveError::Sample {
            labels: labels.to_string(),
            err,
        },
        StrictCommitError::Db(e) => ReceiveError::Storage(e),
    })?;
    stats.appended = committed.samples_appended;
    stats.metadata = metadata.len() as u64;
    meta.set_all(metadata.into_iter().map(metadata_entry).collect());
    Ok(stats)
}

#[cfg(test)]
#[path = "receive_tests.rs"]
mod tests;
