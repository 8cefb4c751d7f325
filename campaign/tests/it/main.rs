//! otavan-campaign against a real mosquitto broker.

mod broker;
mod push;
mod watch;
