//! Prometheus's rule file format: `groups` of recording and alerting rules, read strictly
//! (unknown fields are errors) and validated as `promtool check rules` does. Every
//! problem names the file and the line of the group or rule it concerns.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::model::{is_valid_label_name, is_valid_metric_name, time::parse_duration_ms, Labels};
use crate::promql::ast::Expr;
use crate::template::Template;

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFileError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// The message.
    pub msg: String,
}

impl std::fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.msg)
        } else {
            write!(f, "{}: {}", self.file, self.msg)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<serde_yaml::Value>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Recording or alerting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// `record: <metric name>`.
    Record(String),
    /// `alert: <alert name>`.
    Alert(String),
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// Recording or alerting, with the name.
    pub kind: RuleKind,
    /// The expression as written.
    pub expr_text: String,
    /// The parsed expression.
    pub expr: Expr,
    /// `for` in ms.
    pub for_ms: i64,
    /// `keep_firing_for` in ms.
    pub keep_firing_for_ms: i64,
    /// Rule labels (templates for alerting rules), group labels merged under them.
    pub labels: Vec<(String, String)>,
    /// Annotations (templates).
    pub annotations: Vec<(String, String)>,
    /// Line of the rule in its file.
    pub line: usize,
}

impl RuleSpec {
    /// The rule's name (`record` or `alert`).
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Record(n) | RuleKind::Alert(n) => n,
        }
    }

    /// Whether two rules are the same definition (state carries over on reload).
    pub fn same_definition(&self, o: &RuleSpec) -> bool {
        self.kind == o.kind
            && self.expr_text == o.expr_text
            && self.for_ms == o.for_ms
            && self.keep_firing_for_ms == o.keep_firing_for_ms
            && self.labels == o.labels
            && self.annotations == o.annotations
    }
}

/// A validated rule group.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The file the group came from.
    pub file: String,
    /// The group name.
    pub name: String,
    /// `interval` in ms, if set.
    pub interval_ms: Option<i64>,
    /// `query_offset` in ms, if set.
    pub query_offset_ms: Option<i64>,
    /// `limit` (0 = none).
    pub limit: usize,
    /// Group labels.
    pub labels: Labels,
    /// The rules in order.
    pub rules: Vec<RuleSpec>,
    /// Line of the group.
    pub line: usize,
}

/// Finds the line of each group (`- name:`) and rule (`- record:`/`- alert:`), in order.
fn scan_lines(text: &str) -> (Vec<usize>, Vec<usize>) {
    let mut groups = Vec::new();
    let mut rules = Vec::new();
    let mut group_indent: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim_start();
        let indent = raw.len() - t.len();
        let item = t.strip_prefix("- ").map(str::trim_start);
        let (key_text, is_item) = match item {
            Some(k) => (k, true),
            None => (t, false),
        };
        let key = key_text
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['"', '\'']);
        if is_item && key == "name" && group_indent.is_none_or(|g| indent <= g) {
            group_indent = Some(indent);
            groups.push(i + 1);
        } else if is_item
            && group_indent.is_some_and(|g| indent > g)
            && matches!(
                key,
                "record" | "alert" | "expr" | "for" | "keep_firing_for" | "labels" | "annotations"
            )
        {
            rules.push(i + 1);
        }
    }
    (groups, rules)
}

fn parse_dur(s: &Option<String>, what: &str) -> Result<Option<i64>, String> {
    match s {
        None => Ok(None),
        Some(v) => parse_duration_ms(v.trim())
            .map(Some)
            .ok_or_else(|| format!("{what}: not a valid duration string: {v:?}")),
    }
}

/// Parses and validates a rule file's text. Returns the groups, or every problem found.
pub fn parse_rule_file(file: &str, text: &str) -> Result<Vec<GroupSpec>, Vec<RuleFileError>> {
    let err = |line: usize, msg: String| RuleFileError {
        file: file.to_string(),
        line,
        msg,
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let raw: RawFile = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        let full = e.to_string();
        let msg = match full.rfind(" at line ") {
            Some(i) => full.get(..i).unwrap_or(&full).to_string(),
            None => full,
        };
        vec![err(line, msg)]
    })?;
    let (group_lines, rule_lines) = scan_lines(text);
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut seen_groups: HashMap<String, usize> = HashMap::new();
    let mut rule_no = 0usize;
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let gline = group_lines.get(gi).copied().unwrap_or(0);
        if g.name.is_empty() {
            errors.push(err(gline, "Groupname must not be empty".to_string()));
        }
        if seen_groups.insert(g.name.clone(), gline).is_some() {
            errors.push(err(
                gline,
                format!("groupname: \"{}\" is repeated in the same file", g.name),
            ));
        }
        let interval_ms = parse_dur(&g.interval, "interval").unwrap_or_else(|m| {
            errors.push(err(gline, m));
            None
        });
        if interval_ms == Some(0) {
            errors.push(err(gline, "interval must be greater than zero".to_string()));
        }
        let query_offset_ms = parse_dur(&g.query_offset, "query_offset").unwrap_or_else(|m| {
            errors.push(err(gline, m));
            None
        });
        for k in g.labels.keys() {
            if !is_valid_label_name(k) {
                errors.push(err(gline, format!("invalid label name: {k}")));
            }
        }
        let glabels = Labels::new(
            g.labels
                .iter()
                .map(|(k, v)| crate::model::Label::new(k.as_str(), v.as_str()))
                .collect(),
        );
        let mut rules = Vec::new();
        let mut seen_rules: HashMap<(String, Vec<(String, String)>), usize> = HashMap::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            let line = rule_lines.get(rule_no).copied().unwrap_or(gline);
            rule_no += 1;
            let name = r.record.clone().or(r.alert.clone()).unwrap_or_default();
            let ctx = format!("group {:?}, rule {}, {:?}", g.name, ri + 1, name);
            let mut rerr = |m: String| errors.push(err(line, format!("{ctx}: {m}")));
            let kind = match (&r.record, &r.alert) {
                (Some(_), Some(_)) => {
                    rerr("only one of 'record' and 'alert' must be set".to_string());
                    continue;
                }
                (None, None) => {
                    rerr("one of 'record' or 'alert' must be set".to_string());
                    continue;
                }
                (Some(rec), None) => {
                    if rec.is_empty() {
                        rerr("field 'record' must be set in rule".to_string());
                    } else if !is_valid_metric_name(rec) {
                        rerr(format!("invalid recording rule name: {rec}"));
                    }
                    if !r.annotations.is_empty() {
                        rerr("invalid field 'annotations' in recording rule".to_string());
                    }
                    if r.for_.is_some() {
                        rerr("invalid field 'for' in recording rule".to_string());
                    }
                    if r.keep_firing_for.is_some() {
                        rerr("invalid field 'keep_firing_for' in recording rule".to_string());
                    }
                    RuleKind::Record(rec.clone())
                }
                (None, Some(a)) => {
                    if a.is_empty() {
                        rerr("field 'alert' must be set in rule".to_string());
                    }
                    RuleKind::Alert(a.clone())
                }
            };
            let expr_text = match &r.expr {
                None | Some(serde_yaml::Value::Null) => String::new(),
                Some(serde_yaml::Value::String(s)) => s.clone(),
                Some(serde_yaml::Value::Number(n)) => n.to_string(),
                Some(serde_yaml::Value::Bool(b)) => b.to_string(),
                Some(_) => {
                    rerr("field 'expr' must be a string".to_string());
                    continue;
                }
            };
            let expr = if expr_text.trim().is_empty() {
                rerr("field 'expr' must be set in rule".to_string());
                None
            } else {
                match crate::promql::parse(&expr_text) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        rerr(format!("could not parse expression: {e}"));
                        None
                    }
                }
            };
            let for_ms = parse_dur(&r.for_, "for").unwrap_or_else(|m| {
                rerr(m);
                None
            });
            let kff = parse_dur(&r.keep_firing_for, "keep_firing_for").unwrap_or_else(|m| {
                rerr(m);
                None
            });
            for (k, v) in &r.labels {
                if !is_valid_label_name(k) || k == "__name__" {
                    rerr(format!("invalid label name: {k}"));
                }
                if let RuleKind::Alert(_) = kind {
                    if let Err(e) = Template::parse(&format!("__alert_{name}"), v) {
                        rerr(format!("label {k:?}: {e}"));
                    }
                }
            }
            for (k, v) in &r.annotations {
                if !is_valid_label_name(k) {
                    rerr(format!("invalid annotation name: {k}"));
                }
                if let Err(e) = Template::parse(&format!("__alert_{name}"), v) {
                    rerr(format!("annotation {k:?}: {e}"));
                }
            }
            let mut labels: Vec<(String, String)> = glabels
                .iter()
                .filter(|l| !r.labels.contains_key(l.name as &str))
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            labels.extend(r.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            labels.sort();
            let key = (name.clone(), labels.clone());
            if let Some(first) = seen_rules.insert(key, line) {
                rerr(format!(
                    "duplicate rule: same name and labels as the rule at line {first}"
                ));
            }
            let Some(expr) = expr else { continue };
            rules.push(RuleSpec {
                kind,
                expr_text,
                expr,
                for_ms: for_ms.unwrap_or(0),
                keep_firing_for_ms: kff.unwrap_or(0),
                labels,
                annotations: r.annotations.into_iter().collect(),
                line,
            });
        }
        out.push(GroupSpec {
            file: file.to_string(),
            name: g.name,
            interval_ms,
            query_offset_ms,
            limit: g.limit.unwrap_or(0) as usize,
            labels: glabels,
            rules,
            line: gline,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Reads and parses a rule file.
pub fn load_rule_file(path: &Path) -> Result<Vec<GroupSpec>, Vec<RuleFileError>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![RuleFileError {
            file: name.clone(),
            line: 0,
            msg: format!("cannot read file: {e}"),
        }]
    })?;
    parse_rule_file(&name, &text)
}

/// Expands rule file globs (relative to `base`) into sorted paths.
pub fn expand_globs(base: &Path, patterns: &[String]) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let full = if Path::new(p).is_absolute() {
            std::path::PathBuf::from(p)
        } else {
            base.join(p)
        };
        let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
        let pat = full
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        if !pat.contains(['*', '?', '[']) {
            if full.exists() {
                out.push(full);
            }
            continue;
        }
        let re = glob_regex(&pat).ok_or_else(|| format!("invalid glob pattern {p:?}"))?;
        let mut found: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| re.is_match(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect(),
            Err(_) => Vec::new(),
        };
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn glob_regex(pat: &str) -> Option<regex::Regex> {
    let mut re = String::from("^");
    let mut chars = pat.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                for c2 in chars.by_ref() {
                    if c2 == ']' {
                        break;
                    }
                    if c2 == '\\' {
                        re.push_str("\\\\");
                    } else {
                        re.push(c2);
                    }
                }
                re.push(']');
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}
