//! The queue seam on the local database, with SQS's semantics: a delay per
//! message (0–900 s), a visibility timeout per queue set at creation, a
//! receive count per receive, a fresh receipt per receive (so a receipt goes
//! stale when the message is redelivered, and deleting or changing the
//! visibility with it fails without touching the message), and long polls.
//!
//! **Claims.** A receive first checks with a plain read whether anything is
//! visible (so idle pollers never take the write lock), then claims up to
//! `max` messages in one `BEGIN IMMEDIATE` transaction: each gets a new
//! receipt, its count incremented and its visibility pushed back. SQLite
//! lets one writer in at a time, across processes too, so no message is
//! claimed twice within its visibility timeout.
//!
//! **Long polls without busy looping.** A receive that finds nothing sleeps
//! and polls again until its wait is over: the sleep starts at 25 ms and
//! doubles up to 1 s (so an idle waiting worker costs one indexed read per
//! second), is cut short when a delayed or invisible message of the queue
//! becomes visible, and is woken at once by a [`Notify`] that every send and
//! `change_visibility(…, 0)` of the same process signals. A message sent by
//! another process is therefore picked up within about a second (the
//! backoff cap), one sent by this process at once; SQLite offers no
//! cross-process change notification, and the poll is a single read.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Notify;

use super::db::{Db, DbError, now_ms};
use crate::store::{Queue, QueueRef, Received, StoreError};

/// SQS's longest delay.
const MAX_DELAY_SECS: u32 = 900;
/// SQS's longest visibility timeout, and the longest a message may stay
/// invisible after a receive.
const MAX_VISIBILITY_SECS: u32 = 43_200;
/// SQS's longest long poll.
const MAX_WAIT_SECS: u32 = 20;
/// First and longest sleep between two polls of a long poll.
const FIRST_NAP: Duration = Duration::from_millis(25);
const LONGEST_NAP: Duration = Duration::from_secs(1);

/// Queues in `<DIR>/lava.db`.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    db: Arc<Db>,
    wake: Arc<Notify>,
}

impl LocalQueue {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self {
            db,
            wake: Arc::new(Notify::new()),
        }
    }

    fn url(&self, name: &str) -> String {
        format!("sqlite://{}?queue={name}", self.db.path().display())
    }

    /// One claim attempt: the messages claimed, or none and when the next
    /// message of the queue becomes visible (epoch ms), if any.
    async fn claim(
        &self,
        queue: &QueueRef,
        max: u32,
    ) -> Result<(Vec<Received>, Option<i64>), StoreError> {
        let name = queue.name.clone();
        self.db
            .run(move |conn| {
                let visibility = visibility_of(conn, &name)?;
                let now = now_ms();
                let ready: bool = conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND visible_at <= ?2)",
                    )?
                    .query_row(params![name, now], |r| r.get(0))?;
                if !ready {
                    let next: Option<i64> = conn
                        .prepare_cached("SELECT min(visible_at) FROM messages WHERE queue = ?1")?
                        .query_row([&name], |r| r.get(0))?;
                    return Ok((Vec::new(), next));
                }
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now_ms();
                let claimed: Vec<(i64, String, String, i64)> = tx
                    .prepare_cached(
                        "SELECT id, message_id, body, receive_count FROM messages
                         WHERE queue = ?1 AND visible_at <= ?2
                         ORDER BY visible_at, id LIMIT ?3",
                    )?
                    .query_map(params![name, now, max], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<Result<_, _>>()?;
                let mut got = Vec::with_capacity(claimed.len());
                for (id, message_id, body, count) in claimed {
                    let receipt = format!("{id}-{}", uuid::Uuid::new_v4().simple());
                    tx.prepare_cached(
                        "UPDATE messages SET receipt = ?2, receive_count = receive_count + 1,
                           visible_at = ?3, received_at = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, receipt, now + visibility * 1000, now])?;
                    got.push(Received {
                        body,
                        receipt,
                        receive_count: u32::try_from(count + 1).unwrap_or(u32::MAX),
                        message_id,
                    });
                }
                tx.commit()?;
                Ok((got, None))
            })
            .await
    }
}

/// The queue's visibility timeout in seconds, or [`StoreError::QueueNotFound`].
fn visibility_of(conn: &Connection, name: &str) -> Result<i64, DbError> {
    conn.prepare_cached("SELECT visibility_secs FROM queues WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::QueueNotFound(name.to_string()).into())
}

fn stale(queue: &str, receipt: &str) -> DbError {
    StoreError::Service(format!(
        "ReceiptHandleIsInvalid: receipt {receipt} is not current on queue {queue}: the message was deleted or received again"
    ))
    .into()
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadRequest(format!(
            "bad queue name {name:?}: 1 to 80 letters, digits, - and _"
        )))
    }
}

#[async_trait]
impl Queue for LocalQueue {
    async fn resolve(&self, name: &str) -> Result<QueueRef, StoreError> {
        let owned = name.to_string();
        self.db
            .run(move |conn| visibility_of(conn, &owned).map(|_| ()))
            .await?;
        Ok(QueueRef {
            name: name.to_string(),
            url: self.url(name),
        })
    }

    async fn send(
        &self,
        queue: &QueueRef,
        body: &str,
        delay_secs: u32,
    ) -> Result<String, StoreError> {
        if delay_secs > MAX_DELAY_SECS {
            return Err(StoreError::BadRequest(format!(
                "delay of {delay_secs} s is over the {MAX_DELAY_SECS} s limit"
            )));
        }
        let (name, body) = (queue.name.clone(), body.to_string());
        let message_id = uuid::Uuid::new_v4().to_string();
        let id = message_id.clone();
        self.db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                visibility_of(&tx, &name)?;
                let now = now_ms();
                tx.prepare_cached(
                    "INSERT INTO messages (queue, message_id, body, sent_at, visible_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    name,
                    id,
                    body,
                    now,
                    now + i64::from(delay_secs) * 1000
                ])?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.wake.notify_waiters();
        Ok(message_id)
    }

    async fn receive(
        &self,
        queue: &QueueRef,
        max: u32,
        wait_secs: u32,
    ) -> Result<Vec<Received>, StoreError> {
        let max = max.clamp(1, 10);
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(u64::from(wait_secs.min(MAX_WAIT_SECS)));
        let mut nap = FIRST_NAP;
        loop {
            // Registered before the claim, so a send that lands between the
            // claim and the sleep still wakes this poll.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (got, next_visible) = self.claim(queue, max).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let mut sleep = nap.min(deadline - now);
            if let Some(next) = next_visible {
                let until = u64::try_from(next - now_ms()).unwrap_or(0) + 1;
                sleep = sleep.min(Duration::from_millis(until));
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(sleep) => {}
            }
            nap = (nap * 2).min(LONGEST_NAP);
        }
    }

    async fn change_visibility(
        &self,
        queue: &QueueRef,
        receipt: &str,
        secs: u32,
    ) -> Result<(), StoreError> {
        if secs > MAX_VISIBILITY_SECS {
            return Err(StoreError::BadRequest(format!(
                "visibility timeout of {secs} s is over the {MAX_VISIBILITY_SECS} s limit"
            )));
        }
        let (name, receipt) = (queue.name.clone(), receipt.to_string());
        self.db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                visibility_of(&tx, &name)?;
                let received_at: Option<i64> = tx
                    .prepare_cached(
                        "SELECT received_at FROM messages WHERE queue = ?1 AND receipt = ?2",
                    )?
                    .query_row(params![name, receipt], |r| r.get(0))
                    .optional()?
                    .flatten();
                let Some(received_at) = received_at else {
                    return Err(stale(&name, &receipt));
                };
                let now = now_ms();
                let visible_at = now + i64::from(secs) * 1000;
                if visible_at > received_at + i64::from(MAX_VISIBILITY_SECS) * 1000 {
                    return Err(StoreError::BadRequest(format!(
                        "visibility timeout of {secs} s would keep the message invisible past 12 hours after its receive"
                    ))
                    .into());
                }
                tx.prepare_cached("UPDATE messages SET visible_at = ?3 WHERE queue = ?1 AND receipt = ?2")?
                    .execute(params![name, receipt, visible_at])?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        if secs == 0 {
            self.wake.notify_waiters();
        }
        Ok(())
    }

    async fn delete(&self, queue: &QueueRef, receipt: &str) -> Result<(), StoreError> {
        let (name, receipt) = (queue.name.clone(), receipt.to_string());
        self.db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                visibility_of(&tx, &name)?;
                let deleted = tx
                    .prepare_cached("DELETE FROM messages WHERE queue = ?1 AND receipt = ?2")?
                    .execute(params![name, receipt])?;
                if deleted == 0 {
                    return Err(stale(&name, &receipt));
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn visibility_timeout(&self, queue: &QueueRef) -> Result<u32, StoreError> {
        let owned = queue.name.clone();
        let secs = self.db.run(move |conn| visibility_of(conn, &owned)).await?;
        Ok(u32::try_from(secs).unwrap_or(0))
    }

    async fn create(&self, name: &str, visibility_secs: u32) -> Result<QueueRef, StoreError> {
        check_name(name)?;
        if visibility_secs > MAX_VISIBILITY_SECS {
            return Err(StoreError::BadRequest(format!(
                "visibility timeout of {visibility_secs} s is over the {MAX_VISIBILITY_SECS} s limit"
            )));
        }
        let owned = name.to_string();
        self.db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let existing: Option<i64> = tx
                    .prepare_cached("SELECT visibility_secs FROM queues WHERE name = ?1")?
                    .query_row([&owned], |r| r.get(0))
                    .optional()?;
                match existing {
                    Some(v) if v == i64::from(visibility_secs) => return Ok(()),
                    // As SQS: the same name with other attributes is an error.
                    Some(v) => {
                        return Err(StoreError::Service(format!(
                            "QueueAlreadyExists: queue {owned} exists with a visibility timeout of {v} s, not {visibility_secs} s"
                        ))
                        .into());
                    }
                    None => {}
                }
                tx.prepare_cached(
                    "INSERT INTO queues (name, visibility_secs, created_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![owned, visibility_secs, now_ms()])?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(QueueRef {
            name: name.to_string(),
            url: self.url(name),
        })
    }
}
