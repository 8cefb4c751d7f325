//! Fleet rehearsals: a deterministic discrete-event simulation of an otavan
//! campaign.

pub mod plot;
