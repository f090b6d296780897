//! Integration tests of the service emulators, over HTTP against `emulator::start`.

mod common;
mod digital_twins;
mod dps;
mod graph;
mod iot_central;
mod support;
