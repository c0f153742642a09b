//! Activity analysis, to-be-recorded analysis and type inference of saved values.
//!
//! * A value is **varied** when it depends differentiably on an active parameter, and
//!   **useful** when the output depends differentiably on it; it is **active** when both
//!   hold (Hascoët & Pascual, "The Tapenade automatic differentiation tool", TOMS 2013).
//!   Only active values get cotangents.
//! * The **to-be-recorded** analysis finds the forward values the adjoint reads: the inputs
//!   and outputs each rule of an active instruction asks for, the arguments of calls it
//!   replays, and which arm of each `if`/`match` ran. Values computed from constants only
//!   are recomputed in the backward pass instead of being saved.
//! * Saved values become struct fields, whose types the macro must write. Types are inferred
//!   by unification from the signature, `let` annotations, casts and the primitive table
//!   (arithmetic on scalars keeps its operand type).

use proc_macro2::Span;
use std::collections::HashMap;

use crate::errors::Errors;
use crate::ir::{
    Annotate, BinaryOp, Block, Function, Inst, OpaqueKind, Opcode, ParamRole, UnaryOp, Value,
};
use crate::primitives::{Derivative, Read, Ty};

/// The results of the analyses for one choice of active parameters.
pub struct Analysis {
    /// Which parameters are active.
    pub active_params: Vec<bool>,
    /// Per value: depends differentiably on an active parameter.
    pub varied: Vec<bool>,
    /// Per value: the output depends differentiably on it.
    pub useful: Vec<bool>,
    /// Per value: read by the backward pass.
    pub needed: Vec<bool>,
    /// Per value: computed from constants only, so recomputed rather than saved.
    pub constant: Vec<bool>,
    /// Per instruction: the backward pass has work to do for it.
    pub reversed: Vec<bool>,
    /// Per value: its inferred type, where known.
    pub types: Vec<Option<syn::Type>>,
}

impl Analysis {
    /// Whether `v` carries a cotangent.
    pub fn is_active(&self, v: Value) -> bool {
        self.varied[v.index()] && self.useful[v.index()]
    }

    /// Whether `v` is saved in the pullback struct.
    pub fn is_saved(&self, v: Value) -> bool {
        self.needed[v.index()] && !self.constant[v.index()]
    }
}

/// Runs every analysis. Errors (an active value reaching an operation without a derivative,
/// a saved value of unknown type) are recorded in `errors`.
pub fn analyze(
    func: &Function,
    active_params: &[bool],
    annotations: &HashMap<Value, syn::Type>,
    output_types: &[syn::Type],
    generics: &[syn::Ident],
    errors: &mut Errors,
) -> Analysis {
    let n = func.values.len();
    let mut analysis = Analysis {
        active_params: active_params.to_vec(),
        varied: vec![false; n],
        useful: vec![false; n],
        needed: vec![false; n],
        constant: vec![false; n],
        reversed: vec![false; func.insts.len()],
        types: vec![None; n],
    };
    for (param, &active) in func.params.iter().zip(active_params) {
        analysis.varied[param.value.index()] = active;
    }
    forward_varied(func, func.entry, &mut analysis);
    for &y in &func.block(func.entry).yields {
        analysis.useful[y.index()] = true;
    }
    backward_useful(func, func.entry, &mut analysis);
    check_differentiable(func, &analysis, errors);
    mark_constants(func, &mut analysis);
    record(func, func.entry, &mut analysis);
    infer_types(
        func,
        annotations,
        output_types,
        generics,
        &mut analysis,
        errors,
    );
    analysis
}

fn is_float_cast(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.is_ident("f32") || p.path.is_ident("f64"))
}

/// Which arguments an instruction differentiates through, given its opcode.
fn differentiable_args(func: &Function, inst: Inst) -> Vec<bool> {
    let data = func.inst(inst);
    match &data.opcode {
        Opcode::Binary(op) => vec![crate::primitives::binary(*op).is_some(); 2],
        Opcode::Unary(UnaryOp::Neg) => vec![true],
        Opcode::Cast(ty) => vec![is_float_cast(ty)],
        Opcode::Primitive(p) => match &p.derivative {
            Derivative::Rules(rules) => rules.iter().map(Option::is_some).collect(),
            Derivative::Zero => vec![false; data.args.len()],
        },
        Opcode::Call(_) => vec![true; data.args.len()],
        _ => vec![false; data.args.len()],
    }
}

fn forward_varied(func: &Function, block: Block, a: &mut Analysis) {
    for &inst in &func.block(block).insts {
        let data = func.inst(inst);
        match &data.opcode {
            Opcode::If | Opcode::Match(_) => {
                for &arm in &data.arms {
                    forward_varied(func, arm, a);
                    for (r, y) in data.results.iter().zip(&func.block(arm).yields) {
                        if a.varied[y.index()] {
                            a.varied[r.index()] = true;
                        }
                    }
                }
            }
            _ => {
                let through = differentiable_args(func, inst);
                let varied = data
                    .args
                    .iter()
                    .zip(&through)
                    .any(|(v, &t)| t && a.varied[v.index()]);
                for r in &data.results {
                    a.varied[r.index()] = varied;
                }
            }
        }
    }
}

fn backward_useful(func: &Function, block: Block, a: &mut Analysis) {
    for &inst in func.block(block).insts.iter().rev() {
        let data = func.inst(inst);
        match &data.opcode {
            Opcode::If | Opcode::Match(_) => {
                for &arm in data.arms.iter().rev() {
                    for (r, y) in data.results.iter().zip(&func.block(arm).yields) {
                        if a.useful[r.index()] {
                            a.useful[y.index()] = true;
                        }
                    }
                    backward_useful(func, arm, a);
                }
            }
            _ => {
                if data.results.iter().any(|r| a.useful[r.index()]) {
                    let through = differentiable_args(func, inst);
                    for (arg, t) in data.args.iter().zip(through) {
                        if t {
                            a.useful[arg.index()] = true;
                        }
                    }
                }
            }
        }
    }
}

/// An active value flowing into something without a derivative, where the result matters,
/// would silently drop a derivative: that is an error.
fn check_differentiable(func: &Function, a: &Analysis, errors: &mut Errors) {
    let mut reported = false;
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        if reported || !data.args.iter().any(|v| a.varied[v.index()]) {
            return;
        }
        let matters = || data.results.iter().any(|r| flows_to_output(func, *r));
        match &data.opcode {
            Opcode::Method(name, _) if matters() => errors.push(
                name.span(),
                format!(
                    "`{name}` has no derivative rule, so the derivative through it would be lost; use a supported float method (see docs/supported.md), or move the computation into a #[differentiate] function"
                ),
            ),
            Opcode::Opaque(opaque) if matters() => {
                let OpaqueKind::Method(what) = &opaque.kind;
                errors.push(
                    data.span,
                    format!("{what} of a value being differentiated is not supported; use the value directly"),
                );
            }
            Opcode::Call(path) if is_conversion(path) => {
                let text = crate::ir::tokens_text(&quote::quote!(#path));
                errors.push_spanned(
                    path,
                    format!(
                        "`{text}` has no derivative rule; it converts constants only: a value being differentiated already has the float type, so use it directly (or `as` between `f32` and `f64`)"
                    ),
                );
            }
            _ => return,
        }
        reported = true;
    });
}

/// `T::from`, `f64::from`, `NumCast::from`: conversions, which have no derivative.
fn is_conversion(path: &syn::ExprPath) -> bool {
    let segments = &path.path.segments;
    segments.len() >= 2
        && segments
            .first()
            .is_some_and(|first| is_type_like(&first.ident.to_string()))
}

fn is_type_like(segment: &str) -> bool {
    matches!(
        segment,
        "f32" | "f64" | "Float" | "NumCast" | "FromPrimitive" | "From"
    ) || segment.len() == 1 && segment.chars().all(|c| c.is_ascii_uppercase())
}

/// Whether a value computed from a varied argument by an opaque operation would reach the
/// output if the operation were differentiable.
fn flows_to_output(func: &Function, start: Value) -> bool {
    let mut tainted = vec![false; func.values.len()];
    tainted[start.index()] = true;
    let mut changed = true;
    while changed {
        changed = false;
        func.walk_insts(func.entry, &mut |inst| {
            let data = func.inst(inst);
            if data.args.iter().any(|v| tainted[v.index()]) {
                for r in &data.results {
                    if !tainted[r.index()] {
                        tainted[r.index()] = true;
                        changed = true;
                    }
                }
            }
            for &arm in &data.arms {
                for (r, y) in data.results.iter().zip(&func.block(arm).yields) {
                    if tainted[y.index()] && !tainted[r.index()] {
                        tainted[r.index()] = true;
                        changed = true;
                    }
                }
            }
        });
    }
    func.block(func.entry)
        .yields
        .iter()
        .any(|y| tainted[y.index()])
}

/// Values computed only from literals and constant paths through pure operations.
fn mark_constants(func: &Function, a: &mut Analysis) {
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let pure = matches!(
            data.opcode,
            Opcode::Const(_)
                | Opcode::Binary(_)
                | Opcode::Unary(_)
                | Opcode::Cast(_)
                | Opcode::Primitive(_)
                | Opcode::Method(..)
                | Opcode::Opaque(_)
                | Opcode::Call(_)
        );
        if pure && data.results.len() == 1 && data.args.iter().all(|v| a.constant[v.index()]) {
            a.constant[data.results[0].index()] = true;
        }
    });
}

/// The to-be-recorded analysis: marks what the backward pass reads. Returns whether the
/// block has any backward work.
fn record(func: &Function, block: Block, a: &mut Analysis) -> bool {
    let mut any = false;
    for &inst in &func.block(block).insts {
        let data = func.inst(inst);
        let active_result = data.results.iter().any(|r| a.is_active(*r));
        let work = match &data.opcode {
            Opcode::If | Opcode::Match(_) => {
                let mut inner = false;
                for &arm in &data.arms {
                    inner |= record(func, arm, a);
                }
                inner || active_result
            }
            Opcode::Call(_) if active_result => {
                for arg in &data.args {
                    a.needed[arg.index()] = true;
                }
                true
            }
            Opcode::Binary(_) | Opcode::Unary(_) | Opcode::Cast(_) | Opcode::Primitive(_)
                if active_result =>
            {
                for (i, arg) in data.args.iter().enumerate() {
                    if !a.is_active(*arg) {
                        continue;
                    }
                    if let Some(rule) = rule_of(&data.opcode, i) {
                        for read in rule.reads {
                            let v = match read {
                                Read::Arg(j) => data.args[*j],
                                Read::Result => data.results[0],
                            };
                            a.needed[v.index()] = true;
                        }
                    }
                }
                true
            }
            _ => false,
        };
        a.reversed[inst.index()] = work;
        any |= work;
    }
    any
}

/// The rule giving the cotangent of argument `i` of an arithmetic or primitive instruction.
pub fn rule_of(opcode: &Opcode, i: usize) -> Option<&'static crate::primitives::Rule> {
    let prim = match opcode {
        Opcode::Binary(op) => crate::primitives::binary(*op)?,
        Opcode::Unary(UnaryOp::Neg) => &crate::primitives::NEG,
        Opcode::Primitive(p) => p,
        _ => return None,
    };
    match &prim.derivative {
        Derivative::Rules(rules) => rules.get(i)?.as_ref(),
        Derivative::Zero => None,
    }
}

// ---- type inference ----

struct UnionFind {
    parent: Vec<usize>,
    ty: Vec<Option<syn::Type>>,
}

impl UnionFind {
    fn find(&mut self, x: usize) -> usize {
        let mut root = x;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        let mut cur = x;
        while self.parent[cur] != root {
            let next = self.parent[cur];
            self.parent[cur] = root;
            cur = next;
        }
        root
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[rb] = ra;
            if self.ty[ra].is_none() {
                self.ty[ra] = self.ty[rb].take();
            }
        }
    }

    fn set(&mut self, a: usize, ty: syn::Type) {
        let r = self.find(a);
        if self.ty[r].is_none() {
            self.ty[r] = Some(ty);
        }
    }
}

fn literal_type(tokens: &proc_macro2::TokenStream) -> Option<syn::Type> {
    let lit: syn::Lit = syn::parse2(tokens.clone()).ok()?;
    let name = match &lit {
        syn::Lit::Float(f) if !f.suffix().is_empty() => f.suffix().to_string(),
        syn::Lit::Int(i) if !i.suffix().is_empty() => i.suffix().to_string(),
        syn::Lit::Bool(_) => "bool".into(),
        _ => return None,
    };
    syn::parse_str(&name).ok()
}

fn infer_types(
    func: &Function,
    annotations: &HashMap<Value, syn::Type>,
    output_types: &[syn::Type],
    generics: &[syn::Ident],
    a: &mut Analysis,
    errors: &mut Errors,
) {
    let n = func.values.len();
    let bool_ty: syn::Type = syn::parse_quote!(bool);
    let i32_ty: syn::Type = syn::parse_quote!(i32);
    let mut uf = UnionFind {
        parent: (0..n).collect(),
        ty: vec![None; n],
    };
    for p in &func.params {
        uf.set(p.value.index(), p.ty.clone());
    }
    for (v, ty) in annotations {
        uf.set(v.index(), ty.clone());
    }
    for (y, ty) in func.block(func.entry).yields.iter().zip(output_types) {
        uf.set(y.index(), ty.clone());
    }
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let args: Vec<usize> = data.args.iter().map(|v| v.index()).collect();
        let results: Vec<usize> = data.results.iter().map(|v| v.index()).collect();
        match &data.opcode {
            Opcode::Const(tokens) => {
                if let Some(ty) = literal_type(tokens) {
                    uf.set(results[0], ty);
                }
            }
            Opcode::Binary(BinaryOp::Compare(_)) => {
                uf.union(args[0], args[1]);
                uf.set(results[0], bool_ty.clone());
            }
            Opcode::Binary(BinaryOp::Bit(crate::ir::BitOp::Shl | crate::ir::BitOp::Shr)) => {
                uf.union(results[0], args[0]);
            }
            Opcode::Binary(_) => {
                uf.union(args[0], args[1]);
                uf.union(results[0], args[0]);
            }
            Opcode::Unary(_) => uf.union(results[0], args[0]),
            Opcode::Cast(ty) => uf.set(results[0], ty.clone()),
            Opcode::Primitive(p) => {
                for (i, t) in p.arg_types.iter().enumerate() {
                    match t {
                        Ty::Same => uf.union(args[i + 1], args[0]),
                        Ty::I32 => uf.set(args[i + 1], i32_ty.clone()),
                        Ty::Bool => uf.set(args[i + 1], bool_ty.clone()),
                    }
                }
                match p.result {
                    Ty::Same => uf.union(results[0], args[0]),
                    Ty::I32 => uf.set(results[0], i32_ty.clone()),
                    Ty::Bool => uf.set(results[0], bool_ty.clone()),
                }
            }
            Opcode::If => {
                uf.set(args[0], bool_ty.clone());
                for &arm in &data.arms {
                    for (r, y) in results.iter().zip(&func.block(arm).yields) {
                        uf.union(*r, y.index());
                    }
                }
            }
            Opcode::Match(_) => {
                for &arm in &data.arms {
                    for (r, y) in results.iter().zip(&func.block(arm).yields) {
                        uf.union(*r, y.index());
                    }
                }
            }
            _ => {}
        }
    });
    // the float type of the function, when its float parameters agree on one
    let float_types: Vec<&syn::Type> = func
        .params
        .iter()
        .filter(|p| p.role == ParamRole::Float)
        .map(|p| &p.ty)
        .chain(output_types.iter())
        .collect();
    let unique_float = float_types
        .first()
        .filter(|first| float_types.iter().all(|t| t == *first))
        .map(|t| (*t).clone());
    let _ = generics;
    let mut reported = false;
    for v in 0..n {
        let root = uf.find(v);
        a.types[v] = uf.ty[root].clone();
        if a.types[v].is_none() && a.varied[v] {
            a.types[v] = unique_float.clone();
        }
        if a.needed[v] && !a.constant[v] && a.types[v].is_none() && !reported {
            reported = true;
            let value = Value(v as u32);
            let span: Span = func.value(value).span;
            let name = func.value(value).name.clone().unwrap_or_else(|| "y".into());
            errors.push(
                span,
                format!(
                    "#[differentiate] cannot infer the type of this value, which the backward pass needs to save; bind it to a variable with a type annotation, e.g. `let {name}: f64 = ...;`"
                ),
            );
        }
    }
}

/// Text-form annotations showing the activity of each instruction's results.
#[cfg(test)]
pub struct ActivityNotes<'a>(pub &'a Analysis);

#[cfg(test)]
impl Annotate for ActivityNotes<'_> {
    fn inst_note(&self, func: &Function, inst: Inst) -> Option<String> {
        let results = &func.inst(inst).results;
        let active: Vec<String> = results
            .iter()
            .filter(|r| self.0.is_active(**r))
            .map(|r| r.to_string())
            .collect();
        (!active.is_empty()).then(|| format!("active {}", active.join(", ")))
    }
    fn header_note(&self, func: &Function) -> Option<String> {
        let active: Vec<String> = func
            .params
            .iter()
            .filter(|p| self.0.is_active(p.value))
            .map(|p| p.value.to_string())
            .collect();
        Some(format!("active {}", active.join(", ")))
    }
}

/// Text-form annotations showing which values are saved and which instructions are reversed.
pub struct RecordNotes<'a>(pub &'a Analysis);

impl Annotate for RecordNotes<'_> {
    fn inst_note(&self, func: &Function, inst: Inst) -> Option<String> {
        let data = func.inst(inst);
        let mut notes = Vec::new();
        let saved: Vec<String> = data
            .results
            .iter()
            .filter(|r| self.0.is_saved(**r))
            .map(|r| r.to_string())
            .collect();
        if !saved.is_empty() {
            notes.push(format!("saved {}", saved.join(", ")));
        }
        if self.0.reversed[inst.index()] {
            notes.push("reversed".into());
        }
        (!notes.is_empty()).then(|| notes.join("; "))
    }
    fn header_note(&self, func: &Function) -> Option<String> {
        let saved: Vec<String> = func
            .params
            .iter()
            .filter(|p| self.0.is_saved(p.value))
            .map(|p| p.value.to_string())
            .collect();
        Some(format!("saved {}", saved.join(", ")))
    }
}
