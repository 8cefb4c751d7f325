//! Data uplinks: counters, MIC, decryption, and the class A answer.

use std::time::Duration;

use lorawan::creator::DataPayloadCreator;
use lorawan::default_crypto::DefaultFactory;
use lorawan::maccommandcreator::DeviceTimeAnsCreator;
use lorawan::maccommands::{MacCommandIterator, SerializableMacCommand, UplinkMacCommand};
use lorawan::parser::{DataHeader, EncryptedDataPayload, FCtrl, FRMPayload};
use otavan_protocol::device_time::DeviceTime;

use super::state::{State, airtime_ms, dev_addr_wire, frame_kind};
use super::types::{
    EuiKey, MAX_FCNT_GAP, ReceivedFrame, RejectReason, Reply, Uplink, UplinkOutcome,
};
use crate::gateway::DownlinkKind;
use crate::keys::{dev_addr_hex, eui_hex, key_hex};
use crate::log::{FrameDirection, FrameRecord, seconds_3};

impl State {
    pub(super) fn data(
        &mut self,
        frame: &ReceivedFrame,
        data: EncryptedDataPayload<Vec<u8>, DefaultFactory>,
    ) -> UplinkOutcome {
        let fhdr = data.fhdr();
        let mut addr = [0u8; 4];
        addr.copy_from_slice(fhdr.dev_addr().as_ref());
        let dev_addr = u32::from_le_bytes(addr);
        let fcnt16 = fhdr.fcnt();
        let ack = fhdr.fctrl().ack();
        let confirmed = data.is_confirmed();
        let mut record = self.uplink_record(frame, "ok");
        record.dev_addr = Some(dev_addr_hex(dev_addr));

        let found = self
            .by_addr
            .get(&dev_addr)
            .and_then(|key| Some((*key, self.devices.get(key)?.session?)));
        let Some((key, session)) = found else {
            record.status = RejectReason::UnknownDevAddr.as_str().to_owned();
            self.log.push(&record);
            return UplinkOutcome::Rejected(RejectReason::UnknownDevAddr);
        };
        record.nwk_s_key = Some(key_hex(&session.nwk_s_key));
        record.app_s_key = Some(key_hex(&session.app_s_key));
        let Some(fcnt) = full_fcnt(session.next_fcnt_up, fcnt16) else {
            record.status = RejectReason::FcntReplay.as_str().to_owned();
            self.log.push(&record);
            return UplinkOutcome::Rejected(RejectReason::FcntReplay);
        };
        record.fcnt = Some(fcnt);
        if !data.validate_mic(session.nwk_s_key.inner(), fcnt) {
            record.status = RejectReason::InvalidMic.as_str().to_owned();
            self.log.push(&record);
            return UplinkOutcome::Rejected(RejectReason::InvalidMic);
        }
        let fport = data.f_port();
        record.fport = fport;
        // LoRaWAN 1.0 FOpts travel in the clear (the MIC covers them).
        let mut time_requested = asks_device_time(fhdr.data());
        let payload = match data.decrypt(
            Some(session.nwk_s_key.inner()),
            Some(session.app_s_key.inner()),
            fcnt,
        ) {
            Ok(decrypted) => match decrypted.frm_payload() {
                FRMPayload::Data(bytes) => bytes.to_vec(),
                FRMPayload::MACCommands(commands) => {
                    time_requested |= asks_device_time(commands.data());
                    commands.data().to_vec()
                }
                FRMPayload::None => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        self.log.push(&record);

        let entry = self.devices.get_mut(&key).expect("indexed by DevAddr");
        let dev_eui = entry.keys.dev_eui;
        let session = entry.session.as_mut().expect("checked above");
        session.next_fcnt_up = u64::from(fcnt) + 1;
        if session.awaiting_ack && ack {
            self.stats.confirmed_downlinks_acked += 1;
        }
        session.awaiting_ack = false;
        self.stats.uplinks_received += 1;
        let uplink = Uplink {
            at: self.since_start(frame.end),
            dev_eui,
            dev_addr,
            fcnt,
            fport,
            payload,
            confirmed,
            ack,
            channel: frame.channel,
            phy: frame.phy.clone(),
        };
        self.uplinks.push(uplink.clone());
        let _ = self.uplink_events.send(uplink);

        // The time at the end of the uplink that asked (LoRaWAN 1.0.3 5.9).
        let device_time = match self.config.time {
            Some(start) if time_requested => {
                Some(DeviceTime::from_unix(start + (frame.end - self.start)))
            }
            _ => None,
        };
        let reply = self.reply(frame, key, confirmed, device_time);
        UplinkOutcome::Data {
            dev_eui,
            fcnt,
            reply,
        }
    }

    /// Answers a data uplink: the next queued downlink (with ACK when the
    /// uplink was confirmed, and `DeviceTimeAns` in FOpts when it asked for
    /// the time) or a frame with only those, in RX1 or else RX2.
    fn reply(
        &mut self,
        frame: &ReceivedFrame,
        key: EuiKey,
        confirmed_uplink: bool,
        device_time: Option<DeviceTime>,
    ) -> Reply {
        let entry = self.devices.get(&key).expect("known device");
        let next = entry.queue.front().cloned();
        if next.is_none() && !confirmed_uplink && device_time.is_none() {
            return Reply::None;
        }
        let session = entry.session.expect("joined device");
        let dev_eui = entry.keys.dev_eui;
        let more_pending = entry.queue.len() > 1;

        let mut fctrl = FCtrl::new(0, false);
        if confirmed_uplink {
            fctrl.set_ack();
        }
        let mut fctrl_byte = fctrl.raw_value();
        if more_pending {
            fctrl_byte |= 0x10; // FPending
        }
        let mut creator = DataPayloadCreator::new();
        creator
            .set_uplink(false)
            .set_confirmed(next.as_ref().is_some_and(|d| d.confirmed))
            .set_dev_addr(&dev_addr_wire(session.dev_addr))
            .set_fctrl(&FCtrl::new(fctrl_byte, false))
            .set_fcnt(session.fcnt_down);
        let payload: &[u8] = match &next {
            Some(down) => {
                creator.set_f_port(down.fport);
                &down.payload
            }
            None => &[],
        };
        let mut answer = DeviceTimeAnsCreator::new();
        let mut commands: Vec<&dyn SerializableMacCommand> = Vec::new();
        if let Some(time) = device_time {
            answer
                .set_seconds(time.gps_seconds)
                .set_nano_seconds(u32::from(time.fraction) * 3_906_250)
                .expect("a fraction of a second");
            commands.push(&answer);
        }
        let phy = creator
            .build(payload, &commands, &session.nwk_s_key, &session.app_s_key)
            .expect("payload checked at enqueue")
            .to_vec();

        let kind = match (&next, device_time) {
            (Some(_), _) => DownlinkKind::Data,
            (None, Some(_)) => DownlinkKind::Mac,
            (None, None) => DownlinkKind::Ack,
        };
        let rx1_delay = Duration::from_secs(u64::from(self.config.rx1_delay_s.clamp(1, 15)));
        let slots = self.slots(frame, rx1_delay, rx1_delay + Duration::from_secs(1));
        let Some((window, airtime, channel, start)) =
            self.transmit(&slots, &phy, payload.len(), dev_eui, kind)
        else {
            return match next {
                Some(_) => {
                    self.stats.downlinks_deferred += 1;
                    Reply::Deferred
                }
                None if confirmed_uplink => {
                    self.stats.acks_dropped += 1;
                    Reply::AckDropped
                }
                // A time answer finds no slot: the device asks again.
                None => Reply::None,
            };
        };

        let fcnt_down = session.fcnt_down;
        let entry = self.devices.get_mut(&key).expect("known device");
        match kind {
            DownlinkKind::Data => {
                entry.queue.pop_front();
                self.stats.downlinks_sent += 1;
            }
            DownlinkKind::Ack => self.stats.acks_sent += 1,
            DownlinkKind::Mac | DownlinkKind::JoinAccept | DownlinkKind::Multicast => {}
        }
        if device_time.is_some() {
            self.stats.device_times_sent += 1;
        }
        let live = entry.session.as_mut().expect("joined device");
        live.fcnt_down = live.fcnt_down.wrapping_add(1);
        live.awaiting_ack = next.as_ref().is_some_and(|d| d.confirmed);

        let record = FrameRecord {
            time_s: seconds_3(self.since_start(start)),
            dev_eui: Some(eui_hex(&dev_eui)),
            direction: FrameDirection::Down,
            kind: frame_kind(&phy),
            phy_payload: hex::encode(&phy),
            frequency_hz: channel.frequency,
            spreading_factor: channel.sf,
            bandwidth_hz: channel.bandwidth_hz,
            airtime_ms: airtime_ms(airtime),
            window: Some(window),
            dev_addr: Some(dev_addr_hex(session.dev_addr)),
            fcnt: Some(fcnt_down),
            fport: next.as_ref().map(|d| d.fport),
            status: "ok".to_owned(),
            app_key: None,
            nwk_s_key: Some(key_hex(&session.nwk_s_key)),
            app_s_key: Some(key_hex(&session.app_s_key)),
        };
        self.log.push(&record);
        Reply::Sent {
            window,
            fcnt_down,
            kind,
        }
    }
}

/// Whether a run of uplink MAC commands holds a `DeviceTimeReq`.
fn asks_device_time(commands: &[u8]) -> bool {
    MacCommandIterator::<UplinkMacCommand>::new(commands)
        .any(|command| matches!(command, UplinkMacCommand::DeviceTimeReq(_)))
}

/// The full FCnt a 16-bit counter stands for, given the lowest acceptable
/// one, or `None` for a replay or a jump of MAX_FCNT_GAP or more.
fn full_fcnt(next: u64, fcnt16: u16) -> Option<u32> {
    let mut candidate = (next & !0xFFFF) | u64::from(fcnt16);
    if candidate < next {
        candidate += 0x1_0000;
    }
    if candidate - next >= MAX_FCNT_GAP {
        return None;
    }
    u32::try_from(candidate).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcnt_reconstruction() {
        assert_eq!(full_fcnt(0, 0), Some(0));
        assert_eq!(full_fcnt(0, 5), Some(5));
        assert_eq!(full_fcnt(5, 4), None);
        assert_eq!(full_fcnt(5, 5), Some(5));
        assert_eq!(full_fcnt(0xFFFF, 0xFFFF), Some(0xFFFF));
        assert_eq!(full_fcnt(0x1_0000, 0), Some(0x1_0000));
        assert_eq!(full_fcnt(0xFFF0, 3), Some(0x1_0003));
        assert_eq!(full_fcnt(0, 16_384), None);
        assert_eq!(full_fcnt(0, 16_383), Some(16_383));
    }
}
