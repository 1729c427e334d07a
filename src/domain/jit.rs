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
    /// (`msp-alex2`), shortening the name part so the whole still fits in 20 characters.
    pub fn candidate(prefix: &UsernamePrefix, email: &Email, n: u32) -> Self {
        let suffix = if n <= 1 { String::new() } else { n.to_string() };
        let mut folded: String = email
            .local_part()
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| allowed(*c))
            .collect();
        let room = MAX_USERNAME_LEN - prefix.as_str().len() - suffix.len();
        folded.truncate(room);
        let trimmed = folded.trim_matches('.');
        let name = if trimmed.is_empty() { "user" } else { trimmed };
        let mut out = format!("{}{}{}", prefix.as_str(), name, suffix);
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

    /// A cheap property check over many generated emails and prefixes: every derived
    /// name parses as a username and fits the limit.
    #[test]
    fn every_derived_name_is_a_valid_username() {
        let alphabet: Vec<char> = "abcXYZ019.-_+'!#~".chars().collect();
        let prefixes = ["", "m", "msp-", "it_ops.", "abcdefghij"];
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        for i in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 1 + (seed % 40) as usize;
            let local: String = (0..len)
                .map(|k| alphabet[((seed >> (k % 50)) as usize + k) % alphabet.len()])
                .collect();
            let Ok(e) = Email::parse(&format!("{local}@acme.com")) else {
                continue;
            };
            let p = UsernamePrefix::parse(prefixes[(i as usize) % prefixes.len()], true).unwrap();
            for n in [1, 2, 99, 1000] {
                let u = JitUsername::candidate(&p, &e, n);
                assert!(JitUsername::parse(u.as_str()).is_ok(), "{u:?} from {e:?}");
                assert!(u.as_str().len() <= MAX_USERNAME_LEN);
            }
        }
    }
}
