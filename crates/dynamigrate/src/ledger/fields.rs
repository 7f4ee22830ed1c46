//! The fields of each kind of ledger item and the DynamoDB type each must have, checked before an
//! item is decoded, so that a bad item is named with the field at fault ("expires_at_ms is a
//! string, not a number") rather than with serde's words, which do not say which field they mean.

use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::Entity;
use crate::aws::Item;

/// What one field must hold.
#[derive(Clone, Copy)]
enum Shape {
    Text,
    /// A whole number from 0 to this.
    Count(u64),
    Flag,
    Map,
    /// A list of strings.
    Texts,
    OneOf(&'static [&'static str]),
}

/// A field, its shape, and whether it may be absent.
type Field = (&'static str, Shape, bool);

const U32: Shape = Shape::Count(u32::MAX as u64);
const U64: Shape = Shape::Count(u64::MAX);
const REQUIRED: bool = false;
const OPTIONAL: bool = true;

const LEASE: [Field; 4] = [
    ("run_id", Shape::Text, REQUIRED),
    ("acquired_at", Shape::Text, REQUIRED),
    ("expires_at", Shape::Text, REQUIRED),
    ("expires_at_ms", U64, REQUIRED),
];

const LOCK: [Field; 6] = [
    ("owner", Shape::Text, REQUIRED),
    ("host", Shape::Text, REQUIRED),
    ("pid", U32, REQUIRED),
    ("user", Shape::Text, REQUIRED),
    ("stage", Shape::Text, REQUIRED),
    ("command", Shape::Text, REQUIRED),
];

const CENSUS: [Field; 9] = [
    ("table", Shape::Text, REQUIRED),
    ("versioning", Shape::Map, REQUIRED),
    ("measured_at", Shape::Text, REQUIRED),
    ("items", U64, REQUIRED),
    ("versions", Shape::Map, REQUIRED),
    ("without", U64, REQUIRED),
    ("unknown", Shape::Map, OPTIONAL),
    ("sample", Shape::Map, OPTIONAL),
    ("duration_ms", U64, REQUIRED),
];

const ATTEMPT: [Field; 22] = [
    ("migration_id", Shape::Text, REQUIRED),
    ("attempt", U32, REQUIRED),
    ("direction", Shape::OneOf(&["up", "down"]), REQUIRED),
    ("state", Shape::OneOf(&["running", "succeeded", "failed", "rolled_back"]), REQUIRED),
    ("description", Shape::Text, REQUIRED),
    ("stage", Shape::Text, REQUIRED),
    ("started_at", Shape::Text, REQUIRED),
    ("finished_at", Shape::Text, OPTIONAL),
    ("duration_ms", U64, OPTIONAL),
    ("items_processed", U64, OPTIONAL),
    ("items_modified", U64, OPTIONAL),
    ("error", Shape::Text, OPTIONAL),
    ("checksum", Shape::Text, OPTIONAL),
    ("allowed_modified", Shape::Texts, OPTIONAL),
    ("verification", Shape::Map, OPTIONAL),
    ("backup_arn", Shape::Text, OPTIONAL),
    ("run_id", Shape::Text, REQUIRED),
    ("owner", Shape::Text, REQUIRED),
    ("host", Shape::Text, REQUIRED),
    ("pid", U32, REQUIRED),
    ("user", Shape::Text, REQUIRED),
    ("tool_version", Shape::Text, REQUIRED),
];

const CHECKPOINT: [Field; 11] = [
    ("segment", U32, REQUIRED),
    ("total_segments", U32, REQUIRED),
    ("done", Shape::Flag, REQUIRED),
    ("scanned", U64, REQUIRED),
    ("processed", U64, REQUIRED),
    ("modified", U64, REQUIRED),
    ("skipped", U64, REQUIRED),
    ("failed", U64, REQUIRED),
    ("run_id", Shape::Text, REQUIRED),
    ("updated_at", Shape::Text, REQUIRED),
    ("last_key", Shape::Map, OPTIONAL),
];

/// Checks `item` against the fields of its kind; the first field at fault, in words.
pub(crate) fn check(entity: Entity, item: &Item) -> Result<(), String> {
    let fields: Vec<&Field> = match entity {
        Entity::Lock => LEASE.iter().chain(LOCK.iter()).collect(),
        Entity::Attempt | Entity::Catalog => ATTEMPT.iter().collect(),
        Entity::Checkpoint => CHECKPOINT.iter().collect(),
        Entity::Census => CENSUS.iter().collect(),
    };
    match item.get("entity") {
        Some(AttributeValue::S(kind)) if kind == entity.as_str() => {}
        _ => return Err(format!("its entity is not {:?}", entity.as_str())),
    }
    for (name, shape, optional) in fields {
        match item.get(*name) {
            None if *optional => {}
            None => return Err(format!("it has no {name}")),
            Some(value) => fits(value, *shape).map_err(|problem| format!("{name} {problem}"))?,
        }
    }
    Ok(())
}

fn fits(value: &AttributeValue, shape: Shape) -> Result<(), String> {
    match (shape, value) {
        (Shape::Text, AttributeValue::S(_))
        | (Shape::Flag, AttributeValue::Bool(_))
        | (Shape::Map, AttributeValue::M(_)) => Ok(()),
        (Shape::Texts, AttributeValue::L(values)) if values.iter().all(|v| v.is_s()) => Ok(()),
        (Shape::Texts, other) => Err(format!("is {}, not a list of strings", shown(other))),
        (Shape::Count(max), AttributeValue::N(n)) => match n.parse::<u64>() {
            Ok(count) if count <= max => Ok(()),
            _ => Err(format!("is {n}, not a whole number from 0 to {max}")),
        },
        (Shape::OneOf(allowed), AttributeValue::S(text)) if allowed.contains(&text.as_str()) => Ok(()),
        (Shape::OneOf(allowed), other) => Err(format!("is {}, not one of {}", shown(other), allowed.join(", "))),
        (Shape::Text, other) => Err(format!("is {}, not a string", shown(other))),
        (Shape::Count(_), other) => Err(format!("is {}, not a number", shown(other))),
        (Shape::Flag, other) => Err(format!("is {}, not true or false", shown(other))),
        (Shape::Map, other) => Err(format!("is {}, not a map", shown(other))),
    }
}

/// A value for a message: its type and, for a short scalar, itself.
fn shown(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(s) if s.len() <= 40 => format!("the string {s:?}"),
        AttributeValue::S(_) => "a string".into(),
        AttributeValue::N(n) if n.len() <= 40 => format!("the number {n}"),
        AttributeValue::Bool(b) => format!("{b}"),
        AttributeValue::Null(_) => "null".into(),
        AttributeValue::M(_) => "a map".into(),
        AttributeValue::L(_) => "a list".into(),
        _ => "a value of another type".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock() -> Item {
        let s = |v: &str| AttributeValue::S(v.into());
        Item::from([
            ("entity".into(), s("lock")),
            ("run_id".into(), s("r")),
            ("acquired_at".into(), s("t")),
            ("expires_at".into(), s("t")),
            ("expires_at_ms".into(), AttributeValue::N("1".into())),
            ("owner".into(), s("o")),
            ("host".into(), s("h")),
            ("pid".into(), AttributeValue::N("42".into())),
            ("user".into(), s("u")),
            ("stage".into(), s("dev")),
            ("command".into(), s("run")),
        ])
    }

    #[test]
    fn a_bad_field_is_named_with_what_is_wrong() {
        assert_eq!(check(Entity::Lock, &lock()), Ok(()));
        let mut soon = lock();
        soon.insert("expires_at_ms".into(), AttributeValue::S("soon".into()));
        assert_eq!(check(Entity::Lock, &soon), Err("expires_at_ms is the string \"soon\", not a number".into()));
        let mut huge = lock();
        huge.insert("pid".into(), AttributeValue::N("4294967296".into()));
        assert_eq!(
            check(Entity::Lock, &huge),
            Err("pid is 4294967296, not a whole number from 0 to 4294967295".into())
        );
        let mut missing = lock();
        missing.remove("owner");
        assert_eq!(check(Entity::Lock, &missing), Err("it has no owner".into()));
        assert!(check(Entity::Checkpoint, &lock()).unwrap_err().contains("entity"));
    }
}
