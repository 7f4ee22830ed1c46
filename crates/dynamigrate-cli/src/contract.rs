//! The input contract: every value a user, a config file or the environment hands the CLI, the
//! shape it must have, and one sentence saying what is wrong with it and how to fix it. Everything
//! here is checked before any AWS call; a value outside its shape exits 2 and nothing is written
//! anywhere.
//!
//! | input | from | shape |
//! |---|---|---|
//! | stage | `--stage`, `STAGE` | letters, digits, `-`, `_` |
//! | config file | `--config`, `DYNAMIGRATE_CONFIG` | an existing TOML file (the default one may be absent) |
//! | table, history table, `[tables]` | flags, config | a DynamoDB table name: 3–255 of `a-z A-Z 0-9 _ - .`; the history table is none of the migrated ones |
//! | region | `--region`, config, `AWS_REGION` | lowercase letters, digits and `-`, starting with a letter, at most 64 |
//! | endpoint | `--endpoint-url`, config, `AWS_ENDPOINT_URL(_DYNAMODB)` | `http://` or `https://`, a host, an optional port 1–65535 |
//! | profile | `--profile`, config, `AWS_PROFILE` | 1–128 characters, no whitespace or control characters |
//! | credentials | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, or the chain | printable ASCII without spaces |
//! | lease | `lease_seconds` | 3–86400 (see `config`) |
//! | `--wait` | flag | 0–86400 seconds |
//! | `--steps` | flag | 1–1000000 |
//! | migration ids | `--to`, the binary's migrations | `YYYYMMDD_description` (see `dynamigrate::id`) |
//! | backfill knobs | flags, config | see `BackfillSettings::validate` |
//! | failures file | `--failures-file`, config | a file (not a directory) in an existing directory |
//! | lock owner | `DYNAMIGRATE_OWNER` | 1–256 printable characters |
//! | log filter, format | `DYNAMIGRATE_LOG`, `--log-format` | a `tracing` filter; `text` or `json` |

use std::path::Path;

use crate::config::Stage;

/// Checks the environment variables dynamigrate and the AWS SDK read, before either reads them.
pub fn check_environment() -> Result<(), String> {
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(value) = var(name) {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "{name} holds a space, a line break or another character no AWS credential has; \
                     set it again from its source (it is not shown here)"
                ));
            }
        }
    }
    if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        region_shape(&region).map_err(|e| format!("AWS_REGION: {e}"))?;
    }
    for name in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"] {
        if let Some(url) = var(name) {
            endpoint_shape(&url).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    if let Some(profile) = var("AWS_PROFILE") {
        profile_shape(&profile).map_err(|e| format!("AWS_PROFILE: {e}"))?;
    }
    if let Some(owner) = var("DYNAMIGRATE_OWNER") {
        if owner.chars().count() > 256 || owner.chars().any(char::is_control) {
            return Err("DYNAMIGRATE_OWNER must be at most 256 characters, without control characters".into());
        }
    }
    if let Some(filter) = var("DYNAMIGRATE_LOG") {
        tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| {
            format!("DYNAMIGRATE_LOG={filter:?} is not a log filter ({e}); use e.g. info or dynamigrate=debug")
        })?;
    }
    Ok(())
}

fn var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Checks a resolved stage: its names, region, endpoint and profile.
pub fn check_stage(stage: &Stage) -> Result<(), String> {
    let mut tables: Vec<(&str, &str)> = vec![("history table", stage.history_table.as_str())];
    if let Some(table) = &stage.table {
        tables.push(("table", table));
    }
    tables.extend(stage.tables.iter().map(|(logical, table)| (logical.as_str(), table.as_str())));
    for (what, name) in &tables {
        dynamigrate::aws::check_table_name(name).map_err(|e| format!("{what}: {e}"))?;
    }
    if tables.iter().skip(1).any(|(_, name)| *name == stage.history_table) {
        return Err(format!(
            "the history table {:?} is also a table the migrations work on; history must live in a table of its \
             own (pass --history-table or set history_table)",
            stage.history_table
        ));
    }
    if let Some(region) = &stage.region {
        region_shape(region).map_err(|e| format!("region: {e}"))?;
    }
    if let Some(endpoint) = &stage.endpoint_url {
        endpoint_shape(endpoint).map_err(|e| format!("endpoint URL: {e}"))?;
    }
    if let Some(profile) = &stage.profile {
        profile_shape(profile).map_err(|e| format!("profile: {e}"))?;
    }
    if let Some(file) = &stage.backfill.failures_file {
        check_failures_file(file)?;
    }
    Ok(())
}

/// A failures file must be able to exist where it is asked for: found out before a run, not at its
/// first failed item.
pub fn check_failures_file(path: &Path) -> Result<(), String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("failures file {shown} is a directory; name a file in it"));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("failures file {shown}: {} is not a directory", parent.display())),
        Err(_) => {
            Err(format!("failures file {shown}: the directory {} does not exist; create it first", parent.display()))
        }
    }
}

fn region_shape(region: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&region.len())
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && !region.ends_with('-')
        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("{region:?} is not an AWS region; regions look like us-east-1 or eu-west-2"))
    }
}

fn endpoint_shape(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{url:?} is not a usable endpoint ({why}); use e.g. http://localhost:8000"));
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return bad("it must start with http:// or https://");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("no host, or a space in it");
    }
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return bad("the port must be a number from 1 to 65535");
    }
    Ok(())
}

fn profile_shape(profile: &str) -> Result<(), String> {
    if (1..=128).contains(&profile.chars().count()) && !profile.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(format!("{profile:?} is not a profile name; profile names have no spaces"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_endpoints_and_profiles_have_a_shape() {
        for good in ["us-east-1", "eu-west-2", "local"] {
            assert!(region_shape(good).is_ok(), "{good}");
        }
        for bad in ["", "US-EAST-1", "eu west", "1us", "us-", &"a".repeat(65)] {
            assert!(region_shape(bad).is_err(), "{bad}");
        }
        for good in ["http://localhost:8000", "https://dynamodb.eu-west-1.amazonaws.com", "http://[::1]:8000/"] {
            assert!(endpoint_shape(good).is_ok(), "{good}");
        }
        for bad in ["localhost:8000", "ftp://x", "http://", "http://h:0", "http://h:99999", "http://a b", "http://h:x"]
        {
            assert!(endpoint_shape(bad).is_err(), "{bad}");
        }
        assert!(profile_shape("prod").is_ok());
        assert!(profile_shape("").is_err() && profile_shape("a b").is_err());
    }

    #[test]
    fn a_failures_file_needs_an_existing_directory() {
        let dir = std::env::temp_dir();
        assert!(check_failures_file(&dir.join("f.jsonl")).is_ok());
        assert!(check_failures_file(Path::new("f.jsonl")).is_ok(), "the working directory");
        assert!(check_failures_file(&dir).unwrap_err().contains("is a directory"));
        assert!(check_failures_file(Path::new("/no/such/dir/f.jsonl")).unwrap_err().contains("does not exist"));
    }
}
