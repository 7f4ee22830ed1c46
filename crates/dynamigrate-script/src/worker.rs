//! Interpreters on their own threads, one per concurrent caller, with a watchdog.
//!
//! Why threads of their own: QuickJS's interrupt handler stops loops in script code, but a few
//! built-ins run long in C without polling it (`new Array(1e9).indexOf(1)`), and nothing can stop a
//! thread from outside. So a caller waits for its interpreter with a timeout, and an interpreter
//! that does not answer in time is abandoned: its item fails, the caller starts a fresh one, and
//! the stuck thread ends on its own when the built-in returns (its channel is gone by then).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynamigrate::{Change, Item};

use crate::item::{self, Call};
use crate::sandbox::Sandbox;
use crate::{Entry, Limits, RunInfo};

/// Past this many abandoned interpreters, items fail at once instead of starting more threads:
/// a script that wedges built-ins again and again would otherwise pile up busy threads.
const MAX_ABANDONED: usize = 4;

/// What every interpreter of one transform is built from.
pub(crate) struct Blueprint {
    pub code: String,
    pub file: String,
    pub limits: Limits,
    pub entry: Entry,
    pub key_names: Vec<String>,
    pub info: RunInfo,
}

/// The interpreters of one transform. Dropping it ends their threads.
pub(crate) struct Pool {
    blueprint: Arc<Blueprint>,
    idle: Mutex<Vec<Interpreter>>,
    abandoned: AtomicUsize,
}

struct Interpreter {
    jobs: Sender<Item>,
    answers: Receiver<Result<Change, String>>,
}

impl Pool {
    pub fn new(blueprint: Blueprint) -> Self {
        Self { blueprint: Arc::new(blueprint), idle: Mutex::new(Vec::new()), abandoned: AtomicUsize::new(0) }
    }

    /// Runs one item on an idle interpreter (or a new one), within the per-item time limit.
    pub fn run(&self, item: &Item) -> Result<Change, String> {
        let interpreter = match self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(interpreter) => interpreter,
            None => self.start()?,
        };
        if interpreter.jobs.send(item.clone()).is_err() {
            return Err("the script's interpreter stopped unexpectedly".into());
        }
        // The interrupt handler fires at the limit; the margin is for built-ins that do not poll it.
        let patience = self.blueprint.limits.item_timeout * 2 + Duration::from_secs(1);
        match interpreter.answers.recv_timeout(patience) {
            Ok(answer) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(interpreter);
                }
                answer
            }
            Err(RecvTimeoutError::Timeout) => {
                self.abandoned.fetch_add(1, Ordering::Relaxed);
                Err(format!(
                    "the script did not return within {} ms (stuck in a built-in that cannot be interrupted); \
                     its interpreter was abandoned",
                    patience.as_millis()
                ))
            }
            Err(RecvTimeoutError::Disconnected) => Err("the script's interpreter stopped unexpectedly".into()),
        }
    }

    fn start(&self) -> Result<Interpreter, String> {
        if self.abandoned.load(Ordering::Relaxed) >= MAX_ABANDONED {
            return Err(format!("{MAX_ABANDONED} interpreters of this script are stuck; not starting another"));
        }
        let (jobs, job_queue) = mpsc::channel::<Item>();
        let (answer_queue, answers) = mpsc::channel();
        let blueprint = self.blueprint.clone();
        std::thread::Builder::new()
            .name("dynamigrate-script".into())
            .spawn(move || serve(&blueprint, job_queue, answer_queue))
            .map_err(|e| format!("starting a script interpreter thread: {e}"))?;
        Ok(Interpreter { jobs, answers })
    }
}

/// An interpreter thread: build the sandbox, then answer items until the pool lets go.
fn serve(blueprint: &Blueprint, jobs: Receiver<Item>, answers: Sender<Result<Change, String>>) {
    let sandbox = Sandbox::new(&blueprint.code, &blueprint.file, blueprint.limits);
    let call = Call { entry: blueprint.entry, key_names: &blueprint.key_names, info: &blueprint.info };
    for item in jobs {
        let answer = match &sandbox {
            Ok(sandbox) => item::run(sandbox, &call, &item),
            Err(error) => Err(error.clone()),
        };
        if answers.send(answer).is_err() {
            break;
        }
    }
}
