use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// Logs to stderr (standard output is for what a command prints, such as `gatehouse
/// reconcile`'s report); `RUST_LOG` refines the default of `info`. Colours only on a terminal;
/// `GATEHOUSE_LOG_FORMAT=json` writes one JSON object per line, with the request's span
/// fields, for log collectors.
pub fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("GATEHOUSE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// Buckets of `gatehouse_offboarding_seconds` (a change first seen → the user's access
/// ended), from a notification's few seconds to a four-hour poll and a held run an admin
/// decided the next day. Other histograms are summaries.
const SECONDS_TO_REVOKE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0,
];

/// The process-wide Prometheus recorder (metrics recorders are global by design; tests
/// start many apps in one process, so it is installed once and shared).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("gatehouse_offboarding_seconds".into()),
                    SECONDS_TO_REVOKE_BUCKETS,
                )
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
