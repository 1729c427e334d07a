//! Random identifiers: the opaque tokens the emulator hands out (codes, key ids, control
//! tokens, delta epochs).

use base64::Engine as _;
use rand::RngCore;

/// A random identifier with `bytes` bytes of entropy, URL-safe.
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
