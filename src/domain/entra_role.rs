//! What a customer's mapping can hand a technician: the Entra built-in roles Gatehouse offers,
//! by Microsoft's template ids; and how long an account stays open.
//!
//! Ids: https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/permissions-reference
//!
//! Left out on purpose: Global Administrator, Privileged Role Administrator and Privileged
//! Authentication Administrator. An account holding one can remove the consent of Gatehouse's
//! customers app (or its roles), after which Gatehouse could no longer end that account: the
//! one promise of this feature. An MSP that needs them uses Entra's own PIM for them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An Entra built-in directory role Gatehouse may assign in a customer's tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntraRole(&'static Known);

#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Known {
    id: &'static str,
    name: &'static str,
}

const OFFERED: &[Known] = &[
    Known {
        id: "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        name: "Helpdesk Administrator",
    },
    Known {
        id: "966707d0-3269-4727-9be2-8c3a10f19b9d",
        name: "Password Administrator",
    },
    Known {
        id: "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        name: "Authentication Administrator",
    },
    Known {
        id: "fe930be7-5e62-47db-91af-98c3a49a38b1",
        name: "User Administrator",
    },
    Known {
        id: "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        name: "Groups Administrator",
    },
    Known {
        id: "29232cdf-9323-42fd-ade2-1d097af3e4de",
        name: "Exchange Administrator",
    },
    Known {
        id: "194ae4cb-b126-40b2-bd5b-6091b380977d",
        name: "Security Administrator",
    },
];

impl EntraRole {
    /// Every role Gatehouse offers, in the order the page lists them.
    pub fn offered() -> impl Iterator<Item = EntraRole> {
        OFFERED.iter().map(EntraRole)
    }

    /// The offered role with this template id (any case), or why there is none.
    pub fn parse(id: &str) -> Result<Self, String> {
        let id = id.trim();
        OFFERED
            .iter()
            .find(|k| k.id.eq_ignore_ascii_case(id))
            .map(EntraRole)
            .ok_or_else(|| {
                format!("`{id}` is not an Entra built-in role Gatehouse assigns (choose one from the list)")
            })
    }

    /// Microsoft's template id (the role definition's id for a built-in role).
    pub fn id(&self) -> &'static str {
        self.0.id
    }

    pub fn name(&self) -> &'static str {
        self.0.name
    }
}

impl fmt::Display for EntraRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl TryFrom<String> for EntraRole {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        EntraRole::parse(&id)
    }
}

impl From<EntraRole> for String {
    fn from(r: EntraRole) -> String {
        r.id().to_string()
    }
}

/// How long a JIT account stays open after a request: 15 minutes to 12 hours, 4 hours unless
/// the customer's admin chose otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessWindow(i64);

impl AccessWindow {
    pub const DEFAULT: AccessWindow = AccessWindow(4 * 3600);
    const SHORTEST_MINUTES: i64 = 15;
    const LONGEST_MINUTES: i64 = 12 * 60;

    /// A window typed in minutes, or why it cannot be one.
    pub fn from_minutes(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse::<i64>()
            .ok()
            .filter(|m| (Self::SHORTEST_MINUTES..=Self::LONGEST_MINUTES).contains(m))
            .map(|m| AccessWindow(m * 60))
            .ok_or_else(|| {
                format!(
                    "The access window must be a whole number of minutes from {} to {} (12 hours)",
                    Self::SHORTEST_MINUTES,
                    Self::LONGEST_MINUTES
                )
            })
    }

    /// A window as stored; one outside the bounds (never written by Gatehouse) is the default.
    pub fn from_secs(secs: i64) -> Self {
        if (Self::SHORTEST_MINUTES * 60..=Self::LONGEST_MINUTES * 60).contains(&secs) {
            AccessWindow(secs)
        } else {
            Self::DEFAULT
        }
    }

    pub fn secs(&self) -> i64 {
        self.0
    }

    pub fn minutes(&self) -> i64 {
        self.0 / 60
    }
}

impl fmt::Display for AccessWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m) = (self.0 / 3600, self.0 % 3600 / 60);
        match (h, m) {
            (0, m) => write!(f, "{m} minutes"),
            (1, 0) => f.write_str("1 hour"),
            (h, 0) => write!(f, "{h} hours"),
            (h, m) => write!(f, "{h} h {m} min"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_is_found_by_its_template_id_in_any_case_and_round_trips() {
        let helpdesk = EntraRole::parse("729827E3-9C14-49F7-BB1B-9608F156BBB8").unwrap();
        assert_eq!(helpdesk.name(), "Helpdesk Administrator");
        let json = serde_json::to_string(&helpdesk).unwrap();
        assert_eq!(json, "\"729827e3-9c14-49f7-bb1b-9608f156bbb8\"");
        assert_eq!(serde_json::from_str::<EntraRole>(&json).unwrap(), helpdesk);
    }

    #[test]
    fn roles_that_could_lock_gatehouse_out_are_not_offered() {
        for refused in [
            "62e90394-69f5-4237-9190-012177145e10", // Global Administrator
            "e8611ab8-c189-46e8-94e1-60213ab1f814", // Privileged Role Administrator
            "7be44c8a-adaf-4e2a-84d6-ab2649e08a13", // Privileged Authentication Administrator
            "not-a-role",
            "",
        ] {
            assert!(EntraRole::parse(refused).is_err(), "{refused}");
        }
        assert!(EntraRole::offered().all(|r| !r.name().contains("Global")));
    }

    #[test]
    fn the_window_is_15_minutes_to_12_hours() {
        assert_eq!(AccessWindow::from_minutes("15").unwrap().secs(), 900);
        assert_eq!(
            AccessWindow::from_minutes(" 720 ").unwrap().to_string(),
            "12 hours"
        );
        assert_eq!(
            AccessWindow::from_minutes("90").unwrap().to_string(),
            "1 h 30 min"
        );
        for bad in ["14", "721", "0", "-5", "4h", "", "1e3"] {
            assert!(AccessWindow::from_minutes(bad).is_err(), "{bad}");
        }
        assert_eq!(AccessWindow::from_secs(10), AccessWindow::DEFAULT);
        assert_eq!(AccessWindow::DEFAULT.to_string(), "4 hours");
    }
}
