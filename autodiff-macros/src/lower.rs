//! Lowers the body of a function from syn's syntax tree to the SSA IR, rejecting what is
//! outside the supported subset with one spanned error per mistake.
//!
//! Variables are tracked in an environment mapping each name to its current value; an
//! assignment just rebinds the name, and at the end of an `if`/`match` every variable whose
//! value differs between arms becomes a result of the instruction (Braun et al. 2013 on a
//! structured CFG). Early `return`s are removed by continuation: the statements after an
//! `if` that returns in some arm are lowered into each arm that falls through, so every
//! block of the IR ends by yielding, and the function's value is what its entry block yields.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use std::collections::HashMap;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{BinOp, Expr, Ident, ItemFn, Pat, Stmt, UnOp};

use crate::args::Signature;
use crate::errors::Errors;
use crate::ir::{
    BinaryOp, BitOp, Block, CompareOp, Function, Opaque, OpaqueKind, OpaquePiece, Opcode, UnaryOp,
    Value,
};
use crate::primitives;

/// Upper bound on instructions, so that duplicated continuations cannot blow up compile time.
const MAX_INSTRUCTIONS: usize = 100_000;

/// The result of lowering: the IR and the `let` type annotations found in the body.
pub struct Lowered {
    /// The function in SSA form.
    pub func: Function,
    /// Values the user annotated with a type (`let y: f64 = ...`).
    pub annotations: HashMap<crate::ir::Value, syn::Type>,
}

/// What an expression evaluates to: a value, a tuple of operands, or nothing.
#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Value(Value),
    Tuple(Vec<Operand>),
    Unit,
}

impl Operand {
    fn flatten(&self, out: &mut Vec<Value>) {
        match self {
            Operand::Value(v) => out.push(*v),
            Operand::Tuple(items) => items.iter().for_each(|i| i.flatten(out)),
            Operand::Unit => {}
        }
    }

    fn values(&self) -> Vec<Value> {
        let mut out = Vec::new();
        self.flatten(&mut out);
        out
    }

    /// Rebuilds an operand of the same shape from `values`, consumed in order.
    fn rebuild(&self, values: &mut impl Iterator<Item = Value>) -> Operand {
        match self {
            Operand::Value(_) => Operand::Value(values.next().expect("shape matches")),
            Operand::Tuple(items) => {
                Operand::Tuple(items.iter().map(|i| i.rebuild(values)).collect())
            }
            Operand::Unit => Operand::Unit,
        }
    }

    fn same_shape(&self, other: &Operand) -> bool {
        match (self, other) {
            (Operand::Value(_), Operand::Value(_)) | (Operand::Unit, Operand::Unit) => true,
            (Operand::Tuple(a), Operand::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_shape(y))
            }
            _ => false,
        }
    }
}

/// The state of a variable.
#[derive(Clone, Debug, PartialEq)]
enum Slot {
    Bound(Operand),
    /// Declared by `let x;` and not yet assigned on every path.
    Uninit,
    /// Its initialiser had an error already reported; uses stay silent.
    Poisoned,
}

#[derive(Clone, Debug)]
struct Binding {
    name: String,
    slot: Slot,
}

/// One element of a statement sequence lowered in "function tail" position, where a
/// `return` may appear.
#[derive(Clone, Copy)]
enum Item<'a> {
    Stmt(&'a Stmt),
    /// An expression in statement position (an arm body, an `else if`).
    StmtExpr(&'a Expr),
    /// The value of the function when control reaches it.
    Tail(&'a Expr),
    /// Leaves a block scope: the environment shrinks back to this length.
    ScopeEnd(usize),
}

/// One arm of an `if`/`match` to lower: the name bound to the scrutinee, and the body.
type Arm<'a, 'e> = (
    Option<Ident>,
    &'a dyn Fn(&mut Lowerer<'e>) -> Option<Operand>,
);

struct Lowerer<'e> {
    func: Function,
    env: Vec<Binding>,
    block: Block,
    errors: &'e mut Errors,
    generics: Vec<Ident>,
    annotations: HashMap<Value, syn::Type>,
    output_arity: usize,
    too_large: bool,
}

/// Lowers `item` to SSA, or records errors and returns None.
pub fn lower(item: &ItemFn, sig: &Signature, errors: &mut Errors) -> Option<Lowered> {
    let before = errors.len();
    let mut func = Function::new(item.sig.ident.clone());
    let mut env = Vec::new();
    for p in &sig.params {
        let v = func.add_param(p.name.clone(), p.ty.clone(), p.role);
        env.push(Binding {
            name: p.name.to_string(),
            slot: Slot::Bound(Operand::Value(v)),
        });
    }
    let entry = func.entry;
    let mut lowerer = Lowerer {
        func,
        env,
        block: entry,
        errors,
        generics: crate::args::type_params(item),
        annotations: HashMap::new(),
        output_arity: match &sig.output {
            crate::args::Output::Scalar(_) => 1,
            crate::args::Output::Tuple(t) => t.len(),
        },
        too_large: false,
    };
    let items = block_items(&item.block, None);
    let result = lowerer.lower_seq(&items, item.block.brace_token.span.close());
    if let Some(values) = result {
        lowerer.func.blocks[entry.index()].yields = values;
    }
    if lowerer.errors.len() > before {
        return None;
    }
    Some(Lowered {
        func: lowerer.func,
        annotations: lowerer.annotations,
    })
}

/// The statements of a block as sequence items; the trailing expression becomes a tail.
fn block_items<'a>(block: &'a syn::Block, scope_end: Option<usize>) -> Vec<Item<'a>> {
    let mut items = Vec::new();
    for (i, stmt) in block.stmts.iter().enumerate() {
        match stmt {
            Stmt::Expr(e, None) if i + 1 == block.stmts.len() => items.push(Item::Tail(e)),
            _ => items.push(Item::Stmt(stmt)),
        }
    }
    if let Some(len) = scope_end {
        items.push(Item::ScopeEnd(len));
    }
    items
}

/// Whether `return` occurs in `node` outside closures and nested items.
fn contains_return<T: ?Sized>(node: &T, visit: impl FnOnce(&mut ReturnFinder, &T)) -> bool {
    let mut finder = ReturnFinder(false);
    visit(&mut finder, node);
    finder.0
}

struct ReturnFinder(bool);

impl<'ast> Visit<'ast> for ReturnFinder {
    fn visit_expr_return(&mut self, _: &'ast syn::ExprReturn) {
        self.0 = true;
    }
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

fn expr_returns(e: &Expr) -> bool {
    contains_return(e, |f, e| f.visit_expr(e))
}

fn stmt_returns(s: &Stmt) -> bool {
    contains_return(s, |f, s| f.visit_stmt(s))
}

/// What an unsupported expression is, as the subject of "is not supported".
fn describe(e: &Expr) -> &'static str {
    match e {
        Expr::Array(_) => "an array expression",
        Expr::Async(_) => "an `async` block",
        Expr::Await(_) => "`.await`",
        Expr::Break(_) => "`break` outside a loop",
        Expr::Continue(_) => "`continue` outside a loop",
        Expr::Field(_) => "field access",
        Expr::ForLoop(_) => "this `for` loop",
        Expr::Index(_) => "indexing",
        Expr::Let(_) => "a `let` condition",
        Expr::Loop(_) => "`loop`",
        Expr::Range(_) => "a range outside a `for` loop",
        Expr::RawAddr(_) => "a raw address",
        Expr::Repeat(_) => "an array repeat expression",
        Expr::Struct(_) => "a struct expression",
        Expr::Try(_) => "the `?` operator",
        Expr::TryBlock(_) => "a `try` block",
        Expr::While(_) => "this `while` loop",
        Expr::Yield(_) => "`yield`",
        _ => "this expression",
    }
}

impl<'e> Lowerer<'e> {
    // ---- instruction helpers ----

    fn emit(&mut self, opcode: Opcode, args: Vec<Value>, results: usize, span: Span) -> Vec<Value> {
        if self.func.insts.len() >= MAX_INSTRUCTIONS && !self.too_large {
            self.too_large = true;
            self.errors.push(
                self.func.name.span(),
                "this function is too large to differentiate after expanding its early returns; split it into several #[differentiate] functions",
            );
        }
        let inst = self
            .func
            .append(self.block, opcode, args, Vec::new(), results, span);
        self.func.inst(inst).results.clone()
    }

    fn emit1(&mut self, opcode: Opcode, args: Vec<Value>, span: Span) -> Value {
        self.emit(opcode, args, 1, span)[0]
    }

    fn constant(&mut self, tokens: TokenStream, span: Span) -> Value {
        self.emit1(Opcode::Const(tokens), Vec::new(), span)
    }

    fn name_value(&mut self, v: Value, name: &Ident) {
        let data = &mut self.func.values[v.index()];
        if data.name.is_none() {
            data.name = Some(name.to_string());
        }
    }

    // ---- environment ----

    fn lookup(&self, name: &str) -> Option<&Slot> {
        self.env
            .iter()
            .rev()
            .find(|b| b.name == name)
            .map(|b| &b.slot)
    }

    fn declare(&mut self, name: &Ident, slot: Slot) {
        if let Slot::Bound(Operand::Value(v)) = &slot {
            self.name_value(*v, name);
        }
        self.env.push(Binding {
            name: name.to_string(),
            slot,
        });
    }

    fn assign(&mut self, name: &Ident, slot: Slot) -> bool {
        if let Slot::Bound(Operand::Value(v)) = &slot {
            self.name_value(*v, name);
        }
        match self
            .env
            .iter_mut()
            .rev()
            .find(|b| b.name == *name.to_string())
        {
            Some(binding) => {
                binding.slot = slot;
                true
            }
            None => false,
        }
    }

    // ---- sequences in tail position (returns allowed) ----

    /// Lowers items until the function's value is known; returns its flattened values.
    fn lower_seq(&mut self, items: &[Item], end_span: Span) -> Option<Vec<Value>> {
        for (i, item) in items.iter().enumerate() {
            let rest = &items[i + 1..];
            match *item {
                Item::ScopeEnd(len) => self.env.truncate(len),
                Item::Tail(e) => {
                    if expr_returns(e) {
                        return self.lower_returning(e, rest, end_span);
                    }
                    let value = if self.output_arity > 1 {
                        self.lower_expr_expecting(e, self.output_arity)?
                    } else {
                        self.lower_expr(e)?
                    };
                    return self.return_values(&value, e.span());
                }
                Item::StmtExpr(e) | Item::Stmt(Stmt::Expr(e, _)) if expr_returns(e) => {
                    return self.lower_returning(e, rest, end_span);
                }
                Item::StmtExpr(e) => {
                    self.lower_expr(e);
                }
                Item::Stmt(s) => {
                    let let_else = matches!(s, Stmt::Local(l) if l.init.as_ref().is_some_and(|i| i.diverge.is_some()));
                    if stmt_returns(s) && !let_else {
                        self.nested_return(s);
                        continue;
                    }
                    self.lower_stmt(s);
                }
            }
        }
        self.errors.push(
            end_span,
            "the function's value is missing here; end the body with the value to return",
        );
        None
    }

    /// Lowers an expression in statement position that contains a `return`, followed by
    /// the rest of the sequence `rest` on every path that falls through.
    fn lower_returning(&mut self, e: &Expr, rest: &[Item], end_span: Span) -> Option<Vec<Value>> {
        match e {
            Expr::Return(r) => match &r.expr {
                Some(value) => {
                    if expr_returns(value) {
                        self.nested_return(&**value);
                        return None;
                    }
                    let value = self.lower_expr(value)?;
                    self.return_values(&value, r.span())
                }
                None => {
                    // rustc reports the missing value itself
                    self.errors.fail_silently();
                    None
                }
            },
            Expr::Paren(p) => self.lower_returning(&p.expr, rest, end_span),
            Expr::Block(b) if b.label.is_none() => {
                let mut items = block_items(&b.block, Some(self.env.len()));
                // the block's trailing expression is a statement here: its value is discarded
                for item in &mut items {
                    if let Item::Tail(t) = *item {
                        *item = Item::StmtExpr(t);
                    }
                }
                items.extend_from_slice(rest);
                self.lower_seq(&items, end_span)
            }
            Expr::If(expr_if) => {
                let cond = self.lower_condition(&expr_if.cond)?;
                let env_len = self.env.len();
                let mut then_items = block_items(&expr_if.then_branch, Some(env_len));
                for item in &mut then_items {
                    if let Item::Tail(t) = *item {
                        *item = Item::StmtExpr(t);
                    }
                }
                then_items.extend_from_slice(rest);
                let mut else_items = Vec::new();
                if let Some((_, else_expr)) = &expr_if.else_branch {
                    else_items.push(Item::StmtExpr(else_expr));
                }
                else_items.extend_from_slice(rest);
                self.returning_arms(
                    Opcode::If,
                    cond,
                    vec![then_items, else_items],
                    Vec::new(),
                    e.span(),
                    end_span,
                )
            }
            Expr::Match(m) => {
                let scrutinee = self.lower_single(&m.expr)?;
                let mut arms_items = Vec::new();
                let mut pats = Vec::new();
                let mut binders = Vec::new();
                for arm in &m.arms {
                    let binder = self.check_arm(arm)?;
                    pats.push(arm.pat.clone());
                    binders.push(binder);
                    let mut items = vec![Item::StmtExpr(&arm.body)];
                    items.extend_from_slice(rest);
                    arms_items.push(items);
                }
                self.returning_arms(
                    Opcode::Match(pats),
                    scrutinee,
                    arms_items,
                    binders,
                    e.span(),
                    end_span,
                )
            }
            other => {
                self.nested_return(other);
                None
            }
        }
    }

    fn returning_arms(
        &mut self,
        opcode: Opcode,
        selector: Value,
        arms_items: Vec<Vec<Item>>,
        binders: Vec<Option<Ident>>,
        span: Span,
        end_span: Span,
    ) -> Option<Vec<Value>> {
        let outer_block = self.block;
        let snapshot = self.env.clone();
        let mut arms = Vec::new();
        let mut ok = true;
        for (i, items) in arms_items.iter().enumerate() {
            let arm_block = self.func.create_block();
            self.block = arm_block;
            let env_len = self.env.len();
            if let Some(Some(binder)) = binders.get(i) {
                self.declare(binder, Slot::Bound(Operand::Value(selector)));
            }
            let mut items = items.clone();
            if binders.get(i).is_some_and(Option::is_some) {
                items.insert(1, Item::ScopeEnd(env_len));
            }
            match self.lower_seq(&items, end_span) {
                Some(values) => self.func.blocks[arm_block.index()].yields = values,
                None => ok = false,
            }
            self.env = snapshot.clone();
            arms.push(arm_block);
        }
        self.block = outer_block;
        if !ok {
            return None;
        }
        let inst = self.func.append(
            outer_block,
            opcode,
            vec![selector],
            arms,
            self.output_arity,
            span,
        );
        Some(self.func.inst(inst).results.clone())
    }

    /// Reports a `return` the continuation lowering cannot place, at the `return` itself.
    fn nested_return(&mut self, node: &dyn ToTokens) {
        struct First(Option<syn::ExprReturn>);
        impl<'ast> Visit<'ast> for First {
            fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
                if self.0.is_none() {
                    self.0 = Some(r.clone());
                }
            }
            fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
            fn visit_item(&mut self, _: &'ast syn::Item) {}
        }
        let mut first = First(None);
        if let Ok(stmt) = syn::parse2::<Stmt>(node.to_token_stream()) {
            first.visit_stmt(&stmt);
        } else if let Ok(expr) = syn::parse2::<Expr>(node.to_token_stream()) {
            first.visit_expr(&expr);
        }
        let message = "`return` is supported as a statement, or inside `if`/`match` arms in statement position, not inside an expression; assign the value to a variable and return it from there";
        match first.0 {
            Some(r) => self.errors.push_spanned(&r, message),
            None => self.errors.push_spanned(node, message),
        }
    }

    fn return_values(&mut self, value: &Operand, span: Span) -> Option<Vec<Value>> {
        let values = value.values();
        let shape_ok = match value {
            Operand::Value(_) => self.output_arity == 1,
            Operand::Tuple(_) => values.len() == self.output_arity && self.output_arity > 1,
            Operand::Unit => false,
        };
        if !shape_ok {
            if self.output_arity > 1 && matches!(value, Operand::Value(_)) {
                self.errors.push(
                    span,
                    "return a tuple expression `(a, b, ...)` with one float per element of the return type, or destructure the value first: `let (a, b) = ...;`",
                );
            } else {
                // a value of the wrong shape: rustc reports the type mismatch itself
                self.errors.fail_silently();
            }
            return None;
        }
        Some(values)
    }

    // ---- statements ----

    fn lower_stmt(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::Local(local) => self.lower_local(local),
            Stmt::Expr(e, _) => {
                self.lower_expr(e);
            }
            Stmt::Item(item) => self.errors.push_spanned(
                item,
                "items inside a #[differentiate] function are not supported; move this item outside the function",
            ),
            Stmt::Macro(m) => self.unsupported_macro(&m.mac),
        }
    }

    fn unsupported_macro(&mut self, mac: &syn::Macro) {
        let name = mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        self.errors.push_spanned(
            &mac.path,
            format!("macro `{name}!` is not supported inside #[differentiate]; compute the value with plain expressions, or call a helper function on constants"),
        );
    }

    fn lower_local(&mut self, local: &syn::Local) {
        if let Some(init) = &local.init {
            if let Some((else_token, _)) = &init.diverge {
                self.errors.push(
                    else_token.span,
                    "`let ... else` is not supported; use `match` or `if` instead",
                );
                return;
            }
        }
        let (pat, annotation) = match &local.pat {
            Pat::Type(t) => (&*t.pat, Some((*t.ty).clone())),
            other => (other, None),
        };
        let Some(init) = &local.init else {
            // `let x;` declares a variable assigned later on every path.
            match pat {
                Pat::Ident(p) if p.subpat.is_none() => self.declare(&p.ident, Slot::Uninit),
                other => {
                    self.errors.push_spanned(
                        other,
                        "declare one variable at a time when it has no initial value: `let a; let b;`",
                    );
                    self.poison_pattern(other);
                }
            }
            return;
        };
        let arity = pattern_arity(pat);
        let value = match arity {
            Some(n) if n > 1 => self.lower_expr_expecting(&init.expr, n),
            _ => self.lower_expr(&init.expr),
        };
        match value {
            Some(value) => {
                if let (Some(ty), Operand::Value(v)) = (annotation, &value) {
                    self.annotations.insert(*v, ty);
                }
                self.bind_pattern(pat, value, true);
            }
            None => self.poison_pattern(pat),
        }
    }

    fn poison_pattern(&mut self, pat: &Pat) {
        match pat {
            Pat::Ident(p) => self.declare(&p.ident, Slot::Poisoned),
            Pat::Tuple(t) => t.elems.iter().for_each(|p| self.poison_pattern(p)),
            Pat::Type(t) => self.poison_pattern(&t.pat),
            Pat::Paren(p) => self.poison_pattern(&p.pat),
            _ => {}
        }
    }

    fn bind_pattern(&mut self, pat: &Pat, value: Operand, declare: bool) {
        match (pat, value) {
            (Pat::Ident(p), value) if p.subpat.is_none() && p.by_ref.is_none() => {
                if declare {
                    self.declare(&p.ident, Slot::Bound(value));
                } else if !self.assign(&p.ident, Slot::Bound(value)) {
                    self.errors.push_spanned(&p.ident, "assignment to an unknown variable");
                }
            }
            (Pat::Wild(_), _) => {}
            (Pat::Paren(p), value) => self.bind_pattern(&p.pat, value, declare),
            (Pat::Type(t), value) => self.bind_pattern(&t.pat, value, declare),
            (Pat::Tuple(t), Operand::Tuple(items)) if t.elems.len() == items.len() => {
                for (p, item) in t.elems.iter().zip(items) {
                    self.bind_pattern(p, item, declare);
                }
            }
            (Pat::Tuple(t), _) => self.errors.push_spanned(
                t,
                "this tuple pattern does not match the shape of the value; destructure tuple expressions, calls, or `if`/`match` expressions yielding tuples",
            ),
            (other, _) => self.errors.push_spanned(
                other,
                "this pattern is not supported; bind a name, `_`, or a tuple of those",
            ),
        }
    }

    // ---- expressions ----

    fn lower_single(&mut self, e: &Expr) -> Option<Value> {
        match self.lower_expr(e)? {
            Operand::Value(v) => Some(v),
            _ => {
                self.errors
                    .push_spanned(e, "expected a single value here, not a tuple or `()`");
                None
            }
        }
    }

    fn lower_condition(&mut self, cond: &Expr) -> Option<Value> {
        if let Expr::Let(l) = cond {
            self.errors
                .push(l.let_token.span, "`if let` is not supported; use `match`");
            return None;
        }
        self.lower_single(cond)
    }

    /// Lowers an expression whose value is destructured into `arity` parts; calls then
    /// produce that many results.
    fn lower_expr_expecting(&mut self, e: &Expr, arity: usize) -> Option<Operand> {
        match e {
            Expr::Call(call) => self.lower_call(call, arity),
            Expr::Paren(p) => self.lower_expr_expecting(&p.expr, arity),
            _ => self.lower_expr(e),
        }
    }

    fn lower_expr(&mut self, e: &Expr) -> Option<Operand> {
        let span = e.span();
        match e {
            Expr::Lit(lit) => Some(Operand::Value(self.constant(lit.to_token_stream(), span))),
            Expr::Path(path) => self.lower_path(path),
            Expr::Paren(p) => self.lower_expr(&p.expr),
            Expr::Group(g) => self.lower_expr(&g.expr),
            Expr::Tuple(t) => {
                let mut items = Vec::new();
                for elem in &t.elems {
                    items.push(self.lower_expr(elem)?);
                }
                Some(if items.is_empty() {
                    Operand::Unit
                } else {
                    Operand::Tuple(items)
                })
            }
            Expr::Unary(u) => match u.op {
                UnOp::Neg(_) => {
                    let arg = self.lower_single(&u.expr)?;
                    Some(Operand::Value(self.emit1(
                        Opcode::Unary(UnaryOp::Neg),
                        vec![arg],
                        span,
                    )))
                }
                UnOp::Not(_) => {
                    let arg = self.lower_single(&u.expr)?;
                    Some(Operand::Value(self.emit1(
                        Opcode::Unary(UnaryOp::Not),
                        vec![arg],
                        span,
                    )))
                }
                UnOp::Deref(_) => {
                    let arg = self.lower_single(&u.expr)?;
                    let opaque = Opaque {
                        pieces: vec![OpaquePiece::Tokens(quote!(*)), OpaquePiece::Hole(0)],
                        label: "deref".into(),
                        kind: OpaqueKind::Method("`*` (dereference)".into()),
                    };
                    Some(Operand::Value(self.emit1(
                        Opcode::Opaque(opaque),
                        vec![arg],
                        span,
                    )))
                }
                _ => {
                    self.errors
                        .push_spanned(u, "this unary operator is not supported");
                    None
                }
            },
            Expr::Binary(b) => self.lower_binary(b),
            Expr::Assign(a) => {
                let value = self.lower_expr(&a.right)?;
                self.assign_place(&a.left, value);
                Some(Operand::Unit)
            }
            Expr::Cast(c) => {
                let arg = self.lower_single(&c.expr)?;
                Some(Operand::Value(self.emit1(
                    Opcode::Cast((*c.ty).clone()),
                    vec![arg],
                    span,
                )))
            }
            Expr::Block(b) => {
                if let Some(label) = &b.label {
                    self.errors
                        .push_spanned(label, "labeled blocks are not supported; remove the label and use `if`/`match` to choose the value");
                    return None;
                }
                self.lower_block(&b.block)
            }
            Expr::Unsafe(u) => {
                self.errors.push(u.unsafe_token.span, "`unsafe` blocks cannot be differentiated; move the unsafe code into a function called on constants, or write it safely");
                None
            }
            Expr::If(i) => self.lower_if(i),
            Expr::Match(m) => self.lower_match(m),
            Expr::Call(call) => self.lower_call(call, 1),
            Expr::MethodCall(m) => self.lower_method(m),
            Expr::Closure(c) => {
                let (or1, inputs, or2) = (&c.or1_token, &c.inputs, &c.or2_token);
                self.errors.push_spanned(
                    quote!(#or1 #inputs #or2),
                    "closures are not supported in #[differentiate] functions; write the computation inline or as a separate #[differentiate] function",
                );
                None
            }
            Expr::Macro(m) => {
                self.unsupported_macro(&m.mac);
                None
            }
            Expr::Return(r) => {
                self.nested_return(r);
                None
            }
            Expr::Reference(r) => {
                if r.mutability.is_some() {
                    self.errors.push_spanned(
                        r,
                        "`&mut` borrows are not supported in #[differentiate] functions; compute the new value and assign it to the variable",
                    );
                    return None;
                }
                let arg = self.lower_single(&r.expr)?;
                let opaque = Opaque {
                    pieces: vec![OpaquePiece::Tokens(quote!(&)), OpaquePiece::Hole(0)],
                    label: "ref".into(),
                    kind: OpaqueKind::Method("`&` (borrow)".into()),
                };
                Some(Operand::Value(self.emit1(
                    Opcode::Opaque(opaque),
                    vec![arg],
                    span,
                )))
            }
            other => {
                self.errors.push_spanned(
                    other,
                    format!(
                        "{} is not supported in #[differentiate] functions; compute the value from scalars, or move this code into a function called on constants",
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    fn lower_path(&mut self, path: &syn::ExprPath) -> Option<Operand> {
        if path.qself.is_none() {
            if let Some(ident) = path.path.get_ident() {
                match self.lookup(&ident.to_string()) {
                    Some(Slot::Bound(op)) => return Some(op.clone()),
                    Some(Slot::Poisoned) => return None,
                    Some(Slot::Uninit) => {
                        // rustc reports the possibly-uninitialised use itself
                        self.errors.fail_silently();
                        return None;
                    }
                    None => {}
                }
            }
        }
        // a constant item or associated constant (`PI`, `f64::consts::E`, `T::EPSILON`)
        Some(Operand::Value(
            self.constant(path.to_token_stream(), path.span()),
        ))
    }

    fn lower_binary(&mut self, b: &syn::ExprBinary) -> Option<Operand> {
        let span = b.span();
        let op = match b.op {
            BinOp::And(_) | BinOp::Or(_) => return self.lower_short_circuit(b),
            BinOp::AddAssign(_) => Some(BinaryOp::Add),
            BinOp::SubAssign(_) => Some(BinaryOp::Sub),
            BinOp::MulAssign(_) => Some(BinaryOp::Mul),
            BinOp::DivAssign(_) => Some(BinaryOp::Div),
            BinOp::RemAssign(_) => Some(BinaryOp::Rem),
            BinOp::BitAndAssign(_) => Some(BinaryOp::Bit(BitOp::And)),
            BinOp::BitOrAssign(_) => Some(BinaryOp::Bit(BitOp::Or)),
            BinOp::BitXorAssign(_) => Some(BinaryOp::Bit(BitOp::Xor)),
            BinOp::ShlAssign(_) => Some(BinaryOp::Bit(BitOp::Shl)),
            BinOp::ShrAssign(_) => Some(BinaryOp::Bit(BitOp::Shr)),
            _ => None,
        };
        if let Some(op) = op {
            // compound assignment: `x op= e` is `x = x op e`
            let current = self.lower_single(&b.left)?;
            let rhs = self.lower_single(&b.right)?;
            let value = self.emit1(Opcode::Binary(op), vec![current, rhs], span);
            self.assign_place(&b.left, Operand::Value(value));
            return Some(Operand::Unit);
        }
        let op = match b.op {
            BinOp::Add(_) => BinaryOp::Add,
            BinOp::Sub(_) => BinaryOp::Sub,
            BinOp::Mul(_) => BinaryOp::Mul,
            BinOp::Div(_) => BinaryOp::Div,
            BinOp::Rem(_) => BinaryOp::Rem,
            BinOp::BitAnd(_) => BinaryOp::Bit(BitOp::And),
            BinOp::BitOr(_) => BinaryOp::Bit(BitOp::Or),
            BinOp::BitXor(_) => BinaryOp::Bit(BitOp::Xor),
            BinOp::Shl(_) => BinaryOp::Bit(BitOp::Shl),
            BinOp::Shr(_) => BinaryOp::Bit(BitOp::Shr),
            BinOp::Eq(_) => BinaryOp::Compare(CompareOp::Eq),
            BinOp::Ne(_) => BinaryOp::Compare(CompareOp::Ne),
            BinOp::Lt(_) => BinaryOp::Compare(CompareOp::Lt),
            BinOp::Le(_) => BinaryOp::Compare(CompareOp::Le),
            BinOp::Gt(_) => BinaryOp::Compare(CompareOp::Gt),
            BinOp::Ge(_) => BinaryOp::Compare(CompareOp::Ge),
            _ => {
                self.errors
                    .push_spanned(b.op, "this operator is not supported");
                return None;
            }
        };
        let lhs = self.lower_single(&b.left);
        let rhs = self.lower_single(&b.right);
        let (lhs, rhs) = (lhs?, rhs?);
        Some(Operand::Value(self.emit1(
            Opcode::Binary(op),
            vec![lhs, rhs],
            span,
        )))
    }

    /// `a && b` is `if a { b } else { false }`, which keeps `b` unevaluated when `a` is false.
    fn lower_short_circuit(&mut self, b: &syn::ExprBinary) -> Option<Operand> {
        let span = b.span();
        let cond = self.lower_single(&b.left)?;
        let is_and = matches!(b.op, BinOp::And(_));
        let outer = self.block;
        let rhs_block = self.func.create_block();
        self.block = rhs_block;
        let rhs = self.lower_single(&b.right);
        self.func.blocks[rhs_block.index()].yields = rhs.into_iter().collect();
        let const_block = self.func.create_block();
        self.block = const_block;
        let constant = self.constant(if is_and { quote!(false) } else { quote!(true) }, span);
        self.func.blocks[const_block.index()].yields = vec![constant];
        self.block = outer;
        rhs?;
        let arms = if is_and {
            vec![rhs_block, const_block]
        } else {
            vec![const_block, rhs_block]
        };
        let inst = self
            .func
            .append(outer, Opcode::If, vec![cond], arms, 1, span);
        Some(Operand::Value(self.func.inst(inst).results[0]))
    }

    fn assign_place(&mut self, place: &Expr, value: Operand) {
        match place {
            Expr::Path(p) if p.path.get_ident().is_some() => {
                let ident = p.path.get_ident().expect("checked");
                match self.lookup(&ident.to_string()) {
                    // rustc rejects assignments to constants and unknown names itself
                    None => {
                        self.errors.fail_silently();
                        return;
                    }
                    Some(Slot::Poisoned) => return,
                    Some(_) => {}
                }
                self.assign(ident, Slot::Bound(value));
            }
            Expr::Paren(p) => self.assign_place(&p.expr, value),
            Expr::Tuple(t) => match value {
                Operand::Tuple(items) if items.len() == t.elems.len() => {
                    for (place, item) in t.elems.iter().zip(items) {
                        self.assign_place(place, item);
                    }
                }
                _ => self.errors.push_spanned(
                    t,
                    "destructuring assignment needs a tuple expression on the right, like `(a, b) = (b, a)`; bind a call's result with `let (a, b) = f(x);` first",
                ),
            },
            Expr::Infer(_) => {}
            other => self.errors.push_spanned(
                other,
                format!(
                    "assignment through {} is not supported; assign to a local variable",
                    describe(other)
                ),
            ),
        }
    }

    fn lower_block(&mut self, block: &syn::Block) -> Option<Operand> {
        let env_len = self.env.len();
        let mut value = Some(Operand::Unit);
        for (i, stmt) in block.stmts.iter().enumerate() {
            if stmt_returns(stmt) {
                self.nested_return(stmt);
                value = None;
                continue;
            }
            match stmt {
                Stmt::Expr(e, None) if i + 1 == block.stmts.len() => value = self.lower_expr(e),
                _ => self.lower_stmt(stmt),
            }
        }
        self.env.truncate(env_len);
        value
    }

    /// Lowers the arms of an `if`/`match` whose arms fall through, merging the variables
    /// they assign into results of the instruction.
    fn structured(
        &mut self,
        opcode: Opcode,
        selector: Value,
        arms: Vec<Arm<'_, 'e>>,
        span: Span,
    ) -> Option<Operand> {
        let outer = self.block;
        let snapshot = self.env.clone();
        let mut lowered: Vec<(Block, Option<Operand>, Vec<Binding>)> = Vec::new();
        for (binder, arm) in arms {
            let block = self.func.create_block();
            self.block = block;
            let env_len = self.env.len();
            if let Some(binder) = &binder {
                self.declare(binder, Slot::Bound(Operand::Value(selector)));
            }
            let value = arm(self);
            self.env.truncate(env_len);
            lowered.push((
                block,
                value,
                std::mem::replace(&mut self.env, snapshot.clone()),
            ));
        }
        self.block = outer;
        let values: Vec<Operand> = lowered
            .iter()
            .map(|(_, v, _)| v.clone())
            .collect::<Option<_>>()?;
        let shape = values[0].clone();
        if !values.iter().all(|v| v.same_shape(&shape)) {
            self.errors.push(span, "the arms evaluate to values of different shapes; make every arm yield the same kind of value");
            return None;
        }
        // variables whose value differs between arms become results
        let mut merged: Vec<(usize, Operand)> = Vec::new();
        let mut final_env = snapshot.clone();
        for (index, before) in snapshot.iter().enumerate() {
            let slots: Vec<&Slot> = lowered.iter().map(|(_, _, env)| &env[index].slot).collect();
            if slots.iter().all(|s| **s == before.slot) {
                continue;
            }
            if slots.iter().any(|s| matches!(s, Slot::Poisoned)) {
                final_env[index].slot = Slot::Poisoned;
                continue;
            }
            let operands: Option<Vec<&Operand>> = slots
                .iter()
                .map(|s| match s {
                    Slot::Bound(op) => Some(op),
                    _ => None,
                })
                .collect();
            match operands {
                Some(ops) if ops.iter().all(|o| o.same_shape(ops[0])) => {
                    merged.push((index, ops[0].clone()))
                }
                Some(_) => {
                    self.errors.push(
                        span,
                        format!(
                            "`{}` is given a tuple in one arm and a single value in another; give it values of the same shape in every arm",
                            before.name
                        ),
                    );
                    final_env[index].slot = Slot::Poisoned;
                }
                None => final_env[index].slot = Slot::Uninit,
            }
        }
        let mut arm_blocks = Vec::new();
        for (block, value, env) in &lowered {
            let mut yields = value.as_ref().expect("checked").values();
            for (index, _) in &merged {
                if let Slot::Bound(op) = &env[*index].slot {
                    yields.extend(op.values());
                }
            }
            self.func.blocks[block.index()].yields = yields;
            arm_blocks.push(*block);
        }
        let count = self.func.block(arm_blocks[0]).yields.len();
        let inst = self
            .func
            .append(outer, opcode, vec![selector], arm_blocks, count, span);
        let results = self.func.inst(inst).results.clone();
        let mut results = results.into_iter();
        let value = shape.rebuild(&mut results);
        for (index, shape) in &merged {
            final_env[*index].slot = Slot::Bound(shape.rebuild(&mut results));
        }
        for (index, binding) in final_env.iter().enumerate() {
            if let Slot::Bound(Operand::Value(v)) = &binding.slot {
                if merged.iter().any(|(i, _)| *i == index) {
                    let name = Ident::new(&binding.name, span);
                    self.name_value(*v, &name);
                }
            }
        }
        self.env = final_env;
        Some(value)
    }

    fn lower_if(&mut self, e: &syn::ExprIf) -> Option<Operand> {
        let cond = self.lower_condition(&e.cond)?;
        let then_arm = |this: &mut Self| this.lower_block(&e.then_branch);
        let else_arm = |this: &mut Self| match &e.else_branch {
            Some((_, else_expr)) => this.lower_expr(else_expr),
            None => Some(Operand::Unit),
        };
        self.structured(
            Opcode::If,
            cond,
            vec![(None, &then_arm), (None, &else_arm)],
            e.span(),
        )
    }

    /// Checks a match arm; returns the name the scrutinee is bound to, if any.
    fn check_arm(&mut self, arm: &syn::Arm) -> Option<Option<Ident>> {
        if let Some((if_token, _)) = &arm.guard {
            self.errors.push(
                if_token.span,
                "match guards are not supported; test the condition with `if` inside the arm",
            );
            return None;
        }
        match &arm.pat {
            Pat::Ident(p) if p.subpat.is_none() && !starts_uppercase(&p.ident) => {
                Some(Some(p.ident.clone()))
            }
            Pat::Ident(p) if p.subpat.is_some() => {
                let (_, sub) = p.subpat.as_ref().expect("checked");
                self.check_pattern_has_no_bindings(sub)?;
                Some(Some(p.ident.clone()))
            }
            other => {
                self.check_pattern_has_no_bindings(other)?;
                Some(None)
            }
        }
    }

    fn check_pattern_has_no_bindings(&mut self, pat: &Pat) -> Option<()> {
        struct Finder(Option<Ident>);
        impl<'ast> Visit<'ast> for Finder {
            fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
                if !starts_uppercase(&p.ident) && self.0.is_none() {
                    self.0 = Some(p.ident.clone());
                }
            }
        }
        let mut finder = Finder(None);
        finder.visit_pat(pat);
        match finder.0 {
            Some(ident) => {
                self.errors.push_spanned(
                    &ident,
                    format!("binding `{ident}` inside a pattern is not supported; match without binding and compute the value inside the arm"),
                );
                None
            }
            None => Some(()),
        }
    }

    fn lower_match(&mut self, m: &syn::ExprMatch) -> Option<Operand> {
        let scrutinee = self.lower_single(&m.expr)?;
        let mut binders = Vec::new();
        for arm in &m.arms {
            binders.push(self.check_arm(arm)?);
        }
        let bodies: Vec<_> = m
            .arms
            .iter()
            .map(|arm| move |this: &mut Self| this.lower_expr(&arm.body))
            .collect();
        let arms: Vec<Arm<'_, 'e>> = binders
            .into_iter()
            .zip(bodies.iter())
            .map(|(b, f)| (b, f as &dyn Fn(&mut Self) -> Option<Operand>))
            .collect();
        let pats = m.arms.iter().map(|a| a.pat.clone()).collect();
        self.structured(Opcode::Match(pats), scrutinee, arms, m.span())
    }

    fn lower_args<'a>(&mut self, args: impl IntoIterator<Item = &'a Expr>) -> Option<Vec<Value>> {
        let mut values = Vec::new();
        let mut ok = true;
        for arg in args {
            match self.lower_single(arg) {
                Some(v) => values.push(v),
                None => ok = false,
            }
        }
        ok.then_some(values)
    }

    /// `f64::sin(x)`, `Float::sin(x)`, `num_traits::Float::sin(x)`, `T::sin(x)`.
    fn primitive_path(
        &self,
        path: &syn::ExprPath,
        arity: usize,
    ) -> Option<&'static primitives::Primitive> {
        if path.qself.is_some() {
            return None;
        }
        let segments: Vec<String> = path
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        let (last, owner) = segments.split_last()?;
        let owner_ok = match owner {
            [one] => {
                one == "f64"
                    || one == "f32"
                    || one == "Float"
                    || self.generics.iter().any(|g| g == one)
            }
            [.., a, b] => b == "Float" && (a == "num_traits" || a == "float"),
            [] => false,
        };
        if owner_ok {
            primitives::method(last, arity)
        } else {
            None
        }
    }

    fn lower_call(&mut self, call: &syn::ExprCall, results: usize) -> Option<Operand> {
        let span = call.span();
        let Expr::Path(path) = &*call.func else {
            self.errors
                .push_spanned(&call.func, "only calls of named functions are supported; call the function by its path, like `helper(x)`");
            return None;
        };
        let args = self.lower_args(&call.args)?;
        if let Some(prim) = self.primitive_path(path, args.len()) {
            if results != 1 {
                // rustc reports the mismatched tuple pattern itself
                self.errors.fail_silently();
                return None;
            }
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                args,
                span,
            )));
        }
        if path.qself.is_some() {
            self.errors.push_spanned(
                path,
                "qualified paths `<T as Trait>::f` are not supported in calls; write `Float::sin(x)` or `x.sin()` for float methods",
            );
            return None;
        }
        if let Some(ident) = path.path.get_ident() {
            match self.lookup(&ident.to_string()) {
                Some(Slot::Poisoned) => return None,
                Some(_) => {
                    self.errors.push_spanned(ident, "calling a local variable is not supported; call a named #[differentiate] function");
                    return None;
                }
                None => {}
            }
        }
        let values = self.emit(Opcode::Call(path.clone()), args, results, span);
        Some(if results == 1 {
            Operand::Value(values[0])
        } else {
            Operand::Tuple(values.into_iter().map(Operand::Value).collect())
        })
    }

    fn lower_method(&mut self, m: &syn::ExprMethodCall) -> Option<Operand> {
        let span = m.span();
        let receiver = self.lower_single(&m.receiver);
        let args = self.lower_args(&m.args);
        let mut all = vec![receiver?];
        all.extend(args?);
        let name = m.method.to_string();
        if let Some(prim) = primitives::method(&name, all.len()) {
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                all,
                span,
            )));
        }
        if primitives::is_method_name(&name) {
            // rustc reports the wrong number of arguments itself
            self.errors.fail_silently();
            return None;
        }
        let opcode = Opcode::Method(m.method.clone(), m.turbofish.clone());
        Some(Operand::Value(self.emit1(opcode, all, span)))
    }
}

fn starts_uppercase(ident: &Ident) -> bool {
    ident
        .to_string()
        .chars()
        .next()
        .is_some_and(char::is_uppercase)
}

/// How many values a `let` pattern takes apart at its top level (tuples only).
fn pattern_arity(pat: &Pat) -> Option<usize> {
    match pat {
        Pat::Tuple(t) => Some(t.elems.len()),
        Pat::Paren(p) => pattern_arity(&p.pat),
        Pat::Type(t) => pattern_arity(&t.pat),
        _ => None,
    }
}
