// Runs once in every new interpreter, before the migration's code is compiled and before anything
// is frozen. It gives scripts what the AWS SDK's DocumentClient users expect (NumberValue), takes
// away what a pure transform must not have (a clock, modules, the process), and leaves the rest
// of the standard library alone.
(function (global, log) {
  "use strict";

  // As @aws-sdk/lib-dynamodb's NumberValue: the text of a number a double cannot hold exactly.
  // No valueOf, like the SDK's: arithmetic on it would silently round, so it must be explicit
  // (Number(n.value), BigInt(n.value), or a decimal library the script brings).
  class NumberValue {
    constructor(value) {
      if (typeof value === "number" || typeof value === "bigint") value = String(value);
      if (typeof value !== "string") {
        throw new TypeError("NumberValue holds a number's text, e.g. new NumberValue('12345678901234567890.5')");
      }
      this.value = value;
      Object.freeze(this);
    }
    static from(value) {
      return new NumberValue(value);
    }
    toString() {
      return this.value;
    }
    toJSON() {
      return this.value;
    }
    toBigInt() {
      return BigInt(this.value);
    }
  }

  // No clock: a transform runs again after a conflict and must give the same answer. Dates made
  // from a value still work; the run's start time is in the transform's second argument.
  const RealDate = Date;
  const noClock = () => {
    throw new Error("a migration script has no clock (Date.now() and new Date() are disabled): " +
      "use context.startedAt, the run's start time, which is the same for every item");
  };
  function SandboxDate(...args) {
    if (!new.target) noClock();
    if (args.length === 0) noClock();
    return new RealDate(...args);
  }
  SandboxDate.prototype = RealDate.prototype;
  SandboxDate.UTC = RealDate.UTC;
  SandboxDate.parse = RealDate.parse;
  SandboxDate.now = noClock;
  Object.defineProperty(RealDate.prototype, "constructor", { value: SandboxDate });
  RealDate.now = noClock;

  // QuickJS's array built-ins loop over `length` in C without polling the interrupt handler, so
  // `new Array(1e9).join()` would run for minutes past the time limit. No array that fits in the
  // memory limit is this long unless it is sparse: refuse such lengths before the loop starts.
  const MAX_LENGTH = 1 << 24;
  for (const name of Object.getOwnPropertyNames(Array.prototype)) {
    const original = Array.prototype[name];
    if (typeof original !== "function" || name === "constructor") continue;
    const guarded = {
      [name](...args) {
        if (this !== null && this !== undefined && this.length > MAX_LENGTH) {
          throw new RangeError(`${name} on an array of length ${this.length}: migration scripts work on arrays of at most ${MAX_LENGTH} elements`);
        }
        return original.apply(this, args);
      },
    }[name];
    Object.defineProperty(Array.prototype, name, { value: guarded, writable: true, configurable: true });
  }

  const denied = (name, what) => ({
    get() {
      throw new Error(`${name} is not available: migration scripts run in a sandbox with no ${what}`);
    },
  });
  Object.defineProperties(global, {
    Date: { value: SandboxDate },
    require: denied("require", "modules (keep the transform self-contained in its file)"),
    process: denied("process", "process, environment or file system"),
    fetch: denied("fetch", "network"),
    XMLHttpRequest: denied("XMLHttpRequest", "network"),
    WebSocket: denied("WebSocket", "network"),
    NumberValue: { value: NumberValue },
    console: {
      value: {
        log: (...parts) => log(parts.map(String).join(" ")),
        info: (...parts) => log(parts.map(String).join(" ")),
        warn: (...parts) => log(parts.map(String).join(" ")),
        error: (...parts) => log(parts.map(String).join(" ")),
      },
    },
  });

  // The module's exports and top-level values, frozen deeply once it has run, so that nothing an
  // item does can reach the next. A Map or Set cannot be frozen (its entries live in internal
  // slots), so its mutators are shadowed by ones that throw. Typed arrays cannot be frozen either
  // and are left as they are.
  function freezeModule(values) {
    const seen = new Set();
    const stack = [...values];
    while (stack.length) {
      const o = stack.pop();
      if (o === null || (typeof o !== "object" && typeof o !== "function") || seen.has(o)) continue;
      seen.add(o);
      if (ArrayBuffer.isView(o)) continue;
      if (o instanceof Map || o instanceof Set) {
        const kind = o instanceof Map ? "Map" : "Set";
        for (const name of ["set", "add", "delete", "clear"]) {
          Object.defineProperty(o, name, {
            value: () => {
              throw new TypeError(`a ${kind} declared at the top level of a migration script is read-only: ` +
                "it would carry state from one item to the next; make it inside the function");
            },
          });
        }
        stack.push(...(o instanceof Map ? [...o.keys(), ...o.values()] : [...o]));
      }
      Object.freeze(o);
      for (const d of Object.values(Object.getOwnPropertyDescriptors(o))) stack.push(d.value);
    }
  }

  // What the Rust side needs to build and read values; frozen with the rest.
  Object.defineProperty(global, "__dynamigrate", {
    value: {
      NumberValue,
      number: (text) => new NumberValue(text),
      set: (values) => new Set(values),
      isSet: (value) => value instanceof Set,
      setValues: (set) => Array.from(set),
      freezeModule,
    },
  });
})(globalThis, __dynamigrate_log);
