//! The operations of a TOML migration, applied in order to each item, and the exact inverses
//! `down` is derived from. Pure; unit-tested here.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::{Change, Guard, Item, Transform};
use serde_json::Value;

use crate::value::literal;

/// One step of a TOML migration's `up` or `down`.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Sets the attribute, whatever it held.
    Set {
        attribute: String,
        value: AttributeValue,
    },
    /// Sets the attribute only where it is missing.
    Default {
        attribute: String,
        value: AttributeValue,
    },
    /// Sets an attribute that must be missing (or already hold this value): undone by `remove`.
    Add {
        attribute: String,
        value: AttributeValue,
    },
    Remove {
        attribute: String,
    },
    /// Moves a value to a new name that must be free (or already hold the same value).
    Rename {
        from: String,
        to: String,
    },
    /// Copies a value to a new name that must be free (or already hold the same value).
    Copy {
        from: String,
        to: String,
    },
    /// Sets the version attribute.
    Version {
        attribute: String,
        value: u64,
    },
}

const VERBS: [&str; 7] = ["set", "default", "add", "remove", "rename", "copy", "version"];

impl Op {
    /// Reads one operation (`{ set = "a", value = 1 }`, `{ rename = "a", to = "b" }`, ...); `at`
    /// names it in errors; `version_attribute` is the attribute `{ version = N }` sets.
    pub fn parse(entry: &Value, at: &str, version_attribute: &str) -> Result<Self, String> {
        let Value::Object(fields) = entry else {
            return Err(format!("{at}: an operation is a table, e.g. {{ set = \"status\", value = \"active\" }}"));
        };
        let verbs: Vec<&str> = VERBS.iter().copied().filter(|v| fields.contains_key(*v)).collect();
        let [verb] = verbs[..] else {
            return Err(format!("{at}: name exactly one operation of {}; found {}", VERBS.join(", "), verbs.len()));
        };
        let allowed: &[&str] = match verb {
            "set" | "default" | "add" => &["value"],
            "rename" | "copy" => &["to"],
            _ => &[],
        };
        if let Some(extra) = fields.keys().find(|k| *k != verb && !allowed.contains(&k.as_str())) {
            return Err(format!("{at}: `{extra}` does not belong to a `{verb}` operation"));
        }
        let name = |key: &str| match fields.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(format!("{at}: `{key}` must name an attribute")),
        };
        let value = || {
            let raw = fields.get("value").ok_or_else(|| format!("{at}: `{verb}` needs a `value`"))?;
            literal(raw, &format!("{at}.value"))
        };
        Ok(match verb {
            "set" => Op::Set { attribute: name(verb)?, value: value()? },
            "default" => Op::Default { attribute: name(verb)?, value: value()? },
            "add" => Op::Add { attribute: name(verb)?, value: value()? },
            "remove" => Op::Remove { attribute: name(verb)? },
            "rename" => Op::Rename { from: name(verb)?, to: name("to")? },
            "copy" => Op::Copy { from: name(verb)?, to: name("to")? },
            _ => match fields.get("version").and_then(Value::as_u64) {
                Some(value) => Op::Version { attribute: version_attribute.to_string(), value },
                None => return Err(format!("{at}: `version` must be a whole number, e.g. {{ version = 2 }}")),
            },
        })
    }

    /// The operation that undoes this one exactly, when there is one.
    pub fn inverse(&self) -> Option<Op> {
        match self {
            Op::Rename { from, to } => Some(Op::Rename { from: to.clone(), to: from.clone() }),
            Op::Add { attribute, .. } | Op::Copy { to: attribute, .. } => {
                Some(Op::Remove { attribute: attribute.clone() })
            }
            _ => None,
        }
    }

    /// Attributes whose values decide what this operation writes, besides the ones it writes:
    /// `set`, `remove` and `version` write the same whatever the item holds.
    fn reads(&self) -> Vec<&str> {
        match self {
            Op::Default { attribute, .. } | Op::Add { attribute, .. } => vec![attribute],
            Op::Rename { from, to } | Op::Copy { from, to } => vec![from, to],
            Op::Set { .. } | Op::Remove { .. } | Op::Version { .. } => Vec::new(),
        }
    }

    fn apply(&self, item: &mut Patched) -> Result<(), String> {
        match self {
            Op::Set { attribute, value } => item.set(attribute, value.clone()),
            Op::Default { attribute, value } => {
                if item.get(attribute).is_none() {
                    item.set(attribute, value.clone());
                }
            }
            Op::Add { attribute, value } => place(item, attribute, value.clone(), "add")?,
            Op::Remove { attribute } => item.remove(attribute),
            Op::Rename { from, to } => {
                if let Some(value) = item.get(from).cloned() {
                    place(item, to, value, "rename")?;
                    item.remove(from);
                }
            }
            Op::Copy { from, to } => {
                if let Some(value) = item.get(from).cloned() {
                    place(item, to, value, "copy")?;
                }
            }
            Op::Version { attribute, value } => item.set(attribute, AttributeValue::N(value.to_string())),
        }
        Ok(())
    }
}

/// The item as the operations so far left it: the read item under the attributes they set
/// (`Some`) or removed (`None`). Only what they touch is copied, not the whole item.
struct Patched<'a> {
    read: &'a Item,
    changed: BTreeMap<String, Option<AttributeValue>>,
}

impl Patched<'_> {
    fn get(&self, name: &str) -> Option<&AttributeValue> {
        match self.changed.get(name) {
            Some(changed) => changed.as_ref(),
            None => self.read.get(name),
        }
    }

    fn set(&mut self, name: &str, value: AttributeValue) {
        self.changed.insert(name.to_string(), Some(value));
    }

    fn remove(&mut self, name: &str) {
        self.changed.insert(name.to_string(), None);
    }
}

/// Puts `value` under a name that must be free: overwriting another value would lose it, and
/// would make the inverse inexact. The same value already there is fine (a re-run).
fn place(item: &mut Patched, name: &str, value: AttributeValue, verb: &str) -> Result<(), String> {
    match item.get(name) {
        Some(existing) if existing != &value => {
            Err(format!("{verb}: {name} already holds another value; use set to overwrite it deliberately"))
        }
        _ => {
            item.set(name, value);
            Ok(())
        }
    }
}

/// Every operation in order, as an update of the attributes they touch (the engine then skips
/// what would leave the item as it is).
pub fn apply_all(ops: &[Op], item: &Item) -> Result<Change, String> {
    let mut patched = Patched { read: item, changed: BTreeMap::new() };
    for op in ops {
        op.apply(&mut patched)?;
    }
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    // Only real differences: an attribute set to what it held, or removed while absent, is no write.
    for (name, value) in patched.changed {
        match value {
            Some(value) if item.get(&name) != Some(&value) => {
                set.insert(name, value);
            }
            None if item.contains_key(&name) => remove.push(name),
            _ => {}
        }
    }
    Ok(Change::Update { set, remove })
}

/// The derived `down`: each operation's inverse, in reverse order; None if one has none.
pub fn inverse_all(ops: &[Op]) -> Option<Vec<Op>> {
    ops.iter().rev().map(Op::inverse).collect()
}

/// The guard for these operations when the file names none: what they read, and `also` (what the
/// selection reads). The engine adds what the change touches, so the write lands only if everything
/// its outcome depends on still holds what was read; the application's writes to anything else
/// neither conflict with it nor are overwritten (the write touches only what it changes). Smaller
/// than the whole-item guard, whose condition repeats every value of the item.
pub fn guard(ops: &[Op], also: Option<&str>) -> Guard {
    let mut names: Vec<String> = ops.iter().flat_map(Op::reads).chain(also).map(str::to_string).collect();
    names.sort();
    names.dedup();
    Guard::Attributes(names)
}

/// A TOML file's operations as a transform, named by the file's checksum and direction.
pub struct Operations {
    pub ops: Vec<Op>,
    pub fingerprint: String,
}

impl Transform for Operations {
    fn apply(&self, item: &Item) -> anyhow::Result<Change> {
        apply_all(&self.ops, item).map_err(anyhow::Error::msg)
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn item() -> Item {
        Item::from([("pk".into(), s("A")), ("old".into(), s("x")), ("email".into(), s("e@x"))])
    }

    fn op(toml_text: &str) -> Result<Op, String> {
        let table: toml::Table = toml::from_str(&format!("op = {toml_text}")).unwrap();
        Op::parse(&serde_json::to_value(&table["op"]).unwrap(), "up[0]", "version")
    }

    fn after(ops: &[Op], item: &Item) -> Item {
        apply_all(ops, item).unwrap().apply(item).expect("operations never delete the item")
    }

    /// One of each operation (`default` twice: on an attribute the item has and on one it lacks).
    fn every_operation() -> Vec<Op> {
        [
            "{ set = \"status\", value = \"active\" }",
            "{ default = \"email\", value = \"none\" }",
            "{ default = \"tier\", value = 1 }",
            "{ add = \"meta\", value = { tags = [] } }",
            "{ rename = \"old\", to = \"new\" }",
            "{ copy = \"email\", to = \"contact\" }",
            "{ remove = \"gone\" }",
            "{ version = 2 }",
        ]
        .iter()
        .map(|t| op(t).unwrap())
        .collect()
    }

    #[test]
    fn every_operation_parses_and_applies() {
        let new = after(&every_operation(), &item());
        assert_eq!(new["status"], s("active"));
        assert_eq!(new["email"], s("e@x"), "default leaves what is there");
        assert_eq!(new["tier"], AttributeValue::N("1".into()));
        assert_eq!(new["new"], s("x"));
        assert!(!new.contains_key("old"));
        assert_eq!(new["contact"], s("e@x"));
        assert_eq!(new["version"], AttributeValue::N("2".into()));
        assert_eq!(new["meta"], AttributeValue::M([("tags".into(), AttributeValue::L(vec![]))].into()));
    }

    #[test]
    fn derived_down_undoes_rename_add_and_copy_exactly() {
        let ups = vec![
            op("{ rename = \"old\", to = \"new\" }").unwrap(),
            op("{ add = \"flag\", value = true }").unwrap(),
            op("{ copy = \"email\", to = \"contact\" }").unwrap(),
        ];
        let downs = inverse_all(&ups).unwrap();
        assert_eq!(after(&downs, &after(&ups, &item())), item());
        // And running up twice is the same as once.
        assert_eq!(after(&ups, &after(&ups, &item())), after(&ups, &item()));
    }

    #[test]
    fn set_default_remove_and_version_have_no_exact_inverse() {
        for text in
            ["{ set = \"a\", value = 1 }", "{ default = \"a\", value = 1 }", "{ remove = \"a\" }", "{ version = 3 }"]
        {
            assert_eq!(inverse_all(&[op(text).unwrap()]), None, "{text}");
        }
    }

    #[test]
    fn overwriting_through_add_rename_or_copy_fails_the_item() {
        let mut taken = item();
        taken.insert("new".into(), s("other"));
        let error = apply_all(&[op("{ rename = \"old\", to = \"new\" }").unwrap()], &taken).unwrap_err();
        assert!(error.contains("new already holds another value"), "{error}");
    }

    #[test]
    fn the_guard_is_what_decides_the_outcome_not_what_is_written_regardless() {
        let ops = every_operation();
        let names = |names: &[&str]| Guard::Attributes(names.iter().map(|n| n.to_string()).collect());
        // `set`, `remove` and `version` read nothing: the engine guards what the change touches.
        assert_eq!(guard(&ops, None), names(&["contact", "email", "meta", "new", "old", "tier"]));
        assert_eq!(guard(&ops[..1], Some("version")), names(&["version"]));
        assert_eq!(guard(&[], None), names(&[]));
    }

    #[test]
    fn malformed_operations_say_what_is_wrong() {
        for (text, expected) in [
            ("{ set = \"a\" }", "needs a `value`"),
            ("{ set = \"a\", rename = \"b\", value = 1 }", "exactly one operation"),
            ("{ frobnicate = \"a\" }", "exactly one operation"),
            ("{ rename = \"a\" }", "`to` must name"),
            ("{ remove = \"a\", value = 1 }", "`value` does not belong"),
            ("{ version = \"two\" }", "whole number"),
            ("{ set = \"\", value = 1 }", "must name an attribute"),
            ("\"set a\"", "is a table"),
        ] {
            let error = op(text).unwrap_err();
            assert!(error.contains(expected) && error.starts_with("up[0]"), "{text}: {error}");
        }
    }
}
