//! Asking the LoRaWAN network for the time (`DeviceTimeReq`, answered by
//! `DeviceTimeAns`), below a stack that cannot.
//!
//! lorawan-device 0.12 sends no MAC command of the application's: the
//! FOpts it builds carry only its own answers (`LinkADRAns`,
//! `RXTimingSetupAns`), and a frame on FPort 0 with a payload panics in its
//! frame builder. It also drops a `DeviceTimeAns` it receives, unread
//! (its MAC handler ignores commands it does not implement). The smallest
//! sound way around both is this wrapper of the radio, [`TimeRadio`]:
//!
//! - **Asking.** When told to ([`TimeRadio::ask_next`], with the session),
//!   it adds `DeviceTimeReq` to the FOpts of the next data uplink the
//!   stack hands it, and computes the frame's MIC again with the network
//!   session key: the stack's frame, counter and encrypted payload are
//!   unchanged (FRMPayload encryption does not cover FOpts), so the
//!   network accepts it as the stack's own. A frame whose FOpts are full,
//!   or whose MIC does not check with the session the trigger passed, goes
//!   out untouched and the request waits for the next uplink.
//! - **Answering.** It keeps the frames it receives; after the stack has
//!   accepted a downlink (its MIC and counter checked), the trigger asks
//!   [`TimeRadio::answer`], which checks the same frame's MIC with the
//!   network session key again and reads `DeviceTimeAns` from its FOpts or
//!   FPort 0 payload. Only the downlink right after the asking uplink
//!   counts, and the time it carries is the end of that uplink's
//!   transmission, so the answer maps onto the instant that transmission
//!   ended.
//!
//! The MIC is the network session's: a van, or anyone on its WiFi, cannot
//! forge it; only the network server (and whoever holds the session keys)
//! says what time it is.

use std::time::Duration;

use lorawan::creator::DataPayloadCreator;
use lorawan::default_crypto::DefaultFactory;
use lorawan::maccommandcreator::DeviceTimeReqCreator;
use lorawan::maccommands::{
    DownlinkMacCommand, MacCommandIterator, SerializableMacCommand, UplinkMacCommand,
};
use lorawan::parser::{DataHeader, DataPayload, FCtrl, FRMPayload, PhyPayload, parse};
use lorawan_device::async_device::radio::{PhyRxTx, RxConfig, RxQuality, RxStatus, TxConfig};
use lorawan_device::async_device::{Session, Timings};
use otavan_protocol::device_time::DeviceTime;
use tokio::time::Instant;

/// The most FOpts bytes a frame carries.
const MAX_FOPTS: usize = 15;

/// A radio that can ask the network for the time (see the module
/// documentation).
#[derive(Debug)]
pub struct TimeRadio<R> {
    inner: R,
    /// Ask in the next data uplink (the session's full uplink counter).
    ask: Option<u32>,
    /// The session asking: its keys check and sign the frames.
    session: Option<Session>,
    /// When the uplink that asked finished transmitting.
    asked_at: Option<Instant>,
    /// The last frame received after it.
    received: Option<Vec<u8>>,
}

impl<R> TimeRadio<R> {
    /// Wraps `inner`; it asks nothing until told to.
    pub fn new(inner: R) -> TimeRadio<R> {
        TimeRadio {
            inner,
            ask: None,
            session: None,
            asked_at: None,
            received: None,
        }
    }

    /// The radio underneath.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Adds `DeviceTimeReq` to the next data uplink, which the stack
    /// builds for `session` (its `fcnt_up` is that frame's counter).
    pub fn ask_next(&mut self, session: &Session) {
        self.ask = Some(session.fcnt_up);
        self.session = Some(session.clone());
        self.asked_at = None;
        self.received = None;
    }

    /// Whether the last uplink carried the request.
    pub fn asked(&self) -> bool {
        self.asked_at.is_some()
    }

    /// The network's answer to the last request, from the downlink the
    /// stack accepted with counter `fcnt_down`: the Unix time and the
    /// instant it stands for. `None` when no answer came.
    pub fn answer(&mut self, fcnt_down: u32) -> Option<(Duration, Instant)> {
        let at = self.asked_at.take()?;
        let session = self.session.take()?;
        let frame = self.received.take()?;
        let time = device_time_in(&frame, &session, fcnt_down)?;
        Some((time.to_unix(), at))
    }
}

/// `frame` (a data uplink the stack built) with `DeviceTimeReq` added to
/// its FOpts and its MIC made again, if it checks with `session` at
/// counter `fcnt` and has room.
fn with_request(frame: &[u8], session: &Session, fcnt: u32) -> Option<Vec<u8>> {
    let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) = parse(frame.to_vec()) else {
        return None;
    };
    if !data.is_uplink() || !data.validate_mic(session.newskey.inner(), fcnt) {
        return None;
    }
    let confirmed = data.is_confirmed();
    let decrypted = data
        .decrypt(
            Some(session.newskey.inner()),
            Some(session.appskey.inner()),
            fcnt,
        )
        .ok()?;
    let fhdr = decrypted.fhdr();
    let fopts = fhdr.data().to_vec();
    if fopts.len() + 1 > MAX_FOPTS {
        return None;
    }
    let payload = match decrypted.frm_payload() {
        FRMPayload::Data(bytes) => bytes.to_vec(),
        FRMPayload::None => Vec::new(),
        // FPort 0 carries MAC commands in the payload; FOpts must stay empty.
        FRMPayload::MACCommands(_) => return None,
    };
    let existing: Vec<UplinkMacCommand> =
        MacCommandIterator::<UplinkMacCommand>::new(&fopts).collect();
    let request = DeviceTimeReqCreator::new();
    let mut commands: Vec<&dyn SerializableMacCommand> = existing
        .iter()
        .map(|c| c as &dyn SerializableMacCommand)
        .collect();
    commands.push(&request);
    let mut creator = DataPayloadCreator::new();
    creator
        .set_uplink(true)
        .set_confirmed(confirmed)
        .set_dev_addr(session.devaddr)
        .set_fctrl(&FCtrl::new(fhdr.fctrl().raw_value() & 0xf0, true))
        .set_fcnt(fcnt);
    if let Some(fport) = decrypted.f_port() {
        creator.set_f_port(fport);
    }
    let frame = creator
        .build(&payload, &commands, &session.newskey, &session.appskey)
        .ok()?;
    Some(frame.to_vec())
}

/// The `DeviceTimeAns` in downlink `frame`, if its MIC checks with
/// `session` at `fcnt`.
fn device_time_in(frame: &[u8], session: &Session, fcnt: u32) -> Option<DeviceTime> {
    let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) =
        lorawan::parser::parse_with_factory(frame.to_vec(), DefaultFactory)
    else {
        return None;
    };
    if data.is_uplink()
        || data.fhdr().dev_addr().as_ref() != session.devaddr.as_ref()
        || !data.validate_mic(session.newskey.inner(), fcnt)
    {
        return None;
    }
    let decrypted = data
        .decrypt(
            Some(session.newskey.inner()),
            Some(session.appskey.inner()),
            fcnt,
        )
        .ok()?;
    let fopts = decrypted.fhdr().data().to_vec();
    let port0 = match decrypted.frm_payload() {
        FRMPayload::MACCommands(commands) => commands.data().to_vec(),
        _ => Vec::new(),
    };
    [fopts, port0].iter().find_map(|commands| {
        MacCommandIterator::<DownlinkMacCommand>::new(commands).find_map(|c| match c {
            // Read by otavan-protocol: lorawan 0.9's own reader takes the
            // seconds in the wrong byte order.
            DownlinkMacCommand::DeviceTimeAns(answer) => DeviceTime::decode(answer.bytes()),
            _ => None,
        })
    })
}

impl<R: PhyRxTx> PhyRxTx for TimeRadio<R> {
    type PhyError = R::PhyError;

    const ANTENNA_GAIN: i8 = R::ANTENNA_GAIN;
    const MAX_RADIO_POWER: u8 = R::MAX_RADIO_POWER;

    async fn tx(&mut self, config: TxConfig, buf: &[u8]) -> Result<u32, Self::PhyError> {
        let rewritten = match (self.ask.take(), &self.session) {
            (Some(fcnt), Some(session)) => with_request(buf, session, fcnt),
            _ => None,
        };
        let asked = rewritten.is_some();
        let result = self
            .inner
            .tx(config, rewritten.as_deref().unwrap_or(buf))
            .await;
        self.asked_at = asked.then(Instant::now);
        self.received = None;
        result
    }

    async fn setup_rx(&mut self, config: RxConfig) -> Result<(), Self::PhyError> {
        self.inner.setup_rx(config).await
    }

    async fn rx_continuous(
        &mut self,
        rx_buf: &mut [u8],
    ) -> Result<(usize, RxQuality), Self::PhyError> {
        let (len, quality) = self.inner.rx_continuous(rx_buf).await?;
        self.received = Some(rx_buf[..len].to_vec());
        Ok((len, quality))
    }

    async fn rx_single(&mut self, buf: &mut [u8]) -> Result<RxStatus, Self::PhyError> {
        let status = self.inner.rx_single(buf).await?;
        if let RxStatus::Rx(len, _) = &status {
            self.received = Some(buf[..*len].to_vec());
        }
        Ok(status)
    }

    async fn low_power(&mut self) -> Result<(), Self::PhyError> {
        self.inner.low_power().await
    }
}

impl<R: Timings> Timings for TimeRadio<R> {
    fn get_rx_window_lead_time_ms(&self) -> u32 {
        self.inner.get_rx_window_lead_time_ms()
    }

    fn get_rx_window_buffer(&self) -> u32 {
        self.inner.get_rx_window_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lorawan::parser::DevAddr;
    use lorawan_device::{AppSKey, NewSKey};

    fn session() -> Session {
        Session::new(
            NewSKey::from([2; 16]),
            AppSKey::from([3; 16]),
            DevAddr::new([1, 2, 3, 4]).unwrap(),
        )
    }

    fn uplink(session: &Session, fcnt: u32, fopts: &[&dyn SerializableMacCommand]) -> Vec<u8> {
        let mut creator = DataPayloadCreator::new();
        creator
            .set_uplink(true)
            .set_dev_addr(session.devaddr)
            .set_fcnt(fcnt)
            .set_f_port(200);
        creator
            .build(b"status", fopts, &session.newskey, &session.appskey)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn the_request_rides_in_fopts_and_the_frame_still_verifies() {
        let session = session();
        let frame = uplink(&session, 70_000, &[]);
        let asked = with_request(&frame, &session, 70_000).unwrap();
        assert_eq!(asked.len(), frame.len() + 1);
        let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) = parse(asked) else {
            panic!()
        };
        assert!(data.validate_mic(session.newskey.inner(), 70_000));
        let fopts = data.fhdr().data().to_vec();
        let commands: Vec<UplinkMacCommand> =
            MacCommandIterator::<UplinkMacCommand>::new(&fopts).collect();
        assert!(matches!(commands[..], [UplinkMacCommand::DeviceTimeReq(_)]));
        let decrypted = data
            .decrypt(
                Some(session.newskey.inner()),
                Some(session.appskey.inner()),
                70_000,
            )
            .unwrap();
        assert_eq!(decrypted.f_port(), Some(200));
        assert!(matches!(
            decrypted.frm_payload(),
            FRMPayload::Data(b"status")
        ));
    }

    #[test]
    fn the_stacks_own_answers_stay_and_full_fopts_are_left_alone() {
        use lorawan::maccommandcreator::LinkADRAnsCreator;
        let session = session();
        let ans = LinkADRAnsCreator::new();
        let frame = uplink(&session, 5, &[&ans]);
        let asked = with_request(&frame, &session, 5).unwrap();
        let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) = parse(asked) else {
            panic!()
        };
        assert_eq!(data.fhdr().data().len(), 3);
        // Seven LinkADRAns fill 14 bytes; one more byte fits, two do not.
        let full: Vec<LinkADRAnsCreator> = (0..7).map(|_| LinkADRAnsCreator::new()).collect();
        let refs: Vec<&dyn SerializableMacCommand> = full
            .iter()
            .map(|c| c as &dyn SerializableMacCommand)
            .collect();
        let frame = uplink(&session, 5, &refs);
        assert!(with_request(&frame, &session, 5).is_some());
        let mut more = refs.clone();
        let extra = DeviceTimeReqCreator::new();
        more.push(&extra);
        let frame = uplink(&session, 5, &more);
        assert!(with_request(&frame, &session, 5).is_none());
    }

    #[test]
    fn a_frame_of_another_session_or_counter_is_not_touched() {
        let session = session();
        let frame = uplink(&session, 9, &[]);
        assert!(with_request(&frame, &session, 10).is_none());
        let other = Session::new(
            NewSKey::from([9; 16]),
            AppSKey::from([3; 16]),
            DevAddr::new([1, 2, 3, 4]).unwrap(),
        );
        assert!(with_request(&frame, &other, 9).is_none());
    }

    fn downlink(session: &Session, fcnt: u32, key: &NewSKey, time: DeviceTime) -> Vec<u8> {
        use lorawan::maccommandcreator::DeviceTimeAnsCreator;
        let mut answer = DeviceTimeAnsCreator::new();
        answer
            .set_seconds(time.gps_seconds)
            .set_nano_seconds(u32::from(time.fraction) * 3_906_250)
            .unwrap();
        let mut creator = DataPayloadCreator::new();
        creator
            .set_uplink(false)
            .set_dev_addr(session.devaddr)
            .set_fcnt(fcnt);
        creator
            .build(&[], &[&answer], key, &session.appskey)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn only_an_answer_with_the_sessions_mic_counts() {
        let session = session();
        let time = DeviceTime::from_unix(Duration::from_secs(1_767_225_600));
        let good = downlink(&session, 3, &session.newskey, time);
        assert_eq!(device_time_in(&good, &session, 3), Some(time));
        assert_eq!(device_time_in(&good, &session, 4), None, "another counter");
        let forged = downlink(&session, 3, &NewSKey::from([7; 16]), time);
        assert_eq!(device_time_in(&forged, &session, 3), None, "another key");
        let mut flipped = good.clone();
        flipped[9] ^= 1;
        assert_eq!(device_time_in(&flipped, &session, 3), None, "tampered");
    }
}
