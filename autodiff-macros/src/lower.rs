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
    BinaryOp, BitOp, Block, CompareOp, CopyKind, Function, Inst, MapClosure, Opcode, RangeLoop,
    UnaryOp, Value, ValueDef,
};
use crate::primitives;

/// Upper bound on instructions, so that duplicated continuations cannot blow up compile time.
const MAX_INSTRUCTIONS: usize = 20_000;

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
    /// A struct built by a struct expression, `State { x: a, v: b }`: its fields by name, in
    /// the order of their names (so that every expression building it has the same shape).
    Struct(syn::Path, Vec<(Ident, Operand)>),
    Unit,
}

impl Operand {
    fn flatten(&self, out: &mut Vec<Value>) {
        match self {
            Operand::Value(v) => out.push(*v),
            Operand::Tuple(items) => items.iter().for_each(|i| i.flatten(out)),
            Operand::Struct(_, fields) => fields.iter().for_each(|(_, f)| f.flatten(out)),
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
            Operand::Struct(path, fields) => Operand::Struct(
                path.clone(),
                fields
                    .iter()
                    .map(|(name, f)| (name.clone(), f.rebuild(values)))
                    .collect(),
            ),
            Operand::Unit => Operand::Unit,
        }
    }

    fn same_shape(&self, other: &Operand) -> bool {
        match (self, other) {
            (Operand::Value(_), Operand::Value(_)) | (Operand::Unit, Operand::Unit) => true,
            (Operand::Tuple(a), Operand::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_shape(y))
            }
            (Operand::Struct(_, a), Operand::Struct(_, b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((m, x), (n, y))| m == n && x.same_shape(y))
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
    /// A closure bound by `let f = |x| ...;`, inlined at each call `f(a)`.
    Closure(LocalClosure),
    /// The item of `for o in v.iter_mut()`: element `index` of the local array named
    /// `array`, read and written there (`*o`, `*o = e`, `*o += e`) in its current version.
    Element {
        array: Ident,
        index: Value,
    },
}

/// A closure bound to a local variable, with the variables it sees as they were where it was
/// defined: a closure reads its captures as of its definition (a `move` closure copies them
/// there, and a borrowing one keeps them from changing while it lives), so its body is
/// lowered at each call in that environment, its parameters bound to the call's arguments.
#[derive(Clone, Debug)]
struct LocalClosure(std::rc::Rc<(syn::ExprClosure, Vec<Binding>)>);

impl PartialEq for LocalClosure {
    fn eq(&self, other: &Self) -> bool {
        std::rc::Rc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Clone, Debug)]
struct Binding {
    name: String,
    slot: Slot,
}

/// Where a statement sequence sits: the function body, where falling off the end needs a
/// value, or a loop body, where it continues with the next iteration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    Function,
    Loop,
}

/// How an arm of a jumping `if`/`match` ends.
#[derive(Clone)]
enum ArmSeq<'a> {
    /// Lower these items.
    Items(Vec<Item<'a>>),
    /// Return these values.
    Return(Vec<Value>),
    /// Leave the loop.
    Exit,
}

/// A loop being lowered: the environment slots it carries and their shapes.
#[derive(Clone)]
struct LoopFrame {
    carried: Vec<usize>,
    shapes: Vec<Operand>,
    flag: bool,
}

/// What a lowered loop leaves besides its carried variables.
struct LoopOutcome {
    /// With a `return` inside: the flag that it ran and the returned values.
    returned: Option<(Value, Vec<Value>)>,
    /// For `loop { ... break v; }`: the value.
    value: Option<Value>,
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

/// Lowers a loop body into the current block given the loop index (for counted loops) and
/// returns what the body yields.
type LoopBody<'a, 'e> = &'a dyn Fn(&mut Lowerer<'e>, Option<Value>) -> Option<Vec<Value>>;

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
    /// The function's type and const parameters, as arguments: `<T, N>` of a lifted closure's
    /// pullback type.
    generic_args: Vec<Ident>,
    annotations: HashMap<Value, syn::Type>,
    output_arity: usize,
    /// For a struct output: its path and fields, in the order of the yielded values.
    struct_output: Option<crate::args::StructOutput>,
    too_large: bool,
    loops: Vec<LoopFrame>,
    /// Per output element: a placeholder value of its type for hidden return slots.
    output_placeholders: Vec<TokenStream>,
    /// Pure instructions already emitted, by block, mnemonic and operands.
    available: HashMap<(Block, String, Vec<Value>), Value>,
    /// The `panic!` (or the like) that ended the current block: what follows it is
    /// unreachable, and the branch it ends takes its values from the instruction's results.
    diverged: Option<Inst>,
    /// Arrays iterated by `iter_mut()` or `&mut`, by the value the loop starts from: the
    /// variable whose elements the items are. Filled while a loop's source is parsed.
    mutable_sources: HashMap<Value, Ident>,
}

/// Lowers `item` to SSA, or records errors and returns None.
pub fn lower(item: &ItemFn, sig: &Signature, errors: &mut Errors) -> Option<Lowered> {
    let before = errors.len();
    let mut func = Function::new(item.sig.ident.clone());
    let mut env = Vec::new();
    for p in &sig.params {
        let v = func.add_param(p.name.clone(), p.ty.clone(), p.role);
        env.push(Binding {
            name: p.source.to_string(),
            slot: Slot::Bound(Operand::Value(v)),
        });
    }
    let entry = func.entry;
    // the length of each array parameter, which sizes its gradient
    for (i, p) in sig.params.iter().enumerate() {
        let is_vector = matches!(
            crate::args::array_type(&p.ty),
            Some((crate::args::ArrayKind::Vec, _))
        );
        let len = (p.role == crate::ir::ParamRole::Float && is_vector).then(|| {
            let value = func.params[i].value;
            let inst = func.append(
                entry,
                Opcode::Len,
                vec![value],
                Vec::new(),
                1,
                p.name.span(),
            );
            let len = func.inst(inst).results[0];
            func.values[len.index()].name = Some(format!("{}_len", p.name));
            len
        });
        func.param_lens.push(len);
        let generics = crate::args::type_params(item);
        let parameter_set = p.role == crate::ir::ParamRole::Float
            && !crate::args::is_float_type(&p.ty, &generics)
            && crate::args::is_parameter_set_type(&p.ty);
        func.param_structs.push(parameter_set);
    }
    let mut lowerer = Lowerer {
        func,
        env,
        block: entry,
        errors,
        generics: crate::args::type_params(item),
        generic_args: item
            .sig
            .generics
            .params
            .iter()
            .filter_map(|p| match p {
                syn::GenericParam::Type(t) => Some(t.ident.clone()),
                syn::GenericParam::Const(c) => Some(c.ident.clone()),
                syn::GenericParam::Lifetime(_) => None,
            })
            .collect(),
        annotations: HashMap::new(),
        output_arity: match &sig.output {
            crate::args::Output::Scalar(_) => 1,
            crate::args::Output::Tuple(t) => t.len(),
            crate::args::Output::Array(_) => 1,
            crate::args::Output::Struct(s) => s.fields.len().max(1),
        },
        struct_output: match &sig.output {
            crate::args::Output::Struct(s) => Some(s.clone()),
            _ => None,
        },
        too_large: false,
        loops: Vec::new(),
        available: HashMap::new(),
        diverged: None,
        mutable_sources: HashMap::new(),
        output_placeholders: {
            let types: Vec<&syn::Type> = match &sig.output {
                crate::args::Output::Scalar(t) | crate::args::Output::Array(t) => vec![t],
                crate::args::Output::Tuple(ts) => ts.iter().collect(),
                // the fields' types are unknown: a `return` inside a loop is refused
                crate::args::Output::Struct(_) => Vec::new(),
            };
            types
                .into_iter()
                .map(|t| match crate::args::array_type(t) {
                    Some(_) => quote!(::autodiff::__private::Cotangent::zero()),
                    None => quote!(::autodiff::__private::num_traits::Zero::zero()),
                })
                .collect()
        },
    };
    let items = block_items(&item.block, None);
    let result = lowerer.lower_seq(&items, item.block.brace_token.span.close(), Ctx::Function);
    if let Some(values) = result {
        if let crate::args::Output::Array(ty) = &sig.output {
            if let Some((crate::args::ArrayKind::Tensor | crate::args::ArrayKind::Matrix(_), _)) =
                crate::args::array_type(ty)
            {
                let span = item.sig.output.span();
                let inst = lowerer.func.append(
                    entry,
                    Opcode::ShapeOf,
                    vec![values[0]],
                    Vec::new(),
                    1,
                    span,
                );
                let shape = lowerer.func.inst(inst).results[0];
                lowerer.func.values[shape.index()].name = Some("output_shape".into());
                lowerer.func.output_shape = Some(shape);
            }
            if let Some((crate::args::ArrayKind::Vec, _)) = crate::args::array_type(ty) {
                let span = item.sig.output.span();
                let inst =
                    lowerer
                        .func
                        .append(entry, Opcode::Len, vec![values[0]], Vec::new(), 1, span);
                let len = lowerer.func.inst(inst).results[0];
                lowerer.func.values[len.index()].name = Some("output_len".into());
                lowerer.func.output_len = Some(len);
            }
        }
        lowerer.func.blocks[entry.index()].yields = values;
    }
    borrowed_slices_stay_local(&lowerer.func, lowerer.errors);
    if lowerer.errors.len() > before {
        return None;
    }
    Some(Lowered {
        func: lowerer.func,
        annotations: lowerer.annotations,
    })
}

/// A slice `&x[a..b]` of a range that is copied (see [`Function::borrows_range`]) used where it
/// was made: one that a branch yields or a loop carries to its next iteration would borrow a
/// copy local to the arm or the iteration.
fn borrowed_slices_stay_local(func: &Function, errors: &mut Errors) {
    let mut borrowed: Vec<(Value, Span)> = Vec::new();
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        // a reference to a copied range (a borrowed range is a reference of its own)
        let of_slice = data
            .args
            .first()
            .and_then(|&a| func.def_inst(a))
            .is_some_and(|d| {
                matches!(func.inst(d).opcode, Opcode::Slice) && !func.borrows_range(d)
            });
        if matches!(data.opcode, Opcode::Ref) && of_slice {
            borrowed.push((data.results[0], data.span));
        }
    });
    let mut reported = Vec::new();
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let starts_loop = matches!(data.opcode, Opcode::ForRange(_) | Opcode::While);
        for &(value, span) in &borrowed {
            // made inside the arm (or loop body) that yields it
            let made_in = |arm: Block| {
                let mut inside = false;
                func.walk_insts(arm, &mut |i| inside |= func.def_inst(value) == Some(i));
                inside
            };
            let leaves = data
                .arms
                .iter()
                .any(|&arm| func.block(arm).yields.contains(&value) && made_in(arm))
                || starts_loop && data.args.contains(&value);
            if leaves && !reported.contains(&value) {
                reported.push(value);
                errors.push(
                    span,
                    "a slice of a local vector or of a parameter passed by value cannot be carried from one loop iteration to the next or leave the branch arm that makes it; copy the range with `x[a..b].to_vec()`, or slice where the values are used",
                );
            }
        }
    });
}

/// The statements of a block as sequence items; the trailing expression becomes a tail.
fn block_items<'a>(block: &'a syn::Block, scope_end: Option<usize>) -> Vec<Item<'a>> {
    // a `const` item is visible in its whole block, before its declaration too
    let mut items: Vec<Item<'a>> = block
        .stmts
        .iter()
        .filter(|stmt| matches!(stmt, Stmt::Item(syn::Item::Const(_))))
        .map(Item::Stmt)
        .collect();
    for (i, stmt) in block.stmts.iter().enumerate() {
        if matches!(stmt, Stmt::Item(syn::Item::Const(_))) {
            continue;
        }
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

/// Finds `return` anywhere, and `break`/`continue` that leave the loop being lowered (not
/// those of loops nested inside it).
#[derive(Default)]
struct JumpFinder {
    returns: bool,
    /// The first `return`, for errors.
    first_return: Option<Span>,
    breaks: bool,
    break_values: bool,
    depth: usize,
}

impl<'ast> Visit<'ast> for JumpFinder {
    fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
        self.returns = true;
        self.first_return.get_or_insert(r.span());
    }
    fn visit_expr_break(&mut self, b: &'ast syn::ExprBreak) {
        if self.depth == 0 {
            self.breaks = true;
            self.break_values |= b.expr.is_some();
        }
        syn::visit::visit_expr_break(self, b);
    }
    fn visit_expr_continue(&mut self, _: &'ast syn::ExprContinue) {
        if self.depth == 0 {
            self.breaks = true;
        }
    }
    fn visit_expr_for_loop(&mut self, f: &'ast syn::ExprForLoop) {
        self.visit_expr(&f.expr);
        self.depth += 1;
        self.visit_block(&f.body);
        self.depth -= 1;
    }
    fn visit_expr_while(&mut self, w: &'ast syn::ExprWhile) {
        self.depth += 1;
        syn::visit::visit_expr_while(self, w);
        self.depth -= 1;
    }
    fn visit_expr_loop(&mut self, l: &'ast syn::ExprLoop) {
        self.depth += 1;
        syn::visit::visit_expr_loop(self, l);
        self.depth -= 1;
    }
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

fn find_jumps(visit: impl FnOnce(&mut JumpFinder)) -> JumpFinder {
    let mut finder = JumpFinder::default();
    visit(&mut finder);
    finder
}

fn expr_returns(e: &Expr) -> bool {
    contains_return(e, |f, e| f.visit_expr(e))
}

/// Whether control can leave the current sequence through `e`.
fn jumps(e: &Expr, ctx: Ctx) -> bool {
    let found = find_jumps(|f| f.visit_expr(e));
    found.returns || ctx == Ctx::Loop && found.breaks
}

fn stmt_jumps(s: &Stmt, ctx: Ctx) -> bool {
    let found = find_jumps(|f| f.visit_stmt(s));
    found.returns || ctx == Ctx::Loop && found.breaks
}

/// In statement position a block's trailing expression is a statement: its value is dropped.
fn statement_tail(items: &mut [Item]) {
    for item in items {
        if let Item::Tail(t) = *item {
            *item = Item::StmtExpr(t);
        }
    }
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
        // local value numbering: a pure operation on the same SSA operands earlier in the
        // same block has the same value (arrays are versioned, so `x[i]` twice is one read)
        let pure = matches!(
            opcode,
            Opcode::Binary(_)
                | Opcode::Unary(_)
                | Opcode::Cast(_)
                | Opcode::Primitive(_)
                | Opcode::Index
                | Opcode::Len
        );
        let key = pure.then(|| (self.block, opcode.mnemonic(), args.clone()));
        if let Some(key) = &key {
            if let Some(&value) = self.available.get(key) {
                return vec![value];
            }
        }
        let inst = self
            .func
            .append(self.block, opcode, args, Vec::new(), results, span);
        let results = self.func.inst(inst).results.clone();
        if let Some(key) = key {
            self.available.insert(key, results[0]);
        }
        results
    }

    fn emit1(&mut self, opcode: Opcode, args: Vec<Value>, span: Span) -> Value {
        self.emit(opcode, args, 1, span)[0]
    }

    fn constant(&mut self, tokens: TokenStream, span: Span) -> Value {
        self.emit1(Opcode::Const(tokens), Vec::new(), span)
    }

    fn name_value(&mut self, v: Value, name: &Ident) {
        self.name_value_str(v, &name.to_string());
    }

    /// Names a value after a variable (without a raw `r#` prefix), for readable code.
    fn name_value_str(&mut self, v: Value, name: &str) {
        if name.starts_with('#') {
            // a hidden slot (`#acc`, `#returned`): no name a reader would know
            return;
        }
        let data = &mut self.func.values[v.index()];
        if data.name.is_none() {
            data.name = Some(name.trim_start_matches("r#").to_string());
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

    /// Lowers items until control leaves the sequence: in a function, returns the returned
    /// values; in a loop body, the values the iteration yields (keep-going flag, carried).
    fn lower_seq(&mut self, items: &[Item], end_span: Span, ctx: Ctx) -> Option<Vec<Value>> {
        for (i, item) in items.iter().enumerate() {
            if self.too_large {
                return None;
            }
            if let Some(diverged) = self.diverged.take() {
                return self.after_divergence(diverged, end_span, ctx);
            }
            let rest = &items[i + 1..];
            match *item {
                Item::ScopeEnd(len) => self.env.truncate(len),
                Item::Tail(e) if ctx == Ctx::Function => {
                    if jumps(e, ctx) {
                        return self.lower_jump(e, rest, end_span, ctx);
                    }
                    let value = if self.output_arity > 1 && self.struct_output.is_none() {
                        self.lower_expr_expecting(e, self.output_arity)?
                    } else {
                        self.lower_expr(e)?
                    };
                    if let Some(diverged) = self.diverged.take() {
                        return self.after_divergence(diverged, end_span, ctx);
                    }
                    return self.return_values(&value, e.span());
                }
                Item::Tail(e) | Item::StmtExpr(e) | Item::Stmt(Stmt::Expr(e, _))
                    if jumps(e, ctx) =>
                {
                    return self.lower_jump(e, rest, end_span, ctx);
                }
                Item::Tail(e) | Item::StmtExpr(e) => {
                    self.lower_expr(e);
                }
                Item::Stmt(s) => {
                    let let_else = matches!(s, Stmt::Local(l) if l.init.as_ref().is_some_and(|i| i.diverge.is_some()));
                    if stmt_jumps(s, ctx) && !let_else {
                        self.nested_return(s);
                        continue;
                    }
                    self.lower_stmt(s);
                }
            }
        }
        if let Some(diverged) = self.diverged.take() {
            return self.after_divergence(diverged, end_span, ctx);
        }
        match ctx {
            Ctx::Function => {
                self.errors.push(
                    end_span,
                    "the function's value is missing here; end the body with the value to return",
                );
                None
            }
            Ctx::Loop => self.loop_exit(true, end_span),
        }
    }

    /// The values a sequence ended by `panic!` (instruction `diverged`) yields, never
    /// computed: in a function, placeholders of the returned values, which the macro's `!`
    /// type stands for; in a loop body, the next iteration's values as they are.
    fn after_divergence(&mut self, diverged: Inst, end_span: Span, ctx: Ctx) -> Option<Vec<Value>> {
        match ctx {
            Ctx::Function => Some(
                (0..self.output_arity)
                    .map(|_| self.func.add_result(diverged))
                    .collect(),
            ),
            Ctx::Loop => self.loop_exit(true, end_span),
        }
    }

    /// Lowers an expression in statement position that contains a `return` (or, in a loop
    /// body, a `break`/`continue`), followed by the rest of the sequence `rest` on every
    /// path that falls through.
    fn lower_jump(
        &mut self,
        e: &Expr,
        rest: &[Item],
        end_span: Span,
        ctx: Ctx,
    ) -> Option<Vec<Value>> {
        match e {
            Expr::Return(r) => match &r.expr {
                Some(value) => {
                    if jumps(value, ctx) {
                        self.nested_return(&**value);
                        return None;
                    }
                    let value = if self.output_arity > 1 && self.struct_output.is_none() {
                        self.lower_expr_expecting(value, self.output_arity)?
                    } else {
                        self.lower_expr(value)?
                    };
                    let values = self.return_values(&value, r.span())?;
                    self.perform_return(values, r.span(), ctx)
                }
                None => {
                    // rustc reports the missing value itself
                    self.errors.fail_silently();
                    None
                }
            },
            Expr::Break(b) => {
                if let Some(label) = &b.label {
                    self.errors.push_spanned(label, "labeled `break` is not supported; set a flag and test it after the inner loop");
                    return None;
                }
                if self.loops.is_empty() {
                    self.errors.fail_silently();
                    return None;
                }
                if let Some(value) = &b.expr {
                    let value = self.lower_single(value)?;
                    if !self.set_hidden("#break", Operand::Value(value)) {
                        self.errors
                            .push_spanned(b, "`break` with a value is supported in `loop` only");
                        return None;
                    }
                }
                self.loop_exit(false, b.span())
            }
            Expr::Continue(c) => {
                if let Some(label) = &c.label {
                    self.errors.push_spanned(label, "labeled `continue` is not supported; set a flag and test it after the inner loop");
                    return None;
                }
                if self.loops.is_empty() {
                    self.errors.fail_silently();
                    return None;
                }
                self.loop_exit(true, c.span())
            }
            Expr::Paren(p) => self.lower_jump(&p.expr, rest, end_span, ctx),
            Expr::Block(b) if b.label.is_none() => {
                let mut items = block_items(&b.block, Some(self.env.len()));
                // the block's trailing expression is a statement here: its value is discarded
                statement_tail(&mut items);
                items.extend_from_slice(rest);
                self.lower_seq(&items, end_span, ctx)
            }
            Expr::If(expr_if) => {
                let cond = self.lower_condition(&expr_if.cond)?;
                let env_len = self.env.len();
                let mut then_items = block_items(&expr_if.then_branch, Some(env_len));
                statement_tail(&mut then_items);
                then_items.extend_from_slice(rest);
                let mut else_items = Vec::new();
                if let Some((_, else_expr)) = &expr_if.else_branch {
                    else_items.push(Item::StmtExpr(else_expr));
                }
                else_items.extend_from_slice(rest);
                let arms = vec![
                    (None, ArmSeq::Items(then_items)),
                    (None, ArmSeq::Items(else_items)),
                ];
                self.jumping_arms(Opcode::If, cond, arms, e.span(), end_span, ctx)
            }
            Expr::Match(m) => {
                let scrutinee = self.lower_single(&m.expr)?;
                let mut binders = Vec::new();
                for arm in &m.arms {
                    binders.push(self.check_arm(arm)?);
                }
                // with guards: a match on the position of the arm taken
                let (selector, pats) = match self.guarded_arm_position(m, scrutinee, &binders)? {
                    Some(position) => (position, arm_positions(m.arms.len())),
                    None => (scrutinee, m.arms.iter().map(|a| a.pat.clone()).collect()),
                };
                let mut arms = Vec::new();
                for (arm, binder) in m.arms.iter().zip(binders) {
                    let mut items = vec![Item::StmtExpr(&arm.body)];
                    items.extend_from_slice(rest);
                    arms.push((binder.map(|b| (b, scrutinee)), ArmSeq::Items(items)));
                }
                self.jumping_arms(Opcode::Match(pats), selector, arms, e.span(), end_span, ctx)
            }
            Expr::ForLoop(_) | Expr::While(_) | Expr::Loop(_) => {
                // only a `return` leaves through a nested loop; test its flag after the loop
                let outcome = self.lower_loop_expr(e)?;
                let Some((returned, values)) = outcome.returned else {
                    self.nested_return(e);
                    return None;
                };
                let arms = vec![
                    (None, ArmSeq::Return(values)),
                    (None, ArmSeq::Items(rest.to_vec())),
                ];
                self.jumping_arms(Opcode::If, returned, arms, e.span(), end_span, ctx)
            }
            other => {
                self.nested_return(other);
                None
            }
        }
    }

    /// The arms of an `if`/`match` through which control leaves the sequence.
    fn jumping_arms(
        &mut self,
        opcode: Opcode,
        selector: Value,
        arms_seqs: Vec<(Option<(Ident, Value)>, ArmSeq)>,
        span: Span,
        end_span: Span,
        ctx: Ctx,
    ) -> Option<Vec<Value>> {
        let outer_block = self.block;
        let snapshot = self.env.clone();
        let mut arms = Vec::new();
        let mut ok = true;
        let mut count = None;
        for (binder, seq) in &arms_seqs {
            let arm_block = self.func.create_block();
            self.block = arm_block;
            let env_len = self.env.len();
            if let Some((binder, bound)) = binder {
                self.declare(binder, Slot::Bound(Operand::Value(*bound)));
            }
            let yields = match seq {
                ArmSeq::Items(items) => {
                    let mut items = items.clone();
                    if binder.is_some() {
                        items.insert(1, Item::ScopeEnd(env_len));
                    }
                    self.lower_seq(&items, end_span, ctx)
                }
                ArmSeq::Return(values) => self.perform_return(values.clone(), span, ctx),
                ArmSeq::Exit => self.loop_exit(false, span),
            };
            match yields {
                Some(values) => {
                    count = Some(values.len());
                    self.func.blocks[arm_block.index()].yields = values;
                }
                None => ok = false,
            }
            self.env = snapshot.clone();
            arms.push(arm_block);
        }
        self.block = outer_block;
        if !ok {
            return None;
        }
        let inst = self
            .func
            .append(outer_block, opcode, vec![selector], arms, count?, span);
        Some(self.func.inst(inst).results.clone())
    }

    /// `return values`: the function's value, or from inside a loop, the loop's hidden
    /// return slots and an exit.
    fn perform_return(&mut self, values: Vec<Value>, span: Span, ctx: Ctx) -> Option<Vec<Value>> {
        match ctx {
            Ctx::Function => Some(values),
            Ctx::Loop => {
                let yes = self.constant(quote!(true), span);
                self.set_hidden("#returned", Operand::Value(yes));
                for (k, v) in values.into_iter().enumerate() {
                    self.set_hidden(&format!("#ret{k}"), Operand::Value(v));
                }
                self.loop_exit(false, span)
            }
        }
    }

    /// Assigns a hidden loop slot (`#break`, `#returned`, `#ret0`, `#acc`); false if absent.
    fn set_hidden(&mut self, name: &str, value: Operand) -> bool {
        match self.env.iter_mut().rev().find(|b| b.name == name) {
            Some(binding) => {
                binding.slot = Slot::Bound(value);
                true
            }
            None => false,
        }
    }

    /// The values a loop body yields when an iteration ends: the keep-going flag (when the
    /// loop has one) and the current values of the carried variables.
    fn loop_exit(&mut self, keep_going: bool, span: Span) -> Option<Vec<Value>> {
        let frame = self.loops.last()?.clone();
        let mut yields = Vec::new();
        if frame.flag {
            yields.push(self.constant(
                if keep_going {
                    quote!(true)
                } else {
                    quote!(false)
                },
                span,
            ));
        }
        for (&index, shape) in frame.carried.iter().zip(&frame.shapes) {
            match &self.env[index].slot {
                Slot::Bound(op) if op.same_shape(shape) => yields.extend(op.values()),
                Slot::Bound(_) => {
                    self.errors.push(span, format!("`{}` changes shape inside the loop; keep it a single value or a tuple of the same length", self.env[index].name));
                    return None;
                }
                Slot::Uninit | Slot::Poisoned | Slot::Closure(_) | Slot::Element { .. } => {
                    return None
                }
            }
        }
        Some(yields)
    }

    /// Reports a `return` the continuation lowering cannot place, at the `return` itself.
    fn nested_return(&mut self, node: &dyn ToTokens) {
        struct First(Option<Expr>);
        impl<'ast> Visit<'ast> for First {
            fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
                if self.0.is_none() {
                    self.0 = Some(Expr::Return(r.clone()));
                }
            }
            fn visit_expr_break(&mut self, b: &'ast syn::ExprBreak) {
                if self.0.is_none() {
                    self.0 = Some(Expr::Break(b.clone()));
                }
            }
            fn visit_expr_continue(&mut self, c: &'ast syn::ExprContinue) {
                if self.0.is_none() {
                    self.0 = Some(Expr::Continue(c.clone()));
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
        let message = "`return`, `break` and `continue` are supported as statements, or inside `if`/`match` arms in statement position, not inside an expression; assign the value to a variable and leave from there";
        match first.0 {
            Some(r) => self.errors.push_spanned(&r, message),
            None => self.errors.push_spanned(node, message),
        }
    }

    /// Whether `v` is a parameter, or a copy or borrow of one.
    fn is_parameter_or_copy(&self, v: Value) -> bool {
        let mut v = v;
        loop {
            if matches!(self.func.value(v).def, crate::ir::ValueDef::Param(_)) {
                return true;
            }
            match self.func.def_inst(v).map(|i| self.func.inst(i)) {
                Some(data)
                    if matches!(data.opcode, Opcode::Copy(_) | Opcode::Ref | Opcode::Deref) =>
                {
                    v = data.args[0];
                }
                _ => return false,
            }
        }
    }

    fn return_values(&mut self, value: &Operand, span: Span) -> Option<Vec<Value>> {
        if let Some(output) = &self.struct_output {
            let fields = &output.fields;
            if fields.is_empty() {
                // no struct expression builds it: one value of its type, returned whole
                return match value {
                    Operand::Value(v) if self.is_parameter_or_copy(*v) => {
                        let path = crate::ir::tokens_text(&output.path.to_token_stream());
                        self.errors.push(
                            span,
                            format!(
                                "a parameter (or a copy of one) is returned as a struct built here: list its fields, `{path} {{ x: s.x, .. }}`"
                            ),
                        );
                        None
                    }
                    Operand::Value(v) => {
                        self.annotations.insert(*v, output.ty.clone());
                        Some(vec![*v])
                    }
                    // rustc reports the type mismatch itself
                    _ => {
                        self.errors.fail_silently();
                        None
                    }
                };
            }
            return match value {
                Operand::Struct(_, built)
                    if built.iter().map(|(name, _)| name).eq(fields.iter())
                        && built.iter().all(|(_, f)| matches!(f, Operand::Value(_))) =>
                {
                    Some(value.values())
                }
                Operand::Struct(_, built)
                    if built.iter().map(|(name, _)| name).eq(fields.iter()) =>
                {
                    self.errors.push(
                        span,
                        "each field of the returned struct must be a single value, not a tuple or a struct; return the nested value from a function of its own or flatten it into fields",
                    );
                    None
                }
                // another struct: rustc reports the type mismatch itself
                Operand::Struct(..) => {
                    self.errors.fail_silently();
                    None
                }
                _ => {
                    let names: Vec<String> = fields.iter().map(|f| format!("{f}: ..")).collect();
                    let rebuilt: Vec<String> =
                        fields.iter().map(|f| format!("{f}: s.{f}")).collect();
                    let path = crate::ir::tokens_text(&output.path.to_token_stream());
                    self.errors.push(
                        span,
                        format!(
                            "return a struct built in this function, `{path} {{ {} }}` or a variable bound to one; a struct from elsewhere cannot be returned as it is: rebuild one a #[differentiate] function returned from its fields, `let s: {path} = f(..); {path} {{ {} }}`",
                            names.join(", "),
                            rebuilt.join(", ")
                        ),
                    );
                    None
                }
            };
        }
        let values = value.values();
        let shape_ok = match value {
            Operand::Value(_) => self.output_arity == 1,
            Operand::Tuple(_) => values.len() == self.output_arity && self.output_arity > 1,
            Operand::Struct(..) | Operand::Unit => false,
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
            Stmt::Expr(e, semi) => {
                let value = self.lower_expr(e);
                // a method without a rule called for its effect (`v.halve();` of a trait with
                // `&mut self`): what it does to its receiver is not followed
                if let (Some(_), Some(Operand::Value(v)), Expr::MethodCall(m)) =
                    (semi, value, strip_parens(e))
                {
                    let opaque = self.func.def_inst(v).is_some_and(|def| {
                        matches!(self.func.inst(def).opcode, Opcode::Method(..))
                    });
                    if opaque {
                        let receiver = &m.receiver;
                        let receiver = crate::ir::tokens_text(&quote!(#receiver));
                        self.errors.push_spanned(
                            &m.method,
                            format!(
                                "`{}` is called for what it does to `{receiver}` (its result is unused), which #[differentiate] does not follow; compute the changed value and assign it (`{receiver} = ...`), or leave the call out",
                                m.method
                            ),
                        );
                    }
                }
            }
            // `const C: T = e;`: a constant, bound as `let C: T = e;` is
            Stmt::Item(syn::Item::Const(c)) if c.generics.params.is_empty() => {
                let (name, ty, expr) = (&c.ident, &c.ty, &c.expr);
                let tokens = quote::quote_spanned!(c.span()=> let #name: #ty = #expr;);
                match syn::parse2::<Stmt>(tokens) {
                    Ok(Stmt::Local(local)) => self.lower_local(&local),
                    _ => self.errors.push_spanned(
                        c,
                        "internal error in #[differentiate] (please report it): a `const` item did not rebuild as a `let`",
                    ),
                }
            }
            // repeated in every generated function (`expand::with_body_uses`); one in an inner
            // block is an error there
            Stmt::Item(syn::Item::Use(_)) => {}
            Stmt::Item(item) => {
                // the item's name, or its keyword
                let at = match item {
                    syn::Item::Fn(f) => f.sig.ident.span(),
                    syn::Item::Struct(s) => s.ident.span(),
                    syn::Item::Enum(e) => e.ident.span(),
                    syn::Item::Static(s) => s.ident.span(),
                    syn::Item::Type(t) => t.ident.span(),
                    syn::Item::Mod(m) => m.ident.span(),
                    syn::Item::Trait(t) => t.ident.span(),
                    syn::Item::Union(u) => u.ident.span(),
                    syn::Item::Const(c) => c.ident.span(),
                    syn::Item::Impl(i) => i.impl_token.span,
                    other => other.span(),
                };
                self.errors.push(
                    at,
                    "items inside a #[differentiate] function are not supported (except `const` and `use`); move this item outside the function",
                )
            }
            Stmt::Macro(m) => match assertion_arity(&m.mac) {
                Some(checked) => {
                    self.lower_assertion(&m.mac, checked);
                }
                None => self.unsupported_macro(&m.mac),
            },
        }
    }

    /// `assert!(c)`, `assert_eq!(a, b, "{x}", ..)` and the like: the checked values and the
    /// message's arguments are lowered, so the macro is written back over the forward
    /// pass's values; a variable the format string captures (`{x}`) is passed by name.
    fn lower_assertion(&mut self, mac: &syn::Macro, checked: usize) -> Option<Operand> {
        use syn::parse::Parser;
        let parser = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
        let Ok(args) = parser.parse2(mac.tokens.clone()) else {
            // rustc reports the malformed macro on the function as written
            self.errors.fail_silently();
            return None;
        };
        if args.len() < checked {
            self.errors.fail_silently();
            return None;
        }
        let mut values = self.lower_args(args.iter().take(checked))?;
        let mut message = None;
        let mut names: Vec<Option<Ident>> = Vec::new();
        let mut rest = args.iter().skip(checked);
        if let Some(first) = rest.next() {
            let Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(format),
                ..
            }) = first
            else {
                if checked == 0 {
                    // a print macro's format string must be a literal: rustc reports it on
                    // the function as written
                    self.errors.fail_silently();
                } else {
                    self.errors.push_spanned(
                        first,
                        "the message of an assertion must be a format string literal here, as in `assert!(x > 0.0, \"x = {x}\")`",
                    );
                }
                return None;
            };
            for arg in rest {
                match arg {
                    Expr::Assign(named) if local_ident(&named.left).is_some() => {
                        names.push(local_ident(&named.left));
                        values.push(self.lower_single(&named.right)?);
                    }
                    positional => {
                        names.push(None);
                        values.push(self.lower_single(positional)?);
                    }
                }
            }
            for captured in format_captures(&format.value()) {
                if names.iter().flatten().any(|n| *n == captured) {
                    continue;
                }
                let ident = Ident::new(&captured, format.span());
                let read: Expr = syn::parse_quote!(#ident);
                values.push(self.lower_single(&read)?);
                names.push(Some(ident));
            }
            message = Some(format.clone());
        }
        let diverges = diverging_macro(mac);
        let assertion = crate::ir::AssertMacro {
            path: mac.path.clone(),
            checked,
            message,
            names,
            diverges,
        };
        self.emit(Opcode::Assert(assertion), values, 0, mac.span());
        if diverges {
            self.diverged = self.func.block(self.block).insts.last().copied();
        }
        Some(Operand::Unit)
    }

    fn unsupported_macro(&mut self, mac: &syn::Macro) {
        let name = mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let message = if name == "dbg" {
            "macro `dbg!` is not supported inside #[differentiate]; print the value on a line of its own with `eprintln!(\"{x:?}\")`, which runs with the forward pass".to_string()
        } else {
            format!("macro `{name}!` is not supported inside #[differentiate] (`vec!` and the `assert!`, `println!` and `panic!` families are); compute the value with plain expressions, or call a helper function on constants")
        };
        self.errors.push_spanned(&mac.path, message);
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
        if let (Pat::Ident(p), Some(init), None) = (pat, &local.init, &annotation) {
            if let Expr::Closure(c) = strip_parens(&init.expr) {
                let c = c.clone();
                if p.subpat.is_none() && p.by_ref.is_none() {
                    let slot = match self.check_local_closure(&c) {
                        Some(()) => Slot::Closure(LocalClosure(std::rc::Rc::new((
                            c.clone(),
                            self.env.clone(),
                        )))),
                        None => Slot::Poisoned,
                    };
                    self.env.push(Binding {
                        name: p.ident.to_string(),
                        slot,
                    });
                    return;
                }
            }
        }
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
            Some(mut value) => {
                if let (Some(ty), Operand::Value(v)) = (annotation, &mut value) {
                    // `let n: usize = x.shape()[0];` declares an integer, through which no
                    // derivative passes even when it is read from a value being differentiated:
                    // a cast to the declared type says so (and is no conversion at all)
                    if crate::args::is_integer_type(&ty) {
                        *v = self.emit1(Opcode::Cast(ty.clone()), vec![*v], local.pat.span());
                    }
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
            Pat::Struct(s) => s.fields.iter().for_each(|f| self.poison_pattern(&f.pat)),
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
            // `let State { x, v: speed, .. } = s;` of a struct built in the function
            (Pat::Struct(pattern), Operand::Struct(_, fields)) => {
                for field in &pattern.fields {
                    let found = match &field.member {
                        syn::Member::Named(name) => fields.iter().find(|(n, _)| n == name),
                        syn::Member::Unnamed(_) => None,
                    };
                    match found {
                        Some((_, value)) => self.bind_pattern(&field.pat, value.clone(), declare),
                        // rustc reports the unknown field itself
                        None => {
                            self.poison_pattern(&field.pat);
                            self.errors.fail_silently();
                        }
                    }
                }
            }
            (Pat::Struct(pattern), _) => {
                self.poison_pattern(&Pat::Struct(pattern.clone()));
                self.errors.push_spanned(
                    pattern,
                    "a struct pattern takes apart a struct built in this function (`let S { x, v } = s;` after `let s = S { .. };`); read the fields of a parameter as `p.x`",
                );
            }
            (Pat::Tuple(t), Operand::Value(_)) if t.elems.iter().any(|p| matches!(p, Pat::Rest(_))) => {
                self.poison_pattern(&Pat::Tuple(t.clone()));
                self.errors.push_spanned(
                    t,
                    "`..` in this tuple pattern is not supported; name every element, with `_` for those not used",
                );
            }
            // `let (a, b) = edges[k];` of a constant table: one field read per name (a value
            // that carries derivatives is refused at its `Place` by the analysis)
            (Pat::Tuple(t), Operand::Value(tuple)) => {
                for (k, p) in t.elems.iter().enumerate() {
                    if !matches!(p, Pat::Wild(_)) {
                        let step = crate::ir::PlaceStep::Field(syn::Member::Unnamed(syn::Index {
                            index: k as u32,
                            span: p.span(),
                        }));
                        let field = self.extended_place(tuple, step, p.span());
                        self.bind_pattern(p, Operand::Value(field), declare);
                    }
                }
            }
            (Pat::Tuple(t), _) => self.errors.push_spanned(
                t,
                "this tuple pattern does not match the shape of the value; destructure tuple expressions, calls, or `if`/`match` expressions yielding tuples",
            ),
            // `let [a, b, c] = x;`: one element read per name (rustc checks the length)
            (Pat::Slice(s), Operand::Value(array))
                if s.elems.iter().all(|p| {
                    matches!(p, Pat::Wild(_))
                        || matches!(p, Pat::Ident(i) if i.subpat.is_none() && i.by_ref.is_none())
                }) =>
            {
                for (k, p) in s.elems.iter().enumerate() {
                    if let Pat::Ident(_) = p {
                        let index = self.constant(quote!(#k), p.span());
                        let element = self.element(array, index, p.span());
                        self.bind_pattern(p, Operand::Value(element), declare);
                    }
                }
            }
            (Pat::Slice(s), _) => self.errors.push_spanned(
                s,
                "an array pattern binds plain names or `_` to the elements of one array, like `let [a, b, c] = x;`; use `x[i]` for the others",
            ),
            (other, _) => self.errors.push_spanned(
                other,
                "this pattern is not supported; bind a name, `_`, a tuple of those, or an array's elements (`[a, b, c]`)",
            ),
        }
    }

    // ---- expressions ----

    fn lower_single(&mut self, e: &Expr) -> Option<Value> {
        match self.lower_expr(e)? {
            Operand::Value(v) => Some(v),
            Operand::Unit if self.diverged.is_some() => {
                self.errors.push_spanned(e, "a `panic!` inside an expression is not supported; panic in a statement of its own, or as the whole value of a block, an arm or the function");
                None
            }
            Operand::Struct(..) => {
                self.errors.push_spanned(
                    e,
                    "a struct built in the function can be read by its fields (`s.x`), taken apart (`let State { x, v } = s;`), passed to a function (`energy(&s)`) or returned; not used as one value here",
                );
                None
            }
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
                .push(l.let_token.span, "`if let` and `while let` are not supported; use `match` (inside a `loop` for `while let`)");
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
            // `let (rows, cols) = m.shape();` of a nalgebra matrix: its two integer dimensions
            // (rustc rejects the pattern for any receiver whose `shape` is not a pair)
            Expr::MethodCall(m) if arity == 2 && m.method == "shape" && m.args.is_empty() => {
                let matrix = self.lower_single(&m.receiver)?;
                let span = m.span();
                let rows = self.emit1(
                    Opcode::Primitive(&primitives::linalg::NROWS),
                    vec![matrix],
                    span,
                );
                let cols = self.emit1(
                    Opcode::Primitive(&primitives::linalg::NCOLS),
                    vec![matrix],
                    span,
                );
                Some(Operand::Tuple(vec![
                    Operand::Value(rows),
                    Operand::Value(cols),
                ]))
            }
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
                // values in the IR are owned, except borrowed parameters and borrows:
                // `*v` of a loop element is `v` itself
                UnOp::Deref(_) => {
                    let arg = self.lower_single(&u.expr)?;
                    let borrowed = match self.func.value(arg).def {
                        ValueDef::Param(i) => {
                            matches!(self.func.params[i].ty, syn::Type::Reference(_))
                        }
                        ValueDef::Result(inst, _) => {
                            matches!(self.func.inst(inst).opcode, Opcode::Ref)
                        }
                        ValueDef::BlockParam(..) => false,
                    };
                    Some(Operand::Value(if borrowed {
                        self.emit1(Opcode::Deref, vec![arg], span)
                    } else {
                        arg
                    }))
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
                    "a closure is supported here only bound by `let f = |x| ...;` and called as `f(a)` (or in an iterator chain or a nalgebra `map`); bind it with `let`, or write a separate #[differentiate] function",
                );
                None
            }
            Expr::Macro(m) => self.lower_macro(&m.mac, span),
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
                Some(Operand::Value(self.emit1(Opcode::Ref, vec![arg], span)))
            }
            Expr::Field(_) => self.lower_place(e),
            Expr::Struct(st) => self.lower_struct(st),
            Expr::Index(index) => {
                if let Expr::Range(range) = &*index.index {
                    let array = self.lower_single(&index.expr)?;
                    return self.lower_slice(array, range).map(Operand::Value);
                }
                if place_has_field(&index.expr) {
                    return self.lower_place(e);
                }
                let array = self.lower_single(&index.expr)?;
                // `m[(i, j)]`: a tuple of indices into a matrix
                let i = match &*index.index {
                    Expr::Tuple(t) if !t.elems.is_empty() => {
                        let parts = self.lower_args(&t.elems)?;
                        self.emit1(Opcode::Tuple, parts, t.span())
                    }
                    other => self.lower_single(other)?,
                };
                if let Some(value) = self.just_written(array, i) {
                    return Some(Operand::Value(value));
                }
                if self.has_container_elements(array) {
                    return Some(Operand::Value(self.container_element(array, i, span)));
                }
                Some(Operand::Value(self.emit1(
                    Opcode::Index,
                    vec![array, i],
                    span,
                )))
            }
            Expr::Array(array) => {
                let elems = self.lower_args(&array.elems)?;
                Some(Operand::Value(self.emit1(
                    Opcode::ArrayLiteral { vec: false },
                    elems,
                    span,
                )))
            }
            Expr::Repeat(repeat) => {
                let value = self.lower_single(&repeat.expr)?;
                let len = repeat.len.to_token_stream();
                Some(Operand::Value(self.emit1(
                    Opcode::ArrayFill(len),
                    vec![value],
                    span,
                )))
            }
            Expr::ForLoop(_) | Expr::While(_) | Expr::Loop(_) => {
                if expr_returns(e) {
                    self.nested_return(e);
                    return None;
                }
                let outcome = self.lower_loop_expr(e)?;
                Some(match outcome.value {
                    Some(v) => Operand::Value(v),
                    None => Operand::Unit,
                })
            }
            Expr::Break(_) | Expr::Continue(_) => {
                self.nested_return(e);
                None
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
                    Some(Slot::Closure(_)) => {
                        self.errors.push_spanned(
                            path,
                            format!("the closure `{ident}` can only be called here, as `{ident}(..)`; passing it on is not supported (write the call inside the chain's own closure, like `.map(|v| {ident}(v))`)"),
                        );
                        return None;
                    }
                    Some(Slot::Uninit) => {
                        // rustc reports the possibly-uninitialised use itself
                        self.errors.fail_silently();
                        return None;
                    }
                    Some(Slot::Element { array, index }) => {
                        let (array, index) = (array.to_string(), *index);
                        let Some(Slot::Bound(Operand::Value(current))) = self.lookup(&array) else {
                            return None;
                        };
                        let current = *current;
                        return Some(Operand::Value(self.emit1(
                            Opcode::Index,
                            vec![current, index],
                            path.span(),
                        )));
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
        if let (Some(BinaryOp::Add | BinaryOp::Sub), Expr::Index(index)) = (op, &*b.left) {
            // `v[i] += e`: one instruction, whose pullback reads no element
            let element = !place_has_field(&index.expr)
                && !matches!(&*index.index, Expr::Tuple(_) | Expr::Range(_));
            if let (true, Some(base)) = (element, local_ident(&index.expr)) {
                let array = self.lower_single(&index.expr)?;
                let i = self.lower_single(&index.index)?;
                let rhs = self.lower_single(&b.right)?;
                let subtract = matches!(op, Some(BinaryOp::Sub));
                let updated = self.emit1(Opcode::IndexAdd { subtract }, vec![array, i, rhs], span);
                self.assign(&base, Slot::Bound(Operand::Value(updated)));
                return Some(Operand::Unit);
            }
        }
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

    /// `a && b` is `if a { b } else { false }`, which keeps `b` unevaluated when `a` is false
    /// (and `a || b` is `if a { true } else { b }`); a variable `b` assigns is merged after
    /// the branch as in any `if`.
    fn lower_short_circuit(&mut self, b: &syn::ExprBinary) -> Option<Operand> {
        let span = b.span();
        let cond = self.lower_single(&b.left)?;
        let is_and = matches!(b.op, BinOp::And(_));
        let rhs = |this: &mut Self| this.lower_single(&b.right).map(Operand::Value);
        let constant = |this: &mut Self| {
            let value = if is_and { quote!(false) } else { quote!(true) };
            Some(Operand::Value(this.constant(value, span)))
        };
        let arms: Vec<Arm<'_, 'e>> = if is_and {
            vec![(None, &rhs), (None, &constant)]
        } else {
            vec![(None, &constant), (None, &rhs)]
        };
        self.structured(Opcode::If, cond, arms, span)
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
            Expr::Field(_) if self.struct_root(place).is_some() => {
                self.assign_struct_field(place, value)
            }
            Expr::Unary(syn::ExprUnary {
                op: UnOp::Deref(_),
                expr,
                ..
            }) if self.element_item(expr).is_some() => {
                let (array, index) = self.element_item(expr).expect("checked");
                let Operand::Value(value) = value else {
                    self.errors.push_spanned(place, "an array element holds a single value");
                    return;
                };
                let Some(Slot::Bound(Operand::Value(current))) = self.lookup(&array.to_string()) else {
                    return;
                };
                let current = *current;
                let updated =
                    self.emit1(Opcode::IndexSet, vec![current, index, value], place.span());
                self.assign(&array, Slot::Bound(Operand::Value(updated)));
            }
            Expr::Index(index) => {
                let Operand::Value(value) = value else {
                    self.errors.push_spanned(index, "an array element holds a single value");
                    return;
                };
                let Some(base) = local_ident(&index.expr) else {
                    let message = if matches!(strip_parens(&index.expr), Expr::Index(_)) {
                        "nested arrays are not written element by element; keep the numbers in one flat array or `Vec` (`m[i * cols + j] = x`), or use a nalgebra matrix"
                    } else {
                        "write to elements of a local array or `Vec` variable, like `v[i] = x`"
                    };
                    self.errors.push_spanned(&index.expr, message);
                    return;
                };
                let (Some(array), Some(i)) = (self.lower_single(&index.expr), self.lower_single(&index.index)) else {
                    return;
                };
                let updated = self.emit1(Opcode::IndexSet, vec![array, i, value], index.span());
                self.assign(&base, Slot::Bound(Operand::Value(updated)));
            }
            other => self.errors.push_spanned(
                other,
                format!(
                    "assignment through {} is not supported; assign to a local variable",
                    describe(other)
                ),
            ),
        }
    }

    /// For `s.x.y` (fields only) of a variable bound to a struct built in the function: the
    /// variable and the field names, outermost first.
    fn struct_root(&self, place: &Expr) -> Option<(Ident, Vec<Ident>)> {
        let mut names = Vec::new();
        let mut cursor = strip_parens(place);
        while let Expr::Field(f) = cursor {
            let syn::Member::Named(name) = &f.member else {
                return None;
            };
            names.push(name.clone());
            cursor = strip_parens(&f.base);
        }
        let root = local_ident(cursor)?;
        names.reverse();
        match self.lookup(&root.to_string()) {
            Some(Slot::Bound(Operand::Struct(..))) if !names.is_empty() => Some((root, names)),
            _ => None,
        }
    }

    /// `s.x = e` on a struct built in the function: a new version of `s` with that field.
    fn assign_struct_field(&mut self, place: &Expr, value: Operand) {
        let Some((root, names)) = self.struct_root(place) else {
            return;
        };
        let Some(Slot::Bound(current)) = self.lookup(&root.to_string()).cloned() else {
            return;
        };
        fn replace(operand: &mut Operand, names: &[Ident], value: Operand) -> Result<(), bool> {
            let Some((first, rest)) = names.split_first() else {
                if operand.same_shape(&value) {
                    *operand = value;
                    return Ok(());
                }
                return Err(true);
            };
            let Operand::Struct(_, fields) = operand else {
                return Err(true);
            };
            match fields.iter_mut().find(|(n, _)| n == first) {
                Some((_, field)) => replace(field, rest, value),
                None => Err(false),
            }
        }
        let mut updated = current;
        match replace(&mut updated, &names, value) {
            Ok(()) => {
                self.assign(&root, Slot::Bound(updated));
            }
            Err(true) => self.errors.push_spanned(
                place,
                "assign a single value to a field of a struct built in the function (`s.x = e`), as its struct expression gave it",
            ),
            // rustc reports the unknown field itself
            Err(false) => self.errors.fail_silently(),
        }
    }

    /// For the name of an `iter_mut()` loop's item: the array it is an element of, and its
    /// index.
    fn element_item(&self, e: &Expr) -> Option<(Ident, Value)> {
        let name = local_ident(strip_parens(e))?;
        match self.lookup(&name.to_string()) {
            Some(Slot::Element { array, index }) => Some((array.clone(), *index)),
            _ => None,
        }
    }

    fn lower_block(&mut self, block: &syn::Block) -> Option<Operand> {
        let env_len = self.env.len();
        let mut value = Some(Operand::Unit);
        for (i, stmt) in block.stmts.iter().enumerate() {
            if self.diverged.is_some() {
                // after a `panic!`: unreachable, as rustc warns
                break;
            }
            if stmt_jumps(stmt, Ctx::Loop) {
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
        // per arm: the `panic!` that ends it, whose arm neither yields a value nor assigns
        let mut diverged: Vec<Option<Inst>> = Vec::new();
        for (binder, arm) in arms {
            let block = self.func.create_block();
            self.block = block;
            let env_len = self.env.len();
            if let Some(binder) = &binder {
                self.declare(binder, Slot::Bound(Operand::Value(selector)));
            }
            let value = arm(self);
            diverged.push(self.diverged.take());
            self.env.truncate(env_len);
            lowered.push((
                block,
                value,
                std::mem::replace(&mut self.env, snapshot.clone()),
            ));
        }
        self.block = outer;
        let all_values: Vec<Operand> = lowered
            .iter()
            .map(|(_, v, _)| v.clone())
            .collect::<Option<_>>()?;
        if lowered.is_empty() {
            // a `match` without arms: rustc checks it on the user's function
            self.errors.fail_silently();
            return None;
        }
        if diverged.iter().all(Option::is_some) {
            // no arm comes back: neither does the branch
            let blocks = lowered.iter().map(|(block, _, _)| *block).collect();
            self.func
                .append(outer, opcode, vec![selector], blocks, 0, span);
            let unreachable = crate::ir::AssertMacro {
                path: syn::parse_quote!(::core::unreachable),
                checked: 0,
                message: None,
                names: Vec::new(),
                diverges: true,
            };
            self.emit(Opcode::Assert(unreachable), Vec::new(), 0, span);
            self.diverged = self.func.block(outer).insts.last().copied();
            return Some(Operand::Unit);
        }
        let values: Vec<&Operand> = all_values
            .iter()
            .zip(&diverged)
            .filter(|(_, d)| d.is_none())
            .map(|(v, _)| v)
            .collect();
        let shape = values[0].clone();
        if !values.iter().all(|v| v.same_shape(&shape)) {
            self.errors.push(span, "the arms evaluate to values of different shapes; make every arm yield the same kind of value");
            return None;
        }
        // variables whose value differs between arms become results
        let mut merged: Vec<(usize, Operand)> = Vec::new();
        let mut final_env = snapshot.clone();
        for (index, before) in snapshot.iter().enumerate() {
            let slots: Vec<&Slot> = lowered
                .iter()
                .zip(&diverged)
                .filter(|(_, d)| d.is_none())
                .map(|((_, _, env), _)| &env[index].slot)
                .collect();
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
        let mut count = 0;
        for ((block, value, env), diverged) in lowered.iter().zip(&diverged) {
            if diverged.is_none() {
                let mut yields = value.as_ref().expect("checked").values();
                for (index, _) in &merged {
                    if let Slot::Bound(op) = &env[*index].slot {
                        yields.extend(op.values());
                    }
                }
                count = yields.len();
                self.func.blocks[block.index()].yields = yields;
            }
            arm_blocks.push(*block);
        }
        // an arm ended by `panic!` yields the macro's results: `!` stands for any value
        for (block, diverged) in arm_blocks.iter().zip(&diverged) {
            if let Some(diverged) = diverged {
                let yields = (0..count)
                    .map(|_| self.func.add_result(*diverged))
                    .collect();
                self.func.blocks[block.index()].yields = yields;
            }
        }
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
                    self.name_value_str(*v, &binding.name);
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

    /// For a `match` with guards: the position of the arm it takes, an integer computed
    /// arm by arm as Rust does (the pattern, then the guard, only while no arm before was
    /// taken); `None` for a match without guards.
    fn guarded_arm_position(
        &mut self,
        m: &syn::ExprMatch,
        scrutinee: Value,
        binders: &[Option<Ident>],
    ) -> Option<Option<Value>> {
        if m.arms.iter().all(|arm| arm.guard.is_none()) {
            return Some(None);
        }
        let position = self.arm_position_from(m, scrutinee, binders, 0)?;
        match position {
            Operand::Value(v) => Some(Some(v)),
            _ => None,
        }
    }

    /// The position of the arm taken among arms `k..` (the last one when no other is: the
    /// match is exhaustive without its guards, which rustc checks).
    fn arm_position_from(
        &mut self,
        m: &syn::ExprMatch,
        scrutinee: Value,
        binders: &[Option<Ident>],
        k: usize,
    ) -> Option<Operand> {
        let span = m.arms[k].pat.span();
        let here = |this: &mut Self| -> Option<Operand> {
            let k = proc_macro2::Literal::usize_suffixed(k);
            Some(Operand::Value(this.constant(quote!(#k), span)))
        };
        if k + 1 == m.arms.len() {
            return here(self);
        }
        let arm = &m.arms[k];
        // the pattern alone: a binding `n` and `_` match anything, `n @ p` what `p` matches,
        // a constant `N` (no binding) what equals it
        let pattern = match &arm.pat {
            Pat::Wild(_) => None,
            Pat::Ident(p) if p.subpat.is_some() => {
                p.subpat.as_ref().map(|(_, sub)| (**sub).clone())
            }
            Pat::Ident(_) if binders[k].is_some() => None,
            other => Some(other.clone()),
        };
        let matched = match pattern {
            Some(pat) => {
                let wild = Pat::Wild(syn::PatWild {
                    attrs: Vec::new(),
                    underscore_token: Default::default(),
                });
                let yes = |this: &mut Self| Some(Operand::Value(this.constant(quote!(true), span)));
                let no = |this: &mut Self| Some(Operand::Value(this.constant(quote!(false), span)));
                match self.structured(
                    Opcode::Match(vec![pat, wild]),
                    scrutinee,
                    vec![(None, &yes), (None, &no)],
                    span,
                )? {
                    Operand::Value(v) => Some(v),
                    _ => return None,
                }
            }
            None => None,
        };
        let guard = |this: &mut Self| -> Option<Operand> {
            let env_len = this.env.len();
            if let Some(binder) = &binders[k] {
                this.declare(binder, Slot::Bound(Operand::Value(scrutinee)));
            }
            let (_, guard) = arm.guard.as_ref()?;
            let taken = this.lower_condition(guard);
            this.env.truncate(env_len);
            Some(Operand::Value(taken?))
        };
        let taken = match (matched, &arm.guard) {
            (None, None) => return here(self),
            (Some(matched), None) => matched,
            (None, Some(_)) => match guard(self)? {
                Operand::Value(v) => v,
                _ => return None,
            },
            (Some(matched), Some(_)) => {
                let no = |this: &mut Self| Some(Operand::Value(this.constant(quote!(false), span)));
                match self.structured(
                    Opcode::If,
                    matched,
                    vec![(None, &guard), (None, &no)],
                    span,
                )? {
                    Operand::Value(v) => v,
                    _ => return None,
                }
            }
        };
        let rest = |this: &mut Self| this.arm_position_from(m, scrutinee, binders, k + 1);
        self.structured(Opcode::If, taken, vec![(None, &here), (None, &rest)], span)
    }

    fn lower_match(&mut self, m: &syn::ExprMatch) -> Option<Operand> {
        let scrutinee = self.lower_single(&m.expr)?;
        let mut binders = Vec::new();
        for arm in &m.arms {
            binders.push(self.check_arm(arm)?);
        }
        if let Some(position) = self.guarded_arm_position(m, scrutinee, &binders)? {
            // a match on the position of the arm taken; binders name the scrutinee
            let bodies: Vec<_> = m
                .arms
                .iter()
                .zip(&binders)
                .map(|(arm, binder)| {
                    move |this: &mut Self| {
                        if let Some(binder) = binder {
                            this.declare(binder, Slot::Bound(Operand::Value(scrutinee)));
                        }
                        this.lower_expr(&arm.body)
                    }
                })
                .collect();
            let arms: Vec<Arm<'_, 'e>> = bodies
                .iter()
                .map(|f| (None, f as &dyn Fn(&mut Self) -> Option<Operand>))
                .collect();
            let pats = arm_positions(m.arms.len());
            return self.structured(Opcode::Match(pats), position, arms, m.span());
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
            match self.lower_argument(arg) {
                Some(v) => values.push(v),
                None => ok = false,
            }
        }
        ok.then_some(values)
    }

    /// A call's argument; a struct built in the function (`s`, `&s`, or a struct expression)
    /// is made into one value here (`MakeStruct`), as the callee takes it whole.
    fn lower_argument(&mut self, arg: &Expr) -> Option<Value> {
        let (inner, borrowed) = match strip_parens(arg) {
            Expr::Reference(r) if r.mutability.is_none() => (strip_parens(&r.expr), true),
            other => (other, false),
        };
        let built = match inner {
            Expr::Struct(_) => true,
            _ => local_ident(inner).is_some_and(|name| {
                matches!(
                    self.lookup(&name.to_string()),
                    Some(Slot::Bound(Operand::Struct(..)))
                )
            }),
        };
        if !built {
            return self.lower_single(arg);
        }
        let Operand::Struct(path, fields) = self.lower_expr(inner)? else {
            return self.lower_single(arg);
        };
        let mut names = Vec::new();
        let mut values = Vec::new();
        for (name, field) in fields {
            let Operand::Value(value) = field else {
                self.errors.push_spanned(
                    inner,
                    "a struct passed to a function holds one value per field here, not a tuple or a struct; build the inner struct in a function of its own",
                );
                return None;
            };
            names.push(name);
            values.push(value);
        }
        let span = inner.span();
        let value = self.emit1(Opcode::MakeStruct(path.clone(), names), values, span);
        // its type (`Pair::<T>` written as `Pair<T>`), which saving it and its zero need
        let mut ty = path;
        for segment in &mut ty.segments {
            if let syn::PathArguments::AngleBracketed(args) = &mut segment.arguments {
                args.colon2_token = None;
            }
        }
        self.annotations.insert(
            value,
            syn::Type::Path(syn::TypePath {
                qself: None,
                path: ty,
            }),
        );
        Some(if borrowed {
            self.emit1(Opcode::Ref, vec![value], arg.span())
        } else {
            value
        })
    }

    /// `f64::sin(x)`, `Float::sin(x)`, `num_traits::Float::sin(x)`, `T::sin(x)`.
    /// `x.sin_cos()`: the pair `(x.sin(), x.cos())`, which is how the standard library computes
    /// it, each with its own rule.
    fn sin_cos(&mut self, x: Value, span: Span) -> Option<Operand> {
        let (sin, cos) = (primitives::method("sin", 1)?, primitives::method("cos", 1)?);
        let s = self.emit1(Opcode::Primitive(sin), vec![x], span);
        let c = self.emit1(Opcode::Primitive(cos), vec![x], span);
        Some(Operand::Tuple(vec![Operand::Value(s), Operand::Value(c)]))
    }

    fn primitive_path(
        &self,
        path: &syn::ExprPath,
        arity: usize,
    ) -> Option<&'static primitives::Primitive> {
        primitives::method(&self.float_method_path(path)?, arity)
    }

    /// For `f64::name`, `f32::name`, `Float::name`, `num_traits::Float::name` or `T::name` with
    /// `T` a type parameter: `name`.
    fn float_method_path(&self, path: &syn::ExprPath) -> Option<String> {
        if path.qself.is_some() {
            return None;
        }
        let segments = path_segments(&path.path);
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
        owner_ok.then(|| last.clone())
    }

    /// `std::mem::swap(&mut a, &mut b)` and `std::mem::replace(&mut a, e)` on local
    /// variables: rebindings, as `(a, b) = (b, a)` and `a = e` (returning the old `a`) are.
    /// None for any other call.
    fn lower_mem_call(
        &mut self,
        call: &syn::ExprCall,
        path: &syn::ExprPath,
    ) -> Option<Option<Operand>> {
        let segments = path_segments(&path.path);
        let name = match segments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["mem", name] | ["std" | "core", "mem", name] if path.qself.is_none() => name,
            _ => return None,
        };
        let args: Vec<&Expr> = call.args.iter().collect();
        let read = |this: &mut Self, ident: &Ident| {
            let e: Expr = syn::parse_quote!(#ident);
            this.lower_expr(&e)
        };
        match (name, &args[..]) {
            ("swap", [a, b]) => {
                let (a, b) = (mut_ref_ident(a)?, mut_ref_ident(b)?);
                Some((|| {
                    let (va, vb) = (read(self, &a)?, read(self, &b)?);
                    self.assign_place(&syn::parse_quote!(#a), vb);
                    self.assign_place(&syn::parse_quote!(#b), va);
                    Some(Operand::Unit)
                })())
            }
            ("replace", [a, value]) => {
                let a = mut_ref_ident(a)?;
                Some((|| {
                    let value = self.lower_expr(value)?;
                    let old = read(self, &a)?;
                    self.assign_place(&syn::parse_quote!(#a), value);
                    Some(old)
                })())
            }
            _ => None,
        }
    }

    fn lower_call(&mut self, call: &syn::ExprCall, results: usize) -> Option<Operand> {
        let span = call.span();
        let Expr::Path(path) = &*call.func else {
            self.errors
                .push_spanned(&call.func, "only calls of named functions are supported; call the function by its path, like `helper(x)`");
            return None;
        };
        if let Some(ident) = path.path.get_ident() {
            // a closure whose definition was an error already reported
            if let Some(Slot::Poisoned) = self.lookup(&ident.to_string()) {
                return None;
            }
        }
        if let Some(operand) = self.lower_mem_call(call, path) {
            return operand;
        }
        let args = self.lower_args(&call.args)?;
        let segments = path_segments(&path.path);
        if path.qself.is_none()
            && segments.len() == 2
            && segments[0] == "Vec"
            && (segments[1] == "new" && args.is_empty()
                || segments[1] == "with_capacity" && args.len() == 1)
        {
            return Some(Operand::Value(self.emit1(Opcode::VecNew, args, span)));
        }
        if let Some(ty) = fixed_matrix_constructor(path).filter(|_| !args.is_empty()) {
            if results != 1 {
                // rustc reports the mismatched tuple pattern itself
                self.errors.fail_silently();
                return None;
            }
            let value = self.emit1(Opcode::MatrixNew(ty), args, span);
            return Some(Operand::Value(value));
        }
        if args.len() == 1 && self.float_method_path(path).is_some_and(|m| m == "sin_cos") {
            return self.sin_cos(args[0], span);
        }
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
                Some(Slot::Closure(closure)) => {
                    let closure = closure.clone();
                    return self.inline_closure(&closure, args, results);
                }
                Some(_) => {
                    self.errors.push_spanned(ident, "calling a local variable is not supported; call a named #[differentiate] function, or a closure bound by `let f = |x| ...;`");
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
        let name = m.method.to_string();
        // `s.energy(k)` on a struct built in the function: its type is the struct
        // expression's, so the method is called by path, `State::energy(&s, k)`, as a
        // differentiated method composes (one that is not differentiated fails there)
        if let Some(receiver) = local_ident(strip_parens(&m.receiver)) {
            if let Some(Slot::Bound(Operand::Struct(path, _))) = self.lookup(&receiver.to_string())
            {
                let mut callee = path.clone();
                callee.segments.push(syn::PathSegment {
                    ident: m.method.clone(),
                    arguments: match &m.turbofish {
                        Some(generics) => syn::PathArguments::AngleBracketed(generics.clone()),
                        None => syn::PathArguments::None,
                    },
                });
                let mut args: syn::punctuated::Punctuated<Expr, syn::Token![,]> =
                    syn::punctuated::Punctuated::new();
                args.push(Expr::Reference(syn::ExprReference {
                    attrs: Vec::new(),
                    and_token: syn::Token![&](m.receiver.span()),
                    mutability: None,
                    expr: m.receiver.clone(),
                }));
                args.extend(m.args.iter().cloned());
                let call = syn::ExprCall {
                    attrs: Vec::new(),
                    func: Box::new(Expr::Path(syn::ExprPath {
                        attrs: Vec::new(),
                        qself: None,
                        path: callee,
                    })),
                    paren_token: m.paren_token,
                    args,
                };
                return self.lower_expr(&Expr::Call(call));
            }
        }
        // `xs.for_each(|v| body)` is `for v in xs { body; }`, where `return` in the body
        // would mean `continue`
        if let ("for_each", [Expr::Closure(c)]) =
            (name.as_str(), &m.args.iter().collect::<Vec<_>>()[..])
        {
            let iter_mut = matches!(&*m.receiver, Expr::MethodCall(r) if r.method == "iter_mut");
            if c.inputs.len() == 1 && (is_iterator_chain(&m.receiver) || iter_mut) {
                if expr_returns(&c.body) {
                    struct FirstReturn(Option<Span>);
                    impl<'ast> Visit<'ast> for FirstReturn {
                        fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
                            self.0.get_or_insert(r.return_token.span);
                        }
                        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
                    }
                    let mut first = FirstReturn(None);
                    first.visit_expr(&c.body);
                    self.errors.push(
                        first.0.unwrap_or_else(|| c.body.span()),
                        "`return` in a `for_each` closure is not supported; write a `for` loop and use `continue`",
                    );
                    return None;
                }
                // (a typed parameter `|v: &f64|` loses its type: a `for` pattern has none)
                let (pat, source, body) = (closure_param(&c.inputs[0]), &m.receiver, &c.body);
                let tokens = quote::quote_spanned!(span=> for #pat in #source { #body; });
                let Ok(for_loop) = syn::parse2::<Expr>(tokens) else {
                    self.errors.push(
                        span,
                        "internal error in #[differentiate] (please report it): a `for_each` did not rebuild as a `for` loop",
                    );
                    return None;
                };
                return self.lower_expr(&for_loop);
            }
        }
        // `m.try_inverse().unwrap()` and `a.lu().solve(&b).unwrap()` on nalgebra matrices
        if matches!(name.as_str(), "unwrap" | "expect") {
            if let Expr::MethodCall(inner) = &*m.receiver {
                if inner.method == "try_inverse" && inner.args.is_empty() {
                    let matrix = self.lower_single(&inner.receiver)?;
                    let prim = &primitives::linalg::INVERSE;
                    return Some(Operand::Value(self.emit1(
                        Opcode::Primitive(prim),
                        vec![matrix],
                        span,
                    )));
                }
                if let (true, 1, Expr::MethodCall(lu)) =
                    (inner.method == "solve", inner.args.len(), &*inner.receiver)
                {
                    if lu.method == "lu" && lu.args.is_empty() {
                        let matrix = self.lower_single(&lu.receiver)?;
                        let rhs = self.lower_single(&inner.args[0])?;
                        let prim = &primitives::linalg::SOLVE;
                        return Some(Operand::Value(self.emit1(
                            Opcode::Primitive(prim),
                            vec![matrix, rhs],
                            span,
                        )));
                    }
                }
            }
        }
        match (name.as_str(), m.args.len()) {
            ("push", 1) | ("swap", 2) => return self.lower_mutating_method(m),
            ("sum" | "product" | "collect", 0) | ("fold", 2) | ("all" | "any", 1)
                if is_iterator_chain(&m.receiver) =>
            {
                return self.lower_reduction(m)
            }
            _ => {}
        }
        if let ("map", [Expr::Closure(closure)]) =
            (name.as_str(), &m.args.iter().collect::<Vec<_>>()[..])
        {
            if !is_iterator_chain(&m.receiver) {
                return self.lower_map_closure(m, closure);
            }
        }
        if let Some(adaptor) = unsupported_adaptor(m) {
            self.errors.push_spanned(
                &adaptor,
                format!("`{adaptor}` has no rule in iterator chains; write a `for` loop instead (with `if` for filters)"),
            );
            return None;
        }
        let receiver = self.lower_single(&m.receiver);
        let args = self.lower_args(&m.args);
        let mut all = vec![receiver?];
        all.extend(args?);
        match (name.as_str(), all.len()) {
            ("len", 1) => return Some(Operand::Value(self.emit1(Opcode::Len, all, span))),
            ("clone", 1) => {
                return Some(Operand::Value(self.emit1(
                    Opcode::Copy(CopyKind::Clone),
                    all,
                    span,
                )))
            }
            ("to_vec", 1) => {
                return Some(Operand::Value(self.emit1(
                    Opcode::Copy(CopyKind::ToVec),
                    all,
                    span,
                )))
            }
            ("iter" | "into_iter" | "iter_mut", 1) => {
                self.errors.push_spanned(&m.method, "iterators are supported in `for` loops and in `.sum()`, `.product()`, `.fold()` and `.collect()` chains; use the iterator there or write a `for` loop");
                return None;
            }
            _ => {}
        }
        if let Some(prim) = primitives::linalg::method(&name, all.len())
            .filter(|_| primitives::linalg::is_matrix_only(&name))
        {
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                all,
                span,
            )));
        }
        let tensor_method = primitives::tensor::method(&name, all.len());
        if let Some(prim) = tensor_method.filter(|_| {
            primitives::tensor::is_tensor_only(&name) || matches!(name.as_str(), "sum" | "mean")
        }) {
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                all,
                span,
            )));
        }
        if name == "sin_cos" && all.len() == 1 {
            return self.sin_cos(all[0], span);
        }
        if let Some(prim) = primitives::method(&name, all.len()) {
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                all,
                span,
            )));
        }
        // a float method's name with other arguments is another type's method (nalgebra's
        // `v.max()`): one without a rule, like any other below
        match (name.as_str(), all.len() - 1) {
            // capacity only: nothing the values or the derivative see
            ("reserve" | "reserve_exact", 1) | ("shrink_to_fit", 0) => return Some(Operand::Unit),
            ("reverse" | "sort" | "sort_unstable" | "clear" | "pop" | "dedup", 0)
            | (
                "fill"
                | "fill_with"
                | "sort_by"
                | "sort_by_key"
                | "sort_unstable_by"
                | "sort_unstable_by_key"
                | "rotate_left"
                | "rotate_right"
                | "truncate"
                | "remove"
                | "swap_remove"
                | "extend"
                | "extend_from_slice"
                | "append"
                | "retain"
                | "drain"
                | "split_off"
                | "copy_from_slice"
                | "clone_from_slice",
                1,
            )
            | ("insert" | "resize" | "resize_with" | "copy_within", 2)
            // nalgebra's in-place forms
            | ("fill_with_identity", 0)
            | ("copy_from" | "fill_diagonal" | "apply", 1)
            | (
                "set_column" | "set_row" | "swap_rows" | "swap_columns" | "fill_row"
                | "fill_column" | "fill_lower_triangle" | "fill_upper_triangle",
                2,
            ) => {
                self.errors.push_spanned(
                    &m.method,
                    format!("`{name}` changes its receiver in place, which #[differentiate] does not follow; build the changed vector instead, with a loop writing `w[i] = ..`, `push`, `v.swap(i, j)` or `vec![c; n]`"),
                );
                return None;
            }
            // `transpose_mut`, `scale_mut`, `column_mut`, ...: by convention `&mut self`
            _ if name.ends_with("_mut") => {
                self.errors.push_spanned(
                    &m.method,
                    format!("`{name}` changes its receiver in place, which #[differentiate] does not follow; build the changed value instead (`m.transpose()`, `m * c`, a loop writing `w[i] = ..`)"),
                );
                return None;
            }
            _ => {}
        }
        let opcode = Opcode::Method(m.method.clone(), m.turbofish.clone());
        Some(Operand::Value(self.emit1(opcode, all, span)))
    }
}

/// The segments of a path as strings: `std::vec::Vec` → `["std", "vec", "Vec"]`.
/// `&mut name` on a plain local variable: the name.
fn mut_ref_ident(e: &Expr) -> Option<Ident> {
    match strip_parens(e) {
        Expr::Reference(r) if r.mutability.is_some() => local_ident(strip_parens(&r.expr)),
        _ => None,
    }
}

fn path_segments(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// For an assertion macro (`assert`, `assert_eq`, `assert_ne` and their `debug_` forms, by
/// name or through `std::`/`core::`), how many leading arguments are checked values; for a
/// print macro (`print`, `println`, `eprint`, `eprintln`, by name or through `std::`), none:
/// its arguments are all the message's.
/// The macros after which control does not come back.
fn is_diverging(name: &str) -> bool {
    matches!(name, "panic" | "unreachable" | "todo" | "unimplemented")
}

/// Whether `mac` is `panic!`, `unreachable!`, `todo!` or `unimplemented!`.
fn diverging_macro(mac: &syn::Macro) -> bool {
    assertion_arity(mac) == Some(0)
        && mac
            .path
            .segments
            .last()
            .is_some_and(|s| is_diverging(&s.ident.to_string()))
}

fn assertion_arity(mac: &syn::Macro) -> Option<usize> {
    let segments = path_segments(&mac.path);
    let name = match segments.as_slice() {
        [name] => name,
        [krate, name] if krate == "std" || krate == "core" => name,
        _ => return None,
    };
    match name.as_str() {
        "assert" | "debug_assert" => Some(1),
        "assert_eq" | "assert_ne" | "debug_assert_eq" | "debug_assert_ne" => Some(2),
        "print" | "println" | "eprint" | "eprintln" if segments[0] != "core" => Some(0),
        _ if is_diverging(name) => Some(0),
        _ => None,
    }
}

/// The variables a format string captures by name: `{x}`, `{x:?}`, and widths or
/// precisions given as `{:w$}` or `{:.p$}`; `{{` and `}}` are literal braces.
fn format_captures(format: &str) -> Vec<String> {
    let is_name = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_alphanumeric() || c == '_')
            && s != "_"
    };
    let mut captures: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if is_name(name) && !captures.iter().any(|c| c == name) {
            captures.push(name.to_string());
        }
    };
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(escaped) = rest.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        let Some(close) = rest.find('}') else {
            break;
        };
        let inner = &rest[..close];
        rest = &rest[close + 1..];
        let (argument, spec) = inner.split_once(':').unwrap_or((inner, ""));
        add(argument.trim());
        // `w$` in the spec names the argument giving a width or precision
        for (end, _) in spec.match_indices('$') {
            let start = spec[..end]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            add(&spec[start..end]);
        }
    }
    captures
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

/// Whether an indexed expression goes through a field (`p.layers[i]`), making it a place in
/// a parameter set rather than an element of an array variable.
fn place_has_field(e: &Expr) -> bool {
    match e {
        Expr::Field(_) => true,
        Expr::Index(i) => place_has_field(&i.expr),
        Expr::Paren(p) => place_has_field(&p.expr),
        _ => false,
    }
}

/// Where a `for` loop or an iterator chain takes its items from.
enum Source {
    /// `a..b`, `a..=b`, with `.rev()` and `.step_by(k)`.
    Range {
        start: Value,
        end: Value,
        step: Option<Value>,
        inclusive: bool,
        reverse: bool,
    },
    /// `x.iter()`, `x.iter().zip(y)`, `.enumerate()`, `.rev()`: indices `0..len`.
    Arrays {
        arrays: Vec<Value>,
        enumerate: bool,
        reverse: bool,
        /// `.rev().enumerate()`: `len`, read in front of the loop; the count of the item of
        /// element `i` is `len - i - 1` (no underflow: `i < len` in the body, and an empty
        /// array runs none)
        from_end: Option<Value>,
    },
    /// `x.windows(k)`, `x.chunks(k)`, `x.chunks_exact(k)`, `.enumerate()`: slices of `x`.
    Chunks {
        array: Value,
        size: Value,
        len: Value,
        kind: ChunkKind,
        enumerate: bool,
    },
}

/// How [`Source::Chunks`] cuts its array.
#[derive(Clone, Copy, PartialEq)]
enum ChunkKind {
    /// `windows(k)`: every run of `k` neighbours, one starting at each index.
    Windows,
    /// `chunks(k)`: consecutive runs of `k`, the last one shorter.
    Chunks,
    /// `chunks_exact(k)`: consecutive runs of `k`, the remainder left out.
    Exact,
}

/// The shape of one item of a [`Source`], to bind patterns against.
enum ItemShape {
    Index,
    Element(usize),
    /// A slice of [`Source::Chunks`].
    Chunk,
    Pair(Box<ItemShape>, Box<ItemShape>),
}

impl Source {
    fn item_shape(&self) -> ItemShape {
        match self {
            Source::Range { .. } => ItemShape::Index,
            Source::Chunks {
                enumerate: false, ..
            } => ItemShape::Chunk,
            Source::Chunks { .. } => {
                ItemShape::Pair(Box::new(ItemShape::Index), Box::new(ItemShape::Chunk))
            }
            Source::Arrays {
                arrays, enumerate, ..
            } => {
                let elements = if arrays.len() == 2 {
                    ItemShape::Pair(
                        Box::new(ItemShape::Element(0)),
                        Box::new(ItemShape::Element(1)),
                    )
                } else {
                    ItemShape::Element(0)
                };
                if *enumerate {
                    ItemShape::Pair(Box::new(ItemShape::Index), Box::new(elements))
                } else {
                    elements
                }
            }
        }
    }
}

/// The local variable an expression names, if it is a plain path.
fn local_ident(e: &Expr) -> Option<Ident> {
    match e {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().cloned(),
        Expr::Paren(p) => local_ident(&p.expr),
        _ => None,
    }
}

/// Whether `e` is an iterator chain the reductions understand (ends in `.iter()`, a range,
/// `.map(..)`, `.zip(..)`, ...).
fn is_iterator_chain(e: &Expr) -> bool {
    match e {
        Expr::MethodCall(m) if m.method == "skip" || m.method == "take" => m.args.len() == 1,
        Expr::MethodCall(m) => matches!(
            m.method.to_string().as_str(),
            "iter"
                | "into_iter"
                | "map"
                | "filter"
                | "zip"
                | "enumerate"
                | "rev"
                | "copied"
                | "cloned"
                | "step_by"
                | "windows"
                | "chunks"
                | "chunks_exact"
        ),
        Expr::Range(_) => true,
        Expr::Paren(p) => is_iterator_chain(&p.expr),
        _ => false,
    }
}

/// An iterator adaptor without a rule inside a chain on `.iter()`, e.g. `.filter(..)`.
fn unsupported_adaptor(m: &syn::ExprMethodCall) -> Option<Ident> {
    const ADAPTORS: &[&str] = &[
        "filter",
        "filter_map",
        "flat_map",
        "flatten",
        "take_while",
        "skip_while",
        "chain",
        "scan",
        "peekable",
        "inspect",
        "max_by",
        "min_by",
        "reduce",
        "count",
        "last",
        "nth",
        "position",
        "any",
        "all",
        "find",
    ];
    let name = m.method.to_string();
    (ADAPTORS.contains(&name.as_str()) && is_iterator_chain(&m.receiver)).then(|| m.method.clone())
}

/// `e` without the parentheses around it.
fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

/// The name a plain identifier pattern binds.
fn pattern_ident(pat: &Pat) -> Option<String> {
    match pat {
        Pat::Ident(p) => Some(p.ident.to_string()),
        _ => None,
    }
}

/// Names of variables assigned in `block` (`x = ..`, `x += ..`, `x[i] = ..`, `x.push(..)`),
/// outside closures.
fn assigned_names(block: &syn::Block) -> Vec<String> {
    #[derive(Default)]
    struct Assigned(Vec<String>);
    impl Assigned {
        fn place(&mut self, e: &Expr) {
            match e {
                Expr::Path(p) => {
                    if let Some(ident) = p.path.get_ident() {
                        self.0.push(ident.to_string());
                    }
                }
                Expr::Index(i) => self.place(&i.expr),
                // `s.x = e` writes a struct built in the function
                Expr::Field(f) => self.place(&f.base),
                Expr::Paren(p) => self.place(&p.expr),
                // `*o = ..` through an `iter_mut()` item: the loop maps `o` to its array
                Expr::Unary(syn::ExprUnary {
                    op: UnOp::Deref(_),
                    expr,
                    ..
                }) => self.place(expr),
                Expr::Tuple(t) => t.elems.iter().for_each(|e| self.place(e)),
                _ => {}
            }
        }
    }
    impl<'ast> Visit<'ast> for Assigned {
        fn visit_expr_assign(&mut self, a: &'ast syn::ExprAssign) {
            self.place(&a.left);
            syn::visit::visit_expr_assign(self, a);
        }
        fn visit_expr_binary(&mut self, b: &'ast syn::ExprBinary) {
            if matches!(
                b.op,
                BinOp::AddAssign(_)
                    | BinOp::SubAssign(_)
                    | BinOp::MulAssign(_)
                    | BinOp::DivAssign(_)
                    | BinOp::RemAssign(_)
                    | BinOp::BitAndAssign(_)
                    | BinOp::BitOrAssign(_)
                    | BinOp::BitXorAssign(_)
                    | BinOp::ShlAssign(_)
                    | BinOp::ShrAssign(_)
            ) {
                self.place(&b.left);
            }
            syn::visit::visit_expr_binary(self, b);
        }
        fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
            // `v.iter_mut()` writes `v` through the items of the loop it drives
            if matches!(m.method.to_string().as_str(), "push" | "swap" | "iter_mut") {
                self.place(&m.receiver);
            }
            // a `for_each` closure's body is a loop body (`lower_method`)
            if m.method == "for_each" {
                for arg in &m.args {
                    if let Expr::Closure(c) = arg {
                        self.visit_expr(&c.body);
                    }
                }
            }
            syn::visit::visit_expr_method_call(self, m);
        }
        fn visit_expr_reference(&mut self, r: &'ast syn::ExprReference) {
            if r.mutability.is_some() {
                self.place(&r.expr);
            }
            syn::visit::visit_expr_reference(self, r);
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut found = Assigned::default();
    found.visit_block(block);
    let mut names = Vec::new();
    for name in found.0 {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The parameter patterns of a closure in an iterator chain, without type ascriptions.
/// A closure parameter without its type and reference patterns (`&v`, `&&v`): the item it
/// binds is an owned value in the IR.
fn without_references(pat: &Pat) -> &Pat {
    match closure_param(pat) {
        Pat::Reference(r) => without_references(&r.pat),
        other => other,
    }
}

/// The patterns `0usize`, `1usize`, ..., `_` of a match on the position of the arm taken.
fn arm_positions(arms: usize) -> Vec<Pat> {
    (0..arms)
        .map(|k| {
            let pat: Pat = if k + 1 == arms {
                syn::parse_quote!(_)
            } else {
                let k = proc_macro2::Literal::usize_suffixed(k);
                syn::parse_quote!(#k)
            };
            pat
        })
        .collect()
}

/// For `Vector3::new`, `nalgebra::Matrix2x3::<f64>::new`: the type's path (`Vector3`,
/// `nalgebra::Matrix2x3::<f64>`), for the fixed-size nalgebra aliases whose `new` takes the
/// elements.
fn fixed_matrix_constructor(path: &syn::ExprPath) -> Option<syn::Path> {
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<&syn::PathSegment> = path.path.segments.iter().collect();
    let (last, ty) = segments.split_last()?;
    let alias = ty.last()?.ident.to_string();
    let fixed_size = ["Matrix", "Vector", "RowVector"].iter().any(|prefix| {
        alias.strip_prefix(prefix).is_some_and(|rest| {
            rest.chars().next().is_some_and(|c| c.is_ascii_digit())
                && rest.chars().all(|c| c.is_ascii_digit() || c == 'x')
        })
    });
    (last.ident == "new" && last.arguments.is_none() && fixed_size).then(|| syn::Path {
        leading_colon: path.path.leading_colon,
        segments: ty.iter().map(|s| (*s).clone()).collect(),
    })
}

fn closure_param(pat: &Pat) -> &Pat {
    match pat {
        Pat::Type(t) => closure_param(&t.pat),
        other => other,
    }
}

impl<'e> Lowerer<'e> {
    /// Whether `array` is a parameter whose elements are vectors, matrices or tensors (a
    /// batch of samples, `&[Vec<f64>]`), which are borrowed rather than copied.
    fn has_container_elements(&self, array: Value) -> bool {
        let crate::ir::ValueDef::Param(i) = self.func.value(array).def else {
            return false;
        };
        crate::args::array_type(&self.func.params[i].ty).is_some_and(|(_, elem)| {
            crate::args::array_type(&elem)
                .is_some_and(|(kind, _)| !matches!(kind, crate::args::ArrayKind::Fixed(_)))
        })
    }

    /// `xs[i]` of a parameter with container elements, written where it is used (a `Place`)
    /// rather than bound to a variable, which would move the `Vec` out of the slice.
    fn container_element(&mut self, array: Value, index: Value, span: Span) -> Value {
        self.emit1(
            Opcode::Place(vec![crate::ir::PlaceStep::Index(1)]),
            vec![array, index],
            span,
        )
    }

    /// Element `index` of `array`; an element of a place (`p.layers`) is a longer place, so
    /// that `for layer in &p.layers { .. layer.w .. }` reads (and differentiates) `p.layers[i].w`.
    fn element(&mut self, array: Value, index: Value, span: Span) -> Value {
        if let Some(value) = self.just_written(array, index) {
            return value;
        }
        if let Some(inst) = self.func.def_inst(array) {
            if let Opcode::Place(steps) = &self.func.inst(inst).opcode {
                let mut steps = steps.clone();
                let mut args = self.func.inst(inst).args.clone();
                steps.push(crate::ir::PlaceStep::Index(args.len()));
                args.push(index);
                return self.emit1(Opcode::Place(steps), args, span);
            }
        }
        self.emit1(Opcode::Index, vec![array, index], span)
    }

    /// Reading back the element just written (`v[i] = e; ... v[i]`) is `e`: `Some(e)` when
    /// `array` is the result of writing at `index`.
    fn just_written(&self, array: Value, index: Value) -> Option<Value> {
        let data = self.func.inst(self.func.def_inst(array)?);
        match (&data.opcode, &data.args[..]) {
            (Opcode::IndexSet, [_, written, value])
                if *written == index || self.same_constant(*written, index) =>
            {
                Some(*value)
            }
            _ => None,
        }
    }

    /// Whether `a` and `b` are constants written the same way (`v[1] = e; v[1]`).
    fn same_constant(&self, a: Value, b: Value) -> bool {
        let text = |v: Value| match self.func.def_inst(v).map(|i| &self.func.inst(i).opcode) {
            Some(Opcode::Const(tokens)) => Some(crate::ir::tokens_text(tokens)),
            _ => None,
        };
        text(a).is_some_and(|a| Some(a) == text(b))
    }

    /// `State { x: a, v: b }`: its fields' values by name (evaluated in the order written).
    fn lower_struct(&mut self, st: &syn::ExprStruct) -> Option<Operand> {
        if let Some(rest) = &st.rest {
            self.errors.push_spanned(
                rest,
                "struct update syntax (`..base`) is not supported in #[differentiate] functions; list every field",
            );
            return None;
        }
        if st.qself.is_some() {
            self.errors.push_spanned(
                &st.path,
                "a struct expression with a qualified path (`<T as Trait>::S { .. }`) is not supported; name the struct",
            );
            return None;
        }
        let mut fields = Vec::new();
        for field in &st.fields {
            let syn::Member::Named(name) = &field.member else {
                self.errors.push_spanned(
                    &field.member,
                    "fields are built by name here (`S { x: a }`); build a tuple struct with a call, `S(a, b)`, outside the differentiated function",
                );
                return None;
            };
            let value = match self.lower_expr(&field.expr)? {
                Operand::Unit => {
                    self.errors.fail_silently();
                    return None;
                }
                value => value,
            };
            fields.push((name.clone(), value));
        }
        fields.sort_by_key(|(name, _)| name.to_string());
        Some(Operand::Struct(st.path.clone(), fields))
    }

    /// `s.x.y` of a struct built in the function: the field's operand, then any element
    /// reads that follow (`s.w[i]`).
    fn struct_field(
        &mut self,
        e: &Expr,
        root: Operand,
        steps: &[crate::ir::PlaceStep],
        indices: &[&Expr],
    ) -> Option<Operand> {
        let mut operand = root;
        let mut indices = indices.iter();
        for step in steps {
            match (step, operand) {
                (
                    crate::ir::PlaceStep::Field(syn::Member::Named(name)),
                    Operand::Struct(_, fields),
                ) => {
                    let Some((_, field)) = fields.into_iter().find(|(n, _)| n == name) else {
                        // rustc reports the unknown field itself
                        self.errors.fail_silently();
                        return None;
                    };
                    operand = field;
                }
                (crate::ir::PlaceStep::Index(_), Operand::Value(array)) => {
                    let index_expr = indices.next()?;
                    let index = self.lower_single(index_expr)?;
                    operand = Operand::Value(self.element(array, index, e.span()));
                }
                _ => {
                    self.errors.push_spanned(
                        e,
                        "of a struct built in the function, read a field by name (`s.x`) or an element of a field (`s.w[i]`)",
                    );
                    return None;
                }
            }
        }
        Some(operand)
    }

    /// `p.c1.w`, `p.layers[i].b`: a path into a parameter, as one `Place` instruction.
    fn lower_place(&mut self, e: &Expr) -> Option<Operand> {
        let mut steps = Vec::new();
        let mut indices = Vec::new();
        let mut cursor = e;
        loop {
            match cursor {
                Expr::Field(f) => {
                    steps.push(crate::ir::PlaceStep::Field(f.member.clone()));
                    cursor = &f.base;
                }
                Expr::Index(i) => {
                    indices.push(&*i.index);
                    steps.push(crate::ir::PlaceStep::Index(0));
                    cursor = &i.expr;
                }
                Expr::Paren(p) => cursor = &p.expr,
                _ => break,
            }
        }
        let Some(root_name) = local_ident(cursor) else {
            self.errors.push_spanned(
                cursor,
                "field access is supported on parameters and local variables (`p.layer.w`); bind this value to a variable first",
            );
            return None;
        };
        let root = match self.lookup(&root_name.to_string()) {
            Some(Slot::Bound(Operand::Value(v))) => *v,
            Some(Slot::Bound(built @ Operand::Struct(..))) => {
                let built = built.clone();
                steps.reverse();
                indices.reverse();
                return self.struct_field(e, built, &steps, &indices);
            }
            Some(Slot::Bound(Operand::Tuple(items))) => {
                // `t.0` on a tuple variable is its element
                if let (Expr::Field(f), 1) = (e, steps.len()) {
                    if let syn::Member::Unnamed(index) = &f.member {
                        if let Some(item) = items.get(index.index as usize) {
                            return Some(item.clone());
                        }
                    }
                }
                self.errors
                    .push_spanned(e, "take tuples apart with `let (a, b) = t;`");
                return None;
            }
            Some(Slot::Poisoned) => return None,
            Some(_) | None => {
                self.errors.fail_silently();
                return None;
            }
        };
        steps.reverse();
        indices.reverse();
        // a path from a value that is itself a place (a loop's `layer`) extends that place
        let (root, mut prefix_steps, prefix_args) =
            match self.func.def_inst(root).map(|i| self.func.inst(i)) {
                Some(data) if matches!(data.opcode, Opcode::Place(_)) => {
                    let Opcode::Place(prefix) = &data.opcode else {
                        unreachable!("checked")
                    };
                    (data.args[0], prefix.clone(), data.args[1..].to_vec())
                }
                _ => (root, Vec::new(), Vec::new()),
            };
        let mut args = vec![root];
        args.extend(prefix_args);
        let mut next_index = args.len();
        for step in &mut steps {
            if let crate::ir::PlaceStep::Index(slot) = step {
                *slot = next_index;
                next_index += 1;
            }
        }
        for index in indices {
            args.push(self.lower_single(index)?);
        }
        prefix_steps.extend(steps);
        Some(Operand::Value(self.emit1(
            Opcode::Place(prefix_steps),
            args,
            e.span(),
        )))
    }

    /// `value.step` as one `Place`: a value that is itself a place (`stencil[k].1` when
    /// taking `stencil[k]` apart) is extended, as [`Self::lower_place`] extends one.
    fn extended_place(&mut self, value: Value, step: crate::ir::PlaceStep, span: Span) -> Value {
        let (steps, args) = match self.func.def_inst(value).map(|i| self.func.inst(i)) {
            Some(data) if matches!(data.opcode, Opcode::Place(_)) => {
                let Opcode::Place(prefix) = &data.opcode else {
                    unreachable!("checked")
                };
                let mut steps = prefix.clone();
                steps.push(step);
                (steps, data.args.clone())
            }
            _ => (vec![step], vec![value]),
        };
        self.emit1(Opcode::Place(steps), args, span)
    }

    /// `vec![v; n]`, `vec![a, b, ...]` and the assertion macros; any other macro is an
    /// error.
    fn lower_macro(&mut self, mac: &syn::Macro, span: Span) -> Option<Operand> {
        if let Some(checked) = assertion_arity(mac) {
            return self.lower_assertion(mac, checked);
        }
        if !mac.path.is_ident("vec") {
            self.unsupported_macro(mac);
            return None;
        }
        let tokens = &mac.tokens;
        if let Ok(repeat) = syn::parse2::<syn::ExprRepeat>(quote!([#tokens])) {
            let value = self.lower_single(&repeat.expr)?;
            let count = self.lower_single(&repeat.len)?;
            return Some(Operand::Value(self.emit1(
                Opcode::VecFill,
                vec![value, count],
                span,
            )));
        }
        match syn::parse2::<syn::ExprArray>(quote!([#tokens])) {
            Ok(array) => {
                let elems = self.lower_args(&array.elems)?;
                Some(Operand::Value(self.emit1(
                    Opcode::ArrayLiteral { vec: true },
                    elems,
                    span,
                )))
            }
            Err(_) => {
                self.errors.push_spanned(
                    mac,
                    "this `vec!` form is not supported; write `vec![value; n]` or `vec![a, b, c]`",
                );
                None
            }
        }
    }

    /// `v.push(x)` and `v.swap(i, j)` on a local vector: a new version of `v`.
    fn lower_mutating_method(&mut self, m: &syn::ExprMethodCall) -> Option<Operand> {
        let span = m.span();
        let Some(base) = local_ident(&m.receiver) else {
            self.errors.push_spanned(
                &m.receiver,
                format!("call `{}` on a local `Vec` variable", m.method),
            );
            return None;
        };
        let array = self.lower_single(&m.receiver)?;
        let args = self.lower_args(&m.args)?;
        let updated = if m.method == "push" {
            let len = self.emit1(Opcode::Len, vec![array], span);
            self.emit1(Opcode::Push, vec![array, args[0], len], span)
        } else {
            self.emit1(Opcode::Swap, vec![array, args[0], args[1]], span)
        };
        self.assign(&base, Slot::Bound(Operand::Value(updated)));
        Some(Operand::Unit)
    }

    /// Parses the source of a `for` loop or iterator chain, lowering bounds and arrays.
    fn iteration_source(&mut self, e: &Expr) -> Option<Source> {
        match e {
            Expr::Paren(p) => self.iteration_source(&p.expr),
            Expr::Range(range) => {
                let (Some(start), Some(end)) = (&range.start, &range.end) else {
                    self.errors.push_spanned(
                        range,
                        "loop over a range with both bounds, like `a..b` or `a..=b`",
                    );
                    return None;
                };
                let start = self.lower_single(start)?;
                let end = self.lower_single(end)?;
                let inclusive = matches!(range.limits, syn::RangeLimits::Closed(_));
                Some(Source::Range {
                    start,
                    end,
                    step: None,
                    inclusive,
                    reverse: false,
                })
            }
            Expr::Reference(r) if r.mutability.is_none() => self.iteration_source_array(&r.expr),
            Expr::Reference(r) => self.iteration_source_mutable(&r.expr),
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                match (name.as_str(), m.args.len()) {
                    ("copied" | "cloned", 0) => self.iteration_source(&m.receiver),
                    ("iter" | "into_iter", 0) => self.iteration_source_array(&m.receiver),
                    ("iter_mut", 0) => self.iteration_source_mutable(&m.receiver),
                    ("rev", 0) => match self.iteration_source(&m.receiver)? {
                        Source::Range {
                            start,
                            end,
                            step: None,
                            inclusive,
                            reverse: false,
                        } => Some(Source::Range {
                            start,
                            end,
                            step: None,
                            inclusive,
                            reverse: true,
                        }),
                        // `.iter().enumerate().rev()`: the same pairs, last first
                        Source::Arrays {
                            arrays,
                            enumerate,
                            reverse: false,
                            from_end: None,
                        } => Some(Source::Arrays {
                            arrays,
                            enumerate,
                            reverse: true,
                            from_end: None,
                        }),
                        _ => self.unsupported_chain(
                            m,
                            "`.rev()` directly on a range, on `.iter()` or on `.iter().enumerate()`",
                        ),
                    },
                    ("step_by", 1) => match self.iteration_source(&m.receiver)? {
                        Source::Range {
                            start,
                            end,
                            step: None,
                            inclusive,
                            reverse,
                        } => {
                            let step = self.lower_single(&m.args[0])?;
                            Some(Source::Range {
                                start,
                                end,
                                step: Some(step),
                                inclusive,
                                reverse,
                            })
                        }
                        _ => self.unsupported_chain(m, "`.step_by(k)` on a range"),
                    },
                    // `x.iter().skip(k)`, `x.iter().take(k)`: the elements of `x[k.min(n)..]`,
                    // `x[..k.min(n)]` (a `k` past the end gives no elements, as the adaptors do)
                    ("skip" | "take", 1) => match self.iteration_source(&m.receiver)? {
                        Source::Arrays {
                            arrays,
                            enumerate: false,
                            reverse: false,
                            from_end: None,
                        } if arrays.len() == 1 => {
                            let span = m.span();
                            let array = arrays[0];
                            let count = self.lower_single(&m.args[0])?;
                            let len = self.emit1(Opcode::Len, vec![array], span);
                            let min = primitives::method("min", 2)?;
                            let bound = self.emit1(Opcode::Primitive(min), vec![count, len], span);
                            let (start, end) = if name == "skip" {
                                (bound, len)
                            } else {
                                (self.constant(quote!(0usize), span), bound)
                            };
                            let slice = self.emit1(Opcode::Slice, vec![array, start, end], span);
                            Some(Source::Arrays {
                                arrays: vec![slice],
                                enumerate: false,
                                reverse: false,
                                from_end: None,
                            })
                        }
                        _ => self.unsupported_chain(
                            m,
                            "`.skip(k)` and `.take(k)` directly on `x.iter()`",
                        ),
                    },
                    ("windows" | "chunks" | "chunks_exact", 1) => {
                        let array = self.lower_single(&m.receiver)?;
                        let size = self.lower_single(&m.args[0])?;
                        let len = self.emit1(Opcode::Len, vec![array], m.span());
                        let kind = match name.as_str() {
                            "windows" => ChunkKind::Windows,
                            "chunks" => ChunkKind::Chunks,
                            _ => ChunkKind::Exact,
                        };
                        Some(Source::Chunks {
                            array,
                            size,
                            len,
                            kind,
                            enumerate: false,
                        })
                    }
                    ("enumerate", 0) => match self.iteration_source(&m.receiver)? {
                        Source::Arrays {
                            arrays,
                            enumerate: false,
                            reverse: false,
                            from_end: None,
                        } => Some(Source::Arrays {
                            arrays,
                            enumerate: true,
                            reverse: false,
                            from_end: None,
                        }),
                        // `.iter().rev().enumerate()`: elements last first, counted from 0
                        Source::Arrays {
                            arrays,
                            enumerate: false,
                            reverse: true,
                            from_end: None,
                        } if arrays.len() == 1 => {
                            let len = self.emit1(Opcode::Len, vec![arrays[0]], m.span());
                            Some(Source::Arrays {
                                arrays,
                                enumerate: true,
                                reverse: true,
                                from_end: Some(len),
                            })
                        }
                        Source::Chunks {
                            array,
                            size,
                            len,
                            kind,
                            enumerate: false,
                        } => Some(Source::Chunks {
                            array,
                            size,
                            len,
                            kind,
                            enumerate: true,
                        }),
                        _ => self.unsupported_chain(m, "`.iter().enumerate()`"),
                    },
                    ("zip", 1) => match self.iteration_source(&m.receiver)? {
                        Source::Arrays {
                            mut arrays,
                            enumerate: false,
                            reverse: false,
                            from_end: None,
                        } if arrays.len() == 1 => match self.iteration_source(&m.args[0])? {
                            Source::Arrays {
                                arrays: other,
                                enumerate: false,
                                reverse: false,
                                from_end: None,
                            } if other.len() == 1 => {
                                arrays.extend(other);
                                Some(Source::Arrays {
                                    arrays,
                                    enumerate: false,
                                    reverse: false,
                                    from_end: None,
                                })
                            }
                            _ => self
                                .unsupported_chain(m, "`.zip(y)` with `y` a slice, `Vec` or array"),
                        },
                        _ => self.unsupported_chain(m, "`x.iter().zip(y)`"),
                    },
                    ("filter", _) => {
                        self.errors.push_spanned(
                            &m.method,
                            "`filter` is supported as the last step of a loop's source (`for v in x.iter().enumerate().filter(..)`) and next to the `map` of a chain ending in `sum`, `product`, `fold` or `collect`, once; test other conditions with `if` in the loop body",
                        );
                        None
                    }
                    _ => self.unsupported_chain(
                        m,
                        "ranges, `x.iter()`, `x.windows(k)`, `x.chunks(k)`, `x.chunks_exact(k)`, `.rev()`, `.step_by(k)`, `.skip(k)`, `.take(k)`, `.enumerate()` and `.zip(y)`",
                    ),
                }
            }
            other => self.iteration_source_array(other),
        }
    }

    /// `v.iter_mut()`, `&mut v` on a local array: its elements, which the items name.
    fn iteration_source_mutable(&mut self, e: &Expr) -> Option<Source> {
        let Some(name) = local_ident(strip_parens(e)) else {
            self.errors.push_spanned(
                e,
                "`iter_mut()` works on a local array or `Vec` variable, like `for o in out.iter_mut()`; for part of one, loop over its indices and write `v[i] = ..`",
            );
            return None;
        };
        let array = self.lower_single(e)?;
        self.mutable_sources.insert(array, name);
        Some(Source::Arrays {
            arrays: vec![array],
            enumerate: false,
            reverse: false,
            from_end: None,
        })
    }

    fn iteration_source_array(&mut self, e: &Expr) -> Option<Source> {
        let array = self.lower_single(e)?;
        Some(Source::Arrays {
            arrays: vec![array],
            enumerate: false,
            reverse: false,
            from_end: None,
        })
    }

    fn unsupported_chain<T>(&mut self, m: &syn::ExprMethodCall, supported: &str) -> Option<T> {
        self.errors.push_spanned(
            &m.method,
            format!("`{}` is not supported here; loops and iterator chains support {supported}; write a `for` loop over indices instead", m.method),
        );
        None
    }

    /// The loop header of a source: bounds (and step) operands and the range flags.
    fn source_header(&mut self, source: &Source, span: Span) -> (Vec<Value>, RangeLoop) {
        match source {
            Source::Chunks {
                size, len, kind, ..
            } => {
                let zero = self.constant(quote!(0usize), span);
                // `len + 1 - k` windows, `⌈len / k⌉` or `⌊len / k⌋` chunks; a zero `k` panics
                // with the slice method's message
                let count = match kind {
                    ChunkKind::Windows => &crate::primitives::CHUNK_COUNTS[0],
                    ChunkKind::Chunks => &crate::primitives::CHUNK_COUNTS[1],
                    ChunkKind::Exact => &crate::primitives::CHUNK_COUNTS[2],
                };
                let count = self.emit1(Opcode::Primitive(count), vec![*len, *size], span);
                (
                    vec![zero, count],
                    RangeLoop {
                        inclusive: false,
                        reverse: false,
                        stepped: false,
                        breaks: false,
                    },
                )
            }
            Source::Range {
                start,
                end,
                step,
                inclusive,
                reverse,
            } => {
                let mut args = vec![*start, *end];
                args.extend(step.iter().copied());
                (
                    args,
                    RangeLoop {
                        inclusive: *inclusive,
                        reverse: *reverse,
                        stepped: step.is_some(),
                        breaks: false,
                    },
                )
            }
            Source::Arrays {
                arrays, reverse, ..
            } => {
                let zero = self.constant(quote!(0), span);
                let mut len = self.emit1(Opcode::Len, vec![arrays[0]], span);
                for &other in &arrays[1..] {
                    let other_len = self.emit1(Opcode::Len, vec![other], span);
                    len = self.emit1(
                        Opcode::Primitive(&primitives::MIN),
                        vec![len, other_len],
                        span,
                    );
                }
                (
                    vec![zero, len],
                    RangeLoop {
                        inclusive: false,
                        reverse: *reverse,
                        stepped: false,
                        breaks: false,
                    },
                )
            }
        }
    }

    /// The slice of [`Source::Chunks`] at `index`.
    fn chunk(&mut self, source: &Source, index: Value, span: Span) -> Value {
        let Source::Chunks {
            array,
            size,
            len,
            kind,
            ..
        } = source
        else {
            unreachable!("chunk items come from chunked sources")
        };
        let start = match kind {
            ChunkKind::Windows => index,
            ChunkKind::Chunks | ChunkKind::Exact => {
                self.emit1(Opcode::Binary(BinaryOp::Mul), vec![index, *size], span)
            }
        };
        let mut end = self.emit1(Opcode::Binary(BinaryOp::Add), vec![start, *size], span);
        if *kind == ChunkKind::Chunks {
            end = self.emit1(Opcode::Primitive(&primitives::MIN), vec![end, *len], span);
        }
        // the item is a reference, as `&x[start..end]` is
        let slice = self.emit1(Opcode::Slice, vec![*array, start, end], span);
        self.emit1(Opcode::Ref, vec![slice], span)
    }

    /// Binds a `for` or closure pattern to the current item of `source` at `index`.
    fn bind_item(
        &mut self,
        pat: &Pat,
        shape: &ItemShape,
        source: &Source,
        index: Value,
        span: Span,
    ) -> Option<()> {
        match (closure_param(pat), shape) {
            (Pat::Wild(_), _) => Some(()),
            (Pat::Reference(r), ItemShape::Element(_)) => {
                self.bind_item(&r.pat, shape, source, index, span)
            }
            (Pat::Paren(p), _) => self.bind_item(&p.pat, shape, source, index, span),
            (Pat::Ident(p), _) if p.subpat.is_none() => {
                let value = match (shape, source) {
                    // `.rev().enumerate()`: element `i` is item `len - 1 - i`
                    (
                        ItemShape::Index,
                        Source::Arrays {
                            from_end: Some(len),
                            ..
                        },
                    ) => {
                        let after =
                            self.emit1(Opcode::Binary(BinaryOp::Sub), vec![*len, index], span);
                        let one = self.constant(quote!(1usize), span);
                        self.emit1(Opcode::Binary(BinaryOp::Sub), vec![after, one], span)
                    }
                    (ItemShape::Index, _) => index,
                    (ItemShape::Chunk, _) => self.chunk(source, index, span),
                    (ItemShape::Element(k), _) => {
                        let Source::Arrays { arrays, .. } = source else {
                            unreachable!("elements come from arrays")
                        };
                        if let Some(array) = self.mutable_sources.get(&arrays[*k]) {
                            let array = array.clone();
                            self.declare(&p.ident, Slot::Element { array, index });
                            return Some(());
                        }
                        if self.has_container_elements(arrays[*k]) {
                            // `for x in xs` over a `&[Vec<f64>]`: each item is `&xs[i]`, as
                            // the iterator's item is a reference (a `Vec` is not copied)
                            let element = self.container_element(arrays[*k], index, span);
                            self.emit1(Opcode::Ref, vec![element], span)
                        } else {
                            self.element(arrays[*k], index, span)
                        }
                    }
                    (ItemShape::Pair(..), _) => {
                        self.errors
                            .push_spanned(p, "this item is a pair; destructure it, like `(a, b)`");
                        return None;
                    }
                };
                self.declare(&p.ident, Slot::Bound(Operand::Value(value)));
                Some(())
            }
            (Pat::Tuple(t), ItemShape::Pair(first, second)) if t.elems.len() == 2 => {
                self.bind_item(&t.elems[0], first, source, index, span)?;
                self.bind_item(&t.elems[1], second, source, index, span)
            }
            // `for &(a, b) in edges`, `for [i, j, k] in triangles`: an element taken apart
            (Pat::Tuple(_) | Pat::Slice(_), ItemShape::Element(k))
                if matches!(source, Source::Arrays { arrays, .. }
                    if !self.mutable_sources.contains_key(&arrays[*k])) =>
            {
                let Source::Arrays { arrays, .. } = source else {
                    unreachable!("checked")
                };
                let element = self.element(arrays[*k], index, span);
                self.bind_pattern(closure_param(pat), Operand::Value(element), true);
                Some(())
            }
            (other, _) => {
                self.errors.push_spanned(other, "this pattern does not fit the loop's items; bind a name, `&name`, `_`, or a pair `(a, b)`");
                None
            }
        }
    }

    /// Lowers a `for`, `while` or `loop` expression.
    fn lower_loop_expr(&mut self, e: &Expr) -> Option<LoopOutcome> {
        let span = e.span();
        match e {
            Expr::ForLoop(f) => {
                if let Some(label) = &f.label {
                    self.errors.push_spanned(label, "labeled loops are not supported; set a flag and test it after the inner loop");
                    return None;
                }
                // `for v in xs.filter(|v| p(v)) { body }` is `for v in xs { if p(v) { body } }`
                let (iterable, filter) = match strip_parens(&f.expr) {
                    Expr::MethodCall(m) if m.method == "filter" => {
                        self.chain_step(strip_parens(&f.expr), "filter")?
                    }
                    other => (other, None),
                };
                if let Some(filter) = filter {
                    self.check_closure(filter)?;
                }
                let source = self.iteration_source(iterable)?;
                // the arrays an `iter_mut()` loop writes through its items are carried
                let written: Vec<(Value, String)> = match &source {
                    Source::Arrays { arrays, .. } => arrays
                        .iter()
                        .filter_map(|a| self.mutable_sources.get(a).map(|n| (*a, n.to_string())))
                        .collect(),
                    _ => Vec::new(),
                };
                let (args, mut range) = self.source_header(&source, span);
                let jumps = find_jumps(|j| j.visit_block(&f.body));
                range.breaks = jumps.breaks || jumps.returns;
                let shape = source.item_shape();
                let end_span = f.body.brace_token.span.close();
                let body = |this: &mut Self, index: Option<Value>| {
                    let env_len = this.env.len();
                    let index = index.expect("for loops have an index");
                    let keep = match filter {
                        Some(filter) => {
                            // the closure takes a reference to the item: `|&v|`, `|&&v|`, `|v|`
                            let param = match closure_param(&filter.inputs[0]) {
                                Pat::Reference(r) => &*r.pat,
                                other => other,
                            };
                            this.bind_item(param, &shape, &source, index, span)?;
                            let keep = this.lower_condition(&filter.body)?;
                            this.env.truncate(env_len);
                            Some(keep)
                        }
                        None => None,
                    };
                    this.bind_item(&f.pat, &shape, &source, index, span)?;
                    let items = block_items(&f.body, Some(env_len));
                    match keep {
                        Some(keep) => {
                            let arms = vec![
                                (None, ArmSeq::Items(items)),
                                (None, ArmSeq::Items(Vec::new())),
                            ];
                            this.jumping_arms(Opcode::If, keep, arms, span, end_span, Ctx::Loop)
                        }
                        None => this.lower_seq(&items, end_span, Ctx::Loop),
                    }
                };
                let mut names = assigned_names(&f.body);
                for (_, name) in &written {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
                let outcome = self.lower_loop(
                    Some((args, range)),
                    &names,
                    jumps.first_return,
                    false,
                    span,
                    &body,
                );
                for (array, _) in &written {
                    self.mutable_sources.remove(array);
                }
                outcome
            }
            Expr::While(w) => {
                if let Some(label) = &w.label {
                    self.errors.push_spanned(label, "labeled loops are not supported; set a flag and test it after the inner loop");
                    return None;
                }
                let jumps = find_jumps(|j| j.visit_block(&w.body));
                let end_span = w.body.brace_token.span.close();
                let body = |this: &mut Self, _: Option<Value>| {
                    let cond = this.lower_condition(&w.cond)?;
                    let items = block_items(&w.body, Some(this.env.len()));
                    let arms = vec![(None, ArmSeq::Items(items)), (None, ArmSeq::Exit)];
                    this.jumping_arms(Opcode::If, cond, arms, span, end_span, Ctx::Loop)
                };
                let mut names = assigned_names(&w.body);
                names.retain(|n| !n.is_empty());
                self.lower_loop(None, &names, jumps.first_return, false, span, &body)
            }
            Expr::Loop(l) => {
                if let Some(label) = &l.label {
                    self.errors.push_spanned(label, "labeled loops are not supported; set a flag and test it after the inner loop");
                    return None;
                }
                let jumps = find_jumps(|j| j.visit_block(&l.body));
                let end_span = l.body.brace_token.span.close();
                let body = |this: &mut Self, _: Option<Value>| {
                    let items = block_items(&l.body, Some(this.env.len()));
                    this.lower_seq(&items, end_span, Ctx::Loop)
                };
                let names = assigned_names(&l.body);
                self.lower_loop(
                    None,
                    &names,
                    jumps.first_return,
                    jumps.break_values,
                    span,
                    &body,
                )
            }
            _ => None,
        }
    }

    /// The common part of every loop: carried variables become body parameters and results,
    /// hidden slots carry `return` and `break` values out.
    fn lower_loop(
        &mut self,
        range: Option<(Vec<Value>, RangeLoop)>,
        assigned: &[String],
        first_return: Option<Span>,
        break_value: bool,
        span: Span,
        body: LoopBody<'_, 'e>,
    ) -> Option<LoopOutcome> {
        let hidden_start = self.env.len();
        let placeholder = quote!(::autodiff::__private::num_traits::Zero::zero());
        let returns = first_return.is_some();
        if let (Some(at), Some(_)) = (first_return, &self.struct_output) {
            // the hidden return slots need a value of each field's type before the loop
            self.errors.push(
                at,
                "a `return` inside a loop is not supported in a function returning a struct; `break` out of the loop and return after it",
            );
            return None;
        }
        if returns {
            let no = self.constant(quote!(false), span);
            self.env.push(Binding {
                name: "#returned".into(),
                slot: Slot::Bound(Operand::Value(no)),
            });
            for k in 0..self.output_arity {
                // a value of the output's type that is never read: zero, or an empty container
                let zero = self.constant(self.output_placeholders[k].clone(), span);
                self.env.push(Binding {
                    name: format!("#ret{k}"),
                    slot: Slot::Bound(Operand::Value(zero)),
                });
            }
        }
        if break_value {
            let zero = self.constant(placeholder.clone(), span);
            self.env.push(Binding {
                name: "#break".into(),
                slot: Slot::Bound(Operand::Value(zero)),
            });
        }
        let mut carried = Vec::new();
        // a write through an outer `iter_mut()` item (`*o += ..`) changes its array
        let assigned: Vec<String> = assigned
            .iter()
            .map(|name| match self.lookup(name) {
                Some(Slot::Element { array, .. }) => array.to_string(),
                _ => name.clone(),
            })
            .collect();
        for name in &assigned {
            let Some(index) = self.env[..hidden_start]
                .iter()
                .rposition(|b| b.name == *name)
            else {
                continue;
            };
            if carried.contains(&index) {
                continue;
            }
            match &self.env[index].slot {
                Slot::Bound(_) => carried.push(index),
                Slot::Uninit => {
                    self.errors.push(
                        span,
                        format!("give `{name}` a value before the loop; it is assigned inside it"),
                    );
                    return None;
                }
                Slot::Poisoned => return None,
                Slot::Closure(_) => {
                    self.errors.push(
                        span,
                        format!("`{name}` holds a closure and is assigned inside the loop; bind each closure with a `let` of its own"),
                    );
                    return None;
                }
                // (an item's name maps to its array above)
                Slot::Element { .. } => {}
            }
        }
        carried.extend(hidden_start..self.env.len());
        let shapes: Vec<Operand> = carried
            .iter()
            .map(|&i| match &self.env[i].slot {
                Slot::Bound(op) => op.clone(),
                _ => unreachable!("carried slots are bound"),
            })
            .collect();
        let inits: Vec<Value> = shapes.iter().flat_map(Operand::values).collect();
        let body_block = self.func.create_block();
        let index = range
            .as_ref()
            .map(|_| self.func.add_block_param(body_block, span));
        let params: Vec<Value> = inits
            .iter()
            .map(|_| self.func.add_block_param(body_block, span))
            .collect();
        let snapshot = self.env.clone();
        let mut param_iter = params.iter().copied();
        for (&slot, shape) in carried.iter().zip(&shapes) {
            let operand = shape.rebuild(&mut param_iter);
            if let (Operand::Value(v), false) = (&operand, self.env[slot].name.starts_with('#')) {
                let name = self.env[slot].name.clone();
                self.name_value_str(*v, &name);
            }
            self.env[slot].slot = Slot::Bound(operand);
        }
        let flag = range.as_ref().is_none_or(|(_, r)| r.breaks);
        let outer = self.block;
        self.block = body_block;
        self.loops.push(LoopFrame {
            carried: carried.clone(),
            shapes: shapes.clone(),
            flag,
        });
        let yields = body(self, index);
        self.loops.pop();
        self.block = outer;
        self.env = snapshot;
        self.func.blocks[body_block.index()].yields = yields?;
        let (opcode, mut args) = match range {
            Some((args, range)) => (Opcode::ForRange(range), args),
            None => (Opcode::While, Vec::new()),
        };
        args.extend(inits);
        let inst = self
            .func
            .append(outer, opcode, args, vec![body_block], params.len(), span);
        let mut results = self.func.inst(inst).results.clone().into_iter();
        for (&slot, shape) in carried.iter().zip(&shapes) {
            let operand = shape.rebuild(&mut results);
            if let (Operand::Value(v), false) = (&operand, self.env[slot].name.starts_with('#')) {
                let name = self.env[slot].name.clone();
                self.name_value_str(*v, &name);
            }
            self.env[slot].slot = Slot::Bound(operand);
        }
        let hidden_value = |this: &Self, name: &str| match this.lookup(name) {
            Some(Slot::Bound(Operand::Value(v))) => Some(*v),
            _ => None,
        };
        let returned = if returns {
            let flag = hidden_value(self, "#returned")?;
            let values = (0..self.output_arity)
                .map(|k| hidden_value(self, &format!("#ret{k}")))
                .collect::<Option<Vec<_>>>()?;
            Some((flag, values))
        } else {
            None
        };
        let value = if break_value {
            hidden_value(self, "#break")
        } else {
            None
        };
        self.env.truncate(hidden_start);
        Some(LoopOutcome { returned, value })
    }

    /// `a[start..end]`, `a[start..]`, `a[..end]`, `a[..]`, `a[start..=last]`: the copy of a
    /// range, its open ends `0` and `a.len()`.
    fn lower_slice(&mut self, array: Value, range: &syn::ExprRange) -> Option<Value> {
        let span = range.span();
        let start = match &range.start {
            Some(start) => self.lower_single(start)?,
            None => self.constant(quote!(0usize), span),
        };
        let end = match (&range.end, &range.limits) {
            (Some(end), syn::RangeLimits::HalfOpen(_)) => self.lower_single(end)?,
            (Some(last), syn::RangeLimits::Closed(_)) => {
                let last = self.lower_single(last)?;
                let one = self.constant(quote!(1usize), span);
                self.emit1(Opcode::Binary(BinaryOp::Add), vec![last, one], span)
            }
            (None, _) => self.emit1(Opcode::Len, vec![array], span),
        };
        Some(self.emit1(Opcode::Slice, vec![array, start, end], span))
    }

    /// `x.iter().sum()`, `.map(|v| ..).sum()`, `.product()`, `.fold(init, |acc, v| ..)`,
    /// `.map(|v| ..).collect::<Vec<_>>()`: a loop with a hidden accumulator (for `collect`, a
    /// vector the loop pushes to).
    fn lower_reduction(&mut self, m: &syn::ExprMethodCall) -> Option<Operand> {
        let span = m.span();
        let name = m.method.to_string();
        if let Some(turbofish) = &m.turbofish {
            let into_vec = match turbofish.args.iter().collect::<Vec<_>>()[..] {
                [syn::GenericArgument::Type(syn::Type::Path(ty))] => {
                    ty.qself.is_none() && ty.path.segments.last().is_some_and(|s| s.ident == "Vec")
                }
                _ => false,
            };
            if name == "collect" && !into_vec {
                self.errors.push_spanned(
                    turbofish,
                    "differentiated iterator chains collect into a `Vec` only; write `.collect::<Vec<_>>()`, or a loop",
                );
                return None;
            }
        }
        // `.filter(p)` right before the reduction (after a `map`, on its values) or right
        // before a `map` (on the source's items)
        let (receiver, mut filter) = self.chain_step(&m.receiver, "filter")?;
        let filter_after_map = filter.is_some();
        let (chain, map) = self.chain_step(receiver, "map")?;
        let chain = match filter {
            Some(_) => chain,
            None => {
                let (before, filter_before) = self.chain_step(chain, "filter")?;
                filter = filter_before;
                before
            }
        };
        let filter_after_map = filter_after_map && map.is_some();
        // `.fold(f64::NEG_INFINITY, f64::max)`: a float method of two arguments by path is
        // the closure `|acc, v| acc.max(v)`
        let method_closure: Option<syn::ExprClosure> = match m.args.iter().nth(1) {
            Some(Expr::Path(path)) if name == "fold" && path.qself.is_none() => {
                let segments = &path.path.segments;
                match segments.last() {
                    Some(last)
                        if segments.len() >= 2
                            && last.arguments.is_none()
                            && primitives::method(&last.ident.to_string(), 2).is_some() =>
                    {
                        let method = &last.ident;
                        Some(syn::parse_quote_spanned! {path.span()=>
                            |fold_acc, fold_item| fold_acc.#method(fold_item)
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        // `.all(p)` and `.any(p)`: folds of `acc && p(v)` and `acc || p(v)`, which evaluate
        // `p` only while the answer is open, as the short-circuiting methods do
        let predicate_fold: Option<syn::ExprClosure> = match (name.as_str(), m.args.first()) {
            ("all" | "any", Some(Expr::Closure(p))) if p.inputs.len() == 1 => {
                let (item, body) = (&p.inputs[0], &p.body);
                let op = if name == "all" {
                    quote!(&&)
                } else {
                    quote!(||)
                };
                Some(syn::parse_quote_spanned! {p.span()=>
                    |__autodiff_verdict, #item| __autodiff_verdict #op (#body)
                })
            }
            ("all" | "any", other) => {
                let at = other.map_or_else(|| m.method.span(), |e| e.span());
                self.errors.push(
                    at,
                    format!("`{name}` in a differentiated iterator chain takes a closure of one item, like `.{name}(|v| ..)`"),
                );
                return None;
            }
            _ => None,
        };
        let fold = if predicate_fold.is_some() {
            predicate_fold.as_ref()
        } else if name == "fold" {
            match &m.args[1] {
                Expr::Closure(c) if c.inputs.len() == 2 => Some(c),
                Expr::Path(_) if method_closure.is_some() => method_closure.as_ref(),
                other => {
                    self.errors.push_spanned(
                        other,
                        "`fold` takes an initial value and a closure `|acc, v| ...` or a float method of two arguments like `f64::max`",
                    );
                    return None;
                }
            }
        } else {
            None
        };
        // `.copied()` or `.cloned()` somewhere in the chain (`x.iter().copied().rev()`)
        fn copies(e: &Expr) -> bool {
            match e {
                Expr::MethodCall(c) => {
                    c.method == "copied" || c.method == "cloned" || copies(&c.receiver)
                }
                Expr::Paren(p) => copies(&p.expr),
                _ => false,
            }
        }
        if name == "collect" && map.is_none() && !copies(chain) {
            // `x.iter().collect()` is a `Vec<&T>`
            self.errors.push_spanned(
                &m.method,
                "collect the values, not references: `.iter().copied().collect::<Vec<_>>()`, or `.map(|v| ...)` before `collect`",
            );
            return None;
        }
        for closure in map.iter().chain(fold.iter()).chain(filter.iter()) {
            self.check_closure(closure)?;
        }
        let init = match name.as_str() {
            "all" => self.constant(quote!(true), span),
            "any" => self.constant(quote!(false), span),
            "sum" => self.constant(quote!(::autodiff::__private::sum_identity()), span),
            "product" => self.constant(quote!(::autodiff::__private::one()), span),
            "collect" => self.emit1(Opcode::VecNew, Vec::new(), span),
            _ => self.lower_single(&m.args[0])?,
        };
        let source = self.iteration_source(chain)?;
        if let Source::Arrays { arrays, .. } = &source {
            if arrays
                .iter()
                .any(|a| self.mutable_sources.remove(a).is_some())
            {
                self.errors.push_spanned(
                    chain,
                    "`iter_mut()` and `&mut v` drive `for` loops only; write the changes in a `for o in v.iter_mut()` loop and reduce with `.iter()`",
                );
                return None;
            }
        }
        let (args, range) = self.source_header(&source, span);
        let shape = source.item_shape();
        let acc_slot = self.env.len();
        self.env.push(Binding {
            name: "#acc".into(),
            slot: Slot::Bound(Operand::Value(init)),
        });
        let body = |this: &mut Self, index: Option<Value>| {
            let index = index.expect("reductions loop over indices");
            let env_len = this.env.len();
            // the filter's verdict on the source's item, or on the map's value of it
            let mut mapped = None;
            let keep = match filter {
                Some(filter) if filter_after_map => {
                    let map = map.expect("a filter after a map");
                    this.bind_item(&map.inputs[0], &shape, &source, index, span)?;
                    let value = this.lower_single(&map.body)?;
                    mapped = Some(value);
                    this.bind_pattern(
                        without_references(&filter.inputs[0]),
                        Operand::Value(value),
                        true,
                    );
                    Some(this.lower_condition(&filter.body)?)
                }
                Some(filter) => {
                    this.bind_item(&filter.inputs[0], &shape, &source, index, span)?;
                    Some(this.lower_condition(&filter.body)?)
                }
                None => None,
            };
            let step = |this: &mut Self| -> Option<Operand> {
                let scope = this.env.len();
                let next = this.reduction_step(
                    &name, acc_slot, map, fold, mapped, &shape, &source, index, span, m,
                )?;
                this.env.truncate(scope);
                this.env[acc_slot].slot = Slot::Bound(Operand::Value(next));
                Some(Operand::Unit)
            };
            match keep {
                Some(keep) => {
                    let skip = |_: &mut Self| Some(Operand::Unit);
                    this.structured(Opcode::If, keep, vec![(None, &step), (None, &skip)], span)?;
                }
                None => {
                    step(this)?;
                }
            }
            this.env.truncate(env_len);
            this.loop_exit(true, span)
        };
        let names = vec!["#acc".to_string()];
        self.lower_loop(Some((args, range)), &names, None, false, span, &body)?;
        let result = match &self.env[acc_slot].slot {
            Slot::Bound(op) => op.clone(),
            _ => return None,
        };
        self.env.truncate(acc_slot);
        Some(result)
    }

    /// `receiver.<method>(|..| ..)` in an iterator chain: the chain before it and the closure;
    /// `e` itself and no closure when `e` is another call.
    fn chain_step<'c>(
        &mut self,
        e: &'c Expr,
        method: &str,
    ) -> Option<(&'c Expr, Option<&'c syn::ExprClosure>)> {
        match e {
            Expr::MethodCall(inner) if inner.method == method && inner.args.len() == 1 => {
                match &inner.args[0] {
                    Expr::Closure(c) if c.inputs.len() == 1 => Some((&*inner.receiver, Some(c))),
                    other => {
                        self.errors.push_spanned(other, format!("`{method}` in a differentiated iterator chain takes a closure of one item, like `.{method}(|v| ..)`"));
                        None
                    }
                }
            }
            other => Some((other, None)),
        }
    }

    /// One iteration of a reduction: the accumulator's next value from the current item (the
    /// map's value of it when `mapped` holds it already).
    #[allow(clippy::too_many_arguments)]
    fn reduction_step(
        &mut self,
        name: &str,
        acc_slot: usize,
        map: Option<&syn::ExprClosure>,
        fold: Option<&syn::ExprClosure>,
        mapped: Option<Value>,
        shape: &ItemShape,
        source: &Source,
        index: Value,
        span: Span,
        m: &syn::ExprMethodCall,
    ) -> Option<Value> {
        let acc = match &self.env[acc_slot].slot {
            Slot::Bound(Operand::Value(v)) => *v,
            _ => return None,
        };
        let mapped = match (mapped, map) {
            (Some(value), _) => Some(value),
            (None, Some(map)) => {
                self.bind_item(&map.inputs[0], shape, source, index, span)?;
                Some(self.lower_single(&map.body)?)
            }
            (None, None) => None,
        };
        let this = self;
        let next = match (mapped, fold) {
            (mapped, Some(fold)) => {
                this.bind_pattern(closure_param(&fold.inputs[0]), Operand::Value(acc), true);
                match mapped {
                    // the map's value, owned: `|acc, v|` or a tuple pattern
                    Some(value) => this.bind_pattern(
                        without_references(&fold.inputs[1]),
                        Operand::Value(value),
                        true,
                    ),
                    None => this.bind_item(&fold.inputs[1], shape, source, index, span)?,
                }
                this.lower_single(&fold.body)?
            }
            (mapped, None) => {
                let item = match mapped {
                    Some(value) => value,
                    None => {
                        let ItemShape::Element(k) = shape else {
                            this.errors.push_spanned(
                                &m.method,
                                format!(
                                    "`{name}` needs single elements here; add `.map(|(a, b)| ...)`"
                                ),
                            );
                            return None;
                        };
                        let Source::Arrays { arrays, .. } = source else {
                            unreachable!("elements come from arrays")
                        };
                        this.emit1(Opcode::Index, vec![arrays[*k], index], span)
                    }
                };
                match name {
                    "collect" => {
                        let len = this.emit1(Opcode::Len, vec![acc], span);
                        this.emit1(Opcode::Push, vec![acc, item, len], span)
                    }
                    "sum" => this.emit1(Opcode::Binary(BinaryOp::Add), vec![acc, item], span),
                    _ => this.emit1(Opcode::Binary(BinaryOp::Mul), vec![acc, item], span),
                }
            }
        };
        Some(next)
    }

    /// `m.map(|v| body)`: the closure becomes a scalar function of its own, so it may read
    /// nothing but its parameter.
    fn lower_map_closure(
        &mut self,
        m: &syn::ExprMethodCall,
        c: &syn::ExprClosure,
    ) -> Option<Operand> {
        let input = match c.inputs.iter().collect::<Vec<_>>()[..] {
            [input] => input,
            _ => {
                let (or1, inputs, or2) = (&c.or1_token, &c.inputs, &c.or2_token);
                self.errors.push_spanned(
                    quote!(#or1 #inputs #or2),
                    "the closure passed to `map` takes one element, like `|v| v.tanh()`",
                );
                return None;
            }
        };
        let (pat, param_ty) = match input {
            Pat::Type(t) => (&*t.pat, Some((*t.ty).clone())),
            other => (other, None),
        };
        let param = match pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            _ => {
                self.errors.push_spanned(
                    input,
                    "the closure passed to `map` must name its element, like `|v| v.tanh()`",
                );
                return None;
            }
        };
        let captures = self.captured(c, &param);
        if let Some(capture) = captures
            .iter()
            .find(|name| matches!(self.lookup(&name.to_string()), Some(Slot::Closure(_))))
        {
            self.errors.push_spanned(
                capture,
                format!("the closure passed to `map` calls `{capture}`, a closure of the enclosing function, but it is differentiated as a function of its element and the numbers it reads; write the computation out inside it, or make `{capture}` a #[differentiate] function"),
            );
            return None;
        }
        let receiver = self.lower_single(&m.receiver)?;
        // the variables it reads become parameters of the lifted function after the element
        let mut operands = vec![receiver];
        for capture in &captures {
            let read = syn::Expr::Path(syn::ExprPath {
                attrs: Vec::new(),
                qself: None,
                path: capture.clone().into(),
            });
            operands.push(self.lower_single(&read)?);
        }
        let k = self.func.closures.len();
        let function = quote::format_ident!(
            "__autodiff_map_{}_{}",
            crate::names::unraw(&self.func.name),
            k,
            span = m.method.span()
        );
        let pullback = crate::names::pullback_struct(&function);
        let args = &self.generic_args;
        let pullbacks_ty: syn::Type = if args.is_empty() {
            syn::parse_quote!(::std::vec::Vec<#pullback>)
        } else {
            syn::parse_quote!(::std::vec::Vec<#pullback<#(#args),*>>)
        };
        self.func.closures.push(MapClosure {
            closure: c.clone(),
            function,
            param,
            param_ty,
            captures,
            pullbacks_ty,
            rebuilt_from: None,
        });
        let results = self.emit(Opcode::MapElementwise(k), operands, 2, m.span());
        self.name_value_str(results[1], &format!("map{k}_pullbacks"));
        Some(Operand::Value(results[0]))
    }

    /// The variables of the enclosing function a closure body reads, each once, in the order
    /// they first appear.
    fn captured(&self, c: &syn::ExprClosure, param: &Ident) -> Vec<Ident> {
        struct Reads<'a> {
            param: &'a Ident,
            locals: Vec<String>,
            names: Vec<Ident>,
        }
        impl<'ast> Visit<'ast> for Reads<'_> {
            fn visit_local(&mut self, local: &'ast syn::Local) {
                syn::visit::visit_local(self, local);
                if let Pat::Ident(p) = &local.pat {
                    self.locals.push(p.ident.to_string());
                }
            }
            fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
                let Some(ident) = path.path.get_ident() else {
                    return;
                };
                if path.qself.is_none()
                    && ident != self.param
                    && !self.locals.contains(&ident.to_string())
                {
                    self.names.push(ident.clone());
                }
            }
        }
        let mut reads = Reads {
            param,
            locals: Vec::new(),
            names: Vec::new(),
        };
        reads.visit_expr(&c.body);
        let mut captures: Vec<Ident> = Vec::new();
        for name in reads.names {
            if self.lookup(&name.to_string()).is_some() && !captures.contains(&name) {
                captures.push(name);
            }
        }
        captures
    }

    /// A closure bound by `let` is inlined where it is called: its parameters must be plain
    /// names, and it may neither return early (a `return` would leave the function, not the
    /// closure, once inlined) nor assign a variable outside it.
    fn check_local_closure(&mut self, c: &syn::ExprClosure) -> Option<()> {
        if let Some(token) = c.asyncness.as_ref() {
            self.errors.push(
                token.span,
                "async closures are not supported in #[differentiate] functions",
            );
            return None;
        }
        for input in &c.inputs {
            let name = match input {
                Pat::Type(t) => &*t.pat,
                other => other,
            };
            if !matches!(name, Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none()) {
                self.errors.push_spanned(
                    input,
                    "a closure's parameters must be plain names here, like `|x, i: usize|`; take tuples apart inside the body",
                );
                return None;
            }
        }
        struct Returns(Option<proc_macro2::Span>);
        impl<'ast> Visit<'ast> for Returns {
            fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
                self.0.get_or_insert(r.return_token.span);
            }
            fn visit_expr_try(&mut self, t: &'ast syn::ExprTry) {
                self.0.get_or_insert(t.question_token.span);
            }
            // a closure inside has returns of its own
            fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        }
        let mut returns = Returns(None);
        returns.visit_expr(&c.body);
        if let Some(span) = returns.0 {
            self.errors.push(
                span,
                "a closure bound to a variable is inlined where it is called, so it cannot return early; make its value the last expression of its body (an `if`/`else` works)",
            );
            return None;
        }
        let inner = &c.body;
        let Ok(wrapped) = syn::parse2::<syn::Block>(quote!({ (#inner); })) else {
            return Some(());
        };
        let params: Vec<String> = c
            .inputs
            .iter()
            .filter_map(|input| match input {
                Pat::Type(t) => pattern_ident(&t.pat),
                other => pattern_ident(other),
            })
            .collect();
        for name in assigned_names(&wrapped) {
            if !params.contains(&name) && self.lookup(&name).is_some() {
                self.errors.push_spanned(
                    &c.body,
                    format!("this closure assigns to `{name}`, a variable outside it; closures must not capture mutably here: write the statements where the closure is called, or a `for` loop"),
                );
                return None;
            }
        }
        Some(())
    }

    /// `f(a, b)` of a closure bound by `let f = |x, y| body;`: the body lowered here, in the
    /// closure's environment, with its parameters bound to the arguments.
    fn inline_closure(
        &mut self,
        closure: &LocalClosure,
        args: Vec<Value>,
        results: usize,
    ) -> Option<Operand> {
        let (c, env) = &*closure.0;
        if c.inputs.len() != args.len() {
            // rustc reports the wrong number of arguments itself
            self.errors.fail_silently();
            return None;
        }
        let outer = std::mem::replace(&mut self.env, env.clone());
        for (input, arg) in c.inputs.iter().zip(args) {
            let (pat, ty) = match input {
                Pat::Type(t) => (&*t.pat, Some(&*t.ty)),
                other => (other, None),
            };
            if let Pat::Ident(p) = pat {
                let mut value = arg;
                if let Some(ty) = ty {
                    // as a `let` with that type: an integer parameter is a constant. Only a
                    // scalar type is the argument's own; a reference may be coerced into the
                    // parameter's type (`&Vec<f64>` into `&[f64]`)
                    if crate::args::is_integer_type(ty) {
                        value = self.emit1(Opcode::Cast(ty.clone()), vec![value], p.span());
                        self.annotations.insert(value, ty.clone());
                    } else if crate::args::is_float_type(ty, &self.generics) {
                        self.annotations.insert(value, ty.clone());
                    }
                }
                self.declare(&p.ident, Slot::Bound(Operand::Value(value)));
            }
        }
        let body = match results {
            1 => self.lower_expr(&c.body),
            n => self.lower_expr_expecting(&c.body, n),
        };
        self.env = outer;
        body
    }

    /// Closures in iterator chains may read variables but not assign them.
    fn check_closure(&mut self, c: &syn::ExprClosure) -> Option<()> {
        // parenthesised, so that a body like `{ .. } as f32` stays one expression
        let inner = &c.body;
        let Ok(wrapped) = syn::parse2::<syn::Block>(quote!({ (#inner); })) else {
            return Some(());
        };
        for name in assigned_names(&wrapped) {
            if self.lookup(&name).is_some() {
                self.errors.push_spanned(
                    &c.body,
                    format!("this closure assigns to `{name}`, a variable outside it; closures in iterator chains must not capture mutably: write a `for` loop instead"),
                );
                return None;
            }
        }
        Some(())
    }
}
