//! The login page of a code that is still waiting, drawn once and then served from memory.
//! Without JavaScript the page reloads itself every three seconds, some forty times per code;
//! each reload would otherwise read the database and render the same page again.
//!
//! Memory never decides a sign-in: an approval is always read, and consumed, in the database.
//! Memory only says "this browser's code is still waiting", and stops saying it when the event
//! bus reports an outcome for any of the browser's codes (on this replica before any waiting
//! browser hears of it), when the code nears its end (the page must draw the next one), and
//! after `TRUST_FOR` in any case, should a message between replicas be lost.
//!
//! A kept page has holes for the script nonce as well: each load has its own
//! Content-Security-Policy nonce (`server::headers`), filled in like the time left, so a page
//! served from memory never repeats a nonce another answer carried.

use super::challenge::{Challenge, RENEW_WITHIN_SECS};
use super::view::countdown_text;
use crate::domain::{ChallengeId, TenantId};
use crate::server::bus::{Event, Subscriber};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a page is served from memory before the database is asked again.
pub const TRUST_FOR: Duration = Duration::from_secs(10);
/// Beyond this many pages, the ones whose codes have run out are dropped; if all are live,
/// all are (each page is a few kilobytes).
const MAX_PAGES: usize = 4096;

/// A page to keep is rendered as if this many seconds were left: its countdown then carries a
/// mark that is replaced with the real time left whenever it is served.
pub const TEMPLATE_SECS: i64 = 3_599_999_999;

/// A rendered login page with holes where the time left goes.
struct Template {
    pieces: Vec<Piece>,
    content_type: String,
}

enum Piece {
    Text(Box<str>),
    /// The countdown as shown, `m:ss`.
    Countdown,
    /// The script nonce of the answer.
    Nonce,
}

impl Template {
    /// Splits a page rendered with `TEMPLATE_SECS` and script nonce `nonce`; `None` unless
    /// the countdown's mark appears exactly once (the page is not what this cache expects, so
    /// it is not kept). The nonce may appear any number of times.
    fn parse(body: &str, content_type: String, nonce: &str) -> Option<Self> {
        let countdown = countdown_text(TEMPLATE_SECS);
        let mut found = body.match_indices(countdown.as_str());
        let (at, _) = found.next()?;
        if found.next().is_some() {
            return None;
        }
        let mut marks: Vec<(usize, usize, Piece)> = vec![(at, countdown.len(), Piece::Countdown)];
        if nonce.is_empty() {
            return None;
        }
        for (at, _) in body.match_indices(nonce) {
            marks.push((at, nonce.len(), Piece::Nonce));
        }
        marks.sort_by_key(|(at, _, _)| *at);
        let mut pieces = Vec::with_capacity(2 * marks.len() + 1);
        let mut from = 0;
        for (at, len, piece) in marks {
            if at < from {
                return None;
            }
            pieces.push(Piece::Text(body[from..at].into()));
            pieces.push(piece);
            from = at + len;
        }
        pieces.push(Piece::Text(body[from..].into()));
        Some(Self {
            pieces,
            content_type,
        })
    }

    fn fill(&self, secs_left: i64, nonce: &str) -> Page {
        let countdown = countdown_text(secs_left);
        let mut page = String::with_capacity(
            self.pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.len(),
                    _ => 16,
                })
                .sum(),
        );
        for piece in &self.pieces {
            page.push_str(match piece {
                Piece::Text(t) => t,
                Piece::Countdown => &countdown,
                Piece::Nonce => nonce,
            });
        }
        Page {
            content_type: self.content_type.clone(),
            body: page,
            nonce: nonce.to_string(),
        }
    }
}

/// A page rendered with `TEMPLATE_SECS`, made right for `secs_left` (also for a page that
/// could not be kept: the mark is replaced wherever it appears).
pub fn fill_once(rendered: Page, secs_left: i64) -> Page {
    let secs_left = secs_left.max(0);
    Page {
        body: rendered
            .body
            .replace(&countdown_text(TEMPLATE_SECS), &countdown_text(secs_left)),
        content_type: rendered.content_type,
        nonce: rendered.nonce,
    }
}

struct Entry {
    tenant_id: TenantId,
    challenge_id: ChallengeId,
    expires_at: i64,
    trusted_until: Instant,
    template: std::sync::Arc<Template>,
}

/// A login page: its content type, body, and the script nonce it carries.
#[derive(Debug, PartialEq)]
pub struct Page {
    pub content_type: String,
    pub body: String,
    pub nonce: String,
}

/// Login pages by browser (the hash of its binding cookie), one waiting code each.
#[derive(Default)]
pub struct PageCache {
    by_browser: Mutex<HashMap<String, Entry>>,
    /// Counts forgetting; a page read from the database before a forgetting is not kept
    /// after it (it may show a code that has just been approved).
    epoch: AtomicU64,
    served_from_memory: AtomicU64,
}

impl PageCache {
    /// Pass to `keep` what this was before the database was read.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The browser's page, if memory may answer for it at `at` (unix seconds): the code is
    /// still waiting as far as this replica knows, and is not so near its end that the page
    /// must draw the next one (`RENEW_WITHIN_SECS`, as the database read decides).
    /// The page carries `nonce`, the script nonce of the answer it goes out in.
    pub fn page(&self, browser: &str, tenant_id: &TenantId, at: i64, nonce: &str) -> Option<Page> {
        let (template, secs_left) = {
            let pages = self.pages();
            let entry = pages.get(browser)?;
            if entry.tenant_id != *tenant_id
                || entry.expires_at <= at + RENEW_WITHIN_SECS
                || entry.trusted_until <= Instant::now()
            {
                return None;
            }
            (entry.template.clone(), entry.expires_at - at)
        };
        self.served_from_memory.fetch_add(1, Ordering::Relaxed);
        Some(template.fill(secs_left, nonce))
    }

    /// The database has just said (after `epoch`) that `challenge` still waits: if its page
    /// is kept, it is trusted again and served.
    pub fn confirm(&self, challenge: &Challenge, at: i64, epoch: u64, nonce: &str) -> Option<Page> {
        let mut pages = self.pages();
        if self.epoch() != epoch {
            return None;
        }
        let entry = pages.get_mut(&challenge.binding_hash)?;
        if entry.challenge_id != challenge.id {
            return None;
        }
        entry.trusted_until = Instant::now() + TRUST_FOR;
        Some(entry.template.fill(entry.expires_at - at, nonce))
    }

    /// Keeps the page of waiting `challenge` for its browser, rendered with `TEMPLATE_SECS`,
    /// unless something was forgotten since `epoch`. Returns whether it was kept.
    pub fn keep(&self, challenge: &Challenge, rendered: &Page, epoch: u64) -> bool {
        let Some(template) = Template::parse(
            &rendered.body,
            rendered.content_type.clone(),
            &rendered.nonce,
        ) else {
            tracing::warn!(
                "the login page does not have the expected shape; it is rendered on every load"
            );
            return false;
        };
        let mut pages = self.pages();
        if self.epoch() != epoch {
            return false;
        }
        if pages.len() >= MAX_PAGES {
            let at = crate::server::util::now();
            pages.retain(|_, e| e.expires_at > at);
            if pages.len() >= MAX_PAGES {
                pages.clear();
            }
        }
        pages.insert(
            challenge.binding_hash.clone(),
            Entry {
                tenant_id: challenge.tenant_id.clone(),
                challenge_id: challenge.id.clone(),
                expires_at: challenge.expires_at,
                trusted_until: Instant::now() + TRUST_FOR,
                template: std::sync::Arc::new(template),
            },
        );
        true
    }

    /// One of the browser's codes was approved, denied or cancelled.
    pub fn forget_browser(&self, browser: &str) {
        self.forget(|pages| {
            pages.remove(browser);
        });
    }

    /// A tenant's settings changed (its name is on its pages).
    fn forget_tenant(&self, tenant_id: &TenantId) {
        self.forget(|pages| pages.retain(|_, e| e.tenant_id != *tenant_id));
    }

    /// Messages between replicas may have been lost: nothing in memory is trusted.
    pub fn forget_all(&self) {
        self.forget(|pages| pages.clear());
    }

    /// How many pages were served from memory since start.
    pub fn served_from_memory(&self) -> u64 {
        self.served_from_memory.load(Ordering::Relaxed)
    }

    fn forget(&self, change: impl FnOnce(&mut HashMap<String, Entry>)) {
        let mut pages = self.pages();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        change(&mut pages);
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.by_browser.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The bus keeps the pages true: a decided code ends its browser's page; a changed tenant, all
/// of its pages (its name is on them); lost events, every page.
impl Subscriber for PageCache {
    fn heard(&self, event: &Event) {
        if let Some((_, browser)) = event.decided_challenge() {
            self.forget_browser(browser);
        }
        if let Event::TenantChanged { tenant_id } = event {
            self.forget_tenant(tenant_id);
        }
    }

    fn may_have_missed(&self) {
        self.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nonce the kept page was drawn with.
    const DRAWN: &str = "drawn-nonce-0123456789";

    /// A login page as Leptos draws it: the nonce on two scripts, the countdown once.
    fn rendered_with(secs: i64, nonce: &str) -> Page {
        Page {
            body: format!(
                "<html><script nonce=\"{nonce}\" src=/login.js defer></script>\
                 <span id=countdown>{}</span><p>Sign in to Acme</p>\
                 <script nonce=\"{nonce}\">__RESOLVED_RESOURCES = []</script></html>",
                countdown_text(secs)
            ),
            content_type: "text/html".into(),
            nonce: nonce.into(),
        }
    }

    fn rendered(secs: i64) -> Page {
        rendered_with(secs, DRAWN)
    }

    /// Code `c1` of tenant `t1`, shown by `browser`, ending at `expires_at`.
    fn code(browser: &str, expires_at: i64) -> Challenge {
        Challenge {
            id: ChallengeId::from_outside("c1"),
            tenant_id: TenantId::from_outside("t1"),
            binding_hash: browser.into(),
            match_number: 42,
            numbers: "17,42,88".into(),
            requester_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            status: crate::domain::ChallengeStatus::Pending,
            reason: None,
            created_at: expires_at - 120,
            expires_at,
            device_id: None,
            user_id: None,
            purpose: crate::domain::ChallengePurpose::SignIn,
            customer_id: None,
            roles: None,
        }
    }

    fn kept(cache: &PageCache, browser: &str, expires_at: i64) -> bool {
        cache.keep(
            &code(browser, expires_at),
            &rendered(TEMPLATE_SECS),
            cache.epoch(),
        )
    }

    #[test]
    fn a_kept_page_shows_the_time_left_when_served() {
        let cache = PageCache::default();
        assert!(kept(&cache, "b1", 1_000));
        let page = cache
            .page("b1", &TenantId::from_outside("t1"), 887, "fresh-nonce")
            .expect("served from memory");
        assert_eq!(page, rendered_with(113, "fresh-nonce"));
        assert!(!page.body.contains(DRAWN), "a kept page repeated its nonce");
        assert_eq!(cache.served_from_memory(), 1);
    }

    #[test]
    fn a_page_renders_the_same_whether_kept_or_filled_once() {
        assert_eq!(fill_once(rendered(TEMPLATE_SECS), 59), rendered(59));
        assert_eq!(fill_once(rendered(TEMPLATE_SECS), -3), rendered(0));
    }

    #[test]
    fn memory_does_not_answer_near_the_end_of_a_code_or_for_another_tenant() {
        let cache = PageCache::default();
        assert!(kept(&cache, "b1", 1_000));
        assert!(cache
            .page("b1", &TenantId::from_outside("t1"), 995, "n")
            .is_none());
        assert!(cache
            .page("b1", &TenantId::from_outside("t2"), 900, "n")
            .is_none());
        assert!(cache
            .page("b2", &TenantId::from_outside("t1"), 900, "n")
            .is_none());
    }

    fn denied(browser: &str, challenge: &str) -> Event {
        Event::Denied {
            challenge_id: ChallengeId::from_outside(challenge),
            browser: browser.into(),
            reason: "denied on the phone".into(),
        }
    }

    #[test]
    fn an_outcome_for_any_code_of_the_browser_forgets_its_page() {
        let cache = PageCache::default();
        assert!(kept(&cache, "b1", 1_000));
        assert!(kept(&cache, "b2", 1_000));
        cache.heard(&denied("b1", "an-older-code"));
        assert!(cache
            .page("b1", &TenantId::from_outside("t1"), 900, "n")
            .is_none());
        assert!(cache
            .page("b2", &TenantId::from_outside("t1"), 900, "n")
            .is_some());
        cache.heard(&Event::Approved {
            challenge_id: ChallengeId::from_outside("c1"),
            browser: "b2".into(),
        });
        assert!(cache
            .page("b2", &TenantId::from_outside("t1"), 900, "n")
            .is_none());
    }

    #[test]
    fn a_page_read_before_a_forgetting_is_not_kept() {
        let cache = PageCache::default();
        let before = cache.epoch();
        cache.heard(&denied("b1", "c1"));
        assert!(!cache.keep(&code("b1", 1_000), &rendered(TEMPLATE_SECS), before));
        assert!(cache
            .page("b1", &TenantId::from_outside("t1"), 900, "n")
            .is_none());
        assert!(cache
            .confirm(&code("b1", 1_000), 900, before, "n")
            .is_none());
    }

    #[test]
    fn confirming_trusts_the_page_of_the_same_code_again() {
        let cache = PageCache::default();
        assert!(kept(&cache, "b1", 1_000));
        let epoch = cache.epoch();
        let mut another = code("b1", 1_000);
        another.id = ChallengeId::from_outside("c2");
        assert!(cache.confirm(&another, 900, epoch, "n").is_none());
        assert_eq!(
            cache.confirm(&code("b1", 1_000), 900, epoch, "n"),
            Some(rendered_with(100, "n"))
        );
    }

    #[test]
    fn a_page_without_both_marks_or_with_a_mark_twice_is_not_kept() {
        let cache = PageCache::default();
        let once = rendered(TEMPLATE_SECS);
        let twice = Page {
            body: format!("{0}{0}", once.body),
            content_type: once.content_type.clone(),
            nonce: DRAWN.into(),
        };
        for page in [rendered(100), twice] {
            assert!(!cache.keep(&code("b1", 1_000), &page, cache.epoch()));
        }
    }

    #[test]
    fn tenant_changes_and_lost_messages_forget_pages() {
        let cache = PageCache::default();
        assert!(kept(&cache, "b1", 1_000));
        let changed = |id: &str| Event::TenantChanged {
            tenant_id: TenantId::from_outside(id),
        };
        cache.heard(&changed("t2"));
        assert!(cache
            .page("b1", &TenantId::from_outside("t1"), 900, "n")
            .is_some());
        cache.heard(&changed("t1"));
        assert!(cache
            .page("b1", &TenantId::from_outside("t1"), 900, "n")
            .is_none());
        assert!(kept(&cache, "b1", 1_000));
        cache.heard(&Event::SignedOut {
            user_id: crate::domain::UserId::from_outside("u1"),
            reason: "session revoked by an admin".into(),
        });
        assert!(cache
            .page("b1", &TenantId::from_outside("t1"), 900, "n")
            .is_some());
        cache.may_have_missed();
        assert!(cache
            .page("b1", &TenantId::from_outside("t1"), 900, "n")
            .is_none());
    }
}
