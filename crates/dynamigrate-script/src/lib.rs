//! Per-item transforms written in JavaScript or TypeScript, run in an embedded QuickJS sandbox.
//!
//! A script is an ES module that exports `transform(item, context)` (and optionally `down`), plus
//! plain data the caller interprets (`description`, `select`, `settings`, ...). [`Script::load`]
//! strips TypeScript types (oxc), checks the module and reads its exports; [`ScriptTransform`]
//! is the `dynamigrate::Transform` that runs it on each item. The engine stays behind that trait,
//! so another could replace it without touching the backfill.
//!
//! The sandbox: no modules, file system, network, process, environment or clock; built-ins and
//! globals frozen; the module's top level run once and its values frozen, so nothing carries from one
//! item to the next; a memory limit, a stack limit and a per-item time limit; a script that
//! throws, loops or runs out of memory fails its item only.

mod convert;
mod item;
pub mod number;
mod options;
mod sandbox;
pub mod source;
mod worker;

use dynamigrate::{Change, Item, Transform};
use rquickjs::{CatchResultExt, Value};
use sha2::{Digest, Sha256};

pub use options::{Entry, Limits, RunInfo};
pub use source::{Language, SourceError};

/// A script file, checked and loaded: its code and what it exports.
#[derive(Debug, Clone)]
pub struct Script {
    file: String,
    code: String,
    checksum: String,
    limits: Limits,
    /// `description`, as the module exports it.
    pub description: String,
    pub has_transform: bool,
    pub has_down: bool,
    /// Every other export that is plain data, as JSON (`select`, `settings`, ...).
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Script {
    /// Strips types (TypeScript), refuses imports, runs the module's top level once in a sandbox
    /// and reads its exports. `file` names the script in messages.
    pub fn load(file: &str, text: &str, language: Language, limits: Limits) -> Result<Self, String> {
        let code = source::factory(text, language).map_err(|e| e.to_string())?;
        let sandbox = sandbox::Sandbox::new(&code, file, limits, &RunInfo::default())?;
        let checksum = hex(&Sha256::digest(text.as_bytes()));
        let mut script = Self {
            file: file.to_string(),
            code,
            checksum,
            limits,
            description: String::new(),
            has_transform: false,
            has_down: false,
            data: serde_json::Map::new(),
        };
        let limits = limits.for_loading();
        sandbox.with_deadline(limits.item_timeout, |ctx| {
            let exports = sandbox.exports(&ctx).catch(&ctx).map_err(|e| sandbox::describe(e, limits))?;
            let mut fields: Vec<(String, Value)> = Vec::new();
            if let Ok(default) = exports.get::<_, rquickjs::Object>("default") {
                fields.extend(default.props::<String, Value>().filter_map(Result::ok));
            }
            fields.extend(exports.props::<String, Value>().filter_map(Result::ok).filter(|(k, _)| k != "default"));
            for (name, value) in fields {
                script.read_export(&ctx, name, value)?;
            }
            Ok::<(), String>(())
        })?;
        Ok(script)
    }

    fn read_export<'js>(&mut self, ctx: &rquickjs::Ctx<'js>, name: String, value: Value<'js>) -> Result<(), String> {
        match name.as_str() {
            "transform" => self.has_transform = value.is_function(),
            "down" => self.has_down = value.is_function(),
            "description" => {
                self.description = value.get::<String>().map_err(|_| "`description` must be a string".to_string())?
            }
            _ if value.is_function() => {}
            _ => {
                let json = ctx.json_stringify(value).catch(ctx).map_err(|e| sandbox::describe(e, self.limits))?;
                let json = json.map(|s| s.to_string()).transpose().map_err(|e| e.to_string())?;
                let parsed = json.map(|j| serde_json::from_str(&j)).transpose().map_err(|e| e.to_string())?;
                self.data.insert(name, parsed.unwrap_or(serde_json::Value::Null));
            }
        }
        Ok(())
    }

    /// SHA-256 of the file's text, as lowercase hex.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// A transform running `entry` on each item of a table whose key attributes are `key_names`
    /// (an object the script returns holding them all is a whole item, else a patch).
    pub fn transform(&self, entry: Entry, key_names: Vec<String>, info: RunInfo) -> ScriptTransform {
        let fingerprint = format!("script:{}:{}", self.checksum, entry.name());
        let blueprint = worker::Blueprint {
            code: self.code.clone(),
            file: self.file.clone(),
            limits: self.limits,
            entry,
            key_names,
            info,
        };
        ScriptTransform { pool: worker::Pool::new(blueprint), fingerprint }
    }
}

/// A script's function as a [`Transform`]: each item runs in the calling thread's interpreter.
pub struct ScriptTransform {
    pool: worker::Pool,
    fingerprint: String,
}

impl Transform for ScriptTransform {
    fn apply(&self, item: &Item) -> anyhow::Result<Change> {
        self.pool.run(item).map_err(anyhow::Error::msg)
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
