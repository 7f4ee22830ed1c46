//! `new`: a dated migration file from a template, or the application's `normalize-item` helper.

use std::path::PathBuf;

use dynamigrate_files::{scaffold, Kind};
use dynamigrate_script::Language;

use crate::{exit, folder, output, Failure};

/// `new`: writes a dated migration file from a template into the folder (or, with `--helper`,
/// the application's `normalize-item` module) and prints its path.
pub(crate) fn new_file(
    folder: &folder::Folder,
    description: Option<&str>,
    helper: bool,
    (toml, js): (bool, bool),
    json: bool,
) -> Result<u8, Failure> {
    let path = match description {
        _ if helper => {
            let language = if js { Language::JavaScript } else { Language::TypeScript };
            scaffold::write_helper(&folder.dir, language).map_err(Failure::invalid)?
        }
        Some(description) => new_migration(folder, description, toml, js)?,
        None => return Err(Failure::invalid("name what the migration does: dynamigrate new \"add status\"")),
    };
    if json {
        output::json(&serde_json::json!({ "path": path }));
    } else {
        println!("{}", path.display());
    }
    Ok(exit::OK)
}

fn new_migration(folder: &folder::Folder, description: &str, toml: bool, js: bool) -> Result<PathBuf, Failure> {
    let kind = match (toml, js) {
        (true, _) => Kind::Toml,
        (_, true) => Kind::Script(dynamigrate_script::Language::JavaScript),
        _ => Kind::Script(dynamigrate_script::Language::TypeScript),
    };
    let today: String = dynamigrate::clock::rfc3339(dynamigrate::clock::now_ms())
        .chars()
        .take(10)
        .filter(char::is_ascii_digit)
        .collect();
    scaffold::write(&folder.dir, description, kind, &today).map_err(Failure::invalid)
}
