//! `campaign push`: queues each planned WAKE on the network server at its
//! `enqueue_at`, over the server's MQTT integration.
//!
//! WAKEs go out one at a time in `enqueue_at` order, each published at
//! QoS 1 and counted as sent only once the broker's PUBACK is in and the
//! progress file ([`crate::progress`]) says so on disk. When the
//! connection drops, the WAKE in flight is sent again on a new connection
//! (with backoff up to [`MAX_BACKOFF`]); acknowledged ones never are, even
//! across restarts of `campaign push` itself. A WAKE that cannot be queued
//! within `max_late` of its `enqueue_at` (the push started late, the
//! broker was down) is not sent: its delay would open the window at the
//! wrong time. It is reported, and a new plan can pick the meter up.
//!
//! Each WAKE is queued at its own time rather than all at once because a
//! class A meter receives a downlink at its first uplink after it is
//! queued, and the WAKE's delay counts from then.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use crate::deveui::DevEui;
use crate::link::{Link, LinkError, Session};
use crate::mqtt::{Broker, NetworkServer};
use crate::plan_csv::PlanRow;
use crate::progress::{Acknowledged, Progress, ProgressError};

/// The longest wait between two connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The first wait.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How to push.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The broker.
    pub broker: Broker,
    /// The network server behind it.
    pub server: NetworkServer,
    /// The MQTT client ID.
    pub client_id: String,
    /// A WAKE not queued this long after its `enqueue_at` is skipped.
    pub max_late: Duration,
    /// How long to wait for a PUBACK before reconnecting.
    pub ack_timeout: Duration,
}

/// What happens during a push, for the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum PushEvent {
    /// Connected to the broker.
    Connected,
    /// The connection failed or dropped; trying again after `retry_in`.
    Disconnected {
        /// What went wrong.
        error: String,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// Waiting for the next WAKE's time.
    Waiting {
        /// The next WAKE's `enqueue_at`.
        until: OffsetDateTime,
        /// WAKEs still to send.
        left: usize,
    },
    /// A WAKE was acknowledged by the broker.
    Sent {
        /// The meter.
        dev_eui: DevEui,
        /// The topic.
        topic: String,
        /// How long after its `enqueue_at`.
        late: Duration,
    },
    /// A WAKE was skipped: too late.
    Skipped {
        /// The meter.
        dev_eui: DevEui,
        /// How long after its `enqueue_at` it would have gone.
        late: Duration,
    },
}

/// How a push ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSummary {
    /// WAKEs sent by this run.
    pub sent: usize,
    /// WAKEs an earlier run had sent.
    pub already_sent: usize,
    /// WAKEs not sent because they were too late.
    pub skipped: Vec<DevEui>,
}

/// Why a push stopped.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The progress file failed.
    #[error(transparent)]
    Progress(#[from] ProgressError),
    /// The first connection failed, or the broker refused the client.
    #[error("cannot publish to {broker}: {error}")]
    Connect {
        /// The broker.
        broker: String,
        /// Why.
        error: LinkError,
    },
}

/// Sends every WAKE of `rows` not yet in `progress`, each at its
/// `enqueue_at`, calling `events` as it goes.
///
/// # Errors
///
/// [`PushError`]: the first connection fails (nothing is sent), the
/// broker refuses the credentials, or the progress file cannot be
/// written. Connections lost later are retried.
pub async fn push(
    rows: &[PlanRow],
    progress: &mut Progress,
    config: &PushConfig,
    events: &mut (dyn FnMut(PushEvent) + Send),
) -> Result<PushSummary, PushError> {
    let mut pending: Vec<&PlanRow> = rows
        .iter()
        .filter(|r| !progress.acknowledged().contains(r.dev_eui))
        .collect();
    pending.sort_by_key(|r| (r.enqueue_at, r.dev_eui));
    let mut summary = PushSummary {
        already_sent: rows.len() - pending.len(),
        ..PushSummary::default()
    };
    if pending.is_empty() {
        return Ok(summary);
    }
    let connect_error = |error| PushError::Connect {
        broker: config.broker.to_string(),
        error,
    };
    let mut link = Some(
        Link::connect(&config.broker, &config.client_id, Session::Clean)
            .await
            .map_err(connect_error)?,
    );
    events(PushEvent::Connected);
    let mut backoff = FIRST_BACKOFF;
    for (i, row) in pending.iter().enumerate() {
        if row.enqueue_at > now() {
            events(PushEvent::Waiting {
                until: row.enqueue_at,
                left: pending.len() - i,
            });
            if let Err(error) = idle(&mut link, row.enqueue_at).await {
                events(PushEvent::Disconnected {
                    error: error.to_string(),
                    retry_in: Duration::ZERO,
                });
            }
        }
        let topic = config.server.downlink_topic(row.dev_eui);
        let message = config
            .server
            .downlink_message(row.dev_eui, row.fport, &row.payload());
        let deadline = row.enqueue_at + config.max_late;
        loop {
            let late = lateness(row.enqueue_at);
            if now() > deadline {
                events(PushEvent::Skipped {
                    dev_eui: row.dev_eui,
                    late,
                });
                summary.skipped.push(row.dev_eui);
                break;
            }
            let attempt = match link.as_mut() {
                Some(l) => {
                    l.publish_acked(&topic, message.clone().into_bytes(), config.ack_timeout)
                        .await
                }
                None => {
                    match Link::connect(&config.broker, &config.client_id, Session::Clean).await {
                        Ok(l) => {
                            events(PushEvent::Connected);
                            link = Some(l);
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match attempt {
                Ok(()) => {
                    progress.record(row.dev_eui, now())?;
                    summary.sent += 1;
                    backoff = FIRST_BACKOFF;
                    events(PushEvent::Sent {
                        dev_eui: row.dev_eui,
                        topic: topic.clone(),
                        late,
                    });
                    break;
                }
                Err(error) if error.is_fatal() => return Err(connect_error(error)),
                Err(error) => {
                    link = None;
                    events(PushEvent::Disconnected {
                        error: error.to_string(),
                        retry_in: backoff,
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
    if let Some(link) = link {
        link.disconnect().await;
    }
    Ok(summary)
}

/// Keeps the connection alive until `until`. A connection that drops
/// meanwhile is closed (the next publish reconnects) and its error
/// returned once the time has come.
async fn idle(link: &mut Option<Link>, until: OffsetDateTime) -> Result<(), LinkError> {
    let wait = sleep_until(until);
    tokio::pin!(wait);
    while let Some(l) = link.as_mut() {
        tokio::select! {
            () = &mut wait => return Ok(()),
            event = l.next() => if let Err(error) = event {
                *link = None;
                wait.await;
                return Err(error);
            },
        }
    }
    wait.await;
    Ok(())
}

fn sleep_until(t: OffsetDateTime) -> impl Future<Output = ()> {
    let wait = (t - now()).max(time::Duration::ZERO);
    tokio::time::sleep(wait.unsigned_abs())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// How long ago `t` was (zero if in the future).
fn lateness(t: OffsetDateTime) -> Duration {
    (now() - t).max(time::Duration::ZERO).unsigned_abs()
}

/// The `--dry-run` listing: for every row, whether it was already sent,
/// its `enqueue_at`, topic and message.
pub fn dry_run(rows: &[PlanRow], acked: &Acknowledged, server: &NetworkServer) -> Vec<String> {
    let mut rows: Vec<&PlanRow> = rows.iter().collect();
    rows.sort_by_key(|r| (r.enqueue_at, r.dev_eui));
    rows.iter()
        .map(|r| {
            let status = if acked.contains(r.dev_eui) {
                "sent"
            } else {
                "todo"
            };
            format!(
                "{status} {} {} {}",
                crate::clock::format(r.enqueue_at),
                server.downlink_topic(r.dev_eui),
                server.downlink_message(r.dev_eui, r.fport, &r.payload())
            )
        })
        .collect()
}
