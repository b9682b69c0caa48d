//! `lava-worker`: long-polls a worker fleet's queue and runs each dispatched
//! job through one lifecycle ([`run`]), recording every step in the events
//! table and deleting the message only after the run is recorded. Job types
//! ([`jobs`]) and post-job actions ([`actions`]) sit behind one trait and one
//! registry each, and see the worker only through [`services::Services`]
//! and [`clients::ActionClients`].

pub mod actions;
pub mod capture;
pub mod cgroup;
pub mod cli;
pub mod clients;
pub mod conn;
pub mod daemon;
pub mod email_cli;
pub mod event_size;
pub mod events;
pub mod fence;
pub mod jobs;
pub mod mail;
pub mod notify;
pub mod process;
pub mod run;
pub mod services;
pub mod ses;
pub mod settings;
pub mod slack;
pub mod slack_cli;
pub mod sns;
pub mod tool;
pub mod workdir;
pub mod worker;
