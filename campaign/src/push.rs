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
//!
//! A multicast plan adds GROUPS.csv's rows ([`Downlink::group_row`]):
//! the setups, unicast on the setup FPort, each skipped after its
//! `send_by`; then each group's multicast WAKE, queued after its setups
//! for transmission at `transmit_at`. All go through the same loop, in
//! `enqueue_at` order (a group WAKE after every setup due at the same
//! time), with the same acknowledgement and progress file. A standing
//! plan's rows go the same way: its installation setups like setups, each
//! slot WAKE like a group WAKE at its own `transmit_at` (its own progress
//! ID); `member` rows send nothing.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use crate::chirpstack::{self, ApiConfig, ApiError, GroupWake};
use crate::groups_csv::{GroupKeys, GroupRow};
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
    /// ChirpStack's gRPC API, for group WAKEs on ChirpStack.
    pub chirpstack_api: Option<ApiConfig>,
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
    /// A downlink was acknowledged by the broker.
    Sent {
        /// The downlink: a WAKE's DevEUI, `setup-DEVEUI`, `group-MCADDR`.
        id: String,
        /// The topic.
        topic: String,
        /// How long after its `enqueue_at`.
        late: Duration,
    },
    /// A downlink was skipped: too late.
    Skipped {
        /// The downlink.
        id: String,
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
    /// Downlinks not sent because they were too late, by ID.
    pub skipped: Vec<String>,
}

/// Why a push stopped.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The progress file failed.
    #[error(transparent)]
    Progress(#[from] ProgressError),
    /// ChirpStack's API refused a group WAKE.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A group WAKE for ChirpStack, and no `chirpstack_api`.
    #[error("a ChirpStack group WAKE needs its gRPC API: give --chirpstack-api URL")]
    NoApi,
    /// The first connection failed, or the broker refused the client.
    #[error("cannot publish to {broker}: {error}")]
    Connect {
        /// The broker.
        broker: String,
        /// Why.
        error: LinkError,
    },
}

/// One downlink to queue: a WAKE, a multicast setup or a group WAKE.
#[derive(Debug, Clone, PartialEq)]
pub struct Downlink {
    /// What the progress file records: a WAKE's DevEUI, `setup-DEVEUI`,
    /// `group-MCADDR`.
    pub id: String,
    /// Not queued before.
    pub enqueue_at: OffsetDateTime,
    /// Skipped when it cannot be queued by then.
    pub deadline: OffsetDateTime,
    /// Sent after the others of the same `enqueue_at` (a group WAKE).
    pub last: bool,
    /// The topic (for a ChirpStack group WAKE: the gRPC call).
    pub topic: String,
    /// The JSON message (for a ChirpStack group WAKE: what is enqueued,
    /// without the keys).
    pub message: String,
    /// A ChirpStack group WAKE goes through its gRPC API, not MQTT.
    pub grpc: Option<GroupWake>,
}

impl Downlink {
    /// A PLAN.csv WAKE, skipped `max_late` after its `enqueue_at`.
    pub fn wake(row: &PlanRow, server: &NetworkServer, max_late: Duration) -> Downlink {
        Downlink {
            id: row.dev_eui.to_string(),
            enqueue_at: row.enqueue_at,
            deadline: row.enqueue_at + max_late,
            last: false,
            topic: server.downlink_topic(row.dev_eui),
            message: server.downlink_message(row.dev_eui, row.fport, &row.payload()),
            grpc: None,
        }
    }

    /// GROUPS.csv's rows: setups by unicast; each group WAKE to its
    /// multicast device through `gateways` (The Things Stack), or through
    /// ChirpStack's gRPC API at its `transmit_at` with its members and
    /// `keys` (ChirpStack, where a TS005 group is created then, a
    /// standing one at its first WAKE). `member` rows send nothing.
    ///
    /// # Errors
    ///
    /// What [`NetworkServer::multicast_downlink`] refuses; a group without
    /// keys.
    pub fn group_rows(
        rows: &[GroupRow],
        server: &NetworkServer,
        gateways: &[String],
        keys: &std::collections::HashMap<u32, GroupKeys>,
        region: otavan_protocol::region::Region,
    ) -> Result<Vec<Downlink>, String> {
        let members = |group: u32| -> Vec<_> {
            rows.iter()
                .filter(|r| r.mc_addr() == group)
                .filter_map(GroupRow::dev_eui)
                .collect()
        };
        let group_wake = |mc_addr: &u32,
                          fport: &u8,
                          wake: &otavan_protocol::lora::Wake,
                          expires_at: OffsetDateTime,
                          standing: bool| {
            keys.get(mc_addr)
                .map(|keys| GroupWake {
                    keys: keys.clone(),
                    members: members(*mc_addr),
                    region,
                    fport: *fport,
                    payload: wake.encode(),
                    expires_at,
                    standing,
                })
                .ok_or_else(|| format!("no keys for group {mc_addr:08X}"))
        };
        rows.iter()
            .filter(|row| row.enqueue_at().is_some())
            .map(|row| match (server, row) {
                (
                    NetworkServer::ChirpStack { .. },
                    GroupRow::Wake {
                        mc_addr,
                        transmit_at,
                        fport,
                        wake,
                        ..
                    },
                ) => Ok(Downlink::chirpstack(
                    // The window opened 5 s before the frame and lasts
                    // 128 s.
                    group_wake(
                        mc_addr,
                        fport,
                        wake,
                        *transmit_at + Duration::from_secs(55),
                        false,
                    )?,
                    *transmit_at,
                    Duration::from_secs(20),
                    row.progress_key(),
                )),
                (
                    NetworkServer::ChirpStack { .. },
                    GroupRow::SlotWake {
                        mc_addr,
                        transmit_at,
                        fport,
                        wake,
                        ..
                    },
                ) => Ok(Downlink::chirpstack(
                    // The slot's window closes 6 s after the frame is
                    // due; the frame takes 1.5 s.
                    group_wake(
                        mc_addr,
                        fport,
                        wake,
                        *transmit_at + Duration::from_secs(6),
                        true,
                    )?,
                    *transmit_at,
                    Duration::from_secs(3),
                    row.progress_key(),
                )),
                _ => Downlink::group_row(row, server, gateways),
            })
            .collect()
    }

    /// A ChirpStack group WAKE, queued at `at` (ChirpStack sends it as
    /// soon as it is queued), skipped `grace` later.
    fn chirpstack(wake: GroupWake, at: OffsetDateTime, grace: Duration, id: String) -> Downlink {
        let message = serde_json::json!({
            "multicastGroup": format!("otavan-{:08x}", wake.keys.mc_addr),
            "devices": wake.members.len(),
            "fPort": wake.fport,
            "data": hex::encode(&wake.payload),
            "expiresAt": crate::clock::format(wake.expires_at),
        });
        Downlink {
            id,
            enqueue_at: at,
            deadline: at + grace,
            last: true,
            topic: if wake.standing {
                "grpc:api.MulticastGroupService/List(+Create+AddDevice+AddGateway)+Enqueue"
            } else {
                "grpc:api.MulticastGroupService/Create+AddDevice+AddGateway+Enqueue"
            }
            .into(),
            message: message.to_string(),
            grpc: Some(wake),
        }
    }

    /// A GROUPS.csv row: a setup (TS005 or standing) by unicast, a group
    /// WAKE (TS005 or in a slot) to the group's multicast device through
    /// `gateways` at its `transmit_at`; each skipped after its `send_by`.
    ///
    /// # Errors
    ///
    /// For a group WAKE, what [`NetworkServer::multicast_downlink`]
    /// refuses; a `member` row, which sends nothing.
    pub fn group_row(
        row: &GroupRow,
        server: &NetworkServer,
        gateways: &[String],
    ) -> Result<Downlink, String> {
        let (topic, message, last) = match row {
            GroupRow::Setup {
                dev_eui,
                fport,
                frame,
                ..
            }
            | GroupRow::Standing {
                dev_eui,
                fport,
                frame,
                ..
            } => (
                server.downlink_topic(*dev_eui),
                server.downlink_message(*dev_eui, *fport, frame),
                false,
            ),
            GroupRow::Wake {
                mc_addr,
                transmit_at,
                fport,
                wake,
                ..
            }
            | GroupRow::SlotWake {
                mc_addr,
                transmit_at,
                fport,
                wake,
                ..
            } => {
                let (topic, message) = server.multicast_downlink(
                    *mc_addr,
                    *fport,
                    &wake.encode(),
                    *transmit_at,
                    gateways,
                )?;
                (topic, message, true)
            }
            GroupRow::Member { dev_eui, .. } => {
                return Err(format!("{dev_eui} is a member row: nothing to send"));
            }
        };
        let (enqueue_at, deadline) = row
            .enqueue_at()
            .zip(row.send_by())
            .ok_or_else(|| format!("{} has no times", row.progress_key()))?;
        Ok(Downlink {
            id: row.progress_key(),
            enqueue_at,
            deadline,
            last,
            topic,
            message,
            grpc: None,
        })
    }
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
    let downlinks: Vec<Downlink> = rows
        .iter()
        .map(|r| Downlink::wake(r, &config.server, config.max_late))
        .collect();
    push_downlinks(&downlinks, progress, config, events).await
}

/// Sends every downlink not yet in `progress`, each at its `enqueue_at`,
/// as [`push`] does.
///
/// # Errors
///
/// As [`push`].
pub async fn push_downlinks(
    downlinks: &[Downlink],
    progress: &mut Progress,
    config: &PushConfig,
    events: &mut (dyn FnMut(PushEvent) + Send),
) -> Result<PushSummary, PushError> {
    let mut pending: Vec<&Downlink> = downlinks
        .iter()
        .filter(|d| !progress.acknowledged().contains(&d.id))
        .collect();
    pending.sort_by(|a, b| order(a).cmp(&order(b)));
    let mut summary = PushSummary {
        already_sent: downlinks.len() - pending.len(),
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
        let topic = &row.topic;
        let message = &row.message;
        loop {
            let late = lateness(row.enqueue_at);
            if now() > row.deadline {
                events(PushEvent::Skipped {
                    id: row.id.clone(),
                    late,
                });
                summary.skipped.push(row.id.clone());
                break;
            }
            // Sent (Ok) or to be retried after a backoff (the error's text).
            let attempt: Result<(), String> = if let Some(wake) = &row.grpc {
                let api = config.chirpstack_api.as_ref().ok_or(PushError::NoApi)?;
                match chirpstack::send(api, wake).await {
                    Ok(_) => Ok(()),
                    Err(error) if error.is_fatal() => return Err(error.into()),
                    Err(error) => Err(error.to_string()),
                }
            } else {
                let published = match link.as_mut() {
                    Some(l) => {
                        l.publish_acked(topic, message.clone().into_bytes(), config.ack_timeout)
                            .await
                    }
                    None => {
                        match Link::connect(&config.broker, &config.client_id, Session::Clean).await
                        {
                            Ok(l) => {
                                events(PushEvent::Connected);
                                link = Some(l);
                                continue;
                            }
                            Err(e) => Err(e),
                        }
                    }
                };
                match published {
                    Ok(()) => Ok(()),
                    Err(error) if error.is_fatal() => return Err(connect_error(error)),
                    Err(error) => {
                        link = None;
                        Err(error.to_string())
                    }
                }
            };
            match attempt {
                Ok(()) => {
                    progress.record(&row.id, now())?;
                    summary.sent += 1;
                    backoff = FIRST_BACKOFF;
                    events(PushEvent::Sent {
                        id: row.id.clone(),
                        topic: topic.clone(),
                        late,
                    });
                    break;
                }
                Err(error) => {
                    events(PushEvent::Disconnected {
                        error,
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

/// The sending order: by `enqueue_at`, a group WAKE after the others of
/// its time, then by ID.
fn order(d: &Downlink) -> (OffsetDateTime, bool, &str) {
    (d.enqueue_at, d.last, &d.id)
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

/// The `--dry-run` listing: for every downlink, whether it was already
/// sent, its `enqueue_at`, topic and message, in sending order.
pub fn dry_run(downlinks: &[Downlink], acked: &Acknowledged) -> Vec<String> {
    let mut downlinks: Vec<&Downlink> = downlinks.iter().collect();
    downlinks.sort_by(|a, b| order(a).cmp(&order(b)));
    downlinks
        .iter()
        .map(|d| {
            let status = if acked.contains(&d.id) {
                "sent"
            } else {
                "todo"
            };
            format!(
                "{status} {} {} {}",
                crate::clock::format(d.enqueue_at),
                d.topic,
                d.message
            )
        })
        .collect()
}
