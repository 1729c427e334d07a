use serde::{Deserialize, Serialize};
use std::fmt;

/// An email address, normalised to lowercase: Gatehouse compares emails and UPNs
/// case-insensitively, so the normal form is the only form stored.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("enter an email address")]
    Empty,
    #[error("an email address has exactly one @ with a name before it and a domain after it")]
    Shape,
    #[error("the part before @ may not be longer than 64 characters")]
    LocalTooLong,
    #[error("an email address may not be longer than 254 characters")]
    TooLong,
    #[error("the domain `{0}` is not a valid domain name")]
    Domain(String),
    #[error("the part before @ contains a character Gatehouse does not accept: `{0}`")]
    LocalChar(char),
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Shape)?;
        if local.is_empty() || domain.is_empty() || local.contains('@') {
            return Err(EmailError::Shape);
        }
        if local.len() > 64 {
            return Err(EmailError::LocalTooLong);
        }
        // Quoted local parts and comments are legal in RFC 5322 but no directory we
        // talk to issues them; refusing them keeps lookups and usernames predictable.
        if let Some(c) = local
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(*c)))
        {
            return Err(EmailError::LocalChar(c));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(EmailError::Shape);
        }
        if !valid_domain(domain) {
            return Err(EmailError::Domain(domain.to_string()));
        }
        Ok(Self(format!("{}@{}", local, domain).to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let e = Email::parse("  Alex.Doe@Acme.COM ").unwrap();
        assert_eq!(e.as_str(), "alex.doe@acme.com");
        assert_eq!(e.local_part(), "alex.doe");
        assert_eq!(e.domain(), "acme.com");
    }

    #[test]
    fn emails_differing_only_in_case_are_equal() {
        assert_eq!(Email::parse("ALEX@acme.com"), Email::parse("alex@ACME.com"));
    }

    #[test]
    fn refuses_malformed_addresses_with_a_specific_reason() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
        assert_eq!(Email::parse("alex"), Err(EmailError::Shape));
        assert_eq!(Email::parse("@acme.com"), Err(EmailError::Shape));
        assert_eq!(Email::parse("alex@"), Err(EmailError::Shape));
        assert_eq!(Email::parse("a..b@acme.com"), Err(EmailError::Shape));
        assert_eq!(
            Email::parse("alex@localhost"),
            Err(EmailError::Domain("localhost".into()))
        );
        assert_eq!(
            Email::parse("alex@-acme.com"),
            Err(EmailError::Domain("-acme.com".into()))
        );
        assert_eq!(
            Email::parse("al ex@acme.com"),
            Err(EmailError::LocalChar(' '))
        );
        assert_eq!(
            Email::parse(&format!("{}@acme.com", "a".repeat(65))),
            Err(EmailError::LocalTooLong)
        );
    }

    #[test]
    fn deserialising_applies_the_same_rules() {
        let ok: Email = serde_json::from_str("\"Bo@Example.org\"").unwrap();
        assert_eq!(ok.as_str(), "bo@example.org");
        assert!(serde_json::from_str::<Email>("\"not-an-email\"").is_err());
    }
}
