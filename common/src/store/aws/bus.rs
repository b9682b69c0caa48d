//! The event-bus seam on EventBridge (`PutEvents`, one entry).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::store_error;
use crate::store::{BusEvent, EventBus, StoreError};

/// EventBridge.
#[derive(Debug, Clone)]
pub struct AwsBus {
    client: Client,
}

impl AwsBus {
    /// An EventBridge client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(config)
                    .timeout_config(super::timeouts(Some(super::QUICK_ATTEMPT)))
                    .build(),
            ),
        }
    }
}

#[async_trait]
impl EventBus for AwsBus {
    async fn put(&self, event: &BusEvent) -> Result<(), StoreError> {
        let entry = PutEventsRequestEntry::builder()
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(&event.detail)
            .set_resources(Some(event.resources.clone()).filter(|r| !r.is_empty()))
            .set_event_bus_name(event.bus.clone())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| store_error(e, |_| None))?;
        if out.failed_entry_count() > 0 {
            let failed = out.entries().iter().find(|e| e.error_code().is_some());
            return Err(StoreError::Service(format!(
                "Failed to put event to EventBridge: {}: {}",
                failed.and_then(|e| e.error_code()).unwrap_or_default(),
                failed.and_then(|e| e.error_message()).unwrap_or_default()
            )));
        }
        Ok(())
    }
}
