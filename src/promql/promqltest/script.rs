//! Parsing of test scripts into commands.

use regex::Regex;

use super::values::{expand_values, parse_duration, parse_number, parse_series_desc, SeqValue};
use crate::model::{Labels, Sample};

/// A check on an error or annotation text.
#[derive(Debug, Clone)]
pub enum TextMatch {
    /// Anything matches.
    Any,
    /// The exact text (trimmed).
    Exact(String),
    /// An unanchored regular expression.
    Regex(Regex),
}

impl TextMatch {
    /// Whether `s` is matched.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            TextMatch::Any => true,
            TextMatch::Exact(m) => m == s,
            TextMatch::Regex(r) => r.is_match(s),
        }
    }
}

impl std::fmt::Display for TextMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextMatch::Any => f.write_str("<any>"),
            TextMatch::Exact(m) => write!(f, "message {m:?}"),
            TextMatch::Regex(r) => write!(f, "pattern {:?}", r.as_str()),
        }
    }
}

/// The time part of an `eval` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalKind {
    /// `eval instant at <t>`.
    Instant {
        /// Evaluation time (ms).
        t: i64,
    },
    /// `eval range from <start> to <end> step <step>`.
    Range {
        /// Start (ms).
        start: i64,
        /// End (ms).
        end: i64,
        /// Step (ms).
        step: i64,
    },
}

/// An expected result series.
#[derive(Debug, Clone)]
pub struct ExpectedSeries {
    /// Labels as written.
    pub labels: Labels,
    /// Values (one per step for range results).
    pub values: Vec<SeqValue>,
    /// 1-based position among the result lines (for `ordered`).
    pub pos: usize,
}

/// One `eval` case.
#[derive(Debug, Clone)]
pub struct EvalCmd {
    /// 1-based line number of the `eval` line.
    pub line: usize,
    /// The PromQL expression.
    pub expr: String,
    /// Instant or range.
    pub kind: EvalKind,
    /// Legacy `eval_fail` or `expect fail`.
    pub fail: bool,
    /// Checks on the error text (`expected_fail_*` or `expect fail msg:|regex:`).
    pub fail_checks: Vec<TextMatch>,
    /// Legacy `eval_warn`: at least one warning required.
    pub legacy_warn: bool,
    /// Legacy `eval_info`: at least one info required.
    pub legacy_info: bool,
    /// `expect warn` lines.
    pub warn: Vec<TextMatch>,
    /// `expect info` lines.
    pub info: Vec<TextMatch>,
    /// `expect no_warn`.
    pub no_warn: bool,
    /// `expect no_info`.
    pub no_info: bool,
    /// `expect ordered` or `eval_ordered`.
    pub ordered: bool,
    /// `expect string "..."`.
    pub expected_string: Option<String>,
    /// `expect range vector from a to b step s`: (a, b, s) in ms.
    pub range_vector: Option<(i64, i64, i64)>,
    /// A scalar is expected with this value.
    pub scalar: Option<f64>,
    /// Expected series (empty with no scalar: an empty result).
    pub series: Vec<ExpectedSeries>,
    /// Skip the range-mode re-run.
    pub exclude_from_range: bool,
}

/// A command of a script.
#[derive(Debug, Clone)]
pub enum Command {
    /// `load <interval>` with its series.
    Load {
        /// 1-based line.
        line: usize,
        /// Series and their samples.
        series: Vec<(Labels, Vec<Sample>)>,
    },
    /// `clear`.
    Clear,
    /// An `eval` case.
    Eval(Box<EvalCmd>),
}

/// A script parse error.
#[derive(Debug, Clone)]
pub struct ScriptError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn err(line: usize, message: impl Into<String>) -> ScriptError {
    ScriptError {
        line,
        message: message.into(),
    }
}

/// Trimmed lines, comment lines turned into empty lines.
fn get_lines(input: &str) -> Vec<String> {
    input
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect()
}

struct Patterns {
    load: Regex,
    instant: Regex,
    range: Regex,
    expect: Regex,
    expect_range: Regex,
}

fn patterns() -> Result<Patterns, regex::Error> {
    Ok(Patterns {
        load: Regex::new(r"^load(?:_(with_nhcb))?\s+(.+?)$")?,
        instant: Regex::new(
            r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$",
        )?,
        range: Regex::new(
            r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
        )?,
        expect: Regex::new(
            r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$",
        )?,
        expect_range: Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")?,
    })
}

/// Parses a whole script.
pub fn parse_script(input: &str) -> Result<Vec<Command>, ScriptError> {
    let pats = patterns().map_err(|e| err(0, e.to_string()))?;
    let lines = get_lines(input);
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines.get(i).map(String::as_str).unwrap_or("");
        if l.is_empty() {
            i += 1;
            continue;
        }
        let first = l
            .split([' ', '\t'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if first == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if first.starts_with("load") {
            let (next, cmd) = parse_load(&pats, &lines, i)?;
            cmds.push(cmd);
            i = next;
        } else if first.starts_with("eval") {
            let (next, cmd) = parse_eval(&pats, &lines, i)?;
            cmds.push(Command::Eval(Box::new(cmd)));
            i = next;
        } else {
            return Err(err(i + 1, format!("invalid command {l:?}")));
        }
    }
    Ok(cmds)
}

fn parse_load(
    pats: &Patterns,
    lines: &[String],
    i: usize,
) -> Result<(usize, Command), ScriptError> {
    let l = lines.get(i).map(String::as_str).unwrap_or("");
    let caps = pats.load.captures(l).ok_or_else(|| {
        err(
            i + 1,
            "invalid load command. (load[_with_nhcb] <step:duration>)",
        )
    })?;
    if caps.get(1).is_some() {
        return Err(err(
            i + 1,
            "load_with_nhcb (native histograms) is not supported",
        ));
    }
    let step_s = caps.get(2).map(|m| m.as_str()).unwrap_or("");
    let gap = parse_duration(step_s)
        .map_err(|e| err(i + 1, format!("invalid step definition {step_s:?}: {e}")))?;
    let mut series = Vec::new();
    let mut j = i + 1;
    while let Some(def) = lines.get(j) {
        if def.is_empty() {
            break;
        }
        let (labels, rest) = parse_series_desc(def).map_err(|e| err(j + 1, e))?;
        let vals = expand_values(rest).map_err(|e| err(j + 1, e))?;
        let samples = vals
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.map(|v| Sample::new(k as i64 * gap, v)))
            .collect();
        series.push((labels, samples));
        j += 1;
    }
    Ok((
        j,
        Command::Load {
            line: i + 1,
            series,
        },
    ))
}

fn dur(line: usize, s: &str, what: &str) -> Result<i64, ScriptError> {
    parse_duration(s.trim()).map_err(|e| err(line, format!("invalid {what} {s:?}: {e}")))
}

fn parse_eval(
    pats: &Patterns,
    lines: &[String],
    i: usize,
) -> Result<(usize, EvalCmd), ScriptError> {
    let l = lines.get(i).map(String::as_str).unwrap_or("");
    let line = i + 1;
    let (modifier, expr, kind) = if let Some(c) = pats.instant.captures(l) {
        let at = c.get(2).map(|m| m.as_str()).unwrap_or("0");
        let t = dur(line, at, "timestamp definition")?;
        (
            c.get(1).map(|m| m.as_str().to_string()),
            c.get(3).map(|m| m.as_str()).unwrap_or("").to_string(),
            EvalKind::Instant { t },
        )
    } else if let Some(c) = pats.range.captures(l) {
        let g = |k: usize| c.get(k).map(|m| m.as_str()).unwrap_or("");
        let start = dur(line, g(2), "start timestamp definition")?;
        let end = dur(line, g(3), "end timestamp definition")?;
        if end < start {
            return Err(err(
                line,
                "invalid test definition, end timestamp is before start timestamp",
            ));
        }
        let step = dur(line, g(4), "step definition")?;
        (
            c.get(1).map(|m| m.as_str().to_string()),
            g(5).to_string(),
            EvalKind::Range { start, end, step },
        )
    } else {
        return Err(err(
            line,
            "invalid evaluation command. Must be either 'eval[_fail|_warn|_ordered] instant [at <offset:duration>] <query>' or 'eval[_fail|_warn] range from <from> to <to> step <step> <query>'",
        ));
    };
    let mut cmd = EvalCmd {
        line,
        expr,
        kind,
        fail: false,
        fail_checks: Vec::new(),
        legacy_warn: false,
        legacy_info: false,
        warn: Vec::new(),
        info: Vec::new(),
        no_warn: false,
        no_info: false,
        ordered: false,
        expected_string: None,
        range_vector: None,
        scalar: None,
        series: Vec::new(),
        exclude_from_range: false,
    };
    match modifier.as_deref() {
        Some("fail") => cmd.fail = true,
        Some("warn") => cmd.legacy_warn = true,
        Some("info") => cmd.legacy_info = true,
        Some("ordered") => cmd.ordered = true,
        _ => {}
    }
    let legacy_fail = cmd.fail;
    let mut fail_lines = 0;
    let mut pos = 0usize;
    let mut j = i + 1;
    while let Some(def) = lines.get(j) {
        let dl = j + 1;
        if def.is_empty() {
            break;
        }
        j += 1;
        if legacy_fail {
            if let Some(rest) = def.strip_prefix("expected_fail_message") {
                cmd.fail_checks
                    .push(TextMatch::Exact(rest.trim().to_string()));
                break;
            }
            if let Some(rest) = def.strip_prefix("expected_fail_regexp") {
                let re = Regex::new(rest.trim()).map_err(|e| {
                    err(dl, format!("invalid regexp for expected_fail_regexp: {e}"))
                })?;
                cmd.fail_checks.push(TextMatch::Regex(re));
                break;
            }
        }
        if def.starts_with("expect range vector") {
            let c = pats
                .expect_range
                .captures(def)
                .ok_or_else(|| err(dl, format!("invalid range vector definition {def:?}")))?;
            let g = |k: usize| c.get(k).map(|m| m.as_str()).unwrap_or("");
            let a = dur(dl, g(1), "start timestamp definition")?;
            let b = dur(dl, g(2), "end timestamp definition")?;
            let s = dur(dl, g(3), "step definition")?;
            cmd.range_vector = Some((a, b, s));
            cmd.kind = EvalKind::Instant { t: b };
            cmd.exclude_from_range = true;
            continue;
        }
        if def.starts_with("expect string") {
            let rest = def.strip_prefix("expect string ").unwrap_or("");
            if rest.is_empty() {
                return Err(err(
                    dl,
                    "expected string literal not valid - a quoted string literal is required",
                ));
            }
            let (s, end) = super::values::read_quoted(rest, 0).map_err(|e| err(dl, e))?;
            if end != rest.len() {
                return Err(err(
                    dl,
                    "expected string literal not valid - check that the string is correctly quoted",
                ));
            }
            cmd.expected_string = Some(s);
            cmd.exclude_from_range = true;
            continue;
        }
        if def.split(' ').next() == Some("expect") {
            let c = pats.expect.captures(def.trim()).ok_or_else(|| {
                err(dl, "invalid expect statement, must match `expect <type> <match_type>: <string>` format")
            })?;
            let mode = c.get(1).map(|m| m.as_str()).unwrap_or("");
            let m = match (
                c.get(2).map(|m| m.as_str()),
                c.get(3).map(|m| m.as_str().trim()),
            ) {
                (Some("msg"), Some(t)) => TextMatch::Exact(t.to_string()),
                (Some("regex"), Some(t)) => TextMatch::Regex(
                    Regex::new(t)
                        .map_err(|e| err(dl, format!("invalid regex {t} for {mode}: {e}")))?,
                ),
                _ => TextMatch::Any,
            };
            match mode {
                "fail" => {
                    cmd.fail = true;
                    fail_lines += 1;
                    cmd.fail_checks.push(m);
                }
                "ordered" => cmd.ordered = true,
                "warn" => cmd.warn.push(m),
                "info" => cmd.info.push(m),
                "no_warn" => cmd.no_warn = true,
                "no_info" => cmd.no_info = true,
                _ => {}
            }
            if !cmd.info.is_empty() && cmd.no_info {
                return Err(err(
                    dl,
                    "invalid expect lines, info and no_info cannot be used together",
                ));
            }
            if !cmd.warn.is_empty() && cmd.no_warn {
                return Err(err(
                    dl,
                    "invalid expect lines, warn and no_warn cannot be used together",
                ));
            }
            if fail_lines > 1 {
                return Err(err(
                    dl,
                    "invalid expect lines, multiple expect fail lines are not allowed",
                ));
            }
            continue;
        }
        pos += 1;
        if let Some(v) = parse_number(def, true) {
            cmd.scalar = Some(v);
            cmd.series.clear();
            break;
        }
        let (labels, rest) = parse_series_desc(def).map_err(|e| err(dl, e))?;
        let values = expand_values(rest).map_err(|e| err(dl, e))?;
        let is_instant = matches!(cmd.kind, EvalKind::Instant { .. });
        if values.len() > 1 && is_instant && cmd.range_vector.is_none() {
            return Err(err(
                dl,
                "expecting multiple values in instant evaluation not allowed. consider using 'expect range vector' directive to enable a range vector result for an instant query",
            ));
        }
        cmd.scalar = None;
        // a repeated label set replaces the earlier line
        cmd.series.retain(|s| s.labels != labels);
        cmd.series.push(ExpectedSeries {
            labels,
            values,
            pos,
        });
    }
    Ok((j, cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        let s = "load 5m\n  a{x=\"1\"} 0+1x2\n\n# c\neval instant at 10m a\n  a{x=\"1\"} 2\n\neval range from 0 to 10m step 5m a\n  expect no_warn\n  a{x=\"1\"} 0 1 _\n\neval_fail instant at 0 foo\n  expected_fail_message boom\nclear\neval instant at 0 1\n  1\n";
        let cmds = parse_script(s).unwrap();
        assert_eq!(cmds.len(), 6);
        let Command::Load { series, .. } = &cmds[0] else {
            panic!()
        };
        assert_eq!(series[0].1.len(), 3);
        assert_eq!(series[0].1[2].t, 600_000);
        let Command::Eval(e) = &cmds[1] else { panic!() };
        assert_eq!(e.kind, EvalKind::Instant { t: 600_000 });
        assert_eq!(e.series.len(), 1);
        let Command::Eval(e) = &cmds[2] else { panic!() };
        assert!(e.no_warn);
        assert_eq!(e.series[0].values, vec![Some(0.0), Some(1.0), None]);
        let Command::Eval(e) = &cmds[3] else { panic!() };
        assert!(e.fail);
        assert!(e.fail_checks[0].matches("boom"));
        assert!(matches!(cmds[4], Command::Clear));
    }

    #[test]
    fn scalar_line_ends_block() {
        let s = "eval instant at 0 1\n  1\n";
        let cmds = parse_script(s).unwrap();
        let Command::Eval(e) = &cmds[0] else { panic!() };
        assert_eq!(e.scalar, Some(1.0));
    }
}
