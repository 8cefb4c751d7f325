//! Fleet rehearsals: a deterministic discrete-event simulation of an otavan
//! campaign, for `otavan rehearse`.
//!
//! Before a van leaves the depot the team wants to know how many drives,
//! at what speed and with which wake schedule it takes to update a town's
//! meters, what that costs in airtime and battery, and what happens when
//! things fail. [`rehearse`] answers for one [`Scenario`] and seed:
//!
//! 1. [`Fleet::generate`] places the meters along a street grid and draws
//!    each one's install kind, WiFi range, uplink interval, version and
//!    flash speed from its own seeded stream ([`random`]).
//! 2. [`pace::paces`] plans each van's speed per leg and its stops (or
//!    one speed throughout), [`route::drive`] drives the vans over their
//!    routes in shifts;
//!    the planning crate's [`Contacts::compute`] finds, from geometry and
//!    speed, when each meter is within WiFi range of a van.
//! 3. [`Radio`] works out the LoRaWAN links (path loss, spreading factor,
//!    collisions) and keeps the gateways' duty cycle.
//! 4. [`Simulation`] runs the campaign event by event: the planner
//!    ([`otavan_planning::wake`], shared with `otavan campaign plan`) queues
//!    each meter's WAKE for a pass, the WAKE rides on an uplink (or not),
//!    the meter opens its WiFi window, downloads through the van's shared
//!    access point, applies, and is planned again after a miss (at once,
//!    or with `campaign.replan = "after-pass"` by the operator after each
//!    pass, through [`otavan_planning::replan`]).
//! 5. [`fuota::baseline`] computes the same update by LoRaWAN FUOTA,
//!    [`losses`] the route's physical limit and where each meter below it
//!    was lost, and [`RehearsalReport`] sums everything up; [`output::write`] writes
//!    `report.json`, `meters.csv` and the plots.
//!
//! ```
//! use otavan_sim::{Options, Scenario, rehearse};
//!
//! let mut scenario = Scenario::default();
//! scenario.fleet.meters = 200;
//! // Rooftop gateways (the examples' path-loss fit): with the street-level
//! // default most indoor meters have no LoRa coverage.
//! scenario.lora.path_loss_d0_m = 1000.0;
//! scenario.lora.path_loss_d0_db = 128.95;
//! scenario.lora.path_loss_exponent = 2.32;
//! scenario.lora.shadowing_sigma_db = 7.8;
//! let run = rehearse(&scenario, "doc", &Options::default(), &mut |_| {}).unwrap();
//! assert_eq!(run.report.meters, 200);
//! // Every meter is updated, was already current, or failed for a reason.
//! let failed: u64 = run.report.failures.values().sum();
//! assert_eq!(run.report.updated + run.report.already_current + failed, 200);
//! ```

pub mod ap;
pub mod fleet;
pub mod fuota;
pub mod live;
pub mod losses;
pub mod multicast;
pub mod output;
pub mod overrides;
pub mod pace;
pub mod plot;
pub mod radio;
pub mod random;
pub mod release;
pub mod report;
pub mod route;
pub mod scenario;
pub mod simulation;
pub mod standing;

use std::path::PathBuf;

pub use fleet::Fleet;
use otavan_planning::Contacts;
use otavan_planning::defaults::Margins;
use otavan_planning::limit::Reach;
pub use overrides::Override;
pub use radio::Radio;
pub use report::RehearsalReport;
pub use scenario::{Scenario, ScenarioError};
pub use simulation::{RunResult, Simulation};

use otavan_protocol::lora::VersionTag;

use crate::fuota::{FuotaBaseline, Group};
use crate::release::UpdateSizes;
use crate::report::ReportInputs;
use crate::route::Drives;
use otavan_planning::time::{self, from_secs_f64, secs};
use otavan_planning::wake::PlanConfig;

/// How to run a rehearsal (beyond the scenario).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The seed of every random draw.
    pub seed: u64,
    /// Where firmware deltas of a `release_dir` are cached (`None`: no
    /// deltas).
    pub patch_cache: Option<PathBuf>,
    /// Keep every gateway transmission (for checking the duty cycle).
    pub record_frames: bool,
}

/// A finished rehearsal.
pub struct Rehearsal {
    /// The summary.
    pub report: RehearsalReport,
    /// The meters.
    pub fleet: Fleet,
    /// The network (with its recorded frames, if asked).
    pub radio: Radio,
    /// The vans' drives.
    pub drives: Drives,
    /// Per-meter results and totals.
    pub run: RunResult,
    /// The FUOTA baseline.
    pub fuota: FuotaBaseline,
    /// What the route could do for each meter at best.
    pub reach: Vec<Reach>,
    /// Each meter's loss (`None`: updated or already current).
    pub losses: Vec<Option<losses::Loss>>,
}

/// Rehearses `scenario` (named `name` in the report); `progress` gets the
/// share of virtual time done now and then.
///
/// # Errors
///
/// [`ScenarioError`] when the release cannot be read or a source version
/// has no update size.
pub fn rehearse(
    scenario: &Scenario,
    name: &str,
    options: &Options,
    progress: &mut dyn FnMut(f64),
) -> Result<Rehearsal, ScenarioError> {
    let multicast = scenario.campaign.wake != scenario::WakeDelivery::Unicast;
    if scenario.campaign.wake != scenario::WakeDelivery::Unicast
        && scenario.campaign.replan == scenario::Replan::AfterPass
    {
        return Err(ScenarioError::Invalid {
            field: "campaign.wake".into(),
            message: "multicast WAKEs are planned per meter (campaign.replan = \"per-meter\")"
                .into(),
        });
    }
    let mut world = World::prepare(scenario, options)?;
    if options.record_frames {
        world.radio.record_frames();
    }
    let plan = plan_config(scenario, &world.sizes);
    let groups = multicast.then(|| {
        let members: Vec<usize> = (0..world.fleet.meters.len())
            .filter(|&m| {
                world.needs[usize::from(world.fleet.profiles[m].version)].is_some()
                    && world.radio.sf(m).is_some()
            })
            .collect();
        let wake_len = if plan.version_tag.is_some() { 11 } else { 7 };
        multicast::plan(
            scenario,
            &plan,
            &world.contacts,
            &world.radio,
            &members,
            world.fleet.meters.len(),
            wake_len,
        )
    });
    let simulation = Simulation::new(
        scenario,
        plan,
        &world.fleet,
        &world.contacts,
        &mut world.radio,
        &world.needs,
        &world.drives.pass_ends(),
        options.seed,
    );
    let mut figures = groups.as_ref().map(multicast::MulticastPlan::figures);
    let run = match groups {
        Some(groups) => simulation.with_multicast(groups),
        None => simulation,
    }
    .run(progress);
    if let Some(standing) = figures.as_mut().and_then(|f| f.standing.as_mut()) {
        standing.woken_again = run.totals.woken_again;
    }
    let reach = world.reach(scenario);
    let mut rehearsal = world.finish(scenario, name, options.seed, reach, run);
    rehearsal.report.multicast = figures;
    Ok(rehearsal)
}

/// Everything a run happens in, before anything happens: the release's
/// sizes, the meters, the network, the vans' drives and the contacts.
/// Shared by the analytic and the live mode.
pub(crate) struct World {
    pub(crate) sizes: UpdateSizes,
    pub(crate) fleet: Fleet,
    /// Bytes each source version needs (`None`: already current).
    pub(crate) needs: Vec<Option<u64>>,
    pub(crate) radio: Radio,
    pub(crate) drives: Drives,
    pub(crate) contacts: Contacts,
}

impl World {
    /// Builds the world of `scenario` for `options.seed`.
    pub(crate) fn prepare(scenario: &Scenario, options: &Options) -> Result<World, ScenarioError> {
        let sizes = release::update_sizes(scenario, options.patch_cache.clone())?;
        World::prepare_with(scenario, options.seed, sizes)
    }

    /// Builds the world of `scenario` for `seed`, with the update `sizes`
    /// already known (the live mode takes them from the release it serves).
    pub(crate) fn prepare_with(
        scenario: &Scenario,
        seed: u64,
        sizes: UpdateSizes,
    ) -> Result<World, ScenarioError> {
        let fleet = Fleet::generate(scenario, seed);
        let needs = fleet
            .versions
            .iter()
            .map(|v| sizes.need(v))
            .collect::<Result<Vec<_>, _>>()?;
        let radio = Radio::new(scenario, &fleet);
        let routes = route::routes(scenario, &fleet.streets_y);
        let candidates = losses::candidates(&fleet, &radio, &needs);
        let end = horizon(scenario);
        let paces = pace::paces(scenario, &fleet.meters, &candidates, &routes, end);
        let drives = route::drive(scenario, routes, paces, end);
        let contacts = Contacts::compute(&fleet.meters, &drives.legs);
        Ok(World {
            sizes,
            fleet,
            needs,
            radio,
            drives,
            contacts,
        })
    }

    /// Each meter's reach on this world's route ([`losses::reach`]).
    pub(crate) fn reach(&self, scenario: &Scenario) -> Vec<Reach> {
        losses::reach(
            scenario,
            &self.fleet,
            &self.radio,
            &self.needs,
            &self.contacts,
        )
    }

    /// Sums up `run` in this world, where the route could reach meters as
    /// `reach` says: the losses, the FUOTA baseline and the report.
    pub(crate) fn finish(
        self,
        scenario: &Scenario,
        name: &str,
        seed: u64,
        reach: Vec<Reach>,
        run: RunResult,
    ) -> Rehearsal {
        let fuota = fuota_baseline(scenario, &self.fleet, &self.radio, &self.needs);
        let losses = losses::of_run(&reach, &run.meters);
        let report = RehearsalReport::build(&ReportInputs {
            scenario,
            name,
            seed,
            fleet: &self.fleet,
            radio: &self.radio,
            drives: &self.drives,
            run: &run,
            sizes: &self.sizes,
            fuota: &fuota,
            physical_limit: reach.iter().filter(|r| **r == Reach::Updatable).count() as u64,
            losses: &losses,
        });
        Rehearsal {
            report,
            fleet: self.fleet,
            radio: self.radio,
            drives: self.drives,
            run,
            fuota,
            reach,
            losses,
        }
    }
}

/// The campaign's end, in virtual time.
pub fn horizon(scenario: &Scenario) -> time::Time {
    from_secs_f64(scenario.campaign.duration_days * 86_400.0)
}

/// The planner's settings for `scenario`.
pub fn plan_config(scenario: &Scenario, sizes: &UpdateSizes) -> PlanConfig {
    let c = &scenario.campaign;
    let margins = Margins {
        lead_s: c.window_lead_s,
        slack_s: c.window_slack_s,
        min_contact_s: c.min_contact_s,
        jitter_s: scenario.fleet.uplink_jitter_s,
    };
    PlanConfig {
        campaign: c.campaign_id,
        version_tag: c.version_tag.then(|| VersionTag::of(&sizes.target)),
        ..PlanConfig::new(c.policy, &margins)
    }
}

pub(crate) fn fuota_baseline(
    scenario: &Scenario,
    fleet: &Fleet,
    radio: &Radio,
    needs: &[Option<u64>],
) -> FuotaBaseline {
    let mut by_version: Vec<Vec<usize>> = vec![Vec::new(); fleet.versions.len()];
    for (m, profile) in fleet.profiles.iter().enumerate() {
        by_version[usize::from(profile.version)].push(m);
    }
    let already = fleet
        .profiles
        .iter()
        .filter(|p| needs[usize::from(p.version)].is_none())
        .count() as u64;
    let groups: Vec<Group<'_>> = fleet
        .versions
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            needs[i].map(|bytes| Group {
                version: v.to_string(),
                bytes,
                meters: &by_version[i],
            })
        })
        .filter(|g| !g.meters.is_empty())
        .collect();
    let longest = fleet
        .meters
        .iter()
        .map(|m| m.interval)
        .max()
        .unwrap_or(secs(3600));
    fuota::baseline(
        scenario,
        &scenario.fuota,
        radio,
        &groups,
        already,
        fleet.meters.len() as u64,
        time::as_secs_f64(longest),
    )
}
