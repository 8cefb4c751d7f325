//! otavan-campaign against a real mosquitto broker.

mod broker;
mod chirpstack;
mod multicast_push;
mod push;
mod standing_push;
mod watch;
