//! `otavan reports sync`: a van's SQLite file into the fleet's PostgreSQL,
//! exactly once.
//!
//! Rows go in batches, each one `INSERT ... ON CONFLICT DO NOTHING`
//! statement keyed by the rows' stable keys: a batch is stored whole or not
//! at all, and a row already there (from an earlier sync, an interrupted
//! one, or because the van was online with `--db postgres://`) is skipped.
//! So running it twice, or again after a cut, adds nothing twice.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::identity::VanId;
use super::postgres::PgStore;
use super::{ReportStore, StoreError};

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Rows per statement.
    pub batch: u32,
    /// The van id for rows stored before van ids existed.
    pub van: VanId,
}

/// Where a sync is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Rows read from the van's file so far.
    pub read: u64,
    /// Of those, rows the fleet database did not have.
    pub inserted: u64,
}

impl SyncProgress {
    /// Rows the fleet database already had.
    pub fn already_there(&self) -> u64 {
        self.read - self.inserted
    }
}

/// Copies every row of `from` into `to`, calling `progress` after each
/// batch; it can stop the sync early ([`ControlFlow::Break`]), leaving it
/// where a cut would.
pub async fn sync(
    from: Arc<ReportStore>,
    to: &PgStore,
    options: &SyncOptions,
    mut progress: impl FnMut(&SyncProgress) -> ControlFlow<()>,
) -> Result<SyncProgress, StoreError> {
    let mut done = SyncProgress::default();
    let mut after = 0;
    loop {
        let store = Arc::clone(&from);
        let batch = options.batch.max(1);
        let rows = tokio::task::spawn_blocking(move || store.rows_after(after, batch)).await??;
        let Some(last) = rows.last() else {
            return Ok(done);
        };
        after = last.id;
        done.inserted += to.insert_rows(&rows, &options.van).await?;
        done.read += rows.len() as u64;
        if progress(&done).is_break() {
            return Ok(done);
        }
    }
}
