//! One QuickJS interpreter: a runtime with a memory limit, a stack limit and a deadline, the
//! prelude, the migration's factory, and everything frozen. Not `Send`: an interpreter lives on
//! the thread that made it (see `worker.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Object, Persistent, Runtime};

use crate::convert::Kept;
use crate::options::{Limits, RunInfo};

const PRELUDE: &str = include_str!("prelude.js");
/// The prelude's name in stack traces: frames in it are ours, not the script's, and are not shown.
const PRELUDE_NAME: &str = "dynamigrate-prelude";

/// Freezes every object reachable from the global object and a few intrinsics that are not, so
/// nothing a script does to a built-in or a global survives into the next item.
const FREEZE: &str = r#"(function (global) {
  "use strict";
  const roots = [global, Object.getPrototypeOf([][Symbol.iterator]()),
    Object.getPrototypeOf(function* () {}), Object.getPrototypeOf(async function () {}),
    Object.getPrototypeOf(new Map().entries()), Object.getPrototypeOf(new Set().values()),
    Object.getPrototypeOf(""[Symbol.iterator]())];
  const seen = new Set();
  while (roots.length) {
    const o = roots.pop();
    if (o === null || (typeof o !== "object" && typeof o !== "function") || seen.has(o)) continue;
    seen.add(o);
    Object.freeze(o);
    roots.push(Object.getPrototypeOf(o));
    for (const d of Object.values(Object.getOwnPropertyDescriptors(o))) roots.push(d.value, d.get, d.set);
  }
})(globalThis);"#;

/// An interpreter with a migration's factory compiled into it.
pub(crate) struct Sandbox {
    /// Declared first, so dropped first: QuickJS asserts if a handle outlives its runtime.
    kept: Option<Kept>,
    /// The module's exports, evaluated once and frozen.
    exports: Option<Persistent<Object<'static>>>,
    /// Holds its runtime (QuickJS frees the runtime after its last context).
    pub context: Context,
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    limits: Limits,
}

impl Sandbox {
    /// A fresh interpreter running `factory_code` (from [`crate::source::factory`]).
    pub fn new(factory_code: &str, file: &str, limits: Limits, info: &RunInfo) -> Result<Self, String> {
        let runtime = Runtime::new().map_err(|e| format!("starting the script engine: {e}"))?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(limits.stack_bytes);
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let epoch = Instant::now();
        let watched = deadline.clone();
        // QuickJS calls this every few thousand instructions; past the deadline it raises an
        // error the script cannot catch.
        runtime.set_interrupt_handler(Some(Box::new(move || {
            epoch.elapsed().as_nanos() as u64 > watched.load(Ordering::Relaxed)
        })));
        let context = Context::full(&runtime).map_err(|e| format!("starting the script engine: {e}"))?;
        let mut sandbox = Self { kept: None, exports: None, context, deadline, epoch, limits };
        let (kept, exports) = sandbox.load(factory_code, file, info)?;
        sandbox.kept = Some(kept);
        sandbox.exports = Some(exports);
        Ok(sandbox)
    }

    /// The prelude, the built-ins frozen, then the module run once and frozen.
    fn load(
        &self,
        factory_code: &str,
        file: &str,
        info: &RunInfo,
    ) -> Result<(Kept, Persistent<Object<'static>>), String> {
        let file = file.to_string();
        let limits = self.limits.for_loading();
        self.with_deadline(limits.item_timeout, |ctx| {
            let name = file.clone();
            let log = Function::new(ctx.clone(), move |line: String| {
                tracing::info!(script = %name, "{line}");
            })
            .catch(&ctx)
            .map_err(|e| describe(e, limits))?;
            ctx.globals().set("__dynamigrate_log", log).catch(&ctx).map_err(|e| describe(e, limits))?;
            let mut options = rquickjs::context::EvalOptions::default();
            options.global = true;
            options.filename = Some(PRELUDE_NAME.into());
            ctx.eval_with_options::<(), _>(PRELUDE, options).catch(&ctx).map_err(|e| describe(e, limits))?;
            ctx.globals().remove("__dynamigrate_log").catch(&ctx).map_err(|e| describe(e, limits))?;
            let mut options = rquickjs::context::EvalOptions::default();
            options.global = true;
            options.filename = Some(file.clone());
            let factory: Function =
                ctx.eval_with_options(factory_code, options).catch(&ctx).map_err(|e| describe(e, limits))?;
            ctx.eval::<(), _>(FREEZE).catch(&ctx).map_err(|e| describe(e, limits))?;
            let kept = Kept::new(&ctx, info).catch(&ctx).map_err(|e| describe(e, limits))?;
            let exports = evaluate(&ctx, factory).catch(&ctx).map_err(|e| describe(e, limits))?;
            Ok((kept, Persistent::save(&ctx, exports)))
        })
    }

    /// Runs `f` in the interpreter with the per-item deadline armed. Garbage (cycles, which
    /// reference counting does not free) is left to QuickJS's own threshold-driven collector:
    /// measuring the heap after each item walks all of it and cost more than the item itself.
    pub fn with_deadline<R>(&self, limit: Duration, f: impl FnOnce(Ctx<'_>) -> R) -> R {
        let until = self.epoch.elapsed() + limit;
        self.deadline.store(until.as_nanos() as u64, Ordering::Relaxed);
        let result = self.context.with(f);
        self.deadline.store(u64::MAX, Ordering::Relaxed);
        result
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The module's exports, in this call's context.
    pub fn exports<'js>(&self, ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
        match &self.exports {
            Some(exports) => exports.clone().restore(ctx),
            None => Object::new(ctx.clone()),
        }
    }

    pub fn kept(&self) -> &Kept {
        // Set by `new` before the sandbox is handed out.
        self.kept.as_ref().expect("a sandbox is made with its kept values")
    }
}

/// Runs the module's top level (its factory, see `source.rs`) once, after the built-ins are frozen,
/// and freezes its exports and every top-level value: what isolates one item from the next.
fn evaluate<'js>(ctx: &Ctx<'js>, factory: Function<'js>) -> rquickjs::Result<Object<'js>> {
    let module: rquickjs::Array = factory.call(())?;
    let exports: Object = module.get(0)?;
    let bindings: rquickjs::Array = module.get(1)?;
    bindings.set(bindings.len(), exports.clone())?;
    let helpers: Object = ctx.globals().get("__dynamigrate")?;
    helpers.get::<_, Function>("freezeModule")?.call::<_, ()>((bindings,))?;
    Ok(exports)
}

/// A script's failure as one line a person can act on: the error's message and where it was
/// thrown, or what limit it hit.
pub(crate) fn describe(error: CaughtError<'_>, limits: Limits) -> String {
    match error {
        CaughtError::Exception(exception) => {
            let message = exception.message().unwrap_or_default();
            let stack = exception.stack().unwrap_or_default();
            let at = stack
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("at ") && !l.contains(PRELUDE_NAME) && !l.contains("(native)"))
                .unwrap_or("");
            interpret(&message, limits, at)
        }
        // QuickJS throws null when it cannot even allocate the out-of-memory error.
        CaughtError::Value(value) if value.is_null() => {
            format!("{} (or the script threw null)", out_of_memory(limits))
        }
        CaughtError::Value(value) => {
            let text = value.get::<rquickjs::Coerced<String>>().map(|c| c.0).unwrap_or_default();
            format!("the script threw a non-Error value: {text}")
        }
        CaughtError::Error(rquickjs::Error::Allocation) => out_of_memory(limits),
        CaughtError::Error(error) => error.to_string(),
    }
}

fn interpret(message: &str, limits: Limits, at: &str) -> String {
    if message == "interrupted" {
        format!("the script ran longer than its limit of {} ms", limits.item_timeout.as_millis())
    } else if message == "out of memory" {
        out_of_memory(limits)
    } else if message.contains("stack overflow") {
        format!("{message} (the stack limit is {} KiB; is there runaway recursion?)", limits.stack_bytes / 1024)
    } else if message.contains("not extensible") || message.contains("read-only") {
        format!("{message} ({at}): globals and built-ins are frozen; keep state in local variables")
    } else if at.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({at})")
    }
}

fn out_of_memory(limits: Limits) -> String {
    format!("the script used more than its memory limit of {} MiB", limits.memory_bytes / (1024 * 1024))
}
