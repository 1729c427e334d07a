//! Properties of the edge parsers, over generated input: whatever arrives (an admin's form, a
//! phone's request, a Graph page), parsing never panics, and what it accepts is what the rest
//! of Gatehouse relies on.

use super::*;
use proptest::prelude::*;

/// Local parts as directories issue them, mixed case included.
fn local_part() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._'+-]{0,40}[A-Za-z0-9]"
        .prop_filter("no double dots", |s| !s.contains(".."))
}

fn domain() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,20}[a-z0-9](\\.[a-z][a-z0-9]{1,10}){1,3}"
}

fn email() -> impl Strategy<Value = Email> {
    (local_part(), domain()).prop_filter_map("a valid address", |(l, d)| {
        Email::parse(&format!("{l}@{d}")).ok()
    })
}

fn prefix() -> impl Strategy<Value = UsernamePrefix> {
    "[a-z0-9_-][a-z0-9._-]{0,9}".prop_map(|s| UsernamePrefix::parse(&s, false).unwrap())
}

proptest! {
    #[test]
    fn email_parsing_never_panics_and_what_it_accepts_is_its_own_normal_form(input in any::<String>()) {
        if let Ok(e) = Email::parse(&input) {
            let s = e.as_str();
            prop_assert_eq!(s, s.to_ascii_lowercase());
            prop_assert!(s.len() <= 254);
            prop_assert_eq!(s.matches('@').count(), 1);
            let again = Email::parse(s);
            prop_assert_eq!(again.as_ref(), Ok(&e), "parsing is idempotent");
        }
    }

    #[test]
    fn an_email_is_compared_without_case_and_surrounding_space(l in local_part(), d in domain()) {
        let plain = Email::parse(&format!("{l}@{d}"));
        let shouted = Email::parse(&format!("  {}@{}\t", l.to_uppercase(), d.to_uppercase()));
        prop_assert_eq!(plain, shouted);
    }

    #[test]
    fn slug_parsing_never_panics_and_accepts_only_host_labels(input in any::<String>()) {
        if let Ok(slug) = TenantSlug::parse(&input) {
            let s = slug.as_str();
            prop_assert!((2..=40).contains(&s.len()));
            prop_assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            prop_assert!(s.starts_with(|c: char| c.is_ascii_lowercase()) && !s.ends_with('-'));
            prop_assert_eq!(TenantSlug::parse(s), Ok(slug.clone()));
        }
    }

    #[test]
    fn prefix_and_username_parsing_never_panic(input in any::<String>()) {
        if let Ok(p) = UsernamePrefix::parse(&input, true) {
            prop_assert!(p.as_str().len() <= super::jit::MAX_PREFIX_LEN);
        }
        if let Ok(u) = JitUsername::parse(&input) {
            prop_assert!(u.as_str().len() <= super::jit::MAX_USERNAME_LEN);
            prop_assert_eq!(JitUsername::parse(u.as_str()), Ok(u.clone()));
        }
    }

    /// Every JIT name Gatehouse derives is a username an admin could have typed: at most 20
    /// characters (a Windows local account), only the allowed characters, no dot at either end,
    /// and it starts with the tenant's prefix.
    #[test]
    fn every_derived_jit_name_is_a_valid_windows_account_with_the_prefix(
        p in prefix(), e in email(), n in 1u32..100_000,
    ) {
        let u = JitUsername::candidate(&p, &e, n);
        prop_assert_eq!(JitUsername::parse(u.as_str()), Ok(u.clone()), "{} is valid", u.as_str());
        prop_assert!(u.as_str().starts_with(p.as_str()), "{} keeps {}", u.as_str(), p.as_str());
    }

    /// The collision suffixes of one address give different names, so each try at a free
    /// username is a new one. (The plain name, `n == 1`, is the local part as it is, and a
    /// long one can look like any suffixed name; the search asks the database either way.)
    #[test]
    fn the_collision_candidates_of_one_address_are_all_different(p in prefix(), e in email()) {
        let names: std::collections::HashSet<String> = (2..=300u32)
            .map(|n| JitUsername::candidate(&p, &e, n).as_str().to_string())
            .collect();
        prop_assert_eq!(names.len(), 299);
    }
}
