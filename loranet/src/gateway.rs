//! The single simulated gateway: what it transmits, when, and the
//! duty-cycle rules it keeps.
//!
//! The gateway is half-duplex and has one transmitter: two downlinks never
//! overlap in time. In a duty-cycled region (EU868) each sub-band has an
//! off-time after every transmission, `ToA/DC - ToA`, so the next
//! transmission in that sub-band may start at the earliest `ToA/DC` after
//! the previous one started. Transmissions are decided when the uplink
//! they answer ends, possibly out of time order (an RX2 slot decided
//! earlier can lie after an RX1 slot decided later); a slot is only granted
//! when it starts at or after the sub-band's release time, and that release
//! time only moves forward, so the granted transmissions of one sub-band
//! are always in start order and spaced by at least `ToA/DC`.
//!
//! Not modelled: the gateway missing uplinks while it transmits, listen
//! before talk, transmit power and dwell-time limits, multiple gateways.

use std::time::Duration;

use tokio::time::Instant;

use otavan_protocol::region::{Band, Channel, EU868_SUB_BANDS, Region, SubBand};

use crate::keys::DevEui;
use crate::log::RxWindow;

/// What a gateway transmission carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownlinkKind {
    /// A JoinAccept.
    JoinAccept,
    /// A data frame with a queued application payload.
    Data,
    /// An empty data frame acknowledging a confirmed uplink.
    Ack,
    /// A data frame carrying only MAC answers (`DeviceTimeAns`).
    Mac,
    /// A class C frame to a multicast group.
    Multicast,
}

/// One transmission of the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayTx {
    /// Start of transmission, since the network started.
    pub at: Duration,
    /// Time on air.
    pub airtime: Duration,
    /// Channel and modulation.
    pub channel: Channel,
    /// The receive window it targeted.
    pub window: RxWindow,
    /// The device it was for (`None` for a multicast frame).
    pub dev_eui: Option<DevEui>,
    /// What it carried.
    pub kind: DownlinkKind,
    /// The duty-cycle sub-band (EU868); `None` where there is no duty
    /// cycle (US915).
    pub sub_band: Option<SubBand>,
    /// The PHYPayload.
    pub phy: Vec<u8>,
}

/// A frame on the air, as a receiver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AirFrame {
    /// The PHYPayload.
    pub phy: Vec<u8>,
    /// Start of transmission.
    pub start: Instant,
    /// End of transmission.
    pub end: Instant,
    /// Channel and modulation.
    pub channel: Channel,
}

/// Why the gateway cannot send in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// The sub-band is still in its off-time.
    DutyCycle,
    /// The transmitter is busy with another frame then.
    Busy,
    /// The region does not allow transmitting on that frequency.
    Forbidden,
}

/// How long transmitted frames stay visible to receivers after they end.
const AIR_MEMORY: Duration = Duration::from_secs(60);

pub(crate) struct Gateway {
    region: Region,
    start: Instant,
    band_free_at: [Option<Instant>; EU868_SUB_BANDS.len()],
    air: Vec<AirFrame>,
    history: Vec<GatewayTx>,
}

impl Gateway {
    pub(crate) fn new(region: Region, start: Instant) -> Self {
        Gateway {
            region,
            start,
            band_free_at: [None; EU868_SUB_BANDS.len()],
            air: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Whether a transmission of `airtime` on `channel` may start at `start`.
    pub(crate) fn check(
        &self,
        start: Instant,
        channel: Channel,
        airtime: Duration,
    ) -> Result<Band, Blocked> {
        let band = self
            .region
            .band(channel.frequency)
            .ok_or(Blocked::Forbidden)?;
        if let Band::Limited(index, _) = band
            && self.band_free_at[index].is_some_and(|free| start < free)
        {
            return Err(Blocked::DutyCycle);
        }
        let end = start + airtime;
        if self.air.iter().any(|f| f.start < end && start < f.end) {
            return Err(Blocked::Busy);
        }
        Ok(band)
    }

    /// Records a transmission `check` allowed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit(
        &mut self,
        band: Band,
        start: Instant,
        channel: Channel,
        airtime: Duration,
        window: RxWindow,
        dev_eui: Option<DevEui>,
        kind: DownlinkKind,
        phy: Vec<u8>,
    ) {
        let sub_band = match band {
            Band::Limited(index, sub) => {
                let free = start + airtime * sub.duty_cycle_divisor;
                let slot = &mut self.band_free_at[index];
                *slot = Some(slot.map_or(free, |old| old.max(free)));
                Some(sub)
            }
            Band::Unlimited => None,
        };
        // Frames that ended long before this one starts can no longer be
        // heard by anyone.
        self.air.retain(|f| f.end + AIR_MEMORY > start);
        self.air.push(AirFrame {
            phy: phy.clone(),
            start,
            end: start + airtime,
            channel,
        });
        self.history.push(GatewayTx {
            at: start.saturating_duration_since(self.start),
            airtime,
            channel,
            window,
            dev_eui,
            kind,
            sub_band,
            phy,
        });
    }

    /// The earliest instant at or after `from` when a transmission of
    /// `airtime` on `channel` may start: after the sub-band's off-time and
    /// clear of every frame already on the air. `None` where the region
    /// forbids the frequency.
    pub(crate) fn earliest(
        &self,
        from: Instant,
        channel: Channel,
        airtime: Duration,
    ) -> Option<Instant> {
        let mut start = from;
        loop {
            match self.check(start, channel, airtime) {
                Ok(_) => return Some(start),
                Err(Blocked::Forbidden) => return None,
                Err(Blocked::DutyCycle) => {
                    let Some(Band::Limited(index, _)) = self.region.band(channel.frequency) else {
                        return None;
                    };
                    start = self.band_free_at[index].expect("a duty cycle blocks only when set");
                }
                Err(Blocked::Busy) => {
                    let end = start + airtime;
                    start = self
                        .air
                        .iter()
                        .filter(|f| f.start < end && start < f.end)
                        .map(|f| f.end)
                        .max()
                        .expect("busy means a frame overlaps");
                }
            }
        }
    }

    /// The earliest frame on `channel` whose start a receiver listening
    /// from `from` to `until` catches.
    pub(crate) fn on_air(
        &self,
        channel: Channel,
        from: Instant,
        until: Instant,
    ) -> Option<AirFrame> {
        self.air
            .iter()
            .filter(|f| f.channel == channel && f.start >= from && f.start <= until)
            .min_by_key(|f| f.start)
            .cloned()
    }

    pub(crate) fn history(&self) -> &[GatewayTx] {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eu(frequency: u32) -> Channel {
        Channel {
            frequency,
            sf: 12,
            bandwidth_hz: 125_000,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn duty_cycle_and_half_duplex() {
        let t0 = Instant::now();
        let mut gw = Gateway::new(Region::Eu868, t0);
        let dev = crate::keys::eui_from_u64(1);
        let toa = Duration::from_secs(1);
        let band = gw.check(t0, eu(868_100_000), toa).unwrap();
        gw.commit(
            band,
            t0,
            eu(868_100_000),
            toa,
            RxWindow::Rx1,
            Some(dev),
            DownlinkKind::Data,
            vec![1],
        );
        // Same sub-band: off for 99 s after the 1 s frame.
        assert_eq!(
            gw.check(t0 + Duration::from_secs(50), eu(868_500_000), toa),
            Err(Blocked::DutyCycle)
        );
        assert!(
            gw.check(t0 + Duration::from_secs(100), eu(868_500_000), toa)
                .is_ok()
        );
        // Another sub-band, but overlapping in time.
        assert_eq!(
            gw.check(t0 + Duration::from_millis(500), eu(869_525_000), toa),
            Err(Blocked::Busy)
        );
        assert!(gw.check(t0 + toa, eu(869_525_000), toa).is_ok());
        assert_eq!(gw.check(t0, eu(915_000_000), toa), Err(Blocked::Forbidden));
        let heard = gw
            .on_air(eu(868_100_000), t0, t0 + Duration::from_millis(10))
            .unwrap();
        assert_eq!(heard.phy, vec![1]);
        assert!(gw.on_air(eu(868_300_000), t0, t0 + toa).is_none());
    }
}
