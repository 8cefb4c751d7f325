//! [`VanWifi`]: the meter's WiFi radio in a live rehearsal. Joining works
//! when a van is within range (the simulator's contacts), after the
//! association time; the link lasts until the van leaves or the link drops.

use std::rc::Rc;

use otavan_client::wifi::{Credentials, WifiError, WifiLink};
use tokio::time::sleep_until;

use super::world::{Link, LiveWorld};
use crate::random::Stream;
use crate::simulation::Cause;
use otavan_planning::time::from_secs_f64;

/// A live meter's WiFi radio.
pub struct VanWifi {
    world: Rc<LiveWorld>,
    m: usize,
    rng: Stream,
}

impl VanWifi {
    /// Meter `m`'s radio, drawing association times and drops from `rng`.
    pub fn new(world: Rc<LiveWorld>, m: usize, rng: Stream) -> VanWifi {
        VanWifi { world, m, rng }
    }
}

impl WifiLink for VanWifi {
    async fn join(
        &mut self,
        ssid: &str,
        _credentials: &Credentials,
        deadline: tokio::time::Instant,
    ) -> Result<(), WifiError> {
        let world = Rc::clone(&self.world);
        let m = self.m;
        let opened = world.now();
        let deadline = world.time_of(deadline);
        let (_, wait_a, _) = world.power;
        for c in world.contacts_of(m) {
            let now = world.now();
            if c.end <= now || c.start >= deadline {
                continue;
            }
            let entered = c.start.max(now);
            let assoc = from_secs_f64(self.rng.log_normal(world.assoc.0, world.assoc.1));
            let ready = entered + assoc;
            if ready >= c.end.min(deadline) {
                continue;
            }
            sleep_until(world.instant(ready)).await;
            if world.on_air.borrow()[usize::from(c.van)] >= world.max_clients {
                world.incident(m, Cause::ApFull);
                continue;
            }
            let dropped = ready + from_secs_f64(self.rng.exponential(world.mean_drop_s).min(1e9));
            let (until, ends_by) = if dropped < c.end {
                (dropped, Cause::LinkDrop)
            } else {
                (c.end, Cause::ContactEnded)
            };
            world.on_air.borrow_mut()[usize::from(c.van)] += 1;
            world.spend(m, wait_a, entered - opened);
            let mut log = world.logs[m].borrow_mut();
            log.sessions += 1;
            log.link = Some(Link {
                van: c.van,
                until,
                ends_by,
                since: entered,
            });
            return Ok(());
        }
        sleep_until(world.instant(deadline.max(world.now()))).await;
        world.spend(m, wait_a, world.now().saturating_sub(opened));
        world.incident(m, Cause::WindowMissed);
        Err(WifiError::Timeout {
            ssid: ssid.to_string(),
        })
    }

    async fn leave(&mut self) {
        let world = &self.world;
        let link = world.logs[self.m].borrow_mut().link.take();
        if let Some(link) = link {
            world.on_air.borrow_mut()[usize::from(link.van)] -= 1;
            let (_, _, active_a) = world.power;
            world.spend(self.m, active_a, world.now().saturating_sub(link.since));
        }
    }
}
