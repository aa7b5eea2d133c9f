//! Property tests of the exposition parsers: no input makes them panic, and generated
//! expositions parse back to exactly what was written.

use aion::exposition::{Entry, Format, Parser, ParserState, NORMAL_NAN_BITS};
use aion::model::Labels;
use proptest::prelude::*;

fn drain(buf: &[u8], format: Format) -> usize {
    let mut n = 0;
    for e in Parser::new(buf, format) {
        match e {
            Ok(Entry::Series(s)) => {
                let _ = s.to_labels();
                let _ = s.metric_name();
                n += s.labels().count();
                if let Some(ex) = &s.exemplar {
                    n += ex.labels().count();
                }
            }
            Ok(_) => n += 1,
            Err(e) => {
                assert!(e.line() >= 1);
                break;
            }
        }
    }
    n
}

/// Bytes biased toward the grammar's special characters.
fn grammar_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        "a",
        "_",
        ":",
        "{",
        "}",
        "=",
        "\"",
        ",",
        " ",
        "\t",
        "\n",
        "#",
        "# ",
        "# EOF",
        "# HELP ",
        "# TYPE ",
        "# UNIT ",
        "histogram",
        "le",
        "quantile",
        "1",
        "1.5",
        "-",
        "+Inf",
        "NaN",
        "e",
        ".",
        "\\",
        "\\n",
        "\\\"",
        "\u{e9}",
        "\u{0}",
        "\u{ff}",
        "0x1p3",
        " # {",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..300)) {
        drain(&buf, Format::PrometheusText);
        drain(&buf, Format::OpenMetrics);
    }

    #[test]
    fn grammar_soup_never_panics(buf in grammar_bytes(), cut in any::<prop::sample::Index>()) {
        drain(&buf, Format::PrometheusText);
        drain(&buf, Format::OpenMetrics);
        // Split at a line boundary and resume: never panics either.
        let nl: Vec<usize> = buf.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1).collect();
        if !nl.is_empty() {
            let at = nl[cut.index(nl.len())];
            let (a, b) = buf.split_at(at);
            for format in [Format::PrometheusText, Format::OpenMetrics] {
                let mut p = Parser::resume(a, format, ParserState::default(), false);
                let ok = p.by_ref().all(|e| e.is_ok());
                if ok {
                    let st = p.state();
                    for e in Parser::resume(b, format, st, true) {
                        if e.is_err() { break; }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    ts: Option<i64>,
}

fn label_value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            'a', 'Z', '0', ' ', '"', '\\', '\n', '{', '}', ',', '=', '#', 'é', '\t',
        ]),
        0..8,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::from_bits(NORMAL_NAN_BITS)),
        Just(-0.0),
    ]
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        prop::collection::btree_map("[a-zA-Z][a-zA-Z0-9_]{0,6}", label_value(), 0..4),
        value(),
        prop::option::of(0i64..4_000_000_000_000),
    )
        .prop_map(|(name, labels, value, ts)| Sample {
            name,
            labels: labels.into_iter().collect(),
            value,
            ts,
        })
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's shortest round-trip text is valid Go float syntax.
        format!("{v:?}")
    }
}

fn render(samples: &[Sample], format: Format) -> String {
    let mut out = String::new();
    for s in samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            out.push('{');
            let parts: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            out.push_str(&parts.join(","));
            out.push('}');
        }
        out.push(' ');
        out.push_str(&fmt_value(s.value));
        if let Some(t) = s.ts {
            match format {
                Format::PrometheusText => out.push_str(&format!(" {t}")),
                _ => out.push_str(&format!(" {}.{:03}", t / 1000, t % 1000)),
            }
        }
        out.push('\n');
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn generated_expositions_round_trip(samples in prop::collection::vec(sample(), 0..20)) {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            let body = render(&samples, format);
            let got: Vec<_> = Parser::new(body.as_bytes(), format)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TestCaseError::fail(format!("{e} in {body:?}")))?;
            let got: Vec<_> = got
                .into_iter()
                .filter_map(|e| match e {
                    Entry::Series(s) => Some(s),
                    _ => None,
                })
                .collect();
            prop_assert_eq!(got.len(), samples.len());
            for (i, (g, want)) in got.iter().zip(&samples).enumerate() {
                let mut pairs = vec![("__name__".to_string(), want.name.clone())];
                pairs.extend(want.labels.iter().cloned());
                prop_assert_eq!(g.to_labels().unwrap(), Labels::from_pairs(&pairs));
                prop_assert_eq!(g.value.to_bits(), want.value.to_bits());
                let ts = match (format, want.ts) {
                    (Format::OpenMetrics, Some(t)) => {
                        let secs: f64 = format!("{}.{:03}", t / 1000, t % 1000).parse().unwrap();
                        Some((secs * 1000.0) as i64)
                    }
                    (_, t) => t,
                };
                prop_assert_eq!(g.timestamp, ts);
                prop_assert_eq!(g.line, i as u64 + 1);
            }
        }
    }
}
