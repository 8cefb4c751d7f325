//! The second pass for the missed: which meters of a pass's plan are
//! planned again for the next pass, in which order, and the tally the
//! operator reads. `otavan campaign replan` (from the reports of a real
//! shift) and rehearsals with `campaign.replan = "after-pass"` (from the
//! simulated meters at the end of each pass) both go through it.
//!
//! After a pass every meter of its plan is [`Status::Done`] (its latest
//! report says it is at the target) or missed, with or without any report
//! ([`Status::Missed`]). [`missed`] keeps the missed in the plan's order;
//! the caller plans them on the next pass's contacts with the planner
//! ([`crate::wake::plan`]) and counts what came of it with
//! [`Tally::planned`]; [`route_order`] sorts the new plan the way the van
//! meets the meters.

/// What the reports say about one meter of a pass's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// At the target: not planned again.
    Done,
    /// Not at the target; `heard` when some report came from it.
    Missed {
        /// Whether any report came from it.
        heard: bool,
    },
}

/// A pass's plan against its outcome, and the next pass's plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Meters in the pass's plan.
    pub listed: usize,
    /// Of those, at the target.
    pub done: usize,
    /// Of those, not at the target.
    pub missed: usize,
    /// Missed meters that sent no report at all.
    pub silent: usize,
    /// Missed meters with a WAKE for the next pass.
    pub planned_again: usize,
    /// Missed meters the next pass cannot reach (no contact the planner
    /// can use), not counting `at_target` ones.
    pub not_reachable: usize,
    /// Missed meters found at the target by other means (an inventory
    /// that says so), not planned.
    pub at_target: usize,
}

impl Tally {
    /// Records the next plan: `planned` of the missed meters got a WAKE,
    /// `at_target` were skipped as already at the target; the rest are not
    /// reachable.
    pub fn planned(&mut self, planned: usize, at_target: usize) {
        self.planned_again = planned;
        self.at_target = at_target;
        self.not_reachable = self.missed.saturating_sub(planned + at_target);
    }
}

/// The meters of `plan` whose `status` is not [`Status::Done`], in the
/// plan's order, and the tally so far (`planned_again` and
/// `not_reachable` follow from [`Tally::planned`]).
pub fn missed<T>(
    plan: impl IntoIterator<Item = T>,
    mut status: impl FnMut(&T) -> Status,
) -> (Vec<T>, Tally) {
    let mut tally = Tally::default();
    let mut missed = Vec::new();
    for meter in plan {
        tally.listed += 1;
        match status(&meter) {
            Status::Done => tally.done += 1,
            Status::Missed { heard } => {
                tally.missed += 1;
                tally.silent += usize::from(!heard);
                missed.push(meter);
            }
        }
    }
    (missed, tally)
}

/// Sorts a new plan in route order: by when the van is predicted to reach
/// each meter (virtual [`Time`](crate::time::Time) or a wall-clock time), then by the meter's
/// id, so equal times keep one order.
pub fn route_order<T, W: Ord, K: Ord>(plan: &mut [T], mut key: impl FnMut(&T) -> (W, K)) {
    plan.sort_by_key(|row| key(row));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missed_keep_the_plan_order_and_the_tally_adds_up() {
        let plan = [10u32, 11, 12, 13, 14];
        let (missed, mut tally) = missed(plan, |m| match m {
            11 | 14 => Status::Done,
            12 => Status::Missed { heard: true },
            _ => Status::Missed { heard: false },
        });
        assert_eq!(missed, [10, 12, 13]);
        tally.planned(1, 1);
        assert_eq!(
            tally,
            Tally {
                listed: 5,
                done: 2,
                missed: 3,
                silent: 2,
                planned_again: 1,
                not_reachable: 1,
                at_target: 1,
            }
        );
    }

    #[test]
    fn route_order_is_by_contact_then_id() {
        let mut rows = [(30, 'b'), (10, 'z'), (30, 'a'), (20, 'c')];
        route_order(&mut rows, |&(at, id)| (at, id));
        assert_eq!(rows, [(10, 'z'), (20, 'c'), (30, 'a'), (30, 'b')]);
    }
}
