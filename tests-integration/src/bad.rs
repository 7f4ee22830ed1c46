//! Running the real binary on bad input and checking the contract: the documented exit code, a
//! message that names the problem, no panic, and nothing written anywhere (the world's tables, any
//! other table the case names, and the working directory, a fresh one per case).

use std::path::PathBuf;

use crate::{assert_same, finish, snapshot, unique_name, Ran, World};

/// One bad input.
#[derive(Debug, Clone, Default)]
pub struct Case {
    pub name: &'static str,
    pub args: Vec<String>,
    pub env: Vec<(&'static str, String)>,
    pub env_remove: Vec<&'static str>,
    /// A config file with this text, passed with `--config`.
    pub config: Option<String>,
    /// Flags the world would pass that this case must not get (`--endpoint-url`, `--table`, ...).
    pub omit: Vec<&'static str>,
    /// Other tables that must be left as they are (absent ones stay absent).
    pub tables: Vec<String>,
    pub code: i32,
    /// What the output must say (stderr, or stdout for a successful case).
    pub says: &'static str,
}

impl Case {
    pub fn new(name: &'static str, args: &[&str], code: i32, says: &'static str) -> Self {
        Self { name, args: args.iter().map(|a| a.to_string()).collect(), code, says, ..Self::default() }
    }

    pub fn env(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.env.push((name, value.into()));
        self
    }

    pub fn without_env(mut self, name: &'static str) -> Self {
        self.env_remove.push(name);
        self
    }

    pub fn config(mut self, text: impl Into<String>) -> Self {
        self.config = Some(text.into());
        self
    }

    pub fn omit(mut self, flag: &'static str) -> Self {
        self.omit.push(flag);
        self
    }

    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.tables.push(name.into());
        self
    }
}

/// Runs every case against `world`, collecting every broken promise before failing, so one run
/// shows them all.
pub async fn check_all(world: &World, cases: Vec<Case>) {
    let mut broken = Vec::new();
    for case in cases {
        if let Err(problem) = check(world, &case).await {
            broken.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(broken.is_empty(), "{} case(s) broke the contract:\n{}", broken.len(), broken.join("\n"));
}

async fn check(world: &World, case: &Case) -> Result<(), String> {
    let mut tables = vec![world.table.clone(), world.history.clone()];
    tables.extend(case.tables.iter().cloned());
    let mut before = Vec::new();
    for table in &tables {
        before.push(snapshot(&world.client, table).await);
    }
    let cwd = std::env::temp_dir().join(unique_name("cwd"));
    std::fs::create_dir_all(&cwd).map_err(|e| e.to_string())?;
    let ran = run(world, case, &cwd).await;
    let output = format!("{}{}", ran.stderr, ran.stdout);
    if ran.code != case.code {
        return Err(format!("exit {} instead of {}: {output}", ran.code, case.code));
    }
    if !output.contains(case.says) {
        return Err(format!("does not say {:?}: {output}", case.says));
    }
    if output.contains("panicked") {
        return Err(format!("panicked: {output}"));
    }
    for (table, before) in tables.iter().zip(&before) {
        let after = snapshot(&world.client, table).await;
        if &after != before {
            return Err(format!("table {table} changed"));
        }
    }
    let left: Vec<PathBuf> =
        std::fs::read_dir(&cwd).map_err(|e| e.to_string())?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    if !left.is_empty() {
        return Err(format!("wrote into the working directory: {left:?}"));
    }
    let _ = std::fs::remove_dir(&cwd);
    Ok(())
}

/// The binary with the world's endpoint, tables and credentials, except what the case omits or
/// replaces, in `cwd`.
pub async fn run(world: &World, case: &Case, cwd: &std::path::Path) -> Ran {
    let mut defaults: Vec<String> = Vec::new();
    for (flag, value) in [
        ("--endpoint-url", crate::endpoint()),
        ("--table", world.table.clone()),
        ("--history-table", world.history.clone()),
    ] {
        if !case.omit.contains(&flag) && !case.args.iter().any(|a| a == flag) {
            defaults.extend([flag.to_string(), value]);
        }
    }
    let mut command = world.bare_command();
    command.args(&defaults).args(&case.args).current_dir(cwd);
    if let Some(text) = &case.config {
        let path = std::env::temp_dir().join(format!("{}.toml", unique_name("bad-config")));
        std::fs::write(&path, text).expect("write config");
        command.arg("--config").arg(path);
    }
    for name in &case.env_remove {
        command.env_remove(name);
    }
    command.envs(case.env.iter().map(|(k, v)| (k, v)));
    finish(command.spawn().expect("spawn the binary")).await
}

/// Snapshot helper for cases that check a table by hand.
pub async fn unchanged(world: &World, table: &str, before: &Option<Vec<String>>, what: &str) {
    assert_same(&snapshot(&world.client, table).await, before, what);
}
