//! How a meter's LoRaWAN trigger is provisioned.

use std::time::Duration;

use lorawan_device::{AppEui, AppKey, DevEui};
use otavan_protocol::lora::DEFAULT_FPORT;
use otavan_protocol::lora::multicast::McRootKey;
use otavan_protocol::region::Region;

use crate::wifi::VanNetwork;

/// The FPort meter readings go out on unless configured otherwise.
pub const DEFAULT_READING_FPORT: u8 = 1;

/// Retrying OTAA joins: the wait doubles after each failed attempt, from
/// `first_backoff` up to `max_backoff`, plus up to a quarter of random
/// jitter so a fleet that lost power together does not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinPolicy {
    /// Attempts before [`super::LoraTrigger::step`] gives up with
    /// [`super::TriggerError::JoinFailed`] (at least 1). The next step
    /// starts over.
    pub max_attempts: u32,
    /// The wait after the first failed attempt.
    pub first_backoff: Duration,
    /// The longest wait between attempts (before jitter).
    pub max_backoff: Duration,
}

impl Default for JoinPolicy {
    /// 8 attempts, waiting 15 s, 30 s, ... up to 30 min.
    fn default() -> JoinPolicy {
        JoinPolicy {
            max_attempts: 8,
            first_backoff: Duration::from_secs(15),
            max_backoff: Duration::from_secs(30 * 60),
        }
    }
}

impl JoinPolicy {
    /// The wait after failed attempt `attempt` (1-based), before jitter:
    /// `first_backoff * 2^(attempt - 1)`, at most `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// A meter that takes part in multicast (LoRaWAN Remote Multicast Setup,
/// TS005): the network defines its groups and class C windows by unicast
/// setup downlinks, and one multicast frame then reaches a whole group.
#[derive(Debug, Clone)]
pub struct MulticastConfig {
    /// The key group keys arrive encrypted with (from the GenAppKey on a
    /// LoRaWAN 1.0 meter, [`McRootKey::from_gen_app_key`]).
    pub root: McRootKey,
    /// Where setup requests arrive and answers go. TS005's default is
    /// 200, otavan's command port; provision another one
    /// ([`DEFAULT_MULTICAST_SETUP_FPORT`]) or move the commands.
    pub setup_fport: u8,
}

/// The multicast setup FPort otavan provisions: TS005's 200 is taken by
/// otavan's commands ([`DEFAULT_FPORT`]).
pub const DEFAULT_MULTICAST_SETUP_FPORT: u8 = otavan_protocol::lora::multicast::OTAVAN_SETUP_FPORT;

/// Everything the trigger needs to know about the meter's LoRaWAN side.
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    /// The meter's DevEUI (bytes as lorawan-device takes them: LSB first).
    pub dev_eui: DevEui,
    /// The JoinEUI (AppEUI; LSB first).
    pub join_eui: AppEui,
    /// The root key for OTAA (MSB first).
    pub app_key: AppKey,
    /// Where commands arrive and STATUS uplinks go
    /// ([`DEFAULT_FPORT`], 200).
    pub command_fport: u8,
    /// Where meter readings go ([`DEFAULT_READING_FPORT`], 1).
    pub reading_fport: u8,
    /// Time between uplinks (one hour).
    pub uplink_interval: Duration,
    /// Every this many readings, the next uplink is a STATUS instead
    /// (24: once a day at hourly uplinks); 0: only when asked or after an
    /// update attempt.
    pub status_every: u32,
    /// The LoRaWAN region, for the radio and the payload limits.
    pub region: Region,
    /// The uplink data rate; every payload is checked against the region's
    /// limit at this rate before it is sent.
    pub data_rate: u8,
    /// The provisioned van networks: a WAKE's `network` is an index into
    /// this list.
    pub networks: Vec<VanNetwork>,
    /// Retrying joins.
    pub join: JoinPolicy,
    /// How long an update may run past its window's close before it is
    /// abandoned (the WiFi is left, the result is `interrupted`).
    pub session_overrun: Duration,
    /// How old the network's last answer to a time request may grow
    /// before a signed meter asks again with `DeviceTimeReq` in its next
    /// uplink; it also asks after every start and join, and on every
    /// uplink until answered. A week by default: a crystal's 20 ppm drift
    /// is 12 s a week, nothing next to expiries counted in days, and each
    /// answer costs the gateway a downlink.
    pub time_sync_every: Duration,
    /// Multicast groups, when the meter takes part (`None` by default).
    /// Such a meter also asks the network for the time, as a signed one
    /// does: class C windows are set in GPS time.
    pub multicast: Option<MulticastConfig>,
}

impl TriggerConfig {
    /// Defaults for a meter with these keys in `region` (DR0) that knows
    /// `networks`.
    pub fn new(
        dev_eui: DevEui,
        join_eui: AppEui,
        app_key: AppKey,
        region: Region,
        networks: Vec<VanNetwork>,
    ) -> TriggerConfig {
        TriggerConfig {
            dev_eui,
            join_eui,
            app_key,
            command_fport: DEFAULT_FPORT,
            reading_fport: DEFAULT_READING_FPORT,
            uplink_interval: Duration::from_secs(3600),
            status_every: 24,
            region,
            data_rate: 0,
            networks,
            join: JoinPolicy::default(),
            session_overrun: Duration::from_secs(5 * 60),
            time_sync_every: Duration::from_secs(7 * 86_400),
            multicast: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let policy = JoinPolicy {
            max_attempts: 100,
            first_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
        };
        let waits: Vec<u64> = (1..=7).map(|a| policy.backoff(a).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(policy.backoff(0).as_secs(), 10);
        assert_eq!(policy.backoff(u32::MAX).as_secs(), 300);
    }
}
