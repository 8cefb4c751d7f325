//! The LoRaWAN trigger: the meter's side of "wake up, the van is coming".
//!
//! A meter is a class A LoRaWAN device: it talks when it wants (an uplink
//! every hour), and hears the network only in the two receive windows right
//! after each uplink. [`LoraTrigger`] drives lorawan-device's async
//! [`lorawan_device::async_device::Device`] over any radio and timer:
//!
//! 1. **Join** by OTAA, retrying with exponential backoff and jitter
//!    ([`JoinPolicy`]), unless a saved session is restored.
//! 2. **Uplink** every [`TriggerConfig::uplink_interval`]: a meter reading
//!    on its own FPort, or a STATUS ([`otavan_protocol::lora::StatusUplink`])
//!    on the command FPort when one is owed (after a join, a
//!    STATUS_REQUEST, an update attempt, or every
//!    [`TriggerConfig::status_every`] readings). Every payload is checked
//!    against the region's limit at the data rate before it is sent
//!    (lorawan-device does not check), and EU868's 1 % duty cycle is kept
//!    ([`DutyCycle`]): after a frame the meter stays silent 99 times its
//!    time on air before the next uplink or join attempt.
//! 3. **Downlinks** after an uplink go to the [`Scheduler`], a pure state
//!    machine: a WAKE schedules a [`WifiSession`] (duplicates, stale
//!    campaigns and WAKEs for the meter's own version are ignored), a
//!    CANCEL removes it, a STATUS_REQUEST makes the next uplink a STATUS.
//! 4. **WiFi session**: when the window opens before the next uplink, the
//!    trigger sleeps until it opens, joins the van's network (giving up at
//!    the window's close) and runs one update cycle with the engine
//!    ([`crate::wifi::update_session`]), always leaving the network again.
//!    The engine reports to the van's server by HTTP; the trigger records
//!    the [`otavan_protocol::lora::OtaResult`] ([`ota_result`]) and sends
//!    it in a STATUS uplink at once.
//! 5. **Self-test**: every uplink sent while an update is on trial is
//!    evidence for its self-test ([`crate::Engine::self_test`]), which
//!    confirms the new version (the van heard it, the uplink went out) or
//!    reverts it; a revert, there or at a start ([`crate::Engine::boot`],
//!    which the meter's main loop calls before building the trigger),
//!    makes the next uplink a STATUS saying `reverted`.
//!
//! 5. **Time**: a signed meter asks the network for the time
//!    (`DeviceTimeReq`) in its first uplink after a start or a join, then
//!    weekly ([`TriggerConfig::time_sync_every`]); the authenticated answer
//!    goes to the engine's [`crate::clock::NetworkTime`] and becomes the
//!    meter's trusted-time floor. lorawan-device cannot send or read that
//!    MAC command, so the radio under it is wrapped ([`TimeRadio`]).
//!
//! The LoRaWAN session (keys and frame counters), the schedule, the seen
//! campaigns and the last result are saved in the meter's storage
//! (`.otavan/lora.json`, replaced atomically) after every change, and the
//! uplink counter is saved ahead of each transmission, so a restart neither
//! rejoins nor reuses a frame counter.
//!
//! Time is tokio time throughout ([`crate::clock::MeterClock`], given to
//! [`LoraTrigger::new`]), so a test drives a meter through days in a few
//! milliseconds with paused time.

mod class_c;
mod config;
mod device_time;
mod duty;
mod host;
pub mod multicast;
mod outcome;
mod schedule;
mod store;
mod trigger;

pub use config::{
    DEFAULT_MULTICAST_SETUP_FPORT, DEFAULT_READING_FPORT, JoinPolicy, MulticastConfig,
    TriggerConfig,
};
pub use device_time::TimeRadio;
pub use duty::DutyCycle;
pub use host::{Host, Sensors};
pub use outcome::ota_result;
pub use schedule::{
    Decision, IgnoreReason, SEEN_CAMPAIGNS, Scheduler, SchedulerState, Wakeup, WifiSession,
};
pub use store::{Saved, lora_file};
pub use trigger::{Event, LoraDevice, LoraTrigger, TriggerError, UplinkKind};
