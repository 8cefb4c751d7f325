//! What the trigger drives besides the radio: the update engine, the WiFi
//! radio and the meter's sensors.

use otavan_protocol::lora::StatusUplink;

use crate::engine::Engine;

/// The meter's measurements, sent in uplinks.
pub trait Sensors {
    /// The next meter reading: the application payload sent on the reading
    /// FPort.
    fn reading(&mut self) -> Vec<u8>;

    /// The battery level for STATUS uplinks: 0 on external power, 1..=254,
    /// or 255 when unknown (the default), as in LoRaWAN's `DevStatusAns`.
    fn battery(&mut self) -> u8 {
        StatusUplink::BATTERY_UNKNOWN
    }
}

/// A closure is a sensor that only reads (battery unknown).
impl<G: FnMut() -> Vec<u8>> Sensors for G {
    fn reading(&mut self) -> Vec<u8> {
        self()
    }
}

/// The parts of the meter the trigger uses: it runs `engine` over `wifi`
/// when a session opens, reads the meter's version and pending state from
/// the engine's meter, saves its own state in that meter's storage, and
/// asks `sensors` for readings.
pub struct Host<W, S, F, T, M> {
    /// The update engine (its transport talks to the van's server).
    pub engine: Engine<S, F, T>,
    /// The WiFi radio.
    pub wifi: W,
    /// The meter's measurements.
    pub sensors: M,
}
