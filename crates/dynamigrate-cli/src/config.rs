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
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        history_table = "team_history"

        [stages.dev]
        table = "dev-items"
        endpoint_url = "http://localhost:8000"
        region = "us-east-1"

        [stages.prod]
        table = "prod-items"
        region = "eu-west-1"
        profile = "prod"
        history_table = "prod_history"
        max_wcu = 500
        rate_mode = "fixed"
        page_size = 250
        [stages.prod.tables]
        orders = "prod-orders"
    "#;

    fn sample() -> ConfigFile {
        parse(SAMPLE).unwrap()
    }

    #[test]
    fn the_stage_fills_what_the_command_line_leaves_open() {
        let file = sample();
        let stage = resolve(Some((Path::new("x.toml"), &file)), "prod", &Overrides::default()).unwrap();
        assert_eq!(stage.table.as_deref(), Some("prod-items"));
        assert_eq!(stage.history_table, "prod_history");
        assert_eq!(stage.tables.get("orders").map(String::as_str), Some("prod-orders"));
        assert!(stage.confirm, "prod confirms by default");
        assert_eq!(stage.backfill.max_wcu, Some(500.0));
        assert_eq!(stage.backfill.rate_mode, Some(dynamigrate::backfill::RateMode::Fixed));
        assert_eq!(stage.backfill.page_size, Some(250), "every backfill knob is a stage key");
        let dev = resolve(Some((Path::new("x.toml"), &file)), "dev", &Overrides::default()).unwrap();
        assert_eq!(dev.history_table, "team_history");
        assert!(!dev.confirm);
    }

    #[test]
    fn the_command_line_wins() {
        let file = sample();
        let cli = Overrides { table: Some("other".into()), region: Some("us-west-2".into()), ..Overrides::default() };
        let stage = resolve(Some((Path::new("x.toml"), &file)), "prod", &cli).unwrap();
        assert_eq!(stage.table.as_deref(), Some("other"));
        assert_eq!(stage.region.as_deref(), Some("us-west-2"));
        assert_eq!(stage.profile.as_deref(), Some("prod"));
    }

    #[test]
    fn an_unknown_stage_is_an_error_naming_the_known_ones() {
        let file = sample();
        let error = resolve(Some((Path::new("x.toml"), &file)), "staging", &Overrides::default()).unwrap_err();
        assert!(error.to_string().contains("dev, prod"), "{error}");
    }

    #[test]
    fn without_a_file_any_stage_works_from_the_command_line() {
        let stage = resolve(None, "prod", &Overrides { table: Some("t".into()), ..Overrides::default() }).unwrap();
        assert_eq!(stage.history_table, DEFAULT_HISTORY_TABLE);
        assert!(stage.confirm);
    }

    #[test]
    fn stages_that_confirm_require_pitr_and_back_up_major_migrations_unless_told_otherwise() {
        let file = sample();
        let prod = resolve(Some((Path::new("x.toml"), &file)), "prod", &Overrides::default()).unwrap();
        assert!(prod.require_pitr);
        assert_eq!((prod.backup_before, prod.backup_timeout), (BackupPolicy::Major, DEFAULT_BACKUP_TIMEOUT));
        let dev = resolve(Some((Path::new("x.toml"), &file)), "dev", &Overrides::default()).unwrap();
        assert!(!dev.require_pitr);
        assert_eq!(dev.backup_before, BackupPolicy::Never);
        let told =
            parse("[stages.prod]\nrequire_pitr = false\nbackup_before = \"always\"\nbackup_timeout_seconds = 60\n")
                .unwrap();
        let prod = resolve(Some((Path::new("x.toml"), &told)), "prod", &Overrides::default()).unwrap();
        assert_eq!((prod.require_pitr, prod.backup_before), (false, BackupPolicy::Always));
        assert_eq!(prod.backup_timeout, Duration::from_secs(60));
        for bad in ["backup_before = \"sometimes\"", "backup_timeout_seconds = 0"] {
            let file = parse(&format!("[stages.prod]\n{bad}\n")).unwrap();
            assert!(resolve(Some((Path::new("x.toml"), &file)), "prod", &Overrides::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_describe_the_main_table_and_logical_tables() {
        let text = format!("{SAMPLE}\n[versions]\nunversioned = 0\n[versions.tables.orders]\nattribute = \"v\"\n");
        let file = parse(&text.replace("[stages.dev]", "[versions.x]\n[stages.dev]")).err().unwrap_or_default();
        assert!(file.contains("unknown field `x`"), "{file}");
        let file = parse(&text).unwrap();
        let stage = resolve(Some((Path::new("x.toml"), &file)), "prod", &Overrides::default()).unwrap();
        assert_eq!(stage.versioning["prod-items"], Versioning { attribute: "version".into(), unversioned: 0 });
        assert_eq!(stage.versioning["prod-orders"], Versioning { attribute: "v".into(), unversioned: 1 });
        let dev = resolve(Some((Path::new("x.toml"), &file)), "dev", &Overrides::default()).unwrap();
        assert_eq!(dev.versioning.len(), 1, "dev has no orders table");
    }

    #[test]
    fn bad_rate_settings_are_rejected() {
        for bad in ["max_wcu = -1", "rate_mode = \"fast\"", "page_size = 0", "lease_seconds = 18446744073709551615"] {
            // A value of the wrong kind is refused when the file is read, one out of range when the
            // stage is resolved: either way before anything runs.
            let rejected = parse(&format!("[stages.dev]\n{bad}\n")).map_err(|e| e.to_string()).and_then(|file| {
                resolve(Some((Path::new("x.toml"), &file)), "dev", &Overrides::default()).map_err(|e| e.to_string())
            });
            assert!(rejected.is_err(), "{bad}");
        }
    }

    #[test]
    fn typos_in_the_file_are_rejected() {
        assert!(parse("[stages.dev]\ntabel = \"x\"\n").unwrap_err().contains("tabel"));
        assert!(parse("[stages.dev]\nbatch_size = 10\n").unwrap_err().contains("batch_size"));
        let mistyped = parse("[stages.dev]\npage_size = \"many\"\n").unwrap_err();
        assert!(mistyped.starts_with("[stages.dev] page_size: invalid type"), "the key is named: {mistyped}");
        assert!(parse("stages = 3").is_err());
    }
}
