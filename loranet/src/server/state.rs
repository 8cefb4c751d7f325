//! The server's state and the steps every uplink goes through: loss,
//! parsing, logging, and finding a downlink slot.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use lorawan::parser::{DataHeader, DataPayload, MHDR, MType, PhyPayload, parse};
use otavan_protocol::region::Channel;
use otavan_protocol::region::airtime::lorawan_phy_airtime;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::types::{
    DeviceEntry, EuiKey, Loss, NetworkConfig, NetworkStats, ReceivedFrame, RejectReason, Uplink,
    UplinkInfo, UplinkOutcome,
};
use crate::gateway::{Blocked, DownlinkKind, Gateway};
use crate::keys::{DevEui, eui_hex};
use crate::log::{FrameDirection, FrameKind, FrameLog, FrameRecord, RxWindow, seconds_3};
use crate::rng::SimRng;

/// Everything the network knows; behind the [`super::NetworkServer`] mutex.
pub(super) struct State {
    pub(super) config: NetworkConfig,
    pub(super) start: Instant,
    pub(super) rng: SimRng,
    pub(super) devices: BTreeMap<EuiKey, DeviceEntry>,
    pub(super) by_addr: HashMap<u32, EuiKey>,
    pub(super) gateway: Gateway,
    pub(super) uplinks: Vec<Uplink>,
    pub(super) log: FrameLog,
    pub(super) stats: NetworkStats,
    pub(super) loss: Option<Loss>,
    pub(super) uplink_events: broadcast::Sender<Uplink>,
    /// Multicast groups by address.
    pub(super) groups: HashMap<u32, super::multicast::GroupState>,
}

/// The message type of a PHYPayload, for the log.
pub(super) fn frame_kind(phy: &[u8]) -> FrameKind {
    match phy.first().map(|b| MHDR::new(*b).mtype()) {
        Some(MType::JoinRequest) => FrameKind::JoinRequest,
        Some(MType::JoinAccept) => FrameKind::JoinAccept,
        Some(MType::UnconfirmedDataUp) => FrameKind::UnconfirmedDataUp,
        Some(MType::ConfirmedDataUp) => FrameKind::ConfirmedDataUp,
        Some(MType::UnconfirmedDataDown) => FrameKind::UnconfirmedDataDown,
        Some(MType::ConfirmedDataDown) => FrameKind::ConfirmedDataDown,
        _ => FrameKind::Other,
    }
}

/// A device's wire-order DevAddr bytes from its numeric value.
pub(super) fn dev_addr_wire(dev_addr: u32) -> [u8; 4] {
    dev_addr.to_le_bytes()
}

/// A receive window the gateway may answer in.
pub(super) struct Slot {
    window: RxWindow,
    start: Instant,
    channel: Channel,
}

impl State {
    pub(super) fn since_start(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    pub(super) fn sender_of(&self, phy: &[u8]) -> Option<DevEui> {
        match phy.first().map(|b| MHDR::new(*b).mtype())? {
            MType::JoinRequest if phy.len() == 23 => {
                let mut eui = [0u8; 8];
                eui.copy_from_slice(&phy[9..17]);
                Some(DevEui::from(eui))
            }
            MType::UnconfirmedDataUp | MType::ConfirmedDataUp if phy.len() >= 12 => {
                let addr = u32::from_le_bytes([phy[1], phy[2], phy[3], phy[4]]);
                self.by_addr.get(&addr).map(|k| DevEui::from(*k))
            }
            _ => None,
        }
    }

    fn heard(&mut self, frame: &ReceivedFrame) -> bool {
        let Some(mut loss) = self.loss.take() else {
            return true;
        };
        let heard = match &mut loss {
            Loss::Probability(p, rng) => rng.next_f64() >= *p,
            Loss::Filter(filter) => filter(&UplinkInfo {
                at: self.since_start(frame.end),
                dev_eui: self.sender_of(&frame.phy),
                channel: frame.channel,
                phy: &frame.phy,
            }),
        };
        self.loss = Some(loss);
        heard
    }

    pub(super) fn receive(&mut self, frame: ReceivedFrame) -> UplinkOutcome {
        if !self.heard(&frame) {
            self.stats.uplinks_lost += 1;
            return UplinkOutcome::Lost;
        }
        let outcome = match parse(frame.phy.clone()) {
            Ok(PhyPayload::JoinRequest(request)) => self.join(&frame, request),
            Ok(PhyPayload::Data(DataPayload::Encrypted(data))) if data.is_uplink() => {
                self.data(&frame, data)
            }
            Ok(_) => self.reject_unparsed(&frame, RejectReason::NotAnUplink),
            Err(_) => self.reject_unparsed(&frame, RejectReason::Malformed),
        };
        if let UplinkOutcome::Rejected(_) = outcome {
            self.stats.uplinks_rejected += 1;
        }
        outcome
    }

    pub(super) fn uplink_record(&self, frame: &ReceivedFrame, status: &str) -> FrameRecord {
        FrameRecord {
            time_s: seconds_3(self.since_start(frame.end)),
            dev_eui: self.sender_of(&frame.phy).map(|e| eui_hex(&e)),
            direction: FrameDirection::Up,
            kind: frame_kind(&frame.phy),
            phy_payload: hex::encode(&frame.phy),
            frequency_hz: frame.channel.frequency,
            spreading_factor: frame.channel.sf,
            bandwidth_hz: frame.channel.bandwidth_hz,
            airtime_ms: airtime_ms(lorawan_phy_airtime(
                frame.phy.len(),
                frame.channel.sf,
                frame.channel.bandwidth_hz,
                true,
            )),
            window: None,
            dev_addr: None,
            fcnt: None,
            fport: None,
            status: status.to_owned(),
            app_key: None,
            nwk_s_key: None,
            app_s_key: None,
        }
    }

    fn reject_unparsed(&mut self, frame: &ReceivedFrame, reason: RejectReason) -> UplinkOutcome {
        let record = self.uplink_record(frame, reason.as_str());
        self.log.push(&record);
        UplinkOutcome::Rejected(reason)
    }

    pub(super) fn fresh_dev_addr(&mut self) -> u32 {
        let nwk_id = self.config.net_id & 0x7F;
        loop {
            let addr = (nwk_id << 25) | (self.rng.next_u64() as u32 & 0x01FF_FFFF);
            if !self.by_addr.contains_key(&addr) {
                return addr;
            }
        }
    }

    /// The first of `slots` the gateway can use for `phy`, committed.
    pub(super) fn transmit(
        &mut self,
        slots: &[Slot],
        phy: &[u8],
        app_payload_len: usize,
        dev_eui: DevEui,
        kind: DownlinkKind,
    ) -> Option<(RxWindow, Duration, Channel, Instant)> {
        let region = self.config.region;
        for slot in slots {
            if region
                .max_downlink_payload(slot.channel)
                .is_none_or(|max| app_payload_len > max)
            {
                continue;
            }
            let airtime =
                lorawan_phy_airtime(phy.len(), slot.channel.sf, slot.channel.bandwidth_hz, false);
            match self.gateway.check(slot.start, slot.channel, airtime) {
                Ok(band) => {
                    self.gateway.commit(
                        band,
                        slot.start,
                        slot.channel,
                        airtime,
                        slot.window,
                        Some(dev_eui),
                        kind,
                        phy.to_vec(),
                    );
                    self.stats.airtime_used += airtime;
                    match slot.window {
                        RxWindow::Rx1 => self.stats.rx1_transmissions += 1,
                        RxWindow::Rx2 => self.stats.rx2_transmissions += 1,
                        RxWindow::ClassC => self.stats.multicast_transmissions += 1,
                    }
                    return Some((slot.window, airtime, slot.channel, slot.start));
                }
                Err(Blocked::DutyCycle | Blocked::Busy | Blocked::Forbidden) => continue,
            }
        }
        None
    }

    pub(super) fn slots(
        &self,
        uplink: &ReceivedFrame,
        delay1: Duration,
        delay2: Duration,
    ) -> Vec<Slot> {
        let region = self.config.region;
        let mut slots = Vec::with_capacity(2);
        if let Some(channel) = region.rx1(uplink.channel) {
            slots.push(Slot {
                window: RxWindow::Rx1,
                start: uplink.end + delay1,
                channel,
            });
        }
        slots.push(Slot {
            window: RxWindow::Rx2,
            start: uplink.end + delay2,
            channel: region.rx2(),
        });
        slots
    }
}

pub(super) fn airtime_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}
