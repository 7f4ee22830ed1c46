//! What DescribeTable says about a table that a scan needs: its key, its size and its capacity.

use aws_sdk_dynamodb::types::{BillingMode, KeyType, TableDescription};
use aws_sdk_dynamodb::Client;

use super::rate::TableCapacity;
use crate::Error;

/// The table's shape, from DescribeTable.
pub(crate) struct TableShape {
    /// The partition key, then the sort key if there is one.
    pub key_names: Vec<String>,
    /// An estimate AWS refreshes about every 6 hours.
    pub item_count: u64,
    pub size_bytes: u64,
    pub capacity: TableCapacity,
}

impl TableShape {
    /// The mean item size DescribeTable suggests; 0 when the table says nothing (or is empty).
    pub fn mean_item_bytes(&self) -> u64 {
        self.size_bytes.checked_div(self.item_count).unwrap_or(0)
    }
}

pub(crate) async fn describe(client: &Client, table: &str) -> Result<TableShape, Error> {
    let output = client.describe_table().table_name(table).send().await.map_err(|e| {
        if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) {
            Error::TableNotFound { table: table.to_string() }
        } else {
            Error::aws(format!("describing table {table}"), e)
        }
    })?;
    let description = output.table.ok_or_else(|| Error::Aws {
        context: format!("describing table {table}"),
        message: "DynamoDB answered without a table description".into(),
    })?;
    let mut key_names = Vec::new();
    for key_type in [KeyType::Hash, KeyType::Range] {
        key_names.extend(
            description
                .key_schema()
                .iter()
                .filter(|k| k.key_type() == &key_type)
                .map(|k| k.attribute_name().to_string()),
        );
    }
    Ok(TableShape {
        key_names,
        item_count: description.item_count.unwrap_or(0).max(0) as u64,
        size_bytes: description.table_size_bytes.unwrap_or(0).max(0) as u64,
        capacity: write_capacity(&description),
    })
}

/// The table's write capacity as DescribeTable states it; absent or non-positive figures mean
/// "not stated" (DynamoDB Local, for one, reports 0 WCU for on-demand tables and no warm throughput).
fn write_capacity(description: &TableDescription) -> TableCapacity {
    let positive = |units: Option<i64>| units.filter(|u| *u > 0).map(|u| u as f64);
    let on_demand =
        description.billing_mode_summary().and_then(|b| b.billing_mode()) == Some(&BillingMode::PayPerRequest);
    TableCapacity {
        provisioned: positive(description.provisioned_throughput().and_then(|p| p.write_capacity_units))
            .filter(|_| !on_demand),
        warm: positive(description.warm_throughput().and_then(|w| w.write_units_per_second)).filter(|_| on_demand),
        max: positive(description.on_demand_throughput().and_then(|o| o.max_write_request_units)),
    }
}
