//! `dynamigrate new`: a dated, commented migration file that runs as written.

use std::path::{Path, PathBuf};

use crate::discovery::{classify, Kind, Name};
use dynamigrate_script::Language;

const TOML: &str = include_str!("../templates/new.toml");
const JAVASCRIPT: &str = include_str!("../templates/new.js");
const TYPESCRIPT: &str = include_str!("../templates/new.ts");
const HELPER_JAVASCRIPT: &str = include_str!("../templates/normalize-item.js");
const HELPER_TYPESCRIPT: &str = include_str!("../templates/normalize-item.ts");

/// `add metadata field` → `add-metadata-field`: lowercase letters and digits, words joined by `-`.
pub fn slug(description: &str) -> Result<String, String> {
    let words: Vec<String> = description
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        return Err(format!("{description:?} has no letters or digits to name the file with"));
    }
    Ok(words.join("-"))
}

/// Writes `dir/YYYYMMDD-slug.ext` for `date` (`YYYYMMDD`) and returns its path. Refuses to
/// overwrite, and refuses an id the folder already has under another extension.
pub fn write(dir: &Path, description: &str, kind: Kind, date: &str) -> Result<PathBuf, String> {
    let slug = slug(description)?;
    let (extension, template) = match kind {
        Kind::Toml => ("toml", TOML),
        Kind::Script(Language::JavaScript) => ("js", JAVASCRIPT),
        Kind::Script(Language::TypeScript) => ("ts", TYPESCRIPT),
    };
    let name = format!("{date}-{slug}.{extension}");
    let Name::Migration(id, _) = classify(&name)? else { return Err(format!("{name} is not a migration name")) };
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let existing = entry.file_name().to_string_lossy().into_owned();
            if matches!(classify(&existing), Ok(Name::Migration(other, _)) if other == id) {
                return Err(format!("{} already has a migration with the id {id}: {existing}", dir.display()));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(&name);
    let text = template.replace("{description}", &description.replace('"', "'"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Writes `dir/normalize-item.{js,ts}`, the application's side of the upgrade chain (a name that
/// is not a migration's, so the folder's discovery leaves it alone). Refuses to overwrite.
pub fn write_helper(dir: &Path, language: Language) -> Result<PathBuf, String> {
    let (name, text) = match language {
        Language::JavaScript => ("normalize-item.js", HELPER_JAVASCRIPT),
        Language::TypeScript => ("normalize-item.ts", HELPER_TYPESCRIPT),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} exists already; delete it first to write it again", path.display())
        } else {
            format!("cannot write {}: {e}", path.display())
        }
    })?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_become_file_names() {
        assert_eq!(slug("Add metadata field").unwrap(), "add-metadata-field");
        assert_eq!(slug("  v2: rename  `old`→`new` ").unwrap(), "v2-rename-old-new");
        assert!(slug("→ ←").is_err());
    }

    #[test]
    fn every_template_loads_as_written() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [Kind::Toml, Kind::Script(Language::JavaScript), Kind::Script(Language::TypeScript)] {
            let sub = dir.path().join(format!("{kind:?}").replace(['(', ')'], ""));
            let path = write(&sub, "add \"metadata\" field", kind, "20261121").unwrap();
            let migrations = crate::discover(&sub, crate::Limits::default()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(migrations.len(), 1, "{}", path.display());
            assert_eq!(dynamigrate::Migration::description(&migrations[0]), "add 'metadata' field");
            let again = write(&sub, "add metadata field", kind, "20261121").unwrap_err();
            assert!(again.contains("already has a migration"), "{again}");
        }
    }

    #[test]
    fn the_helper_is_written_once_and_is_no_migration() {
        let dir = tempfile::tempdir().unwrap();
        for language in [Language::JavaScript, Language::TypeScript] {
            let path = write_helper(dir.path(), language).unwrap();
            assert_eq!(classify(&path.file_name().unwrap().to_string_lossy()), Ok(Name::Other));
            assert!(write_helper(dir.path(), language).unwrap_err().contains("exists already"));
        }
        assert!(crate::discover(dir.path(), crate::Limits::default()).unwrap().is_empty());
    }
}
