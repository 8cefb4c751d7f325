//! Where reports go: a small trait over the van's SQLite file and the
//! fleet's PostgreSQL.
//!
//! A van stores into its own SQLite file by default ([`SqliteBackend`] over
//! [`ReportStore`]); with `--db postgres://...` several vans and the office
//! share one table ([`postgres::PgStore`]); [`StoreLocation`] is which.
//! Either way every report carries the van's id and a stable key
//! ([`identity`]), and inserts skip a key already stored, so re-sent
//! reports are stored once. With `otavan serve --gpsd` each report also
//! carries the van's position ([`VanFix`]), and the van's trace is kept.
//!
//! Rows come back as [`StoredReport`]s with typed fields ([`ReportTime`],
//! [`StoredState`] by [`Source`], [`VanId`]), checked where they leave the
//! database: a row otavan did not write is a [`BadRow`] error.
//!
//! The trait's methods return boxed futures: the server holds the backend as
//! `Arc<dyn ReportBackend>`, chosen at start. Reports arrive at meter pace
//! (a handful a second), so one allocation per call does not matter;
//! nothing here is on the manifest or download path.

pub mod fix;
pub mod halts;
pub mod identity;
pub mod location;
pub mod postgres;
pub mod reports;
mod row;
mod spreadsheet;
pub mod sqlite;
pub mod sync;
mod time;

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use otavan_protocol::{Report, UpdateState, Version};

pub use crate::reports::{ReportStore, StoreError};
pub use fix::VanFix;
pub use identity::VanId;
pub use location::StoreLocation;
pub use row::{BadRow, Source, StoredReport, StoredState, Verification};
pub use sqlite::SqliteBackend;
pub use time::{BadTime, ReportTime};

/// What a store call eventually yields.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Whether an insert stored a new row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The report was new.
    New,
    /// A report with the same key was already stored; nothing changed.
    Duplicate,
}

/// What the dashboard asks a store.
#[derive(Debug, Clone)]
pub struct SummaryQuery {
    /// Count meters updating to this version.
    pub target: Version,
    /// This van's session: reports from `van` at or after `since`.
    pub van: VanId,
    /// Start of the session.
    pub since: ReportTime,
    /// How many of the most recent failures to list.
    pub recent_failures: u32,
    /// Count only reports known to come from their meters
    /// (`--require-signed-reports`): verified van reports, and LoRa status
    /// uplinks saying the meter runs the target after an update (the
    /// network authenticated them), which count as UPDATED.
    pub authenticated_only: bool,
}

/// The store's side of the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Meters updating to the target, each counted once in its latest
    /// state, in [`UpdateState::ALL`] order.
    pub by_state: [u64; 6],
    /// Meters whose latest report toward the target has a state this build
    /// does not know (written by other tools).
    pub other_state: u64,
    /// Van reports toward the target that are not verified (left out of
    /// the counts with [`SummaryQuery::authenticated_only`]).
    pub unverified_reports: u64,
    /// Distinct meters that reported to this van this session.
    pub session_meters: u64,
    /// Reports this van stored this session.
    pub session_reports: u64,
    /// Every report in the store (all vans).
    pub total_reports: u64,
    /// The latest FAILED reports, newest first.
    pub recent_failures: Vec<StoredReport>,
}

impl Summary {
    /// Meters updating to the target.
    pub fn meters(&self) -> u64 {
        self.by_state.iter().sum::<u64>() + self.other_state
    }

    /// Meters whose latest state toward the target is `state`.
    pub fn count(&self, state: UpdateState) -> u64 {
        let i = UpdateState::ALL
            .iter()
            .position(|s| *s == state)
            .expect("ALL lists every state");
        self.by_state[i]
    }

    /// Adds `n` meters whose latest state is called `state`.
    pub(crate) fn add_state(&mut self, state: &str, n: u64) {
        match UpdateState::ALL.iter().position(|s| s.as_str() == state) {
            Some(i) => self.by_state[i] += n,
            None => self.other_state += n,
        }
    }
}

/// A report store as the server uses it, for one van.
///
/// Implementations stamp every report with their van's id and its
/// [`identity::report_key`], and store each key once.
pub trait ReportBackend: Send + Sync {
    /// Stores `report`, received at `time` and checked as `verification`
    /// while the van was at `fix` (`None`: no position known), unless its
    /// key is already stored.
    fn insert<'a>(
        &'a self,
        report: &'a Report,
        verification: Verification,
        time: SystemTime,
        fix: Option<VanFix>,
    ) -> StoreFuture<'a, Inserted>;

    /// Each meter's latest van-report state toward `target` (every van's
    /// reports), as `(device_id, state)`: the crew map's colours.
    fn latest_states<'a>(&'a self, target: &'a Version) -> StoreFuture<'a, Vec<(String, String)>>;

    /// Adds `fix` to this van's trace.
    fn record_fix(&self, fix: VanFix) -> StoreFuture<'_, ()>;

    /// This van's trace from `since` on, oldest first.
    fn trace(&self, since: ReportTime) -> StoreFuture<'_, Vec<VanFix>>;

    /// Every report as CSV ([`crate::reports::CSV_HEADER`]), oldest first.
    fn export_csv(&self) -> StoreFuture<'_, Vec<u8>>;

    /// Counts and recent failures for the dashboard.
    fn summary<'a>(&'a self, query: &'a SummaryQuery) -> StoreFuture<'a, Summary>;

    /// A meter's reports, oldest first, at most `limit` (the latest ones).
    fn device_history<'a>(
        &'a self,
        device_id: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredReport>>;

    /// Where reports go, for logs and the dashboard (no password).
    fn describe(&self) -> String;

    /// The van whose reports this backend stores.
    fn van(&self) -> &VanId;

    /// Campaigns halted and not resumed ([`halts`]); a van's SQLite file
    /// has none.
    fn active_halts(&self) -> StoreFuture<'_, Vec<halts::HaltRecord>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
