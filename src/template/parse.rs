//! Lexing and parsing of template text into a node tree.

/// A node of the template tree.
#[derive(Debug, Clone)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`: prints the result unless it is a declaration.
    Action(Pipe),
    /// `{{ if p }} a {{ else }} b {{ end }}`.
    If(Pipe, Vec<Node>, Vec<Node>),
    /// `{{ range p }} a {{ else }} b {{ end }}`.
    Range(Pipe, Vec<Node>, Vec<Node>),
    /// `{{ with p }} a {{ else }} b {{ end }}`.
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// A pipeline with optional variable declarations.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Declared (`:=`) or assigned (`=`) variable names.
    pub decl: Vec<String>,
    /// Whether this is a plain `=` assignment.
    pub assign: bool,
    /// The commands, each fed the previous one's result as its last argument.
    pub cmds: Vec<Vec<Arg>>,
}

/// An operand of a command.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.A.B` (empty chain = `.`).
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    /// A string literal.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// `true`/`false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(String),
    Pipe,
    LParen,
    RParen(Vec<String>),
    Declare,
    Assign,
    Comma,
}

type PResult<T> = Result<T, (usize, String)>;

struct Action {
    line: usize,
    toks: Vec<Tok>,
}

enum Piece {
    Text(String),
    Action(Action),
}

fn split(text: &str) -> PResult<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut line = 1usize;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let mut t = rest;
            if trim_next {
                t = t.trim_start();
            }
            out.push(Piece::Text(t.to_string()));
            break;
        };
        let mut t = rest.get(..open).unwrap_or("");
        let after = rest.get(open + 2..).unwrap_or("");
        let trim_left = after.starts_with("- ")
            || after.starts_with("-\t")
            || after.starts_with("-\n")
            || after.starts_with("-\r");
        if trim_next {
            t = t.trim_start();
        }
        if trim_left {
            t = t.trim_end();
        }
        line += rest.get(..open).unwrap_or("").matches('\n').count();
        if !t.is_empty() {
            out.push(Piece::Text(t.to_string()));
        }
        let body_start = if trim_left { 1 } else { 0 };
        let body_all = after.get(body_start..).unwrap_or("");
        let (body, consumed, trim_right) =
            find_close(body_all).ok_or((line, "unclosed action".to_string()))?;
        let body_line = line;
        line += body.matches('\n').count();
        let b = body.trim();
        if !(b.starts_with("/*") && b.ends_with("*/")) {
            let toks = lex(b).map_err(|m| (body_line, m))?;
            out.push(Piece::Action(Action {
                line: body_line,
                toks,
            }));
        }
        trim_next = trim_right;
        rest = body_all.get(consumed..).unwrap_or("");
    }
    Ok(out)
}

/// Finds the end of an action body: returns the body, the bytes consumed including the
/// closing delimiter, and whether the close was a trimming ` -}}`.
fn find_close(s: &str) -> Option<(&str, usize, bool)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = *b.get(i)?;
        if let Some(q) = quote {
            if c == b'\\' && q != b'`' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'`' | b'\'' => quote = Some(c),
            b'}' if b.get(i + 1) == Some(&b'}') => {
                let trim = i >= 2
                    && b.get(i - 1) == Some(&b'-')
                    && b.get(i - 2).is_some_and(|c| c.is_ascii_whitespace());
                let end = if trim { i - 1 } else { i };
                return Some((s.get(..end)?, i + 2, trim));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn read_chain(s: &[char], i: &mut usize) -> Vec<String> {
    let mut chain = Vec::new();
    while s.get(*i) == Some(&'.') {
        let start = *i + 1;
        let mut j = start;
        while s.get(j).is_some_and(|c| is_ident_char(*c)) {
            j += 1;
        }
        if j == start {
            break;
        }
        chain.push(s.get(start..j).unwrap_or(&[]).iter().collect());
        *i = j;
    }
    chain
}

fn lex(body: &str) -> Result<Vec<Tok>, String> {
    let s: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut toks = Vec::new();
    while let Some(&c) = s.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                i += 1;
                toks.push(Tok::RParen(read_chain(&s, &mut i)));
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if s.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match s.get(i) {
                        None => return Err("unterminated quoted string".to_string()),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let e = s.get(i + 1).copied().ok_or("unterminated quoted string")?;
                            v.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                other => return Err(format!("unknown escape sequence: \\{other}")),
                            });
                            i += 2;
                        }
                        Some(&ch) => {
                            v.push(ch);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Str(v));
            }
            '`' => {
                let start = i + 1;
                let mut j = start;
                while s.get(j).is_some_and(|c| *c != '`') {
                    j += 1;
                }
                if s.get(j).is_none() {
                    return Err("unterminated raw quoted string".to_string());
                }
                toks.push(Tok::Str(s.get(start..j).unwrap_or(&[]).iter().collect()));
                i = j + 1;
            }
            '.' if !s.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let chain = read_chain(&s, &mut i);
                if chain.is_empty() {
                    i += 1;
                }
                toks.push(Tok::Field(chain));
            }
            '$' => {
                let start = i;
                i += 1;
                while s.get(i).is_some_and(|c| is_ident_char(*c)) {
                    i += 1;
                }
                let name: String = s.get(start..i).unwrap_or(&[]).iter().collect();
                let chain = read_chain(&s, &mut i);
                toks.push(Tok::Var(name, chain));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = i;
                i += 1;
                while s
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                    || (s.get(i).is_some_and(|c| *c == '-' || *c == '+')
                        && s.get(i - 1).is_some_and(|c| *c == 'e' || *c == 'E'))
                {
                    i += 1;
                }
                toks.push(Tok::Num(s.get(start..i).unwrap_or(&[]).iter().collect()));
            }
            c if is_ident_char(c) => {
                let start = i;
                while s.get(i).is_some_and(|c| is_ident_char(*c)) {
                    i += 1;
                }
                toks.push(Tok::Word(s.get(start..i).unwrap_or(&[]).iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(toks)
}

struct Parser {
    pieces: std::vec::IntoIter<Piece>,
}

enum Stop {
    Eof,
    End(usize),
    Else(usize, Vec<Tok>),
}

/// Parses template text into nodes; errors carry a line number.
pub fn parse(text: &str) -> PResult<Vec<Node>> {
    let mut p = Parser {
        pieces: split(text)?.into_iter(),
    };
    let (nodes, end) = p.list()?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End(l) => Err((l, "unexpected {{end}}".to_string())),
        Stop::Else(l, _) => Err((l, "unexpected {{else}}".to_string())),
    }
}

impl Parser {
    fn list(&mut self) -> PResult<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while let Some(piece) = self.pieces.next() {
            let a = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Action(a) => a,
            };
            let line = a.line;
            let mut toks = a.toks;
            let kw = match toks.first() {
                Some(Tok::Word(w)) => w.clone(),
                None => return Err((line, "missing value for command".to_string())),
                _ => String::new(),
            };
            match kw.as_str() {
                "end" => {
                    if toks.len() != 1 {
                        return Err((line, "unexpected tokens after end".to_string()));
                    }
                    return Ok((nodes, Stop::End(line)));
                }
                "else" => {
                    toks.remove(0);
                    return Ok((nodes, Stop::Else(line, toks)));
                }
                "if" | "range" | "with" => {
                    toks.remove(0);
                    nodes.push(self.control(&kw, line, toks)?);
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err((line, format!("{kw:?} is not supported")));
                }
                _ => nodes.push(Node::Action(pipe(line, toks)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn control(&mut self, kw: &str, line: usize, toks: Vec<Tok>) -> PResult<Node> {
        let cond = pipe(line, toks)?;
        if cond.cmds.is_empty() {
            return Err((line, format!("missing value for {kw}")));
        }
        let (body, end) = self.list()?;
        let else_body = match end {
            Stop::Eof => return Err((line, format!("unexpected EOF in {kw}"))),
            Stop::End(_) => Vec::new(),
            Stop::Else(l, rest) => {
                if rest.is_empty() {
                    let (eb, end2) = self.list()?;
                    match end2 {
                        Stop::End(_) => eb,
                        Stop::Eof => return Err((l, format!("unexpected EOF in {kw}"))),
                        Stop::Else(l2, _) => {
                            return Err((l2, "expected end; found {{else}}".to_string()))
                        }
                    }
                } else {
                    // `else if ...` / `else with ...`: a nested control sharing our `end`.
                    let nested_kw = match rest.first() {
                        Some(Tok::Word(w)) if w == "if" || w == "with" => w.clone(),
                        _ => return Err((l, "unexpected tokens after else".to_string())),
                    };
                    let mut rest = rest;
                    rest.remove(0);
                    vec![self.control(&nested_kw, l, rest)?]
                }
            }
        };
        Ok(match kw {
            "if" => Node::If(cond, body, else_body),
            "range" => Node::Range(cond, body, else_body),
            _ => Node::With(cond, body, else_body),
        })
    }
}

fn pipe(line: usize, toks: Vec<Tok>) -> PResult<Pipe> {
    let mut toks = toks.into_iter().peekable();
    pipe_from(line, &mut toks, false)
}

fn pipe_from(
    line: usize,
    toks: &mut std::iter::Peekable<std::vec::IntoIter<Tok>>,
    nested: bool,
) -> PResult<Pipe> {
    // Declarations: `$x :=`, `$i, $e :=`, `$x =`.
    let mut decl = Vec::new();
    let mut assign = false;
    let snapshot: Vec<Tok> = toks.clone().collect();
    let mut k = 0;
    let mut names = Vec::new();
    loop {
        match snapshot.get(k) {
            Some(Tok::Var(n, c)) if c.is_empty() => {
                names.push(n.clone());
                k += 1;
            }
            _ => break,
        }
        match snapshot.get(k) {
            Some(Tok::Comma) if names.len() == 1 => k += 1,
            Some(Tok::Declare) => {
                decl = names.clone();
                k += 1;
                break;
            }
            Some(Tok::Assign) => {
                decl = names.clone();
                assign = true;
                k += 1;
                break;
            }
            _ => break,
        }
    }
    if !decl.is_empty() {
        for _ in 0..k {
            toks.next();
        }
    }
    let mut cmds = Vec::new();
    let mut cur: Vec<Arg> = Vec::new();
    loop {
        let Some(t) = toks.next() else {
            if nested {
                return Err((line, "unclosed left paren".to_string()));
            }
            break;
        };
        match t {
            Tok::Pipe => {
                if cur.is_empty() {
                    return Err((line, "missing command".to_string()));
                }
                cmds.push(std::mem::take(&mut cur));
            }
            Tok::RParen(chain) => {
                if !nested {
                    return Err((line, "unexpected right paren".to_string()));
                }
                if !cur.is_empty() {
                    cmds.push(std::mem::take(&mut cur));
                }
                return Ok(Pipe {
                    decl,
                    assign,
                    cmds: vec![vec![Arg::Sub(
                        Box::new(Pipe {
                            decl: Vec::new(),
                            assign: false,
                            cmds,
                        }),
                        chain,
                    )]],
                });
            }
            Tok::LParen => {
                let sub = pipe_from(line, toks, true)?;
                let arg = sub
                    .cmds
                    .into_iter()
                    .next()
                    .and_then(|c| c.into_iter().next())
                    .ok_or((line, "empty parenthesized pipeline".to_string()))?;
                cur.push(arg);
            }
            Tok::Word(w) => cur.push(match w.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => Arg::Ident(w),
            }),
            Tok::Field(c) => cur.push(Arg::Field(c)),
            Tok::Var(n, c) => cur.push(Arg::Var(n, c)),
            Tok::Str(s) => cur.push(Arg::Str(s)),
            Tok::Num(n) => {
                cur.push(parse_num(&n).ok_or((line, format!("bad number syntax: {n:?}")))?)
            }
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return Err((line, "unexpected declaration".to_string()))
            }
        }
    }
    if !cur.is_empty() {
        cmds.push(cur);
    } else if !cmds.is_empty() {
        return Err((line, "missing command".to_string()));
    }
    if cmds.is_empty() && !decl.is_empty() {
        return Err((line, "missing value for command".to_string()));
    }
    Ok(Pipe { decl, assign, cmds })
}

fn parse_num(n: &str) -> Option<Arg> {
    let clean = n.replace('_', "");
    if let Ok(i) = clean.parse::<i64>() {
        return Some(Arg::Int(i));
    }
    if let Some(h) = clean.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok().map(Arg::Int);
    }
    clean.parse::<f64>().ok().map(Arg::Float)
}
