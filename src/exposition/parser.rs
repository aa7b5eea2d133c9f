//! The line-oriented pull parser shared by both formats.

use std::borrow::Cow;

use super::float::parse_seconds_to_millis;
use super::float::{format_openmetrics_float, parse_go_float, parse_millis};
use super::{Entry, Exemplar, Format, MetricType, ParseError, SeriesEntry};

/// What a parser carries from one part of a body to the next, so a body can be parsed
/// in consecutive pieces that each end at a line boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParserState {
    /// Lines consumed so far.
    pub line: u64,
    /// The type from the last `# TYPE` line.
    pub kind: MetricType,
    /// Whether `# EOF` was seen (OpenMetrics).
    pub seen_eof: bool,
}

/// A pull parser over an exposition body. Iterate it (or call [`Parser::next_entry`])
/// to get entries; after the first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    format: Format,
    state: ParserState,
    is_final: bool,
    done: bool,
    /// The previous sample line's series, when it ends with a label set: a line that
    /// starts with the same text followed by whitespace has the same name and labels,
    /// so only its value and timestamp need parsing.
    prev: Option<PrevSeries<'a>>,
    /// Whether the last sample line started with the hint it was given.
    hint_matched: bool,
}

/// Name and labels of the previous sample line.
#[derive(Debug, Clone, Copy)]
struct PrevSeries<'a> {
    series: &'a [u8],
    name_raw: &'a [u8],
    name_quoted: bool,
    labels_raw: &'a [u8],
}

/// Character classes: bit 0 = label name start, bit 1 = label name char, bit 2 =
/// metric name start, bit 3 = metric name char. (Built at compile time, where an
/// out-of-range index would be a compile error.)
#[allow(clippy::indexing_slicing)]
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut c = 0;
        if alpha {
            c |= 1 | 2 | 4 | 8;
        }
        if digit {
            c |= 2 | 8;
        }
        if b == b':' {
            c |= 4 | 8;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[inline(always)]
fn class(b: u8) -> u8 {
    // Indexing a 256-entry table with a u8 cannot go out of bounds.
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

#[inline(always)]
fn is_name_start(b: u8) -> bool {
    class(b) & 4 != 0
}

#[inline(always)]
fn is_name_char(b: u8) -> bool {
    class(b) & 8 != 0
}

#[inline(always)]
fn is_label_start(b: u8) -> bool {
    class(b) & 1 != 0
}

#[inline(always)]
fn is_label_char(b: u8) -> bool {
    class(b) & 2 != 0
}

/// Index of the first byte at or after `i` that is not in class `mask`.
#[inline(always)]
fn skip_class(line: &[u8], mut i: usize, mask: u8) -> usize {
    while let Some(&b) = line.get(i) {
        if class(b) & mask == 0 {
            break;
        }
        i += 1;
    }
    i
}

#[inline]
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Removes the escapes `\\`, `\"` and `\n`; any other backslash sequence is kept.
pub(crate) fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Help text of the text format: only `\\` and `\n` are escapes.
fn unescape_help(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                    continue;
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Why a line failed, before the line number is attached.
type Reason = Cow<'static, str>;

/// Result of scanning one line.
type LineResult<'a> = Result<Entry<'a>, Reason>;

/// Scans a quoted string starting at `line[i] == '"'`; returns the index just after
/// the closing quote. The content must be valid UTF-8.
#[inline]
fn scan_quoted(line: &[u8], i: usize) -> Result<usize, Reason> {
    let mut j = i + 1;
    let mut high = 0u8;
    loop {
        match line.get(j) {
            Some(b'"') => break,
            Some(b'\\') => {
                // A backslash escapes the next byte, whatever it is.
                match line.get(j + 1) {
                    Some(&b) => high |= b,
                    None => return Err("unterminated quoted string".into()),
                }
                j += 2;
            }
            Some(&b) => {
                high |= b;
                j += 1;
            }
            None => return Err("unterminated quoted string".into()),
        }
    }
    if high >= 0x80 && std::str::from_utf8(line.get(i + 1..j).unwrap_or(&[])).is_err() {
        return Err("invalid UTF-8 in quoted string".into());
    }
    Ok(j + 1)
}

/// `&str` of bytes already checked to be ASCII or valid UTF-8.
#[inline]
fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// Result of scanning a label set.
struct LabelSet {
    /// Index just after `}`.
    end: usize,
    /// The quoted metric name found inside the braces (without the quotes).
    quoted_name: Option<(usize, usize)>,
}

/// Scans `{...}` with `line[open] == '{'`.
fn scan_label_set(
    line: &[u8],
    open: usize,
    ws: bool,
    exemplar: bool,
    strict_commas: bool,
) -> Result<LabelSet, Reason> {
    let skip = |mut i: usize| {
        if ws {
            while line.get(i).is_some_and(|&b| is_ws(b)) {
                i += 1;
            }
        }
        i
    };
    let mut quoted_name = None;
    let mut i = skip(open + 1);
    loop {
        let start = i;
        let quoted = match line.get(i) {
            Some(b'}') => {
                return Ok(LabelSet {
                    end: i + 1,
                    quoted_name,
                })
            }
            Some(&b) if is_label_start(b) => {
                i = skip_class(line, i + 1, 2);
                false
            }
            Some(b'"') => {
                i = scan_quoted(line, i)?;
                true
            }
            Some(_) => return Err("expected label name".into()),
            None => return Err("unterminated label set".into()),
        };
        let tok_end = i;
        i = skip(i);
        if quoted && matches!(line.get(i), Some(b',' | b'}')) {
            if exemplar {
                return Err("expected label name in exemplar".into());
            }
            if quoted_name.is_some() {
                return Err("metric name already set".into());
            }
            quoted_name = Some((start + 1, tok_end - 1));
            if line.get(i) == Some(&b',') {
                i = skip(i + 1);
            }
            continue;
        }
        if line.get(i) != Some(&b'=') {
            return Err("expected equal sign after label name".into());
        }
        i = skip(i + 1);
        if line.get(i) != Some(&b'"') {
            return Err("expected quoted label value".into());
        }
        i = skip(scan_quoted(line, i)?);
        match line.get(i) {
            Some(b',') => i = skip(i + 1),
            Some(b'}') => {}
            _ if !strict_commas => {}
            _ => return Err("expected comma or closing brace".into()),
        }
    }
}

/// Iterates label pairs of a validated label set (the text between the braces),
/// skipping a quoted metric name.
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    s: &'a [u8],
    i: usize,
    kind: MetricType,
}

impl<'a> LabelIter<'a> {
    pub(crate) fn new(raw: &'a [u8], kind: MetricType) -> Self {
        LabelIter { s: raw, i: 0, kind }
    }

    fn skip(&mut self) {
        while self.s.get(self.i).is_some_and(|&b| is_ws(b) || b == b',') {
            self.i += 1;
        }
    }

    fn quoted(&mut self) -> Option<&'a str> {
        let end = scan_quoted(self.s, self.i).ok()?;
        let inner = self.s.get(self.i + 1..end - 1)?;
        self.i = end;
        Some(as_str(inner))
    }
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.skip();
            let name: Cow<'a, str> = match self.s.get(self.i)? {
                b'"' => unescape(self.quoted()?),
                _ => {
                    let start = self.i;
                    while self.s.get(self.i).is_some_and(|&b| is_label_char(b)) {
                        self.i += 1;
                    }
                    if self.i == start {
                        return None;
                    }
                    Cow::Borrowed(as_str(self.s.get(start..self.i)?))
                }
            };
            while self.s.get(self.i).is_some_and(|&b| is_ws(b)) {
                self.i += 1;
            }
            if self.s.get(self.i) != Some(&b'=') {
                // A quoted metric name: not a label.
                continue;
            }
            self.i += 1;
            while self.s.get(self.i).is_some_and(|&b| is_ws(b)) {
                self.i += 1;
            }
            let value = unescape(self.quoted()?);
            let value = normalize_value(self.kind, &name, value);
            return Some((name, value));
        }
    }
}

/// `le` of histograms and `quantile` of summaries become canonical float text.
fn normalize_value<'a>(kind: MetricType, name: &str, value: Cow<'a, str>) -> Cow<'a, str> {
    let applies = (kind == MetricType::Histogram && name == "le")
        || (kind == MetricType::Summary && name == "quantile");
    if !applies {
        return value;
    }
    match parse_go_float(value.as_bytes()) {
        Some(f) => {
            let canon = format_openmetrics_float(f);
            if canon == value {
                value
            } else {
                Cow::Owned(canon)
            }
        }
        None => value,
    }
}

impl<'a> Parser<'a> {
    /// A parser for a complete body.
    pub fn new(buf: &'a [u8], format: Format) -> Self {
        Self::resume(buf, format, ParserState::default(), true)
    }

    /// A parser for one piece of a body that ends at a line boundary, continuing from
    /// `state` (see [`Parser::state`]). `is_final` says whether this piece ends the
    /// body (OpenMetrics then requires `# EOF` to have been seen).
    pub fn resume(buf: &'a [u8], format: Format, state: ParserState, is_final: bool) -> Self {
        Parser {
            buf,
            pos: 0,
            format,
            state,
            is_final,
            done: false,
            prev: None,
            hint_matched: false,
        }
    }

    /// Whether the last sample line returned had the series text of the hint given
    /// to [`Parser::next_entry_hinted`].
    pub fn hint_matched(&self) -> bool {
        self.hint_matched
    }

    /// The state to continue with on the next piece of the body.
    pub fn state(&self) -> ParserState {
        self.state
    }

    /// Bytes of the input consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn error(&mut self, line: u64, reason: Reason, text: &[u8]) -> ParseError {
        self.done = true;
        let snippet = String::from_utf8_lossy(text.get(..120).unwrap_or(text));
        let more = if text.len() > 120 { "..." } else { "" };
        ParseError::Syntax {
            line,
            reason: if text.is_empty() {
                reason.into_owned()
            } else {
                format!("{reason} in {snippet:?}{more}")
            },
        }
    }

    /// The next entry, `None` at the end of the input (or after an error).
    #[inline]
    pub fn next_entry(&mut self) -> Option<Result<Entry<'a>, ParseError>> {
        self.next_entry_hinted(&[])
    }

    /// [`Parser::next_entry`] with a guess at the next sample line's series text:
    /// `hint` must be the series text of an earlier sample line that this parser's
    /// format accepted (the caller's cache key), ending with a label set. When the
    /// line starts with it (followed by the separator), the label set is not scanned
    /// again. The result is the same as without the hint.
    pub fn next_entry_hinted(&mut self, hint: &[u8]) -> Option<Result<Entry<'a>, ParseError>> {
        loop {
            if self.done {
                return None;
            }
            let buf = self.buf;
            if self.pos >= buf.len() {
                self.done = true;
                if self.is_final && self.format == Format::OpenMetrics && !self.state.seen_eof {
                    let line = self.state.line + 1;
                    return Some(Err(self.error(
                        line,
                        "data does not end with # EOF".into(),
                        &[],
                    )));
                }
                return None;
            }
            let rest = buf.get(self.pos..).unwrap_or(&[]);
            let (line, has_nl) = match memchr::memchr(b'\n', rest) {
                Some(n) => (rest.get(..n).unwrap_or(&[]), true),
                None => (rest, false),
            };
            self.pos += line.len() + usize::from(has_nl);
            self.state.line += 1;
            let lineno = self.state.line;
            if self.state.seen_eof {
                return Some(Err(self.error(
                    lineno,
                    "unexpected data after # EOF".into(),
                    line,
                )));
            }
            let res = match self.format {
                Format::PrometheusText => match self.text_line(line, lineno, hint) {
                    Ok(Some(e)) => Ok(e),
                    Ok(None) => continue,
                    Err(r) => Err(r),
                },
                Format::OpenMetrics => self.om_line(line, lineno, has_nl, hint),
            };
            return Some(match res {
                Ok(e) => {
                    if !matches!(e, Entry::Series(_)) {
                        // Metadata may change how labels read (`le` normalisation).
                        self.prev = None;
                    }
                    Ok(e)
                }
                Err(r) => Err(self.error(lineno, r, line)),
            });
        }
    }

    // ---- Prometheus text format -------------------------------------------------

    fn text_line(
        &mut self,
        line: &'a [u8],
        lineno: u64,
        hint: &[u8],
    ) -> Result<Option<Entry<'a>>, Reason> {
        let mut i = 0;
        while line.get(i).is_some_and(|&b| is_ws(b)) {
            i += 1;
        }
        match line.get(i) {
            None => Ok(None),
            Some(b'#') => self.text_comment(line, i).map(Some),
            Some(_) => self
                .series(line, i, lineno, Format::PrometheusText, hint)
                .map(Some),
        }
    }

    fn text_comment(&mut self, line: &'a [u8], hash: usize) -> Result<Entry<'a>, Reason> {
        let comment = Entry::Comment(String::from_utf8_lossy(line.get(hash..).unwrap_or(&[])));
        let mut i = hash + 1;
        if !line.get(i).is_some_and(|&b| is_ws(b)) {
            return Ok(comment);
        }
        while line.get(i).is_some_and(|&b| is_ws(b)) {
            i += 1;
        }
        let kw = line.get(i..i + 4);
        let is_help = kw == Some(b"HELP");
        let is_type = kw == Some(b"TYPE");
        if !(is_help || is_type) || !line.get(i + 4).is_some_and(|&b| is_ws(b)) {
            return Ok(comment);
        }
        i += 4;
        while line.get(i).is_some_and(|&b| is_ws(b)) {
            i += 1;
        }
        let what = if is_help { "HELP" } else { "TYPE" };
        let (name, after) = meta_name(line, i)
            .ok_or_else(|| -> Reason { format!("expected metric name after {what}").into() })?;
        let text: &[u8] = match line.get(after) {
            None => &[],
            Some(&b) if is_ws(b) => line.get(after + 1..).unwrap_or(&[]),
            Some(_) => return Err(format!("expected text after {what} metric name").into()),
        };
        let text = std::str::from_utf8(text)
            .map_err(|_| -> Reason { format!("{what} text is not valid UTF-8").into() })?;
        if is_help {
            Ok(Entry::Help {
                name,
                text: unescape_help(text),
            })
        } else {
            let kind = match text {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "summary" => MetricType::Summary,
                "untyped" => MetricType::Unknown,
                other => return Err(format!("invalid metric type {other:?}").into()),
            };
            self.state.kind = kind;
            Ok(Entry::Type { name, kind })
        }
    }

    // ---- OpenMetrics ------------------------------------------------------------

    fn om_line(
        &mut self,
        line: &'a [u8],
        lineno: u64,
        has_nl: bool,
        hint: &[u8],
    ) -> LineResult<'a> {
        if line.first() == Some(&b'#') {
            return self.om_comment(line, has_nl);
        }
        if !has_nl {
            return Err("data does not end with # EOF".into());
        }
        self.series(line, 0, lineno, Format::OpenMetrics, hint)
    }

    fn om_comment(&mut self, line: &'a [u8], has_nl: bool) -> LineResult<'a> {
        if line == b"# EOF" {
            // Anything after it is reported when the next line is read.
            self.state.seen_eof = true;
            return Ok(Entry::Eof);
        }
        if !has_nl {
            return Err("data does not end with # EOF".into());
        }
        let rest = line.strip_prefix(b"# ").ok_or("expected a space after #")?;
        let (kw, body) = if let Some(b) = rest.strip_prefix(b"HELP ") {
            ("HELP", b)
        } else if let Some(b) = rest.strip_prefix(b"TYPE ") {
            ("TYPE", b)
        } else if let Some(b) = rest.strip_prefix(b"UNIT ") {
            ("UNIT", b)
        } else {
            return Err("expected HELP, TYPE, UNIT or EOF after #".into());
        };
        let (name, after) = meta_name(body, 0)
            .ok_or_else(|| -> Reason { format!("expected metric name after {kw}").into() })?;
        if body.get(after) != Some(&b' ') {
            return Err(format!("expected text in {kw}").into());
        }
        let text = std::str::from_utf8(body.get(after + 1..).unwrap_or(&[]))
            .map_err(|_| -> Reason { format!("{kw} text is not valid UTF-8").into() })?;
        match kw {
            "HELP" => Ok(Entry::Help {
                name,
                text: unescape(text),
            }),
            "TYPE" => {
                let kind = match text {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "gaugehistogram" => MetricType::GaugeHistogram,
                    "summary" => MetricType::Summary,
                    "info" => MetricType::Info,
                    "stateset" => MetricType::StateSet,
                    "unknown" => MetricType::Unknown,
                    other => return Err(format!("invalid metric type {other:?}").into()),
                };
                self.state.kind = kind;
                Ok(Entry::Type { name, kind })
            }
            _ => {
                if !text.is_empty() {
                    let n: &str = &name;
                    let ok = n
                        .strip_suffix(text)
                        .is_some_and(|prefix| prefix.ends_with('_'));
                    if !ok {
                        return Err(format!("unit {text:?} is not a suffix of metric {n:?}").into());
                    }
                }
                Ok(Entry::Unit { name, unit: text })
            }
        }
    }

    // ---- Sample lines (both formats) ----------------------------------------------

    fn series(
        &mut self,
        line: &'a [u8],
        start: usize,
        lineno: u64,
        format: Format,
        hint: &[u8],
    ) -> LineResult<'a> {
        let om = format == Format::OpenMetrics;
        let ws = !om;
        let rest = line.get(start..).unwrap_or(&[]);
        let followed = |text: &[u8]| {
            rest.starts_with(text)
                && rest
                    .get(text.len())
                    .is_some_and(|&b| is_ws(b) && (ws || b == b' '))
        };
        let mut repeat = self.prev.filter(|p| followed(p.series));
        let is_repeat = repeat.is_some();
        self.hint_matched = false;
        if !hint.is_empty() && hint.last() == Some(&b'}') && followed(hint) {
            self.hint_matched = true;
            if repeat.is_none() {
                repeat = rest.get(..hint.len()).and_then(|t| hinted_head(t, om));
                self.prev = repeat;
            }
        }
        let (series, name_raw, name_quoted, labels_raw, mut i) = match repeat {
            Some(p) => (
                p.series,
                p.name_raw,
                p.name_quoted,
                p.labels_raw,
                start + p.series.len(),
            ),
            None => {
                let head = series_head(line, start, om)?;
                self.prev = (head.0.last() == Some(&b'}')).then_some(PrevSeries {
                    series: head.0,
                    name_raw: head.1,
                    name_quoted: head.2,
                    labels_raw: head.3,
                });
                head
            }
        };
        // Value.
        let value_start;
        if om {
            if line.get(i) != Some(&b' ') {
                return Err("expected a space and a value after the metric".into());
            }
            value_start = i + 1;
            i = value_start;
            while line.get(i).is_some_and(|&b| b != b' ') {
                i += 1;
            }
        } else {
            while line.get(i).is_some_and(|&b| is_ws(b)) {
                i += 1;
            }
            value_start = i;
            while line.get(i).is_some_and(|&b| !is_ws(b) && b != b'{') {
                i += 1;
            }
        }
        let vtext = line.get(value_start..i).unwrap_or(&[]);
        if vtext.is_empty() {
            return Err("expected value after metric".into());
        }
        let value = parse_go_float(vtext).ok_or_else(|| -> Reason {
            format!("invalid value {:?}", String::from_utf8_lossy(vtext)).into()
        })?;
        // Timestamp and exemplar.
        let mut timestamp = None;
        let mut exemplar = None;
        if om {
            if line.get(i).is_some() && !line.get(i..).is_some_and(|r| r.starts_with(b" # {")) {
                let ts_start = i + 1;
                i = ts_start;
                while line.get(i).is_some_and(|&b| b != b' ') {
                    i += 1;
                }
                let ttext = line.get(ts_start..i).unwrap_or(&[]);
                timestamp = Some(parse_seconds_to_millis(ttext).ok_or_else(|| -> Reason {
                    format!("invalid timestamp {:?}", String::from_utf8_lossy(ttext)).into()
                })?);
            }
            if line.get(i).is_some() {
                if !line.get(i..).is_some_and(|r| r.starts_with(b" # {")) {
                    return Err("expected end of line or exemplar after timestamp".into());
                }
                exemplar = Some(parse_exemplar(line, i + 3)?);
            }
        } else {
            while line.get(i).is_some_and(|&b| is_ws(b)) {
                i += 1;
            }
            if line.get(i).is_some() {
                let ts_start = i;
                while line.get(i).is_some_and(|b| b.is_ascii_digit()) {
                    i += 1;
                }
                let ttext = line.get(ts_start..i).unwrap_or(&[]);
                if ttext.is_empty() {
                    return Err("expected timestamp or end of line after value".into());
                }
                timestamp = Some(parse_millis(ttext).ok_or("timestamp out of range")?);
                while line.get(i).is_some_and(|&b| is_ws(b)) {
                    i += 1;
                }
                if line.get(i).is_some() {
                    return Err("expected end of line after timestamp".into());
                }
            }
        }
        Ok(Entry::Series(SeriesEntry {
            series,
            name_raw,
            name_quoted,
            labels_raw,
            repeats_previous: is_repeat,
            kind: self.state.kind,
            value,
            timestamp,
            exemplar,
            line: lineno,
        }))
    }
}

/// Name and label set of `series`, a series text known to be valid in the format
/// (it equals an earlier accepted one) that starts with a plain metric name and ends
/// with its label set; `None` for other shapes.
fn hinted_head(series: &[u8], om: bool) -> Option<PrevSeries<'_>> {
    if !is_name_start(*series.first()?) || series.last() != Some(&b'}') {
        return None;
    }
    // A valid text that starts with a name is the name, blanks (text format only) and
    // the label set, so its first '{' opens the label set: found with one vectorised
    // search rather than a byte-by-byte scan of the name.
    let j = memchr::memchr(b'{', series)?;
    let mut name_end = j;
    if !om {
        while name_end > 1 && series.get(name_end - 1).is_some_and(|&b| is_ws(b)) {
            name_end -= 1;
        }
    }
    if name_end == 0 {
        return None;
    }
    Some(PrevSeries {
        series,
        name_raw: series.get(..name_end)?,
        name_quoted: false,
        labels_raw: series.get(j + 1..series.len() - 1)?,
    })
}

/// Name and label set of a sample line starting at `start`: the series text, the raw
/// name, whether it was quoted, the raw label text and the index after the series.
type SeriesHead<'a> = (&'a [u8], &'a [u8], bool, &'a [u8], usize);

fn series_head(line: &[u8], start: usize, om: bool) -> Result<SeriesHead<'_>, Reason> {
    let ws = !om;
    let mut i = start;
    let mut name: Option<(usize, usize, bool)> = None;
    let mut labels_raw: &[u8] = &[];
    match line.get(i) {
        Some(&b) if is_name_start(b) => {
            i = skip_class(line, i + 1, 8);
            name = Some((start, i, false));
        }
        Some(b'{') => {}
        _ => return Err("expected a metric name or '{' at the start of a sample".into()),
    }
    let mut j = i;
    if ws {
        while line.get(j).is_some_and(|&b| is_ws(b)) {
            j += 1;
        }
    }
    if line.get(j) == Some(&b'{') {
        let set = scan_label_set(line, j, ws, false, om)?;
        if let Some((a, b)) = set.quoted_name {
            if name.is_some() {
                return Err("metric name already set".into());
            }
            name = Some((a, b, true));
        }
        labels_raw = line.get(j + 1..set.end - 1).unwrap_or(&[]);
        i = set.end;
    }
    let Some((na, nb, quoted)) = name else {
        return Err("metric name not set".into());
    };
    Ok((
        line.get(start..i).unwrap_or(&[]),
        line.get(na..nb).unwrap_or(&[]),
        quoted,
        labels_raw,
        i,
    ))
}

/// `# {labels} value [timestamp]` with `line[open] == '{'`, up to the end of the line.
fn parse_exemplar(line: &[u8], open: usize) -> Result<Exemplar<'_>, Reason> {
    let set = scan_label_set(line, open, false, true, true)?;
    let labels_raw = line.get(open + 1..set.end - 1).unwrap_or(&[]);
    let mut i = set.end;
    if line.get(i) != Some(&b' ') {
        return Err("expected a space and a value after exemplar labels".into());
    }
    let vs = i + 1;
    i = vs;
    while line.get(i).is_some_and(|&b| b != b' ') {
        i += 1;
    }
    let vtext = line.get(vs..i).unwrap_or(&[]);
    let value = parse_go_float(vtext).ok_or_else(|| -> Reason {
        format!(
            "invalid exemplar value {:?}",
            String::from_utf8_lossy(vtext)
        )
        .into()
    })?;
    let mut timestamp = None;
    if line.get(i).is_some() {
        let ts = i + 1;
        i = ts;
        while line.get(i).is_some_and(|&b| b != b' ') {
            i += 1;
        }
        let ttext = line.get(ts..i).unwrap_or(&[]);
        timestamp = Some(parse_seconds_to_millis(ttext).ok_or_else(|| -> Reason {
            format!(
                "invalid exemplar timestamp {:?}",
                String::from_utf8_lossy(ttext)
            )
            .into()
        })?);
        if line.get(i).is_some() {
            return Err("expected end of line after exemplar timestamp".into());
        }
    }
    Ok(Exemplar {
        labels_raw,
        value,
        timestamp,
    })
}

/// A metric name in a HELP/TYPE/UNIT line: plain or quoted. Returns it unescaped and
/// the index after it.
fn meta_name(line: &[u8], i: usize) -> Option<(Cow<'_, str>, usize)> {
    match line.get(i)? {
        b'"' => {
            let end = scan_quoted(line, i).ok()?;
            Some((unescape(as_str(line.get(i + 1..end - 1)?)), end))
        }
        &b if is_name_start(b) => {
            let mut j = i + 1;
            while line.get(j).is_some_and(|&b| is_name_char(b)) {
                j += 1;
            }
            Some((Cow::Borrowed(as_str(line.get(i..j)?)), j))
        }
        _ => None,
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry()
    }
}
