//! The queue seam on SQS.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use super::store_error;
use crate::store::{Queue, QueueRef, Received, StoreError};

/// SQS queues.
#[derive(Debug, Clone)]
pub struct AwsQueue {
    client: Client,
}

impl AwsQueue {
    /// An SQS client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_sqs::config::Builder::from(config)
                    .timeout_config(super::timeouts(Some(super::SQS_ATTEMPT)))
                    .build(),
            ),
        }
    }
}

fn missing_queue(name: &str) -> impl FnOnce(&str) -> Option<StoreError> + '_ {
    move |code| {
        matches!(
            code,
            "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" | "NonExistentQueue"
        )
        .then(|| StoreError::QueueNotFound(name.to_string()))
    }
}

#[async_trait]
impl Queue for AwsQueue {
    async fn resolve(&self, name: &str) -> Result<QueueRef, StoreError> {
        let out = self
            .client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| store_error(e, missing_queue(name)))?;
        let url = out
            .queue_url()
            .ok_or_else(|| StoreError::QueueNotFound(name.to_string()))?;
        Ok(QueueRef {
            name: name.to_string(),
            url: url.to_string(),
        })
    }

    async fn send(
        &self,
        queue: &QueueRef,
        body: &str,
        delay_secs: u32,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay_secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error(e, missing_queue(&queue.name)))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }

    async fn send_fifo(
        &self,
        queue: &QueueRef,
        body: &str,
        delay_secs: u32,
        group_id: Option<&str>,
        dedup_id: Option<&str>,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay_secs).unwrap_or(i32::MAX))
            .set_message_group_id(group_id.map(str::to_string))
            .set_message_deduplication_id(dedup_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| store_error(e, missing_queue(&queue.name)))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }

    async fn receive(
        &self,
        queue: &QueueRef,
        max: u32,
        wait_secs: u32,
    ) -> Result<Vec<Received>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(1))
            .wait_time_seconds(i32::try_from(wait_secs.min(20)).unwrap_or(0))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| store_error(e, missing_queue(&queue.name)))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Received {
                body: m.body().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
                message_id: m.message_id().unwrap_or_default().to_string(),
            })
            .collect())
    }

    async fn change_visibility(
        &self,
        queue: &QueueRef,
        receipt: &str,
        secs: u32,
    ) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&queue.url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error(e, missing_queue(&queue.name)))?;
        Ok(())
    }

    async fn delete(&self, queue: &QueueRef, receipt: &str) -> Result<(), StoreError> {
        self.client
            .delete_message()
            .queue_url(&queue.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| store_error(e, missing_queue(&queue.name)))?;
        Ok(())
    }

    async fn visibility_timeout(&self, queue: &QueueRef) -> Result<u32, StoreError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&queue.url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| store_error(e, missing_queue(&queue.name)))?;
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                StoreError::Service(format!(
                    "queue {}: no VisibilityTimeout attribute",
                    queue.name
                ))
            })
    }

    async fn create(&self, name: &str, visibility_secs: u32) -> Result<QueueRef, StoreError> {
        let out = self
            .client
            .create_queue()
            .queue_name(name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_secs.to_string(),
            )
            .send()
            .await
            .map_err(|e| store_error(e, |_| None))?;
        Ok(QueueRef {
            name: name.to_string(),
            url: out.queue_url().unwrap_or_default().to_string(),
        })
    }
}
