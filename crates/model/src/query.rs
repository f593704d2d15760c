//! The ECS cluster query language, as `ListContainerInstances --filter` and `memberOf`
//! placement constraints use it.
//!
//! An expression is a boolean combination of conditions `subject operator [argument]`:
//!
//! ```text
//! attribute:ecs.instance-type =~ t2.*
//! attribute:ecs.availability-zone in [us-east-1a, us-east-1b]
//! task:group == service:web
//! ec2InstanceId in ['i-1', 'i-2']
//! attribute:x exists and not (attribute:y == z)
//! ```
//!
//! - Operators: `==` (`equals`), `!=` (`not_equals`), `>` (`greater_than`), `>=`
//!   (`greater_than_equal`), `<` (`less_than`), `<=` (`less_than_equal`), `=~` (`matches`, a
//!   wildcard pattern where `*` matches any run of characters), `!~` (`not_matches`), `in`,
//!   `not in` (`!in`, `not_in`), `exists`, `not exists` (`!exists`, `not_exists`).
//! - Combinators: `and` / `&&`, `or` / `||`, `not` / `!`, parentheses; `not` binds tighter than
//!   `and`, which binds tighter than `or`. Keywords are case-insensitive.
//! - Values are bare words (`t2.small`, `service:web`, `2018-03-01`) or quoted with `'` or `"`;
//!   `in` takes a list in `[...]` or `(...)`, or a single value.
//!
//! Evaluation knows nothing about Berth's records: the caller supplies a lookup from subject
//! (`attribute:NAME`, `ec2InstanceId`, `registeredAt`, `runningTasksCount`, `agentConnected`,
//! `agentVersion`, `task:group`, …) to the subject's values. A subject may have several values
//! (`task:group` has one per task on the instance): the positive operators hold when any value
//! satisfies them, and each negative operator is the negation of its positive one (so
//! `task:group != db` means no task on the instance is in group `db`). A missing subject
//! satisfies no positive operator. Attributes that are set without a value should be looked up
//! as the empty string so that `exists` holds.
//!
//! Ordering operators compare numerically when both sides are numbers, as dotted versions when
//! both look like `1.14.2`, and as strings otherwise (so ISO-8601 dates compare correctly).

use std::cmp::Ordering;
use std::fmt;

/// A parse error: where it happened (0-based character offset into the expression) and what
/// was expected. The message includes the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Matches,
    NotMatches,
    In,
    NotIn,
    Exists,
    NotExists,
}

impl Operator {
    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "==",
            Operator::Ne => "!=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Matches => "=~",
            Operator::NotMatches => "!~",
            Operator::In => "in",
            Operator::NotIn => "not in",
            Operator::Exists => "exists",
            Operator::NotExists => "not exists",
        }
    }

    /// The positive operator this one negates, if it is a negative one.
    fn negates(self) -> Option<Operator> {
        match self {
            Operator::Ne => Some(Operator::Eq),
            Operator::NotMatches => Some(Operator::Matches),
            Operator::NotIn => Some(Operator::In),
            Operator::NotExists => Some(Operator::Exists),
            _ => None,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a condition compares its subject with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    /// `exists` and `not exists` take none.
    None,
    Value(String),
    List(Vec<String>),
}

/// `subject operator [argument]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub subject: String,
    pub op: Operator,
    pub arg: Argument,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Cond(Condition),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// Parses an expression; see the module docs for the grammar.
pub fn parse(input: &str) -> Result<Expr, QueryError> {
    let tokens = lex(input)?;
    let mut p = Parser { tokens, pos: 0 };
    if p.peek().kind == Tok::End {
        return Err(QueryError {
            position: 0,
            message: "empty expression".to_string(),
        });
    }
    let e = p.or()?;
    let t = p.peek();
    if t.kind != Tok::End {
        return Err(p.unexpected(t, "'and', 'or' or the end of the expression"));
    }
    Ok(e)
}

impl std::str::FromStr for Expr {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

impl Expr {
    /// Evaluates against a single-valued lookup (`None`: the subject is absent).
    pub fn evaluate<F: Fn(&str) -> Option<String>>(&self, lookup: F) -> bool {
        self.evaluate_multi(&|s: &str| lookup(s).into_iter().collect())
    }

    /// Evaluates against a multi-valued lookup (an empty list: the subject is absent).
    pub fn evaluate_multi<F: Fn(&str) -> Vec<String>>(&self, lookup: &F) -> bool {
        match self {
            Expr::Cond(c) => c.evaluate(&lookup(&c.subject)),
            Expr::Not(e) => !e.evaluate_multi(lookup),
            Expr::And(a, b) => a.evaluate_multi(lookup) && b.evaluate_multi(lookup),
            Expr::Or(a, b) => a.evaluate_multi(lookup) || b.evaluate_multi(lookup),
        }
    }

    /// Every subject the expression mentions, in order of appearance, without repeats.
    pub fn subjects(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_subjects(&mut out);
        out
    }

    fn collect_subjects<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Cond(c) => {
                if !out.contains(&c.subject.as_str()) {
                    out.push(&c.subject);
                }
            }
            Expr::Not(e) => e.collect_subjects(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.collect_subjects(out);
                b.collect_subjects(out);
            }
        }
    }
}

impl Condition {
    /// Whether the subject's `values` satisfy the condition.
    pub fn evaluate(&self, values: &[String]) -> bool {
        if let Some(positive) = self.op.negates() {
            let c = Condition {
                subject: String::new(),
                op: positive,
                arg: self.arg.clone(),
            };
            return !c.evaluate(values);
        }
        values.iter().any(|v| self.holds_for(v))
    }

    fn holds_for(&self, value: &str) -> bool {
        let single = |f: &dyn Fn(&str) -> bool| match &self.arg {
            Argument::Value(a) => f(a),
            Argument::List(l) => l.iter().any(|a| f(a)),
            Argument::None => false,
        };
        match self.op {
            Operator::Exists => true,
            Operator::Eq | Operator::In => single(&|a| values_equal(value, a)),
            Operator::Matches => single(&|a| wildcard_match(a, value)),
            Operator::Gt => single(&|a| compare(value, a) == Ordering::Greater),
            Operator::Ge => single(&|a| compare(value, a) != Ordering::Less),
            Operator::Lt => single(&|a| compare(value, a) == Ordering::Less),
            Operator::Le => single(&|a| compare(value, a) != Ordering::Greater),
            Operator::Ne | Operator::NotMatches | Operator::NotIn | Operator::NotExists => {
                unreachable!("negative operators are evaluated through their positive ones")
            }
        }
    }
}

fn values_equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

fn as_version(s: &str) -> Option<Vec<u64>> {
    let s = s.strip_prefix('v').unwrap_or(s);
    if !s.contains('.') {
        return None;
    }
    s.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

/// Orders two values: numerically, as dotted versions, or as strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>())
        && let Some(o) = x.partial_cmp(&y)
    {
        // Prefer versions when both are dotted with more than one dot (1.10.0 vs 1.9.0).
        if !(a.matches('.').count() > 1 || b.matches('.').count() > 1) {
            return o;
        }
    }
    if let (Some(x), Some(y)) = (as_version(a), as_version(b)) {
        return x.cmp(&y);
    }
    a.cmp(b)
}

/// Whether `text` matches the wildcard `pattern` (`*` matches any run of characters, including
/// none; everything else is literal; the whole text must match).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_match(&p, &t, false)
}

/// The wildcard matcher behind [`wildcard_match`] and the load balancer's rule patterns: `*`
/// matches any run of characters, `?` exactly one when `any_one` is set (else it is literal).
/// Greedy, with one backtrack point: the last `*` seen.
pub fn glob_match(p: &[char], t: &[char], any_one: bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == t[ti] || (any_one && p[pi] == '?')) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

// ---------------------------------------------------------------------------------------------
// Display: the canonical form, which parses back to the same expression.
// ---------------------------------------------------------------------------------------------

fn fmt_value(v: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let bare = !v.is_empty()
        && v.chars().all(|c| !c.is_whitespace() && !DELIMS.contains(c))
        && !is_keyword(v);
    if bare {
        f.write_str(v)
    } else if !v.contains('\'') {
        write!(f, "'{v}'")
    } else {
        write!(f, "\"{v}\"")
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_value(&self.subject, f)?;
        write!(f, " {}", self.op)?;
        match &self.arg {
            Argument::None => Ok(()),
            Argument::Value(v) => {
                f.write_str(" ")?;
                fmt_value(v, f)
            }
            Argument::List(l) => {
                f.write_str(" [")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    fmt_value(v, f)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Cond(c) => write!(f, "{c}"),
            Expr::Not(e) => write!(f, "not ({e})"),
            // Operators are left-associative: a right operand of the same or a looser
            // operator needs parentheses to parse back to the same tree.
            Expr::And(a, b) => {
                match **a {
                    Expr::Or(..) => write!(f, "({a})")?,
                    _ => write!(f, "{a}")?,
                }
                match **b {
                    Expr::Or(..) | Expr::And(..) => write!(f, " and ({b})"),
                    _ => write!(f, " and {b}"),
                }
            }
            Expr::Or(a, b) => match **b {
                Expr::Or(..) => write!(f, "{a} or ({b})"),
                _ => write!(f, "{a} or {b}"),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

/// Characters that end a bare word.
const DELIMS: &str = "()[],=!<>~&|'\"";

const OPERATOR_LIST: &str =
    "an operator (==, !=, >, >=, <, <=, =~, !~, in, not in, exists, not exists)";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Bang,
    AndAnd,
    OrOr,
    Op(Operator),
    Word(String),
    Quoted(String),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    pos: usize,
    text: String,
}

fn is_keyword(w: &str) -> bool {
    matches!(w.to_ascii_lowercase().as_str(), "and" | "or" | "not")
}

fn word_operator(w: &str) -> Option<Operator> {
    Some(match w.to_ascii_lowercase().as_str() {
        "equals" => Operator::Eq,
        "not_equals" => Operator::Ne,
        "greater_than" => Operator::Gt,
        "greater_than_equal" => Operator::Ge,
        "less_than" => Operator::Lt,
        "less_than_equal" => Operator::Le,
        "matches" => Operator::Matches,
        "not_matches" => Operator::NotMatches,
        "in" => Operator::In,
        "not_in" => Operator::NotIn,
        "exists" => Operator::Exists,
        "not_exists" => Operator::NotExists,
        _ => return None,
    })
}

fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, message: String| QueryError {
        position: pos,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let next = chars.get(i + 1).copied();
        let (kind, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            ',' => (Tok::Comma, 1),
            '=' => match next {
                Some('=') => (Tok::Op(Operator::Eq), 2),
                Some('~') => (Tok::Op(Operator::Matches), 2),
                _ => {
                    return Err(err(
                        start,
                        format!("unexpected '=' at position {start}: use '==' to compare"),
                    ));
                }
            },
            '!' => match next {
                Some('=') => (Tok::Op(Operator::Ne), 2),
                Some('~') => (Tok::Op(Operator::NotMatches), 2),
                _ => (Tok::Bang, 1),
            },
            '>' => match next {
                Some('=') => (Tok::Op(Operator::Ge), 2),
                _ => (Tok::Op(Operator::Gt), 1),
            },
            '<' => match next {
                Some('=') => (Tok::Op(Operator::Le), 2),
                _ => (Tok::Op(Operator::Lt), 1),
            },
            '&' | '|' => {
                if next == Some(c) {
                    (if c == '&' { Tok::AndAnd } else { Tok::OrOr }, 2)
                } else {
                    return Err(err(
                        start,
                        format!("unexpected '{c}' at position {start}: use '{c}{c}'"),
                    ));
                }
            }
            '~' => {
                return Err(err(
                    start,
                    format!("unexpected '~' at position {start}: use '=~' or '!~'"),
                ));
            }
            '\'' | '"' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != c {
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(err(
                        start,
                        format!("unterminated quoted value starting at position {start}"),
                    ));
                }
                let s: String = chars[i + 1..j].iter().collect();
                (Tok::Quoted(s), j + 1 - i)
            }
            _ => {
                let mut j = i;
                while j < chars.len() && !chars[j].is_whitespace() && !DELIMS.contains(chars[j]) {
                    j += 1;
                }
                let s: String = chars[i..j].iter().collect();
                (Tok::Word(s), j - i)
            }
        };
        let text: String = chars[start..start + len].iter().collect();
        out.push(Token {
            kind,
            pos: start,
            text,
        });
        i += len;
    }
    out.push(Token {
        kind: Tok::End,
        pos: chars.len(),
        text: String::new(),
    });
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Token {
        self.tokens[self.pos].clone()
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.tokens[(self.pos + n).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self, t: Token, expected: &str) -> QueryError {
        let message = if t.kind == Tok::End {
            format!(
                "unexpected end of expression at position {}: expected {expected}",
                t.pos
            )
        } else {
            format!(
                "unexpected token '{}' at position {}: expected {expected}",
                t.text, t.pos
            )
        };
        QueryError {
            position: t.pos,
            message,
        }
    }

    fn is_word(t: &Token, w: &str) -> bool {
        matches!(&t.kind, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        loop {
            let t = self.peek();
            if t.kind == Tok::OrOr || Self::is_word(&t, "or") {
                self.bump();
                let right = self.and()?;
                left = Expr::Or(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.unary()?;
        loop {
            let t = self.peek();
            if t.kind == Tok::AndAnd || Self::is_word(&t, "and") {
                self.bump();
                let right = self.unary()?;
                left = Expr::And(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        let t = self.peek();
        if t.kind == Tok::Bang || Self::is_word(&t, "not") {
            self.bump();
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if t.kind == Tok::LParen {
            self.bump();
            let e = self.or()?;
            let close = self.peek();
            if close.kind != Tok::RParen {
                return Err(self.unexpected(close, "')', 'and' or 'or'"));
            }
            self.bump();
            return Ok(e);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<Expr, QueryError> {
        let t = self.bump();
        let subject = match t.kind {
            Tok::Word(ref w) if !is_keyword(w) && word_operator(w).is_none() => w.clone(),
            Tok::Quoted(ref q) => q.clone(),
            _ => return Err(self.unexpected(t, "a condition (subject operator [value]) or '('")),
        };
        let op = self.operator()?;
        let arg = match op {
            Operator::Exists | Operator::NotExists => Argument::None,
            Operator::In | Operator::NotIn => self.list()?,
            _ => Argument::Value(self.value()?),
        };
        Ok(Expr::Cond(Condition { subject, op, arg }))
    }

    fn operator(&mut self) -> Result<Operator, QueryError> {
        let t = self.peek();
        let op = match &t.kind {
            Tok::Op(op) => {
                self.bump();
                *op
            }
            Tok::Bang | Tok::Word(_) if Self::is_word(&t, "not") || t.kind == Tok::Bang => {
                let next = self.peek_at(1).clone();
                let op = if Self::is_word(&next, "in") {
                    Operator::NotIn
                } else if Self::is_word(&next, "exists") {
                    Operator::NotExists
                } else {
                    return Err(self.unexpected(next, "'in' or 'exists'"));
                };
                self.bump();
                self.bump();
                op
            }
            Tok::Word(w) => match word_operator(w) {
                Some(op) => {
                    self.bump();
                    op
                }
                None => return Err(self.unexpected(t, OPERATOR_LIST)),
            },
            _ => return Err(self.unexpected(t, OPERATOR_LIST)),
        };
        Ok(op)
    }

    fn value(&mut self) -> Result<String, QueryError> {
        let t = self.peek();
        match t.kind {
            Tok::Word(w) | Tok::Quoted(w) => {
                self.bump();
                Ok(w)
            }
            _ => Err(self.unexpected(t, "a value")),
        }
    }

    fn list(&mut self) -> Result<Argument, QueryError> {
        let open = self.peek();
        let close = match open.kind {
            Tok::LBracket => Tok::RBracket,
            Tok::LParen => Tok::RParen,
            Tok::Word(_) | Tok::Quoted(_) => return Ok(Argument::List(vec![self.value()?])),
            _ => return Err(self.unexpected(open, "a list of values in '[...]'")),
        };
        self.bump();
        let mut values = Vec::new();
        if self.peek().kind == close {
            let t = self.peek();
            return Err(self.unexpected(t, "a value"));
        }
        loop {
            values.push(self.value()?);
            let t = self.bump();
            if t.kind == close {
                return Ok(Argument::List(values));
            }
            if t.kind != Tok::Comma {
                let closing = if close == Tok::RBracket { "']'" } else { "')'" };
                return Err(self.unexpected(t, &format!("',' or {closing}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cond(subject: &str, op: Operator, arg: Argument) -> Expr {
        Expr::Cond(Condition {
            subject: subject.into(),
            op,
            arg,
        })
    }
    fn val(s: &str) -> Argument {
        Argument::Value(s.into())
    }
    fn list(v: &[&str]) -> Argument {
        Argument::List(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn parses_the_documented_forms() {
        use Operator::*;
        let cases: Vec<(&str, Expr)> = vec![
            (
                "attribute:ecs.instance-type =~ t2.*",
                cond("attribute:ecs.instance-type", Matches, val("t2.*")),
            ),
            (
                "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
                cond(
                    "attribute:ecs.availability-zone",
                    In,
                    list(&["us-east-1a", "us-east-1b"]),
                ),
            ),
            (
                "task:group == service:web",
                cond("task:group", Eq, val("service:web")),
            ),
            (
                "ec2InstanceId in ['i-1', 'i-2']",
                cond("ec2InstanceId", In, list(&["i-1", "i-2"])),
            ),
            (
                "attribute:x exists and not (attribute:y == z)",
                Expr::And(
                    Box::new(cond("attribute:x", Exists, Argument::None)),
                    Box::new(Expr::Not(Box::new(cond("attribute:y", Eq, val("z"))))),
                ),
            ),
            (
                "agentConnected==false",
                cond("agentConnected", Eq, val("false")),
            ),
            (
                "runningTasksCount >= 2",
                cond("runningTasksCount", Ge, val("2")),
            ),
            (
                "registeredAt < 2018-03-01",
                cond("registeredAt", Lt, val("2018-03-01")),
            ),
            (
                "attribute:x !exists",
                cond("attribute:x", NotExists, Argument::None),
            ),
            (
                "attribute:x not exists",
                cond("attribute:x", NotExists, Argument::None),
            ),
            (
                "attribute:x not_exists",
                cond("attribute:x", NotExists, Argument::None),
            ),
            (
                "attribute:x NOT IN [a]",
                cond("attribute:x", NotIn, list(&["a"])),
            ),
            (
                "attribute:x !in (a, b)",
                cond("attribute:x", NotIn, list(&["a", "b"])),
            ),
            ("attribute:x in a", cond("attribute:x", In, list(&["a"]))),
            (
                "attribute:x !~ t2.*",
                cond("attribute:x", NotMatches, val("t2.*")),
            ),
            (
                "attribute:x equals \"a b\"",
                cond("attribute:x", Eq, val("a b")),
            ),
            (
                "not(task:group == database)",
                Expr::Not(Box::new(cond("task:group", Eq, val("database")))),
            ),
            (
                "!(attribute:x exists)",
                Expr::Not(Box::new(cond("attribute:x", Exists, Argument::None))),
            ),
            (
                "a exists or (b exists or c exists)",
                Expr::Or(
                    Box::new(cond("a", Exists, Argument::None)),
                    Box::new(Expr::Or(
                        Box::new(cond("b", Exists, Argument::None)),
                        Box::new(cond("c", Exists, Argument::None)),
                    )),
                ),
            ),
        ];
        for (input, want) in cases {
            let got = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            // The canonical form parses back to the same tree.
            assert_eq!(parse(&got.to_string()).unwrap(), got, "{input} -> {got}");
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let e = parse("a == 1 or b == 2 && c == 3").unwrap();
        assert!(matches!(&e, Expr::Or(_, r) if matches!(**r, Expr::And(..))));
        let e = parse("(a == 1 or b == 2) and not c exists").unwrap();
        match &e {
            Expr::And(l, r) => {
                assert!(matches!(**l, Expr::Or(..)));
                assert!(matches!(**r, Expr::Not(_)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.to_string(), "(a == 1 or b == 2) and not (c exists)");
        assert_eq!(e.subjects(), vec!["a", "b", "c"]);
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        let cases = [
            ("", 0, "empty expression"),
            (
                "attribute:x foo bar",
                12,
                "unexpected token 'foo' at position 12: expected an operator (==, !=, >, >=, <, <=, =~, !~, in, not in, exists, not exists)",
            ),
            (
                "attribute:x",
                11,
                "unexpected end of expression at position 11: expected an operator",
            ),
            (
                "attribute:x ==",
                14,
                "unexpected end of expression at position 14: expected a value",
            ),
            ("attribute:x in [a, b", 20, "expected ',' or ']'"),
            (
                "attribute:x in [a b]",
                18,
                "unexpected token 'b' at position 18: expected ',' or ']'",
            ),
            ("attribute:x in []", 16, "expected a value"),
            ("(attribute:x exists", 19, "expected ')', 'and' or 'or'"),
            (
                "a == 1 b == 2",
                7,
                "unexpected token 'b' at position 7: expected 'and', 'or' or the end",
            ),
            ("a = 1", 2, "use '=='"),
            ("a == 1 & b == 2", 7, "use '&&'"),
            (
                "a == 'x",
                5,
                "unterminated quoted value starting at position 5",
            ),
            ("a == 1 and", 10, "expected a condition"),
            (
                "a not b",
                6,
                "unexpected token 'b' at position 6: expected 'in' or 'exists'",
            ),
            (
                "== 1",
                0,
                "unexpected token '==' at position 0: expected a condition",
            ),
            ("a == 1)", 6, "unexpected token ')'"),
        ];
        for (input, position, fragment) in cases {
            let e = parse(input).expect_err(input);
            assert_eq!(e.position, position, "{input}: {e}");
            assert!(e.message.contains(fragment), "{input}: {e}");
        }
    }

    fn instance() -> HashMap<&'static str, Vec<String>> {
        let mut m: HashMap<&str, Vec<String>> = HashMap::new();
        let mut put = |k: &'static str, v: &[&str]| {
            m.insert(k, v.iter().map(|s| s.to_string()).collect());
        };
        put("attribute:ecs.instance-type", &["t2.micro"]);
        put("attribute:ecs.availability-zone", &["us-east-1b"]);
        put("attribute:ecs.os-type", &["linux"]);
        put("attribute:x", &[""]);
        put("ec2InstanceId", &["i-2"]);
        put("task:group", &["service:web", "family:batch"]);
        put("runningTasksCount", &["3"]);
        put("agentConnected", &["true"]);
        put("agentVersion", &["1.10.0"]);
        put("registeredAt", &["2018-03-05T10:00:00Z"]);
        m
    }

    #[test]
    fn evaluates_against_a_lookup() {
        let inst = instance();
        let lookup = |s: &str| inst.get(s).cloned().unwrap_or_default();
        let cases = [
            ("attribute:ecs.instance-type =~ t2.*", true),
            ("attribute:ecs.instance-type =~ t2", false),
            ("attribute:ecs.instance-type =~ *.micro", true),
            ("attribute:ecs.instance-type !~ m5.*", true),
            (
                "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
                true,
            ),
            (
                "attribute:ecs.availability-zone not in [us-east-1a, us-east-1b]",
                false,
            ),
            ("task:group == service:web", true),
            ("task:group == family:batch", true),
            ("task:group != service:web", false),
            ("not (task:group == database)", true),
            ("task:group != database", true),
            ("ec2InstanceId in ['i-1', 'i-2']", true),
            ("ec2InstanceId in ['i-1', 'i-3']", false),
            ("attribute:x exists and not (attribute:y == z)", true),
            ("attribute:y exists", false),
            ("attribute:y not exists", true),
            ("attribute:y == z", false),
            ("attribute:y != z", true),
            ("runningTasksCount > 2", true),
            ("runningTasksCount > 10", false),
            ("runningTasksCount <= 3.0", true),
            ("runningTasksCount == 3.0", true),
            (
                "agentConnected == true && attribute:ecs.os-type == linux",
                true,
            ),
            (
                "agentConnected == false || attribute:ecs.os-type == windows",
                false,
            ),
            ("agentVersion >= 1.9.0", true),
            ("agentVersion < 1.9.1", false),
            ("registeredAt > 2018-03-01", true),
            ("registeredAt < 2018-03-01", false),
            ("attribute:ecs.instance-type == T2.MICRO", false),
        ];
        for (input, want) in cases {
            let e = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(e.evaluate_multi(&lookup), want, "{input}");
        }
        // The single-valued form.
        let e = parse("attribute:stack == prod").unwrap();
        assert!(e.evaluate(|s| (s == "attribute:stack").then(|| "prod".to_string())));
        assert!(!e.evaluate(|_| None));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("t2.*", "t2.micro"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(wildcard_match("t2.micro", "t2.micro"));
        assert!(!wildcard_match("t2.micro", "t2xmicro"));
        assert!(wildcard_match("**a", "ba"));
    }

    #[test]
    fn ordering() {
        assert_eq!(compare("10", "9"), Ordering::Greater);
        assert_eq!(compare("1.10.0", "1.9.3"), Ordering::Greater);
        assert_eq!(compare("1.5", "1.10"), Ordering::Greater); // plain decimals stay numbers
        assert_eq!(compare("2018-03-05", "2018-03-01"), Ordering::Greater);
        assert_eq!(compare("abc", "abd"), Ordering::Less);
    }
}
