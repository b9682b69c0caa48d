//! The dispatcher side of lava: `lava-dispatch`, which puts dispatch
//! messages on worker queues (what cron calls, and what people run on
//! demand), `lava-crontab`, which keeps the crontab that makes cron call
//! it, and `lava-realm`, which creates realms and loads their items.

pub mod crontab;
pub mod dispatch_cli;
pub mod realm_cli;
