//! `lava-worker`: long-polls a worker fleet's queue and runs each dispatched
//! job through one lifecycle ([`run`]), recording every step in the events
//! table and deleting the message only after the run is recorded.

pub mod actions;
pub mod cli;
pub mod daemon;
pub mod event_size;
pub mod events;
pub mod handlers;
pub mod notify;
pub mod process;
pub mod run;
pub mod worker;
