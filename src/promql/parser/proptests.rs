//! Property tests: generated queries survive print → parse unchanged, printing is
//! idempotent, and arbitrary input never panics the parser.

use proptest::prelude::*;

use super::parse;

/// Asserts that `q` parses, and that its printed form parses to the same tree and prints
/// the same.
fn assert_round_trip(q: &str) {
    let e = match parse(q) {
        Ok(e) => e,
        Err(err) => panic!("generated query {q:?} does not parse: {err}"),
    };
    check_printing(q, e);
}

fn check_printing(q: &str, e: crate::promql::ast::Expr) {
    let printed = e.to_string();
    let again = match parse(&printed) {
        Ok(a) => a,
        Err(err) => panic!("printed form {printed:?} of {q:?} does not parse: {err}"),
    };
    let (mut a, mut b) = (e, again);
    a.clear_spans();
    b.clear_spans();
    // Debug output treats NaN literals as equal.
    assert_eq!(
        format!("{a:?}"),
        format!("{b:?}"),
        "{q:?} printed as {printed:?}"
    );
    assert_eq!(
        b.to_string(),
        printed,
        "printing of {q:?} is not idempotent"
    );
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..100_000).prop_map(|n| n.to_string()),
        (0.0f64..1e6).prop_map(|f| format!("{f}")),
        (1e-9f64..1e300).prop_map(|f| format!("{f:e}")),
        Just("0x1F".to_string()),
        Just(".5".to_string()),
        Just("017".to_string()),
        Just("1_000".to_string()),
        Just("Inf".to_string()),
        Just("nan".to_string()),
        Just("5m".to_string()),
        Just("1h30m".to_string()),
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("5m"),
        Just("1h30m"),
        Just("10s53ms"),
        Just("30s"),
        Just("1d"),
        Just("2w"),
        Just("1y"),
        Just("90"),
        Just("1.5"),
        Just("100ms"),
    ]
    .prop_map(str::to_string)
}

fn string_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z.$1()*]{0,6}".prop_map(|s| format!("\"{s}\"")),
        "[a-z ]{0,4}".prop_map(|s| format!("'{s}'")),
        "[a-z\\\\]{0,4}".prop_map(|s| format!("`{s}`")),
        Just("\"\\n\\t\\x41\\u00e9\\\"\"".to_string()),
        Just("'\\''".to_string()),
        Just("\"é ü 日本\"".to_string()),
    ]
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a"),
        Just("job"),
        Just("instance"),
        Just("le"),
        Just("by"),
        Just("on"),
        Just("sum"),
        Just("\"a.b\""),
    ]
    .prop_map(str::to_string)
}

fn selector() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just(None),
        Just(Some("foo")),
        Just(Some("bar_total")),
        Just(Some("x:y:z")),
        Just(Some("sum")),
        Just(Some("offset")),
    ];
    let matcher = (
        prop_oneof![Just("a"), Just("job"), Just("by"), Just("\"utf8.name\"")],
        prop_oneof![Just("="), Just("!="), Just("=~"), Just("!~")],
        "[a-z]{0,3}",
    )
        .prop_map(|(l, op, v)| format!("{l}{op}\"{v}\""));
    (name, prop::collection::vec(matcher, 0..3), any::<bool>()).prop_map(
        |(name, ms, trailing_comma)| {
            let mut s = String::new();
            match name {
                Some(n) => s.push_str(n),
                // Guarantee a non-empty matcher.
                None => s.push_str("{job=\"x\""),
            }
            if !ms.is_empty() || name.is_none() {
                if name.is_some() {
                    s.push('{');
                } else if !ms.is_empty() {
                    s.push_str(", ");
                }
                s.push_str(&ms.join(", "));
                if trailing_comma && !ms.is_empty() {
                    s.push(',');
                }
                s.push('}');
            }
            s
        },
    )
}

fn modifiers() -> impl Strategy<Value = String> {
    let offset = prop_oneof![
        Just(String::new()),
        duration().prop_map(|d| format!(" offset {d}")),
        duration().prop_map(|d| format!(" offset -{d}")),
    ];
    let at = prop_oneof![
        Just(String::new()),
        (0u32..100_000).prop_map(|n| format!(" @ {n}")),
        (-1000i32..1000).prop_map(|n| format!(" @ {}.{:03}", n, n.unsigned_abs() % 1000)),
        Just(" @ start()".to_string()),
        Just(" @ end()".to_string()),
        Just(" @ 100s".to_string()),
    ];
    (offset, at, any::<bool>()).prop_map(|(o, a, swap)| if swap { a + &o } else { o + &a })
}

fn scalar_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        number(),
        Just("time()".to_string()),
        Just("pi()".to_string()),
        number().prop_map(|n| format!("-{n}")),
        number().prop_map(|n| format!("({n})")),
    ]
}

fn vector_expr() -> impl Strategy<Value = String> {
    let leaf = (selector(), modifiers()).prop_map(|(s, m)| s + &m);
    leaf.prop_recursive(4, 40, 4, |inner| {
        let arith = prop_oneof![
            Just("+"),
            Just("-"),
            Just("*"),
            Just("/"),
            Just("%"),
            Just("^"),
            Just("atan2")
        ];
        let cmp = prop_oneof![
            Just("=="),
            Just("!="),
            Just(">"),
            Just("<"),
            Just(">="),
            Just("<=")
        ];
        let set = prop_oneof![Just("and"), Just("or"), Just("unless")];
        let matching = prop_oneof![
            Just(String::new()),
            Just(" on (a)".to_string()),
            Just(" ignoring (a, job)".to_string()),
            Just(" on () ".to_string()),
        ];
        let grouped = prop_oneof![
            Just(String::new()),
            Just(" on (a) group_left ()".to_string()),
            Just(" on (a) group_left (le)".to_string()),
            Just(" ignoring (a) group_right (le, instance)".to_string()),
        ];
        let agg = prop_oneof![
            Just("sum"),
            Just("avg"),
            Just("min"),
            Just("max"),
            Just("count"),
            Just("group"),
            Just("stddev"),
            Just("stdvar")
        ];
        let grouping = prop_oneof![
            Just(String::new()),
            prop::collection::vec(label(), 0..3).prop_map(|l| format!(" by ({})", l.join(", "))),
            prop::collection::vec(label(), 1..3)
                .prop_map(|l| format!(" without ({},)", l.join(", "))),
        ];
        prop_oneof![
            (inner.clone(), arith.clone(), grouped, inner.clone())
                .prop_map(|(a, op, m, b)| format!("({a}) {op}{m} ({b})")),
            (
                inner.clone(),
                cmp.clone(),
                any::<bool>(),
                matching.clone(),
                inner.clone()
            )
                .prop_map(|(a, op, bl, m, b)| {
                    format!("({a}) {op}{}{m} ({b})", if bl { " bool" } else { "" })
                }),
            (inner.clone(), set, matching, inner.clone())
                .prop_map(|(a, op, m, b)| format!("({a}) {op}{m} ({b})")),
            (inner.clone(), arith, scalar_leaf(), any::<bool>()).prop_map(|(v, op, s, flip)| {
                if flip {
                    format!("{s} {op} ({v})")
                } else {
                    format!("({v}) {op} {s}")
                }
            }),
            (inner.clone(), cmp, scalar_leaf()).prop_map(|(v, op, s)| format!("({v}) {op} {s}")),
            (agg, grouping.clone(), inner.clone(), any::<bool>()).prop_map(|(op, g, v, after)| {
                if after {
                    format!("{op}({v}){g}")
                } else {
                    format!("{op}{g} ({v})")
                }
            }),
            (grouping, scalar_leaf(), inner.clone())
                .prop_map(|(g, k, v)| format!("topk{g} ({k}, {v})")),
            (string_lit(), inner.clone()).prop_map(|(s, v)| format!("count_values({s}, {v})")),
            inner.clone().prop_map(|v| format!("({v})")),
            inner.clone().prop_map(|v| format!("-({v})")),
            inner.clone().prop_map(|v| format!("abs({v})")),
            (inner.clone(), scalar_leaf()).prop_map(|(v, s)| format!("round({v}, {s})")),
            (selector(), duration(), modifiers())
                .prop_map(|(s, d, m)| format!("rate({s}[{d}]{m})")),
            (
                inner.clone(),
                duration(),
                prop::option::of(duration()),
                modifiers()
            )
                .prop_map(|(v, r, st, m)| format!(
                    "sum_over_time(({v})[{r}:{}]{m})",
                    st.unwrap_or_default()
                )),
            (inner.clone(), string_lit())
                .prop_map(|(v, s)| format!("label_replace({v}, \"dst\", {s}, \"src\", \"(.*)\")")),
            (scalar_leaf(), inner.clone()).prop_map(|(q, v)| format!("quantile({q}, {v})")),
            inner.prop_map(|v| format!("vector(scalar({v}))")),
        ]
    })
}

fn scalar_expr() -> impl Strategy<Value = String> {
    scalar_leaf().prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop_oneof![Just("+"), Just("-"), Just("*"), Just("^"), Just("/")],
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (
                inner.clone(),
                prop_oneof![Just("=="), Just(">"), Just("<=")],
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} bool {b}")),
            inner.clone().prop_map(|s| format!("({s})")),
            inner.clone().prop_map(|s| format!("-{s}")),
            vector_leafish().prop_map(|v| format!("scalar({v})")),
        ]
    })
}

fn vector_leafish() -> impl Strategy<Value = String> {
    (selector(), modifiers()).prop_map(|(s, m)| s + &m)
}

/// Fragments for random token soup (mostly invalid queries).
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "foo",
        "bar",
        "sum",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "@",
        "start()",
        "end()",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "==",
        "!=",
        ">",
        "<=",
        "and",
        "or",
        "unless",
        "atan2",
        "1",
        "5m",
        "0x1F",
        "Inf",
        "\"a\"",
        "'b'",
        "`c`",
        "a=\"b\"",
        "=~",
        "!~",
        "rate",
        "topk",
        "count_values",
        "abs",
        "time",
        "# c\n",
        " ",
        "\n",
        "1e3",
        ".5",
        "x:y",
        "\"u.t\"",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_vector_queries_round_trip(q in vector_expr()) {
        assert_round_trip(&q);
    }

    #[test]
    fn generated_scalar_queries_round_trip(q in scalar_expr()) {
        assert_round_trip(&q);
    }

    #[test]
    fn token_soup_never_panics_and_round_trips_when_valid(
        parts in prop::collection::vec(fragment(), 0..24)
    ) {
        let q = parts.join(" ");
        if let Ok(e) = parse(&q) {
            check_printing(&q, e);
        }
        let tight = parts.concat();
        if let Ok(e) = parse(&tight) {
            check_printing(&tight, e);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse(&s);
        let _ = super::parse_series_description(&s);
    }

    #[test]
    fn random_text_never_panics(s in "\\PC{0,80}") {
        if let Ok(e) = parse(&s) {
            check_printing(&s, e);
        }
    }
}
