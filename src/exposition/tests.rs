use super::*;

fn all(body: &str, format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
    Parser::new(body.as_bytes(), format).collect()
}

fn series(body: &str, format: Format) -> Vec<(String, f64, Option<i64>)> {
    all(body, format)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Entry::Series(s) => Some((s.to_labels().unwrap().to_string(), s.value, s.timestamp)),
            _ => None,
        })
        .collect()
}

fn err(body: &str, format: Format) -> ParseError {
    match all(body, format) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn text_format_basics() {
    let body = "# HELP http_requests_total The total.\\nSecond \\\\ line.\n\
                # TYPE http_requests_total counter\n\
                http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                \n\
                http_requests_total{method=\"post\",code=\"400\"}    3   1395066363000\n\
                # a comment\n\
                #another\n\
                \tmetric_without_timestamp_and_labels 12.47\n\
                something_weird{problem=\"division by zero\"} +Inf -3982045\n";
    let e = all(body, Format::PrometheusText);
    let Err(ParseError::Syntax { line: 9, .. }) = e else {
        panic!("negative timestamps are not text format: {e:?}")
    };
    let body = body.replace(" -3982045", " 3982045");
    let entries = all(&body, Format::PrometheusText).unwrap();
    assert_eq!(
        entries[0],
        Entry::Help {
            name: "http_requests_total".into(),
            text: "The total.\nSecond \\ line.".into()
        }
    );
    assert_eq!(
        entries[1],
        Entry::Type {
            name: "http_requests_total".into(),
            kind: MetricType::Counter
        }
    );
    assert_eq!(entries[4], Entry::Comment("# a comment".into()));
    assert_eq!(entries[5], Entry::Comment("#another".into()));
    let s = series(&body, Format::PrometheusText);
    assert_eq!(
        s,
        vec![
            (
                r#"{__name__="http_requests_total", code="200", method="post"}"#.to_string(),
                1027.0,
                Some(1395066363000)
            ),
            (
                r#"{__name__="http_requests_total", code="400", method="post"}"#.to_string(),
                3.0,
                Some(1395066363000)
            ),
            (
                r#"{__name__="metric_without_timestamp_and_labels"}"#.to_string(),
                12.47,
                None
            ),
            (
                r#"{__name__="something_weird", problem="division by zero"}"#.to_string(),
                f64::INFINITY,
                Some(3982045)
            ),
        ]
    );
}

#[test]
fn text_format_whitespace_and_commas() {
    let body = "a { x = \"1\" , y=\"2\", } 1\nb{x=\"1\" y=\"2\"}2\nc{} 3";
    let s = series(body, Format::PrometheusText);
    assert_eq!(s[0].0, r#"{__name__="a", x="1", y="2"}"#);
    assert_eq!(s[1].0, r#"{__name__="b", x="1", y="2"}"#);
    assert_eq!(s[1].1, 2.0);
    assert_eq!(s[2].0, r#"{__name__="c"}"#);
}

#[test]
fn label_value_escapes() {
    let body = "m{a=\"x\\\\y\",b=\"q\\\"q\",c=\"l\\nl\",d=\"keep\\t\"} 1\n";
    let s = series(body, Format::PrometheusText);
    assert_eq!(
        s[0].0,
        "{__name__=\"m\", a=\"x\\\\y\", b=\"q\\\"q\", c=\"l\\nl\", d=\"keep\\\\t\"}"
    );
}

#[test]
fn nan_is_prometheus_normal_nan() {
    let s = series("a NaN\nb nan\n", Format::PrometheusText);
    assert_eq!(s[0].1.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(s[1].1.to_bits(), NORMAL_NAN_BITS);
}

#[test]
fn le_and_quantile_normalised_by_type() {
    let body = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n\
                h_bucket{le=\"1000000\"} 1\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"x\"} 1\n\
                # TYPE s summary\ns{quantile=\"1\"} 1\ns{le=\"1\"} 1\n\
                # TYPE g gauge\ng{le=\"1\"} 1\n";
    let s: Vec<String> = series(body, Format::PrometheusText)
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(
        s,
        vec![
            r#"{__name__="h_bucket", le="1.0"}"#,
            r#"{__name__="h_bucket", le="+Inf"}"#,
            r#"{__name__="h_bucket", le="1e+06"}"#,
            r#"{__name__="h_bucket", le="0.5"}"#,
            r#"{__name__="h_bucket", le="x"}"#,
            r#"{__name__="s", quantile="1.0"}"#,
            r#"{__name__="s", le="1"}"#,
            r#"{__name__="g", le="1"}"#,
        ]
    );
}

#[test]
fn quoted_names() {
    let body = "{\"my.metric\",\"a.b\"=\"1\",c=\"2\"} 1\n# EOF\n";
    let s = series(body, Format::OpenMetrics);
    assert_eq!(s[0].0, r#"{__name__="my.metric", a.b="1", c="2"}"#);
    let s = series("{\"m\" , x=\"1\"} 1\n", Format::PrometheusText);
    assert_eq!(s[0].0, r#"{__name__="m", x="1"}"#);
    assert!(all("{x=\"1\"} 1\n", Format::PrometheusText).is_err());
    assert!(all("m{\"n\"} 1\n", Format::PrometheusText).is_err());
}

#[test]
fn openmetrics_basics() {
    let body = "# TYPE a counter\n# HELP a help \\\"quoted\\\"\n# UNIT a_seconds seconds\n\
                a_total{x=\"1\"} 1 1699920000.015\n\
                a_total{x=\"2\"} 2 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879602.1\n\
                a_total 3 # {} 4\n\
                a_created 1.5e9\n\
                # EOF\n";
    let entries = all(body, Format::OpenMetrics).unwrap();
    assert_eq!(
        entries[1],
        Entry::Help {
            name: "a".into(),
            text: "help \"quoted\"".into()
        }
    );
    assert_eq!(
        entries[2],
        Entry::Unit {
            name: "a_seconds".into(),
            unit: "seconds"
        }
    );
    let Entry::Series(s) = &entries[3] else {
        panic!()
    };
    assert_eq!(s.timestamp, Some(1_699_920_000_015));
    assert_eq!(s.series_text(), b"a_total{x=\"1\"}");
    let Entry::Series(s) = &entries[4] else {
        panic!()
    };
    assert_eq!(s.timestamp, Some(1_520_879_607_789));
    let ex = s.exemplar.as_ref().unwrap();
    assert_eq!(ex.value, 0.67);
    assert_eq!(ex.timestamp, Some(1_520_879_602_100));
    let l: Vec<_> = ex.labels().collect();
    assert_eq!(l, vec![("trace_id".into(), "KOO5S4vxi0o".into())]);
    let Entry::Series(s) = &entries[5] else {
        panic!()
    };
    assert_eq!(s.timestamp, None);
    assert_eq!(s.exemplar.as_ref().unwrap().value, 4.0);
    assert_eq!(entries.last(), Some(&Entry::Eof));
}

#[test]
fn openmetrics_eof_rules() {
    assert!(all("a 1\n# EOF", Format::OpenMetrics).is_ok());
    assert_eq!(err("a 1\n", Format::OpenMetrics).line(), 2);
    assert_eq!(err("a 1\n# EOF\n\n", Format::OpenMetrics).line(), 3);
    assert_eq!(err("a 1\n# EOF\nb 1\n", Format::OpenMetrics).line(), 3);
    assert_eq!(err("a 1", Format::OpenMetrics).line(), 1);
}

#[test]
fn openmetrics_is_strict() {
    for (body, line) in [
        ("a  1\n# EOF\n", 1),
        ("a 1  2\n# EOF\n", 1),
        ("\n# EOF\n", 1),
        ("a 1\n# comment\n# EOF\n", 2),
        ("a{x=\"1\" ,y=\"2\"} 1\n# EOF\n", 1),
        ("a{x=\"1\"y=\"2\"} 1\n# EOF\n", 1),
        ("a 1 # {x=\"1\"}\n# EOF\n", 1),
        ("a 1 1 # {x} 1\n# EOF\n", 1),
        ("a 1 NaN\n# EOF\n", 1),
        ("a 1 +Inf\n# EOF\n", 1),
        ("# HELP a\n# EOF\n", 1),
        ("# TYPE a foo\n# EOF\n", 1),
        ("# TYPE a untyped\n# EOF\n", 1),
        ("# UNIT a_bytes seconds\n# EOF\n", 1),
        ("a 0x10\n# EOF\n", 1),
        ("a 1_0\n# EOF\n", 1),
    ] {
        assert_eq!(err(body, Format::OpenMetrics).line(), line, "{body:?}");
    }
}

#[test]
fn text_format_errors_have_line_numbers() {
    for (body, line) in [
        ("a 1\nb\n", 2),
        ("a 1\n\nb{x=\"1\"\n", 3),
        ("a 1 2 3\n", 1),
        ("a 1 1.5\n", 1),
        ("a 1\n# TYPE a nope\n", 2),
        ("a{x=1} 1\n", 1),
        ("a{=\"1\"} 1\n", 1),
        ("a{x=\"1} 1\n", 1),
        ("a x\n", 1),
        ("a 1 99999999999999999999\n", 1),
        ("9a 1\n", 1),
    ] {
        let e = err(body, Format::PrometheusText);
        assert_eq!(e.line(), line, "{body:?}: {e}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")));
    }
}

#[test]
fn invalid_utf8_label_value_is_an_error() {
    let body = b"a{x=\"\xff\xfe\"} 1\n";
    let r: Result<Vec<_>, _> = Parser::new(body, Format::PrometheusText).collect();
    assert!(r.is_err());
}

#[test]
fn duplicate_label_names_rejected_when_building_labels() {
    let entries = all("a{x=\"1\",x=\"2\"} 1\n", Format::PrometheusText).unwrap();
    let Entry::Series(s) = &entries[0] else {
        panic!()
    };
    assert_eq!(s.to_labels().unwrap_err().line(), 1);
}

#[test]
fn resume_across_pieces() {
    let body = "# TYPE h histogram\nh_bucket{le=\"1\"} 1 1\nh_bucket{le=\"2\"} 2 2\n# EOF\n";
    let cut = body.find("h_bucket{le=\"2\"").unwrap();
    let (a, b) = body.as_bytes().split_at(cut);
    let mut p = Parser::resume(a, Format::OpenMetrics, ParserState::default(), false);
    let first: Vec<_> = p.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(first.len(), 2);
    let st = p.state();
    assert_eq!(st.line, 2);
    let mut p = Parser::resume(b, Format::OpenMetrics, st, true);
    let second: Vec<_> = p.by_ref().collect::<Result<_, _>>().unwrap();
    let Entry::Series(s) = &second[0] else {
        panic!()
    };
    assert_eq!(s.line, 3);
    assert_eq!(s.to_labels().unwrap().get("le"), Some("2.0"));
    assert_eq!(second[1], Entry::Eof);
}

#[test]
fn content_type_selects_format() {
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0"),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("text/plain; version=0.0.4"),
        Format::PrometheusText
    );
}

#[test]
fn repeated_series_text_is_recognised_and_parsed_the_same() {
    let body = "a{x=\"1\"} 1 1\na{x=\"1\"} 2 2\na{x=\"1\"}  3 3\n# TYPE a gauge\n\
                a{x=\"1\"} 4 4\na{x=\"12\"} 5 5\na{x=\"1\"} 6 6\na{x=\"1\"} 7 7 7\n";
    let mut p = Parser::new(body.as_bytes(), Format::PrometheusText);
    let mut got = Vec::new();
    let err = loop {
        match p.next() {
            Some(Ok(Entry::Series(s))) => got.push((
                s.repeats_previous(),
                s.to_labels().unwrap().to_string(),
                s.value,
            )),
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("expected an error on the last line"),
        }
    };
    assert_eq!(err.line(), 8);
    let l = r#"{__name__="a", x="1"}"#.to_string();
    let l12 = r#"{__name__="a", x="12"}"#.to_string();
    assert_eq!(
        got,
        vec![
            (false, l.clone(), 1.0),
            (true, l.clone(), 2.0),
            (true, l.clone(), 3.0),
            (false, l.clone(), 4.0),
            (false, l12, 5.0),
            (false, l, 6.0),
        ]
    );
    // OpenMetrics: the repeated prefix must still be followed by exactly one space.
    let om = "a{x=\"1\"} 1 1\na{x=\"1\"}  2 2\n# EOF\n";
    assert_eq!(err_line(om, Format::OpenMetrics), 2);
    let om = "a{x=\"1\"} 1 1\na{x=\"1\"} 2 2\n# EOF\n";
    assert_eq!(series(om, Format::OpenMetrics).len(), 2);
}

fn err_line(body: &str, format: Format) -> u64 {
    err(body, format).line()
}

/// Parses `body` giving, before each line, the series text of the sample line
/// `shift` sample lines further on in an unhinted parse (a right or a wrong guess).
fn hinted(body: &str, format: Format, shift: usize) -> Result<Vec<Entry<'_>>, ParseError> {
    let texts: Vec<&[u8]> = Parser::new(body.as_bytes(), format)
        .filter_map(|e| match e {
            Ok(Entry::Series(s)) => Some(s.series_text()),
            _ => None,
        })
        .collect();
    let mut p = Parser::new(body.as_bytes(), format);
    let mut out = Vec::new();
    let mut k = 0usize;
    loop {
        let hint = texts.get(k + shift).copied().unwrap_or(&[]);
        match p.next_entry_hinted(hint) {
            None => return Ok(out),
            Some(Err(e)) => return Err(e),
            Some(Ok(e)) => {
                if let Entry::Series(s) = &e {
                    let same = s.series_text() == hint && hint.last() == Some(&b'}');
                    assert_eq!(p.hint_matched(), same, "hint {hint:?}");
                    k += 1;
                }
                out.push(e);
            }
        }
    }
}

#[test]
fn hints_do_not_change_results() {
    let text = "# TYPE h histogram\n\
                h_bucket{le=\"1\"} 1\n\
                h_bucket{le=\"1\"} 2 5\n\
                h_bucket {le=\"+Inf\" , a=\"x\\\"y\"}\t3\n\
                plain 4\n\
                plain {a=\"1\"} 5\n\
                {\"quoted.name\",a=\"2\"} 6\n\
                m{a=\"1\"}{ 7\n\
                m{a=\"1\"}x 8\n";
    let om = "# TYPE h histogram\n\
              h_bucket{le=\"1\"} 1 # {id=\"a\"} 1 2\n\
              h_bucket{le=\"2\"} 2 3.5\n\
              h_count 3\n\
              {\"q.n\",le=\"1\"} 4\n\
              # EOF\n";
    for (body, format) in [(text, Format::PrometheusText), (om, Format::OpenMetrics)] {
        // Each prefix of lines, so erroneous lines end some of the runs.
        let lines: Vec<&str> = body.split_inclusive('\n').collect();
        for n in 1..=lines.len() {
            let b: String = lines.iter().take(n).copied().collect();
            let plain: Result<Vec<Entry<'_>>, ParseError> =
                Parser::new(b.as_bytes(), format).collect();
            for shift in 0..3 {
                assert_eq!(
                    hinted(&b, format, shift),
                    plain,
                    "{format:?} {n} lines, shift {shift}"
                );
            }
        }
    }
}
