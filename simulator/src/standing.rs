//! Standing groups on later passes (`campaign.wake = "standing"`): a
//! member that a pass missed (its session was cut, its WAKE was lost) is
//! woken for its next contact by its group's multicast frame again, with
//! every other member of the group that van pass serves, in the group's
//! daily slot before that contact; only when no slot comes in time is it
//! woken by unicast. The WAKE carries the target's version tag, so the
//! members already updated ignore the frame.

use std::collections::HashMap;

use otavan_planning::contacts::Contact;
use otavan_planning::standing::wake_slots;
use otavan_planning::time::Time;

/// The members one retry frame wakes: a group's meters for one van pass.
#[derive(Debug, Clone, Default)]
pub struct Retry {
    /// The slot its frame goes out in.
    pub slot: Time,
    /// Each member and the index of its contact on that pass.
    pub members: Vec<(usize, usize)>,
}

/// The retries planned and not yet sent.
#[derive(Debug, Default)]
pub struct Retries {
    retries: Vec<Retry>,
    /// The retry not yet sent of each (group, van, pass).
    pending: HashMap<(u32, u16, u16), u32>,
}

impl Retries {
    /// Adds meter `m` of group `g` (daily slot at `offset`) for its
    /// contact `contact` (index `index`), whose WiFi window would open at
    /// `open`: to the pass's retry not yet sent, or to a new one in the
    /// group's last slot after `now` that is early enough. Gives the
    /// retry's id and, when it is new, its slot to schedule; `None` when
    /// no slot comes between now and the contact.
    pub fn join(
        &mut self,
        g: u32,
        offset: Time,
        (m, index, contact): (usize, usize, &Contact),
        open: Time,
        now: Time,
    ) -> Option<(u32, Option<Time>)> {
        let key = (g, contact.van, contact.pass);
        if let Some(&id) = self.pending.get(&key) {
            self.retries[id as usize].members.push((m, index));
            return Some((id, None));
        }
        let slot = *wake_slots(offset, open, now).first()?;
        let id = self.retries.len() as u32;
        self.retries.push(Retry {
            slot,
            members: vec![(m, index)],
        });
        self.pending.insert(key, id);
        Some((id, Some(slot)))
    }

    /// Retry `id`, now going out: no member joins it any more.
    pub fn send(&mut self, id: u32) -> Retry {
        self.pending.retain(|_, pending| *pending != id);
        std::mem::take(&mut self.retries[id as usize])
    }
}

#[cfg(test)]
mod tests {
    use otavan_planning::standing::PERIOD;
    use otavan_planning::time::secs;

    use super::*;

    fn contact(van: u16, pass: u16, start: Time) -> Contact {
        Contact {
            start,
            end: start + secs(30),
            van,
            pass,
        }
    }

    #[test]
    fn one_retry_per_group_and_pass_until_it_is_sent() {
        let mut retries = Retries::default();
        let offset = secs(3_600);
        let open = 3 * PERIOD + secs(7_200);
        let first = contact(0, 2, open + secs(60));
        // Missed on day 1: the retry goes out in day 2's slot, the first
        // of the two before the pass.
        let (id, slot) = retries
            .join(7, offset, (1, 4, &first), open, PERIOD + secs(10))
            .unwrap();
        assert_eq!(slot, Some(2 * PERIOD + offset));
        // Another member of the group for the same pass joins it; one for
        // another pass gets its own.
        assert_eq!(
            retries.join(7, offset, (2, 0, &first), open, PERIOD),
            Some((id, None))
        );
        let other = contact(1, 2, open);
        let (other_id, _) = retries
            .join(7, offset, (3, 1, &other), open, PERIOD)
            .unwrap();
        assert_ne!(other_id, id);
        let sent = retries.send(id);
        assert_eq!(sent.members, [(1, 4), (2, 0)]);
        // Sent: a member missed now waits for the next slot, if any.
        let late = 2 * PERIOD + offset + secs(5);
        let (again, slot) = retries.join(7, offset, (1, 4, &first), open, late).unwrap();
        assert_ne!(again, id);
        assert_eq!(slot, Some(3 * PERIOD + offset));
        let too_late = 3 * PERIOD + offset + secs(5);
        assert_eq!(
            retries.join(8, offset, (5, 0, &first), open, too_late),
            None
        );
    }
}
