//! The login page's QR code, drawn once per challenge: choosing the best mask pattern costs
//! more than the rest of the page, and a page is reloaded every few seconds without JavaScript.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Beyond this many remembered codes, expired ones are dropped; if all are live, all are.
const MAX_CODES: usize = 4096;

/// QR codes as SVG by challenge id, each kept until its challenge expires.
#[derive(Default)]
pub struct QrCodes {
    by_challenge: Mutex<HashMap<String, (Arc<str>, i64)>>,
}

impl QrCodes {
    /// The SVG for `data`, the scan link of challenge `id` that expires at `expires_at`.
    pub fn svg(&self, id: &str, expires_at: i64, data: &str) -> Arc<str> {
        if let Some((svg, _)) = self.codes().get(id) {
            return svg.clone();
        }
        let svg: Arc<str> = render(data).into();
        let mut codes = self.codes();
        if codes.len() >= MAX_CODES {
            let at = crate::server::util::now();
            codes.retain(|_, (_, expires)| *expires > at);
            if codes.len() >= MAX_CODES {
                codes.clear();
            }
        }
        codes.insert(id.to_string(), (svg.clone(), expires_at));
        svg
    }

    fn codes(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<str>, i64)>> {
        self.by_challenge.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The QR code as inline SVG: one path with a horizontal run per row segment, a quarter of
/// the size of a square per module, since the login page is loaded over and over.
fn render(data: &str) -> String {
    let Ok(code) = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M) else {
        return String::new();
    };
    let width = code.width();
    let colors = code.to_colors();
    let quiet = 4;
    let mut path = String::with_capacity(width * width);
    for y in 0..width {
        let row = &colors[y * width..(y + 1) * width];
        let mut x = 0;
        while x < width {
            if row[x] == qrcode::Color::Dark {
                let start = x;
                while x < width && row[x] == qrcode::Color::Dark {
                    x += 1;
                }
                path.push_str(&format!(
                    "M{} {}h{}v1h-{}z",
                    start + quiet,
                    y + quiet,
                    x - start,
                    x - start
                ));
            } else {
                x += 1;
            }
        }
    }
    let size = width + 2 * quiet;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"240\" height=\"240\" \
         shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code to scan with the Gatehouse app\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#111827\" d=\"{path}\"/></svg>"
    )
}
