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

mod calls;
mod closures;
mod control;
mod loops;
mod places;

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
    cholesky_factors_stay_local(&lowerer.func, lowerer.errors);
    if lowerer.errors.len() > before {
        return None;
    }
    Some(Lowered {
        func: lowerer.func,
        annotations: lowerer.annotations,
    })
}

/// A Cholesky factorisation used other than as the receiver of its methods: passed on,
/// borrowed, yielded by a branch or carried by a loop. The generated code holds its lower
/// factor, a matrix, where the function holds nalgebra's `Cholesky`.
fn cholesky_factors_stay_local(func: &Function, errors: &mut Errors) {
    let is_factor = |v: Value| {
        func.def_inst(v).is_some_and(|inst| {
            matches!(func.inst(inst).opcode,
                Opcode::Primitive(p) if std::ptr::eq(p, &primitives::cholesky::FACTOR))
        })
    };
    let message = "a Cholesky factorisation is supported here only as the receiver of `solve`, `l`, `determinant`, `ln_determinant` and `inverse`; call them where it was made, and pass on their results";
    let mut reported = false;
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let method = matches!(data.opcode, Opcode::Primitive(p)
            if primitives::cholesky::is_cholesky(p) && !std::ptr::eq(p, &primitives::cholesky::FACTOR));
        for (i, &arg) in data.args.iter().enumerate() {
            if is_factor(arg) && !(method && i == 0) && !reported {
                errors.push(data.span, message);
                reported = true;
            }
        }
    });
    for block in &func.blocks {
        if !reported && block.yields.iter().any(|&v| is_factor(v)) {
            let span = block
                .yields
                .iter()
                .find_map(|&v| func.def_inst(v))
                .map_or_else(Span::call_site, |inst| func.inst(inst).span);
            errors.push(span, message);
            reported = true;
        }
    }
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
                // `let (a, b) = *q;` of a borrowed tuple parameter: the parameter's fields
                let tuple = match self.func.value(tuple).def {
                    ValueDef::Result(inst, _)
                        if matches!(self.func.inst(inst).opcode, Opcode::Deref) =>
                    {
                        let borrowed = self.func.inst(inst).args[0];
                        match self.func.value(borrowed).def {
                            ValueDef::Param(i) if self.func.param_structs[i] => borrowed,
                            _ => tuple,
                        }
                    }
                    _ => tuple,
                };
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

    /// Lowers an `if` or `while` condition. `if let` and `while let` were read as `match`es
    /// before (`expand::LetConditionsAsMatches`); a `let` left is part of a let chain.
    fn lower_condition(&mut self, cond: &Expr) -> Option<Value> {
        fn chained_let(e: &Expr) -> Option<&syn::ExprLet> {
            match e {
                Expr::Let(l) => Some(l),
                Expr::Binary(b) => chained_let(&b.left).or_else(|| chained_let(&b.right)),
                Expr::Paren(p) => chained_let(&p.expr),
                _ => None,
            }
        }
        if let Some(l) = chained_let(cond) {
            self.errors.push(
                l.let_token.span,
                "a `let` joined to other conditions (a let chain) is not supported; nest the `if let` inside an `if` on the other conditions",
            );
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

/// `DMatrix::from_row_slice(r, c, s)`, `DVector::from_vec(v)`, `Matrix2x3::from_column_slice(s)`
/// with `args` arguments: the type's path, the constructor's name and whether it reads the
/// data row by row. Dynamic matrices take their size first; vectors and fixed-size types
/// take the data alone.
fn matrix_from_constructor(path: &syn::ExprPath, args: usize) -> Option<(syn::Path, Ident, bool)> {
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<&syn::PathSegment> = path.path.segments.iter().collect();
    let (last, ty) = segments.split_last()?;
    let function = &last.ident;
    let row_major = match function.to_string().as_str() {
        "from_row_slice" => true,
        "from_column_slice" | "from_vec" => false,
        _ => return None,
    };
    if !last.arguments.is_none() {
        return None;
    }
    let alias = ty.last()?.ident.to_string();
    let fixed_size = ["Matrix", "Vector", "RowVector"].iter().any(|prefix| {
        alias.strip_prefix(prefix).is_some_and(|rest| {
            rest.chars().next().is_some_and(|c| c.is_ascii_digit())
                && rest.chars().all(|c| c.is_ascii_digit() || c == 'x')
        })
    });
    let expected = match alias.as_str() {
        "DMatrix" => 3,
        "DVector" | "RowDVector" | "SMatrix" | "SVector" => 1,
        _ if fixed_size => 1,
        _ => return None,
    };
    (args == expected).then(|| {
        let ty = syn::Path {
            leading_colon: path.path.leading_colon,
            segments: ty.iter().map(|s| (*s).clone()).collect(),
        };
        (ty, function.clone(), row_major)
    })
}

/// The first `return` expression inside `body` (closures inside it included).
fn first_return(body: &Expr) -> Option<&syn::ExprReturn> {
    struct First<'a>(Option<&'a syn::ExprReturn>);
    impl<'a> Visit<'a> for First<'a> {
        fn visit_expr_return(&mut self, r: &'a syn::ExprReturn) {
            if self.0.is_none() {
                self.0 = Some(r);
            }
        }
    }
    let mut first = First(None);
    first.visit_expr(body);
    first.0
}

/// The shape of the `from_vec` a `from_fn` is rebuilt with.
enum FromFnShape {
    /// `DMatrix::from_vec(r, c, data)`
    Matrix,
    /// `DVector::from_vec(data)`, and the fixed-size forms
    Vector,
}

/// A `from_fn` call: the type's path, its size as expressions and the closure of `(i, j)`.
struct MatrixFromFn<'a> {
    ty: syn::Path,
    rows: TokenStream,
    cols: TokenStream,
    shape: FromFnShape,
    closure: &'a syn::ExprClosure,
}

/// `DMatrix::from_fn(r, c, |i, j| ..)`, `DVector::from_fn(n, |i, _| ..)`,
/// `RowDVector::from_fn(n, ..)`, `Matrix2x3::from_fn(|i, j| ..)`, `Vector3::from_fn(..)`: the
/// closure takes two parameters (row and column) and is the last argument.
fn matrix_from_fn<'a>(
    path: &syn::ExprPath,
    args: &'a syn::punctuated::Punctuated<Expr, syn::Token![,]>,
) -> Option<MatrixFromFn<'a>> {
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<&syn::PathSegment> = path.path.segments.iter().collect();
    let (last, ty) = segments.split_last()?;
    if last.ident != "from_fn" || !last.arguments.is_none() {
        return None;
    }
    let Some(Expr::Closure(closure)) = args.last() else {
        return None;
    };
    if closure.inputs.len() != 2 {
        return None;
    }
    let sizes: Vec<&Expr> = args.iter().take(args.len() - 1).collect();
    let alias = ty.last()?.ident.to_string();
    let (rows, cols, shape) = match (alias.as_str(), &sizes[..]) {
        ("DMatrix", [r, c]) => (quote::quote!(#r), quote::quote!(#c), FromFnShape::Matrix),
        ("DVector", [n]) => (quote::quote!(#n), quote::quote!(1), FromFnShape::Vector),
        ("RowDVector", [n]) => (quote::quote!(1), quote::quote!(#n), FromFnShape::Vector),
        (_, []) => {
            let (rows, cols) = fixed_size_dims(&alias)?;
            (
                quote::quote!(#rows),
                quote::quote!(#cols),
                FromFnShape::Vector,
            )
        }
        _ => return None,
    };
    let ty = syn::Path {
        leading_colon: path.path.leading_colon,
        segments: ty.iter().map(|s| (*s).clone()).collect(),
    };
    Some(MatrixFromFn {
        ty,
        rows,
        cols,
        shape,
        closure,
    })
}

/// The size an alias names: `Matrix3` 3 x 3, `Matrix2x3` 2 x 3, `Vector4` 4 x 1,
/// `RowVector2` 1 x 2.
fn fixed_size_dims(alias: &str) -> Option<(usize, usize)> {
    let number = |s: &str| s.parse::<usize>().ok().filter(|n| *n > 0);
    if let Some(rest) = alias.strip_prefix("RowVector") {
        return Some((1, number(rest)?));
    }
    if let Some(rest) = alias.strip_prefix("Vector") {
        return Some((number(rest)?, 1));
    }
    let rest = alias.strip_prefix("Matrix")?;
    match rest.split_once('x') {
        Some((r, c)) => Some((number(r)?, number(c)?)),
        None => {
            let n = number(rest)?;
            Some((n, n))
        }
    }
}

fn closure_param(pat: &Pat) -> &Pat {
    match pat {
        Pat::Type(t) => closure_param(&t.pat),
        other => other,
    }
}

impl<'e> Lowerer<'e> {
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
}
