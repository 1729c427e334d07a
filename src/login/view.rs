//! What the login page shows. Only the server renders it (the page hydrates nothing), so
//! none of it travels as the page's data.

/// What the login page shows: the QR code, the match number and how long they are valid.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginView {
    pub tenant_name: String,
    pub challenge_id: String,
    pub match_number: u8,
    pub expires_in_secs: i64,
    pub expires_at: String,
    /// The code as SVG markup, drawn into the page.
    pub qr_svg: String,
    pub scan_url: String,
    pub demo: bool,
    pub base_url: String,
    /// Why the last sign-in did not happen, when the page has something to say.
    pub notice: Option<String>,
}

/// The login page's countdown, `m:ss`.
pub fn countdown_text(secs_left: i64) -> String {
    let s = secs_left.max(0);
    format!("{}:{:02}", s / 60, s % 60)
}
