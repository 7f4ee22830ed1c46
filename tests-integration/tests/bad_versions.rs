//! The input contract for schema versions and phases: `versions` and `new --helper` flags, the
//! `[versions]` config, and migration files whose upgrade chain or phase cannot work. Each case
//! runs the real binary on DynamoDB Local: the documented exit code, the problem named, no panic,
//! nothing written.

use dynamigrate_tests::bad::{check_all, Case};
use dynamigrate_tests::files::Folder;
use dynamigrate_tests::{put_items, seed_items, World};

#[tokio::test]
async fn versions_flags_and_config_outside_their_shape_are_refused() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(5)).await;
    let folder = Folder::new();
    let dir = folder.dir.display().to_string();
    let cases = vec![
        Case::new("sample of nothing", &["versions", "--sample", "0"], 2, "not a percentage above 0"),
        Case::new("sample past the table", &["versions", "--sample", "101"], 2, "at most 100"),
        Case::new("sample not a number", &["versions", "--sample", "half"], 2, "not a percentage"),
        Case::new("at-least not a number", &["versions", "--at-least", "v3"], 2, "--at-least"),
        Case::new("at-least of a sample", &["versions", "--at-least", "3", "--sample", "5"], 2, "cannot be used with"),
        Case::new("zero segments", &["versions", "--segments", "0"], 2, "segments = 0 is out of range"),
        Case::new("negative read limit", &["versions", "--max-rcu=-1"], 2, "max_rcu = -1"),
        Case::new("a table that does not exist", &["--table", "no-such-table", "versions"], 2, "does not exist"),
        Case::new("helper with a TOML form", &["--dir", &dir, "new", "--helper", "--toml"], 2, "cannot be used with"),
        Case::new("helper with a description", &["--dir", &dir, "new", "x", "--helper"], 2, "cannot be used with"),
        Case::new("new without a description", &["--dir", &dir, "new"], 2, "required"),
        Case::new("empty version attribute", &["versions"], 2, "name the version attribute")
            .config("[versions]\nattribute = \"\"\n"),
        Case::new("unknown versions key", &["versions"], 2, "atribute").config("[versions]\natribute = \"v\"\n"),
        Case::new("negative unversioned", &["versions"], 2, "unversioned").config("[versions]\nunversioned = -1\n"),
    ];
    check_all(&world, cases).await;
}

/// A folder's files: name and text.
type Files = Vec<(&'static str, String)>;

#[tokio::test]
async fn migration_files_whose_chain_or_phase_cannot_work_are_refused() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(5)).await;
    let up = "up = [{ set = \"a\", value = 1 }]";
    let files: Vec<(&str, Files, &str)> = vec![
        (
            "a gap in the chain",
            vec![
                ("20250101-to-v2.toml", format!("description = \"d\"\nupgrade_to = 2\n{up}")),
                ("20250201-to-v4.toml", format!("description = \"d\"\nupgrade_to = 4\n{up}")),
            ],
            "upgrades to v4, but the step before it (20250101_to_v2) upgrades to v2",
        ),
        (
            "a version out of id order",
            vec![
                ("20250101-to-v3.toml", format!("description = \"d\"\nupgrade_to = 3\n{up}")),
                ("20250201-to-v2.toml", format!("description = \"d\"\nupgrade_to = 2\n{up}")),
            ],
            "each upgrade step goes one version further",
        ),
        (
            "an upgrade setting the version",
            vec![("20250101-x.toml", "description = \"d\"\nupgrade_to = 2\nup = [{ version = 2 }]".into())],
            "sets the version itself",
        ),
        (
            "an upgrade with its own version condition",
            vec![("20250101-x.toml", format!("description = \"d\"\nupgrade_to = 2\n{up}\n[select]\nversion_below = 2"))],
            "drop version_below",
        ),
        (
            "a contract step without a requirement",
            vec![("20250101-x.toml", format!("description = \"d\"\nphase = \"contract\"\n{up}"))],
            "needs `requires`",
        ),
        (
            "an unknown phase",
            vec![("20250101-x.js", "export const description = 'd'; export const phase = 'cleanup'; export function transform() { return null; }".into())],
            "unknown phase \"cleanup\"",
        ),
        (
            "a requirement with an unknown key",
            vec![("20250101-x.toml", format!("description = \"d\"\nrequires = {{ at_least = 2 }}\n{up}"))],
            "unknown field `at_least`",
        ),
        (
            "a contract step before the upgrade it waits for",
            vec![
                ("20250101-drop.toml", format!("description = \"d\"\nrequires = {{ version_at_least = 2 }}\n{up}")),
                ("20250201-to-v2.toml", format!("description = \"d\"\nupgrade_to = 2\n{up}")),
            ],
            "comes after it; give the contract step a later id",
        ),
    ];
    let mut folders = Vec::new();
    let mut cases = Vec::new();
    for (name, written, says) in files {
        let folder = Folder::new();
        for (file, text) in &written {
            folder.write(file, text);
        }
        let dir = folder.dir.display().to_string();
        cases.push(Case::new(name, &["--dir", &dir, "run"], 2, says).env("FIXTURE_WITH_FOLDER", "1"));
        folders.push(folder);
    }
    check_all(&world, cases).await;
}
