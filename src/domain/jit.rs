use super::Email;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Windows local account names are limited to 20 characters; JIT accounts must fit.
pub const MAX_USERNAME_LEN: usize = 20;
/// A prefix leaves room for at least ten characters of the person's own name.
pub const MAX_PREFIX_LEN: usize = 10;

fn allowed(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
}

/// The tenant's JIT username prefix (`msp-`): 1–10 of `a-z 0-9 - _ .`; empty only where allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsernamePrefix(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("the prefix may not be empty for a tenant that uses Entra ID")]
    Empty,
    #[error("the prefix may be at most {MAX_PREFIX_LEN} characters")]
    TooLong,
    #[error(
        "the prefix may contain only lowercase letters, digits, `-`, `_` and `.` (found `{0}`)"
    )]
    Char(char),
    #[error("the prefix may not start with `.`")]
    LeadingDot,
}

impl UsernamePrefix {
    /// Parses a prefix; `allow_empty` is true only for local tenants that choose no prefix.
    pub fn parse(input: &str, allow_empty: bool) -> Result<Self, PrefixError> {
        let s = input.trim();
        if s.is_empty() && !allow_empty {
            return Err(PrefixError::Empty);
        }
        if s.chars().count() > MAX_PREFIX_LEN {
            return Err(PrefixError::TooLong);
        }
        if let Some(c) = s.chars().find(|c| !allowed(*c)) {
            return Err(PrefixError::Char(c));
        }
        if s.starts_with('.') {
            return Err(PrefixError::LeadingDot);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for UsernamePrefix {
    fn default() -> Self {
        Self("msp-".into())
    }
}

/// A JIT named account (`msp-alex`): the prefix plus the folded local part of the email.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JitUsername(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("enter a username")]
    Empty,
    #[error(
        "a username may be at most {MAX_USERNAME_LEN} characters (the Windows local account limit)"
    )]
    TooLong,
    #[error(
        "a username may contain only lowercase letters, digits, `-`, `_` and `.` (found `{0}`)"
    )]
    Char(char),
    #[error("a username may not start or end with `.`")]
    Dot,
}

impl JitUsername {
    /// Parses a username typed by an admin.
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(UsernameError::Empty);
        }
        if s.chars().count() > MAX_USERNAME_LEN {
            return Err(UsernameError::TooLong);
        }
        if let Some(c) = s.chars().find(|c| !allowed(*c)) {
            return Err(UsernameError::Char(c));
        }
        if s.starts_with('.') || s.ends_with('.') {
            return Err(UsernameError::Dot);
        }
        Ok(Self(s.to_string()))
    }

    /// The username DESIGN's rule gives `email` under `prefix`, before any collision suffix.
    pub fn derive(prefix: &UsernamePrefix, email: &Email) -> Self {
        Self::candidate(prefix, email, 1)
    }

    /// The `n`-th candidate: `n == 1` is the plain name, later ones carry `n` as a suffix
    /// (`msp-alex2`), shortening the name part so the whole still fits in 20 characters. A
    /// name part that ends in a digit is kept apart from the suffix by `_` (`msp-alex01_2`),
    /// so every suffix gives another name: `alex01` + 2 is not `alex0` + 12.
    pub fn candidate(prefix: &UsernamePrefix, email: &Email, n: u32) -> Self {
        let suffix = if n <= 1 { String::new() } else { n.to_string() };
        let folded: String = email
            .local_part()
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| allowed(*c))
            .collect();
        let room = MAX_USERNAME_LEN.saturating_sub(prefix.as_str().len() + suffix.len());
        let fit = |room: usize| -> &str {
            let trimmed = folded[..folded.len().min(room)].trim_matches('.');
            if trimmed.is_empty() {
                "user"
            } else {
                trimmed
            }
        };
        let mut name = fit(room);
        let mut separator = "";
        if !suffix.is_empty() && name.ends_with(|c: char| c.is_ascii_digit()) {
            name = fit(room.saturating_sub(1));
            if name.ends_with(|c: char| c.is_ascii_digit()) {
                separator = "_";
            }
        }
        let mut out = format!("{}{name}{separator}{suffix}", prefix.as_str());
        // "user" may not fit behind a long prefix plus suffix; the total is what matters.
        out.truncate(MAX_USERNAME_LEN);
        while out.ends_with('.') {
            out.pop();
        }
        Self(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JitUsername {
    type Error = UsernameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<JitUsername> for String {
    fn from(value: JitUsername) -> Self {
        value.0
    }
}

impl fmt::Display for JitUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JitUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JitUsername({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn msp() -> UsernamePrefix {
        UsernamePrefix::parse("msp-", false).unwrap()
    }

    #[test]
    fn prefixes_the_local_part() {
        assert_eq!(
            JitUsername::derive(&msp(), &email("alex@acme.com")).as_str(),
            "msp-alex"
        );
    }

    #[test]
    fn folds_characters_a_windows_account_cannot_have() {
        let u = JitUsername::derive(&msp(), &email("O'Brien+it@acme.com"));
        assert_eq!(u.as_str(), "msp-obrienit");
    }

    #[test]
    fn truncates_to_twenty_characters() {
        let u = JitUsername::derive(&msp(), &email("bartholomew.longname@acme.com"));
        assert_eq!(u.as_str(), "msp-bartholomew.long");
        assert_eq!(u.as_str().len(), 20);
    }

    #[test]
    fn never_ends_with_a_dot_after_truncation() {
        let u = JitUsername::derive(&msp(), &email("abcdefghijklmnop.q@acme.com"));
        assert_eq!(u.as_str(), "msp-abcdefghijklmnop");
        let u = JitUsername::derive(&msp(), &email("abcdefghijklmno.pq@acme.com"));
        assert_eq!(u.as_str(), "msp-abcdefghijklmno");
    }

    #[test]
    fn collision_suffix_still_fits() {
        let e = email("bartholomew.longname@acme.com");
        assert_eq!(
            JitUsername::candidate(&msp(), &e, 2).as_str(),
            "msp-bartholomew.lon2"
        );
        assert_eq!(
            JitUsername::candidate(&msp(), &e, 12).as_str(),
            "msp-bartholomew.lo12"
        );
        assert_eq!(
            JitUsername::candidate(&msp(), &email("al@a.com"), 3).as_str(),
            "msp-al3"
        );
    }

    /// Found by the property test: without a separator `aa01` + 2 and `aa0` + 12 were one
    /// name.
    #[test]
    fn a_name_ending_in_a_digit_keeps_its_suffix_apart() {
        let e = email("alex01@acme.com");
        assert_eq!(JitUsername::derive(&msp(), &e).as_str(), "msp-alex01");
        assert_eq!(
            JitUsername::candidate(&msp(), &e, 2).as_str(),
            "msp-alex01_2"
        );
        assert_eq!(
            JitUsername::candidate(&msp(), &e, 12).as_str(),
            "msp-alex01_12"
        );
        let long = email("aaaaa-_aaa_aa01@acme.com");
        let p = UsernamePrefix::parse("_0aa", false).unwrap();
        assert_ne!(
            JitUsername::candidate(&p, &long, 2),
            JitUsername::candidate(&p, &long, 12)
        );
    }

    #[test]
    fn a_local_part_with_nothing_usable_becomes_user() {
        assert_eq!(
            JitUsername::derive(&msp(), &email("+++@acme.com")).as_str(),
            "msp-user"
        );
    }

    #[test]
    fn an_empty_prefix_is_allowed_only_when_asked() {
        assert_eq!(UsernamePrefix::parse("", false), Err(PrefixError::Empty));
        let none = UsernamePrefix::parse("", true).unwrap();
        assert_eq!(
            JitUsername::derive(&none, &email("alex@acme.com")).as_str(),
            "alex"
        );
    }

    #[test]
    fn prefix_rules() {
        assert_eq!(
            UsernamePrefix::parse("MSP-", false),
            Err(PrefixError::Char('M'))
        );
        assert_eq!(
            UsernamePrefix::parse("abcdefghijk", false),
            Err(PrefixError::TooLong)
        );
        assert!(UsernamePrefix::parse("it_ops.", false).is_ok());
        assert_eq!(
            UsernamePrefix::parse(".x", false),
            Err(PrefixError::LeadingDot)
        );
    }

    #[test]
    fn typed_usernames_follow_the_same_alphabet() {
        assert_eq!(JitUsername::parse(""), Err(UsernameError::Empty));
        assert_eq!(JitUsername::parse("Alex"), Err(UsernameError::Char('A')));
        assert_eq!(JitUsername::parse(".alex"), Err(UsernameError::Dot));
        assert_eq!(
            JitUsername::parse(&"a".repeat(21)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(
            JitUsername::parse(" msp-alex ").unwrap().as_str(),
            "msp-alex"
        );
    }
}
