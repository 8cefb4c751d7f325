//! What several of the simulator's test files share.

use otavan_sim::Scenario;

/// A small town with explicit update sizes (no release tree needed): six
/// 800 m streets, two rooftop gateways, three one-hour van passes in six
/// days.
pub fn small_town(meters: u32) -> Scenario {
    let mut s = Scenario::default();
    s.fleet.meters = meters;
    s.fleet.streets = 6;
    s.fleet.street_length_m = 800.0;
    s.fleet.offset_max_m = 20.0;
    s.lora.gateways = 2;
    s.lora.path_loss_d0_m = 1000.0;
    s.lora.path_loss_d0_db = 128.95;
    s.lora.path_loss_exponent = 2.32;
    s.lora.shadowing_sigma_db = 7.8;
    s.van.passes = 3;
    s.van.shift_hours = 1.0;
    s.campaign.duration_days = 6.0;
    s
}
