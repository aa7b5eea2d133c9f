//! Remote read from the query side: a [`Queryable`] that answers from the local
//! storage and from the configured `remote_read` endpoints (response type SAMPLES),
//! merged per series with duplicate timestamps removed (local data wins).
//!
//! As in Prometheus: an endpoint is asked only when the query's selector contains every
//! `required_matchers` pair as an equality matcher, and, without `read_recent`, only
//! when the query reaches back before the oldest local data; with
//! `filter_external_labels` the external labels are added as matchers and removed from
//! the answers. An endpoint that fails makes a warning, not a failed query.
//!
//! The storage contracts are synchronous; the HTTP request runs on the server's runtime
//! from a short-lived thread, so a querier may be used from any thread.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::client::RemoteClient;
use super::codec::{decode, encode};
use super::proto;
use crate::config::{Config, RemoteReadConfig};
use crate::db::Db;
use crate::model::{Label, Labels, MatchOp, Matcher, Sample, Timestamp};
use crate::storage::{Querier, Queryable, Series, SeriesChunk, StorageError};

/// Largest decompressed read response accepted.
const MAX_RESPONSE: usize = 1 << 30;

/// The configured `remote_read` endpoints of a server.
pub struct RemoteRead {
    endpoints: RwLock<Arc<Vec<RemoteReadConfig>>>,
    external: RwLock<Labels>,
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for RemoteRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRead")
            .field("endpoints", &self.endpoints.read().len())
            .finish()
    }
}

impl RemoteRead {
    /// No endpoints yet; requests will run on `handle`.
    pub fn new(handle: tokio::runtime::Handle) -> Arc<RemoteRead> {
        Arc::new(RemoteRead {
            endpoints: RwLock::new(Arc::new(Vec::new())),
            external: RwLock::new(Labels::empty()),
            handle,
        })
    }

    /// Takes the `remote_read` entries and external labels of `cfg`.
    pub fn apply_config(&self, cfg: &Config) {
        *self.endpoints.write() = Arc::new(cfg.remote_read.clone());
        *self.external.write() = cfg.global.external_labels();
    }

    /// Whether any endpoint is configured.
    pub fn is_empty(&self) -> bool {
        self.endpoints.read().is_empty()
    }

    /// A queryable over `local` and the endpoints; `local_start` is the time of the
    /// oldest local sample (`i64::MAX` when there is none).
    pub fn queryable<'a>(&self, local: &'a dyn Queryable, local_start: Timestamp) -> Merged<'a> {
        Merged {
            local,
            endpoints: Arc::clone(&self.endpoints.read()),
            external: self.external.read().clone(),
            local_start,
            handle: self.handle.clone(),
            warnings: Mutex::new(Vec::new()),
        }
    }
}

/// The time of the oldest sample `db` holds (`i64::MAX` when empty), which decides
/// whether endpoints without `read_recent` are asked.
pub fn local_start_time(db: &Db) -> Timestamp {
    let blocks = db.blocks().iter().map(|b| b.meta().min_time).min();
    let head = db.stats().min_time;
    match (blocks, head) {
        (Some(b), Some(h)) => b.min(h),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => Timestamp::MAX,
    }
}

/// Local storage plus remote endpoints; collects the endpoints' errors as warnings.
pub struct Merged<'a> {
    local: &'a dyn Queryable,
    endpoints: Arc<Vec<RemoteReadConfig>>,
    external: Labels,
    local_start: Timestamp,
    handle: tokio::runtime::Handle,
    warnings: Mutex<Vec<String>>,
}

impl Merged<'_> {
    /// The warnings collected so far (unreachable or failing endpoints).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock())
    }
}

impl Queryable for Merged<'_> {
    fn querier(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<Box<dyn Querier + '_>, StorageError> {
        let local = self.local.querier(mint, maxt)?;
        let remotes: Vec<&RemoteReadConfig> = self
            .endpoints
            .iter()
            .filter(|e| e.read_recent || mint < self.local_start)
            .collect();
        Ok(Box::new(MergedQuerier {
            local,
            remotes,
            parent: self,
            mint,
            maxt,
        }))
    }
}

struct MergedQuerier<'a> {
    local: Box<dyn Querier + 'a>,
    remotes: Vec<&'a RemoteReadConfig>,
    parent: &'a Merged<'a>,
    mint: Timestamp,
    maxt: Timestamp,
}

/// Whether the selector holds every required `name="value"` as an equality matcher.
pub fn has_required(required: &BTreeMap<String, String>, matchers: &[Matcher]) -> bool {
    required.iter().all(|(n, v)| {
        matchers
            .iter()
            .any(|m| m.op == MatchOp::Equal && &m.name == n && &m.value == v)
    })
}

fn to_proto(m: &Matcher) -> proto::LabelMatcher {
    let t = match m.op {
        MatchOp::Equal => proto::MatcherType::Eq,
        MatchOp::NotEqual => proto::MatcherType::Neq,
        MatchOp::RegexMatch => proto::MatcherType::Re,
        MatchOp::RegexNoMatch => proto::MatcherType::Nre,
    };
    proto::LabelMatcher {
        r#type: t as i32,
        name: m.name.clone(),
        value: m.value.clone(),
    }
}

/// The read request for `matchers` over `[mint, maxt]`, plus the names of the external
/// labels added as matchers (to be removed from the answer).
pub fn build_read_request(
    matchers: &[Matcher],
    mint: Timestamp,
    maxt: Timestamp,
    external: &Labels,
    filter_external: bool,
) -> (proto::ReadRequest, Vec<String>) {
    let mut pm: Vec<proto::LabelMatcher> = matchers.iter().map(to_proto).collect();
    let mut added = Vec::new();
    if filter_external {
        for l in external.iter() {
            if !matchers.iter().any(|m| m.name == l.name) {
                pm.push(proto::LabelMatcher {
                    r#type: proto::MatcherType::Eq as i32,
                    name: l.name.to_string(),
                    value: l.value.to_string(),
                });
                added.push(l.name.to_string());
            }
        }
    }
    let req = proto::ReadRequest {
        queries: vec![proto::Query {
            start_timestamp_ms: mint,
            end_timestamp_ms: maxt,
            matchers: pm,
            hints: None,
        }],
        accepted_response_types: vec![proto::ResponseType::Samples as i32],
    };
    (req, added)
}

/// The series of a read response, without the `strip` labels, sorted, within range.
pub fn response_series(
    resp: proto::ReadResponse,
    strip: &[String],
    mint: Timestamp,
    maxt: Timestamp,
) -> Vec<(Labels, Vec<Sample>)> {
    let mut out: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for r in resp.results {
        for ts in r.timeseries {
            let labels = Labels::new(
                ts.labels
                    .into_iter()
                    .filter(|l| !strip.contains(&l.name))
                    .map(|l| Label::new(l.name, l.value))
                    .collect(),
            );
            let v = out.entry(labels).or_default();
            v.extend(
                ts.samples
                    .into_iter()
                    .filter(|s| s.timestamp >= mint && s.timestamp <= maxt)
                    .map(|s| Sample::new(s.timestamp, s.value)),
            );
        }
    }
    out.into_iter()
        .filter_map(|(l, mut v)| {
            v.sort_by_key(|s| s.t);
            v.dedup_by_key(|s| s.t);
            (!v.is_empty()).then_some((l, v))
        })
        .collect()
}

/// Merges two sorted sample lists; on equal timestamps `a` wins.
pub fn merge_samples(a: &[Sample], b: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        if x.t <= y.t {
            out.push(*x);
            if x.t == y.t {
                j += 1;
            }
            i += 1;
        } else {
            out.push(*y);
            j += 1;
        }
    }
    out.extend_from_slice(a.get(i..).unwrap_or(&[]));
    out.extend_from_slice(b.get(j..).unwrap_or(&[]));
    out
}

impl MergedQuerier<'_> {
    fn fetch(
        &self,
        ep: &RemoteReadConfig,
        matchers: &[Matcher],
    ) -> Result<Vec<(Labels, Vec<Sample>)>, String> {
        let (req, strip) = build_read_request(
            matchers,
            self.mint,
            self.maxt,
            &self.parent.external,
            ep.filter_external_labels,
        );
        let mut client = RemoteClient::new(
            &ep.url,
            ep.http_client(),
            ep.headers.clone(),
            ep.remote_timeout.std(),
        )?;
        let body = encode(&req);
        let handle = self.parent.handle.clone();
        let raw = std::thread::scope(|s| {
            s.spawn(move || handle.block_on(client.post(body, "read")))
                .join()
                .map_err(|_| "remote read request panicked".to_string())
        })?
        .map_err(|e| e.to_string())?;
        let resp: proto::ReadResponse = decode(&raw, MAX_RESPONSE).map_err(|e| e.to_string())?;
        Ok(response_series(resp, &strip, self.mint, self.maxt))
    }
}

impl Querier for MergedQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        let local = self.local.select(matchers)?;
        let asked: Vec<&&RemoteReadConfig> = self
            .remotes
            .iter()
            .filter(|e| has_required(&e.required_matchers, matchers))
            .collect();
        if asked.is_empty() {
            return Ok(local);
        }
        let mut merged: BTreeMap<Labels, (Option<Series>, Vec<Sample>)> = local
            .into_iter()
            .map(|s| (s.labels.clone(), (Some(s), Vec::new())))
            .collect();
        for ep in asked {
            match self.fetch(ep, matchers) {
                Ok(list) => {
                    for (l, v) in list {
                        let e = merged.entry(l).or_insert((None, Vec::new()));
                        e.1 = merge_samples(&e.1, &v);
                    }
                }
                Err(e) => self
                    .parent
                    .warnings
                    .lock()
                    .push(format!("remote_read {}: {e}", ep.remote_name())),
            }
        }
        Ok(merged
            .into_iter()
            .map(|(labels, (local, remote))| match local {
                Some(s) if remote.is_empty() => s,
                local => {
                    let own = local.map(|s| s.samples()).unwrap_or_default();
                    let all = merge_samples(&own, &remote);
                    Series::new(
                        labels,
                        vec![SeriesChunk::Decoded(Arc::from(all))],
                        self.mint,
                        self.maxt,
                    )
                }
            })
            .collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.local.label_names(matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.local.label_values(name, matchers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample::new(t, v)
    }

    #[test]
    fn merge_prefers_local_and_dedups() {
        let a = [s(1, 1.0), s(3, 3.0), s(5, 5.0)];
        let b = [s(2, 20.0), s(3, 30.0), s(6, 60.0)];
        let m = merge_samples(&a, &b);
        let ts: Vec<(i64, f64)> = m.iter().map(|x| (x.t, x.v)).collect();
        assert_eq!(ts, vec![(1, 1.0), (2, 20.0), (3, 3.0), (5, 5.0), (6, 60.0)]);
    }

    #[test]
    fn required_matchers_and_external_labels() {
        let mut req = BTreeMap::new();
        req.insert("env".to_string(), "prod".to_string());
        let eq = Matcher::equal("env", "prod");
        let re = Matcher::new(MatchOp::RegexMatch, "env", "prod").unwrap();
        assert!(has_required(
            &req,
            &[Matcher::equal("__name__", "x"), eq.clone()]
        ));
        assert!(!has_required(&req, &[re]));
        assert!(has_required(&BTreeMap::new(), &[]));
        let ext = Labels::from_pairs(&[("dc", "x"), ("env", "y")]);
        let (r, added) = build_read_request(&[eq], 1, 2, &ext, true);
        assert_eq!(added, vec!["dc".to_string()]);
        assert_eq!(r.queries[0].matchers.len(), 2);
        assert_eq!(r.accepted_response_types, vec![0]);
        let (_, none) = build_read_request(&[], 1, 2, &ext, false);
        assert!(none.is_empty());
        let resp = proto::ReadResponse {
            results: vec![proto::QueryResult {
                timeseries: vec![proto::TimeSeries {
                    labels: vec![
                        proto::Label {
                            name: "__name__".into(),
                            value: "x".into(),
                        },
                        proto::Label {
                            name: "dc".into(),
                            value: "x".into(),
                        },
                    ],
                    samples: vec![
                        proto::Sample {
                            value: 2.0,
                            timestamp: 20,
                        },
                        proto::Sample {
                            value: 1.0,
                            timestamp: 10,
                        },
                        proto::Sample {
                            value: 9.0,
                            timestamp: 99,
                        },
                    ],
                    exemplars: vec![],
                    histograms: vec![],
                }],
            }],
        };
        let got = response_series(resp, &added, 0, 50);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, Labels::from_pairs(&[("__name__", "x")]));
        assert_eq!(
            got[0].1.iter().map(|x| x.t).collect::<Vec<_>>(),
            vec![10, 20]
        );
    }
}
