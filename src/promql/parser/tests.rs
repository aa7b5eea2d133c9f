//! Hand-written parse tests, in the spirit of Prometheus's parser tests: valid queries
//! (checked through their canonical printing) and invalid ones with expected messages.

use super::parse;
use crate::model::MatchOp;
use crate::promql::ast::*;
use crate::promql::func::Func;

/// Parses, prints, and checks that the printed form parses back to the same tree and
/// prints identically.
fn canon(q: &str) -> String {
    let e = parse(q).unwrap_or_else(|e| panic!("{q:?} failed: {e}"));
    let printed = e.to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("reparse of {printed:?} failed: {e}"));
    let (mut a, mut b) = (e.clone(), again.clone());
    a.clear_spans();
    b.clear_spans();
    // Debug output compares NaN literals as equal.
    assert_eq!(
        format!("{a:?}"),
        format!("{b:?}"),
        "round trip of {q:?} via {printed:?}"
    );
    assert_eq!(
        again.to_string(),
        printed,
        "printing is not idempotent for {q:?}"
    );
    printed
}

fn err(q: &str) -> String {
    match parse(q) {
        Ok(e) => panic!("{q:?} parsed as {e}"),
        Err(e) => e.message,
    }
}

#[test]
fn canonical_printing() {
    let cases: &[(&str, &str)] = &[
        ("1", "1"),
        ("-1", "-1"),
        ("+1", "1"),
        ("0x1F", "31"),
        ("1e3", "1000"),
        (".5", "0.5"),
        ("Inf", "+Inf"),
        ("-inf", "-Inf"),
        ("nAn", "NaN"),
        ("1h", "3600"),
        ("\"a\\nb\"", "\"a\\nb\""),
        ("'it\\'s'", "\"it's\""),
        ("`raw\\n`", "\"raw\\\\n\""),
        ("foo", "foo"),
        ("foo:bar", "foo:bar"),
        ("foo{}", "foo"),
        (
            "foo{a=\"b\",c!=\"d\",e=~\"f\",g!~\"h\",}",
            "foo{a=\"b\",c!=\"d\",e=~\"f\",g!~\"h\"}",
        ),
        ("{__name__=\"foo\"}", "{__name__=\"foo\"}"),
        ("{\"metric.name\"}", "{__name__=\"metric.name\"}"),
        (
            "{\"metric.name\", \"a.b\"=\"c\"}",
            "{__name__=\"metric.name\",\"a.b\"=\"c\"}",
        ),
        ("foo[5m]", "foo[5m]"),
        ("foo[90m]", "foo[1h30m]"),
        ("foo[10]", "foo[10s]"),
        ("foo[1.5]", "foo[1s500ms]"),
        ("foo[10s53ms]", "foo[10s53ms]"),
        ("foo offset 5m", "foo offset 5m"),
        ("foo offset -5m", "foo offset -5m"),
        ("foo offset 50", "foo offset 50s"),
        ("foo @ 100", "foo @ 100.000"),
        ("foo @ 100s", "foo @ 100.000"),
        ("foo @ -1.5", "foo @ -1.500"),
        ("foo @ start()", "foo @ start()"),
        ("foo @ end() offset 1m", "foo @ end() offset 1m"),
        ("foo offset 1m @ 10", "foo @ 10.000 offset 1m"),
        ("foo[5m] offset 1m @ 10", "foo[5m] @ 10.000 offset 1m"),
        ("rate(foo[5m])[30m:1m]", "rate(foo[5m])[30m:1m]"),
        ("foo[5m:]", "foo[5m:]"),
        ("foo[30:10]", "foo[30s:10s]"),
        ("(foo + bar)[5m:] offset 1m", "(foo + bar)[5m:] offset 1m"),
        ("sum by (job) (rate(x[5m]))", "sum by (job) (rate(x[5m]))"),
        (
            "sum(rate(x[5m])) by (job, instance,)",
            "sum by (job, instance) (rate(x[5m]))",
        ),
        ("sum without (a) (x)", "sum without (a) (x)"),
        ("sum by () (x)", "sum(x)"),
        ("SUM(x)", "sum(x)"),
        ("sum(sum)", "sum(sum)"),
        ("a + sum", "a + sum"),
        (
            "some_metric @ 123 offset 1m [10m:5s]",
            "some_metric @ 123.000 offset 1m[10m:5s]",
        ),
        (
            "some_metric[10m:5s] offset 1m @ 123",
            "some_metric[10m:5s] @ 123.000 offset 1m",
        ),
        ("foo @ 3.3335", "foo @ 3.334"),
        ("foo @ 0xA", "foo @ 10.000"),
        ("topk(3, x)", "topk(3, x)"),
        ("count_values(\"v\", x)", "count_values(\"v\", x)"),
        ("quantile by (a) (0.9, x)", "quantile by (a) (0.9, x)"),
        ("limitk(2, x)", "limitk(2, x)"),
        ("limit_ratio(0.5, x)", "limit_ratio(0.5, x)"),
        ("sum by (by, on, sum) (x)", "sum by (by, on, sum) (x)"),
        (
            "sum by (a:b, \"c.d\", \"nan\") (x)",
            "sum by (\"a:b\", \"c.d\", \"nan\") (x)",
        ),
        ("foo[+5m]", "foo[5m]"),
        ("foo offset +1m", "foo offset 1m"),
        ("foo[4.018]", "foo[4s18ms]"),
        ("foo[0.0015]", "foo[1ms]"),
        ("a + on (b) group_left (c) d", "a + on (b) group_left (c) d"),
        ("a + on(b) group_left d", "a + on (b) group_left () d"),
        (
            "a * ignoring (b) group_right d",
            "a * ignoring (b) group_right () d",
        ),
        ("a and on () b", "a and on () b"),
        ("a > bool b", "a > bool b"),
        ("1 == bool 2", "1 == bool 2"),
        ("a or b and c", "a or b and c"),
        ("a atan2 b", "a atan2 b"),
        ("predict_linear(x[50m], 1h)", "predict_linear(x[50m], 3600)"),
        (
            "label_join(x, \"a\", \",\", \"b\", \"c\")",
            "label_join(x, \"a\", \",\", \"b\", \"c\")",
        ),
        ("round(x)", "round(x)"),
        ("round(x, 5)", "round(x, 5)"),
        ("time()", "time()"),
        ("hour()", "hour()"),
        ("-foo", "-foo"),
        ("- - foo", "--foo"),
        ("-(1)", "-(1)"),
        ("# comment\nfoo # trailing", "foo"),
        ("by", "by"),
        ("sum", "sum"),
        ("offset offset 5m", "offset offset 5m"),
        ("foo{by=\"x\", offset=\"y\"}", "foo{by=\"x\",offset=\"y\"}"),
    ];
    for (q, want) in cases {
        assert_eq!(canon(q), *want, "query {q:?}");
    }
}

/// The tree shape of `s` with spans cleared.
fn tree(s: &str) -> Expr {
    let mut e = parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    e.clear_spans();
    e
}

#[test]
fn precedence_and_associativity() {
    // ^ is right-associative and binds tighter than unary minus: -2^2 = -(2^2).
    let e = tree("-2 ^ 2");
    assert!(matches!(&e, Expr::Unary { op: UnaryOp::Neg, expr, .. }
        if matches!(&**expr, Expr::Binary(b) if b.op == BinOp::Pow)));
    let e = tree("2 ^ 3 ^ 2");
    let Expr::Binary(b) = &e else { panic!() };
    assert!(matches!(&*b.rhs, Expr::Binary(r) if r.op == BinOp::Pow));
    // Left associativity of - and /.
    let e = tree("1 - 2 - 3");
    let Expr::Binary(b) = &e else { panic!() };
    assert!(matches!(&*b.lhs, Expr::Binary(l) if l.op == BinOp::Sub));
    // * binds tighter than +, comparisons looser, and/unless looser, or loosest.
    let e = tree("a + b * c > d and e or f unless g");
    let Expr::Binary(or) = &e else { panic!() };
    assert_eq!(or.op, BinOp::Or);
    let Expr::Binary(unless) = &*or.rhs else {
        panic!()
    };
    assert_eq!(unless.op, BinOp::Unless);
    let Expr::Binary(and) = &*or.lhs else {
        panic!()
    };
    assert_eq!(and.op, BinOp::And);
    let Expr::Binary(gt) = &*and.lhs else {
        panic!()
    };
    assert_eq!(gt.op, BinOp::Gtr);
    let Expr::Binary(add) = &*gt.lhs else {
        panic!()
    };
    assert_eq!(add.op, BinOp::Add);
    assert!(matches!(&*add.rhs, Expr::Binary(m) if m.op == BinOp::Mul));
    // Unary minus binds like *: -a * b = (-a) * b.
    let e = tree("-a * b");
    assert!(matches!(&e, Expr::Binary(b) if b.op == BinOp::Mul
        && matches!(&*b.lhs, Expr::Unary { .. })));
    // Numbers fold their sign; 1 - -1 stays a subtraction.
    let e = tree("1 - -1");
    let Expr::Binary(b) = &e else { panic!() };
    assert!(matches!(&*b.rhs, Expr::Number { val, .. } if *val == -1.0));
}

#[test]
fn selectors_and_modifiers() {
    let Expr::Vector(vs) = tree("foo{a=\"b\"}") else {
        panic!()
    };
    assert_eq!(vs.name.as_deref(), Some("foo"));
    assert_eq!(vs.matchers.len(), 2);
    assert_eq!(vs.matchers[1].name, "__name__");
    assert_eq!(vs.matchers[0].op, MatchOp::Equal);
    let Expr::Matrix(m) = tree("foo[5m] offset -1m @ 100") else {
        panic!()
    };
    assert_eq!(m.range_ms, 300_000);
    assert_eq!(m.vs.offset_ms, -60_000);
    assert_eq!(m.vs.at, Some(AtModifier::Timestamp(100_000)));
    let Expr::Subquery(s) = tree("foo[5m:30s] @ end()") else {
        panic!()
    };
    assert_eq!(s.range_ms, 300_000);
    assert_eq!(s.step_ms, Some(30_000));
    assert_eq!(s.at, Some(AtModifier::End));
    let Expr::Subquery(s) = tree("foo[5m:]") else {
        panic!()
    };
    assert_eq!(s.step_ms, None);
    let Expr::Call(c) = tree("rate(foo[1m])") else {
        panic!()
    };
    assert_eq!(c.func, Func::Rate);
    let Expr::Binary(b) = tree("a and b") else {
        panic!()
    };
    assert_eq!(
        b.matching.as_ref().map(|m| m.card),
        Some(VectorMatchCardinality::ManyToMany)
    );
    let Expr::Binary(b) = tree("a + 1") else {
        panic!()
    };
    assert!(b.matching.is_none());
    let Expr::Binary(b) = tree("a + b") else {
        panic!()
    };
    assert_eq!(
        b.matching,
        Some(VectorMatching::default_for(
            VectorMatchCardinality::OneToOne
        ))
    );
}

#[test]
fn spans_and_positions() {
    let q = "sum(rate(foo[5m]))";
    let Expr::Aggregate(a) = parse(q).unwrap() else {
        panic!()
    };
    assert_eq!(a.span, Span::new(0, q.len()));
    let Expr::Call(c) = &*a.expr else { panic!() };
    assert_eq!(c.span, Span::new(4, 17));
    assert_eq!(c.args[0].span(), Span::new(9, 16));
    let e = parse("foo +\n  -1").unwrap();
    let Expr::Binary(b) = e else { panic!() };
    assert_eq!(b.rhs.span().line_col("foo +\n  -1"), (2, 3));
}

#[test]
fn errors_with_prometheus_messages() {
    let cases: &[(&str, &str)] = &[
        ("", "no expression found in input"),
        ("1 +", "unexpected end of input"),
        ("(1", "unclosed left parenthesis"),
        ("1)", "unexpected right parenthesis ')'"),
        ("{}", "vector selector must contain at least one non-empty matcher"),
        ("{a=\"\"}", "vector selector must contain at least one non-empty matcher"),
        ("{a=~\".*\"}", "vector selector must contain at least one non-empty matcher"),
        ("foo{__name__=\"bar\"}", "metric name must not be set twice: \"foo\" or \"bar\""),
        ("foo{a=\"b\"", "unexpected end of input inside braces"),
        ("foo{a}", "unexpected \"}\" in label matching, expected label matching operator"),
        ("foo{a=b}", "unexpected identifier \"b\" in label matching, expected string"),
        ("foo{a=\"b\" c=\"d\"}", "unexpected identifier \"c\" in label matching, expected \",\" or \"}\""),
        ("foo{=\"b\"}", "unexpected \"=\" in label matching, expected identifier or \"}\""),
        ("foo[5m", "unexpected end of input in duration expression"),
        (
            "foo[]",
            "unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()",
        ),
        ("foo[-1]", "duration must be greater than 0"),
        ("foo[0m]", "duration must be greater than 0"),
        ("foo[5m:0s]", "duration must be greater than 0"),
        ("foo[\"5m\"]", "unexpected character in duration expression: '\"'"),
        ("foo[5mm]", "bad number or duration syntax: \"5mm\""),
        ("foo[5m1]", "bad number or duration syntax: \"5m1\""),
        ("foo[5y1hs]", "unknown unit \"hs\" in duration \"5y1hs\""),
        ("foo offset 1mm", "bad number or duration syntax: \"1mm\""),
        ("sum (foo) without (a) by (b)", "unexpected <by>"),
        ("topk(foo,)", "trailing commas not allowed in function call args"),
        ("rate(foo[5m]) @ 1", "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("sum by (\"\") (foo)", "invalid label name for grouping: \"\""),
        ("foo{1}", "unexpected character inside braces: '1'"),
        ("}", "unexpected character: '}'"),
        ("-=", "unexpected \"=\""),
        ("++-++-+-+-<", "unexpected <op:<>"),
        ("a>b()", "unknown function with name \"b\""),
        ("rate(avg)", "expected type range vector in call to function \"rate\", got instant vector"),
        ("`\\``", "unterminated raw string"),
        ("\"\\", "escape sequence not terminated"),
        ("\"\\x.\"", "illegal character U+002E '.' in escape sequence"),
        ("foo{bar=\"baz\"}[", "unexpected end of input in duration expression"),
        ("foo[5m:1m:1m]", "unexpected repeated colon in duration expression"),
        ("sum(foo)[5m]", "ranges only allowed for vector selectors"),
        ("(foo)[5m]", "ranges only allowed for vector selectors"),
        ("foo offset 5m[5m]", "no offset modifiers allowed before range"),
        ("foo @ 1[5m]", "no @ modifiers allowed before range"),
        ("foo offset 1m offset 1m", "offset may not be set multiple times"),
        ("foo @ 1 @ 2", "@ <timestamp> may not be set multiple times"),
        ("sum(foo) offset 1m", "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("1 @ 1", "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("foo offset", "unexpected end of input in offset, expected number, duration, step(), or range()"),
        ("foo @", "unexpected end of input in @, expected timestamp"),
        ("foo @ Inf", "timestamp out of bounds for @ modifier: +Inf"),
        ("foo[5m1h]", "not a valid duration string: \"5m1h\""),
        ("foo[1hs]", "unknown unit \"hs\" in duration \"1hs\""),
        ("rate(foo)", "expected type range vector in call to function \"rate\", got instant vector"),
        ("abs(foo[5m])", "expected type instant vector in call to function \"abs\", got range vector"),
        ("rate()", "expected 1 argument(s) in call to \"rate\", got 0"),
        ("round()", "expected at least 1 argument(s) in call to \"round\", got 0"),
        ("round(a, 1, 2)", "expected at most 2 argument(s) in call to \"round\", got 3"),
        ("label_join(a)", "expected at least 3 argument(s) in call to \"label_join\", got 1"),
        ("label_join(a, \"b\", \"c\", 1)", "expected type string in call to function \"label_join\", got scalar"),
        ("foo(bar)", "unknown function with name \"foo\""),
        ("rate(foo[5m],)", "trailing commas not allowed in function call args"),
        ("sum()", "no arguments for aggregate expression provided"),
        ("topk(x)", "wrong number of arguments for aggregate expression provided, expected 2, got 1"),
        ("sum(1, x)", "wrong number of arguments for aggregate expression provided, expected 1, got 2"),
        ("topk(\"a\", x)", "expected type scalar in aggregation parameter, got string"),
        ("count_values(1, x)", "expected type string in aggregation parameter, got scalar"),
        ("sum(x[5m])", "expected type instant vector in aggregation expression, got range vector"),
        ("sum by x (y)", "unexpected identifier \"x\" in grouping opts, expected \"(\""),
        ("sum by (a b) (y)", "unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""),
        ("sum without (==) (y)", "unexpected <op:==> in grouping opts, expected label"),
        ("sum foo", "unexpected identifier \"foo\""),
        ("MIN keep_common (foo)", "unexpected identifier \"keep_common\""),
        ("1 > 2", "comparisons between scalars must use BOOL modifier"),
        ("a + bool b", "bool modifier can only be used on comparison operators"),
        ("1 and 2", "set operator \"and\" not allowed in binary scalar expression"),
        ("a and 1", "set operator \"and\" not allowed in binary scalar expression"),
        ("a and on(b) group_left c", "no grouping allowed for \"and\" operation"),
        ("1 + on(a) b", "vector matching only allowed between instant vectors"),
        ("a + on(c) group_left(c) b", "label \"c\" must not occur in ON and GROUP clause at once"),
        ("a[5m] + b", "binary expression must contain only scalar and instant vector types"),
        ("\"a\" + 1", "binary expression must contain only scalar and instant vector types"),
        ("-a[5m]", "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""),
        ("a[5m][5m:]", "subquery is only allowed on instant vector, got matrix instead"),
        ("a & b", "unexpected character: '&'"),
        ("a =~ b", "unexpected character after '=': '~'"),
        ("foo{a!b=\"c\"}", "unexpected character after '!' inside braces: 'b'"),
        ("a * group_left b", "unexpected <group_left>"),
        ("on", "unexpected <on>"),
        ("foo[1.5h]", "unknown unit \".\" in duration \"1.5h\""),
        ("1 2", "unexpected number \"2\""),
        ("\"abc", "unterminated quoted string"),
        ("\"\\q\"", "unknown escape sequence U+0071 'q'"),
        ("1abc", "bad number or duration syntax: \"1\""),
        ("2.5.", "bad number or duration syntax: \"2.5.\""),
        ("0deadbeef", "bad number or duration syntax: \"0de\""),
        (".", "unexpected character: '.'"),
        ("@@", "unexpected <op:@>"),
        ("*1", "unexpected <op:*>"),
        ("a - on(b) ignoring(c) d", "unexpected <ignoring>"),
        ("-\"s\"", "unary expression only allowed on expressions of type scalar or instant vector, got \"string\""),
    ];
    for (q, want) in cases {
        assert_eq!(err(q), *want, "query {q:?}");
    }
}

#[test]
fn bad_regex_is_a_parse_error() {
    assert!(err("foo{a=~\"(\"}").starts_with("invalid regular expression \"(\""));
}

#[test]
fn error_display_has_position() {
    let e = parse("foo +\n  bar(1)").unwrap_err();
    assert_eq!(
        e.to_string(),
        "2:3: parse error: unknown function with name \"bar\""
    );
    let e = parse("rate(foo)").unwrap_err();
    assert_eq!(e.to_string(), "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector");
}

#[test]
fn nesting_limits_never_overflow() {
    let deep = "(".repeat(100_000);
    assert!(parse(&deep).is_err());
    let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(parse(&deep)
        .unwrap_err()
        .message
        .contains("nesting too deep"));
    let deep = format!("{}1", "-".repeat(100_000));
    assert!(parse(&deep).is_err());
    let chain = vec!["a"; 100_000].join(" + ");
    assert!(parse(&chain)
        .unwrap_err()
        .message
        .contains("nesting too deep"));
    let pow = vec!["a"; 100_000].join(" ^ ");
    assert!(parse(&pow).is_err());
    let calls = format!("{}x{}", "abs(".repeat(50_000), ")".repeat(50_000));
    assert!(parse(&calls).is_err());
    let ok = format!("{}1{}", "(".repeat(100), ")".repeat(100));
    assert!(parse(&ok).is_ok());
    let huge = "a".repeat(super::MAX_QUERY_LEN + 1);
    assert!(parse(&huge).is_err());
}

#[test]
fn walkers_and_at_rewrite() {
    let mut e = parse(
        "sum(rate(a[5m])) + b @ 10 + sum_over_time(c[1m:]) \
         + sum_over_time((d offset 1m)[2m:] @ 20)",
    )
    .unwrap();
    set_at_everywhere(&mut e, 5000);
    assert_eq!(
        e.to_string(),
        "sum(rate(a[5m] @ 5.000)) + b @ 10.000 + sum_over_time(c[1m:] @ 5.000) \
         + sum_over_time((d offset 1m)[2m:] @ 20.000)"
    );
    let mut count = 0;
    walk(&e, &mut |_| {
        count += 1;
        true
    });
    assert_eq!(count, 14);
}

#[test]
fn huge_numbers_are_out_of_range() {
    let q = "9".repeat(400);
    assert!(err(&q).ends_with("value out of range"));
    assert_eq!(tree("0755"), tree("493"));
    assert_eq!(tree("-0755"), tree("-493"));
}

#[test]
fn nesting_at_the_limit_fits_a_small_stack() {
    // The deepest accepted inputs must parse, check, print and drop on a 2 MiB stack
    // (the default for spawned threads).
    let run = || {
        let n = super::MAX_DEPTH / 2 - 1;
        let parens = format!("{}x{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(parse(&parens).unwrap().to_string(), parens);
        let too_deep = format!("{}x{}", "(".repeat(n + 1), ")".repeat(n + 1));
        assert!(parse(&too_deep).is_err());
        let calls = format!("{}x{}", "abs(".repeat(n), ")".repeat(n));
        assert_eq!(parse(&calls).unwrap().to_string(), calls);
        let aggs = format!("{}x{}", "sum(".repeat(n), ")".repeat(n));
        assert_eq!(parse(&aggs).unwrap().to_string(), aggs);
        let subqueries = format!("{}x{}", "(".repeat(n), ")[5m:]".repeat(n));
        let _ = parse(&subqueries);
        let unary = format!("{}x", "-".repeat(super::MAX_DEPTH - 1));
        assert!(parse(&unary).is_ok());
        let chain = vec!["x"; super::MAX_DEPTH].join(" + ");
        assert!(parse(&chain).is_ok());
        let pow = vec!["x"; super::MAX_DEPTH - 1].join(" ^ ");
        assert!(parse(&pow).is_ok());
    };
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}
