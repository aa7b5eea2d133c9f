//! The remote read server: answers a `ReadRequest` from the database with raw samples
//! (the `SAMPLES` response type), as Prometheus's read handler does.
//!
//! External labels are handled the Prometheus way: an equality matcher on an external
//! label with the external value is turned into "label absent" (the stored series do
//! not carry it), and every returned series gets the external labels it lacks.

use super::proto::{
    Label as PLabel, LabelMatcher, MatcherType, Query, QueryResult, ReadRequest, ReadResponse,
    ResponseType, Sample as PSample, TimeSeries,
};
use super::receive::ReceiveError;
use crate::db::Db;
use crate::model::{Labels, MatchOp, Matcher};

/// Picks the response type: the first accepted one this server supports; `SAMPLES`
/// when the client lists none.
pub fn negotiate(accepted: &[i32]) -> Result<ResponseType, ReceiveError> {
    if accepted.is_empty() {
        return Ok(ResponseType::Samples);
    }
    accepted
        .iter()
        .find_map(|&t| ResponseType::try_from(t).ok())
        .ok_or_else(|| ReceiveError::ResponseType(accepted.to_vec()))
}

/// Converts a query's matchers, replacing `name="value"` on an external label with
/// `name=""`.
fn matchers(ms: &[LabelMatcher], external: &Labels) -> Result<Vec<Matcher>, ReceiveError> {
    ms.iter()
        .map(|m| {
            let op = match MatcherType::try_from(m.r#type) {
                Ok(MatcherType::Eq) => MatchOp::Equal,
                Ok(MatcherType::Neq) => MatchOp::NotEqual,
                Ok(MatcherType::Re) => MatchOp::RegexMatch,
                Ok(MatcherType::Nre) => MatchOp::RegexNoMatch,
                Err(_) => {
                    return Err(ReceiveError::Matcher(format!(
                        "unknown matcher type {}",
                        m.r#type
                    )))
                }
            };
            if op == MatchOp::Equal && external.get_or_empty(&m.name) == m.value {
                return Ok(Matcher::equal(m.name.clone(), ""));
            }
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| ReceiveError::Matcher(e.to_string()))
        })
        .collect()
}

/// Merges sorted series labels with sorted external labels; the series' own value
/// wins on a name both have.
fn merge_external(series: &Labels, external: &Labels) -> Vec<PLabel> {
    let (mut a, mut b) = (series.iter().peekable(), external.iter().peekable());
    let mut out = Vec::with_capacity(series.len() + external.len());
    loop {
        let l = match (a.peek().copied(), b.peek().copied()) {
            (Some(x), Some(y)) if x.name < y.name => {
                a.next();
                x
            }
            (Some(x), Some(y)) if x.name == y.name => {
                a.next();
                b.next();
                x
            }
            (_, Some(y)) => {
                b.next();
                y
            }
            (Some(x), None) => {
                a.next();
                x
            }
            (None, None) => break,
        };
        out.push(PLabel {
            name: l.name.to_string(),
            value: l.value.to_string(),
        });
    }
    out
}

/// A selected series: labels with the external ones merged in, and its samples.
type SelectedSeries = (Vec<PLabel>, Vec<crate::model::Sample>);

/// The series of one query with their samples, counting against `max_samples`.
fn select(
    db: &Db,
    q: &Query,
    external: &Labels,
    max_samples: usize,
) -> Result<Vec<SelectedSeries>, ReceiveError> {
    let ms = matchers(&q.matchers, external)?;
    let querier = db.querier(q.start_timestamp_ms, q.end_timestamp_ms)?;
    let series = querier.select(&ms)?;
    let mut total = 0usize;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let samples = s.samples();
        total += samples.len();
        if max_samples > 0 && total > max_samples {
            return Err(ReceiveError::SampleLimit(max_samples));
        }
        out.push((merge_external(&s.labels, external), samples));
    }
    Ok(out)
}

/// Answers every query of `req` in order with raw samples. `max_samples` (0 = no
/// limit) bounds the samples of one query; exceeding it fails the request.
pub fn answer_samples(
    db: &Db,
    req: &ReadRequest,
    external: &Labels,
    max_samples: usize,
) -> Result<ReadResponse, ReceiveError> {
    let mut results = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        let timeseries = select(db, q, external, max_samples)?
            .into_iter()
            .map(|(labels, samples)| TimeSeries {
                labels,
                samples: samples
                    .iter()
                    .map(|x| PSample {
                        value: x.v,
                        timestamp: x.t,
                    })
                    .collect(),
                exemplars: vec![],
                histograms: vec![],
            })
            .collect();
        results.push(QueryResult { timeseries });
    }
    Ok(ReadResponse { results })
}

/// Answers every query of `req` as a `STREAMED_XOR_CHUNKS` body: frames of
/// `ChunkedReadResponse`, series sorted by labels within each query.
pub fn answer_streamed(
    db: &Db,
    req: &ReadRequest,
    external: &Labels,
    max_samples: usize,
) -> Result<Vec<u8>, ReceiveError> {
    let mut out = Vec::new();
    for (i, q) in req.queries.iter().enumerate() {
        for (labels, samples) in select(db, q, external, max_samples)? {
            super::chunked::push_series(&mut out, i as i64, labels, &samples);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbOptions;

    fn lm(t: MatcherType, n: &str, v: &str) -> LabelMatcher {
        LabelMatcher {
            r#type: t as i32,
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn answers_sorted_series_with_external_labels() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let mut app = db.appender();
        for (job, v) in [("b", 2.0), ("a", 1.0)] {
            let l = Labels::from_pairs(&[("__name__", "up"), ("job", job)]);
            app.append(&l, 1000, v).unwrap();
            app.append(&l, 2000, v).unwrap();
        }
        let own = Labels::from_pairs(&[("__name__", "up"), ("job", "c"), ("region", "mine")]);
        app.append(&own, 1000, 3.0).unwrap();
        app.commit().unwrap();
        let ext = Labels::from_pairs(&[("region", "eu"), ("zone", "z1")]);
        let req = ReadRequest {
            queries: vec![
                Query {
                    start_timestamp_ms: 0,
                    end_timestamp_ms: 1500,
                    matchers: vec![
                        lm(MatcherType::Eq, "__name__", "up"),
                        lm(MatcherType::Eq, "region", "eu"),
                    ],
                    hints: None,
                },
                Query {
                    start_timestamp_ms: 0,
                    end_timestamp_ms: 5000,
                    matchers: vec![lm(MatcherType::Re, "job", "a|c")],
                    hints: None,
                },
            ],
            accepted_response_types: vec![],
        };
        let resp = answer_samples(&db, &req, &ext, 0).unwrap();
        assert_eq!(resp.results.len(), 2);
        let r0 = &resp.results[0].timeseries;
        // region="eu" matches the series without a region label, not "mine".
        assert_eq!(r0.len(), 2);
        let names: Vec<Vec<(&str, &str)>> = r0
            .iter()
            .map(|t| {
                t.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(
            names[0],
            vec![
                ("__name__", "up"),
                ("job", "a"),
                ("region", "eu"),
                ("zone", "z1")
            ]
        );
        assert_eq!(r0[0].samples.len(), 1);
        assert_eq!(r0[0].samples[0].timestamp, 1000);
        let r1 = &resp.results[1].timeseries;
        assert_eq!(r1.len(), 2);
        // the series' own region wins over the external one
        assert!(r1[1]
            .labels
            .iter()
            .any(|l| l.name == "region" && l.value == "mine"));
        // limits
        let err = answer_samples(&db, &req, &ext, 2).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("exceeded sample limit (2)"));
        let mut bad = req.clone();
        bad.queries[0].matchers[0] = lm(MatcherType::Re, "job", "(");
        assert_eq!(
            answer_samples(&db, &bad, &ext, 0).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&[]).unwrap(), ResponseType::Samples);
        assert_eq!(negotiate(&[1, 0]).unwrap(), ResponseType::StreamedXorChunks);
        assert_eq!(negotiate(&[7, 0]).unwrap(), ResponseType::Samples);
        assert_eq!(negotiate(&[7]).unwrap_err().status(), 400);
    }
}
