//! Unix signals for `otavan serve`: SIGHUP re-indexes, SIGINT and SIGTERM
//! shut down gracefully.

use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::server::Server;

/// Runs `server` until SIGINT or SIGTERM, re-indexing the release on every
/// SIGHUP in the background.
pub async fn serve_until_signalled(server: Server) -> std::io::Result<()> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let reloader = server.reloader();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            info!("SIGHUP: re-indexing the release");
            let reloader = reloader.clone();
            // Failures are logged by the reload itself; the old release stays.
            tokio::spawn(async move { reloader.reload().await });
        }
    });
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => info!("SIGINT received"),
            _ = terminate.recv() => info!("SIGTERM received"),
        }
    };
    server.run(shutdown).await;
    Ok(())
}
