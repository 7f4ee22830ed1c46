//! Reading one migration file: a TOML file's header and operations, or a script's exports, into
//! a [`FileMigration`]'s parts. What is wrong is said in words that name the key at fault.

use std::sync::Arc;

use dynamigrate_script::{Language, Limits, Script};
use serde_json::Value;

use crate::ops::{inverse_all, Op};
use crate::spec::{FileSpec, Header};

/// How a file changes each item.
#[derive(Debug, Clone)]
pub enum Body {
    /// Operations, and `down`'s: written out, derived from `up`, or none.
    Operations {
        up: Vec<Op>,
        down: Option<Vec<Op>>,
    },
    Script(Arc<Script>),
}

/// A file read: its spec, its body and the id it names inside, if any.
pub struct Parsed {
    pub spec: FileSpec,
    pub body: Body,
    pub id: Option<String>,
}

/// A TOML migration: the header keys, then `up = [...]` and optionally `down = [...]`.
pub fn toml_file(text: &str) -> Result<Parsed, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    for section in ["select", "settings", "requires"] {
        if let Some(toml::Value::Table(inner)) = table.get(section) {
            if let Some(key) = ["up", "down", "description"].into_iter().find(|k| inner.contains_key(*k)) {
                return Err(format!(
                    "`{key}` is inside [{section}]: in TOML a key after a [section] header belongs to it; \
                     move `{key}` above the first [section]"
                ));
            }
        }
    }
    let up = table.remove("up");
    let down = table.remove("down");
    let header: Header = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
        .map_err(|e| format!("{e}; a TOML migration has description, id, table, version_attribute, phase, upgrade_to, requires, major, [select], [settings], up and down"))?;
    let id = header.id.clone();
    let spec = FileSpec::read(header)?;
    let up = operations(up, "up", &spec.version_attribute)?
        .ok_or("it has no `up` (the operations to apply, e.g. up = [{ set = \"status\", value = \"active\" }])")?;
    if up.is_empty() {
        return Err("`up` is empty: give at least one operation".into());
    }
    if spec.lifecycle.upgrade_to.is_some() && up.iter().any(|op| matches!(op, Op::Version { .. })) {
        return Err("an upgrade step sets the version itself (to its upgrade_to); drop the `version` operation".into());
    }
    let down = match operations(down, "down", &spec.version_attribute)? {
        Some(down) => Some(down),
        None => inverse_all(&up),
    };
    Ok(Parsed { spec, body: Body::Operations { up, down }, id })
}

fn operations(raw: Option<toml::Value>, name: &str, version_attribute: &str) -> Result<Option<Vec<Op>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let toml::Value::Array(entries) = raw else {
        return Err(format!("`{name}` must be an array of operations, e.g. {name} = [{{ remove = \"legacy\" }}]"));
    };
    let ops = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let json = serde_json::to_value(entry).map_err(|e| e.to_string())?;
            Op::parse(&json, &format!("{name}[{i}]"), version_attribute)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ops))
}

/// A JavaScript or TypeScript migration: `transform` (and `down`) plus the same header as exports.
pub fn script_file(file: &str, text: &str, language: Language, limits: Limits) -> Result<Parsed, String> {
    let script = Script::load(file, text, language, limits)?;
    if !script.has_transform {
        return Err("it exports no `transform` function: export function transform(item) { ... }".into());
    }
    let mut data = script.data.clone();
    data.insert("description".into(), Value::String(script.description.clone()));
    let header: Header = serde_json::from_value(Value::Object(data)).map_err(|e| {
        format!("{e}; a script exports description, transform, down, and optionally id, table, version_attribute, phase, upgrade_to, requires, major, select and settings")
    })?;
    let id = header.id.clone();
    let spec = FileSpec::read(header)?;
    Ok(Parsed { spec, body: Body::Script(Arc::new(script)), id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_is_derived_written_out_or_absent() {
        let derived = toml_file("description = \"d\"\nup = [{ rename = \"a\", to = \"b\" }]").unwrap();
        assert!(matches!(derived.body, Body::Operations { down: Some(ref d), .. } if d.len() == 1));
        let none = toml_file("description = \"d\"\nup = [{ set = \"a\", value = 1 }]").unwrap();
        assert!(matches!(none.body, Body::Operations { down: None, .. }));
        let written =
            toml_file("description = \"d\"\nup = [{ set = \"a\", value = 1 }]\ndown = [{ remove = \"a\" }]").unwrap();
        assert!(matches!(written.body, Body::Operations { down: Some(_), .. }));
    }

    #[test]
    fn toml_mistakes_are_named() {
        for (text, expected) in [
            ("description = \"d\"", "no `up`"),
            ("description = \"d\"\nup = []", "`up` is empty"),
            ("description = \"d\"\nup = \"x\"", "must be an array"),
            ("description = \"d\"\ndescripton = \"x\"\nup = [{ remove = \"a\" }]", "unknown field `descripton`"),
            ("description = \"d\"\nup = [{ remove = \"a\" }, { set = \"b\" }]", "up[1]"),
            ("description = ", "TOML"),
            ("description = \"d\"\n[select]\npk_prefix = \"A\"\nup = [{ remove = \"a\" }]", "inside [select]"),
        ] {
            let error = toml_file(text).err().unwrap_or_default();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn a_script_needs_a_transform_and_known_exports() {
        let limits = Limits::default();
        let no_transform = script_file("f.js", "export const description = 'd';", Language::JavaScript, limits);
        assert!(no_transform.err().unwrap_or_default().contains("no `transform`"));
        let unknown = "export const description = 'd'; export const selct = {}; export function transform() {}";
        let error = script_file("f.js", unknown, Language::JavaScript, limits).err().unwrap_or_default();
        assert!(error.contains("unknown field `selct`"), "{error}");
    }
}
