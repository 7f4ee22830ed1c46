//! The migrations folder: where it is (`--dir`, the config's `migrations_dir`, or `migrations/`
//! beside the config), its files read and checked, and their ids kept apart from compiled ones.

use std::path::{Path, PathBuf};

use dynamigrate::Migration;
use dynamigrate_files::{discover, FileMigration, Limits};

use crate::config::ConfigFile;

/// Where the migrations folder is, and whether someone named it (a named folder must exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub dir: PathBuf,
    pub named: bool,
}

pub const DEFAULT_DIR: &str = "migrations";

/// `--dir` wins; then the config's `migrations_dir`, relative to the config file; then
/// `migrations/` beside the config file (or in the working directory without one).
pub fn locate(dir: Option<&Path>, config: Option<(&Path, &ConfigFile)>) -> Folder {
    if let Some(dir) = dir {
        return Folder { dir: dir.to_path_buf(), named: true };
    }
    let base = config.and_then(|(path, _)| path.parent()).map(Path::to_path_buf).unwrap_or_default();
    match config.and_then(|(_, file)| file.migrations_dir.as_ref()) {
        Some(dir) => Folder { dir: base.join(dir), named: true },
        None => Folder { dir: base.join(DEFAULT_DIR), named: false },
    }
}

/// Reads the folder's migrations. A default folder that does not exist holds none; a named one
/// must exist. Ids already taken by compiled migrations are problems like any other.
pub fn load(folder: &Folder, compiled: &[Box<dyn Migration>]) -> Result<Vec<FileMigration>, String> {
    if !folder.dir.exists() {
        return if folder.named {
            Err(format!(
                "the migrations folder {} does not exist; create it or fix --dir / migrations_dir",
                folder.dir.display()
            ))
        } else {
            Ok(Vec::new())
        };
    }
    let migrations = discover(&folder.dir, Limits::default()).map_err(|e| e.to_string())?;
    let clashes: Vec<String> = migrations
        .iter()
        .filter(|file| compiled.iter().any(|m| m.id() == file.id()))
        .map(|file| format!("  - {}: the id {} is also a compiled-in migration", file.path().display(), file.id()))
        .collect();
    if !clashes.is_empty() {
        return Err(format!("migration ids must be unique; nothing was run:\n{}", clashes.join("\n")));
    }
    Ok(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_is_found_where_the_user_said_or_beside_the_config() {
        let config = ConfigFile::default();
        let named = ConfigFile { migrations_dir: Some("db/migrations".into()), ..ConfigFile::default() };
        let file = Path::new("deploy/dynamigrate.toml");
        assert_eq!(locate(Some(Path::new("x")), Some((file, &named))), Folder { dir: "x".into(), named: true });
        assert_eq!(locate(None, Some((file, &named))), Folder { dir: "deploy/db/migrations".into(), named: true });
        assert_eq!(locate(None, Some((file, &config))), Folder { dir: "deploy/migrations".into(), named: false });
        assert_eq!(locate(None, None), Folder { dir: "migrations".into(), named: false });
    }
}
