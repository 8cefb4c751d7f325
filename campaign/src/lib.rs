//! Campaign operations: from a meter inventory and a van route to WAKE
//! downlinks on the operator's LoRaWAN network server, and the meters'
//! answers back into the van's report store.
//!
//! A rehearsal (`otavan rehearse`) answers "what if"; this crate does it,
//! with the same contact model and planner, the planning crate's
//! ([`otavan_planning`]), which both depend on:
//!
//! 1. [`inventory::read`] and [`route::read`] check METERS.csv and
//!    ROUTE.csv (every bad row reported with its line number).
//! 2. [`plan::plan`] projects them to local metres, finds the van's
//!    contacts with [`otavan_planning::Contacts::compute`] and plans
//!    each meter's WAKE with [`otavan_planning::wake::plan`];
//!    [`plan_csv::write`] writes PLAN.csv atomically. The [`plan::Summary`]
//!    says which meters are covered, which not and why, and the peak hour's
//!    downlinks against a gateway's RX2 capacity ([`capacity`]); given the
//!    update's size, the route's physical limit and the loss split
//!    ([`limit`]). With a time budget ([`pace`]), the van's speed on each
//!    leg and its stops are planned first, for the meters' contacts, and
//!    [`legs_csv::write`] writes them as LEGS.csv.
//!    With `--wake multicast` ([`multicast`]) or `--wake standing`
//!    ([`standing`]: groups set up once, woken in a daily slot) it also
//!    writes GROUPS.csv and GROUPKEYS.csv ([`groups_csv`]).
//! 3. [`push::push`] queues each WAKE at its time over the network
//!    server's MQTT integration ([`mqtt::NetworkServer`]: ChirpStack v4 or
//!    The Things Stack), QoS 1, recording every PUBACK in
//!    [`progress`] so a restart or reconnect never sends one twice.
//! 4. [`watch::watch`] stores the meters' STATUS uplinks in the van
//!    server's [`otavan_store::reports::ReportStore`] beside the van's own
//!    reports.
//! 5. [`replan::replan`] plans the next shift for the meters of a plan
//!    whose reports ([`reports_csv`], the store's export) do not show them
//!    at the target, with the same planner, in route order.
//! 6. With `--waves` ([`waves`]) the plan's meters are split along the
//!    route into waves ([`waves_csv`]: WAVES.csv beside PLAN.csv), and
//!    [`gate`] judges from the reports whether each wave's WAKEs may go
//!    out (`campaign push`, `campaign status`); [`missed`] lists the
//!    meters a pass missed, with the reason the reports support.
//!
//! ```
//! use otavan_campaign::{clock, plan};
//! use otavan_campaign::inventory::Meter;
//! use otavan_campaign::route::Waypoint;
//!
//! let start = clock::parse("2025-06-02T06:00:00Z").unwrap();
//! // A street 1 km long driven from 09:00, and an hourly meter 15 m off it.
//! let waypoint = |lon, time: &str| Waypoint { line: 0, lat: 52.52, lon, time: Some(clock::parse(time).unwrap()) };
//! let route = [waypoint(13.40, "2025-06-02T09:00:00Z"), waypoint(13.4148, "2025-06-02T09:03:00Z")];
//! let meter = Meter {
//!     line: 2,
//!     dev_eui: "70b3d57ed0000001".parse().unwrap(),
//!     lat: 52.52 + 15.0 / 111_195.0,
//!     lon: 13.407,
//!     install: "outdoor".into(),
//!     uplink_interval_s: 3600,
//!     version: None,
//!     last_uplink: None,
//!     root_key: None,
//! };
//! let planned = plan::plan(&[meter], &route, &plan::Settings::new(start)).unwrap();
//! assert_eq!(planned.summary.planned, 1);
//! assert!(planned.rows[0].enqueue_at < planned.rows[0].expected_contact_at);
//! ```

pub mod capacity;
pub mod chirpstack;
pub mod clock;
pub mod deveui;
pub mod gate;
pub mod geo;
pub mod groups_csv;
pub mod inventory;
pub mod legs_csv;
pub mod limit;
pub mod link;
pub mod missed;
pub mod mqtt;
pub mod multicast;
pub mod pace;
pub mod plan;
pub mod plan_csv;
pub mod progress;
pub mod push;
pub mod replan;
pub mod reports_csv;
pub mod route;
pub mod standing;
pub mod table;
pub mod watch;
pub mod waves;
pub mod waves_csv;
