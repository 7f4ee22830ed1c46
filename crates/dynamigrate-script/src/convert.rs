//! DynamoDB values to JavaScript and back, as the AWS SDK's DocumentClient presents them: S as a
//! string, N as a number (or a `NumberValue` when a double cannot hold it exactly), B as a
//! `Uint8Array`, SS/NS/BS as `Set`s, L as an array, M as an object, NULL as null, BOOL as a boolean.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use rquickjs::{
    Array, Ctx, Function, Object, Persistent, Result as JsResult, String as JsString, Type, TypedArray, Value,
};

use crate::number;
use crate::options::RunInfo;

/// What every item needs from the interpreter, looked up once when it is made and kept as
/// persistent handles (a lookup by name costs more than the conversion it serves).
pub(crate) struct Kept {
    number_value: Persistent<Object<'static>>,
    number: Persistent<Function<'static>>,
    set: Persistent<Function<'static>>,
    is_set: Persistent<Function<'static>>,
    set_values: Persistent<Function<'static>>,
    object_prototype: Persistent<Object<'static>>,
    /// The transform's second argument, the same frozen object for every item.
    pub context: Persistent<Object<'static>>,
}

impl Kept {
    /// After the prelude: its helpers (`__dynamigrate`), `Object.prototype`, and the context object.
    pub fn new(ctx: &Ctx<'_>, info: &RunInfo) -> JsResult<Self> {
        let helpers: Object = ctx.globals().get("__dynamigrate")?;
        let object: Object = ctx.globals().get("Object")?;
        let context = Object::new(ctx.clone())?;
        context.set("migration", info.migration.as_str())?;
        context.set("table", info.table.as_str())?;
        context.set("startedAt", info.started_at.as_str())?;
        context.set("dryRun", info.dry_run)?;
        object.get::<_, Function>("freeze")?.call::<_, ()>((context.clone(),))?;
        let keep = |name: &str| helpers.get::<_, Function>(name).map(|f| Persistent::save(ctx, f));
        Ok(Self {
            number_value: Persistent::save(ctx, helpers.get::<_, Object>("NumberValue")?),
            number: keep("number")?,
            set: keep("set")?,
            is_set: keep("isSet")?,
            set_values: keep("setValues")?,
            object_prototype: Persistent::save(ctx, object.get::<_, Object>("prototype")?),
            context: Persistent::save(ctx, context),
        })
    }
}

/// [`Kept`] in one call's context.
pub(crate) struct Helpers<'js> {
    number_value: Object<'js>,
    number: Function<'js>,
    set: Function<'js>,
    is_set: Function<'js>,
    set_values: Function<'js>,
    object_prototype: Object<'js>,
}

impl<'js> Helpers<'js> {
    pub fn restore(ctx: &Ctx<'js>, kept: &Kept) -> JsResult<Self> {
        Ok(Self {
            number_value: kept.number_value.clone().restore(ctx)?,
            number: kept.number.clone().restore(ctx)?,
            set: kept.set.clone().restore(ctx)?,
            is_set: kept.is_set.clone().restore(ctx)?,
            set_values: kept.set_values.clone().restore(ctx)?,
            object_prototype: kept.object_prototype.clone().restore(ctx)?,
        })
    }
}

/// An attribute value as the script sees it.
pub(crate) fn to_js<'js>(ctx: &Ctx<'js>, h: &Helpers<'js>, value: &AttributeValue) -> JsResult<Value<'js>> {
    Ok(match value {
        AttributeValue::S(s) => JsString::from_str(ctx.clone(), s)?.into_value(),
        AttributeValue::N(n) => number_to_js(ctx, h, n)?,
        AttributeValue::Bool(b) => Value::new_bool(ctx.clone(), *b),
        AttributeValue::Null(_) => Value::new_null(ctx.clone()),
        AttributeValue::B(b) => TypedArray::<u8>::new_copy(ctx.clone(), b.as_ref())?.into_value(),
        AttributeValue::L(list) => {
            let array = Array::new(ctx.clone())?;
            for (i, v) in list.iter().enumerate() {
                array.set(i, to_js(ctx, h, v)?)?;
            }
            array.into_value()
        }
        AttributeValue::M(map) => object_to_js(ctx, h, map.iter())?.into_value(),
        AttributeValue::Ss(values) => set_to_js(ctx, h, values.iter().map(|s| AttributeValue::S(s.clone())))?,
        AttributeValue::Ns(values) => set_to_js(ctx, h, values.iter().map(|n| AttributeValue::N(n.clone())))?,
        AttributeValue::Bs(values) => set_to_js(ctx, h, values.iter().map(|b| AttributeValue::B(b.clone())))?,
        // A type newer than this build: refuse rather than guess.
        _ => return Err(rquickjs::Error::new_from_js("an unknown DynamoDB type", "a JavaScript value")),
    })
}

/// An item (or a map) as a plain object.
pub(crate) fn object_to_js<'a, 'js>(
    ctx: &Ctx<'js>,
    h: &Helpers<'js>,
    attributes: impl Iterator<Item = (&'a String, &'a AttributeValue)>,
) -> JsResult<Object<'js>> {
    let object = Object::new(ctx.clone())?;
    for (name, value) in attributes {
        object.set(name.as_str(), to_js(ctx, h, value)?)?;
    }
    Ok(object)
}

fn number_to_js<'js>(ctx: &Ctx<'js>, h: &Helpers<'js>, text: &str) -> JsResult<Value<'js>> {
    match number::exact_double(text) {
        Some(double) => Ok(Value::new_number(ctx.clone(), double)),
        None => h.number.call((text,)),
    }
}

fn set_to_js<'js>(
    ctx: &Ctx<'js>,
    h: &Helpers<'js>,
    values: impl Iterator<Item = AttributeValue>,
) -> JsResult<Value<'js>> {
    let array = Array::new(ctx.clone())?;
    for (i, v) in values.enumerate() {
        array.set(i, to_js(ctx, h, &v)?)?;
    }
    h.set.call((array,))
}

/// DynamoDB nests lists and maps 32 levels deep at most; deeper is refused before the recursion
/// below could exhaust the thread's stack.
const MAX_DEPTH: usize = 32;

/// A script's value as an attribute value, or what is wrong with it (`path` names where).
pub(crate) fn from_js<'js>(h: &Helpers<'js>, value: &Value<'js>, path: &str) -> Result<AttributeValue, String> {
    nested_from_js(h, value, path, 0)
}

fn nested_from_js<'js>(
    h: &Helpers<'js>,
    value: &Value<'js>,
    path: &str,
    depth: usize,
) -> Result<AttributeValue, String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path} is nested more than {MAX_DEPTH} levels deep, more than DynamoDB allows"));
    }
    let wrong = |what: &str| Err(format!("{path} is {what}, which DynamoDB cannot store"));
    match value.type_of() {
        Type::String => Ok(AttributeValue::S(js_string(value)?)),
        Type::Int => Ok(AttributeValue::N(value.as_int().unwrap_or(0).to_string())),
        Type::Float => number::from_double(value.as_number().unwrap_or(f64::NAN))
            .map(AttributeValue::N)
            .map_err(|e| format!("{path}: {e}")),
        Type::BigInt => checked_number(&coerce_text(value)?, path),
        Type::Bool => Ok(AttributeValue::Bool(value.as_bool().unwrap_or(false))),
        Type::Null => Ok(AttributeValue::Null(true)),
        Type::Undefined => wrong("undefined (use null, or leave the attribute out)"),
        Type::Array => {
            let array = value.as_array().ok_or_else(|| format!("{path} is not a readable array"))?;
            let mut list = Vec::with_capacity(array.len());
            for (i, element) in array.iter::<Value>().enumerate() {
                let element = element.map_err(|e| e.to_string())?;
                list.push(nested_from_js(h, &element, &format!("{path}[{i}]"), depth + 1)?);
            }
            Ok(AttributeValue::L(list))
        }
        Type::Object => object_from_js(h, value.as_object().ok_or("not an object")?, path, depth),
        Type::Proxy => wrong("a Proxy"),
        Type::Function | Type::Constructor => wrong("a function"),
        Type::Promise => wrong("a Promise (transforms are synchronous: no async, no await)"),
        other => wrong(&format!("a {other}")),
    }
}

fn object_from_js<'js>(
    h: &Helpers<'js>,
    object: &Object<'js>,
    path: &str,
    depth: usize,
) -> Result<AttributeValue, String> {
    // Most objects a transform returns are plain: tell them first, by their prototype alone.
    let prototype = object.get_prototype();
    if prototype.as_ref().is_none_or(|p| p.as_value() == h.object_prototype.as_value()) {
        return map_from_js(h, object, path, depth);
    }
    if object.is_typed_array::<u8>() {
        let array = object.as_typed_array::<u8>().ok_or("not a Uint8Array")?;
        // SAFETY: the bytes are copied at once, before any JavaScript can run and move them.
        let bytes = array.as_raw().map(|raw| unsafe { raw.as_ref().to_vec() });
        return bytes
            .map(|b| AttributeValue::B(Blob::new(b)))
            .ok_or_else(|| format!("{path} is a detached Uint8Array"));
    }
    if object.is_instance_of(&h.number_value) {
        let text: String = object.get("value").map_err(|e| e.to_string())?;
        return checked_number(&text, path);
    }
    if h.is_set.call::<_, bool>((object.clone(),)).map_err(|e| e.to_string())? {
        let values: Array = h.set_values.call((object.clone(),)).map_err(|e| e.to_string())?;
        return set_from_js(h, &values, path, depth);
    }
    let name = object.get::<_, Object>("constructor").and_then(|c| c.get::<_, String>("name")).unwrap_or_default();
    Err(format!(
        "{path} is a {name} object, which DynamoDB cannot store (use a plain object, array, Set or Uint8Array)"
    ))
}

fn map_from_js<'js>(
    h: &Helpers<'js>,
    object: &Object<'js>,
    path: &str,
    depth: usize,
) -> Result<AttributeValue, String> {
    let mut map = std::collections::HashMap::new();
    for entry in object.props::<String, Value>() {
        let (key, value) = entry.map_err(|e| e.to_string())?;
        if !value.is_undefined() {
            let converted = nested_from_js(h, &value, &format!("{path}.{key}"), depth + 1)?;
            map.insert(key, converted);
        }
    }
    Ok(AttributeValue::M(map))
}

/// A `Set` is a string set, a number set or a binary set by what it holds; DynamoDB has no empty
/// sets and no sets of mixed types.
fn set_from_js<'js>(h: &Helpers<'js>, values: &Array<'js>, path: &str, depth: usize) -> Result<AttributeValue, String> {
    let mut converted = Vec::with_capacity(values.len());
    for (i, element) in values.iter::<Value>().enumerate() {
        let element = element.map_err(|e| e.to_string())?;
        converted.push(nested_from_js(h, &element, &format!("{path} (element {i})"), depth + 1)?);
    }
    let mixed =
        || format!("{path} is a Set of mixed types; DynamoDB sets hold only strings, only numbers or only binary");
    match converted.first() {
        None => Err(format!("{path} is an empty Set; DynamoDB has no empty sets (remove the attribute instead)")),
        Some(AttributeValue::S(_)) => converted
            .into_iter()
            .map(|v| v.as_s().cloned().map_err(|_| mixed()))
            .collect::<Result<_, _>>()
            .map(AttributeValue::Ss),
        Some(AttributeValue::N(_)) => converted
            .into_iter()
            .map(|v| v.as_n().cloned().map_err(|_| mixed()))
            .collect::<Result<_, _>>()
            .map(AttributeValue::Ns),
        Some(AttributeValue::B(_)) => converted
            .into_iter()
            .map(|v| v.as_b().cloned().map_err(|_| mixed()))
            .collect::<Result<_, _>>()
            .map(AttributeValue::Bs),
        Some(_) => Err(format!("{path} is a Set of something other than strings, numbers or Uint8Arrays")),
    }
}

fn checked_number(text: &str, path: &str) -> Result<AttributeValue, String> {
    number::Decimal::parse_checked(text).map_err(|e| format!("{path}: {e}"))?;
    Ok(AttributeValue::N(text.to_string()))
}

fn js_string(value: &Value) -> Result<String, String> {
    value.get::<String>().map_err(|e| format!("a string that is not valid text: {e}"))
}

fn coerce_text(value: &Value) -> Result<String, String> {
    value.get::<rquickjs::Coerced<String>>().map(|c| c.0).map_err(|e| e.to_string())
}

/// Whether two attribute values are the same DynamoDB value: numbers by value, sets as sets. An
/// attribute a script gave back unchanged keeps its original encoding.
pub(crate) fn same(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue::*;
    match (a, b) {
        (N(x), N(y)) => number::same_number(x, y),
        (Ns(x), Ns(y)) => x.len() == y.len() && x.iter().all(|n| y.iter().any(|m| number::same_number(n, m))),
        (Ss(x), Ss(y)) => x.len() == y.len() && x.iter().all(|s| y.contains(s)),
        (Bs(x), Bs(y)) => x.len() == y.len() && x.iter().all(|s| y.contains(s)),
        (L(x), L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (M(x), M(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}
