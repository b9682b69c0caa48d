//! The lava data model and the machinery every lava program shares: value
//! formats, configuration, table items, the dispatch message and routine,
//! realm provisioning, the common command-line flags, logging and the
//! storage seams with their backends.

pub mod children;
pub mod cli;
pub mod config;
pub mod connection;
pub mod db;
pub mod dispatch;
pub mod document;
pub mod logging;
pub mod names;
pub mod provision;
pub mod render;
pub mod run_id;
pub mod settings;
pub mod spec;
pub mod sql;
pub mod state;
pub mod store;
pub mod timestamp;
pub mod ttl_cache;
pub mod units;

/// The lava version, as `--version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
