//! Finding the migrations in a folder: which names are migrations, which only look like one, and
//! every problem at once, so a team fixes them in one go and nothing runs from a folder that is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use dynamigrate::MigrationId;
use dynamigrate_script::{Language, Limits};
use sha2::{Digest, Sha256};

use crate::chain;
use crate::format::{self, Parsed};
use crate::migration::FileMigration;

/// What is wrong with a migrations folder: every problem, each naming its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderError {
    pub dir: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for FolderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let s = if count == 1 { "" } else { "s" };
        write!(f, "{count} problem{s} in the migrations folder {}; nothing was run:", self.dir.display())?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FolderError {}

/// What a file name says: a migration (its id and language), or nothing to do with migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    Migration(MigrationId, Kind),
    /// A README, a helper module, a hidden file: not a migration, left alone.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Toml,
    Script(Language),
}

/// Classifies a file name. Anything starting with a digit is meant to be a migration and must be
/// `YYYYMMDD-description.{toml,js,ts}`.
pub fn classify(name: &str) -> Result<Name, String> {
    if !name.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(Name::Other);
    }
    let (_, extension) = name.rsplit_once('.').ok_or("it has no extension; use .toml, .js or .ts")?;
    let kind = match extension {
        "toml" => Kind::Toml,
        "js" | "mjs" => Kind::Script(Language::JavaScript),
        "ts" | "mts" => Kind::Script(Language::TypeScript),
        other => return Err(format!("unknown extension .{other}; a migration file is .toml, .js or .ts")),
    };
    let stem = &name[..name.len() - extension.len() - 1];
    if stem.contains('.') {
        return Err("a migration file name has one dot, before its extension (YYYYMMDD-description.ts)".into());
    }
    let id = MigrationId::from_file_name(stem).map_err(|e| e.to_string())?;
    Ok(Name::Migration(id, kind))
}

/// Reads every migration in `dir`, or says everything that is wrong.
pub fn discover(dir: &Path, limits: Limits) -> Result<Vec<FileMigration>, FolderError> {
    let fail = |problems| FolderError { dir: dir.to_path_buf(), problems };
    let entries = std::fs::read_dir(dir).map_err(|e| fail(vec![format!("cannot read the folder: {e}")]))?;
    let mut names: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) if entry.file_type().is_ok_and(|t| t.is_file()) => match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(name) => problems.push(format!("{}: the name is not UTF-8", name.to_string_lossy())),
            },
            Ok(_) => {}
            Err(e) => problems.push(format!("cannot list the folder: {e}")),
        }
    }
    names.sort();
    let mut by_id: BTreeMap<MigrationId, String> = BTreeMap::new();
    let mut migrations = Vec::new();
    for name in names {
        let (id, kind) = match classify(&name) {
            Ok(Name::Migration(id, kind)) => (id, kind),
            Ok(Name::Other) => continue,
            Err(problem) => {
                problems.push(format!("{name}: {problem}"));
                continue;
            }
        };
        if let Some(first) = by_id.insert(id.clone(), name.clone()) {
            problems.push(format!("{name}: {first} has the same id {id}; one id, one file"));
            continue;
        }
        match load(&dir.join(&name), &name, &id, kind, limits) {
            Ok(migration) => migrations.push(migration),
            Err(problem) => problems.push(format!("{name}: {problem}")),
        }
    }
    if problems.is_empty() {
        link_steps(&mut migrations).map_err(fail)?;
        Ok(migrations)
    } else {
        Err(fail(problems))
    }
}

/// Hands every upgrade file the steps of its table.
fn link_steps(migrations: &mut [FileMigration]) -> Result<(), Vec<String>> {
    let linked = chain::link(migrations.iter().filter_map(FileMigration::step).collect())?;
    for migration in migrations {
        if let Some((table, _)) = migration.step() {
            if let Some(steps) = linked.get(&table) {
                migration.link(steps.clone());
            }
        }
    }
    Ok(())
}

/// Reads and checks one file.
pub fn load(path: &Path, name: &str, id: &MigrationId, kind: Kind, limits: Limits) -> Result<FileMigration, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let checksum = Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let parsed: Parsed = match kind {
        Kind::Toml => format::toml_file(&text)?,
        Kind::Script(language) => format::script_file(name, &text, language, limits)?,
    };
    if let Some(inside) = &parsed.id {
        if inside != id.as_str() {
            return Err(format!("its id {inside:?} does not match the file name, which gives {id}"));
        }
    }
    Ok(FileMigration::new(id.clone(), path.to_path_buf(), checksum, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_migrations_others_or_wrong() {
        let id = |s: &str| MigrationId::parse(s).unwrap();
        assert_eq!(
            classify("20250125-add-metadata.ts"),
            Ok(Name::Migration(id("20250125_add_metadata"), Kind::Script(Language::TypeScript)))
        );
        assert_eq!(classify("20250125-x.toml"), Ok(Name::Migration(id("20250125_x"), Kind::Toml)));
        assert_eq!(classify("README.md"), Ok(Name::Other));
        assert_eq!(classify("normalize.ts"), Ok(Name::Other));
        assert_eq!(classify(".20250101-x.ts.swp"), Ok(Name::Other));
        for (bad, expected) in [
            ("20251301-bad-month.ts", "invalid migration id"),
            ("20250101-x.py", "unknown extension .py"),
            ("20250101", "no extension"),
            ("20250101-x.test.ts", "one dot"),
            ("2025-01-01-x.ts", "invalid migration id"),
            ("20250101-Upper.ts", "invalid migration id"),
        ] {
            let error = classify(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }
}
