use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A random identifier with `bytes` bytes of entropy, URL-safe.
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Hex SHA-256, for secrets that are only ever compared (binding cookies, mail codes).
pub fn sha256_hex(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

/// Formats a Unix time for people, in UTC.
pub fn format_time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Drops a `:port` suffix (`demo.localhost:3000` → `demo.localhost`).
pub fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port))
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') =>
        {
            h
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn strips_numeric_ports_only() {
        assert_eq!(strip_port("demo.localhost:3000"), "demo.localhost");
        assert_eq!(strip_port("demo.localhost"), "demo.localhost");
        assert_eq!(strip_port("localhost:"), "localhost:");
    }
}
