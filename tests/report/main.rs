//! Reports, export package, delivery and plan views, built from hand-made plans and
//! outcomes.

mod azurite;
mod chromium;
mod delivery;
mod emulator;
mod evidence;
mod fixture;
mod moto;
mod package;
mod plan_views;
#[path = "../support/tools.rs"]
mod tools;
