//! The few HTML helpers the sign-in, consent and control pages share.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page in the emulator's plain "Microsoft-like" frame.
pub fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{t}</title><link rel="icon" href="data:,"><style>
body{{font-family:"Segoe UI",system-ui,sans-serif;background:#f2f2f2;margin:0}}
main{{max-width:440px;margin:48px auto;background:#fff;padding:36px 44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}}
main.wide{{max-width:960px}}
h1{{font-size:1.5rem;font-weight:600}} .brand{{font-weight:600;color:#5e5e5e}} .emu{{font-size:.8rem;color:#a4262c}}
button{{background:#0067b8;color:#fff;border:0;padding:8px 20px;margin:4px 4px 4px 0;cursor:pointer}}
button.secondary{{background:#ccc;color:#000}} label{{display:block;padding:6px 0}} li{{padding:2px 0}}
table{{border-collapse:collapse;width:100%}} td,th{{border-bottom:1px solid #ddd;padding:4px;text-align:left;font-size:.9rem}}
</style></head><body><main{wide}><div class="brand">Microsoft</div><div class="emu">Entra emulator: not a real Microsoft sign-in</div><h1>{t}</h1>{body}</main></body></html>"#,
        t = esc(title),
        wide = if body.contains("<table") {
            " class=\"wide\""
        } else {
            ""
        },
    ))
}

/// Hidden inputs carrying request parameters through a form post.
pub fn hidden(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                esc(k),
                esc(v)
            )
        })
        .collect()
}

/// An error page, the way Microsoft shows errors it will not send back to a redirect URI.
pub fn error_page(status: StatusCode, line: &str) -> Response {
    (
        status,
        page(
            "Sorry, but we're having trouble signing you in.",
            &format!("<p id=\"error\">{}</p>", esc(line)),
        ),
    )
        .into_response()
}

/// A 302 to `url`, as the identity platform answers.
pub fn found(url: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}
