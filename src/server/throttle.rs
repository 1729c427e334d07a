//! Per-IP rates on the unauthenticated surface, kept in this replica's memory (GCRA, from
//! `governor`): new login codes, phone registrations, and the phone's sign-in actions; and
//! the change notifications a network sent that were refused (`Strikes`). What
//! guards something shared across replicas (code mails to an inbox, guesses at an address)
//! is budgeted in the database instead (`rate_limit`).
//!
//! A request over its rate is refused before anything is written.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Instant;

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
    /// Change-notification deliveries refused, per client network.
    pub refused_notifications: Strikes,
    clock: DefaultClock,
}

/// The rates per client IP (from `config::Limits`).
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub login_codes_per_minute: u32,
    pub registrations_per_hour: u32,
    pub phone_actions_per_minute: u32,
    pub refused_notifications_per_minute: u32,
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
            refused_notifications: Strikes::new(rates.refused_notifications_per_minute),
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
        self.refused_notifications.forget_idle();
    }
}

/// Refused answers per client network, counted by the minute: a network that was refused
/// `limit` times this minute is answered 429 without being read until the minute is over.
/// Only refusals count, so a sender whose requests are genuine (Microsoft delivering
/// notifications) is never held back by its own volume, however large.
pub struct Strikes {
    limit: u32,
    started: Instant,
    minutes: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl Strikes {
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            started: Instant::now(),
            minutes: Mutex::new(HashMap::new()),
        }
    }

    /// The minute of this process now, and the seconds left in it.
    fn minute(&self) -> (u64, u64) {
        let secs = self.started.elapsed().as_secs();
        (secs / 60, 60 - secs % 60)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u64, u32)>> {
        self.minutes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `network` may be heard now; else when it may again.
    pub fn check(&self, network: IpAddr) -> Result<(), Throttled> {
        let (minute, left) = self.minute();
        match self.counts().get(&network) {
            Some(&(m, n)) if m == minute && n >= self.limit => Err(Throttled { retry_after: left }),
            _ => Ok(()),
        }
    }

    /// Counts a refusal of `network`; true when it used up the last one of its minute.
    pub fn strike(&self, network: IpAddr) -> bool {
        let (minute, _) = self.minute();
        let mut counts = self.counts();
        let entry = counts.entry(network).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 == self.limit
    }

    /// Forgets the networks whose minute is over.
    pub fn forget_idle(&self) {
        let (minute, _) = self.minute();
        let mut counts = self.counts();
        counts.retain(|_, (m, _)| *m == minute);
        counts.shrink_to_fit();
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
            refused_notifications_per_minute: 60,
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

    #[test]
    fn only_refusals_count_and_a_network_is_heard_again_next_minute() {
        let strikes = Strikes::new(2);
        let (a, b): (IpAddr, IpAddr) = (
            "198.51.100.1".parse().unwrap(),
            "2001:db8::".parse().unwrap(),
        );
        assert_eq!(strikes.check(a), Ok(()));
        assert!(!strikes.strike(a));
        assert_eq!(strikes.check(a), Ok(()));
        assert!(strikes.strike(a), "the last refusal of the minute");
        let held = strikes.check(a).unwrap_err();
        assert!((1..=60).contains(&held.retry_after), "{held:?}");
        assert_eq!(strikes.check(b), Ok(()), "another network is heard");
        // A minute later (as far as the counts know) the network is heard again.
        strikes.counts().get_mut(&a).unwrap().0 = u64::MAX;
        assert_eq!(strikes.check(a), Ok(()));
        strikes.forget_idle();
        assert!(strikes.counts().is_empty());
    }
}
