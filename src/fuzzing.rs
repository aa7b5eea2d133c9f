//! Entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_replay.rs`.
//!
//! Each function feeds arbitrary bytes to one real parser or decoder and panics only
//! when a property that must hold for every input is broken: the code under test must
//! never panic, and where a cheap invariant exists (printing and re-parsing, decoding
//! and re-encoding) it is checked too. The fuzz targets and the replay test call the
//! same functions, so a crash found by a fuzzer replays as an ordinary test.
//!
//! Not part of the stable API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(missing_docs)]

use crate::exposition::{Entry, Format, Parser};

/// The PromQL parser: no panic, and an expression's printed form parses to the same
/// tree and prints the same.
pub fn promql_parser(data: &[u8]) {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(e) = crate::promql::parse(q) else {
        return;
    };
    let printed = e.to_string();
    let again = match crate::promql::parse(&printed) {
        Ok(a) => a,
        Err(err) => panic!("printed form {printed:?} of {q:?} does not parse: {err}"),
    };
    let (mut a, mut b) = (e, again);
    a.clear_spans();
    b.clear_spans();
    // Debug output compares NaN literals as equal, unlike PartialEq.
    assert_eq!(
        format!("{a:?}"),
        format!("{b:?}"),
        "{q:?} printed as {printed:?} parses to another tree"
    );
    assert_eq!(
        b.to_string(),
        printed,
        "printing of {q:?} is not idempotent"
    );
}

/// The Prometheus text format parser.
pub fn text_parser(data: &[u8]) {
    exposition(data, Format::PrometheusText);
}

/// The OpenMetrics parser.
pub fn openmetrics_parser(data: &[u8]) {
    exposition(data, Format::OpenMetrics);
}

/// Parses `data` whole and in two pieces split at a line boundary; both must yield the
/// same entries (as debug text) and the same error, if any.
fn exposition(data: &[u8], format: Format) {
    let whole = exposition_entries(data, format, None);
    // Split after the middle line feed, as a streaming reader would.
    if let Some(nl) = data
        .iter()
        .enumerate()
        .skip(data.len() / 2)
        .find(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
    {
        let split = exposition_entries(data, format, Some(nl));
        assert_eq!(whole, split, "parsing in two pieces at byte {nl} differs");
    }
}

fn exposition_entries(data: &[u8], format: Format, split: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    let pieces: Vec<(&[u8], bool)> = match split {
        None => vec![(data, true)],
        Some(at) => vec![(&data[..at], false), (&data[at..], true)],
    };
    let mut state = Default::default();
    for (piece, is_final) in pieces {
        let mut p = Parser::resume(piece, format, state, is_final);
        while let Some(r) = p.next_entry() {
            match r {
                Ok(entry) => {
                    let mut text = format!("{entry:?}");
                    if let Entry::Series(s) = &entry {
                        // repeats_previous is relative to the piece; leave it out.
                        text = format!(
                            "series {:?} {:?} {:?} {:?} {:?} {} {:?}",
                            s.metric_name(),
                            s.labels().collect::<Vec<_>>(),
                            s.value.to_bits(),
                            s.timestamp,
                            s.exemplar.as_ref().map(|e| (
                                e.labels().collect::<Vec<_>>(),
                                e.value.to_bits(),
                                e.timestamp
                            )),
                            s.line,
                            s.to_labels().map(|l| l.to_string()),
                        );
                        let _ = s.series_text();
                        let _ = s.metric_type();
                    }
                    out.push(text);
                }
                Err(e) => {
                    out.push(format!("error {e}"));
                    return out;
                }
            }
        }
        state = p.state();
    }
    out
}

/// The `prometheus.yml` loader: parsing and validation, then what the scrape manager
/// does with a valid file (target labels through `relabel_configs`, and
/// `metric_relabel_configs` and `alert_relabel_configs` on a sample label set), and the
/// redaction of the file for the status page.
pub fn config_loader(data: &[u8]) {
    use crate::config::relabel::process;
    use crate::config::Config;
    use crate::scrape::target::targets_from_groups;
    use crate::scrape::TargetGroup;

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::web::redact::redact_config_yaml(text);
    let Ok(cfg) = Config::parse(text, std::path::Path::new("fuzz/prometheus.yml")) else {
        return;
    };
    let _ = cfg.global.external_labels();
    let sample = crate::model::Labels::from_pairs(&[
        ("__name__", "http_requests_total"),
        ("instance", "127.0.0.1:9090"),
        ("job", "fuzz"),
        ("code", "200"),
    ]);
    for sc in &cfg.scrape_configs {
        let _ = (sc.interval(), sc.timeout(), sc.http_client());
        let groups: Vec<TargetGroup> = sc
            .static_configs
            .iter()
            .map(|s| TargetGroup {
                targets: s.targets.clone(),
                labels: s.labels.clone(),
                source: "static".into(),
                per_target: Vec::new(),
            })
            .collect();
        let _ = targets_from_groups(sc, &groups);
        let _ = process(&sample, &sc.metric_relabel_configs);
    }
    let _ = process(&sample, &cfg.alerting.alert_relabel_configs);
}

/// The rule file loader: parsing and validation; for a valid file, every rule's
/// expression text parses again, and its label and annotation templates expand without
/// panicking.
pub fn rule_file_loader(data: &[u8]) {
    use crate::rules::{parse_rule_file, RuleKind};
    use crate::template::expand;

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(groups) = parse_rule_file("fuzz.yml", text) else {
        return;
    };
    let tdata = template_data(&|_| Ok(Vec::new()));
    for g in &groups {
        for r in &g.rules {
            assert!(
                crate::promql::parse(&r.expr_text).is_ok(),
                "rule {:?}: accepted expression {:?} does not parse",
                r.name(),
                r.expr_text
            );
            if let RuleKind::Alert(_) = r.kind {
                for (k, v) in r.labels.iter().chain(&r.annotations) {
                    let _ = expand(k, v, &tdata);
                }
            }
        }
    }
}

fn template_data<'a>(query: crate::template::QueryFn<'a>) -> crate::template::TemplateData<'a> {
    use std::collections::BTreeMap;
    let labels: BTreeMap<String, String> = [
        ("__name__", "up"),
        ("instance", "127.0.0.1:9100"),
        ("job", "node"),
        ("severity", "page"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    crate::template::TemplateData {
        labels,
        value: 1234.5678,
        external_labels: [("cluster".to_string(), "eu-1".to_string())].into(),
        external_url: "http://aion.example:9090".into(),
        query: Some(query),
    }
}

/// Template parsing and expansion with labels, a value, external labels and a `query`
/// function that returns two samples.
pub fn template_expansion(data: &[u8]) {
    use crate::template::{QuerySample, Template};

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = Template::parse("fuzz", text) else {
        return;
    };
    let query = |q: &str| -> Result<Vec<QuerySample>, String> {
        if q.contains("fail") {
            return Err("query failed".into());
        }
        Ok(vec![
            QuerySample {
                labels: [("instance".to_string(), "a:1".to_string())].into(),
                value: 0.25,
            },
            QuerySample {
                labels: [("instance".to_string(), "b:2".to_string())].into(),
                value: f64::NAN,
            },
        ])
    };
    let tdata = template_data(&query);
    let first = t.execute(&tdata);
    // Execution is deterministic.
    assert_eq!(first, t.execute(&tdata), "two runs of {text:?} differ");
}

/// The WAL reader and its repair path: `data` holds the segment files back to back (a
/// new segment starts at each later occurrence of the segment magic, at most four).
/// Opening must replay what a read-only pass replays, repair must leave a WAL that
/// reopens cleanly with the same records, and an append after repair must be replayed.
pub fn wal_reader(data: &[u8]) {
    use crate::wal::{read_dir, FsyncPolicy, Record, RefSample, Wal, WalOptions};
    use std::sync::atomic::{AtomicU64, Ordering};

    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aion-fuzz-wal-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup<'a>(&'a std::path::Path);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0);
        }
    }
    let _cleanup = Cleanup(&dir);

    const MAGIC: &[u8] = b"AIONWAL\x01";
    let mut starts = vec![0];
    let mut i = 1;
    while starts.len() < 4 && i + MAGIC.len() <= data.len() {
        if &data[i..i + MAGIC.len()] == MAGIC {
            starts.push(i);
            i += MAGIC.len();
        } else {
            i += 1;
        }
    }
    starts.push(data.len());
    for (n, w) in starts.windows(2).enumerate() {
        std::fs::write(dir.join(format!("{n:08}")), &data[w[0]..w[1]]).unwrap();
    }

    let mut read = Vec::new();
    let stats = read_dir(&dir, |r| read.push(r)).expect("read-only replay");
    let opts = WalOptions {
        segment_size: 1 << 20,
        fsync: FsyncPolicy::Never,
    };
    let mut opened = Vec::new();
    let (wal, stats2) = Wal::open(&dir, opts.clone(), |r| opened.push(r)).expect("open");
    // Debug text compares NaN sample values as equal, unlike PartialEq.
    assert_eq!(
        format!("{read:?}"),
        format!("{opened:?}"),
        "open replays other records than a read-only pass"
    );
    assert_eq!(stats, stats2);
    assert_eq!(stats.records, read.len() as u64);
    let extra = Record::Samples(vec![RefSample {
        series_ref: 1,
        t: 1000,
        v: 2.5,
    }]);
    wal.log(std::slice::from_ref(&extra))
        .expect("log after repair");
    wal.close().expect("close");

    let mut again = Vec::new();
    let stats3 = read_dir(&dir, |r| again.push(r)).expect("replay after repair");
    assert_eq!(stats3.corrupted, None, "repaired WAL is still damaged");
    opened.push(extra);
    assert_eq!(
        format!("{again:?}"),
        format!("{opened:?}"),
        "repaired WAL replays other records"
    );
}

/// The chunk decoder (XOR and integer encodings): a chunk that validates iterates to the
/// same samples, its checksum and time range are right, `seek` finds every sample, and
/// the samples re-encode into a chunk that decodes to the same samples.
pub fn chunk_decoder(data: &[u8]) {
    use crate::chunk::{checksum, ChunkData, XorChunk, MAX_ENCODABLE_SAMPLES};

    // Unvalidated iteration must end (with or without an error) without panicking.
    if data.len() >= 3 {
        let n = usize::from(u16::from_le_bytes([data[1], data[2]]));
        let mut it = crate::chunk::XorIter::new(data, n);
        let count = it.by_ref().take(n + 1).count();
        assert!(count <= n);
    }
    let Ok(c) = ChunkData::from_bytes(data.to_vec(), None) else {
        return;
    };
    assert_eq!(c.crc(), checksum(data));
    assert!(ChunkData::from_bytes(data.to_vec(), Some(c.crc())).is_ok());
    let samples: Vec<(i64, u64)> = c.iter().map(|s| (s.t, s.v.to_bits())).collect();
    assert_eq!(samples.len(), c.num_samples());
    let mut it = c.iter();
    assert!(it.by_ref().count() == samples.len() && it.err().is_none());
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        assert_eq!((c.min_time(), c.max_time()), (first.0, last.0));
    } else {
        assert_eq!((c.min_time(), c.max_time()), (i64::MAX, i64::MIN));
    }
    assert!(
        samples.windows(2).all(|w| w[0].0 < w[1].0),
        "validated chunk has timestamps out of order: {samples:?}"
    );
    // Seek to each sample (bounded, so big chunks stay fast).
    for &(t, v) in samples.iter().step_by(samples.len() / 64 + 1) {
        let s = c.iter().seek(t).expect("seek to a present timestamp");
        assert_eq!((s.t, s.v.to_bits()), (t, v));
    }
    if let Some(&(t, _)) = samples.last() {
        if t < i64::MAX {
            assert!(c.iter().seek(t + 1).is_none());
        }
    }
    if samples.len() < MAX_ENCODABLE_SAMPLES {
        let mut x = XorChunk::new();
        for &(t, v) in &samples {
            x.append(t, f64::from_bits(v));
        }
        let open: Vec<(i64, u64)> = x.iter().map(|s| (s.t, s.v.to_bits())).collect();
        assert_eq!(open, samples, "re-encoded chunk iterates differently");
        let frozen = x.freeze();
        let back = ChunkData::from_bytes(frozen.bytes().to_vec(), Some(frozen.crc()))
            .expect("re-encoded chunk validates");
        let decoded: Vec<(i64, u64)> = back.iter().map(|s| (s.t, s.v.to_bits())).collect();
        assert_eq!(decoded, samples, "re-encoded chunk decodes differently");
        assert_eq!(
            (back.min_time(), back.max_time()),
            (c.min_time(), c.max_time())
        );
    }
}

/// The block index reader, on the bytes as given and on a copy whose magic, section
/// lengths, CRCs and table of contents are made consistent (so the fuzzer reaches the
/// section decoders). An index that opens must answer every query without error:
/// every series decodes, series, symbols, label names and values are sorted, and
/// postings hold only existing series.
pub fn index_reader(data: &[u8]) {
    index_reader_on(data);
    index_reader_on(&fix_index_framing(data));
}

/// Rewrites `data` into index framing: magic, four sections whose lengths fit and whose
/// CRCs match, and a table of contents pointing at them.
fn fix_index_framing(data: &[u8]) -> Vec<u8> {
    use crate::index::INDEX_MAGIC;
    let mut out = INDEX_MAGIC.to_vec();
    let mut rest = data.get(INDEX_MAGIC.len()..).unwrap_or(&[]);
    let mut offsets = Vec::new();
    for _ in 0..4 {
        offsets.push(out.len() as u64);
        let len = match rest {
            [a, b, c, d, ..] => u32::from_le_bytes([*a, *b, *c, *d]) as usize,
            _ => 0,
        };
        rest = rest.get(4..).unwrap_or(&[]);
        let body = &rest[..len.min(rest.len())];
        rest = &rest[body.len()..];
        rest = rest.get(4..).unwrap_or(&[]); // the old CRC
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    }
    let toc_start = out.len();
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    let crc = crc32fast::hash(&out[toc_start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn index_reader_on(data: &[u8]) {
    use crate::index::{postings_for_matchers, IndexReader, PostingsSource};
    use crate::model::Matcher;

    let Ok(ix) = IndexReader::open(data.to_vec().into(), &[1 << 20, 1 << 20]) else {
        return;
    };
    let n = ix.num_series();
    let mut all_labels = Vec::with_capacity(n as usize);
    let mut chunks = 0u64;
    for id in 0..n {
        let (labels, metas) = ix.series(id).expect("series of a validated index");
        assert_eq!(ix.series_labels(id).expect("labels"), labels);
        assert_eq!(ix.first_chunk_ordinal(id), Some(chunks));
        chunks += metas.len() as u64;
        all_labels.push(labels);
    }
    assert_eq!(chunks, ix.num_chunks());
    assert!(
        all_labels.windows(2).all(|w| w[0] < w[1]),
        "series out of order"
    );
    assert!(ix.symbols().windows(2).all(|w| w[0] < w[1]));
    let names = ix.label_names();
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    let all = ix.all_postings().expect("all postings");
    assert_eq!(all.len(), u64::from(n));
    // Bounded work per input: the first names and values only.
    for name in names.iter().take(8) {
        let values = ix.label_values(name);
        assert!(values.windows(2).all(|w| w[0] < w[1]));
        for value in values.iter().take(8) {
            let got = postings_for_matchers(&ix, &[Matcher::equal(name, value)])
                .expect("postings of a validated index");
            // Postings are not cross-checked against the series at open (nor are they
            // in Prometheus), so only their range is an invariant.
            assert!(got.iter().all(|id| id < n), "{name}={value:?}");
        }
    }
}

/// The remote-write body codec (snappy block + protobuf `WriteRequest`), on the bytes
/// as a body and on the bytes as the protobuf inside one; also `ReadRequest`. A message
/// that decodes re-encodes to a body that decodes to the same message.
pub fn remote_write_decoder(data: &[u8]) {
    use crate::remote::codec::{decode, encode};
    use crate::remote::proto::{ReadRequest, WriteRequest};
    use prost::Message;

    const LIMIT: usize = 32 << 20;
    if let Ok(m) = decode::<WriteRequest>(data, LIMIT) {
        write_request_round_trip(&m);
    }
    let _ = decode::<ReadRequest>(data, LIMIT);
    if let Ok(m) = WriteRequest::decode(data) {
        let body = snap::raw::Encoder::new().compress_vec(data).unwrap();
        let via_body = decode::<WriteRequest>(&body, LIMIT).expect("snappy of valid protobuf");
        assert_eq!(encode(&via_body), encode(&m));
        write_request_round_trip(&m);
    }
    if let Ok(m) = ReadRequest::decode(data) {
        let again = decode::<ReadRequest>(&encode(&m), LIMIT).expect("re-encoded ReadRequest");
        assert_eq!(again.encode_to_vec(), m.encode_to_vec());
    }
}

fn write_request_round_trip(m: &crate::remote::proto::WriteRequest) {
    use crate::remote::codec::{decode, encode};
    let body = encode(m);
    let again: crate::remote::proto::WriteRequest =
        decode(&body, usize::MAX).expect("re-encoded WriteRequest decodes");
    // Compare encodings: NaN values make PartialEq fail on equal messages.
    assert_eq!(encode(&again), body);
    for ts in &again.timeseries {
        let pairs: Vec<(&str, &str)> = ts
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        let _ = crate::model::Labels::from_pairs(&pairs);
    }
}
