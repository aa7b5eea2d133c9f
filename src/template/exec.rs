//! Template execution and the function library.

use std::collections::BTreeMap;

use super::format::{
    go_format_g, go_format_v, humanize, humanize1024, humanize_duration, humanize_percentage,
    humanize_timestamp,
};
use super::parse::{Arg, Node, Pipe};
use super::{QueryFn, QuerySample, Value};

/// Upper bound on executed nodes, so a template cannot run away.
const MAX_STEPS: usize = 1_000_000;

pub struct Exec<'a> {
    pub vars: Vec<(String, Value)>,
    pub out: String,
    pub query: Option<QueryFn<'a>>,
    pub external_url: &'a str,
    pub steps: usize,
}

type R<T> = Result<T, String>;

fn truth(v: &Value) -> bool {
    match v {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Sample(_) => true,
    }
}

/// How `{{ v }}` prints a value (Go's `%v`).
pub fn print_value(v: &Value) -> String {
    match v {
        Value::Nil => "<no value>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => go_format_v(*f),
        Value::Str(s) => s.clone(),
        Value::Map(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", print_value(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::List(l) => {
            let parts: Vec<String> = l.iter().map(print_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Sample(s) => {
            let parts: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{map[{}] {}}}", parts.join(" "), go_format_v(s.value))
        }
    }
}

fn field(v: &Value, name: &str) -> R<Value> {
    match v {
        Value::Map(m) => Ok(m.get(name).cloned().unwrap_or(Value::Str(String::new()))),
        Value::Sample(s) => match name {
            "Labels" => Ok(Value::label_map(
                s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )),
            "Value" => Ok(Value::Float(s.value)),
            _ => Err(format!(
                "can't evaluate field {name} in type *template.sample"
            )),
        },
        Value::Nil => Err(format!("nil pointer evaluating .{name}")),
        other => Err(format!(
            "can't evaluate field {name} in type {}",
            type_name(other)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::Map(_) => "map[string]string",
        Value::List(_) => "template.queryResult",
        Value::Sample(_) => "*template.sample",
    }
}

fn to_float(v: &Value) -> R<f64> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => s
            .trim()
            .parse::<f64>()
            .or_else(|_| match s.trim().to_ascii_lowercase().as_str() {
                "inf" | "+inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                _ => Err(()),
            })
            .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        Value::Sample(s) => Ok(s.value),
        other => Err(format!("can't convert {} to float", type_name(other))),
    }
}

fn to_str(v: &Value) -> String {
    print_value(v)
}

fn arg_n(args: &[Value], n: usize, fname: &str) -> R<()> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {fname}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn compare(a: &Value, b: &Value) -> R<std::cmp::Ordering> {
    use Value::*;
    match (a, b) {
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        (Int(x), Int(y)) => Ok(x.cmp(y)),
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (to_float(a)?, to_float(b)?);
            x.partial_cmp(&y)
                .ok_or_else(|| "incomparable NaN".to_string())
        }
        (Bool(x), Bool(y)) => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".to_string()),
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        let is_letter = c.is_alphanumeric() || c == '_' || c == '\'';
        if is_letter && !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = is_letter;
    }
    out
}

/// Largest width or precision `fmt` reads before giving up on a number, as in Go.
const PRINTF_NUMBER_LIMIT: usize = 1_000_000;

/// Reads the digits of a printf width or precision: `Ok(None)` without digits,
/// `Err(())` for a number Go's `fmt` refuses (over [`PRINTF_NUMBER_LIMIT`] before its
/// last digit). Go then consumes the rest of the format and prints `%!(NOVERB)`, which
/// also keeps a template from padding to gigabytes.
fn printf_number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<Option<usize>, ()> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        let v = n.unwrap_or(0);
        if v > PRINTF_NUMBER_LIMIT {
            chars.for_each(drop);
            return Err(());
        }
        n = Some(v * 10 + d as usize);
        chars.next();
    }
    Ok(n)
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut ai = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut plus = false;
        let mut zero = false;
        let mut space = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let Ok(width) = printf_number(&mut chars) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let Ok(p) = printf_number(&mut chars) else {
                out.push_str("%!(NOVERB)");
                break;
            };
            prec = Some(p.unwrap_or(0).min(100));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(ai) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        ai += 1;
        let num = |f: f64| -> String {
            let mut s = match verb {
                'f' | 'F' => {
                    if f.is_finite() {
                        format!("{:.*}", prec.unwrap_or(6), f)
                    } else {
                        go_format_v(f)
                    }
                }
                'e' => {
                    if f.is_finite() {
                        let s = format!("{:.*e}", prec.unwrap_or(6), f);
                        match s.split_once('e') {
                            Some((m, e)) => {
                                let ev: i32 = e.parse().unwrap_or(0);
                                format!("{m}e{}{:02}", if ev < 0 { '-' } else { '+' }, ev.abs())
                            }
                            None => s,
                        }
                    } else {
                        go_format_v(f)
                    }
                }
                'g' => match prec {
                    Some(p) => go_format_g(f, p),
                    None => go_format_v(f),
                },
                _ => go_format_v(f),
            };
            if plus && f >= 0.0 && !s.starts_with('+') {
                s.insert(0, '+');
            } else if space && f >= 0.0 {
                s.insert(0, ' ');
            }
            s
        };
        let s = match (verb, arg) {
            ('d', Value::Int(i)) => {
                if plus && *i >= 0 {
                    format!("+{i}")
                } else {
                    i.to_string()
                }
            }
            ('d', Value::Float(f)) => format!("%!d(float64={})", go_format_v(*f)),
            ('f' | 'F' | 'e' | 'g', Value::Float(f)) => num(*f),
            ('f' | 'F' | 'e' | 'g', Value::Int(i)) => format!("%!{verb}(int={i})"),
            ('v', Value::Float(f)) => num(*f),
            ('s' | 'v', v) => {
                let s = to_str(v);
                match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            ('q', Value::Str(s)) => format!("{s:?}"),
            ('t', Value::Bool(b)) => b.to_string(),
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('X', Value::Int(i)) => format!("{i:X}"),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            (v, a) => format!("%!{v}({}={})", type_name(a), to_str(a)),
        };
        let w = width.unwrap_or(0);
        let len = s.chars().count();
        if len < w {
            let pad = w - len;
            if minus {
                out.push_str(&s);
                out.extend(std::iter::repeat_n(' ', pad));
            } else if zero && !matches!(arg, Value::Str(_)) {
                let (sign, digits) = match s.strip_prefix('-') {
                    Some(d) => ("-", d.to_string()),
                    None => ("", s.clone()),
                };
                out.push_str(sign);
                out.extend(std::iter::repeat_n('0', pad));
                out.push_str(&digits);
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&s);
            }
        } else {
            out.push_str(&s);
        }
    }
    if ai < args.len() {
        let extra: Vec<String> = args
            .get(ai..)
            .unwrap_or(&[])
            .iter()
            .map(|a| format!("{}={}", type_name(a), to_str(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn regex(p: &str) -> R<regex::Regex> {
    crate::model::goregex::compile(p).map_err(|e| format!("error parsing regexp: {e}"))
}

fn sample_of(v: &Value, fname: &str) -> R<QuerySample> {
    match v {
        Value::Sample(s) => Ok(s.clone()),
        other => Err(format!(
            "error calling {fname}: wrong type for value; expected *template.sample; got {}",
            type_name(other)
        )),
    }
}

impl Exec<'_> {
    pub fn run(&mut self, nodes: &[Node], dot: &Value) -> R<()> {
        for n in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err("template execution exceeded the step limit".to_string());
            }
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&print_value(&v));
                    }
                }
                Node::If(p, a, b) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let r = if truth(&v) {
                        self.run(a, dot)
                    } else {
                        self.run(b, dot)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::With(p, a, b) => {
                    let mark = self.vars.len();
                    let v = self.pipe(p, dot)?;
                    let r = if truth(&v) {
                        self.run(a, &v)
                    } else {
                        self.run(b, dot)
                    };
                    self.vars.truncate(mark);
                    r?;
                }
                Node::Range(p, body, else_body) => {
                    let mark = self.vars.len();
                    let decl = p.decl.clone();
                    let inner = Pipe {
                        decl: Vec::new(),
                        assign: false,
                        cmds: p.cmds.clone(),
                    };
                    let v = self.pipe(&inner, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, e)| (Value::Int(i as i64), e))
                            .collect(),
                        Value::Map(m) => m.into_iter().map(|(k, e)| (Value::Str(k), e)).collect(),
                        Value::Int(n) => (0..n.max(0))
                            .map(|i| (Value::Int(i), Value::Int(i)))
                            .collect(),
                        Value::Nil => Vec::new(),
                        other => {
                            return Err(format!("range can't iterate over {}", print_value(&other)))
                        }
                    };
                    if items.is_empty() {
                        self.run(else_body, dot)?;
                    }
                    for (k, e) in items {
                        let inner_mark = self.vars.len();
                        match decl.as_slice() {
                            [] => {}
                            [one] => self.vars.push((one.clone(), e.clone())),
                            [a, b, ..] => {
                                self.vars.push((a.clone(), k));
                                self.vars.push((b.clone(), e.clone()));
                            }
                        }
                        let r = self.run(body, &e);
                        self.vars.truncate(inner_mark);
                        r?;
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> R<Value> {
        let mut prev: Option<Value> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, dot, prev)?);
        }
        let v = prev.unwrap_or(Value::Nil);
        if let Some(name) = p.decl.first() {
            if p.assign {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| format!("undefined variable: {name}"))?;
                slot.1 = v.clone();
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn chain(&self, mut v: Value, chain: &[String]) -> R<Value> {
        for f in chain {
            v = field(&v, f)?;
        }
        Ok(v)
    }

    fn operand(&mut self, a: &Arg, dot: &Value) -> R<Value> {
        match a {
            Arg::Field(c) => self.chain(dot.clone(), c),
            Arg::Var(n, c) => {
                let v = self.lookup(n)?;
                self.chain(v, c)
            }
            Arg::Ident(name) => self.call(name, Vec::new()),
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Int(i) => Ok(Value::Int(*i)),
            Arg::Float(f) => Ok(Value::Float(*f)),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Ok(Value::Nil),
            Arg::Sub(p, c) => {
                let v = self.pipe(p, dot)?;
                self.chain(v, c)
            }
        }
    }

    fn command(&mut self, cmd: &[Arg], dot: &Value, prev: Option<Value>) -> R<Value> {
        let Some(first) = cmd.first() else {
            return Err("empty command".to_string());
        };
        if let Arg::Ident(name) = first {
            if matches!(name.as_str(), "and" | "or") {
                return self.and_or(name, cmd.get(1..).unwrap_or(&[]), dot, prev);
            }
            let mut args = Vec::new();
            for a in cmd.get(1..).unwrap_or(&[]) {
                args.push(self.operand(a, dot)?);
            }
            if let Some(p) = prev {
                args.push(p);
            }
            return self.call(name, args);
        }
        if cmd.len() > 1 || prev.is_some() {
            return Err(format!(
                "can't give argument to non-function {}",
                describe(first)
            ));
        }
        self.operand(first, dot)
    }

    fn and_or(&mut self, name: &str, args: &[Arg], dot: &Value, prev: Option<Value>) -> R<Value> {
        let mut last = Value::Nil;
        let total = args.len() + usize::from(prev.is_some());
        if total == 0 {
            return Err(format!(
                "wrong number of args for {name}: want at least 1 got 0"
            ));
        }
        for a in args {
            last = self.operand(a, dot)?;
            if (name == "and") != truth(&last) {
                return Ok(last);
            }
        }
        if let Some(p) = prev {
            last = p;
        }
        Ok(last)
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> R<Value> {
        let one = |args: &[Value]| -> R<Value> {
            arg_n(args, 1, name)?;
            Ok(args.first().cloned().unwrap_or(Value::Nil))
        };
        let float1 = |args: &[Value]| -> R<f64> { to_float(&one(args)?) };
        Ok(match name {
            "humanize" => Value::Str(humanize(float1(&args)?)),
            "humanize1024" => Value::Str(humanize1024(float1(&args)?)),
            "humanizeDuration" => Value::Str(humanize_duration(float1(&args)?)),
            "humanizePercentage" => Value::Str(humanize_percentage(float1(&args)?)),
            "humanizeTimestamp" => Value::Str(humanize_timestamp(float1(&args)?)),
            "toUpper" => Value::Str(to_str(&one(&args)?).to_uppercase()),
            "toLower" => Value::Str(to_str(&one(&args)?).to_lowercase()),
            "title" => Value::Str(title(&to_str(&one(&args)?))),
            "safeHtml" => Value::Str(to_str(&one(&args)?)),
            "stripPort" => {
                let s = to_str(&one(&args)?);
                Value::Str(match s.rsplit_once(':') {
                    Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => {
                        h.trim_start_matches('[').trim_end_matches(']').to_string()
                    }
                    _ => s,
                })
            }
            "stripDomain" => {
                let s = to_str(&one(&args)?);
                let (host, port) = match s.rsplit_once(':') {
                    Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => {
                        (h.to_string(), format!(":{p}"))
                    }
                    _ => (s.clone(), String::new()),
                };
                if host.parse::<std::net::IpAddr>().is_ok() {
                    Value::Str(s)
                } else {
                    Value::Str(format!("{}{port}", host.split('.').next().unwrap_or("")))
                }
            }
            "match" => {
                arg_n(&args, 2, name)?;
                let re = regex(&to_str(args.first().unwrap_or(&Value::Nil)))?;
                Value::Bool(re.is_match(&to_str(args.get(1).unwrap_or(&Value::Nil))))
            }
            "reReplaceAll" => {
                arg_n(&args, 3, name)?;
                let re = regex(&to_str(args.first().unwrap_or(&Value::Nil)))?;
                let repl = to_str(args.get(1).unwrap_or(&Value::Nil));
                let text = to_str(args.get(2).unwrap_or(&Value::Nil));
                Value::Str(re.replace_all(&text, repl.as_str()).into_owned())
            }
            "printf" => {
                let Some(f) = args.first() else {
                    return Err("wrong number of args for printf: want at least 1 got 0".into());
                };
                Value::Str(sprintf(&to_str(f), args.get(1..).unwrap_or(&[])))
            }
            "print" => {
                let mut s = String::new();
                for (i, a) in args.iter().enumerate() {
                    let is_str = matches!(a, Value::Str(_));
                    let prev_str = i > 0 && matches!(args.get(i - 1), Some(Value::Str(_)));
                    if i > 0 && !is_str && !prev_str {
                        s.push(' ');
                    }
                    s.push_str(&to_str(a));
                }
                Value::Str(s)
            }
            "println" => {
                let parts: Vec<String> = args.iter().map(to_str).collect();
                Value::Str(format!("{}\n", parts.join(" ")))
            }
            "len" => match one(&args)? {
                Value::Str(s) => Value::Int(s.len() as i64),
                Value::List(l) => Value::Int(l.len() as i64),
                Value::Map(m) => Value::Int(m.len() as i64),
                other => return Err(format!("len of type {}", type_name(&other))),
            },
            "index" => {
                let mut it = args.into_iter();
                let mut v = it.next().ok_or("wrong number of args for index")?;
                for k in it {
                    v = match (&v, &k) {
                        (Value::Map(m), k) => m
                            .get(&to_str(k))
                            .cloned()
                            .unwrap_or(Value::Str(String::new())),
                        (Value::List(l), Value::Int(i)) => usize::try_from(*i)
                            .ok()
                            .and_then(|i| l.get(i).cloned())
                            .ok_or_else(|| {
                                format!("error calling index: index out of range: {i}")
                            })?,
                        _ => return Err("error calling index: cannot index".to_string()),
                    };
                }
                v
            }
            "not" => Value::Bool(!truth(&one(&args)?)),
            "eq" => {
                let Some(a) = args.first() else {
                    return Err("missing argument for comparison".into());
                };
                let mut any = false;
                for b in args.get(1..).unwrap_or(&[]) {
                    if compare(a, b)? == std::cmp::Ordering::Equal {
                        any = true;
                    }
                }
                Value::Bool(any)
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                arg_n(&args, 2, name)?;
                let o = compare(
                    args.first().unwrap_or(&Value::Nil),
                    args.get(1).unwrap_or(&Value::Nil),
                )?;
                use std::cmp::Ordering::*;
                Value::Bool(match name {
                    "ne" => o != Equal,
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                })
            }
            "query" => {
                let q = to_str(&one(&args)?);
                let f = self.query.ok_or_else(|| {
                    "error calling query: queries are not available here".to_string()
                })?;
                let res = f(&q).map_err(|e| format!("error calling query: {e}"))?;
                Value::List(res.into_iter().map(Value::Sample).collect())
            }
            "first" => match one(&args)? {
                Value::List(l) => l
                    .into_iter()
                    .next()
                    .ok_or("error calling first: first() called on vector with no elements")?,
                other => {
                    return Err(format!(
                        "error calling first: wrong type {}",
                        type_name(&other)
                    ))
                }
            },
            "label" => {
                arg_n(&args, 2, name)?;
                let l = to_str(args.first().unwrap_or(&Value::Nil));
                let s = sample_of(args.get(1).unwrap_or(&Value::Nil), name)?;
                Value::Str(s.labels.get(&l).cloned().unwrap_or_default())
            }
            "value" => Value::Float(sample_of(&one(&args)?, name)?.value),
            "strvalue" => {
                let s = sample_of(&one(&args)?, name)?;
                Value::Str(s.labels.get("__value__").cloned().unwrap_or_default())
            }
            "sortByLabel" => {
                arg_n(&args, 2, name)?;
                let l = to_str(args.first().unwrap_or(&Value::Nil));
                let mut list = match args.get(1) {
                    Some(Value::List(v)) => v.clone(),
                    _ => return Err("error calling sortByLabel: expected a query result".into()),
                };
                list.sort_by(|a, b| {
                    let la = match a {
                        Value::Sample(s) => s.labels.get(&l).cloned().unwrap_or_default(),
                        _ => String::new(),
                    };
                    let lb = match b {
                        Value::Sample(s) => s.labels.get(&l).cloned().unwrap_or_default(),
                        _ => String::new(),
                    };
                    la.cmp(&lb)
                });
                Value::List(list)
            }
            "args" => {
                let mut m = BTreeMap::new();
                for (i, a) in args.into_iter().enumerate() {
                    m.insert(format!("arg{i}"), a);
                }
                Value::Map(m)
            }
            "externalURL" => Value::Str(self.external_url.to_string()),
            "pathPrefix" => {
                let u = self.external_url;
                let path = u
                    .split_once("://")
                    .map(|(_, r)| r.find('/').map(|i| r.get(i..).unwrap_or("")).unwrap_or(""))
                    .unwrap_or("");
                Value::Str(path.trim_end_matches('/').to_string())
            }
            "graphLink" | "tableLink" => {
                let q = to_str(&one(&args)?);
                let tab = if name == "graphLink" { 0 } else { 1 };
                Value::Str(format!(
                    "/graph?g0.expr={}&g0.tab={tab}",
                    crate::notifier::query_escape(&q)
                ))
            }
            "parseDuration" => {
                let s = to_str(&one(&args)?);
                let ms = crate::model::time::parse_duration_ms(&s).ok_or_else(|| {
                    format!("error calling parseDuration: not a valid duration string: {s:?}")
                })?;
                Value::Float(ms as f64 / 1000.0)
            }
            "html" | "js" | "urlquery" => {
                let s: String = args.iter().map(to_str).collect();
                Value::Str(match name {
                    "urlquery" => crate::notifier::query_escape(&s),
                    "html" => s
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                        .replace('"', "&#34;")
                        .replace('\'', "&#39;"),
                    _ => s,
                })
            }
            _ => return Err(format!("function {name:?} not defined")),
        })
    }
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Field(c) => format!(".{}", c.join(".")),
        Arg::Var(n, c) if c.is_empty() => n.clone(),
        Arg::Var(n, c) => format!("{n}.{}", c.join(".")),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Int(i) => i.to_string(),
        Arg::Float(f) => go_format_v(*f),
        Arg::Bool(b) => b.to_string(),
        Arg::Nil => "nil".to_string(),
        Arg::Ident(n) => n.clone(),
        Arg::Sub(..) => "(pipeline)".to_string(),
    }
}

/// Every function name templates may call.
pub const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toUpper",
    "toLower",
    "title",
    "safeHtml",
    "stripPort",
    "stripDomain",
    "match",
    "reReplaceAll",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "args",
    "externalURL",
    "pathPrefix",
    "graphLink",
    "tableLink",
    "parseDuration",
];

/// The first function name in `nodes` that is not defined.
pub fn unknown_function(nodes: &[Node]) -> Option<String> {
    fn in_pipe(p: &Pipe) -> Option<String> {
        for cmd in &p.cmds {
            for a in cmd {
                match a {
                    Arg::Ident(n) if !FUNCTIONS.contains(&n.as_str()) => return Some(n.clone()),
                    Arg::Sub(sp, _) => {
                        if let Some(n) = in_pipe(sp) {
                            return Some(n);
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }
    for n in nodes {
        let found = match n {
            Node::Text(_) => None,
            Node::Action(p) => in_pipe(p),
            Node::If(p, a, b) | Node::Range(p, a, b) | Node::With(p, a, b) => in_pipe(p)
                .or_else(|| unknown_function(a))
                .or_else(|| unknown_function(b)),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}
