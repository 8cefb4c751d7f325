//! Unix signals for `otavan serve`: SIGHUP re-indexes and reads the halt
//! file again, SIGINT and SIGTERM shut down gracefully.

use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::server::Server;

/// Runs `server` until SIGINT or SIGTERM, re-indexing the release (in the
/// background) and reading the halt file again on every SIGHUP.
pub async fn serve_until_signalled(server: Server) -> std::io::Result<()> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let reloader = server.reloader();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            info!("SIGHUP: re-indexing the release, reading the halt file again");
            reloader.reread_halt();
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
