//! Logs (tracing, to stderr) and the signals that stop a server.

use tracing_subscriber::filter::Targets;

use crate::Failure;

/// Sends log lines at or above `filter` (`info`, or `warn,zerok=debug`) to stderr.
pub fn init(filter: &str) -> Result<(), Failure> {
    let targets: Targets = filter.parse().map_err(|e| Failure::msg(&format!("log filter {filter:?}: {e}")))?;
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    use tracing_subscriber::layer::SubscriberExt as _;
    tracing::subscriber::set_global_default(subscriber.with(targets))
        .map_err(|e| Failure::msg(&format!("cannot set up logging: {e}")))
}

/// Returns on Ctrl-C, or on SIGTERM (what service managers and container runtimes send).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
