//! Multicast groups (LoRaWAN Remote Multicast Setup, TS005): the network
//! side. A group has an address, a key and a downlink frame counter; a
//! frame to it is sent once, in a class C window, at the first instant at
//! or after the one asked for that the gateway's duty cycle and its other
//! transmissions allow, and every meter of the group listening then hears
//! the same frame. The frame log carries the group's session keys, so a
//! standard decoder reads multicast frames as it reads unicast ones.

use std::time::Duration;

use lorawan::creator::DataPayloadCreator;
use lorawan::keys::{AppSKey, NewSKey};
use otavan_protocol::lora::APP_FPORTS;
use otavan_protocol::lora::multicast::{GroupSessionKeys, Key};
use otavan_protocol::region::Channel;
use otavan_protocol::region::airtime::lorawan_phy_airtime;
use tokio::time::Instant;

use super::NetworkServer;
use super::state::{airtime_ms, dev_addr_wire, frame_kind};
use crate::gateway::DownlinkKind;
use crate::keys::dev_addr_hex;
use crate::log::{FrameDirection, FrameRecord, RxWindow, seconds_3};

/// A multicast group the network sends to.
#[derive(Debug, Clone)]
pub(super) struct GroupState {
    keys: GroupSessionKeys,
    next_fcnt: u32,
    channel: Channel,
}

/// A multicast frame the gateway sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastSent {
    /// When its transmission started.
    pub start: Instant,
    /// Its time on air.
    pub airtime: Duration,
    /// Its frame counter.
    pub fcnt: u32,
}

/// Why a multicast frame was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MulticastError {
    /// No group has that address.
    #[error("no multicast group {0:08x}")]
    UnknownGroup(u32),
    /// FPort 0 (MAC commands) or outside 1..=223.
    #[error("FPort {0} cannot carry a multicast payload")]
    InvalidFport(u8),
    /// Longer than the group's data rate carries.
    #[error("{0} bytes do not fit the group's data rate")]
    PayloadTooLarge(usize),
    /// The duty cycle or other transmissions leave no start before the
    /// deadline.
    #[error("no transmission slot before the deadline")]
    NoSlot,
}

impl NetworkServer {
    /// Defines multicast group `addr` with group key `mc_key`, sent on
    /// `channel` (frequency and data rate of its class C windows); its
    /// frames count from `first_fcnt`. Replaces a group of that address.
    pub fn add_multicast_group(&self, addr: u32, mc_key: &Key, channel: Channel, first_fcnt: u32) {
        let group = GroupState {
            keys: GroupSessionKeys::derive(mc_key, addr),
            next_fcnt: first_fcnt,
            channel,
        };
        self.lock().groups.insert(addr, group);
    }

    /// Sends `payload` on `fport` to group `addr` once, at the first
    /// instant from `not_before` to `deadline` the gateway may transmit.
    pub fn send_multicast(
        &self,
        addr: u32,
        fport: u8,
        payload: &[u8],
        not_before: Instant,
        deadline: Instant,
    ) -> Result<MulticastSent, MulticastError> {
        if !APP_FPORTS.contains(&fport) {
            return Err(MulticastError::InvalidFport(fport));
        }
        let mut state = self.lock();
        let state = &mut *state;
        let group = state
            .groups
            .get(&addr)
            .cloned()
            .ok_or(MulticastError::UnknownGroup(addr))?;
        let channel = group.channel;
        if state
            .config
            .region
            .max_downlink_payload(channel)
            .is_none_or(|max| payload.len() > max)
        {
            return Err(MulticastError::PayloadTooLarge(payload.len()));
        }
        let mut creator = DataPayloadCreator::new();
        creator
            .set_uplink(false)
            .set_confirmed(false)
            .set_dev_addr(&dev_addr_wire(addr))
            .set_fcnt(group.next_fcnt)
            .set_f_port(fport);
        let phy = creator
            .build(
                payload,
                &[],
                &NewSKey::from(group.keys.nwk_s_key),
                &AppSKey::from(group.keys.app_s_key),
            )
            .expect("a multicast frame within the payload limit builds")
            .to_vec();
        let airtime = lorawan_phy_airtime(phy.len(), channel.sf, channel.bandwidth_hz, false);
        let start = state
            .gateway
            .earliest(not_before, channel, airtime)
            .filter(|start| *start <= deadline)
            .ok_or(MulticastError::NoSlot)?;
        let band = state
            .gateway
            .check(start, channel, airtime)
            .expect("earliest gives a free start");
        state.gateway.commit(
            band,
            start,
            channel,
            airtime,
            RxWindow::ClassC,
            None,
            DownlinkKind::Multicast,
            phy.clone(),
        );
        state.stats.airtime_used += airtime;
        state.stats.multicast_transmissions += 1;
        let fcnt = group.next_fcnt;
        if let Some(kept) = state.groups.get_mut(&addr) {
            kept.next_fcnt = fcnt.wrapping_add(1);
        }
        let record = FrameRecord {
            time_s: seconds_3(start.saturating_duration_since(state.start)),
            dev_eui: None,
            direction: FrameDirection::Down,
            kind: frame_kind(&phy),
            phy_payload: hex::encode(&phy),
            frequency_hz: channel.frequency,
            spreading_factor: channel.sf,
            bandwidth_hz: channel.bandwidth_hz,
            airtime_ms: airtime_ms(airtime),
            window: Some(RxWindow::ClassC),
            dev_addr: Some(dev_addr_hex(addr)),
            fcnt: Some(fcnt),
            fport: Some(fport),
            status: "ok".to_owned(),
            app_key: None,
            nwk_s_key: Some(hex::encode(group.keys.nwk_s_key)),
            app_s_key: Some(hex::encode(group.keys.app_s_key)),
        };
        state.log.push(&record);
        Ok(MulticastSent {
            start,
            airtime,
            fcnt,
        })
    }
}
