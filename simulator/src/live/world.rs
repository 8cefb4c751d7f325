//! What the live meters share: virtual time, the vans' positions (as each
//! meter's contacts), the access points, and what each meter did.

use std::cell::{Cell, RefCell};

use tokio::time::Instant;

use crate::fleet::Fleet;
use crate::scenario::Scenario;
use crate::simulation::Cause;
use otavan_planning::contacts::{Contact, Contacts};
use otavan_planning::time::{Time, as_secs_f64};

/// A meter's current WiFi link to a van.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// The van.
    pub van: u16,
    /// When the link ends (the van leaves range, or the link drops).
    pub until: Time,
    /// Why it ends then.
    pub ends_by: Cause,
    /// When the meter associated.
    pub since: Time,
}

/// What one live meter did, for the report.
#[derive(Debug, Default)]
pub struct MeterLog {
    /// WiFi sessions with a van.
    pub sessions: u16,
    /// WAKEs received.
    pub downlinks: u16,
    /// Bytes received over WiFi.
    pub bytes: f64,
    /// Campaign energy so far, joules.
    pub energy_j: f64,
    /// The current link.
    pub link: Option<Link>,
    /// When the meter reached the target.
    pub updated_at: Option<Time>,
    /// The last thing that went wrong.
    pub cause: Option<Cause>,
    /// Power cuts it went through.
    pub power_cuts: u16,
    /// It reached the target but its UPDATED report never reached the van
    /// (the link ended, or the power failed, after the apply had
    /// committed): the van hears of it only at the meter's next contact.
    pub updated_unreported: bool,
}

/// The shared world of a live rehearsal (single-threaded: one runtime
/// thread drives every meter).
pub struct LiveWorld {
    /// t = 0 of the campaign.
    pub origin: Instant,
    /// The meters.
    pub fleet: Fleet,
    /// When each meter can reach a van.
    pub contacts: Contacts,
    /// Meters on each van's access point.
    pub on_air: RefCell<Vec<u32>>,
    /// Per meter.
    pub logs: Vec<RefCell<MeterLog>>,
    /// Aggregate access point capacity, bytes per second.
    pub capacity_bps: f64,
    /// Stations an access point serves at once.
    pub max_clients: u32,
    /// Mean time between link drops, seconds (infinite: none).
    pub mean_drop_s: f64,
    /// Association time: median and 99th percentile, seconds.
    pub assoc: (f64, f64),
    /// Volts, and amperes while waiting and while active.
    pub power: (f64, f64, f64),
    /// Amperes while the LoRa radio receives (a class C window).
    pub lora_rx_a: f64,
    /// Frames the meters heard in class C windows, all meters.
    pub class_c: RefCell<ClassCFrames>,
    /// Incidents, all meters.
    pub incidents: RefCell<std::collections::BTreeMap<Cause, u64>>,
    /// Trigger steps taken, all meters.
    pub steps: Cell<u64>,
}

/// Frames heard in class C windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClassCFrames {
    /// Accepted for one of the meter's groups.
    pub accepted: u64,
    /// Another group's (ignored).
    pub other_group: u64,
    /// Refused: a bad MIC or counter, or not multicast-shaped.
    pub refused: u64,
}

impl LiveWorld {
    /// The world of `scenario` over `fleet` and its `contacts`, starting now.
    pub fn new(scenario: &Scenario, fleet: Fleet, contacts: Contacts, vans: usize) -> LiveWorld {
        let wifi = &scenario.wifi;
        let logs = (0..fleet.meters.len())
            .map(|_| RefCell::default())
            .collect();
        LiveWorld {
            origin: Instant::now(),
            fleet,
            contacts,
            on_air: RefCell::new(vec![0; vans]),
            logs,
            capacity_bps: scenario.van.ap_capacity_mbps * 1e6 / 8.0,
            max_clients: scenario.van.ap_max_clients,
            mean_drop_s: if scenario.faults.link_drops_per_min > 0.0 {
                60.0 / scenario.faults.link_drops_per_min
            } else {
                f64::INFINITY
            },
            assoc: (wifi.assoc_median_s, wifi.assoc_p99_s),
            power: (
                wifi.supply_v,
                wifi.wait_ma / 1000.0,
                wifi.active_ma / 1000.0,
            ),
            lora_rx_a: wifi.lora_rx_ma / 1000.0,
            class_c: RefCell::default(),
            incidents: RefCell::default(),
            steps: Cell::new(0),
        }
    }

    /// Virtual time now.
    pub fn now(&self) -> Time {
        self.time_of(Instant::now())
    }

    /// Virtual time of a tokio instant.
    pub fn time_of(&self, at: Instant) -> Time {
        at.saturating_duration_since(self.origin).as_micros() as Time
    }

    /// The tokio instant of virtual time `t`.
    pub fn instant(&self, t: Time) -> Instant {
        self.origin + std::time::Duration::from_micros(t)
    }

    /// Meter `m`'s contacts.
    pub fn contacts_of(&self, m: usize) -> &[Contact] {
        self.contacts.of(m)
    }

    /// Records that something went wrong for meter `m`.
    pub fn incident(&self, m: usize, cause: Cause) {
        *self.incidents.borrow_mut().entry(cause).or_default() += 1;
        self.logs[m].borrow_mut().cause = Some(cause);
    }

    /// Adds `seconds` at `amps` to meter `m`'s energy.
    pub fn spend(&self, m: usize, amps: f64, seconds: Time) {
        self.logs[m].borrow_mut().energy_j += self.power.0 * amps * as_secs_f64(seconds);
    }

    /// The rate meter `m` downloads at on `van` now: its flash-bound
    /// goodput, or an equal share of the access point if that is less.
    pub fn rate(&self, m: usize, van: u16) -> f64 {
        let sharing = f64::from(self.on_air.borrow()[usize::from(van)].max(1));
        self.fleet.profiles[m]
            .goodput_bps
            .min(self.capacity_bps / sharing)
    }
}
