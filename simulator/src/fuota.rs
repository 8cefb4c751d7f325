//! The alternative users compare against: the same update delivered by
//! LoRaWAN FUOTA (TS003 multicast, TS004 fragmentation, class C).
//!
//! The model, per group of meters at the same source version (one
//! multicast session after another):
//! - setup: every meter receives `setup_downlinks` class A unicast
//!   commands (multicast group, class C session, fragmentation session),
//!   one per uplink, within the gateways' capacity at the RX2 rate;
//! - the image goes out in fragments of (max payload at the multicast data
//!   rate - 3) bytes plus `redundancy` of forward error correction, on the
//!   RX2 channel within its duty cycle (EU868: 10 %), every gateway at once;
//! - a meter decodes the image when its expected fragment loss (log-normal
//!   shadowing around its best gateway's mean signal) stays below what the
//!   redundancy recovers; it listens in class C for its group's session.

use otavan_protocol::region::airtime::lorawan_downlink_airtime;
use otavan_protocol::region::{Band, Direction, Modulation, Region};
use serde::{Deserialize, Serialize};

use crate::radio::{Radio, sensitivity};
use crate::scenario::Scenario;

/// `[fuota]`: the baseline's settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FuotaSettings {
    /// Spreading factor of the multicast (EU868 RX2 default: SF12).
    pub sf: u8,
    /// Forward error correction, as a share of the fragments.
    pub redundancy: f64,
    /// Unicast commands each meter needs before the session.
    pub setup_downlinks: u32,
}

impl Default for FuotaSettings {
    fn default() -> Self {
        FuotaSettings {
            sf: 12,
            redundancy: 0.1,
            setup_downlinks: 3,
        }
    }
}

/// One multicast session.
#[derive(Debug, Clone, Serialize)]
pub struct FuotaGroup {
    /// The source version.
    pub version: String,
    /// Meters in the group.
    pub meters: u64,
    /// Update size, bytes.
    pub bytes: u64,
    /// Fragments sent, redundancy included.
    pub fragments: u64,
    /// When the session starts, seconds from t = 0.
    pub starts_s: f64,
    /// How long it lasts, seconds.
    pub session_s: f64,
}

/// The baseline's figures.
#[derive(Debug, Clone, Serialize)]
pub struct FuotaBaseline {
    /// Spreading factor and bandwidth of the multicast.
    pub sf: u8,
    /// Bandwidth, Hz.
    pub bandwidth_hz: u32,
    /// Payload bytes per fragment.
    pub fragment_bytes: usize,
    /// FEC share.
    pub redundancy: f64,
    /// Time to set every meter up, seconds.
    pub setup_s: f64,
    /// Sessions, in order.
    pub groups: Vec<FuotaGroup>,
    /// When the last session ends, seconds.
    pub total_s: f64,
    /// Meters at the target at the end, as a share of all.
    pub updated_fraction: f64,
    /// Time to 50 % of meters at the target, seconds (null: never).
    pub time_to_50_s: Option<f64>,
    /// Time to 90 %.
    pub time_to_90_s: Option<f64>,
    /// Time to 99 %.
    pub time_to_99_s: Option<f64>,
    /// Mean class C listening energy per meter that needed the update, J.
    pub energy_per_meter_j: f64,
    /// The share of meters at the target over time: (seconds, share).
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

/// Meters of one source version: how many, how big their update, and which
/// meters they are.
pub struct Group<'a> {
    /// The source version.
    pub version: String,
    /// Update size.
    pub bytes: u64,
    /// The meters.
    pub meters: &'a [usize],
}

/// Computes the baseline. `already_current` meters need nothing; the
/// longest uplink interval bounds how fast setup commands get through.
pub fn baseline(
    scenario: &Scenario,
    settings: &FuotaSettings,
    radio: &Radio,
    groups: &[Group<'_>],
    already_current: u64,
    total_meters: u64,
    longest_interval_s: f64,
) -> FuotaBaseline {
    let region = scenario.region();
    let rx2 = region.rx2();
    let (sf, bandwidth_hz) = match region {
        Region::Eu868 => (settings.sf.clamp(7, 12), 125_000),
        Region::Us915 => (settings.sf.clamp(7, 12), 500_000),
    };
    let data_rate = region
        .data_rate(Modulation::Lora { sf, bandwidth_hz }, Direction::Downlink)
        .unwrap_or(0);
    let max_payload = region
        .max_payload(data_rate, Direction::Downlink)
        .unwrap_or(51);
    let fragment_bytes = max_payload.saturating_sub(3).max(1);
    let duty = region
        .band(rx2.frequency)
        .and_then(Band::duty_cycle_divisor)
        .map_or(1.0, f64::from);
    let fragment_airtime =
        lorawan_downlink_airtime(fragment_bytes + 3, sf, bandwidth_hz).as_secs_f64();
    // Setup: three downlinks per meter, at one per uplink, through all
    // gateways' RX2 capacity (a 14-byte command frame).
    let command_airtime = lorawan_downlink_airtime(1, sf, bandwidth_hz).as_secs_f64();
    let per_gateway_per_s = 1.0 / (command_airtime * duty);
    let needing: u64 = groups.iter().map(|g| g.meters.len() as u64).sum();
    let commands = needing as f64 * f64::from(settings.setup_downlinks);
    let gateways = radio.gateways.len().max(1) as f64;
    let setup_s = (commands / (per_gateway_per_s * gateways))
        .max(f64::from(settings.setup_downlinks) * longest_interval_s);

    // Setup needs class A unicast, so a meter without uplink coverage
    // never joins the multicast group.
    let decodes = |m: usize| {
        radio.sf(m).is_some()
            && radio.best_loss(m).is_some_and(|loss| {
                let margin =
                    scenario.lora.gateway_tx_power_dbm - loss - sensitivity(sf, bandwidth_hz);
                let received = normal_cdf(margin / scenario.lora.shadowing_sigma_db.max(1e-9));
                1.0 - received <= settings.redundancy / (1.0 + settings.redundancy)
            })
    };
    let mut t = setup_s;
    let mut at_target = already_current;
    let mut curve = vec![(0.0, at_target as f64 / total_meters as f64)];
    let mut out = Vec::new();
    let mut energy = 0.0;
    let volts = scenario.wifi.supply_v;
    let rx_a = scenario.wifi.lora_rx_ma / 1000.0;
    for g in groups {
        let fragments = ((g.bytes as f64 / fragment_bytes as f64).ceil()
            * (1.0 + settings.redundancy))
            .ceil() as u64;
        let session_s = fragments as f64 * fragment_airtime * duty;
        out.push(FuotaGroup {
            version: g.version.clone(),
            meters: g.meters.len() as u64,
            bytes: g.bytes,
            fragments,
            starts_s: t,
            session_s,
        });
        t += session_s;
        energy += g.meters.len() as f64 * volts * rx_a * session_s;
        at_target += g.meters.iter().filter(|&&m| decodes(m)).count() as u64;
        curve.push((t, at_target as f64 / total_meters as f64));
    }
    let reach = |share: f64| curve.iter().find(|(_, f)| *f >= share).map(|(t, _)| *t);
    FuotaBaseline {
        sf,
        bandwidth_hz,
        fragment_bytes,
        redundancy: settings.redundancy,
        setup_s,
        total_s: t,
        updated_fraction: at_target as f64 / total_meters as f64,
        time_to_50_s: reach(0.5),
        time_to_90_s: reach(0.9),
        time_to_99_s: reach(0.99),
        energy_per_meter_j: if needing == 0 {
            0.0
        } else {
            energy / needing as f64
        },
        groups: out,
        curve,
    }
}

/// The standard normal distribution function (Abramowitz and Stegun
/// 7.1.26, error below 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Fleet;

    #[test]
    fn normal_cdf_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-2.326) - 0.01).abs() < 1e-4);
    }

    /// field-physics.md: 100 kB at SF12 in the 10 % band takes about 18 h,
    /// at SF9 about 1.9 h, at SF7 about 0.5 h.
    #[test]
    fn session_times_match_the_reference() {
        let mut s = Scenario::default();
        s.fleet.meters = 10;
        let fleet = Fleet::generate(&s, 1);
        let radio = Radio::new(&s, &fleet);
        let meters: Vec<usize> = (0..10).collect();
        for (sf, hours) in [(12, 18.0), (9, 1.9), (7, 0.5)] {
            let settings = FuotaSettings {
                sf,
                ..FuotaSettings::default()
            };
            let groups = [Group {
                version: "1.0.0".into(),
                bytes: 100_000,
                meters: &meters,
            }];
            let b = baseline(&s, &settings, &radio, &groups, 0, 10, 3600.0);
            let got = b.groups[0].session_s / 3600.0;
            assert!(
                (got - hours).abs() / hours < 0.1,
                "SF{sf}: {got} h vs {hours} h"
            );
            assert!(b.total_s > b.setup_s);
        }
    }
}
