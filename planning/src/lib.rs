//! Campaign planning: when a van passes each meter, and which WAKE
//! downlink to queue so the meter's WiFi is on when it does.
//!
//! One planning layer serves both sides of otavan: `otavan rehearse`
//! (`otavan-sim`) plans the WAKEs of a simulated town with it, and
//! `otavan campaign plan` (`otavan-campaign`) plans a real campaign from a
//! meter inventory and a route with the very same code. It depends only on
//! `otavan-protocol` (the WAKE codec), so the operator's tool does not
//! compile a simulator to plan, and rehearsal physics never becomes a
//! production default by accident.
//!
//! - [`time`]: virtual time, microseconds from a campaign's t = 0.
//! - [`geometry`]: points in metres and where a segment is within range.
//! - [`leg`]: [`Leg`], a piece of a van's drive at constant speed.
//! - [`meters`]: [`Meters`], the meters as the planner sees them (where,
//!   how far their WiFi reaches, when they send uplinks).
//! - [`contacts`]: [`Contacts`], every meter's in-range intervals.
//! - [`wake`]: the planner ([`wake::plan`]), its [`Policy`] and
//!   [`PlanConfig`].
//! - [`limit`]: the physical limit, which meters the route's contacts could
//!   have updated at best ([`limit::reach`]).
//! - [`multicast`]: multicast WAKE groups ([`multicast::segment_groups`],
//!   a street segment of one van pass) and the unicast-or-multicast
//!   choice by airtime, duty cycle and class C energy ([`multicast::Costs`]).
//! - [`standing`]: standing multicast sessions, set up once at
//!   installation: each group's daily slot ([`standing::assign_slots`]) and
//!   the slots its WAKE goes out in ([`standing::wake_slots`]).
//! - [`pace`]: [`Pace`], a speed for each route leg and stops where
//!   meters need longer contact, within a time budget ([`Pace::plan`]).
//! - [`replan`]: the second pass for the missed: which meters of a pass's
//!   plan to plan again, in route order, and the [`replan::Tally`].
//! - [`defaults`]: the planner's default [`Margins`], WiFi ranges per
//!   install kind ([`WifiRanges`]) and van speed, with their sources.
//!
//! ```
//! use otavan_planning::{Contacts, Leg, MeterSpec, Meters, PlanConfig, Policy};
//! use otavan_planning::defaults::Margins;
//! use otavan_planning::geometry::Point;
//! use otavan_planning::time::secs;
//! use otavan_planning::wake::{Uplinks, plan};
//!
//! // One meter 10 m from a straight street, hourly uplinks.
//! let meters = Meters::from_meters(vec![MeterSpec {
//!     pos: Point::new(500.0, 10.0),
//!     wifi_range_m: 80.0,
//!     interval: secs(3600),
//!     phase: secs(100),
//! }]);
//! // A van drives the 1 km street at 10 m/s, starting at t = 10,000 s.
//! let mut legs = Vec::new();
//! Leg::split(Point::new(0.0, 0.0), Point::new(1000.0, 0.0), secs(10_000), secs(10_100), &mut legs);
//! let contacts = Contacts::compute(&meters, &legs);
//! assert_eq!(contacts.of(0).len(), 1);
//! // The WAKE rides on the last uplink before the window opens.
//! let uplinks = Uplinks { phase: secs(100), interval: secs(3600), rx_delay: secs(2) };
//! let config = PlanConfig::new(Policy::NextPass, &Margins::default());
//! let wake = plan(contacts.of(0), 0, 0, &uplinks, &config).unwrap();
//! assert_eq!(wake.uplink, 2);
//! assert!(wake.opens_at <= contacts.of(0)[0].start && wake.closes_at >= contacts.of(0)[0].end);
//! ```

pub mod contacts;
pub mod defaults;
pub mod geometry;
pub mod leg;
pub mod limit;
pub mod meters;
pub mod multicast;
pub mod pace;
pub mod replan;
pub mod standing;
pub mod time;
pub mod wake;

pub use contacts::{Contact, Contacts};
pub use defaults::{Margins, WifiRanges};
pub use leg::Leg;
pub use meters::{MeterSpec, Meters};
pub use pace::{Pace, PaceLimits};
pub use wake::{PlanConfig, Policy, WakePlan};
