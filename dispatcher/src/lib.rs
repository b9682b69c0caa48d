//! The dispatcher side of lava: `lava-dispatch`, which puts dispatch
//! messages on worker queues (what cron calls, and what people run on
//! demand), `lava-crontab`, which keeps the crontab that makes cron call
//! it, `lava-realm`, which creates realms and loads their items, and
//! `lava-state`, which puts and gets state items.

pub mod crontab;
pub mod dispatch_cli;
pub mod realm_cli;
pub mod state_cli;
