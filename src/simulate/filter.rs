//! The `$filter` subset of graph-api.md §11.5: `eq`/`ne` on booleans and strings
//! (strings case-insensitive), `startswith(prop,'x')`, `prop/any(x:x eq 'v')` on the
//! collection properties, `and`, `or`, `not` and parentheses. Anything else is a 400.

use super::rows::{Prop, Source};
use super::tenant::{EnumValue, POST_SENTINEL_LEGACY, Tenant, Tri, User, UserType};

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp {
        prop: Prop,
        negate: bool,
        value: Lit,
    },
    StartsWith(Prop, String),
    Any(Prop, String),
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Bool(bool),
    Str(String),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
    Colon,
    Slash,
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' | ':' | '/' => {
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    ':' => Tok::Colon,
                    _ => Tok::Slash,
                });
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            s.push(*c);
                            i += 1;
                        }
                    }
                }
                // `microsoft.graph.registrationAuthMethod'email'`: a qualified enum literal.
                if let Some(Tok::Ident(prev)) = out.last()
                    && prev.contains('.')
                {
                    out.pop();
                }
                out.push(Tok::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '-'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            c => return Err(format!("syntax error at '{c}'")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    source: Source,
    _text: &'a str,
}

impl Parser<'_> {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, tok: Tok) -> Result<(), String> {
        match self.next() {
            Some(t) if t == tok => Ok(()),
            other => Err(format!("expected {tok:?}, found {other:?}")),
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    fn prop(&mut self) -> Result<Prop, String> {
        let name = self.ident()?;
        self.source.prop(&name).ok_or_else(|| {
            format!(
                "Could not find a property named '{name}' on type '{}'.",
                self.source.entity_type()
            )
        })
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_kw("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::Close)?;
            return Ok(e);
        }
        if self.peek_kw("startswith") {
            self.pos += 1;
            self.expect(Tok::Open)?;
            let prop = self.prop()?;
            self.expect(Tok::Comma)?;
            let Some(Tok::Str(s)) = self.next() else {
                return Err("startswith needs a string literal".into());
            };
            self.expect(Tok::Close)?;
            if !matches!(prop, Prop::Upn | Prop::DisplayName) {
                return Err(format!("startswith is not supported on '{}'", prop.name()));
            }
            return Ok(Expr::StartsWith(prop, s));
        }
        let prop = self.prop()?;
        if self.toks.get(self.pos) == Some(&Tok::Slash) {
            self.pos += 1;
            if !self.peek_kw("any") {
                return Err("only the any() lambda operator is supported".into());
            }
            self.pos += 1;
            self.expect(Tok::Open)?;
            let var = self.ident()?;
            self.expect(Tok::Colon)?;
            let var2 = self.ident()?;
            if var != var2 || !self.peek_kw("eq") {
                return Err("any() supports only 'x:x eq value'".into());
            }
            self.pos += 1;
            let Some(Tok::Str(s)) = self.next() else {
                return Err("any() needs a string literal".into());
            };
            self.expect(Tok::Close)?;
            if !matches!(
                prop,
                Prop::Methods | Prop::SystemPreferred | Prop::AuthMethods
            ) {
                return Err(format!("'{}' is not a collection", prop.name()));
            }
            return Ok(Expr::Any(prop, s));
        }
        let negate = if self.peek_kw("eq") {
            false
        } else if self.peek_kw("ne") {
            true
        } else {
            return Err(format!("unsupported operator after '{}'", prop.name()));
        };
        self.pos += 1;
        let value = match self.next() {
            Some(Tok::Str(s)) => Lit::Str(s),
            Some(Tok::Ident(s)) if s == "true" => Lit::Bool(true),
            Some(Tok::Ident(s)) if s == "false" => Lit::Bool(false),
            Some(Tok::Ident(s)) if s == "null" => Lit::Null,
            other => return Err(format!("unsupported literal {other:?}")),
        };
        if matches!(
            prop,
            Prop::Methods | Prop::SystemPreferred | Prop::AuthMethods
        ) {
            return Err(format!(
                "use {}/any(x:x eq ...) on a collection",
                prop.name()
            ));
        }
        Ok(Expr::Cmp {
            prop,
            negate,
            value,
        })
    }
}

/// Parses `$filter` for `source`; `Err` carries a message for the 400.
pub(crate) fn parse(source: Source, text: &str) -> Result<Expr, String> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        source,
        _text: text,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err("unexpected text after the expression".into());
    }
    Ok(e)
}

fn tri_lit(v: Tri) -> Lit {
    match v {
        Tri::True => Lit::Bool(true),
        Tri::False => Lit::Bool(false),
        Tri::Null | Tri::Missing => Lit::Null,
    }
}

fn enum_lit(v: EnumValue) -> Lit {
    match v {
        EnumValue::Value(s) => Lit::Str(s.to_string()),
        EnumValue::Empty => Lit::Str(String::new()),
        EnumValue::Null | EnumValue::Missing => Lit::Null,
    }
}

fn value_of(tenant: &Tenant, u: &User, prop: Prop) -> Lit {
    match prop {
        Prop::Id => Lit::Str(tenant.id(u.index)),
        Prop::Upn => Lit::Str(tenant.upn(u.index, u.user_type)),
        Prop::DisplayName => Lit::Str(tenant.display_name(u.index)),
        Prop::UserType => match u.user_type {
            UserType::Member => Lit::Str("member".into()),
            UserType::Guest => Lit::Str("guest".into()),
            UserType::UnknownFuture => Lit::Str("unknownFutureValue".into()),
            UserType::Null | UserType::Missing => Lit::Null,
        },
        Prop::IsAdmin => tri_lit(u.is_admin),
        Prop::SystemPreferredEnabled => tri_lit(u.system_preferred_enabled),
        Prop::SsprRegistered | Prop::IsRegistered => Lit::Bool(u.sspr_registered),
        Prop::SsprEnabled | Prop::IsEnabled => Lit::Bool(u.sspr_enabled),
        Prop::SsprCapable | Prop::IsCapable => Lit::Bool(u.sspr_capable),
        Prop::MfaRegistered | Prop::IsMfaRegistered => Lit::Bool(u.mfa_registered),
        Prop::MfaCapable => Lit::Bool(u.mfa_capable),
        Prop::PasswordlessCapable => Lit::Bool(u.passwordless_capable),
        Prop::Preferred => enum_lit(u.preferred),
        Prop::DefaultMfa => enum_lit(u.default_mfa),
        Prop::LastUpdated | Prop::Methods | Prop::SystemPreferred | Prop::AuthMethods => Lit::Null,
    }
}

/// Whether user `u` satisfies `e`.
pub(crate) fn matches(e: &Expr, tenant: &Tenant, u: &User) -> bool {
    match e {
        Expr::Or(a, b) => matches(a, tenant, u) || matches(b, tenant, u),
        Expr::And(a, b) => matches(a, tenant, u) && matches(b, tenant, u),
        Expr::Not(a) => !matches(a, tenant, u),
        Expr::Cmp {
            prop,
            negate,
            value,
        } => {
            let equal = match (value_of(tenant, u, *prop), value) {
                (Lit::Str(a), Lit::Str(b)) => a.eq_ignore_ascii_case(b),
                (a, b) => a == *b,
            };
            equal != *negate
        }
        Expr::StartsWith(prop, prefix) => match value_of(tenant, u, *prop) {
            Lit::Str(s) => s.to_lowercase().starts_with(&prefix.to_lowercase()),
            _ => false,
        },
        Expr::Any(prop, v) => {
            let list = match prop {
                Prop::Methods => u.methods.as_slice(),
                Prop::SystemPreferred => u.system_preferred.as_slice(),
                _ => u.legacy_methods.as_slice(),
            };
            list.iter().any(|m| {
                m.eq_ignore_ascii_case(v)
                    || (*m == POST_SENTINEL_LEGACY && v == "unknownFutureValue")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tenant::STATIC_DATASET_TIME;
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        for f in [
            "isMfaCapable eq false",
            "methodsRegistered/any(x:x eq 'passKeyDeviceBound')",
            "startswith(userPrincipalName,'adm')",
            "isMfaRegistered eq true and (isAdmin eq true or userType eq 'guest')",
            "not (isSsprCapable eq true) and userPreferredMethodForSecondaryAuthentication eq 'push'",
        ] {
            parse(Source::V1, f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        for f in [
            "authMethods/any(t:t eq microsoft.graph.registrationAuthMethod'email')",
            "authMethods/any(t:t eq 'email') and isMfaRegistered eq true",
        ] {
            parse(Source::Legacy, f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        for bad in [
            "isMfaCapable gt 1",
            "nope eq true",
            "isMfaCapable eq",
            "methodsRegistered eq 'email'",
            "(isAdmin eq true",
        ] {
            assert!(parse(Source::V1, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn evaluates() {
        let t = Tenant::new("x", 9, 500, None);
        let users: Vec<User> = (0..500).map(|i| t.user(i, STATIC_DATASET_TIME)).collect();
        let count = |f: &str| {
            let e = parse(Source::V1, f).unwrap();
            users.iter().filter(|u| matches(&e, &t, u)).count()
        };
        let yes = count("isMfaCapable eq true");
        let no = count("isMfaCapable eq false");
        assert_eq!(yes + no, 500);
        assert_eq!(count("not (isMfaCapable eq true)"), no);
        let email = users.iter().filter(|u| u.methods.contains("email")).count();
        assert_eq!(count("methodsRegistered/any(x:x eq 'EMAIL')"), email);
        assert_eq!(
            count("startswith(userPrincipalName,'USER1')"),
            users
                .iter()
                .filter(|u| t.upn(u.index, u.user_type).starts_with("user1"))
                .count()
        );
    }
}
