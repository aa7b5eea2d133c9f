use super::*;

fn data(labels: &[(&str, &str)], value: f64) -> TemplateData<'static> {
    TemplateData {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
        external_labels: [("cluster".to_string(), "eu1".to_string())].into(),
        external_url: "http://aion.example:9090".to_string(),
        query: None,
    }
}

fn run(t: &str, d: &TemplateData<'_>) -> String {
    expand("t", t, d).unwrap()
}

#[test]
fn variables_and_fields() {
    let d = data(&[("instance", "web-1:80"), ("job", "api")], 0.0734);
    assert_eq!(
        run(
            "{{ $labels.instance }} is {{ $value }} ({{ .Labels.job }} {{ .Value }})",
            &d
        ),
        "web-1:80 is 0.0734 (api 0.0734)"
    );
    assert_eq!(run("{{ $externalLabels.cluster }}", &d), "eu1");
    assert_eq!(run("{{ $labels.missing }}|", &d), "|");
    assert_eq!(run("{{$externalURL}}", &d), "http://aion.example:9090");
}

#[test]
fn control_flow() {
    let d = data(&[("severity", "critical")], 5.0);
    let t = "{{ if eq $labels.severity \"critical\" }}PAGE{{ else if gt $value 1.0 }}warn{{ else }}ok{{ end }}";
    assert_eq!(run(t, &d), "PAGE");
    let d2 = data(&[("severity", "info")], 5.0);
    assert_eq!(run(t, &d2), "warn");
    assert_eq!(
        run("{{ with $labels.severity }}[{{ . }}]{{ end }}", &d),
        "[critical]"
    );
    assert_eq!(
        run(
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            &data(&[("a", "1"), ("b", "2")], 0.0)
        ),
        "a=1;b=2;"
    );
    assert_eq!(run("a  {{- \" b \" -}}  c", &d), "a b c");
    assert_eq!(run("{{/* comment */}}x", &d), "x");
    assert_eq!(run("{{ $x := 3 }}{{ $x }}", &d), "3");
}

#[test]
fn functions_and_pipelines() {
    let d = data(
        &[("path", "/api/v1"), ("instance", "db-1.example.com:5432")],
        1234567.0,
    );
    assert_eq!(run("{{ $value | humanize }}", &d), "1.235M");
    assert_eq!(run("{{ humanize1024 1048576 }}", &d), "1Mi");
    assert_eq!(run("{{ 3725 | humanizeDuration }}", &d), "1h 2m 5s");
    assert_eq!(run("{{ 0.0734 | humanizePercentage }}", &d), "7.34%");
    assert_eq!(run("{{ printf \"%.2f\" $value }}", &d), "1234567.00");
    assert_eq!(run("{{ printf \"%s has %d\" \"x\" 3 }}", &d), "x has 3");
    assert_eq!(
        run("{{ printf \"%5.1f|%-4s|\" 2.25 \"ab\" }}", &d),
        "  2.2|ab  |"
    );
    assert_eq!(
        run(
            "{{ \"hello world\" | title }} {{ toUpper \"a\" }}{{ toLower \"B\" }}",
            &d
        ),
        "Hello World Ab"
    );
    assert_eq!(run("{{ match \"^/api\" $labels.path }}", &d), "true");
    assert_eq!(
        run("{{ reReplaceAll \":.*\" \"\" $labels.instance }}", &d),
        "db-1.example.com"
    );
    assert_eq!(
        run("{{ $labels.instance | stripPort | stripDomain }}", &d),
        "db-1"
    );
    assert_eq!(run("{{ safeHtml \"<b>\" }}", &d), "<b>");
    assert_eq!(
        run("{{ humanizeTimestamp 0 }}", &d),
        "1970-01-01 00:00:00 +0000 UTC"
    );
    assert_eq!(
        run(
            "{{ if and (gt $value 10.0) (lt $value 1e9) }}mid{{ end }}",
            &d
        ),
        "mid"
    );
    assert_eq!(run("{{ len $labels }}", &d), "2");
}

#[test]
fn query_function() {
    let q = |expr: &str| -> Result<Vec<QuerySample>, String> {
        if expr == "up" {
            Ok(vec![
                QuerySample {
                    labels: [("job".to_string(), "b".to_string())].into(),
                    value: 0.0,
                },
                QuerySample {
                    labels: [("job".to_string(), "a".to_string())].into(),
                    value: 1.0,
                },
            ])
        } else {
            Err("boom".to_string())
        }
    };
    let mut d = data(&[], 0.0);
    d.query = Some(&q);
    assert_eq!(run("{{ query \"up\" | first | value }}", &d), "0");
    assert_eq!(
        run(
            "{{ with query \"up\" }}{{ . | first | label \"job\" }}{{ end }}",
            &d
        ),
        "b"
    );
    assert_eq!(
        run("{{ range query \"up\" | sortByLabel \"job\" }}{{ .Labels.job }}={{ .Value }} {{ end }}", &d),
        "a=1 b=0 "
    );
    let err = expand("t", "{{ query \"bad\" }}", &d).unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
}

#[test]
fn errors_never_panic() {
    let d = data(&[], 0.0);
    for bad in [
        "{{ if }}",
        "{{ end }}",
        "{{ .Labels.x",
        "{{ nosuchfn 1 }}",
        "{{ if 1 }}x",
        "{{ \"a }}",
        "{{ ( }}",
        "{{ | }}",
    ] {
        assert!(Template::parse("t", bad).is_err(), "{bad}");
    }
    for bad in [
        "{{ first \"x\" }}",
        "{{ humanize \"abc\" }}",
        "{{ $undefined }}",
        "{{ query \"up\" }}",
        "{{ 1 2 }}",
        "{{ index $labels 3 4 }}",
    ] {
        assert!(expand("t", bad, &d).is_err(), "{bad}");
    }
}

#[test]
fn printf_refuses_huge_width_and_precision_as_go_does() {
    // Found by fuzzing: a width of hundreds of millions padded the output to that many
    // bytes. Go's fmt gives up on such numbers: `%!(NOVERB)`, the rest of the format
    // ignored, unused arguments reported as EXTRA.
    let d = data(&[], 0.0);
    assert_eq!(
        run("{{ printf \"a%444444442fb\" 2.25 }}", &d),
        "a%!(NOVERB)%!(EXTRA float64=2.25)"
    );
    assert_eq!(
        run("{{ printf \"%2.444444444444444444444f|\" 2.25 }}", &d),
        "%!(NOVERB)%!(EXTRA float64=2.25)"
    );
    // Numbers up to Go's limit still work.
    assert_eq!(run("{{ printf \"%12d|\" 7 }}", &d).len(), 13);
    assert_eq!(run("{{ printf \"%1000000s\" \"x\" }}", &d).len(), 1_000_000);
}
