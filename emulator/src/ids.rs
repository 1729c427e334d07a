//! Identifiers: the random ones the emulator draws (GUIDs, opaque tokens) and the fixed ones by
//! which Microsoft names Graph. Every other module may use this one; it uses none of them.

use base64::Engine as _;
use rand::RngCore;

/// The audience Graph access tokens carry.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Graph's well-known application id, also accepted as a resource name and an audience.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// A random identifier with `bytes` bytes of entropy, URL-safe.
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A random GUID in the lowercase form Entra prints.
pub fn new_guid() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// True for the 8-4-4-4-12 hex form.
#[cfg(test)]
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_guid_has_the_entra_form() {
        assert!(is_guid(&new_guid()));
        assert!(!is_guid("contoso.com"));
    }
}
