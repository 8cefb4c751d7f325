//! Simulated LoRaWAN network.
