//! One item through a script: the item in as a plain object, the script's answer out as a
//! [`Change`]. Runs in the calling thread's interpreter.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::{Change, Item};
use rquickjs::{CatchResultExt, Ctx, Function, Type, Value};

use crate::convert::{self, Helpers};
use crate::options::Entry;
use crate::sandbox::{self, Sandbox};

/// What one item needs besides the sandbox: which function, the table's key, the run's facts.
pub(crate) struct Call<'a> {
    pub entry: Entry,
    pub key_names: &'a [String],
}

/// Runs the script's function on `item` within the per-item limits.
pub(crate) fn run(sandbox: &Sandbox, call: &Call, item: &Item) -> Result<Change, String> {
    let limits = sandbox.limits();
    sandbox.with_deadline(limits.item_timeout, |ctx| {
        let kept = sandbox.kept();
        let helpers = Helpers::restore(&ctx, kept).catch(&ctx).map_err(|e| sandbox::describe(e, limits))?;
        let function =
            entry_function(sandbox, &ctx, call.entry).catch(&ctx).map_err(|e| sandbox::describe(e, limits))?;
        let Some(function) = function else {
            return Err(format!("the script exports no {} function", call.entry.name()));
        };
        let argument =
            convert::object_to_js(&ctx, &helpers, item.iter()).catch(&ctx).map_err(|e| sandbox::describe(e, limits))?;
        let context = kept.context.clone().restore(&ctx).catch(&ctx).map_err(|e| sandbox::describe(e, limits))?;
        let answer: Value = function.call((argument, context)).catch(&ctx).map_err(|e| sandbox::describe(e, limits))?;
        change_from(&helpers, &answer, item, call)
    })
}

/// The exported function, from the named exports or an `export default { ... }` object.
fn entry_function<'js>(sandbox: &Sandbox, ctx: &Ctx<'js>, entry: Entry) -> rquickjs::Result<Option<Function<'js>>> {
    let exports = sandbox.exports(ctx)?;
    let named: Value = exports.get(entry.name())?;
    if let Some(function) = named.as_function() {
        return Ok(Some(function.clone()));
    }
    let default: Value = exports.get("default")?;
    let Some(default) = default.as_object() else { return Ok(None) };
    let nested: Value = default.get(entry.name())?;
    Ok(nested.as_function().cloned())
}

/// `null` skips; an object holding the key attributes is the whole new item; any other object is
/// a patch (an attribute set to `undefined` is removed).
fn change_from<'js>(h: &Helpers<'js>, answer: &Value<'js>, item: &Item, call: &Call) -> Result<Change, String> {
    match answer.type_of() {
        Type::Null => return Ok(Change::Skip),
        Type::Undefined => {
            return Err(format!(
                "{} returned undefined: return the new item, a patch, or null to leave the item as it is",
                call.entry.name()
            ))
        }
        Type::Object => {}
        _ => {
            let returned = convert::from_js(h, answer, "the returned value").err().unwrap_or_default();
            return Err(format!("{} must return an object or null; {returned}", call.entry.name()));
        }
    }
    let object = answer.as_object().ok_or("not an object")?;
    let mut set = HashMap::new();
    let mut remove = Vec::new();
    for entry in object.props::<String, Value>() {
        let (name, value) = entry.map_err(|e| e.to_string())?;
        if value.is_undefined() {
            remove.push(name);
        } else {
            let converted = convert::from_js(h, &value, &name)?;
            // An attribute given back as it was keeps its original encoding (a number's text, a
            // set's order), so nothing is rewritten that the script did not change.
            let kept = item.get(&name).filter(|old| convert::same(old, &converted)).cloned();
            set.insert(name, kept.unwrap_or(converted));
        }
    }
    for key in call.key_names {
        if let (Some(old), Some(new)) = (item.get(key), set.get(key)) {
            if old != new {
                return Err(format!("the script changed the key attribute {key}; a backfill cannot move an item"));
            }
        }
    }
    let whole = !call.key_names.is_empty() && call.key_names.iter().all(|k| set.contains_key(k));
    if whole {
        return Ok(Change::Put(set));
    }
    // A patch that repeats part of the key: the key is not an attribute an update may set.
    let set: BTreeMap<String, AttributeValue> = set.into_iter().filter(|(k, _)| !call.key_names.contains(k)).collect();
    Ok(Change::Update { set, remove })
}
