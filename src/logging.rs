//! Logging: tracing to stderr and to a daily file under `RATCHET_HOME/logs/`. Never stdout,
//! which carries the protocol.

mod daily_file;

use std::path::Path;

pub use daily_file::DailyFile;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log lines that may wait for the file writer's thread. ratchet writes a few lines per turn,
/// so bursts fit easily; past it lines are dropped, never waited for (the protocol must not
/// stall on a log). The writer's channel preallocates its slots: tracing-appender's default
/// of 128,000 lines kept 4 MiB resident in every process, a quarter of an idle `ratchet acp`.
const LOG_BUFFER_LINES: usize = 1024;

/// Starts logging. `default_level` applies when `RUST_LOG` is not set. Keep the returned
/// guard alive: dropping it flushes the file writer.
///
/// A log file that cannot be opened (read-only data directory, unwritable file) leaves
/// logging on stderr only, with one warning saying why: logs are never a reason not to start.
pub fn init(home: &Path, default_level: &str) -> Option<WorkerGuard> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter_fn(filter());
    let logs = home.join("logs");
    let (file, guard, failure) = match DailyFile::open(&logs) {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_BUFFER_LINES)
                .lossy(true)
                .finish(appender);
            let layer = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false).with_filter_fn(filter());
            (Some(layer), Some(guard), None)
        }
        Err(e) => (None, None, Some(e)),
    };
    let _ = tracing_subscriber::registry().with(stderr).with(file).try_init();
    if let Some(e) = failure {
        tracing::warn!("cannot write log files in {}: {e}; logging to stderr only", logs.display());
    }
    guard
}

trait WithFilter<S>: Sized {
    fn with_filter_fn(self, filter: EnvFilter) -> tracing_subscriber::filter::Filtered<Self, EnvFilter, S>;
}

impl<S, L> WithFilter<S> for L
where
    S: tracing::Subscriber,
    L: tracing_subscriber::Layer<S>,
{
    fn with_filter_fn(self, filter: EnvFilter) -> tracing_subscriber::filter::Filtered<Self, EnvFilter, S> {
        tracing_subscriber::Layer::with_filter(self, filter)
    }
}
