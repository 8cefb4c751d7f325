//! The fleet database's `halts` table: campaigns halted by a tripped wave
//! gate (`otavan campaign halt --fleet-db`), which every van on the fleet
//! database stops offering until `campaign resume` marks them resumed.
//!
//! Columns: `id`, `campaign`, `target`, `reason` (the figures and
//! thresholds that tripped the gate), `figures` (the same as JSON),
//! `halted_at`, `resumed_at` (RFC 3339 text; `NULL` while halted). The
//! van's SQLite file has no such table (its schema is unchanged): a van
//! without the fleet database gets a signed halt file instead.

use crate::StoreError;
use crate::postgres::PgStore;

/// One halt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaltRecord {
    /// The campaign number its WAKEs carried.
    pub campaign: u16,
    /// The target version not to offer.
    pub target: String,
    /// Why, in words, with the figures and thresholds.
    pub reason: String,
    /// The figures and thresholds as JSON.
    pub figures: String,
    /// When it was decided (RFC 3339).
    pub halted_at: String,
    /// When it was resumed, if it was.
    pub resumed_at: Option<String>,
}

/// The table (created with the reports table).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS halts (
    id BIGSERIAL PRIMARY KEY,
    campaign INTEGER NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    figures TEXT NOT NULL,
    halted_at TEXT NOT NULL,
    resumed_at TEXT
);
";

impl PgStore {
    /// Stores `halt`.
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn record_halt(&self, halt: &HaltRecord) -> Result<(), StoreError> {
        let campaign = i32::from(halt.campaign);
        self.with_client(|client| async move {
            client
                .execute(
                    "INSERT INTO halts (campaign, target, reason, figures, halted_at, resumed_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &campaign,
                        &halt.target,
                        &halt.reason,
                        &halt.figures,
                        &halt.halted_at,
                        &halt.resumed_at,
                    ],
                )
                .await
        })
        .await
        .map(|_| ())
    }

    /// Marks `campaign`'s halts of `target` resumed at `at`; how many were
    /// halted.
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn resume_halts(
        &self,
        campaign: u16,
        target: &str,
        at: &str,
    ) -> Result<u64, StoreError> {
        let campaign = i32::from(campaign);
        self.with_client(|client| async move {
            client
                .execute(
                    "UPDATE halts SET resumed_at = $3
                     WHERE campaign = $1 AND target = $2 AND resumed_at IS NULL",
                    &[&campaign, &target, &at],
                )
                .await
        })
        .await
    }

    /// The halts not resumed, oldest first.
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn active_halts(&self) -> Result<Vec<HaltRecord>, StoreError> {
        let rows = self
            .with_client(|client| async move {
                client
                    .query(
                        "SELECT campaign, target, reason, figures, halted_at, resumed_at
                         FROM halts WHERE resumed_at IS NULL ORDER BY id",
                        &[],
                    )
                    .await
            })
            .await?;
        Ok(rows
            .iter()
            .map(|row| HaltRecord {
                campaign: u16::try_from(row.get::<_, i32>(0)).unwrap_or(0),
                target: row.get(1),
                reason: row.get(2),
                figures: row.get(3),
                halted_at: row.get(4),
                resumed_at: row.get(5),
            })
            .collect())
    }
}
