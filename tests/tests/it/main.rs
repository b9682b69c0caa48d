//! The integration tests: the real lava binaries against the AWS emulator
//! started by `tests/run`, or on the local backend. One binary, one module
//! per area.

mod cloudformation;
mod compat;
mod connections;
mod containment;
mod cron_e2e;
mod crontab;
mod dispatch;
mod faults;
mod local_backend;
mod logging;
mod notify;
mod orchestration;
mod packaging;
mod realm;
mod resilience;
mod retries;
mod runaway;
mod sched;
mod sql;
mod state;
mod store;
mod worker;
