//! Confirmation before changing a stage that asks for it (prod by default): show the plan, then
//! make the user type the stage name. With no terminal and no `--yes`, refuse.

use std::io::{BufRead, IsTerminal, Write};

use dynamigrate::runner::PlannedMigration;

use crate::config::Stage;

/// Shows the plan and asks for the stage name. Refuses without a terminal.
pub fn confirm(stage: &Stage, action: &str, plan: &[PlannedMigration]) -> Result<(), String> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "Stage {} asks for confirmation before it is changed.", stage.name);
    let _ = writeln!(err, "  {action} {} migration(s) on table {}", plan.len(), stage.table.as_deref().unwrap_or("?"));
    let _ = writeln!(
        err,
        "  region {}, endpoint {}, history table {}",
        stage.region.as_deref().unwrap_or("(from the AWS chain)"),
        stage.endpoint_url.as_deref().unwrap_or("(AWS default)"),
        stage.history_table
    );
    for planned in plan {
        let _ = writeln!(err, "    {}  {}", planned.id, planned.description);
    }
    drop(err);
    type_to_continue(&format!("stage {} needs confirmation", stage.name), "the stage name", &stage.name)
}

/// Asks the user to type `expected` (`naming` says what it is). Refuses without a terminal.
pub fn type_to_continue(why: &str, naming: &str, expected: &str) -> Result<(), String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!("{why} and there is no terminal to ask on; pass --yes to proceed. Nothing was changed"));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "Type {naming} ({expected}) to continue: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| format!("cannot read the confirmation: {e}"))?;
    if answer.trim() == expected {
        Ok(())
    } else {
        Err("not confirmed; nothing was changed".to_string())
    }
}
