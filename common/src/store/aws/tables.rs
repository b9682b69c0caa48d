//! The tables seam on DynamoDB: items by key, paginated scans and index
//! queries, and creation of a realm's tables with their keys and indexes.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, LocalSecondaryIndex, Projection, ProjectionType, ReturnValue, ScalarAttributeType,
    TimeToLiveSpecification,
};

use serde_json::Value;

use super::attr::{from_json, item_from_json, item_to_json};
use super::store_error;
use crate::spec::{Item, Status};
use crate::store::{EventWrite, FINAL_STATUS, Index, Key, Lease, StoreError, Table, Tables};

/// DynamoDB tables.
#[derive(Debug, Clone)]
pub struct AwsTables {
    client: Client,
}

impl AwsTables {
    /// A DynamoDB client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(config)
                    .timeout_config(super::timeouts(Some(super::QUICK_ATTEMPT)))
                    .build(),
            ),
        }
    }

    fn key(table: Table, key: &Key) -> HashMap<String, AttributeValue> {
        let (pk, sk) = table.key_schema();
        let mut map = HashMap::from([(pk.to_string(), AttributeValue::S(key.pk.clone()))]);
        if let (Some(sk), Some(value)) = (sk, &key.sk) {
            map.insert(sk.to_string(), AttributeValue::S(value.clone()));
        }
        map
    }

    /// An update of a run's events item with the lease bound: `#lease`,
    /// `#owner`, `:lease` (the new lease) and `:owner` (its owner).
    fn lease_update(
        &self,
        name: &str,
        job_id: &str,
        run_id: &str,
        lease: &Lease,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(name)
            .set_key(Some(Self::key(
                Table::Events,
                &Key::with_sort(job_id, run_id),
            )))
            .expression_attribute_names("#lease", "lease")
            .expression_attribute_values(":lease", lease_value(lease))
    }

    /// A lease update whose condition may name the lease's owner (`#owner`, `:owner`).
    fn owned_lease_update(
        &self,
        name: &str,
        job_id: &str,
        run_id: &str,
        lease: &Lease,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.lease_update(name, job_id, run_id, lease)
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(lease.owner.clone()))
    }

    fn missing_table(name: String) -> impl FnOnce(&str) -> Option<StoreError> {
        move |code| (code == "ResourceNotFoundException").then_some(StoreError::TableNotFound(name))
    }

    async fn create_table(&self, realm: &str, table: Table) -> Result<(), StoreError> {
        let name = table.name(realm);
        let bad = |e: BuildError| StoreError::BadRequest(format!("table {name}: {e}"));
        let mut request = self
            .client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest);
        let (pk, sk) = table.key_schema();
        let mut attributes = vec![pk];
        request = request.key_schema(key_element(pk, KeyType::Hash).map_err(bad)?);
        if let Some(sk) = sk {
            attributes.push(sk);
            request = request.key_schema(key_element(sk, KeyType::Range).map_err(bad)?);
        }
        for index in [
            Index::JobsByDispatcher,
            Index::EventsByTime,
            Index::TriggersByPrefix,
        ] {
            let (index_name, index_table, ipk, isk) = index.schema();
            if index_table != table {
                continue;
            }
            for a in [ipk, isk] {
                if !attributes.contains(&a) {
                    attributes.push(a);
                }
            }
            let projection = match index {
                Index::JobsByDispatcher => Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .non_key_attributes("worker")
                    .non_key_attributes("schedule")
                    .build(),
                _ => Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            };
            let hash = key_element(ipk, KeyType::Hash).map_err(bad)?;
            let range = key_element(isk, KeyType::Range).map_err(bad)?;
            request = if index == Index::EventsByTime {
                let lsi = LocalSecondaryIndex::builder()
                    .index_name(index_name)
                    .key_schema(hash)
                    .key_schema(range)
                    .projection(projection)
                    .build()
                    .map_err(bad)?;
                request.local_secondary_indexes(lsi)
            } else {
                let gsi = GlobalSecondaryIndex::builder()
                    .index_name(index_name)
                    .key_schema(hash)
                    .key_schema(range)
                    .projection(projection)
                    .build()
                    .map_err(bad)?;
                request.global_secondary_indexes(gsi)
            };
        }
        for a in attributes {
            let definition = AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(bad)?;
            request = request.attribute_definitions(definition);
        }
        if let Err(e) = request.send().await {
            let err = store_error(e, |code| {
                (code == "ResourceInUseException")
                    .then(|| StoreError::ConditionFailed(code.to_string()))
            });
            // ResourceInUse: the table exists already, so creation is idempotent.
            return match err {
                StoreError::ConditionFailed(_) => Ok(()),
                other => Err(other),
            };
        }
        if matches!(table, Table::Events | Table::State) {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()
                .map_err(bad)?;
            self.client
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| store_error(e, |_| None))?;
        }
        Ok(())
    }
}

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, BuildError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
}

#[async_trait]
impl Tables for AwsTables {
    async fn get(
        &self,
        realm: &str,
        table: Table,
        key: &Key,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let name = table.name(realm);
        let out = self
            .client
            .get_item()
            .table_name(&name)
            .set_key(Some(Self::key(table, key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| store_error(e, Self::missing_table(name)))?;
        Ok(out.item().map(item_to_json))
    }

    async fn put(&self, realm: &str, table: Table, item: &Item) -> Result<(), StoreError> {
        let name = table.name(realm);
        self.client
            .put_item()
            .table_name(&name)
            .set_item(Some(item_from_json(item)))
            .send()
            .await
            .map_err(|e| store_error(e, Self::missing_table(name)))?;
        Ok(())
    }

    async fn delete(&self, realm: &str, table: Table, key: &Key) -> Result<(), StoreError> {
        let name = table.name(realm);
        self.client
            .delete_item()
            .table_name(&name)
            .set_key(Some(Self::key(table, key)))
            .send()
            .await
            .map_err(|e| store_error(e, Self::missing_table(name)))?;
        Ok(())
    }

    async fn scan(&self, realm: &str, table: Table) -> Result<Vec<Item>, StoreError> {
        let name = table.name(realm);
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&name)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error(e, Self::missing_table(name.clone())))?;
            items.extend(out.items().iter().map(item_to_json));
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    async fn query(
        &self,
        realm: &str,
        index: Index,
        pk: &str,
        sk: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let (index_name, table, pk_name, sk_name) = index.schema();
        let name = table.name(realm);
        let mut condition = "#pk = :pk".to_string();
        let mut names = HashMap::from([("#pk".to_string(), pk_name.to_string())]);
        let mut values = HashMap::from([(":pk".to_string(), AttributeValue::S(pk.to_string()))]);
        if let Some(sk) = sk {
            condition.push_str(" AND #sk = :sk");
            names.insert("#sk".into(), sk_name.into());
            values.insert(":sk".into(), AttributeValue::S(sk.to_string()));
        }
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&name)
                .index_name(index_name)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error(e, Self::missing_table(name.clone())))?;
            items.extend(out.items().iter().map(item_to_json));
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    async fn append_event(&self, realm: &str, write: &EventWrite) -> Result<(), StoreError> {
        let name = Table::Events.name(realm);
        let mut names = HashMap::from([("#log".to_string(), "log".to_string())]);
        let mut values = HashMap::from([
            (
                ":entry".to_string(),
                AttributeValue::L(vec![from_json(&Value::Object(write.entry.clone()))]),
            ),
            (":empty".to_string(), AttributeValue::L(Vec::new())),
        ]);
        let mut sets = Vec::with_capacity(write.set.len() + 2);
        for (i, (key, value)) in write.set.iter().enumerate() {
            names.insert(format!("#a{i}"), key.clone());
            values.insert(format!(":a{i}"), from_json(value));
            sets.push(format!("#a{i} = :a{i}"));
        }
        sets.push("#log = list_append(if_not_exists(#log, :empty), :entry)".into());
        if write.finishes {
            names.insert("#final".into(), FINAL_STATUS.into());
            let status = write.entry.get("status").cloned().unwrap_or(Value::Null);
            values.insert(":final".into(), from_json(&status));
            sets.push("#final = :final".into());
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if write.release_lease {
            names.insert("#lease".into(), "lease".into());
            expression.push_str(" REMOVE #lease");
        }
        let mut condition = if write.index == 0 {
            "attribute_not_exists(#log)".to_string()
        } else {
            values.insert(":n".into(), AttributeValue::N(write.index.to_string()));
            "size(#log) = :n".to_string()
        };
        if let Some(holder) = &write.holder {
            names.insert("#lease".into(), "lease".into());
            names.insert("#owner".into(), "owner".into());
            values.insert(":holder".into(), AttributeValue::S(holder.clone()));
            condition.push_str(" AND #lease.#owner = :holder");
        }
        self.client
            .update_item()
            .table_name(&name)
            .set_key(Some(Self::key(
                Table::Events,
                &Key::with_sort(write.job_id.clone(), write.run_id.clone()),
            )))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| store_error(e, Self::missing_table(name)))?;
        Ok(())
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
        let name = Table::Events.name(realm);
        let mut request = self
            .owned_lease_update(&name, job_id, run_id, lease)
            .expression_attribute_names("#final", FINAL_STATUS)
            .expression_attribute_names("#expires", "expires")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values(ReturnValue::AllNew);
        request = match first {
            None => request
                .update_expression("SET #lease = :lease")
                .condition_expression(
                    "attribute_not_exists(#final) AND (attribute_not_exists(#lease) \
                 OR #lease.#expires < :now OR #lease.#owner = :owner)",
                ),
            Some(write) => {
                let mut sets = vec!["#lease = :lease".to_string()];
                for (i, (key, value)) in write.set.iter().enumerate() {
                    request = request
                        .expression_attribute_names(format!("#a{i}"), key)
                        .expression_attribute_values(format!(":a{i}"), from_json(value));
                    sets.push(format!("#a{i} = :a{i}"));
                }
                sets.push("#log = list_append(if_not_exists(#log, :empty), :entry)".into());
                let mut finals = Vec::new();
                for (i, status) in Status::FINAL_NAMES.iter().enumerate() {
                    request = request.expression_attribute_values(
                        format!(":f{i}"),
                        AttributeValue::S((*status).to_string()),
                    );
                    finals.push(format!(":f{i}"));
                }
                request
                    .expression_attribute_names("#log", "log")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(
                        ":entry",
                        AttributeValue::L(vec![from_json(&Value::Object(write.entry.clone()))]),
                    )
                    .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
                    .update_expression(format!("SET {}", sets.join(", ")))
                    .condition_expression(format!(
                        "attribute_not_exists(#final) AND attribute_not_exists(#log) \
                         AND (attribute_not_exists(#lease) \
                              OR (#lease.#expires < :now AND #lease.#owner <> :owner)) \
                         AND (attribute_not_exists(#status) OR NOT (#status IN ({})))",
                        finals.join(", ")
                    ))
            }
        };
        match request.send().await {
            Ok(out) => Ok(Some(out.attributes().map(item_to_json).unwrap_or_default())),
            Err(e) => match store_error(e, Self::missing_table(name)) {
                StoreError::ConditionFailed(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn renew_lease(
        &self,
        realm: &str,
        job_id: &str,
        run_id: &str,
        lease: &Lease,
        ttl: Option<i64>,
    ) -> Result<bool, StoreError> {
        let name = Table::Events.name(realm);
        let mut request = self
            .owned_lease_update(&name, job_id, run_id, lease)
            .condition_expression("#lease.#owner = :owner");
        request = match ttl {
            Some(ttl) => request
                .update_expression("SET #lease = :lease, #ttl = :ttl")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string())),
            None => request.update_expression("SET #lease = :lease"),
        };
        // One attempt: the caller tries again at its own pace within the
        // lease's span (the SDK's backoff could outlast a short span).
        let once = aws_sdk_dynamodb::config::Builder::default().retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(1),
        );
        match request.customize().config_override(once).send().await {
            Ok(_) => Ok(true),
            Err(e) => match store_error(e, Self::missing_table(name)) {
                StoreError::ConditionFailed(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn create_realm_tables(&self, realm: &str) -> Result<(), StoreError> {
        self.create_table(realm, Table::Realms).await?;
        for table in Table::REALM_TABLES {
            self.create_table(realm, table).await?;
        }
        Ok(())
    }
}

/// A lease as a DynamoDB map.
fn lease_value(lease: &Lease) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("owner".to_string(), AttributeValue::S(lease.owner.clone())),
        (
            "expires".to_string(),
            AttributeValue::N(lease.expires.to_string()),
        ),
    ]))
}
