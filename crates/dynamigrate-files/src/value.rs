//! The typed literal notation of migration files: DynamoDB's own type tags, so every type can be
//! written (`{ N = "12345678901234567890123456789012345678" }`, `{ SS = ["a", "b"] }`,
//! `{ B = "base64..." }`, `{ NULL = true }`, `{ M = { ... } }`, `{ L = [ ... ] }`), with plain
//! strings, numbers, booleans, arrays and tables as shorthand for S, N, BOOL, L and M. Pure.
//!
//! A table with exactly one key that is a type tag is typed; a map whose only key happens to be
//! `S` (or another tag) is written `{ M = { S = ... } }`.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate_script::number::Decimal;
use serde_json::Value;

const TAGS: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

/// A literal (already read as JSON: TOML values convert losslessly) as an attribute value;
/// `at` names it in errors.
pub fn literal(value: &Value, at: &str) -> Result<AttributeValue, String> {
    match value {
        Value::String(s) => Ok(AttributeValue::S(s.clone())),
        Value::Number(n) => number(&n.to_string(), at),
        Value::Bool(b) => Ok(AttributeValue::Bool(*b)),
        Value::Null => Ok(AttributeValue::Null(true)),
        Value::Array(values) => values
            .iter()
            .enumerate()
            .map(|(i, v)| literal(v, &format!("{at}[{i}]")))
            .collect::<Result<_, _>>()
            .map(AttributeValue::L),
        Value::Object(map) => match map.iter().next() {
            Some((tag, inner)) if map.len() == 1 && TAGS.contains(&tag.as_str()) => typed(tag, inner, at),
            _ => map_of(map, at),
        },
    }
}

fn typed(tag: &str, inner: &Value, at: &str) -> Result<AttributeValue, String> {
    let wrong = |what: &str| format!("{at}: {{ {tag} = ... }} needs {what}");
    match (tag, inner) {
        ("S", Value::String(s)) => Ok(AttributeValue::S(s.clone())),
        ("N", Value::String(s)) => number(s, at),
        ("N", Value::Number(n)) => number(&n.to_string(), at),
        ("B", Value::String(s)) => binary(s, at).map(AttributeValue::B),
        ("BOOL", Value::Bool(b)) => Ok(AttributeValue::Bool(*b)),
        ("NULL", Value::Bool(true)) => Ok(AttributeValue::Null(true)),
        ("M", Value::Object(map)) => map_of(map, at),
        ("L", Value::Array(_)) => literal(inner, at),
        ("SS", Value::Array(values)) => set(values, at, |v, at| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(format!("{at}: a string set holds strings")),
        })
        .map(AttributeValue::Ss),
        ("NS", Value::Array(values)) => set(values, at, |v, at| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(format!("{at}: a number set holds numbers (as text for exactness)")),
            };
            number(&text, at).map(|_| text)
        })
        .map(AttributeValue::Ns),
        ("BS", Value::Array(values)) => set(values, at, |v, at| match v {
            Value::String(s) => binary(s, at),
            _ => Err(format!("{at}: a binary set holds base64 strings")),
        })
        .map(AttributeValue::Bs),
        ("S" | "B", _) => Err(wrong("a string")),
        ("N", _) => Err(wrong("the number as a string")),
        ("BOOL", _) => Err(wrong("true or false")),
        ("NULL", _) => Err(wrong("true")),
        ("M", _) => Err(wrong("a table")),
        _ => Err(wrong("an array")),
    }
}

fn map_of(map: &serde_json::Map<String, Value>, at: &str) -> Result<AttributeValue, String> {
    let mut out = HashMap::new();
    for (key, value) in map {
        out.insert(key.clone(), literal(value, &format!("{at}.{key}"))?);
    }
    Ok(AttributeValue::M(out))
}

fn set<T: PartialEq>(
    values: &[Value],
    at: &str,
    one: impl Fn(&Value, &str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    if values.is_empty() {
        return Err(format!("{at}: DynamoDB has no empty sets"));
    }
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let element = one(value, &format!("{at}[{i}]"))?;
        if out.contains(&element) {
            return Err(format!("{at}[{i}]: a set cannot hold the same value twice"));
        }
        out.push(element);
    }
    Ok(out)
}

fn number(text: &str, at: &str) -> Result<AttributeValue, String> {
    Decimal::parse_checked(text).map_err(|e| format!("{at}: {e}"))?;
    Ok(AttributeValue::N(text.to_string()))
}

fn binary(text: &str, at: &str) -> Result<Blob, String> {
    aws_smithy_types::base64::decode(text).map(Blob::new).map_err(|_| format!("{at}: {text:?} is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_value: &str) -> Result<AttributeValue, String> {
        let table: toml::Table = toml::from_str(&format!("v = {toml_value}")).unwrap();
        literal(&serde_json::to_value(&table["v"]).unwrap(), "v")
    }

    #[test]
    fn every_type_can_be_written() {
        let big = "12345678901234567890123456789012345678";
        assert_eq!(parse(&format!("{{ N = \"{big}\" }}")), Ok(AttributeValue::N(big.into())));
        assert_eq!(parse("{ S = \"x\" }"), Ok(AttributeValue::S("x".into())));
        assert_eq!(parse("{ B = \"AP8H\" }"), Ok(AttributeValue::B(Blob::new(vec![0, 255, 7]))));
        assert_eq!(parse("{ BOOL = false }"), Ok(AttributeValue::Bool(false)));
        assert_eq!(parse("{ NULL = true }"), Ok(AttributeValue::Null(true)));
        assert_eq!(parse("{ SS = [\"a\", \"b\"] }"), Ok(AttributeValue::Ss(vec!["a".into(), "b".into()])));
        assert_eq!(
            parse(&format!("{{ NS = [\"1\", \"{big}\"] }}")),
            Ok(AttributeValue::Ns(vec!["1".into(), big.into()]))
        );
        assert_eq!(parse("{ BS = [\"AQ==\"] }"), Ok(AttributeValue::Bs(vec![Blob::new(vec![1])])));
        assert_eq!(
            parse("{ L = [1, \"a\"] }"),
            Ok(AttributeValue::L(vec![AttributeValue::N("1".into()), AttributeValue::S("a".into())]))
        );
        let nested = parse("{ M = { S = { N = \"2\" } } }").unwrap();
        assert_eq!(nested, AttributeValue::M(HashMap::from([("S".into(), AttributeValue::N("2".into()))])));
    }

    #[test]
    fn plain_values_are_shorthand() {
        assert_eq!(parse("\"x\""), Ok(AttributeValue::S("x".into())));
        assert_eq!(parse("42"), Ok(AttributeValue::N("42".into())));
        assert_eq!(parse("true"), Ok(AttributeValue::Bool(true)));
        assert_eq!(parse("[]"), Ok(AttributeValue::L(vec![])));
        let map = parse("{ tags = [], category = \"general\" }").unwrap();
        assert_eq!(
            map,
            AttributeValue::M(HashMap::from([
                ("tags".into(), AttributeValue::L(vec![])),
                ("category".into(), AttributeValue::S("general".into())),
            ]))
        );
    }

    #[test]
    fn what_dynamodb_cannot_hold_is_refused_with_where() {
        for (bad, expected) in [
            ("{ N = \"12.3.4\" }", "not a number"),
            ("{ N = \"123456789012345678901234567890123456789\" }", "38 significant digits"),
            ("{ SS = [] }", "no empty sets"),
            ("{ SS = [\"a\", \"a\"] }", "same value twice"),
            ("{ NS = [\"1\", \"x\"] }", "v[1]"),
            ("{ B = \"not base64!\" }", "not base64"),
            ("{ NULL = false }", "needs true"),
            ("{ M = { a = { N = \"x\" } } }", "v.a"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }
}
