//! Per-IP rates on the unauthenticated surface, kept in this replica's memory (GCRA, from
//! `governor`): new login codes, phone registrations, and the phone's sign-in actions. What
//! guards something shared across replicas (code mails to an inbox, guesses at an address)
//! is budgeted in the database instead (`rate_limit`).
//!
//! A request over its rate is refused before anything is written.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// What a client is asking for, each with its own rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A login page drawing a new QR code.
    LoginCode,
    /// `POST /devices`.
    DeviceRegistration,
    /// Looking up, approving or denying a sign-in, confirming a mailed code.
    PhoneAction,
}

impl Action {
    /// The `limit` label of `gatehouse_rate_limited_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::LoginCode => "login_codes_per_ip",
            Action::DeviceRegistration => "device_registrations_per_ip",
            Action::PhoneAction => "phone_actions_per_ip",
        }
    }
}

/// Over the rate: the next request of this kind is allowed in this many seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: u64,
}

pub struct Throttles {
    login_codes: DefaultKeyedRateLimiter<IpAddr>,
    device_registrations: DefaultKeyedRateLimiter<IpAddr>,
    phone_actions: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

/// The rates per client IP (from `config::Limits`).
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub login_codes_per_minute: u32,
    pub registrations_per_hour: u32,
    pub phone_actions_per_minute: u32,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Throttles {
    pub fn new(rates: Rates) -> Self {
        Self {
            login_codes: RateLimiter::keyed(Quota::per_minute(nonzero(
                rates.login_codes_per_minute,
            ))),
            device_registrations: RateLimiter::keyed(Quota::per_hour(nonzero(
                rates.registrations_per_hour,
            ))),
            phone_actions: RateLimiter::keyed(Quota::per_minute(nonzero(
                rates.phone_actions_per_minute,
            ))),
            clock: DefaultClock::default(),
        }
    }

    fn limiter(&self, action: Action) -> &DefaultKeyedRateLimiter<IpAddr> {
        match action {
            Action::LoginCode => &self.login_codes,
            Action::DeviceRegistration => &self.device_registrations,
            Action::PhoneAction => &self.phone_actions,
        }
    }

    /// Counts one `action` from `ip`, or says when it may come again (and counts the refusal
    /// in `/metrics`).
    pub fn check(&self, action: Action, ip: IpAddr) -> Result<(), Throttled> {
        self.limiter(action).check_key(&ip).map_err(|not_until| {
            metrics::counter!("gatehouse_rate_limited_total", "limit" => action.as_str())
                .increment(1);
            let wait = not_until.wait_time_from(self.clock.now());
            Throttled {
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Drops clients whose rates have fully recovered (housekeeping), so that memory holds
    /// only recent clients.
    pub fn forget_idle(&self) {
        for limiter in [
            &self.login_codes,
            &self.device_registrations,
            &self.phone_actions,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ip_is_held_at_its_rate_and_another_is_not_affected() {
        let t = Throttles::new(Rates {
            login_codes_per_minute: 3,
            registrations_per_hour: 20,
            phone_actions_per_minute: 120,
        });
        let (a, b): (IpAddr, IpAddr) = (
            "198.51.100.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        );
        for _ in 0..3 {
            assert_eq!(t.check(Action::LoginCode, a), Ok(()));
        }
        let refused = t.check(Action::LoginCode, a).unwrap_err();
        assert!((1..=20).contains(&refused.retry_after), "{refused:?}");
        assert_eq!(t.check(Action::LoginCode, b), Ok(()));
        // Each action has its own rate.
        assert_eq!(t.check(Action::DeviceRegistration, a), Ok(()));
    }
}
