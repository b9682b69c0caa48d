//! The tables seam on the local database: items as JSON text keyed by
//! (table name, partition value, sort value), with the one secondary index
//! each table needs kept in two extra columns, DynamoDB's item rules (keys
//! are non-empty strings, index keys are strings when present, 400 KB per
//! item, numbers normalised as DynamoDB returns them), TTL on read for the
//! events and state tables, and the conditional event appends and leases as
//! `BEGIN IMMEDIATE` transactions.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Number, Value};

use super::db::{Db, DbError, now_secs};
use crate::spec::{Item, Status};
use crate::store::item::{BINARY_KEY, normalize};
use crate::store::{EventWrite, FINAL_STATUS, Index, Key, Lease, StoreError, Table, Tables};

/// DynamoDB's item size limit.
const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Realm tables in `<DIR>/lava.db`.
#[derive(Debug, Clone)]
pub struct LocalTables {
    db: Arc<Db>,
}

impl LocalTables {
    pub(super) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// The tables whose items expire by their `ttl` attribute (as DynamoDB TTL
/// is enabled on them by `create_realm_tables`).
fn ttl_enabled(table: Table) -> bool {
    matches!(table, Table::Events | Table::State)
}

/// The index lava queries on a table, if any.
fn index_of(table: Table) -> Option<Index> {
    [
        Index::JobsByDispatcher,
        Index::EventsByTime,
        Index::TriggersByPrefix,
    ]
    .into_iter()
    .find(|i| i.schema().1 == table)
}

/// One item ready to store.
struct Row {
    pk: String,
    sk: String,
    body: String,
    ttl: Option<i64>,
    ix_pk: Option<String>,
    ix_sk: Option<String>,
}

fn key_attr(item: &Item, table: &str, attr: &str) -> Result<String, StoreError> {
    match item.get(attr) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(StoreError::BadRequest(format!(
            "{table}: the key attribute {attr} is an empty string"
        ))),
        Some(other) => Err(StoreError::BadRequest(format!(
            "{table}: the key attribute {attr} must be a string, not {other}"
        ))),
        None => Err(StoreError::BadRequest(format!(
            "{table}: the item has no key attribute {attr}"
        ))),
    }
}

/// An index key attribute: absent leaves the item out of the index (a
/// sparse index); present, it must be a non-empty string.
fn index_attr(item: &Item, table: &str, attr: &str) -> Result<Option<String>, StoreError> {
    match item.get(attr) {
        None => Ok(None),
        Some(_) => key_attr(item, table, attr).map(Some),
    }
}

fn ttl_of(item: &Item) -> Option<i64> {
    match item.get("ttl") {
        Some(Value::Number(n)) => n.as_i64().or_else(|| {
            n.as_f64()
                .map(|f| f.floor().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
        }),
        _ => None,
    }
}

/// DynamoDB's size of a value (names and values in UTF-8, numbers about one
/// byte per two digits, 3 bytes per list or map plus 1 per element).
fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(n) => n.to_string().len().div_ceil(2) + 1,
        Value::String(s) => s.len(),
        Value::Array(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::Object(map) => {
            if let (1, Some(Value::String(b64))) = (map.len(), map.get(BINARY_KEY)) {
                return b64.len() / 4 * 3;
            }
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
    }
}

fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Validates an item for `table` and turns it into a row.
fn to_row(table: Table, name: &str, item: &Item) -> Result<Row, StoreError> {
    // Numbers, binary values and key order exactly as DynamoDB returns them.
    let item = normalize(item);
    let (pk_name, sk_name) = table.key_schema();
    let pk = key_attr(&item, name, pk_name)?;
    let sk = match sk_name {
        Some(sk) => key_attr(&item, name, sk)?,
        None => String::new(),
    };
    let (ix_pk, ix_sk) = match index_of(table) {
        Some(index) => {
            let (_, _, ipk, isk) = index.schema();
            match (index_attr(&item, name, ipk)?, index_attr(&item, name, isk)?) {
                (Some(p), Some(s)) => (Some(p), Some(s)),
                _ => (None, None),
            }
        }
        None => (None, None),
    };
    let size = item_size(&item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::BadRequest(format!(
            "{name}: item {pk} is {size} bytes, over the 400 KB item size limit"
        )));
    }
    let body = serde_json::to_string(&item)
        .map_err(|e| StoreError::BadRequest(format!("{name}: item {pk}: {e}")))?;
    Ok(Row {
        pk,
        sk,
        body,
        ttl: if ttl_enabled(table) {
            ttl_of(&item)
        } else {
            None
        },
        ix_pk,
        ix_sk,
    })
}

/// The stored key values of `key` for `table`: the sort value is required
/// where the table has a sort key and ignored where it has none, as DynamoDB
/// builds the key.
fn key_values(table: Table, name: &str, key: &Key) -> Result<(String, String), StoreError> {
    let (pk_name, sk_name) = table.key_schema();
    if key.pk.is_empty() {
        return Err(StoreError::BadRequest(format!(
            "{name}: the key attribute {pk_name} is an empty string"
        )));
    }
    match (sk_name, &key.sk) {
        (None, _) => Ok((key.pk.clone(), String::new())),
        (Some(_), Some(sk)) if !sk.is_empty() => Ok((key.pk.clone(), sk.clone())),
        (Some(sk_name), _) => Err(StoreError::BadRequest(format!(
            "{name}: the key needs a non-empty {sk_name}"
        ))),
    }
}

fn require_table(conn: &Connection, name: &str) -> Result<(), DbError> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM lava_tables WHERE name = ?1)")?
        .query_row([name], |r| r.get(0))?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::TableNotFound(name.to_string()).into())
    }
}

fn parse(name: &str, body: &str) -> Result<Item, DbError> {
    serde_json::from_str(body).map_err(|e| {
        StoreError::Service(format!(
            "local backend: an item of {name} is not valid JSON: {e}"
        ))
        .into()
    })
}

fn expired(ttl: Option<i64>, now: i64) -> bool {
    ttl.is_some_and(|t| t < now)
}

/// The item at a key, or `None` when absent or expired.
fn read_live(
    conn: &Connection,
    name: &str,
    pk: &str,
    sk: &str,
    now: i64,
) -> Result<Option<Item>, DbError> {
    let row: Option<(String, Option<i64>)> = conn
        .prepare_cached("SELECT body, ttl FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")?
        .query_row(params![name, pk, sk], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        Some((body, ttl)) if !expired(ttl, now) => parse(name, &body).map(Some),
        _ => Ok(None),
    }
}

fn write_row(conn: &Connection, name: &str, row: &Row) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO items (tbl, pk, sk, body, ttl, ix_pk, ix_sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tbl, pk, sk) DO UPDATE SET
           body = excluded.body, ttl = excluded.ttl, ix_pk = excluded.ix_pk, ix_sk = excluded.ix_sk",
    )?
    .execute(params![
        name, row.pk, row.sk, row.body, row.ttl, row.ix_pk, row.ix_sk
    ])?;
    Ok(())
}

fn bodies(
    conn: &Connection,
    name: &str,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Item>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, |r| r.get::<_, String>(0))?;
    let mut items = Vec::new();
    for body in rows {
        items.push(parse(name, &body?)?);
    }
    Ok(items)
}

/// The attributes an index query returns: all, except for the jobs index,
/// which projects the keys, `worker` and `schedule` (as created on AWS).
fn project(index: Index, item: Item) -> Item {
    match index {
        Index::JobsByDispatcher => item
            .into_iter()
            .filter(|(k, _)| matches!(k.as_str(), "job_id" | "dispatcher" | "worker" | "schedule"))
            .collect(),
        Index::EventsByTime | Index::TriggersByPrefix => item,
    }
}

/// Sets an event's top-level attributes on `item` and appends its entry to the `log`.
fn append_entry(item: &mut Item, write: &EventWrite) {
    for (k, v) in &write.set {
        item.insert(k.clone(), v.clone());
    }
    let mut log = match item.remove("log") {
        Some(Value::Array(log)) => log,
        _ => Vec::new(),
    };
    log.push(Value::Object(write.entry.clone()));
    item.insert("log".into(), Value::Array(log));
}

/// Who holds the lease of an events item, if anyone.
fn lease_owner(item: Option<&Item>) -> Option<&str> {
    item?.get("lease")?.get("owner")?.as_str()
}

/// A lease as stored in the events item.
fn lease_json(lease: &Lease) -> Value {
    Value::Object(Map::from_iter([
        ("owner".to_string(), Value::String(lease.owner.clone())),
        (
            "expires".to_string(),
            Value::Number(Number::from(lease.expires)),
        ),
    ]))
}

/// A new events item holding only its keys.
fn event_keys(job_id: &str, run_id: &str) -> Item {
    Map::from_iter([
        ("job_id".to_string(), Value::String(job_id.to_string())),
        ("run_id".to_string(), Value::String(run_id.to_string())),
    ])
}

impl LocalTables {
    /// Reads a run's events item (absent when missing or expired) and, in
    /// the same transaction, writes what `change` makes of it; `change`
    /// returns `None` to leave it as it is. Returns the item written.
    async fn change_event_item<F>(
        &self,
        realm: &str,
        job_id: &str,
        run_id: &str,
        change: F,
    ) -> Result<Option<Item>, StoreError>
    where
        F: Fn(Option<Item>) -> Result<Option<Item>, DbError> + Send + Sync + 'static,
    {
        let name = Table::Events.name(realm);
        let (job_id, run_id) = (job_id.to_string(), run_id.to_string());
        self.db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                require_table(&tx, &name)?;
                let existing = read_live(&tx, &name, &job_id, &run_id, now_secs())?;
                let Some(item) = change(existing)? else {
                    return Ok(None);
                };
                let row = to_row(Table::Events, &name, &item)?;
                write_row(&tx, &name, &row)?;
                tx.commit()?;
                Ok(Some(item))
            })
            .await
    }
}

#[async_trait]
impl Tables for LocalTables {
    async fn get(
        &self,
        realm: &str,
        table: Table,
        key: &Key,
        _consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        // Every read is strongly consistent here.
        let name = table.name(realm);
        let (pk, sk) = key_values(table, &name, key)?;
        self.db
            .run(move |conn| {
                let tx = conn.transaction()?;
                require_table(&tx, &name)?;
                read_live(&tx, &name, &pk, &sk, now_secs())
            })
            .await
    }

    async fn put(&self, realm: &str, table: Table, item: &Item) -> Result<(), StoreError> {
        let name = table.name(realm);
        let row = to_row(table, &name, item)?;
        self.db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                require_table(&tx, &name)?;
                write_row(&tx, &name, &row)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn delete(&self, realm: &str, table: Table, key: &Key) -> Result<(), StoreError> {
        let name = table.name(realm);
        let (pk, sk) = key_values(table, &name, key)?;
        self.db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                require_table(&tx, &name)?;
                tx.prepare_cached("DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")?
                    .execute(params![name, pk, sk])?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn scan(&self, realm: &str, table: Table) -> Result<Vec<Item>, StoreError> {
        let name = table.name(realm);
        self.db
            .run(move |conn| {
                let tx = conn.transaction()?;
                require_table(&tx, &name)?;
                bodies(
                    &tx,
                    &name,
                    "SELECT body FROM items WHERE tbl = ?1 AND (ttl IS NULL OR ttl >= ?2)
                     ORDER BY pk, sk",
                    params![name, now_secs()],
                )
            })
            .await
    }

    async fn query(
        &self,
        realm: &str,
        index: Index,
        pk: &str,
        sk: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let (_, table, _, _) = index.schema();
        let name = table.name(realm);
        let (pk, sk) = (pk.to_string(), sk.map(str::to_string));
        let items = self
            .db
            .run(move |conn| {
                let tx = conn.transaction()?;
                require_table(&tx, &name)?;
                bodies(
                    &tx,
                    &name,
                    "SELECT body FROM items
                     WHERE tbl = ?1 AND ix_pk = ?2 AND (?3 IS NULL OR ix_sk = ?3)
                       AND (ttl IS NULL OR ttl >= ?4)
                     ORDER BY ix_sk, pk, sk",
                    params![name, pk, sk, now_secs()],
                )
            })
            .await?;
        Ok(items.into_iter().map(|i| project(index, i)).collect())
    }

    async fn append_event(&self, realm: &str, write: &EventWrite) -> Result<(), StoreError> {
        let name = Table::Events.name(realm);
        for attr in write.set.keys() {
            let clash = matches!(attr.as_str(), "job_id" | "run_id" | "log")
                || (attr == "lease" && write.release_lease);
            if clash {
                return Err(StoreError::BadRequest(format!(
                    "{name}: an event write cannot also set {attr}"
                )));
            }
        }
        let write = write.clone();
        let (job_id, run_id) = (write.job_id.clone(), write.run_id.clone());
        self.change_event_item(realm, &job_id, &run_id, move |existing| {
            let held = match existing.as_ref().and_then(|i| i.get("log")) {
                None => None,
                Some(Value::Array(log)) => Some(log.len()),
                Some(_) => {
                    return Err(StoreError::BadRequest(format!(
                        "{name}: the log of {}/{} is not a list",
                        write.job_id, write.run_id
                    ))
                    .into());
                }
            };
            // Index 0: no log yet; else exactly `index` entries, so a retried
            // append cannot add the same entry twice.
            let holds = match held {
                None => write.index == 0,
                Some(n) => write.index > 0 && n == write.index,
            };
            if !holds {
                return Err(StoreError::ConditionFailed(format!(
                    "the log of {}/{} holds {} entries, not {}",
                    write.job_id,
                    write.run_id,
                    held.map_or_else(|| "no".to_string(), |n| n.to_string()),
                    write.index
                ))
                .into());
            }
            if let Some(holder) = &write.holder
                && lease_owner(existing.as_ref()) != Some(holder.as_str())
            {
                return Err(StoreError::ConditionFailed(format!(
                    "the lease of {}/{} is not held by {holder}",
                    write.job_id, write.run_id
                ))
                .into());
            }
            let mut item = existing.unwrap_or_else(|| event_keys(&write.job_id, &write.run_id));
            append_entry(&mut item, &write);
            if write.release_lease {
                item.remove("lease");
            }
            if write.finishes {
                let status = write.entry.get("status").cloned().unwrap_or(Value::Null);
                item.insert(FINAL_STATUS.into(), status);
            }
            Ok(Some(item))
        })
        .await
        .map(|_| ())
    }

    async fn acquire_lease(
        &self,
        realm: &str,
        job_id: &str,
        run_id: &str,
        lease: &Lease,
        now: i64,
        first: Option<&EventWrite>,
    ) -> Result<Option<Item>, StoreError> {
        let (keys, lease) = (event_keys(job_id, run_id), lease.clone());
        let first = first.cloned();
        self.change_event_item(realm, job_id, run_id, move |existing| {
            let finished = existing.as_ref().is_some_and(|i| {
                i.contains_key(FINAL_STATUS)
                    || (first.is_some()
                        && i.get("status")
                            .and_then(Value::as_str)
                            .is_some_and(|s| Status::FINAL_NAMES.contains(&s)))
            });
            // Absent, expired by `now`, or already ours; when an entry comes
            // with it, never one already ours, even expired: a retry must
            // not append the entry twice.
            let free = match existing.as_ref().and_then(|i| i.get("lease")) {
                None => true,
                Some(held) => {
                    let expired = held
                        .get("expires")
                        .and_then(Value::as_f64)
                        .is_some_and(|e| e < now as f64);
                    let ours =
                        held.get("owner").and_then(Value::as_str) == Some(lease.owner.as_str());
                    if first.is_some() {
                        expired && !ours
                    } else {
                        expired || ours
                    }
                }
            };
            // The entry goes only on a run with no log yet.
            let logged =
                first.is_some() && existing.as_ref().is_some_and(|i| i.contains_key("log"));
            if finished || !free || logged {
                return Ok(None);
            }
            let mut item = existing.unwrap_or_else(|| keys.clone());
            item.insert("lease".into(), lease_json(&lease));
            if let Some(write) = &first {
                append_entry(&mut item, write);
            }
            Ok(Some(item))
        })
        .await
    }

    async fn renew_lease(
        &self,
        realm: &str,
        job_id: &str,
        run_id: &str,
        lease: &Lease,
        ttl: Option<i64>,
    ) -> Result<bool, StoreError> {
        let lease = lease.clone();
        let renewed = self
            .change_event_item(realm, job_id, run_id, move |existing| {
                let Some(mut item) =
                    existing.filter(|i| lease_owner(Some(i)) == Some(lease.owner.as_str()))
                else {
                    return Ok(None);
                };
                item.insert("lease".into(), lease_json(&lease));
                if let Some(ttl) = ttl {
                    item.insert("ttl".into(), Value::Number(Number::from(ttl)));
                }
                Ok(Some(item))
            })
            .await?;
        Ok(renewed.is_some())
    }

    async fn create_realm_tables(&self, realm: &str) -> Result<(), StoreError> {
        let names: Vec<String> = std::iter::once(Table::Realms)
            .chain(Table::REALM_TABLES)
            .map(|t| t.name(realm))
            .collect();
        self.db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now_secs();
                for name in &names {
                    tx.prepare_cached(
                        "INSERT INTO lava_tables (name, created_at) VALUES (?1, ?2)
                         ON CONFLICT (name) DO NOTHING",
                    )?
                    .execute(params![name, now])?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn rows_follow_dynamodb_rules() {
        let row = to_row(
            Table::Jobs,
            "t",
            &item(json!({"job_id": "j", "dispatcher": "syd", "n": 1000.0, "ttl": 5})),
        );
        let row = row.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (row.ix_pk.as_deref(), row.ix_sk.as_deref()),
            (Some("syd"), Some("j"))
        );
        assert_eq!(row.ttl, None, "no TTL on the jobs table");
        assert_eq!(
            row.body,
            r#"{"dispatcher":"syd","job_id":"j","n":1000.0,"ttl":5}"#
        );
        let state = to_row(
            Table::State,
            "t",
            &item(json!({"state_id": "s", "ttl": 7.9})),
        );
        assert_eq!(state.map(|r| r.ttl), Ok(Some(7)));
        assert!(to_row(Table::Jobs, "t", &item(json!({"job_id": ""}))).is_err());
        assert!(to_row(Table::Jobs, "t", &item(json!({"job_id": 3}))).is_err());
        assert!(to_row(Table::Events, "t", &item(json!({"job_id": "j"}))).is_err());
        assert!(
            to_row(
                Table::Jobs,
                "t",
                &item(json!({"job_id": "j", "dispatcher": null}))
            )
            .is_err()
        );
        let unindexed = to_row(
            Table::Events,
            "t",
            &item(json!({"job_id": "j", "run_id": "r"})),
        );
        assert_eq!(unindexed.map(|r| r.ix_pk), Ok(None));
        let big = "x".repeat(MAX_ITEM_BYTES);
        assert!(to_row(Table::Jobs, "t", &item(json!({"job_id": "j", "big": big}))).is_err());
    }
}
