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
