//! Logging, initialised once per process. Text by default, JSON lines with
//! `ATTUNE_LOG_FORMAT=json`. What may never be logged: passwords, tokens, emails,
//! private text, push keys. Types that hold them redact their `Debug`.

use tracing_subscriber::{EnvFilter, fmt, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogFormat;

pub fn init(filter: &str, format: LogFormat) {
    init_with_writer(filter, format, std::io::stdout);
}

/// As [`init`], writing to `writer` (tests capture the logs this way).
pub fn init_with_writer<W>(filter: &str, format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init`, so a second call is harmless.
    let _ = match format {
        LogFormat::Text => registry.with(fmt::layer().with_target(true).with_writer(writer)).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
    };
}

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static METRICS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();

/// The process-wide Prometheus recorder (metrics are global, so several apps in
/// one test process share it).
pub fn metrics_recorder() -> metrics_exporter_prometheus::PrometheusHandle {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    METRICS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// Renders the metrics, first refreshing the queue-depth gauge.
pub async fn render_metrics(queue: &crate::jobs::JobQueue) -> String {
    match queue.depth().await {
        Ok(depth) => {
            for (state, jobs) in
                [("pending", depth.pending), ("running", depth.running), ("scheduled", depth.scheduled)]
            {
                metrics::gauge!("attune_queue_depth", "state" => state).set(jobs as f64);
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read the queue depth"),
    }
    metrics_recorder().render()
}
