//! `campaign watch`: the meters' STATUS uplinks from the network server's
//! MQTT integration, stored in the van server's report store.
//!
//! It subscribes to every device's uplink events at QoS 1 in a
//! persistent session (so uplinks published while it is down or
//! reconnecting wait at the broker), decodes those on the campaign's
//! FPort with the Rust [`StatusUplink`] codec, stores each as a `lora` row
//! ([`otavan_store::reports::LoraStatus`]) and only then acknowledges it.
//! Uplinks on other ports (meter readings) are counted and skipped;
//! malformed ones are reported and skipped.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use otavan_protocol::Version;
use otavan_protocol::lora::{StatusUplink, VersionTag};
use otavan_store::reports::{LoraStatus, ReportStore, StoreError};
use rumqttc::{Event, Packet};

use crate::deveui::DevEui;
use crate::link::{Link, LinkError, Session};
use crate::mqtt::{Broker, NetworkServer};
use crate::push::MAX_BACKOFF;

/// How to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The broker.
    pub broker: Broker,
    /// The network server behind it.
    pub server: NetworkServer,
    /// The MQTT client ID; the broker keeps its session between runs.
    pub client_id: String,
    /// The FPort of the status uplinks.
    pub fport: u8,
    /// Versions the meters may run, to name their version tags.
    pub versions: Vec<Version>,
}

/// What happens while watching.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// Subscribed to the uplink events.
    Subscribed(String),
    /// The connection failed or dropped; trying again after `retry_in`.
    Disconnected {
        /// What went wrong.
        error: String,
        /// The wait.
        retry_in: Duration,
    },
    /// A status was stored.
    Stored {
        /// The meter.
        dev_eui: DevEui,
        /// Its decoded status.
        status: StatusUplink,
        /// The version it runs (name, or tag).
        version: String,
    },
    /// An uplink on another port (a meter reading), skipped.
    OtherPort {
        /// The meter.
        dev_eui: DevEui,
        /// Its port.
        fport: Option<u8>,
    },
    /// An uplink could not be read.
    Malformed {
        /// The topic.
        topic: String,
        /// Why.
        error: String,
    },
}

/// Counts of one watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchSummary {
    /// Statuses stored.
    pub stored: u64,
    /// Uplinks on other ports.
    pub other_port: u64,
    /// Uplinks that could not be read.
    pub malformed: u64,
}

/// Why watching stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The first connection failed, or the broker refused the client.
    #[error("cannot subscribe at {broker}: {error}")]
    Connect {
        /// The broker.
        broker: String,
        /// Why.
        error: LinkError,
    },
    /// The report store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores status uplinks into `store` until `shutdown` completes.
///
/// # Errors
///
/// [`WatchError`]: the first connection fails, the broker refuses the
/// client, or the store fails. Connections lost later are retried.
pub async fn watch(
    config: &WatchConfig,
    store: &ReportStore,
    shutdown: impl Future<Output = ()>,
    events: &mut (dyn FnMut(WatchEvent) + Send),
) -> Result<WatchSummary, WatchError> {
    let names: HashMap<VersionTag, &Version> = config
        .versions
        .iter()
        .map(|v| (VersionTag::of(v), v))
        .collect();
    let filter = config.server.uplink_filter();
    let connect_error = |error| WatchError::Connect {
        broker: config.broker.to_string(),
        error,
    };
    let mut link = Link::connect(&config.broker, &config.client_id, Session::Persistent)
        .await
        .map_err(connect_error)?;
    link.subscribe(&filter).await.map_err(connect_error)?;
    let mut summary = WatchSummary::default();
    let mut backoff = Duration::from_millis(100);
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            () = &mut shutdown => break,
            event = link.next() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // Reconnected: the persistent session should still hold the
                // subscription; asking again covers a broker that lost it.
                link.subscribe(&filter).await.map_err(connect_error)?;
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                backoff = Duration::from_millis(100);
                events(WatchEvent::Subscribed(filter.clone()));
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                match config.server.parse_uplink(&publish.payload) {
                    Ok(up) if up.fport != Some(config.fport) => {
                        summary.other_port += 1;
                        events(WatchEvent::OtherPort {
                            dev_eui: up.dev_eui,
                            fport: up.fport,
                        });
                    }
                    Ok(up) => match StatusUplink::decode(&up.payload) {
                        Ok(status) => {
                            let version = match names.get(&status.version_tag) {
                                Some(v) => v.to_string(),
                                None => format!("tag:{}", status.version_tag),
                            };
                            let device_id = up.dev_eui.to_string();
                            let row = LoraStatus {
                                device_id: &device_id,
                                version: &version,
                                status: &status,
                            };
                            let time = up
                                .received_at
                                .map_or_else(SystemTime::now, SystemTime::from);
                            store.insert_lora(&row, time)?;
                            summary.stored += 1;
                            events(WatchEvent::Stored {
                                dev_eui: up.dev_eui,
                                status,
                                version,
                            });
                        }
                        Err(e) => {
                            summary.malformed += 1;
                            events(WatchEvent::Malformed {
                                topic: publish.topic.clone(),
                                error: format!("not a status uplink: {e}"),
                            });
                        }
                    },
                    Err(error) => {
                        summary.malformed += 1;
                        events(WatchEvent::Malformed {
                            topic: publish.topic.clone(),
                            error,
                        });
                    }
                }
                // Stored (or skipped for good): the broker may forget it.
                if let Err(error) = link.ack(&publish).await {
                    events(WatchEvent::Disconnected {
                        error: error.to_string(),
                        retry_in: Duration::ZERO,
                    });
                }
            }
            Ok(_) => {}
            Err(error) if error.is_fatal() => return Err(connect_error(error)),
            Err(error) => {
                events(WatchEvent::Disconnected {
                    error: error.to_string(),
                    retry_in: backoff,
                });
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                // The next poll reconnects.
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    link.disconnect().await;
    Ok(summary)
}
