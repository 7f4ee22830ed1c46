//! Rendering attribute values for people (diffs, logs) and keys as DynamoDB JSON (failures file),
//! keeping every type visible: a number never looks like a string, a set never like a list.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::base64;

pub use crate::aws::Item;

/// A compact, typed rendering: `"text"`, `42`, `b64:AQI=`, `SS["a","b"]`, `{tags: ["x"]}`.
pub fn display(value: &AttributeValue) -> String {
    let quote = |s: &String| format!("{s:?}");
    let join = |parts: Vec<String>| parts.join(",");
    match value {
        AttributeValue::S(s) => quote(s),
        AttributeValue::N(n) => n.clone(),
        AttributeValue::B(b) => format!("b64:{}", base64::encode(b.as_ref())),
        AttributeValue::Bool(b) => b.to_string(),
        AttributeValue::Null(_) => "null".to_string(),
        AttributeValue::Ss(set) => format!("SS[{}]", join(set.iter().map(quote).collect())),
        AttributeValue::Ns(set) => format!("NS[{}]", join(set.clone())),
        AttributeValue::Bs(set) => {
            format!("BS[{}]", join(set.iter().map(|b| format!("b64:{}", base64::encode(b.as_ref()))).collect()))
        }
        AttributeValue::L(list) => format!("[{}]", join(list.iter().map(display).collect())),
        AttributeValue::M(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by_key(|(k, _)| *k);
            format!("{{{}}}", join(entries.into_iter().map(|(k, v)| format!("{k}: {}", display(v))).collect()))
        }
        _ => "<unknown type>".to_string(),
    }
}

/// A key as DynamoDB JSON, e.g. `{"pk":{"S":"ITEM#1"},"sk":{"S":"METADATA"}}`.
pub fn key_json(key: &Item) -> serde_json::Value {
    serde_json::to_value(dynamo_json::to_typed(key)).unwrap_or_default()
}

/// Attribute values in a serialized spec (filter values) as DynamoDB JSON, through serde_dynamo's
/// own typed value: every type, 38-digit numbers and sets included, survives the round trip.
pub(crate) mod dynamo_json {
    use std::collections::{BTreeMap, HashMap};

    use aws_sdk_dynamodb::types::AttributeValue;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Typed = serde_dynamo::AttributeValue;

    pub fn to_typed<'a, I>(values: I) -> BTreeMap<String, Typed>
    where
        I: IntoIterator<Item = (&'a String, &'a AttributeValue)>,
    {
        values.into_iter().map(|(k, v)| (k.clone(), Typed::from(v.clone()))).collect()
    }

    pub fn serialize<S: Serializer>(values: &BTreeMap<String, AttributeValue>, s: S) -> Result<S::Ok, S::Error> {
        to_typed(values).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, AttributeValue>, D::Error> {
        let typed = HashMap::<String, Typed>::deserialize(d)?;
        Ok(typed.into_iter().map(|(k, v)| (k, AttributeValue::from(v))).collect())
    }
}

/// A key for log lines: `pk=ITEM#1 sk=METADATA`, in a stable order.
pub fn key_text(key: &Item) -> String {
    let mut parts: Vec<_> = key.iter().collect();
    parts.sort_by_key(|(k, _)| *k);
    parts.into_iter().map(|(k, v)| format!("{k}={}", display(v))).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::Blob;
    use std::collections::HashMap;

    #[test]
    fn every_type_renders_distinctly() {
        assert_eq!(display(&AttributeValue::S("6".into())), "\"6\"");
        assert_eq!(display(&AttributeValue::N("6".into())), "6");
        assert_eq!(display(&AttributeValue::Ns(vec!["6".into()])), "NS[6]");
        assert_eq!(display(&AttributeValue::L(vec![AttributeValue::N("6".into())])), "[6]");
        assert_eq!(display(&AttributeValue::B(Blob::new(vec![1, 2]))), "b64:AQI=");
        let map = AttributeValue::M(HashMap::from([
            ("b".to_string(), AttributeValue::Null(true)),
            ("a".to_string(), AttributeValue::Bool(false)),
        ]));
        assert_eq!(display(&map), "{a: false,b: null}");
    }

    #[test]
    fn keys_are_typed_json() {
        let binary = Item::from([("pk".to_string(), AttributeValue::B(Blob::new(vec![1, 2])))]);
        assert_eq!(key_json(&binary).to_string(), r#"{"pk":{"B":"AQI="}}"#);
        let key = Item::from([("pk".to_string(), AttributeValue::N("12345678901234567890123456789012345678".into()))]);
        assert_eq!(key_json(&key).to_string(), r#"{"pk":{"N":"12345678901234567890123456789012345678"}}"#);
    }
}
