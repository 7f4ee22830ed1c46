//! From a migration file's text to the code the sandbox runs: TypeScript types stripped (oxc), and the
//! module's exports rewritten into a factory function. Pure; unit-tested here.
//!
//! Why a factory: the sandbox calls it once, when it loads the module, and gets the exports and the
//! values of every top-level binding, which it then freezes deeply; so what the module computes at
//! its top level (a lookup table, a helper) is built once, and nothing one item does can reach the
//! next. A top-level `let` or `var` that a function assigns would carry state from item to item
//! whatever is frozen: it is refused here, with its line. The module's text is kept as it is, only
//! the `export` keywords are cut, so line numbers in a JavaScript file's errors are the file's own.

use oxc::allocator::Allocator;
use oxc::ast::ast::{
    BindingPattern, Declaration, ExportDefaultDeclarationKind, ModuleDeclaration, ModuleExportName, Program,
};
use oxc::codegen::Codegen;
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::{GetSpan, SourceType};
use oxc::transformer::{TransformOptions, Transformer};

/// The language of a script file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    JavaScript,
    TypeScript,
}

/// What is wrong with a script's text, with the line it is on when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The name the factory gives an anonymous `export default`.
const DEFAULT_LOCAL: &str = "__dynamigrate_default";

/// Turns a module into `(function () { ...; return [{ exported: local, ... }, [every top-level binding]]; })`.
pub fn factory(text: &str, language: Language) -> Result<String, SourceError> {
    // oxc is young: a panic inside it (it had one for enums without the right option) must be a
    // file's error, not the process's end.
    let parse = || -> Result<(String, Cut), SourceError> {
        let javascript = match language {
            Language::JavaScript => text.to_string(),
            Language::TypeScript => strip_types(text)?,
        };
        let cut = cut_exports(&javascript)?;
        Ok((javascript, cut))
    };
    let (_, (body, exports, bindings)) = std::panic::catch_unwind(parse).map_err(|_| SourceError {
        line: None,
        message: "the TypeScript/JavaScript parser failed on this file (a bug in it); simplify the construct \
                  it last changed, and please report it"
            .into(),
    })??;
    let fields: Vec<String> = exports.iter().map(|(exported, local)| format!("{exported:?}: {local}")).collect();
    Ok(format!(
        "(function () {{ \"use strict\"; {body}\n;return [{{ {} }}, [{}]]; }})",
        fields.join(", "),
        bindings.join(", ")
    ))
}

/// TypeScript to JavaScript without checking types (that is the team's `tsc --noEmit`).
fn strip_types(text: &str) -> Result<String, SourceError> {
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, text, SourceType::ts().with_module(true)).parse();
    if let Some(error) = parsed.diagnostics.errors().next() {
        return Err(diagnostic(text, error));
    }
    let mut program = parsed.program;
    let scoping = SemanticBuilder::new().with_enum_eval(true).build(&program).semantic.into_scoping();
    let path = std::path::Path::new("migration.ts");
    let stripped =
        Transformer::new(&allocator, path, &TransformOptions::default()).build_with_scoping(scoping, &mut program);
    if let Some(error) = stripped.diagnostics.errors().next() {
        return Err(diagnostic(text, error));
    }
    Ok(Codegen::new().build(&program).code)
}

/// Parses JavaScript as a module, refuses imports and re-exports (a sandboxed script has no modules
/// to load), cuts the `export` keywords and returns the body with `(exported, local)` pairs.
type Cut = (String, Vec<(String, String)>, Vec<String>);

fn cut_exports(text: &str) -> Result<Cut, SourceError> {
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, text, SourceType::mjs()).parse();
    if let Some(error) = parsed.diagnostics.errors().next() {
        return Err(diagnostic(text, error));
    }
    let bindings = module_state(text, &parsed.program)?;
    let mut cuts: Vec<(u32, u32, &str)> = Vec::new();
    let mut exports = Vec::new();
    for statement in &parsed.program.body {
        let Some(declaration) = statement.as_module_declaration() else { continue };
        let start = statement.span().start;
        let refuse = |what: &str| SourceError {
            line: Some(line_of(text, start)),
            message: format!(
                "{what} is not available: a migration script runs in a sandbox with no modules to load; \
                 keep the transform self-contained in this file"
            ),
        };
        match declaration {
            ModuleDeclaration::ImportDeclaration(_) => return Err(refuse("import")),
            ModuleDeclaration::ExportAllDeclaration(_) | ModuleDeclaration::ExportFromDeclaration(_) => {
                return Err(refuse("re-exporting from another module"))
            }
            ModuleDeclaration::ExportDeclaration(export) => {
                cuts.push((start, export.declaration.span().start, ""));
                for name in declared_names(&export.declaration) {
                    exports.push((name.clone(), name));
                }
            }
            ModuleDeclaration::ExportNamedDeclaration(export) => {
                cuts.push((start, export.span.end, ""));
                for specifier in &export.specifiers {
                    exports.push((export_name(&specifier.exported), export_name(&specifier.local)));
                }
            }
            ModuleDeclaration::ExportDefaultDeclaration(export) => {
                let (inner_start, local) = default_export(&export.declaration);
                let replacement = if local == DEFAULT_LOCAL { "const __dynamigrate_default = " } else { "" };
                cuts.push((start, inner_start, replacement));
                exports.push(("default".to_string(), local));
            }
            _ => return Err(refuse("this kind of export")),
        }
    }
    let mut body = String::with_capacity(text.len());
    let mut at = 0usize;
    for (from, to, replacement) in cuts {
        body.push_str(&text[at..from as usize]);
        body.push_str(replacement);
        at = to as usize;
    }
    body.push_str(&text[at..]);
    Ok((body, exports, bindings))
}

/// The module's top-level bindings, refusing one that a function assigns: the module is evaluated
/// once per interpreter, so such a variable would carry state from one item to the next.
fn module_state(text: &str, program: &Program) -> Result<Vec<String>, SourceError> {
    let semantic = SemanticBuilder::new().build(program).semantic;
    let scoping = semantic.scoping();
    let in_function = |scope| scoping.scope_ancestors(scope).any(|s| scoping.scope_flags(s).is_function());
    let mut names = Vec::new();
    for (name, symbol) in scoping.get_bindings(scoping.root_scope_id()).iter() {
        let assigned = scoping.get_resolved_references(*symbol).any(|r| r.is_write() && in_function(r.scope_id()));
        if assigned {
            return Err(SourceError {
                line: Some(line_of(text, scoping.symbol_span(*symbol).start)),
                message: format!(
                    "`{name}` is declared at the top level and assigned inside a function, so it would carry \
                     state from one item to the next; declare it inside the function (top-level values are \
                     computed once and frozen)"
                ),
            });
        }
        names.push(name.to_string());
    }
    names.sort();
    Ok(names)
}

fn declared_names(declaration: &Declaration) -> Vec<String> {
    match declaration {
        Declaration::VariableDeclaration(variables) => {
            variables.declarations.iter().flat_map(|d| pattern_names(&d.id)).collect()
        }
        Declaration::FunctionDeclaration(function) => function.id.iter().map(|id| id.name.to_string()).collect(),
        Declaration::ClassDeclaration(class) => class.id.iter().map(|id| id.name.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn pattern_names(pattern: &BindingPattern) -> Vec<String> {
    pattern.get_binding_identifiers().iter().map(|id| id.name.to_string()).collect()
}

fn export_name(name: &ModuleExportName) -> String {
    match name {
        ModuleExportName::IdentifierName(id) => id.name.to_string(),
        ModuleExportName::IdentifierReference(id) => id.name.to_string(),
        ModuleExportName::StringLiteral(s) => s.value.to_string(),
    }
}

/// Where the exported thing starts and the local name it is bound to: a named function or class
/// keeps its name; anything else is bound to [`DEFAULT_LOCAL`].
fn default_export(kind: &ExportDefaultDeclarationKind) -> (u32, String) {
    let named = match kind {
        ExportDefaultDeclarationKind::FunctionDeclaration(f) => f.id.as_ref().map(|id| id.name.to_string()),
        ExportDefaultDeclarationKind::ClassDeclaration(c) => c.id.as_ref().map(|id| id.name.to_string()),
        _ => None,
    };
    (kind.span().start, named.unwrap_or_else(|| DEFAULT_LOCAL.to_string()))
}

fn diagnostic(text: &str, error: &oxc::diagnostics::OxcDiagnostic) -> SourceError {
    let line = error.labels.first().map(|label| line_of(text, label.offset()));
    SourceError { line, message: error.message.to_string() }
}

fn line_of(text: &str, offset: u32) -> usize {
    let end = (offset as usize).min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_become_the_factorys_result_and_lines_stay_put() {
        let js = "export const description = 'd';\nexport function transform(item) {\n  return null;\n}\n";
        let code = factory(js, Language::JavaScript).unwrap();
        assert!(code.starts_with("(function () { \"use strict\"; const description = 'd';\nfunction transform"));
        assert!(
            code.ends_with(
                "return [{ \"description\": description, \"transform\": transform }, [description, transform]]; })"
            ),
            "{code}"
        );
    }

    #[test]
    fn specifiers_and_default_exports_are_collected() {
        let js = "const a = 1; function f() {}\nexport { a as description, f as transform };\nexport default { x: 1 };";
        let code = factory(js, Language::JavaScript).unwrap();
        assert!(code.contains("const __dynamigrate_default = { x: 1 };"), "{code}");
        assert!(code.contains("\"description\": a, \"transform\": f, \"default\": __dynamigrate_default"), "{code}");
    }

    #[test]
    fn typescript_loses_its_types_and_keeps_its_exports() {
        let ts = "interface Item { pk: string }\nexport const description: string = 'd';\n\
                  export function transform(item: Item): Item | null { return { ...item } as Item; }\n";
        let code = factory(ts, Language::TypeScript).unwrap();
        assert!(!code.contains("interface") && !code.contains(": Item"), "{code}");
        assert!(code.contains("\"transform\": transform"), "{code}");
    }

    #[test]
    fn top_level_state_a_function_assigns_is_refused() {
        let js = "const table = { a: 1 };\nlet seen = 0;\nexport function transform() { seen += 1; return null; }";
        let error = factory(js, Language::JavaScript).unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.message.starts_with("`seen` is declared at the top level and assigned"), "{error}");
        // Assigned at the top level only (a TypeScript enum compiles to this): computed once, fine.
        let enum_like = "var Color;\n(function (C) { C[C.Red = 0] = 'Red'; })(Color || (Color = {}));\n\
                         export function transform() { return null; }";
        assert!(factory(enum_like, Language::JavaScript).is_ok());
        assert!(factory(
            "enum Color { Red }\nexport function transform() { return { c: Color.Red }; }",
            Language::TypeScript
        )
        .is_ok());
    }

    #[test]
    fn imports_are_refused_with_their_line() {
        let error = factory("// a comment\nimport fs from 'fs';\nexport function transform() {}", Language::JavaScript)
            .unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.message.starts_with("import is not available"), "{error}");
        let error = factory("export * from './other.js';", Language::JavaScript).unwrap_err();
        assert!(error.message.contains("re-exporting"), "{error}");
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let error = factory("export const a = 1;\nexport function transform( {", Language::JavaScript).unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");
        let error = factory("let x: = 1;", Language::TypeScript).unwrap_err();
        assert_eq!(error.line, Some(1), "{error}");
    }
}
