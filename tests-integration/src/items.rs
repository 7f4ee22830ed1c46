//! Items for the tests: ones holding every attribute type, versioned ones, and a canonical text
//! form to compare them by.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::Item;

/// An item `pk` / `METADATA` at `version` (none: unversioned) with string attributes.
pub fn versioned_item(pk: &str, version: Option<u64>, strings: &[(&str, &str)]) -> Item {
    let mut item =
        Item::from([("pk".into(), AttributeValue::S(pk.into())), ("sk".into(), AttributeValue::S("METADATA".into()))]);
    if let Some(v) = version {
        item.insert("version".into(), AttributeValue::N(v.to_string()));
    }
    for (name, value) in strings {
        item.insert(name.to_string(), AttributeValue::S(value.to_string()));
    }
    item
}

/// A number with all 38 digits DynamoDB keeps.
pub const BIG_NUMBER: &str = "12345678901234567890123456789012345678";

/// An item holding every attribute type, 38-digit numbers included, keyed `ITEM#n` / `METADATA`.
pub fn every_type(n: usize) -> Item {
    HashMap::from([
        ("pk".into(), AttributeValue::S(format!("ITEM#{n}"))),
        ("sk".into(), AttributeValue::S("METADATA".into())),
        ("text".into(), AttributeValue::S("héllo ☃".into())),
        ("int".into(), AttributeValue::N("42".into())),
        ("big".into(), AttributeValue::N(BIG_NUMBER.into())),
        ("fraction".into(), AttributeValue::N("0.12345678901234567891".into())),
        ("negative".into(), AttributeValue::N("-1.5E-100".into())),
        ("flag".into(), AttributeValue::Bool(false)),
        ("nothing".into(), AttributeValue::Null(true)),
        ("bytes".into(), AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0, 1, 255]))),
        ("strings".into(), AttributeValue::Ss(vec!["a".into(), "b".into()])),
        ("numbers".into(), AttributeValue::Ns(vec!["1".into(), BIG_NUMBER.into(), "0.5".into()])),
        (
            "blobs".into(),
            AttributeValue::Bs(vec![
                aws_sdk_dynamodb::primitives::Blob::new(vec![1]),
                aws_sdk_dynamodb::primitives::Blob::new(vec![2, 3]),
            ]),
        ),
        (
            "list".into(),
            AttributeValue::L(vec![
                AttributeValue::N(BIG_NUMBER.into()),
                AttributeValue::Ss(vec!["x".into()]),
                AttributeValue::Null(true),
            ]),
        ),
        (
            "map".into(),
            AttributeValue::M(HashMap::from([(
                "deep".into(),
                AttributeValue::M(HashMap::from([("n".into(), AttributeValue::N(BIG_NUMBER.into()))])),
            )])),
        ),
    ])
}

pub fn canonical_item(item: &Item) -> String {
    let mut pairs: Vec<String> = item.iter().map(|(k, v)| format!("{k:?}: {}", canonical(v))).collect();
    pairs.sort();
    format!("{{{}}}", pairs.join(", "))
}

fn canonical(value: &AttributeValue) -> String {
    let sorted = |mut parts: Vec<String>| {
        parts.sort();
        parts.join(", ")
    };
    match value {
        AttributeValue::M(map) => format!("M{}", canonical_item(map)),
        AttributeValue::L(list) => format!("L[{}]", list.iter().map(canonical).collect::<Vec<_>>().join(", ")),
        AttributeValue::Ss(set) => format!("SS[{}]", sorted(set.iter().map(|v| format!("{v:?}")).collect())),
        AttributeValue::Ns(set) => format!("NS[{}]", sorted(set.clone())),
        AttributeValue::Bs(set) => format!("BS[{}]", sorted(set.iter().map(|b| format!("{:?}", b.as_ref())).collect())),
        other => format!("{other:?}"),
    }
}
