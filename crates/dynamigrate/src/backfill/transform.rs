//! What a backfill does to each item: a [`Transform`] turns the item it is given into a [`Change`].

use super::change::Change;
use super::value::Item;

/// The transform: an item in, a change out. It must be a pure function of the item, since after a
/// conflict it runs again on the fresh item, and a resumed run may show it an item twice.
///
/// Closures `Fn(&Item) -> anyhow::Result<Change>` are transforms; so are types that implement it
/// (a transform read from a migration file, say).
pub trait Transform: Send + Sync {
    fn apply(&self, item: &Item) -> anyhow::Result<Change>;

    /// Names this transform's code, the same in every process that runs the same build, so that
    /// workers sharing one backfill can check they all run the same transform. A compiled transform
    /// is named by its type (a closure's type names the function it was written in); a transform
    /// from a file should return a checksum of its source.
    fn fingerprint(&self) -> String {
        std::any::type_name::<Self>().to_string()
    }
}

impl<F> Transform for F
where
    F: Fn(&Item) -> anyhow::Result<Change> + Send + Sync,
{
    fn apply(&self, item: &Item) -> anyhow::Result<Change> {
        self(item)
    }
}

/// A typed view of an item through `serde_dynamo`, for transforms that prefer structs.
pub fn typed<T: serde::de::DeserializeOwned>(item: &Item) -> anyhow::Result<T> {
    Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item.clone())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Record {
        pk: String,
        sk: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
    }

    #[test]
    fn transforms_may_work_on_typed_structs() {
        let s = |v: &str| AttributeValue::S(v.into());
        let item = Item::from([("pk".into(), s("ITEM#1")), ("sk".into(), s("METADATA")), ("name".into(), s("a"))]);
        let mut record: Record = typed(&item).unwrap();
        assert_eq!(record.version, None);
        record.version = Some(2);
        let Change::Put(new) = Change::put_typed(&record).unwrap() else { panic!("a put") };
        assert_eq!(new.get("version"), Some(&AttributeValue::N("2".into())));
        assert_eq!(new.get("name"), Some(&s("a")));
    }
}
