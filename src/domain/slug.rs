use serde::{Deserialize, Serialize};
use std::fmt;

/// A tenant's slug: the first label of its host name (`acme` in `acme.localhost:3000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantSlug(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("a slug must be 2 to 40 characters long")]
    Length,
    #[error("a slug may contain only lowercase letters a-z, digits and `-`")]
    Chars,
    #[error("a slug must start with a letter and may not end with `-`")]
    Edges,
    #[error("`{0}` is reserved")]
    Reserved(String),
}

const RESERVED: &[&str] = &[
    "www", "api", "app", "admin", "login", "static", "pkg", "mail",
];

impl TenantSlug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let s = input.trim();
        if s.len() < 2 || s.len() > 40 {
            return Err(SlugError::Length);
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(SlugError::Chars);
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) || s.ends_with('-') {
            return Err(SlugError::Edges);
        }
        if RESERVED.contains(&s) {
            return Err(SlugError::Reserved(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantSlug {
    type Error = SlugError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantSlug> for String {
    fn from(value: TenantSlug) -> Self {
        value.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_name_labels() {
        assert_eq!(TenantSlug::parse("acme").unwrap().as_str(), "acme");
        assert_eq!(TenantSlug::parse("acme-2").unwrap().as_str(), "acme-2");
    }

    #[test]
    fn refuses_what_cannot_be_a_host_label() {
        assert_eq!(TenantSlug::parse("a"), Err(SlugError::Length));
        assert_eq!(TenantSlug::parse("Acme"), Err(SlugError::Chars));
        assert_eq!(TenantSlug::parse("ac.me"), Err(SlugError::Chars));
        assert_eq!(TenantSlug::parse("2acme"), Err(SlugError::Edges));
        assert_eq!(TenantSlug::parse("acme-"), Err(SlugError::Edges));
        assert_eq!(
            TenantSlug::parse("app"),
            Err(SlugError::Reserved("app".into()))
        );
        assert_eq!(TenantSlug::parse(&"a".repeat(41)), Err(SlugError::Length));
    }
}
