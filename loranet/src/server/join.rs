//! OTAA: JoinRequest checks, the JoinAccept and the session keys.

use lorawan::creator::JoinAcceptCreator;
use lorawan::default_crypto::DefaultFactory;
use lorawan::parser::{DevNonce, JoinAcceptPayload, JoinRequestPayload, PhyPayload, parse};

use super::state::{State, airtime_ms, dev_addr_wire};
use super::types::{
    EuiKey, JOIN_ACCEPT_DELAY1, JOIN_ACCEPT_DELAY2, ReceivedFrame, RejectReason, Session,
    UplinkOutcome,
};
use crate::gateway::DownlinkKind;
use crate::keys::{AppSKey, DeviceKeys, NewSKey, dev_addr_hex, eui_hex, key_hex};
use crate::log::{FrameDirection, FrameKind, FrameRecord, seconds_3};

impl State {
    pub(super) fn join(
        &mut self,
        frame: &ReceivedFrame,
        request: JoinRequestPayload<Vec<u8>, DefaultFactory>,
    ) -> UplinkOutcome {
        let key: EuiKey = request.dev_eui().as_ref().try_into().expect("8-byte EUI");
        let mut dev_nonce = [0u8; 2];
        dev_nonce.copy_from_slice(request.dev_nonce().as_ref());
        let verdict = match self.devices.get(&key) {
            None => Err(RejectReason::UnknownDevEui),
            Some(entry) if entry.keys.app_eui.as_ref() != request.app_eui().as_ref() => {
                Err(RejectReason::AppEuiMismatch)
            }
            Some(entry) if !request.validate_mic(entry.keys.app_key.inner()) => {
                Err(RejectReason::InvalidMic)
            }
            Some(entry) if entry.dev_nonces.contains(&dev_nonce) => {
                Err(RejectReason::DevNonceReused)
            }
            Some(entry) => Ok(entry.keys),
        };
        let mut record = self.uplink_record(frame, "ok");
        let keys = match verdict {
            Ok(keys) => keys,
            Err(reason) => {
                record.status = reason.as_str().to_owned();
                self.log.push(&record);
                return UplinkOutcome::Rejected(reason);
            }
        };
        record.app_key = Some(key_hex(&keys.app_key));
        self.devices
            .get_mut(&key)
            .expect("checked above")
            .dev_nonces
            .insert(dev_nonce);

        let mut app_nonce = [0u8; 3];
        self.rng.fill(&mut app_nonce);
        let dev_addr = self.fresh_dev_addr();
        let accept = self.build_join_accept(&keys, app_nonce, dev_addr);
        let (nwk_s_key, app_s_key) = derive_session_keys(&accept, &keys, dev_nonce);

        let slots = self.slots(frame, JOIN_ACCEPT_DELAY1, JOIN_ACCEPT_DELAY2);
        let Some((window, airtime, channel, start)) =
            self.transmit(&slots, &accept, 0, keys.dev_eui, DownlinkKind::JoinAccept)
        else {
            self.stats.join_accepts_dropped += 1;
            record.status = RejectReason::NoDownlinkSlot.as_str().to_owned();
            self.log.push(&record);
            return UplinkOutcome::Rejected(RejectReason::NoDownlinkSlot);
        };
        self.log.push(&record);

        let entry = self.devices.get_mut(&key).expect("checked above");
        if let Some(old) = entry.session.take() {
            self.by_addr.remove(&old.dev_addr);
        }
        entry.session = Some(Session {
            dev_addr,
            nwk_s_key,
            app_s_key,
            next_fcnt_up: 0,
            fcnt_down: 0,
            awaiting_ack: false,
        });
        self.by_addr.insert(dev_addr, key);
        self.stats.joins_accepted += 1;

        let record = FrameRecord {
            time_s: seconds_3(self.since_start(start)),
            dev_eui: Some(eui_hex(&keys.dev_eui)),
            direction: FrameDirection::Down,
            kind: FrameKind::JoinAccept,
            phy_payload: hex::encode(&accept),
            frequency_hz: channel.frequency,
            spreading_factor: channel.sf,
            bandwidth_hz: channel.bandwidth_hz,
            airtime_ms: airtime_ms(airtime),
            window: Some(window),
            dev_addr: Some(dev_addr_hex(dev_addr)),
            fcnt: None,
            fport: None,
            status: "ok".to_owned(),
            app_key: Some(key_hex(&keys.app_key)),
            nwk_s_key: Some(key_hex(&nwk_s_key)),
            app_s_key: Some(key_hex(&app_s_key)),
        };
        self.log.push(&record);
        UplinkOutcome::Joined {
            dev_eui: keys.dev_eui,
            dev_addr,
            window,
        }
    }

    fn build_join_accept(&self, keys: &DeviceKeys, app_nonce: [u8; 3], dev_addr: u32) -> Vec<u8> {
        let net_id = self.config.net_id.to_le_bytes();
        let net_id = [net_id[0], net_id[1], net_id[2]];
        let dl_settings = self.config.region.rx2_data_rate() & 0x0F;
        let mut creator = JoinAcceptCreator::with_options([0u8; 17], DefaultFactory)
            .expect("a 17-byte buffer fits a JoinAccept without CFList");
        creator
            .set_app_nonce(&app_nonce)
            .set_net_id(&net_id)
            .set_dev_addr(&dev_addr_wire(dev_addr))
            .set_dl_settings(dl_settings)
            .set_rx_delay(self.config.rx1_delay_s.clamp(1, 15));
        creator
            .build(keys.app_key.inner())
            .expect("a 17-byte buffer fits a JoinAccept without CFList")
            .to_vec()
    }
}

/// The session keys a device derives from `accept` (the encrypted
/// JoinAccept as sent), computed the way the device does: decrypt, then
/// AES(AppKey, 0x01/0x02 | AppNonce | NetID | DevNonce | pad).
fn derive_session_keys(accept: &[u8], keys: &DeviceKeys, dev_nonce: [u8; 2]) -> (NewSKey, AppSKey) {
    let Ok(PhyPayload::JoinAccept(JoinAcceptPayload::Encrypted(encrypted))) =
        parse(accept.to_vec())
    else {
        unreachable!("a JoinAccept we just built parses");
    };
    let decrypted = encrypted.decrypt(&keys.app_key);
    let nonce = DevNonce::from(dev_nonce);
    (
        decrypted.derive_newskey(&nonce, &keys.app_key),
        decrypted.derive_appskey(&nonce, &keys.app_key),
    )
}
