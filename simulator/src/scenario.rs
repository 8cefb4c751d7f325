//! The scenario file: what a rehearsal simulates.
//!
//! A scenario is TOML with the sections `[campaign]`, `[fleet]`, `[lora]`,
//! `[van]`, `[wifi]`, `[release]` and `[faults]`. Every field has a default
//! (the sources are in `docs/rehearsal.md` and
//! `shared/reference/field-physics.md`), so an empty file is a valid
//! scenario; unknown fields are errors, so a typo never goes unnoticed.
//! [`Scenario::load`] applies `--set section.key=value` overrides
//! ([`crate::overrides`]) before reading the fields.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use otavan_planning::defaults::{self, Margins};
use otavan_planning::wake::Policy;
use otavan_protocol::Version;
use otavan_protocol::region::Region;
use serde::{Deserialize, Serialize};

use crate::fuota::FuotaSettings;
use crate::overrides::{self, Override};

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The scenario file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse, or a field has the wrong type or name.
    #[error("{path}: {message}")]
    Parse {
        /// The scenario file.
        path: PathBuf,
        /// What the TOML reader said.
        message: String,
    },
    /// A `--set` option is malformed or names no scalar.
    #[error("--set {0}")]
    Override(String),
    /// A value is out of its range or inconsistent with another.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as `section.key`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A whole scenario.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Duration, planning policy, WAKE timing.
    pub campaign: CampaignSettings,
    /// The meters: how many, where, how installed, which versions.
    pub fleet: FleetSettings,
    /// The LoRaWAN network that carries the WAKE downlinks.
    pub lora: LoraSettings,
    /// The vans: how many, route, speed, shifts, access point.
    pub van: VanSettings,
    /// The meters' WiFi: association, goodput, current draw.
    pub wifi: WifiSettings,
    /// How many bytes each meter needs.
    pub release: ReleaseSettings,
    /// What goes wrong.
    pub faults: FaultSettings,
    /// The LoRaWAN FUOTA baseline.
    pub fuota: FuotaSettings,
    /// The folder relative paths in the scenario are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[campaign]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignSettings {
    /// How long the campaign runs, in days of virtual time from t = 0
    /// (midnight before the first day).
    pub duration_days: f64,
    /// The campaign number carried by every WAKE.
    pub campaign_id: u16,
    /// Which pass each meter is woken for.
    pub policy: Policy,
    /// The WiFi window opens this long before the predicted contact.
    pub window_lead_s: f64,
    /// The WiFi window stays open this long after the predicted contact.
    pub window_slack_s: f64,
    /// Passes predicted to give a meter less contact than this are not
    /// planned for it.
    pub min_contact_s: f64,
    /// WAKEs carry the target's version tag (4 bytes more).
    pub version_tag: bool,
    /// How WAKEs reach the meters: `unicast` (each meter's own downlink
    /// after one of its uplinks), `multicast` (one class C frame per
    /// street segment, TS005, where the planner finds it pays; with
    /// `replan = "per-meter"`) or `standing` (the same groups, set up once
    /// at installation with a daily class C slot, woken by multicast
    /// alone).
    pub wake: WakeDelivery,
    /// When a meter that missed is planned again: at once by itself, or by
    /// the operator after each pass, as `otavan campaign replan` does.
    pub replan: Replan,
}

/// How WAKEs reach the meters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WakeDelivery {
    /// Each meter's own WAKE, in the receive windows of one of its uplinks.
    #[default]
    Unicast,
    /// One multicast WAKE per group of meters a van passes together, heard
    /// in a class C window each meter was given beforehand by unicast.
    Multicast,
    /// The same groups with standing sessions (otavan's
    /// StandingSessionReq), set up once at installation: each group's WAKE
    /// is one multicast frame in its daily slot, with no unicast downlink
    /// per campaign.
    Standing,
}

/// When the missed are planned again (`campaign.replan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replan {
    /// Each meter is planned again right after its miss, for its next
    /// contact: an operator who knows every miss the moment it happens.
    PerMeter,
    /// Each van pass has its own plan: after a pass (when its last WAKE
    /// window has closed), every meter not at the target is planned on the
    /// next pass's contacts with `planning::replan`, as
    /// `otavan campaign replan` plans the next shift from the reports;
    /// `report.json` gets `per_pass`.
    AfterPass,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        let margins = Margins::default();
        CampaignSettings {
            duration_days: 7.0,
            campaign_id: 1,
            policy: Policy::NextPass,
            window_lead_s: margins.lead_s,
            window_slack_s: margins.slack_s,
            min_contact_s: margins.min_contact_s,
            version_tag: true,
            wake: WakeDelivery::Unicast,
            replan: Replan::PerMeter,
        }
    }
}

/// `[fleet]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetSettings {
    /// How many meters.
    pub meters: u32,
    /// East-west streets the meters face (north-south streets join them at
    /// both ends).
    pub streets: u32,
    /// Length of each street, metres.
    pub street_length_m: f64,
    /// Distance between neighbouring streets, metres.
    pub street_spacing_m: f64,
    /// Smallest distance of a meter from the middle of its street, metres.
    pub offset_min_m: f64,
    /// Largest distance of a meter from the middle of its street, metres.
    pub offset_max_m: f64,
    /// Install kinds by name, with their share and radio properties.
    pub install: BTreeMap<String, Install>,
    /// Uplink interval (humantime, `"2h"`) -> share of meters.
    pub uplink_intervals: BTreeMap<String, f64>,
    /// Random shift of each uplink around its nominal time, up to this
    /// many seconds either way.
    pub uplink_jitter_s: f64,
    /// Version the meters run -> share of meters.
    pub versions: BTreeMap<String, f64>,
    /// Battery capacity, milliampere-hours.
    pub battery_mah: f64,
    /// Battery voltage.
    pub battery_v: f64,
}

impl Default for FleetSettings {
    fn default() -> Self {
        // The planner's install kinds (their WiFi ranges), with their share
        // of a town and their building-entry LoRa loss.
        let install = [
            ("outdoor", 0.2, 0.0),
            ("indoor", 0.5, 10.5),
            ("basement", 0.3, 18.4),
        ]
        .into_iter()
        .map(|(name, share, lora_loss_db)| {
            let kind = defaults::install_kind(name).expect("one of the planner's kinds");
            (
                name.to_string(),
                Install {
                    share,
                    wifi_range_min_m: kind.wifi_range_min_m,
                    wifi_range_max_m: kind.wifi_range_max_m,
                    lora_loss_db,
                },
            )
        })
        .collect();
        let uplink_intervals = [("1d", 0.4), ("2h", 0.4), ("1h", 0.15), ("30m", 0.05)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        FleetSettings {
            meters: 5000,
            streets: 10,
            street_length_m: 1000.0,
            street_spacing_m: 100.0,
            offset_min_m: 5.0,
            offset_max_m: 40.0,
            install,
            uplink_intervals,
            uplink_jitter_s: Margins::default().jitter_s,
            versions: [("1.0.0".to_string(), 1.0)].into_iter().collect(),
            battery_mah: 7700.0,
            battery_v: 3.6,
        }
    }
}

/// One install kind of `[fleet.install.NAME]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Install {
    /// Share of the meters installed this way.
    pub share: f64,
    /// Shortest WiFi range to the van, metres.
    pub wifi_range_min_m: f64,
    /// Longest WiFi range to the van, metres.
    pub wifi_range_max_m: f64,
    /// Extra LoRa path loss (building entry), dB. Defaults: 3GPP TR
    /// 38.901's low-loss (indoor) and high-loss (basement) building models
    /// evaluated at 868 MHz.
    pub lora_loss_db: f64,
}

/// `[lora]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraSettings {
    /// `EU868` or `US915`.
    pub region: String,
    /// Gateways, spread on a grid over the fleet unless
    /// `gateway_positions` names them.
    pub gateways: u32,
    /// Gateway positions `[x, y]` in metres (overrides `gateways`).
    pub gateway_positions: Vec<[f64; 2]>,
    /// Meter transmit power, dBm.
    pub tx_power_dbm: f64,
    /// Gateway transmit power, dBm.
    pub gateway_tx_power_dbm: f64,
    /// Log-distance path loss: reference distance d0, metres.
    pub path_loss_d0_m: f64,
    /// Path loss at d0, dB.
    pub path_loss_d0_db: f64,
    /// Path loss exponent gamma.
    pub path_loss_exponent: f64,
    /// Shadowing standard deviation, dB (drawn per frame).
    pub shadowing_sigma_db: f64,
    /// Link margin the spreading factor is chosen with, dB.
    pub sf_margin_db: f64,
    /// Application payload of the meters' periodic uplinks, bytes.
    pub uplink_payload_bytes: usize,
    /// Uplink channels the meters spread over (for collisions).
    pub channels: u32,
    /// Model pure-ALOHA collisions of the periodic uplinks.
    pub collisions: bool,
}

impl Default for LoraSettings {
    fn default() -> Self {
        LoraSettings {
            region: "EU868".into(),
            gateways: 4,
            gateway_positions: Vec::new(),
            tx_power_dbm: 14.0,
            gateway_tx_power_dbm: 27.0,
            path_loss_d0_m: 40.0,
            path_loss_d0_db: 127.41,
            path_loss_exponent: 2.08,
            shadowing_sigma_db: 3.57,
            sf_margin_db: 5.0,
            uplink_payload_bytes: 4,
            channels: 3,
            collisions: true,
        }
    }
}

/// `[van]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VanSettings {
    /// How many vans (the streets are split between them).
    pub vans: u32,
    /// `"grid"` (a serpentine over the streets) or `"waypoints"`.
    pub route: RouteKind,
    /// The route's corners `[x, y]` in metres when `route = "waypoints"`.
    pub waypoints: Vec<[f64; 2]>,
    /// Driving speed, km/h (with `pace = "planned"`, the fastest).
    pub speed_kmh: f64,
    /// `"constant"` (every leg at `speed_kmh`) or `"planned"` (a speed for
    /// each leg and stops, from `otavan_planning::pace`).
    pub pace: PaceKind,
    /// The slowest a planned pace drives, km/h.
    pub min_speed_kmh: f64,
    /// The longest stop a planned pace makes, seconds.
    pub max_stop_s: f64,
    /// Share of a pass's spare shift time a planned pace may spend.
    pub pace_budget_share: f64,
    /// Passes a planned pace gives each meter the contact it needs.
    pub pace_passes_per_meter: u32,
    /// Times each van drives its whole route (every other pass backwards).
    pub passes: u32,
    /// The van stops every this many metres (0: never).
    pub stop_every_m: f64,
    /// For this many seconds.
    pub stop_s: f64,
    /// First day the vans drive (day 0 starts at t = 0).
    pub first_day: u32,
    /// Hour of the day a shift starts.
    pub shift_start_h: f64,
    /// Hours a shift lasts.
    pub shift_hours: f64,
    /// Aggregate goodput of the van's access point, Mbit/s.
    pub ap_capacity_mbps: f64,
    /// Stations the access point serves at once.
    pub ap_max_clients: u32,
}

impl Default for VanSettings {
    fn default() -> Self {
        VanSettings {
            vans: 1,
            route: RouteKind::Grid,
            waypoints: Vec::new(),
            speed_kmh: defaults::SPEED_KMH,
            pace: PaceKind::Constant,
            min_speed_kmh: defaults::MIN_SPEED_KMH,
            max_stop_s: defaults::MAX_STOP_S,
            pace_budget_share: defaults::PACE_BUDGET_SHARE,
            pace_passes_per_meter: defaults::PACE_PASSES_PER_METER,
            passes: 2,
            stop_every_m: 0.0,
            stop_s: 0.0,
            first_day: 1,
            shift_start_h: 8.0,
            shift_hours: 8.0,
            ap_capacity_mbps: defaults::AP_CAPACITY_MBPS,
            ap_max_clients: defaults::AP_MAX_CLIENTS,
        }
    }
}

/// How fast the vans drive each leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaceKind {
    /// Every leg at `speed_kmh`.
    Constant,
    /// Each leg's speed and stops planned for the meters along it, within
    /// the shifts' spare time.
    Planned,
}

/// Where the vans drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteKind {
    /// A serpentine over the fleet's street grid.
    Grid,
    /// The `waypoints` polyline.
    Waypoints,
}

/// `[wifi]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WifiSettings {
    /// Median association + DHCP time, seconds (log-normal).
    pub assoc_median_s: f64,
    /// 99th percentile association time, seconds.
    pub assoc_p99_s: f64,
    /// Slowest device goodput (flash-bound), kB/s (uniform per meter).
    pub goodput_min_kb_s: f64,
    /// Fastest device goodput, kB/s.
    pub goodput_max_kb_s: f64,
    /// Per-session overhead (manifest, report), seconds.
    pub session_overhead_s: f64,
    /// Verify and apply after the download, seconds.
    pub apply_s: f64,
    /// Supply voltage of the meter's radio module.
    pub supply_v: f64,
    /// Current while the WiFi window is open and the van is not there, mA.
    pub wait_ma: f64,
    /// Current while associated and transferring or applying, mA.
    pub active_ma: f64,
    /// LoRa receive current, mA (WAKE reception).
    pub lora_rx_ma: f64,
}

impl Default for WifiSettings {
    fn default() -> Self {
        WifiSettings {
            assoc_median_s: defaults::ASSOC_MEDIAN_S,
            assoc_p99_s: 4.9,
            goodput_min_kb_s: 40.0,
            goodput_max_kb_s: defaults::GOODPUT_MAX_KB_S,
            session_overhead_s: defaults::SESSION_OVERHEAD_S,
            apply_s: 5.0,
            supply_v: 3.3,
            wait_ma: 100.0,
            active_ma: 200.0,
            lora_rx_ma: 12.0,
        }
    }
}

/// `[release]`: the update's size for each source version.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReleaseSettings {
    /// A release tree (relative to the scenario file): sizes come from the
    /// manifests the van server would send.
    pub release_dir: Option<PathBuf>,
    /// Firmware deltas when computing from `release_dir`.
    pub deltas: bool,
    /// The target version (with `sizes`; from `release_dir` the highest).
    pub target: String,
    /// Bytes per source version, when no `release_dir` is given.
    pub sizes: BTreeMap<String, u64>,
    /// A release-signing key (`otavan keygen`'s `.key` file, relative to
    /// the scenario): live rehearsals sign a copy of the release tree with
    /// it and provision the meters to trust its public key.
    pub signing_key: Option<PathBuf>,
}

impl Default for ReleaseSettings {
    fn default() -> Self {
        ReleaseSettings {
            release_dir: None,
            deltas: true,
            target: "2.0.0".into(),
            sizes: [("1.0.0".to_string(), 300_000)].into_iter().collect(),
            signing_key: None,
        }
    }
}

/// `[faults]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Probability that power fails during an apply (the meter stays at
    /// its old version and tries again on a later pass).
    pub power_cut_per_apply: f64,
    /// Rate of WiFi link drops during a session, per minute.
    pub link_drops_per_min: f64,
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings {
            power_cut_per_apply: 0.01,
            link_drops_per_min: 0.2,
        }
    }
}

impl Scenario {
    /// Reads `path`, applies `overrides` and checks every value.
    ///
    /// # Errors
    ///
    /// [`ScenarioError`] naming the file, the option or the field.
    pub fn load(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_error = |message: String| ScenarioError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let file: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
        let table = overrides::effective(&file, overrides)?;
        let mut scenario: Scenario = table
            .try_into()
            .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
        scenario.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        scenario.validate()?;
        Ok(scenario)
    }

    /// The region named by `[lora] region`.
    pub fn region(&self) -> Region {
        self.lora.region.parse().unwrap_or(Region::Eu868)
    }

    /// The campaign's length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.campaign.duration_days * 86_400.0)
    }

    /// The uplink intervals with their shares, in the map's order.
    pub fn uplink_intervals(&self) -> Vec<(Duration, f64)> {
        self.fleet
            .uplink_intervals
            .iter()
            .filter_map(|(k, v)| Some((humantime::parse_duration(k).ok()?, *v)))
            .collect()
    }

    /// The source versions with their shares.
    pub fn versions(&self) -> Vec<(Version, f64)> {
        self.fleet
            .versions
            .iter()
            .filter_map(|(k, v)| Some((Version::parse(k).ok()?, *v)))
            .collect()
    }

    /// Checks ranges and consistency.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Invalid`] for the first bad field.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |field: &str, message: String| {
            Err(ScenarioError::Invalid {
                field: field.into(),
                message,
            })
        };
        let positive = [
            ("campaign.duration_days", self.campaign.duration_days),
            ("fleet.street_length_m", self.fleet.street_length_m),
            ("fleet.street_spacing_m", self.fleet.street_spacing_m),
            ("fleet.battery_mah", self.fleet.battery_mah),
            ("fleet.battery_v", self.fleet.battery_v),
            ("lora.path_loss_d0_m", self.lora.path_loss_d0_m),
            ("lora.path_loss_exponent", self.lora.path_loss_exponent),
            ("van.speed_kmh", self.van.speed_kmh),
            ("van.min_speed_kmh", self.van.min_speed_kmh),
            ("van.shift_hours", self.van.shift_hours),
            ("van.ap_capacity_mbps", self.van.ap_capacity_mbps),
            ("wifi.assoc_median_s", self.wifi.assoc_median_s),
            ("wifi.goodput_min_kb_s", self.wifi.goodput_min_kb_s),
            ("wifi.supply_v", self.wifi.supply_v),
        ];
        for (field, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return invalid(field, format!("must be a positive number, not {value}"));
            }
        }
        let non_negative = [
            ("campaign.window_lead_s", self.campaign.window_lead_s),
            ("campaign.window_slack_s", self.campaign.window_slack_s),
            ("campaign.min_contact_s", self.campaign.min_contact_s),
            ("fleet.offset_min_m", self.fleet.offset_min_m),
            ("fleet.uplink_jitter_s", self.fleet.uplink_jitter_s),
            ("lora.shadowing_sigma_db", self.lora.shadowing_sigma_db),
            ("lora.sf_margin_db", self.lora.sf_margin_db),
            ("van.stop_every_m", self.van.stop_every_m),
            ("van.stop_s", self.van.stop_s),
            ("van.max_stop_s", self.van.max_stop_s),
            ("van.shift_start_h", self.van.shift_start_h),
            ("wifi.session_overhead_s", self.wifi.session_overhead_s),
            ("wifi.apply_s", self.wifi.apply_s),
            ("wifi.wait_ma", self.wifi.wait_ma),
            ("wifi.active_ma", self.wifi.active_ma),
            ("wifi.lora_rx_ma", self.wifi.lora_rx_ma),
            ("faults.link_drops_per_min", self.faults.link_drops_per_min),
        ];
        for (field, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return invalid(field, format!("must be zero or more, not {value}"));
            }
        }
        if self.fleet.meters == 0 {
            return invalid("fleet.meters", "must be at least 1".into());
        }
        if self.van.pace_passes_per_meter == 0 {
            return invalid("van.pace_passes_per_meter", "must be at least 1".into());
        }
        if self.fleet.streets == 0 {
            return invalid("fleet.streets", "must be at least 1".into());
        }
        if self.fleet.offset_max_m < self.fleet.offset_min_m {
            return invalid(
                "fleet.offset_max_m",
                "must not be below fleet.offset_min_m".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.faults.power_cut_per_apply) {
            return invalid(
                "faults.power_cut_per_apply",
                "must be a probability (0 to 1)".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.van.pace_budget_share) {
            return invalid("van.pace_budget_share", "must be a share (0 to 1)".into());
        }
        if self.van.min_speed_kmh > self.van.speed_kmh {
            return invalid(
                "van.min_speed_kmh",
                "must not be above van.speed_kmh".into(),
            );
        }
        if self.wifi.assoc_p99_s < self.wifi.assoc_median_s {
            return invalid("wifi.assoc_p99_s", "must not be below the median".into());
        }
        if self.wifi.goodput_max_kb_s < self.wifi.goodput_min_kb_s {
            return invalid(
                "wifi.goodput_max_kb_s",
                "must not be below the minimum".into(),
            );
        }
        if self.van.shift_start_h + self.van.shift_hours > 24.0 {
            return invalid(
                "van.shift_hours",
                "a shift must end by midnight (shift_start_h + shift_hours <= 24)".into(),
            );
        }
        if self.lora.region.parse::<Region>().is_err() {
            return invalid(
                "lora.region",
                format!("unknown region {:?} (EU868 or US915)", self.lora.region),
            );
        }
        if self.lora.gateways == 0 && self.lora.gateway_positions.is_empty() {
            return invalid("lora.gateways", "at least one gateway is needed".into());
        }
        if self.lora.channels == 0 {
            return invalid("lora.channels", "must be at least 1".into());
        }
        if self.van.vans == 0 || self.van.vans > u32::from(u16::MAX) {
            return invalid("van.vans", "must be between 1 and 65535".into());
        }
        if self.van.ap_max_clients == 0 {
            return invalid("van.ap_max_clients", "must be at least 1".into());
        }
        if self.van.route == RouteKind::Waypoints && self.van.waypoints.len() < 2 {
            return invalid(
                "van.waypoints",
                "route = \"waypoints\" needs at least two waypoints".into(),
            );
        }
        shares(
            "fleet.install",
            self.fleet.install.values().map(|i| i.share),
        )?;
        for (name, install) in &self.fleet.install {
            if !(install.wifi_range_min_m > 0.0
                && install.wifi_range_max_m >= install.wifi_range_min_m)
            {
                return invalid(
                    &format!("fleet.install.{name}"),
                    "needs 0 < wifi_range_min_m <= wifi_range_max_m".into(),
                );
            }
        }
        for key in self.fleet.uplink_intervals.keys() {
            match humantime::parse_duration(key) {
                Ok(d) if d >= Duration::from_secs(60) => {}
                _ => {
                    return invalid(
                        "fleet.uplink_intervals",
                        format!(
                            "{key:?} is not an interval of a minute or more (\"30m\", \"2h\", \"1d\")"
                        ),
                    );
                }
            }
        }
        shares(
            "fleet.uplink_intervals",
            self.fleet.uplink_intervals.values().copied(),
        )?;
        for key in self.fleet.versions.keys() {
            if let Err(reason) = Version::parse(key) {
                return invalid("fleet.versions", format!("{key:?}: {reason}"));
            }
        }
        shares("fleet.versions", self.fleet.versions.values().copied())?;
        if self.release.release_dir.is_none() {
            if let Err(reason) = Version::parse(&self.release.target) {
                return invalid(
                    "release.target",
                    format!("{:?}: {reason}", self.release.target),
                );
            }
            for key in self.release.sizes.keys() {
                if let Err(reason) = Version::parse(key) {
                    return invalid("release.sizes", format!("{key:?}: {reason}"));
                }
            }
        }
        Ok(())
    }
}

/// Checks that a share table is non-empty, non-negative and sums to more
/// than zero (shares are normalised, so they need not sum to 1).
fn shares(field: &str, values: impl Iterator<Item = f64>) -> Result<(), ScenarioError> {
    let mut sum = 0.0;
    let mut count = 0;
    for value in values {
        if !(value.is_finite() && value >= 0.0) {
            return Err(ScenarioError::Invalid {
                field: field.into(),
                message: format!("share {value} is not a number of zero or more"),
            });
        }
        sum += value;
        count += 1;
    }
    if count == 0 || sum <= 0.0 {
        return Err(ScenarioError::Invalid {
            field: field.into(),
            message: "needs at least one entry with a positive share".into(),
        });
    }
    Ok(())
}
