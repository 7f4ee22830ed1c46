//! `dynamigrate.toml`: named stages, each with its table, AWS settings and whether to confirm.
//! Command-line options override the file. Resolution is pure and unit-tested.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dynamigrate::ledger::{DEFAULT_HISTORY_TABLE, DEFAULT_LEASE};
use dynamigrate::runner::DEFAULT_BACKUP_TIMEOUT;
use dynamigrate::safety::BackupPolicy;
use dynamigrate::versions::Versioning;
use dynamigrate::BackfillSettings;
use serde::Deserialize;

pub const DEFAULT_CONFIG_FILE: &str = "dynamigrate.toml";

/// A lease shorter than 3 s leaves a heartbeat (every third of it) no time for one slow request; one
/// longer than a day keeps a crashed runner's lock for longer than anyone would wait.
const LEASE_SECONDS: std::ops::RangeInclusive<u64> = 3..=86_400;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// History table for every stage that does not name its own.
    pub history_table: Option<String>,
    /// Lease length of the runner lock, in seconds.
    pub lease_seconds: Option<u64>,
    /// The migrations folder, relative to this file [default: migrations, beside it].
    pub migrations_dir: Option<PathBuf>,
    /// How items carry their version: the main table's, and other tables' by logical name.
    #[serde(default)]
    pub versions: VersionsConfig,
    #[serde(default)]
    pub stages: BTreeMap<String, StageConfig>,
}

/// `[versions]`: the same in every stage, since it describes the application's data.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionsConfig {
    /// The main table's version attribute [default: version].
    pub attribute: Option<String>,
    /// The main table's version of items without the attribute [default: 1].
    pub unversioned: Option<u64>,
    /// `[versions.tables.NAME]`, NAME a logical table of the stages' `[tables]`.
    #[serde(default)]
    pub tables: BTreeMap<String, TableVersions>,
}

/// One table's version attribute and the version of items without it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableVersions {
    /// [default: version]
    pub attribute: Option<String>,
    /// [default: 1]
    pub unversioned: Option<u64>,
}

impl TableVersions {
    fn resolve(&self, at: &str) -> Result<Versioning, ConfigError> {
        let defaults = Versioning::default();
        let attribute = self.attribute.clone().unwrap_or(defaults.attribute);
        if attribute.is_empty() {
            return Err(ConfigError::Invalid(format!("[{at}] attribute is empty: name the version attribute")));
        }
        Ok(Versioning { attribute, unversioned: self.unversioned.unwrap_or(defaults.unversioned) })
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct StageConfig {
    pub table: Option<String>,
    /// Other tables migrations may use, by logical name.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub history_table: Option<String>,
    /// Ask the user to type the stage name before changing anything. Default: true for `prod`.
    pub confirm: Option<bool>,
    /// Refuse a real run or down on a table without point-in-time recovery. Default: as `confirm`.
    pub require_pitr: Option<bool>,
    /// "never", "major" or "always": an on-demand backup before such migrations. Default: "major"
    /// on stages that confirm, else "never".
    pub backup_before: Option<String>,
    /// How long to wait for that backup to become AVAILABLE [default: 3600].
    pub backup_timeout_seconds: Option<u64>,
    pub lease_seconds: Option<u64>,
    /// Backfill knobs for this stage: every key of [`BackfillSettings`] (`max_wcu`, `page_size`,
    /// `write_mode`, ...). The command line's win over them.
    /// Filled by [`parse`] from the stage's other keys.
    #[serde(skip)]
    pub backfill: BackfillSettings,
    /// Every key not named above, read as [`BackfillSettings`] in a second step: through
    /// `#[serde(flatten)]` a mistyped knob's error would not say which key it was, and a flattened
    /// struct cannot refuse unknown keys.
    #[serde(flatten)]
    rest: toml::Table,
}

/// Settings given on the command line; each wins over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub table: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub history_table: Option<String>,
}

/// One stage with every setting decided.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub table: Option<String>,
    pub tables: BTreeMap<String, String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub history_table: String,
    pub confirm: bool,
    pub lease: Duration,
    /// Backfill settings from the stage; the command line's win over them.
    pub backfill: BackfillSettings,
    /// How each table carries versions, by physical name.
    pub versioning: BTreeMap<String, Versioning>,
    pub require_pitr: bool,
    pub backup_before: BackupPolicy,
    pub backup_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("unknown stage {stage:?} in {path}; its stages are: {known}. Add [stages.{stage}] or pick one of those")]
    UnknownStage { stage: String, path: PathBuf, known: String },
    #[error("invalid stage name {0:?}: use letters, digits, '-' and '_'")]
    BadStageName(String),
    #[error("{0}")]
    Invalid(String),
}

/// Reads the config. An explicitly named file must exist; the default one is optional.
pub fn load(explicit: Option<&Path>) -> Result<Option<(PathBuf, ConfigFile)>, ConfigError> {
    let path = explicit.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_path_buf);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => return Ok(None),
        Err(e) => return Err(ConfigError::Unreadable { path, message: e.to_string() }),
    };
    let file = parse(&text).map_err(|message| ConfigError::Unreadable { path: path.clone(), message })?;
    Ok(Some((path, file)))
}

pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let mut file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
    for (name, stage) in &mut file.stages {
        stage.backfill = backfill_keys(name, std::mem::take(&mut stage.rest))?;
    }
    Ok(file)
}

/// A stage's backfill knobs, each key named in its error: an unknown key (a typo must not
/// silently fall back to a default), or a value of the wrong type.
fn backfill_keys(stage: &str, keys: toml::Table) -> Result<BackfillSettings, String> {
    let mut settings = BackfillSettings::default();
    for (key, value) in keys {
        let one = toml::Table::from_iter([(key.clone(), value)]);
        let parsed: BackfillSettings = toml::Value::Table(one).try_into().map_err(|e: toml::de::Error| {
            let message = e.message().trim().to_string();
            if message.starts_with("unknown field") {
                format!("unknown key `{key}` in [stages.{stage}]; see the README's config reference")
            } else {
                format!("[stages.{stage}] {key}: {message}")
            }
        })?;
        settings = parsed.or(&settings);
    }
    Ok(settings)
}

/// Decides every setting of `name`: command line, then the stage, then the file's defaults.
pub fn resolve(file: Option<(&Path, &ConfigFile)>, name: &str, cli: &Overrides) -> Result<Stage, ConfigError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ConfigError::BadStageName(name.to_string()));
    }
    let defaults = ConfigFile::default();
    let (path, file) = file.map_or((None, &defaults), |(p, f)| (Some(p), f));
    let stage = match (file.stages.get(name), path) {
        (Some(stage), _) => stage.clone(),
        // A config that names stages must name this one: a typo must not run against defaults.
        (None, Some(path)) if !file.stages.is_empty() => {
            return Err(ConfigError::UnknownStage {
                stage: name.to_string(),
                path: path.to_path_buf(),
                known: file.stages.keys().cloned().collect::<Vec<_>>().join(", "),
            })
        }
        (None, _) => StageConfig::default(),
    };
    let lease_seconds = stage.lease_seconds.or(file.lease_seconds).unwrap_or(DEFAULT_LEASE.as_secs());
    if !LEASE_SECONDS.contains(&lease_seconds) {
        return Err(ConfigError::Invalid(format!(
            "lease_seconds = {lease_seconds} is out of range: use {} to {}",
            LEASE_SECONDS.start(),
            LEASE_SECONDS.end()
        )));
    }
    stage.backfill.validate().map_err(|e| ConfigError::Invalid(format!("stage {name}: {e}")))?;
    let table = cli.table.clone().or(stage.table);
    let versioning = versioning(&file.versions, table.as_deref(), &stage.tables)?;
    let confirm = stage.confirm.unwrap_or(name == "prod" || name == "production");
    let default_backups = if confirm { BackupPolicy::Major } else { BackupPolicy::Never };
    let backup_before = match &stage.backup_before {
        Some(text) => text.parse().map_err(|e| ConfigError::Invalid(format!("[stages.{name}] {e}")))?,
        None => default_backups,
    };
    let backup_timeout = match stage.backup_timeout_seconds {
        None => DEFAULT_BACKUP_TIMEOUT,
        Some(seconds @ 1..=86_400) => Duration::from_secs(seconds),
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "[stages.{name}] backup_timeout_seconds = {other} is out of range: use 1 to 86400"
            )))
        }
    };
    Ok(Stage {
        name: name.to_string(),
        table,
        tables: stage.tables,
        region: cli.region.clone().or(stage.region),
        profile: cli.profile.clone().or(stage.profile),
        endpoint_url: cli.endpoint_url.clone().or(stage.endpoint_url),
        history_table: cli
            .history_table
            .clone()
            .or(stage.history_table)
            .or(file.history_table.clone())
            .unwrap_or_else(|| DEFAULT_HISTORY_TABLE.to_string()),
        confirm,
        require_pitr: stage.require_pitr.unwrap_or(confirm),
        backup_before,
        backup_timeout,
        lease: Duration::from_secs(lease_seconds),
        backfill: stage.backfill,
        versioning,
    })
}

/// `[versions]` by physical table: the main table's, and each logical table's this stage has.
fn versioning(
    config: &VersionsConfig,
    main: Option<&str>,
    tables: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Versioning>, ConfigError> {
    let mut by_table = BTreeMap::new();
    if let Some(main) = main {
        let own = TableVersions { attribute: config.attribute.clone(), unversioned: config.unversioned };
        by_table.insert(main.to_string(), own.resolve("versions")?);
    }
    for (logical, versions) in &config.tables {
        let resolved = versions.resolve(&format!("versions.tables.{logical}"))?;
        if let Some(physical) = tables.get(logical) {
            by_table.insert(physical.clone(), resolved);
        }
    }
    Ok(by_table)
}

#[cfg(test)]
mod tests;
