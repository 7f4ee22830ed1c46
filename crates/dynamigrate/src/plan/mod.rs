//! Pure planning: what state each migration is in, given the local migrations and the history,
//! and which migrations `run` and `down` would execute. No I/O here, so all of it is unit-tested.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attempt::{Attempt, AttemptState, Direction};
use crate::id::MigrationId;
use crate::migration::{LocalMigration, Phase, Required};

/// The state of one migration, from its latest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "direction", rename_all = "snake_case")]
pub enum MigrationState {
    /// Never applied, or rolled back since.
    Pending,
    Applied,
    /// The latest attempt failed; `run` retries a failed `up`, `down` retries a failed `down`.
    Failed(Direction),
    /// The latest attempt is being run right now by the runner that holds the lock.
    Running(Direction),
    /// The latest attempt says `running` but no live runner holds it: its runner died.
    /// Treated like a failure: the next `run` (or `down`) picks it up again.
    Interrupted(Direction),
    /// Applied according to the history, but this binary does not have it.
    Missing,
    /// Applied, but its code changed since: its checksum is not the one recorded when it ran.
    Modified,
}

impl MigrationState {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applied => "applied",
            Self::Failed(Direction::Up) => "failed",
            Self::Failed(Direction::Down) => "failed (down)",
            Self::Running(Direction::Up) => "running",
            Self::Running(Direction::Down) => "running (down)",
            Self::Interrupted(Direction::Up) => "interrupted",
            Self::Interrupted(Direction::Down) => "interrupted (down)",
            Self::Missing => "missing",
            Self::Modified => "modified",
        }
    }

    /// Whether `run` has work to do for a migration in this state.
    fn wants_up(self) -> bool {
        matches!(self, Self::Pending | Self::Failed(Direction::Up) | Self::Interrupted(Direction::Up))
    }

    /// Whether the migration's effects are (or may be partly) in the table, so `down` may revert it.
    fn is_applied(self) -> bool {
        matches!(
            self,
            Self::Applied
                | Self::Modified
                | Self::Missing
                | Self::Failed(Direction::Down)
                | Self::Interrupted(Direction::Down)
        )
    }
}

/// One line of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    pub id: MigrationId,
    pub description: String,
    #[serde(flatten)]
    pub state: MigrationState,
    pub has_down: bool,
    pub attempts: u32,
    pub last_attempt: Option<Attempt>,
    pub phase: Option<Phase>,
    /// The logical table it works on; `None` is the main one.
    pub table: Option<String>,
    pub upgrades_to: Option<u64>,
    pub requires: Option<Required>,
}

/// Every migration known locally or in the history, in id order, with its state.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub entries: Vec<StatusEntry>,
}

/// What `down` should roll back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownTarget {
    /// The newest N applied migrations.
    Steps(usize),
    /// Every applied migration newer than this one, and this one.
    To(MigrationId),
}

/// Why a plan cannot be made. Nothing has run when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}: this binary has no migration with that id")]
    UnknownTarget(MigrationId),
    #[error(
        "the history has applied migrations that this binary does not have: {}; \
         run the binary that has them, or choose to ignore them",
        join(.0)
    )]
    Missing(Vec<MigrationId>),
    #[error(
        "migration {0} has no down, so it cannot be rolled back and nothing was rolled back; \
         write a new forward migration, or restore the table from a backup"
    )]
    NoDown(MigrationId),
    #[error(
        "migration {0} is applied but this binary does not have it, so its down cannot run; nothing was rolled back"
    )]
    DownMissing(MigrationId),
    #[error("{0}: that migration is not applied, so there is nothing to roll back to it")]
    NotApplied(MigrationId),
    #[error(
        "applied migrations were changed after they ran (their checksums differ from the recorded ones): {}; \
         restore the code that ran and put the change in a new migration, or go on past them deliberately",
        join(.0)
    )]
    Modified(Vec<MigrationId>),
    #[error(
        "contract step {0} declares nothing to verify first; give it a requirement (every item at a version, \
         or a filter no item may match), or mark it another phase"
    )]
    Unverified(MigrationId),
    #[error(
        "contract step {contract} requires every item at v{version} or above, but the upgrade {upgrade} \
         that brings them there comes after it; give the contract step a later id"
    )]
    ContractBeforeUpgrade { contract: MigrationId, upgrade: MigrationId, version: u64 },
}

fn join(ids: &[MigrationId]) -> String {
    ids.iter().map(MigrationId::as_str).collect::<Vec<_>>().join(", ")
}

impl Status {
    /// Derives each migration's state from its latest attempt. `history` holds every attempt, or
    /// only the latest of each migration (the ledger's catalog): attempts are numbered from 1, so
    /// the latest one's number is the count. `active_run` is the run id that holds the lock right
    /// now, if any: its `running` attempts are live, anyone else's are dead.
    pub fn derive(local: &[LocalMigration], history: &[Attempt], active_run: Option<&str>) -> Self {
        let mut latest: BTreeMap<&MigrationId, (&Attempt, u32)> = BTreeMap::new();
        for attempt in history {
            let entry = latest.entry(&attempt.migration_id).or_insert((attempt, attempt.attempt));
            if attempt.attempt > entry.0.attempt {
                *entry = (attempt, attempt.attempt);
            }
        }

        let mut entries: BTreeMap<MigrationId, StatusEntry> = BTreeMap::new();
        for migration in local {
            let found = latest.get(&migration.id);
            entries.insert(
                migration.id.clone(),
                StatusEntry {
                    id: migration.id.clone(),
                    description: migration.description.clone(),
                    state: found.map_or(MigrationState::Pending, |(a, _)| {
                        changed(state_of(a, active_run), a, migration.checksum.as_deref())
                    }),
                    has_down: migration.has_down,
                    attempts: found.map_or(0, |(_, n)| *n),
                    last_attempt: found.map(|(a, _)| (*a).clone()),
                    phase: migration.phase,
                    table: migration.table.clone(),
                    upgrades_to: migration.upgrades_to,
                    requires: migration.requires.clone(),
                },
            );
        }
        for (id, (attempt, count)) in latest {
            // A migration that was rolled back and then deleted from the code is history, not missing.
            if entries.contains_key(id) || attempt.state == AttemptState::RolledBack {
                continue;
            }
            entries.insert(
                id.clone(),
                StatusEntry {
                    id: id.clone(),
                    description: attempt.description.clone(),
                    state: MigrationState::Missing,
                    has_down: false,
                    attempts: count,
                    last_attempt: Some(attempt.clone()),
                    phase: None,
                    table: None,
                    upgrades_to: None,
                    requires: None,
                },
            );
        }
        Self { entries: entries.into_values().collect() }
    }

    /// True when something is pending, failed, interrupted, running or missing: `status --check` exits 4.
    pub fn has_work(&self) -> bool {
        self.entries.iter().any(|e| e.state != MigrationState::Applied)
    }

    pub fn count(&self, state: MigrationState) -> usize {
        self.entries.iter().filter(|e| e.state == state).count()
    }

    /// The migrations `run` applies, in id order: pending, failed and interrupted ones, up to and
    /// including `to`. Refuses while the history has applied migrations this binary lacks (an old
    /// binary against newer data), unless `ignore_missing`.
    /// Likewise while an applied migration's code has changed, unless `allow_modified`.
    pub fn plan_up(
        &self,
        to: Option<&MigrationId>,
        ignore_missing: bool,
        allow_modified: bool,
    ) -> Result<Vec<MigrationId>, PlanError> {
        if let Some(target) = to {
            let known = self.entries.iter().any(|e| &e.id == target && e.state != MigrationState::Missing);
            if !known {
                return Err(PlanError::UnknownTarget(target.clone()));
            }
        }
        let missing: Vec<MigrationId> =
            self.entries.iter().filter(|e| e.state == MigrationState::Missing).map(|e| e.id.clone()).collect();
        if !missing.is_empty() && !ignore_missing {
            return Err(PlanError::Missing(missing));
        }
        let modified = self.modified();
        if !modified.is_empty() && !allow_modified {
            return Err(PlanError::Modified(modified));
        }
        self.check_phases()?;
        Ok(self
            .entries
            .iter()
            .filter(|e| e.state.wants_up())
            .filter(|e| to.is_none_or(|target| &e.id <= target))
            .map(|e| e.id.clone())
            .collect())
    }

    /// The migrations `down` reverts, newest first. Refuses, before anything runs, when one of
    /// them has no `down` or is not in this binary.
    pub fn plan_down(&self, target: &DownTarget) -> Result<Vec<MigrationId>, PlanError> {
        let applied: Vec<&StatusEntry> = self.entries.iter().rev().filter(|e| e.state.is_applied()).collect();
        let selected: Vec<&StatusEntry> = match target {
            DownTarget::Steps(n) => applied.into_iter().take(*n).collect(),
            DownTarget::To(id) => {
                if !applied.iter().any(|e| &e.id == id) {
                    return Err(PlanError::NotApplied(id.clone()));
                }
                applied.into_iter().filter(|e| &e.id >= id).collect()
            }
        };
        for entry in &selected {
            if entry.state == MigrationState::Missing {
                return Err(PlanError::DownMissing(entry.id.clone()));
            }
            if !entry.has_down {
                return Err(PlanError::NoDown(entry.id.clone()));
            }
        }
        Ok(selected.into_iter().map(|e| e.id.clone()).collect())
    }
}

impl Status {
    /// The phase gates a plan checks before anything runs: a contract step still to run declares
    /// what it requires, and no upgrade its requirement waits for comes after it (it would wait forever).
    fn check_phases(&self) -> Result<(), PlanError> {
        for contract in self.entries.iter().filter(|e| e.state.wants_up()) {
            let Some(required) = &contract.requires else {
                if contract.phase == Some(Phase::Contract) {
                    return Err(PlanError::Unverified(contract.id.clone()));
                }
                continue;
            };
            let Some(version) = required.version else { continue };
            let late = self.entries.iter().find(|upgrade| {
                upgrade.id > contract.id
                    && upgrade.table == required.table
                    && upgrade.upgrades_to.is_some_and(|to| to <= version)
            });
            if let Some(upgrade) = late {
                return Err(PlanError::ContractBeforeUpgrade {
                    contract: contract.id.clone(),
                    upgrade: upgrade.id.clone(),
                    version,
                });
            }
        }
        Ok(())
    }

    /// Applied migrations whose code changed since they ran.
    pub fn modified(&self) -> Vec<MigrationId> {
        self.entries.iter().filter(|e| e.state == MigrationState::Modified).map(|e| e.id.clone()).collect()
    }
}

/// An applied migration whose checksum differs from the one its attempt recorded is modified.
/// Either side without a checksum (a Rust migration without one, history from before checksums)
/// cannot be compared and is taken as unchanged.
fn changed(state: MigrationState, attempt: &Attempt, local: Option<&str>) -> MigrationState {
    match (state, local, attempt.checksum.as_deref()) {
        (MigrationState::Applied, Some(now), Some(then)) if now != then => MigrationState::Modified,
        _ => state,
    }
}

fn state_of(attempt: &Attempt, active_run: Option<&str>) -> MigrationState {
    match (attempt.state, attempt.direction) {
        (AttemptState::Succeeded, _) => MigrationState::Applied,
        (AttemptState::RolledBack, _) => MigrationState::Pending,
        (AttemptState::Failed, direction) => MigrationState::Failed(direction),
        (AttemptState::Running, direction) if active_run == Some(attempt.ran_by.run_id.as_str()) => {
            MigrationState::Running(direction)
        }
        (AttemptState::Running, direction) => MigrationState::Interrupted(direction),
    }
}

#[cfg(test)]
mod tests;
