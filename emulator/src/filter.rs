//! The subset of OData `$filter` on users that Graph supports without advanced queries and that
//! Gatehouse uses: `eq` on string and boolean properties, `startsWith`, `any()` over
//! `proxyAddresses` and `otherMails`, `and`, `or`, parentheses.
//!
//! https://learn.microsoft.com/en-us/graph/filter-query-parameter
//! https://learn.microsoft.com/en-us/graph/aad-advanced-queries (what needs advanced queries)

use crate::model::User;

/// Why a filter was refused; Graph answers `400 Request_UnsupportedQuery`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct FilterError(pub String);

/// A parsed filter.
#[derive(Debug, PartialEq)]
pub enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Eq(Prop, Literal),
    StartsWith(Prop, String),
    Any(Collection, Lambda),
}

/// Scalar user properties that may be filtered.
#[derive(Debug, PartialEq, Clone, Copy)]
pub enum Prop {
    Id,
    UserPrincipalName,
    Mail,
    DisplayName,
    GivenName,
    Surname,
    UserType,
    AccountEnabled,
}

/// Multi-valued properties for `any()`.
#[derive(Debug, PartialEq, Clone, Copy)]
pub enum Collection {
    ProxyAddresses,
    OtherMails,
}

/// The body of an `any()` lambda.
#[derive(Debug, PartialEq)]
pub enum Lambda {
    Eq(String),
    StartsWith(String),
}

/// A literal on the right of `eq`.
#[derive(Debug, PartialEq)]
pub enum Literal {
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Colon,
    Str(String),
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, FilterError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open)
            }
            ')' => {
                chars.next();
                out.push(Tok::Close)
            }
            ',' => {
                chars.next();
                out.push(Tok::Comma)
            }
            ':' => {
                chars.next();
                out.push(Tok::Colon)
            }
            '\'' => {
                chars.next();
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        // OData escapes a quote by doubling it.
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            lit.push('\'');
                        }
                        Some('\'') => break,
                        Some(ch) => lit.push(ch),
                        None => {
                            return Err(FilterError(
                                "Unterminated string literal in $filter.".into(),
                            ))
                        }
                    }
                }
                out.push(Tok::Str(lit));
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | '@') => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_alphanumeric() || matches!(ch, '_' | '/' | '.' | '-' | '@') {
                        w.push(ch);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(w));
            }
            other => {
                return Err(FilterError(format!(
                    "Syntax error: character '{other}' is not valid in $filter."
                )))
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn unsupported(prop: &str) -> FilterError {
    FilterError(format!(
        "Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'."
    ))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, t: Tok) -> Result<(), FilterError> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            _ => Err(FilterError("Invalid filter clause: syntax error.".into())),
        }
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.atom()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn string(&mut self) -> Result<String, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => Err(FilterError(
                "Invalid filter clause: a string literal was expected.".into(),
            )),
        }
    }

    fn atom(&mut self) -> Result<Filter, FilterError> {
        match self.next() {
            Some(Tok::Open) => {
                let inner = self.or()?;
                self.expect(Tok::Close)?;
                Ok(inner)
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("startswith") => {
                self.expect(Tok::Open)?;
                let prop = match self.next() {
                    Some(Tok::Word(p)) => p,
                    _ => return Err(FilterError("Invalid filter clause: syntax error.".into())),
                };
                let prop = scalar(&prop)
                    .filter(|p| *p != Prop::AccountEnabled)
                    .ok_or_else(|| unsupported(&prop))?;
                self.expect(Tok::Comma)?;
                let lit = self.string()?;
                self.expect(Tok::Close)?;
                Ok(Filter::StartsWith(prop, lit))
            }
            Some(Tok::Word(w)) if w.contains('/') => {
                let (coll, func) = w.split_once('/').unwrap_or((&w, ""));
                let collection = match coll.to_ascii_lowercase().as_str() {
                    "proxyaddresses" => Collection::ProxyAddresses,
                    "othermails" => Collection::OtherMails,
                    _ => return Err(unsupported(coll)),
                };
                if !func.eq_ignore_ascii_case("any") {
                    return Err(unsupported(coll));
                }
                self.expect(Tok::Open)?;
                let var = match self.next() {
                    Some(Tok::Word(v)) => v,
                    _ => return Err(FilterError("Invalid filter clause: syntax error.".into())),
                };
                self.expect(Tok::Colon)?;
                let lambda = match self.next() {
                    Some(Tok::Word(v)) if v == var => {
                        if !self.keyword("eq") {
                            return Err(unsupported(coll));
                        }
                        self.pos += 1;
                        Lambda::Eq(self.string()?)
                    }
                    Some(Tok::Word(f)) if f.eq_ignore_ascii_case("startswith") => {
                        self.expect(Tok::Open)?;
                        match self.next() {
                            Some(Tok::Word(v)) if v == var => {}
                            _ => return Err(unsupported(coll)),
                        }
                        self.expect(Tok::Comma)?;
                        let lit = self.string()?;
                        self.expect(Tok::Close)?;
                        Lambda::StartsWith(lit)
                    }
                    _ => return Err(unsupported(coll)),
                };
                self.expect(Tok::Close)?;
                Ok(Filter::Any(collection, lambda))
            }
            Some(Tok::Word(w)) => {
                let prop = scalar(&w).ok_or_else(|| unsupported(&w))?;
                if !self.keyword("eq") {
                    // ne, not, gt, le …: advanced queries only.
                    return Err(unsupported(&w));
                }
                self.pos += 1;
                let lit = match self.next() {
                    Some(Tok::Str(s)) => Literal::Str(s),
                    Some(Tok::Word(b)) if b == "true" => Literal::Bool(true),
                    Some(Tok::Word(b)) if b == "false" => Literal::Bool(false),
                    _ => return Err(unsupported(&w)),
                };
                match (prop, &lit) {
                    (Prop::AccountEnabled, Literal::Bool(_)) => {}
                    (Prop::AccountEnabled, _) | (_, Literal::Bool(_)) => {
                        return Err(unsupported(&w))
                    }
                    _ => {}
                }
                Ok(Filter::Eq(prop, lit))
            }
            _ => Err(FilterError("Invalid filter clause: syntax error.".into())),
        }
    }
}

fn scalar(name: &str) -> Option<Prop> {
    Some(match name.to_ascii_lowercase().as_str() {
        "id" => Prop::Id,
        "userprincipalname" => Prop::UserPrincipalName,
        "mail" => Prop::Mail,
        "displayname" => Prop::DisplayName,
        "givenname" => Prop::GivenName,
        "surname" => Prop::Surname,
        "usertype" => Prop::UserType,
        "accountenabled" => Prop::AccountEnabled,
        _ => return None,
    })
}

/// Parses a `$filter` value.
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    let mut p = Parser {
        toks: tokenize(text)?,
        pos: 0,
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(FilterError("Invalid filter clause: syntax error.".into()));
    }
    Ok(f)
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

impl Filter {
    /// Directory string comparisons are case-insensitive.
    pub fn matches(&self, u: &User) -> bool {
        match self {
            Filter::Or(a, b) => a.matches(u) || b.matches(u),
            Filter::And(a, b) => a.matches(u) && b.matches(u),
            Filter::Eq(Prop::AccountEnabled, Literal::Bool(b)) => u.account_enabled == *b,
            Filter::Eq(p, Literal::Str(s)) => {
                text(u, *p).is_some_and(|v| v.eq_ignore_ascii_case(s))
            }
            Filter::Eq(_, _) => false,
            Filter::StartsWith(p, s) => text(u, *p).is_some_and(|v| starts_with_ci(v, s)),
            Filter::Any(c, lambda) => {
                let values = match c {
                    Collection::ProxyAddresses => &u.proxy_addresses,
                    Collection::OtherMails => &u.other_mails,
                };
                values.iter().any(|v| match lambda {
                    Lambda::Eq(s) => v.eq_ignore_ascii_case(s),
                    Lambda::StartsWith(s) => starts_with_ci(v, s),
                })
            }
        }
    }
}

fn text(u: &User, p: Prop) -> Option<&str> {
    match p {
        Prop::Id => Some(&u.id),
        Prop::UserPrincipalName => Some(&u.user_principal_name),
        Prop::Mail => u.mail.as_deref(),
        Prop::DisplayName => Some(&u.display_name),
        Prop::GivenName => u.given_name.as_deref(),
        Prop::Surname => u.surname.as_deref(),
        Prop::UserType => Some(&u.user_type),
        Prop::AccountEnabled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alex() -> User {
        serde_json::from_value(serde_json::json!({
            "userPrincipalName": "alex@contoso.com", "displayName": "Alex Wilber",
            "mail": "alex@contoso.com", "proxyAddresses": ["SMTP:alex@contoso.com", "smtp:aw@contoso.com"],
            "otherMails": ["alex@home.example"]
        }))
        .unwrap()
    }

    #[test]
    fn an_any_clause_finds_an_alias_regardless_of_case() {
        let f = parse("proxyAddresses/any(p:p eq 'SMTP:AW@contoso.com')").unwrap();
        assert!(f.matches(&alex()));
    }

    #[test]
    fn or_and_startswith_combine() {
        let f = parse("mail eq 'nobody@x.com' or startsWith(userPrincipalName,'ALEX')").unwrap();
        assert!(f.matches(&alex()));
        let f = parse("(otherMails/any(m:m eq 'alex@home.example')) and accountEnabled eq true")
            .unwrap();
        assert!(f.matches(&alex()));
    }

    #[test]
    fn a_doubled_quote_is_a_quote() {
        assert_eq!(
            parse("mail eq 'o''brien@x.com'").unwrap(),
            Filter::Eq(Prop::Mail, Literal::Str("o'brien@x.com".into()))
        );
    }

    #[test]
    fn operators_that_need_advanced_queries_are_refused() {
        assert!(parse("mail ne 'a@b.c'").is_err());
        assert!(parse("endsWith(mail,'@contoso.com')").is_err());
        assert!(parse("jobTitle eq 'x'").is_err());
        assert!(parse("mail eq").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// `$filter` comes from whoever calls the emulator: any text parses or is
            /// refused with Graph's error, never a panic.
            #[test]
            fn any_filter_text_parses_or_is_refused(text in any::<String>()) {
                let _ = parse(&text);
            }

            /// Text built from the grammar's own pieces, in any order, too.
            #[test]
            fn any_arrangement_of_filter_tokens_parses_or_is_refused(
                tokens in prop::collection::vec(prop_oneof![
                    Just("mail"), Just("eq"), Just("or"), Just("and"), Just("("), Just(")"),
                    Just("'a''b'"), Just("'"), Just("true"), Just("startsWith("), Just(","),
                    Just("proxyAddresses/any(p:p"), Just("p"), Just(":"), Just("/"), Just("é"),
                ], 0..12),
            ) {
                let text = tokens.join(" ");
                if let Ok(f) = parse(&text) {
                    let _ = f.matches(&alex());
                }
            }
        }
    }
}
