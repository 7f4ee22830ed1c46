//! The config's unit tests: stages resolved, defaults, rails, versions, typos.

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
    let told = parse("[stages.prod]\nrequire_pitr = false\nbackup_before = \"always\"\nbackup_timeout_seconds = 60\n")
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
