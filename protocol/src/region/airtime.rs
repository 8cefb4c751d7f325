//! LoRa time on air (Semtech SX1276 datasheet, AN1200.13).
//!
//! ```text
//! T_sym      = 2^SF / BW
//! T_preamble = (n_pre + 4.25) * T_sym
//! n_payload  = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * (CR + 4), 0)
//! ToA        = T_preamble + n_payload * T_sym
//! ```
//!
//! `DE` (low data rate optimisation) is on when a symbol lasts at least
//! 16.384 ms, which in LoRaWAN means SF11 and SF12 at 125 kHz. The result is
//! exact to the nanosecond (rounded down): every LoRa bandwidth used by
//! LoRaWAN divides 10^9 evenly.
//!
//! LoRaWAN frames use an 8-symbol preamble, an explicit header and coding
//! rate 4/5; uplinks carry a payload CRC, downlinks do not.
//!
//! FSK frames (EU868 DR7, 50 kbit/s) take 20 us a bit for a 5-byte
//! preamble, a 3-byte sync word, a length byte, the payload and a 2-byte
//! CRC ([`fsk_time_on_air`]).
//!
//! By data rate rather than modulation: [`super::Region::time_on_air`].

use std::time::Duration;

/// Coding rate 4/5, written as the `CR` of the formula (1..=4 for 4/5..4/8).
pub const CR_4_5: u8 = 1;

/// The LoRaWAN preamble length in symbols.
pub const LORAWAN_PREAMBLE: u16 = 8;

/// Bytes a data frame adds around the application payload (MHDR 1, FHDR 7
/// without FOpts, FPort 1, MIC 4).
pub const LORAWAN_OVERHEAD: usize = 13;

/// Time on air of a LoRa frame carrying `payload_len` bytes.
///
/// `sf` is the spreading factor (5..=12), `bw_hz` the bandwidth in hertz,
/// `coding_rate` the formula's `CR` (1 for 4/5 up to 4 for 4/8),
/// `explicit_header` and `crc` the frame options, `preamble` the programmed
/// preamble length in symbols.
///
/// # Panics
/// When `sf` is outside 5..=12, `bw_hz` is zero or `coding_rate` is outside
/// 1..=4.
pub fn time_on_air(
    payload_len: usize,
    sf: u8,
    bw_hz: u32,
    coding_rate: u8,
    explicit_header: bool,
    crc: bool,
    preamble: u16,
) -> Duration {
    assert!((5..=12).contains(&sf), "spreading factor {sf} out of range");
    assert!(bw_hz > 0, "bandwidth must not be zero");
    assert!(
        (1..=4).contains(&coding_rate),
        "coding rate {coding_rate} out of range"
    );
    let sf_i = i64::from(sf);
    let de = i64::from(low_data_rate_optimize(sf, bw_hz));
    let ih = i64::from(!explicit_header);
    let numerator = 8 * payload_len as i64 - 4 * sf_i + 28 + 16 * i64::from(crc) - 20 * ih;
    let denominator = 4 * (sf_i - 2 * de);
    let blocks = if numerator > 0 {
        (numerator + denominator - 1) / denominator
    } else {
        0
    };
    let n_payload = 8 + blocks * (i64::from(coding_rate) + 4);
    // Quarter symbols: (n_pre + 4.25 + n_payload) * 4.
    let quarter_symbols = 4 * i64::from(preamble) + 17 + 4 * n_payload;
    let nanos = (quarter_symbols as u128) * (1u128 << sf) * 1_000_000_000 / (4 * u128::from(bw_hz));
    Duration::from_nanos(nanos as u64)
}

/// Whether the radio uses low data rate optimisation: symbols of 16.384 ms
/// or longer (SF11 and SF12 at 125 kHz).
pub fn low_data_rate_optimize(sf: u8, bw_hz: u32) -> bool {
    // 2^SF / BW >= 16.384 ms  <=>  2^SF * 1_000_000 >= 16_384 * BW
    (1u64 << sf) * 1_000_000 >= 16_384 * u64::from(bw_hz)
}

/// Duration of one LoRa symbol.
pub fn symbol_time(sf: u8, bw_hz: u32) -> Duration {
    Duration::from_nanos(((1u64 << sf) * 1_000_000_000) / u64::from(bw_hz))
}

/// Time on air of a LoRaWAN PHYPayload of `phy_len` bytes (uplink frames
/// carry a CRC, downlink frames do not).
pub fn lorawan_phy_airtime(phy_len: usize, sf: u8, bw_hz: u32, uplink: bool) -> Duration {
    time_on_air(phy_len, sf, bw_hz, CR_4_5, true, uplink, LORAWAN_PREAMBLE)
}

/// Time on air of an FSK frame at 50 kbit/s carrying a `phy_len`-byte
/// PHYPayload.
pub fn fsk_time_on_air(phy_len: usize) -> Duration {
    // Preamble 5, sync word 3, length 1, payload, CRC 2; 20 us a bit.
    Duration::from_micros((5 + 3 + 1 + phy_len as u64 + 2) * 8 * 20)
}

/// Time on air of a LoRaWAN data uplink with an `app_payload_len`-byte
/// application payload and no FOpts.
pub fn lorawan_uplink_airtime(app_payload_len: usize, sf: u8, bw_hz: u32) -> Duration {
    lorawan_phy_airtime(app_payload_len + LORAWAN_OVERHEAD, sf, bw_hz, true)
}

/// Time on air of a LoRaWAN data downlink with an `app_payload_len`-byte
/// application payload and no FOpts.
pub fn lorawan_downlink_airtime(app_payload_len: usize, sf: u8, bw_hz: u32) -> Duration {
    lorawan_phy_airtime(app_payload_len + LORAWAN_OVERHEAD, sf, bw_hz, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    fn toa_ms(pl: usize, sf: u8) -> f64 {
        ms(time_on_air(pl, sf, 125_000, CR_4_5, true, true, 8))
    }

    /// The check values of field-physics.md (BW125, CRC on, explicit
    /// header, CR 4/5, 8-symbol preamble), to 0.1 ms.
    #[test]
    fn field_physics_check_values() {
        for (pl, sf, expected) in [
            (12, 7, 41.2),
            (12, 9, 144.4),
            (12, 12, 1155.1),
            (51, 7, 102.7),
            (51, 12, 2465.8),
        ] {
            let got = toa_ms(pl, sf);
            assert!(
                (got - expected).abs() < 0.05,
                "PL={pl} SF{sf}: {got} ms, expected {expected} ms"
            );
        }
    }

    #[test]
    fn exact_values() {
        // 12.25 + 28 symbols of 1.024 ms.
        assert_eq!(
            time_on_air(12, 7, 125_000, 1, true, true, 8),
            Duration::from_micros(41_216)
        );
        // The lora-modulation crate's cross-checked LoRaWAN value for a
        // 25-byte application payload at SF12 BW125: 1974.272 ms.
        assert_eq!(
            lorawan_uplink_airtime(25, 12, 125_000),
            Duration::from_micros(1_974_272)
        );
        // FSK: 36 bytes at 50 kbit/s.
        assert_eq!(fsk_time_on_air(25), Duration::from_micros(5760));
    }

    #[test]
    fn helpers_and_options() {
        assert_eq!(
            lorawan_uplink_airtime(0, 7, 125_000),
            time_on_air(13, 7, 125_000, 1, true, true, 8)
        );
        // No CRC never takes longer; implicit header never longer either.
        for sf in 7..=12 {
            for pl in 0..60 {
                let base = time_on_air(pl, sf, 125_000, 1, true, true, 8);
                assert!(time_on_air(pl, sf, 125_000, 1, true, false, 8) <= base);
                assert!(time_on_air(pl, sf, 125_000, 1, false, true, 8) <= base);
                assert!(time_on_air(pl + 1, sf, 125_000, 1, true, true, 8) >= base);
            }
        }
        assert!(low_data_rate_optimize(11, 125_000));
        assert!(low_data_rate_optimize(12, 125_000));
        assert!(!low_data_rate_optimize(10, 125_000));
        assert!(!low_data_rate_optimize(12, 500_000));
        assert_eq!(symbol_time(7, 125_000), Duration::from_micros(1024));
        // An empty payload still has the 8 fixed symbols.
        assert_eq!(
            time_on_air(0, 12, 125_000, 1, false, false, 8),
            symbol_time(12, 125_000) * 8 + symbol_time(12, 125_000) * 49 / 4
        );
    }
}
