//! How long browsers keep what Gatehouse sends. The WebAssembly, JS and CSS under `/pkg/`
//! carry a hash of their content in their names (cargo-leptos `hash-files`), so a name never
//! means two contents: kept for a year. Everything else is asked for again each time (a
//! `304` when unchanged), and pages, which hold a person's data, stay out of shared caches.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

const HASHED_ASSET: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "private, no-cache";

/// The middleware; its state says whether the assets' names are hashed (a site built
/// without hashes keeps its names across builds, and must be asked for again).
pub async fn cache_policy(State(hashed): State<bool>, req: Request, next: Next) -> Response {
    let immutable = hashed && req.uri().path().starts_with("/pkg/");
    let mut res = next.run(req).await;
    // A 304 carries the headers the browser stores with its copy: it keeps the year too.
    let kept = res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED;
    let value = if immutable && kept {
        HASHED_ASSET
    } else {
        REVALIDATE
    };
    res.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(value));
    // A precompressed copy is one of several answers for its address: a shared cache must
    // keep them apart by what each browser accepts.
    if res.headers().contains_key(header::CONTENT_ENCODING)
        && !res.headers().contains_key(header::VARY)
    {
        res.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

/// `hash.txt` next to the server binary, where cargo-leptos writes it and Leptos reads it.
fn hash_file() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("hash.txt")).filter(|file| file.is_file())
}

/// Whether this binary's site was built with hashed asset names.
pub fn site_is_hashed() -> bool {
    hash_file().is_some()
}

/// The stylesheet's address, for the few pages written by hand (Leptos's pages get it from
/// `HashedStylesheet`): `/pkg/gatehouse.{hash}.css` when the site is hashed.
pub fn stylesheet_href() -> &'static str {
    static HREF: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HREF.get_or_init(|| {
        let hash = hash_file()
            .and_then(|file| std::fs::read_to_string(file).ok())
            .and_then(|text| {
                text.lines()
                    .filter_map(|line| line.trim().split_once(':'))
                    .find(|(kind, _)| kind.trim() == "css")
                    .map(|(_, hash)| hash.trim().to_string())
            });
        match hash {
            Some(hash) => format!("/pkg/gatehouse.{hash}.css"),
            None => "/pkg/gatehouse.css".into(),
        }
    })
}
