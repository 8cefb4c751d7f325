//! Listening in a multicast group's class C window: the radio
//! lorawan-device drives, set to the window's channel in continuous
//! receive, every frame heard until the window closes handed to
//! [`MulticastGroups::accept`].

use std::fmt;

use lora_modulation::{Bandwidth, BaseBandModulationParams, CodingRate, SpreadingFactor};
use lorawan_device::async_device::radio::{PhyRxTx, RfConfig, RxConfig, RxMode};
use otavan_protocol::region::Region;
use tokio::time::{Instant, timeout_at};
use tracing::{debug, warn};

use super::multicast::{ClassCWindow, GroupDownlink, Ignored, MulticastGroups};

/// The largest PHYPayload a LoRa frame carries.
const MAX_FRAME: usize = 255;

/// What one window heard.
#[derive(Debug, Default)]
pub struct Heard {
    /// Frames accepted for one of the meter's groups, in order.
    pub accepted: Vec<GroupDownlink>,
    /// Frames heard and not accepted, with why.
    pub ignored: Vec<Ignored>,
    /// The radio's error, if it failed (the window ends there).
    pub radio_error: Option<String>,
}

/// The radio settings for `window` in `region`; `None` for a data rate
/// that is not LoRa (refused when the session was set up).
pub fn rx_config(window: &ClassCWindow, region: Region) -> Option<RxConfig> {
    let (sf, bandwidth_hz) = window.modulation(region)?;
    let sf = match sf {
        5 => SpreadingFactor::_5,
        6 => SpreadingFactor::_6,
        7 => SpreadingFactor::_7,
        8 => SpreadingFactor::_8,
        9 => SpreadingFactor::_9,
        10 => SpreadingFactor::_10,
        11 => SpreadingFactor::_11,
        12 => SpreadingFactor::_12,
        _ => return None,
    };
    let bw = match bandwidth_hz {
        125_000 => Bandwidth::_125KHz,
        250_000 => Bandwidth::_250KHz,
        500_000 => Bandwidth::_500KHz,
        _ => return None,
    };
    Some(RxConfig {
        rf: RfConfig {
            frequency: window.frequency_hz,
            bb: BaseBandModulationParams::new(sf, bw, CodingRate::_4_5),
        },
        mode: RxMode::Continuous,
    })
}

/// Listens on `radio` in `window` until `closes`, or until `stop` says a
/// frame accepted was enough (the receive current is what a window costs
/// the meter). The radio is put in low power after.
pub async fn listen<R>(
    radio: &mut R,
    region: Region,
    window: &ClassCWindow,
    closes: Instant,
    groups: &mut MulticastGroups,
    mut stop: impl FnMut(&GroupDownlink) -> bool,
) -> Heard
where
    R: PhyRxTx,
    R::PhyError: fmt::Debug,
{
    let mut heard = Heard::default();
    let Some(config) = rx_config(window, region) else {
        heard.radio_error = Some(format!("no LoRa data rate DR{}", window.data_rate));
        return heard;
    };
    if let Err(error) = radio.setup_rx(config).await {
        heard.radio_error = Some(format!("radio: {error:?}"));
        return heard;
    }
    let mut buf = [0u8; MAX_FRAME];
    loop {
        let frame = match timeout_at(closes, radio.rx_continuous(&mut buf)).await {
            Err(_) => break,
            Ok(Err(error)) => {
                warn!(?error, "class C receive failed");
                heard.radio_error = Some(format!("radio: {error:?}"));
                break;
            }
            Ok(Ok((len, _quality))) => &buf[..len],
        };
        match groups.accept(frame) {
            Ok(downlink) => {
                debug!(
                    group = downlink.group.get(),
                    fcnt = downlink.fcnt,
                    "multicast frame"
                );
                let enough = stop(&downlink);
                heard.accepted.push(downlink);
                if enough {
                    break;
                }
            }
            Err(reason) => {
                debug!(%reason, "frame in the class C window not accepted");
                heard.ignored.push(reason);
            }
        }
    }
    if let Err(error) = radio.low_power().await {
        warn!(?error, "the radio did not go to low power after the window");
    }
    heard
}
