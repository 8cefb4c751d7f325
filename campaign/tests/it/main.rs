//! otavan-campaign against a real mosquitto broker.

mod broker;
mod multicast_push;
mod push;
mod watch;
