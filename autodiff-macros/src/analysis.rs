//! Activity analysis, to-be-recorded analysis and type inference of saved values.
//!
//! * A value is **varied** when it depends differentiably on an active parameter, and
//!   **useful** when the output depends differentiably on it; it is **active** when both
//!   hold (Hascoët & Pascual, "The Tapenade automatic differentiation tool", TOMS 2013).
//!   Only active values get cotangents. Loops are iterated to a fixpoint: a carried
//!   variable is varied when its initial value or the value the body passes on is.
//! * The **to-be-recorded** analysis finds the forward values the adjoint reads: the inputs
//!   and outputs each rule of an active instruction asks for, the arguments of calls it
//!   replays, which arm of each `if`/`match` ran and, per loop iteration, the values the
//!   reversed body reads. Values computed from constants only are recomputed in the
//!   backward pass instead of being saved.
//! * Saved values become struct fields, whose types the macro must write. Types are inferred
//!   by unification from the signature, `let` annotations, casts and the primitive table
//!   (arithmetic on scalars keeps its operand type; `a[i]` has the element type of `a`).

use proc_macro2::{Ident, Span};
use std::collections::{HashMap, HashSet};

use crate::args::ArrayKind;
use crate::errors::Errors;
use crate::ir::{
    Annotate, BinaryOp, Block, Function, Inst, Opcode, ParamRole, UnaryOp, Value, ValueDef,
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
    /// Per value: read by the backward pass for more than its shape (see
    /// [`Analysis::shape_only`]).
    pub needed_fully: Vec<bool>,
    /// Per value: computed from constants only, so recomputed rather than saved.
    pub constant: Vec<bool>,
    /// Per value: needed, but cheap to recompute from other available values (arithmetic,
    /// reads of parameter arrays), so recomputed at the start of its frame in the backward
    /// pass rather than saved.
    pub recompute: Vec<bool>,
    /// Per instruction: the backward pass has work to do for it.
    pub reversed: Vec<bool>,
    /// Loop counters `c += step` (a carried integer, `step` constant) that the backward pass
    /// counts down from the loop's result instead of saving every iteration: the body
    /// parameter, with its step and the loop result it is counted down from.
    pub counters: HashMap<Value, (Value, Value)>,
    /// Counters whose count-down starts not from their loop's saved result but from a
    /// variable of an enclosing loop's reversed iteration (see [`chained_counter`]): the
    /// counter's body parameter → the enclosing loop's carried parameter the count-down
    /// continues, and that loop's result it starts from.
    pub chained: HashMap<Value, (Value, Value)>,
    /// Per instruction: an `if` on a comparison of integers (`layer == 0`), whose condition
    /// the backward pass can evaluate again instead of reading which arm ran from a record.
    pub replayable_branch: Vec<bool>,
    /// Per value: its inferred type, where known.
    pub types: Vec<Option<syn::Type>>,
    /// Per value: whether it is an array (`Vec` or fixed size), whose cotangent is a container.
    pub arrays: Vec<bool>,
    /// Per value: the type of its elements, for containers where known.
    pub elements: Vec<Option<syn::Type>>,
    /// The function's float type, when its float parameters and outputs agree on one.
    pub float: Option<syn::Type>,
    /// Per value: whether it is a `Tensor`, whose operations use the tensor rules.
    pub tensors: Vec<bool>,
    /// Per value: whether it is a nalgebra matrix or vector, whose operations use the
    /// `linalg` rules.
    pub matrices: Vec<bool>,
    /// Per value: for a `Vec` of floats made by `vec![v; n]` and changed since only element by
    /// element (in every version, through loops and branches), the `n` its length always
    /// equals. The backward pass allocates the cotangents of such arrays at that length and
    /// updates their elements without growing them (see [`fixed_lengths`]).
    pub lengths: Vec<Option<Value>>,
    /// Methods without a rule called on a parameter set (`model.predict(x)`) whose result
    /// matters: calls of `#[differentiate]` methods, if the function is read again with them
    /// written as path calls (`Model::predict(model, x)`); otherwise errors, which
    /// [`report_parameter_set_methods`] raises.
    pub parameter_set_methods: Vec<Ident>,
}

impl Analysis {
    /// Whether `v` carries a cotangent.
    pub fn is_active(&self, v: Value) -> bool {
        self.varied[v.index()] && self.useful[v.index()]
    }

    /// Whether `v` is saved in the pullback struct.
    pub fn is_saved(&self, v: Value) -> bool {
        self.needed[v.index()] && !self.constant[v.index()] && !self.recompute[v.index()]
    }

    /// Whether the backward pass reads saved tensor `v` only for its shape (the rules of
    /// sums, broadcasting `+`/`-` and `reshape`): the pullback keeps its dimensions.
    pub fn shape_only(&self, v: Value) -> bool {
        self.is_saved(v) && self.tensors[v.index()] && !self.needed_fully[v.index()]
    }
}

/// Runs every analysis. Errors (an active value reaching an operation without a derivative,
/// a saved value of unknown type) are recorded in `errors`.
pub fn analyze(
    func: &Function,
    active_params: &[bool],
    annotations: &HashMap<Value, syn::Type>,
    output_types: &[syn::Type],
    errors: &mut Errors,
) -> Analysis {
    let n = func.values.len();
    let mut analysis = Analysis {
        active_params: active_params.to_vec(),
        varied: vec![false; n],
        useful: vec![false; n],
        needed: vec![false; n],
        needed_fully: vec![false; n],
        constant: vec![false; n],
        recompute: vec![false; n],
        reversed: vec![false; func.insts.len()],
        replayable_branch: vec![false; func.insts.len()],
        counters: HashMap::new(),
        chained: HashMap::new(),
        types: vec![None; n],
        arrays: vec![false; n],
        elements: vec![None; n],
        float: None,
        tensors: vec![false; n],
        matrices: vec![false; n],
        lengths: vec![None; n],
        parameter_set_methods: Vec::new(),
    };
    for (param, &active) in func.params.iter().zip(active_params) {
        analysis.varied[param.value.index()] = active;
    }
    forward_varied(func, func.entry, &mut analysis);
    for &y in &func.block(func.entry).yields {
        analysis.useful[y.index()] = true;
    }
    backward_useful(func, func.entry, &mut analysis);
    analysis.parameter_set_methods = check_differentiable(func, &analysis, errors);
    mark_constants(func, &mut analysis);
    infer_types(func, annotations, output_types, &mut analysis);
    // after the types: a struct a callee returned, its type written, has fields too
    check_places(func, &analysis, errors);
    check_nested_arrays(func, &analysis, errors);
    check_shapes(func, &analysis, errors);
    check_maps(func, &analysis, errors);
    record(func, func.entry, &mut analysis);
    // a slice parameter's gradient is fitted to its length, even when nothing flows into it
    for (i, len) in func.param_lens.iter().enumerate() {
        if let Some(len) = len {
            if analysis.active_params[i] {
                analysis.needed[len.index()] = true;
                analysis.needed_fully[len.index()] = true;
            }
        }
    }
    for v in func.output_len.iter().chain(&func.output_shape) {
        analysis.needed[v.index()] = true;
        analysis.needed_fully[v.index()] = true;
    }
    // an active parameter set's cotangent starts as `zero_like` of the saved parameter
    for (param, &is_struct) in func.params.iter().zip(&func.param_structs) {
        if is_struct && analysis.is_active(param.value) {
            analysis.needed[param.value.index()] = true;
            analysis.needed_fully[param.value.index()] = true;
        }
    }
    fixed_lengths(func, func.entry, &mut analysis);
    let sized: Vec<Value> = (0..n)
        .map(|v| Value(v as u32))
        .filter(|&v| analysis.is_active(v))
        .filter_map(|v| analysis.lengths[v.index()])
        .collect();
    for len in sized {
        need(func, &mut analysis, len);
    }
    mark_recomputed(func, &mut analysis);
    report_untyped(func, &analysis, errors);
    analysis
}

/// The type of the matrix product of values `a` and `b`, when their types tell it.
fn product_of(t: &mut Types, a: usize, b: usize) -> Option<syn::Type> {
    match (t.resolve(a).0, t.resolve(b).0) {
        (Some(a), Some(b)) => crate::args::product_type(&a, &b),
        (None, Some(b)) => crate::args::product_type_of_unknown_left(&b),
        _ => None,
    }
}

/// A saved value needs a field type; when inference found none, ask for an annotation.
fn report_untyped(func: &Function, a: &Analysis, errors: &mut Errors) {
    let untyped = (0..func.values.len())
        .map(|v| Value(v as u32))
        .find(|&v| a.is_saved(v) && a.types[v.index()].is_none());
    if let Some(value) = untyped {
        let span: Span = func.value(value).span;
        let name = func.value(value).name.clone().unwrap_or_else(|| "y".into());
        // the function's own float type makes the best example (`T` in a generic function)
        let float = a
            .float
            .as_ref()
            .map(|ty| quote::quote!(#ty).to_string())
            .unwrap_or_else(|| "f64".into());
        let float = if a.matrices[value.index()] {
            format!("DMatrix<{float}>")
        } else if a.tensors[value.index()] {
            format!("Tensor<{float}>")
        } else if a.arrays[value.index()] {
            format!("Vec<{float}>")
        } else {
            float
        };
        errors.push(
            span,
            format!(
                "#[differentiate] cannot infer the type of this value, which the backward pass needs to save; bind it to a variable with a type annotation, e.g. `let {name}: {float} = ...;`"
            ),
        );
    }
}

fn is_float_cast(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.is_ident("f32") || p.path.is_ident("f64"))
}

/// What the pullback of argument `i` of `inst` reads, or None when no derivative flows
/// through that argument.
///
/// Without `a` (during activity analysis, before kinds are known) the scalar rules decide,
/// which differentiate through the same arguments as their tensor versions.
pub fn pullback_reads(
    func: &Function,
    a: Option<&Analysis>,
    inst: Inst,
    i: usize,
) -> Option<Vec<Value>> {
    let data = func.inst(inst);
    let args = &data.args;
    let read = |reads: &[Read]| -> Vec<Value> {
        reads
            .iter()
            .filter_map(|r| match r {
                Read::Arg(j) => Some(args[*j]),
                Read::Result => Some(data.results[0]),
                Read::Sibling => sibling(func, inst),
                Read::Shape(j) => Some(args[*j]),
            })
            .collect()
    };
    match &data.opcode {
        Opcode::Binary(_) | Opcode::Unary(_) | Opcode::Primitive(_) => match a {
            Some(a) => rule_for(func, a, inst, i).map(|r| read(r.reads)),
            None => rule_of(&data.opcode, i).map(|r| read(r.reads)),
        },
        Opcode::Place(_) => (i == 0).then(|| args[1..].to_vec()),
        Opcode::Cast(ty) => is_float_cast(ty).then(Vec::new),
        Opcode::Call(_) => Some(args.clone()),
        Opcode::Ref
        | Opcode::Deref
        | Opcode::Copy(_)
        | Opcode::MakeStruct(..)
        | Opcode::MakeTuple
        | Opcode::MatrixNew(_)
        | Opcode::MatrixFrom { .. }
        | Opcode::ArrayFill(_)
        | Opcode::ArrayLiteral { .. } => Some(Vec::new()),
        // a matrix's element scatter also reads the matrix, for the shape of its cotangent
        Opcode::Index if a.is_some_and(|a| a.matrices[args[0].index()]) => {
            (i == 0).then(|| vec![args[0], args[1]])
        }
        Opcode::Index => (i == 0).then(|| vec![args[1]]),
        Opcode::Slice => (i == 0).then(|| vec![args[1]]),
        Opcode::IndexSet => (i != 1).then(|| vec![args[1]]),
        Opcode::IndexAdd { .. } => match i {
            0 => Some(Vec::new()),
            2 => Some(vec![args[1]]),
            _ => None,
        },
        Opcode::Push => (i != 2).then(|| vec![args[2]]),
        Opcode::Swap => (i == 0).then(|| vec![args[1], args[2]]),
        Opcode::VecFill => (i == 0).then(Vec::new),
        // the kept pullbacks, or what they are rebuilt from: the argument and the result
        // (a captured variable's cotangent comes from the kept pullbacks too)
        Opcode::MapElementwise(k) => Some(match &func.closures[*k].rebuilt_from {
            Some(from) if i == 0 => from
                .element
                .as_ref()
                .map(|_| args[0])
                .into_iter()
                .chain(from.result.as_ref().map(|_| data.results[0]))
                .collect(),
            _ => vec![data.results[1]],
        }),
        _ => None,
    }
}

/// Which arguments an instruction differentiates through.
fn differentiable_args(func: &Function, inst: Inst) -> Vec<bool> {
    (0..func.inst(inst).args.len())
        .map(|i| pullback_reads(func, None, inst, i).is_some())
        .collect()
}

/// The carried slots of a loop: (initial value, body parameter, value passed on, result).
pub fn loop_slots(func: &Function, inst: Inst) -> Vec<(Value, Value, Value, Value)> {
    let Some(layout) = func.loop_layout(inst) else {
        return Vec::new();
    };
    let data = func.inst(inst);
    let body = func.block(data.arms[0]);
    let params = &body.params[usize::from(layout.index_param)..];
    let yields = &body.yields[usize::from(layout.flag)..];
    data.args[layout.fixed_args..]
        .iter()
        .zip(params)
        .zip(yields)
        .zip(&data.results)
        .map(|(((&init, &param), &next), &result)| (init, param, next, result))
        .collect()
}

/// Fills [`Analysis::lengths`] in program order. The length `n` of `vec![v; n]` counts only
/// when it is a parameter or computed at the top of the function, so that the backward pass
/// reads it at no more cost than one saved integer; element writes and swaps keep the length,
/// and a loop's carried array keeps it when each iteration passes on an array of the same
/// length (found by iterating to a fixed point), a branch's result when every arm yields one.
fn fixed_lengths(func: &Function, block: Block, a: &mut Analysis) {
    let top_level = |v: Value| match func.value(v).def {
        ValueDef::Param(_) => true,
        _ => func
            .def_inst(v)
            .is_some_and(|def| func.block(func.entry).insts.contains(&def)),
    };
    for &inst in &func.block(block).insts {
        let data = func.inst(inst);
        let length = |a: &Analysis, v: Value| a.lengths[v.index()];
        match &data.opcode {
            Opcode::VecFill => {
                let (vector, len) = (data.results[0], data.args[1]);
                let float = a.elements[vector.index()].as_ref().is_some_and(|ty| {
                    a.float.as_ref() == Some(ty) || crate::args::is_float_type(ty, &[])
                });
                if a.arrays[vector.index()] && float && top_level(len) {
                    a.lengths[vector.index()] = Some(len);
                }
            }
            Opcode::IndexSet | Opcode::IndexAdd { .. } | Opcode::Swap => {
                a.lengths[data.results[0].index()] = length(a, data.args[0]);
            }
            Opcode::If | Opcode::Match(_) => {
                for &arm in &data.arms {
                    fixed_lengths(func, arm, a);
                }
                for (k, &result) in data.results.iter().enumerate() {
                    let mut yielded = data
                        .arms
                        .iter()
                        .map(|&arm| length(a, func.block(arm).yields[k]));
                    let first = yielded.next().flatten();
                    a.lengths[result.index()] = first.filter(|_| yielded.all(|l| l == first));
                }
            }
            Opcode::ForRange(_) | Opcode::While => {
                let slots = loop_slots(func, inst);
                for &(init, param, _, _) in &slots {
                    a.lengths[param.index()] = length(a, init);
                }
                loop {
                    fixed_lengths(func, data.arms[0], a);
                    let mut changed = false;
                    for &(_, param, next, _) in &slots {
                        if a.lengths[param.index()].is_some() && length(a, next) != length(a, param)
                        {
                            a.lengths[param.index()] = None;
                            changed = true;
                        }
                    }
                    if !changed {
                        break;
                    }
                }
                for &(_, param, _, result) in &slots {
                    a.lengths[result.index()] = length(a, param);
                }
            }
            _ => {}
        }
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
            Opcode::ForRange(_) | Opcode::While => {
                let slots = loop_slots(func, inst);
                loop {
                    for &(init, param, _, _) in &slots {
                        if a.varied[init.index()] {
                            a.varied[param.index()] = true;
                        }
                    }
                    forward_varied(func, data.arms[0], a);
                    let mut changed = false;
                    for &(_, param, next, _) in &slots {
                        if a.varied[next.index()] && !a.varied[param.index()] {
                            a.varied[param.index()] = true;
                            changed = true;
                        }
                    }
                    if !changed {
                        break;
                    }
                }
                for &(_, param, _, result) in &slots {
                    a.varied[result.index()] = a.varied[param.index()];
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
            Opcode::ForRange(_) | Opcode::While => {
                let slots = loop_slots(func, inst);
                for &(_, param, _, result) in &slots {
                    if a.useful[result.index()] {
                        a.useful[param.index()] = true;
                    }
                }
                loop {
                    for &(init, param, next, _) in &slots {
                        if a.useful[param.index()] {
                            a.useful[next.index()] = true;
                            a.useful[init.index()] = true;
                        }
                    }
                    backward_useful(func, data.arms[0], a);
                    let changed = slots.iter().any(|&(init, param, next, _)| {
                        a.useful[param.index()]
                            && (!a.useful[next.index()] || !a.useful[init.index()])
                    });
                    if !changed {
                        break;
                    }
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
fn check_differentiable(func: &Function, a: &Analysis, errors: &mut Errors) -> Vec<Ident> {
    let mut reported = false;
    let mut parameter_set_methods: Vec<Ident> = Vec::new();
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        if reported || !data.args.iter().any(|v| a.varied[v.index()]) {
            return;
        }
        let matters = || data.results.iter().any(|r| flows_to_output(func, *r));
        match &data.opcode {
            // checked once the receiver's type is known (`check_shapes`)
            Opcode::Method(..) if is_shape_query(data) => return,
            Opcode::Method(name, _) if matters() => {
                let on_parameter_set = data.args.first().is_some_and(|&receiver| {
                    matches!(func.value(receiver).def, ValueDef::Param(i) if func.param_structs[i])
                });
                if on_parameter_set {
                    // not reported: `reported` stays as it is, so other errors still are
                    parameter_set_methods.push(name.clone());
                    return;
                }
                // a field of a parameter set (`self.l1.forward(x)`): its type is not known
                let on_field = data.args.first().is_some_and(|&receiver| {
                    func.def_inst(receiver).is_some_and(|def| {
                        let def = func.inst(def);
                        matches!(def.opcode, Opcode::Place(_))
                            && matches!(func.value(def.args[0]).def, ValueDef::Param(i) if func.param_structs[i])
                    })
                });
                if on_field {
                    // read again as a call of the field's #[differentiate] method
                    // (`methods::as_path_calls`), or reported if it was read so already
                    parameter_set_methods.push(name.clone());
                    return;
                }
                errors.push(name.span(), no_rule_message(name))
            }
            // `x as Real` of an alias: the cast would be read as one to an integer type, which
            // no derivative passes
            Opcode::Cast(ty)
                if !is_float_cast(ty) && !crate::args::is_integer_type(ty) && matters() =>
            {
                let text = crate::ir::tokens_text(&quote::quote!(#ty));
                errors.push_spanned(
                    ty,
                    format!(
                        "the derivative through `as {text}` would be lost: the macro cannot see what `{text}` is; cast to `f64` or `f32` (an alias of a float type is not seen through), or to an integer type where no derivative should pass"
                    ),
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
    parameter_set_methods
}

fn no_rule_message(name: &Ident) -> String {
    let text = name.to_string();
    if let "max" | "min" = text.as_str() {
        let (which, test) = if text == "max" {
            ("largest", ">")
        } else {
            ("smallest", "<")
        };
        return format!("`{name}()` without an argument (the {which} element of a vector) has no derivative rule, so the derivative through it would be lost; keep the element in a loop, whose derivative goes to the element kept: `let mut m = v[0]; for i in 1..v.len() {{ if v[i] {test} m {{ m = v[i]; }} }}`");
    }
    if crate::primitives::is_method_name(&text) {
        let takes = crate::primitives::argument_counts(&text);
        return format!("`{name}` has no derivative rule with these arguments (the float method `{name}` takes {takes}), so the derivative through it would be lost; call the float method, or compute the value from operations that have rules");
    }
    let instead = match text.as_str() {
        "first" | "last" | "first_mut" | "last_mut" => {
            "read the element by index (`x[0]`, `x[x.len() - 1]`)"
        }
        "get" | "get_unchecked" => "read the element by index (`x[i]`, checking `i < x.len()` first)",
        "cholesky" => "unwrap it where it is made, `let c = a.cholesky().unwrap();` (or `.expect(..)`), and use `c.solve(&b)`, `c.l()`, `c.determinant()`, `c.ln_determinant()` or `c.inverse()`",
        "to_f64" | "to_f32" => "it converts constants only: use the value in its own float type (`T::from(2.0).unwrap() * x`), or `as` between `f32` and `f64`",
        _ => "use a supported float method (see docs/supported.md), or move the computation into a #[differentiate] function",
    };
    format!(
        "`{name}` has no derivative rule, so the derivative through it would be lost; {instead}"
    )
}

/// The error for the first of [`Analysis::parameter_set_methods`], when the function is not
/// read again with them as path calls.
pub fn report_parameter_set_methods(methods: &[Ident], errors: &mut Errors) {
    if let Some(name) = methods.first() {
        errors.push(name.span(), no_rule_message(name));
    }
}

/// `x.shape()`: integers, through which no derivative flows, when `x` is a tensor or a
/// nalgebra matrix (checked by [`check_shapes`]).
fn is_shape_query(data: &crate::ir::InstData) -> bool {
    matches!(&data.opcode, Opcode::Method(name, None) if name == "shape") && data.args.len() == 1
}

/// `shape()` of a value being differentiated that is not a tensor or matrix may be any
/// method: the same error as for other methods without a rule.
fn check_shapes(func: &Function, a: &Analysis, errors: &mut Errors) {
    let mut reported = false;
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let receiver = data.args.first().map(|v| v.index());
        if reported
            || !is_shape_query(data)
            || receiver.is_some_and(|r| !a.varied[r] || a.tensors[r] || a.matrices[r])
            || !data.results.iter().any(|r| flows_to_output(func, *r))
        {
            return;
        }
        if let Opcode::Method(name, _) = &data.opcode {
            errors.push(
                name.span(),
                "`shape` has no derivative rule for this receiver (only a `Tensor`'s or a nalgebra matrix's shape is known to be integers), so the derivative through it would be lost; give the result an integer type (`let n: usize = ...`) if it is one, or move the computation into a #[differentiate] function",
            );
            reported = true;
        }
    });
}

/// Derivatives reach fields only through parameter sets: the backward pass adds a place's
/// cotangent into the parameter's, at the same path.
fn check_places(func: &Function, a: &Analysis, errors: &mut Errors) {
    let mut reported = false;
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        if reported || !matches!(data.opcode, Opcode::Place(_)) || !a.varied[data.args[0].index()] {
            return;
        }
        let root = data.args[0];
        let root_is_parameter_set =
            matches!(func.value(root).def, ValueDef::Param(i) if func.param_structs[i]);
        // a struct a differentiated callee returned, its type written (`let s: State = ..`):
        // its cotangent starts at zero (`ZeroCotangent`) and takes the place's at the path
        let copied = func
            .def_inst(root)
            .is_some_and(|def| matches!(func.inst(def).opcode, Opcode::Copy(_)));
        let root_is_typed_struct = !matches!(func.value(root).def, ValueDef::Param(_))
            && !copied
            && a.types[root.index()].as_ref().is_some_and(|ty| {
                crate::args::is_user_enum_like(ty) && crate::args::array_type(ty).is_none()
            });
        // `v.x`, `m.m12`: a coordinate of a fixed-size nalgebra vector or matrix (its `Deref`
        // to named coordinates), whose cotangent, of the same type, has the same coordinate
        let coordinate = a.matrices[root.index()]
            && a.types[root.index()].is_some()
            && matches!(&data.opcode, Opcode::Place(steps) if matches!(
                &steps[..],
                [crate::ir::PlaceStep::Field(syn::Member::Named(_))]
            ));
        if coordinate && !root_is_parameter_set {
            return;
        }
        if copied && !root_is_parameter_set {
            errors.push(
                data.span,
                "fields of a copy (`p.clone()`) are not differentiated; read them from the parameter itself (`p.x`)",
            );
            reported = true;
        } else if !root_is_parameter_set
            && !root_is_typed_struct
            && is_coordinate_read(data)
            && func
                .def_inst(root)
                .is_some_and(|def| matches!(func.inst(def).opcode, Opcode::Call(_)))
        {
            errors.push(
                data.span,
                "the fields of a struct a #[differentiate] function returned, and the coordinates of a nalgebra vector (`v.x`), are read with the type written where the value is made (`let s: State = step(..);`, `let t: Vector3<f64> = g(r);`); or pass the value whole to a #[differentiate] function that reads them",
            );
            reported = true;
        } else if !root_is_parameter_set && !root_is_typed_struct && is_tuple_projection(data) {
            errors.push(
                data.span,
                "only tuples of constants (`edges: &[(usize, usize)]`) are taken apart from a parameter or an element; build tuples of floats in the function (`let (a, b) = (x, y * 2.0);`) or read the numbers from a slice",
            );
            reported = true;
        } else if !root_is_parameter_set && !root_is_typed_struct {
            errors.push(
                data.span,
                "fields are differentiated when read from a parameter of a `#[derive(Differentiable)]` struct type, from a struct built in the function (`let s = State { .. }; s.x`), or from one a #[differentiate] function returned with its type written (`let s: State = step(..); s.x`); write the type, or pass the struct whole to a #[differentiate] function that reads its fields",
            );
            reported = true;
        }
    });
}

/// Arrays of arrays carry no derivative: their elements' cotangents would be arrays, which
/// the array rules do not hold. A table of constants (`[[0, 1], [1, 2]]`) is fine.
fn check_nested_arrays(func: &Function, a: &Analysis, errors: &mut Errors) {
    let mut reported = false;
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let builds = matches!(
            data.opcode,
            Opcode::ArrayLiteral { .. } | Opcode::ArrayFill(_) | Opcode::VecFill | Opcode::Push
        );
        // the elements: all arguments, but for `push` only the pushed value
        let elements = match data.opcode {
            Opcode::Push => &data.args[1..2.min(data.args.len())],
            _ => &data.args[..],
        };
        let nested = elements.iter().any(|&v| {
            a.varied[v.index()] && (a.arrays[v.index()] || a.matrices[v.index()] || a.tensors[v.index()])
        });
        if reported || !builds || !nested {
            return;
        }
        errors.push(
            data.span,
            "nested arrays of values being differentiated are not supported; keep the numbers in one flat array or `Vec` (element `(i, j)` at `i * cols + j`), or use a nalgebra matrix (`Matrix2::new(a, b, c, d)`, `DMatrix::zeros(n, m)`)",
        );
        reported = true;
    });
}

/// `v.x`, `m.m12`: one step naming a coordinate of a nalgebra vector or matrix.
fn is_coordinate_read(data: &crate::ir::InstData) -> bool {
    let Opcode::Place(steps) = &data.opcode else {
        return false;
    };
    let [crate::ir::PlaceStep::Field(syn::Member::Named(name))] = &steps[..] else {
        return false;
    };
    let name = name.to_string();
    matches!(name.as_str(), "x" | "y" | "z" | "w")
        || name.len() == 3 && name.starts_with('m') && name[1..].chars().all(|c| c.is_ascii_digit())
}

/// `v.0`, as `let (a, b) = edges[k];` reads a constant table's tuples.
fn is_tuple_projection(data: &crate::ir::InstData) -> bool {
    matches!(&data.opcode, Opcode::Place(steps) if steps.iter().all(|s| matches!(
        s,
        crate::ir::PlaceStep::Field(syn::Member::Unnamed(_))
    )))
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
            let mut newly = Vec::new();
            // a derivative would only travel through arguments that are differentiated
            // (the taint starts at an opaque result, which is treated as differentiable), and
            // through opaque methods, which may hand on what they are given
            // (`x.last().unwrap()`: `unwrap` passes on the element of `last`)
            let through = if matches!(data.opcode, Opcode::Method(..)) {
                vec![true; data.args.len()]
            } else {
                differentiable_args(func, inst)
            };
            if data
                .args
                .iter()
                .zip(&through)
                .any(|(v, &t)| t && tainted[v.index()])
            {
                newly.extend(data.results.iter().copied());
            }
            for &arm in &data.arms {
                for (r, y) in data.results.iter().zip(&func.block(arm).yields) {
                    if tainted[y.index()] {
                        newly.push(*r);
                    }
                }
            }
            for (init, param, next, _) in loop_slots(func, inst) {
                if tainted[init.index()] || tainted[next.index()] {
                    newly.push(param);
                }
            }
            for v in newly {
                if !tainted[v.index()] {
                    tainted[v.index()] = true;
                    changed = true;
                }
            }
        });
    }
    func.block(func.entry)
        .yields
        .iter()
        .any(|y| tainted[y.index()])
}

/// `m.map(closure)` differentiates on nalgebra matrices, whose element type names the
/// closure's parameter.
fn check_maps(func: &Function, a: &Analysis, errors: &mut Errors) {
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let Opcode::MapElementwise(k) = data.opcode else {
            return;
        };
        let closure = &func.closures[k];
        let receiver = data.args[0];
        if !data.args.iter().any(|v| a.varied[v.index()]) {
            return;
        }
        // a captured variable is a parameter of the lifted function: a number of known type
        for (name, &v) in closure.captures.iter().zip(&data.args[1..]) {
            let v = v.index();
            if a.arrays[v] || a.tensors[v] || a.matrices[v] {
                errors.push(
                    name.span(),
                    format!("the closure passed to `map` reads `{name}`, which is not a number; it is differentiated as a function of its element and the numbers it reads, so read what it needs into a number before the `map` (`let {name}0 = {name}[0];`) and use that"),
                );
                return;
            }
            if a.types[v].is_none() {
                errors.push(
                    name.span(),
                    format!("#[differentiate] cannot tell the type of `{name}`, which the closure passed to `map` reads; annotate it where it is bound (`let {name}: i32 = ...`), or convert it before the `map` (`let {name}_f = {name} as f64;`) and read that"),
                );
                return;
            }
        }
        if !a.matrices[receiver.index()] {
            let r = receiver.index();
            // a value the analysis cannot type (a call's result, a field) may be a matrix
            let unknown = !a.arrays[r] && !a.tensors[r] && a.types[r].is_none();
            let typed = if unknown {
                "; a call's result or a field that is a matrix or vector needs its type written where it is bound (`let h: DVector<f64> = layer.forward(&x);`)"
            } else {
                ""
            };
            errors.push(
                closure.function.span(),
                format!("`map` with a closure is differentiated on nalgebra matrices and vectors only; for a `Vec` or slice, write a `for` loop, `.iter().map(..).collect::<Vec<_>>()` or `.iter().map(..).sum()`{typed}"),
            );
        } else if closure.param_ty.is_none() && a.elements[receiver.index()].is_none() {
            let param = &closure.param;
            errors.push(
                param.span(),
                format!("#[differentiate] cannot tell the element type of this matrix; annotate the closure's parameter, e.g. `|{param}: f64| ...`"),
            );
        }
    });
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
                | Opcode::Call(_)
        );
        if pure && data.results.len() == 1 && data.args.iter().all(|v| a.constant[v.index()]) {
            a.constant[data.results[0].index()] = true;
        }
    });
}

/// Chooses the needed values to recompute in the backward pass instead of saving them:
/// arithmetic, casts and comparisons, and element reads of parameter arrays (which no code
/// can overwrite). Their operands become needed in turn. Instructions are visited in reverse
/// execution order, so every use of a value is settled before its definition.
fn mark_recomputed(func: &Function, a: &mut Analysis) {
    let mut order = Vec::new();
    func.walk_insts(func.entry, &mut |inst| order.push(inst));
    let in_loops = insts_in_loops(func);
    let mutated: HashSet<Value> = order
        .iter()
        .filter(|&&inst| {
            matches!(
                func.inst(inst).opcode,
                Opcode::IndexSet | Opcode::IndexAdd { .. } | Opcode::Push | Opcode::Swap
            )
        })
        .map(|&inst| func.inst(inst).args[0])
        .collect();
    // an array computed before any loop and never written afterwards: copied once where it
    // is defined, so that reads of it inside loops are recomputed from the copy instead of
    // being saved at every iteration
    let frozen = |arr: Value, a: &Analysis| {
        let top_level = func
            .def_inst(arr)
            .is_some_and(|def| func.block(func.entry).insts.contains(&def));
        top_level
            && a.arrays[arr.index()]
            && !a.tensors[arr.index()]
            && !a.matrices[arr.index()]
            && !mutated.contains(&arr)
    };
    let owners = block_owners(func);
    for &inst in order.iter().rev() {
        let data = func.inst(inst);
        if let Opcode::ForRange(range) = &data.opcode {
            // the index of a loop that runs to its end is replayed by running the same range
            // backwards, instead of being saved at every iteration
            let index = func.block(data.arms[0]).params[0];
            let usize_ty: syn::Type = syn::parse_quote!(usize);
            let reversible = !range.stepped
                || (!range.inclusive && a.types[index.index()].as_ref() == Some(&usize_ty));
            if a.needed[index.index()] && !range.breaks && reversible {
                a.recompute[index.index()] = true;
                for &arg in &data.args[..2 + usize::from(range.stepped)] {
                    need(func, a, arg);
                }
            }
        }
        if func.loop_layout(inst).is_some() {
            // a counter `c += step` is counted down from the loop's result
            let body = data.arms[0];
            for (_, param, next, result) in loop_slots(func, inst) {
                if !a.needed[param.index()] || a.recompute[param.index()] {
                    continue;
                }
                let Some(def) = func.def_inst(next) else {
                    continue;
                };
                let add = func.inst(def);
                if !func.block(body).insts.contains(&def)
                    || !matches!(add.opcode, Opcode::Binary(BinaryOp::Add))
                {
                    continue;
                }
                let step = match add.args[..] {
                    [p, step] if p == param => step,
                    [step, p] if p == param => step,
                    _ => continue,
                };
                if a.constant[step.index()] && is_integer(a, param) {
                    a.recompute[param.index()] = true;
                    a.counters.insert(param, (step, result));
                    match chained_counter(func, &owners, inst, param) {
                        Some((outer_param, outer_result)) => {
                            a.chained.insert(param, (outer_param, outer_result));
                            need(func, a, outer_result);
                        }
                        None => need(func, a, result),
                    }
                }
            }
        }
        if data.results.len() != 1 {
            continue;
        }
        let v = data.results[0];
        if !a.needed[v.index()] || a.constant[v.index()] {
            continue;
        }
        let cheap = match &data.opcode {
            // recomputing copies operands: only for scalars, not tensors or vectors
            Opcode::Binary(_) | Opcode::Unary(_) => {
                !a.arrays[v.index()] && !data.args.iter().any(|x| a.arrays[x.index()])
            }
            // a cast gives its result a type: an operand without one (`x.shape()[0]` in
            // `let n: usize = x.shape()[0];`) could not be saved in its place
            Opcode::Cast(_) => {
                !a.arrays[v.index()]
                    && data
                        .args
                        .iter()
                        .all(|x| !a.arrays[x.index()] && a.types[x.index()].is_some())
            }
            Opcode::Index => {
                matches!(func.value(data.args[0]).def, ValueDef::Param(_))
                    || (in_loops.contains(&inst) && frozen(data.args[0], a))
            }
            // the length of a float array parameter, which the backward pass keeps anyway
            Opcode::Len => match func.value(data.args[0]).def {
                ValueDef::Param(i) => {
                    func.params[i].role == crate::ir::ParamRole::Float
                        && a.arrays[data.args[0].index()]
                        && a.needed[data.args[0].index()]
                }
                _ => false,
            },
            // a call result whose type is unknown cannot be a field: the call is replayed
            Opcode::Call(_) | Opcode::Method(..) => a.types[v.index()].is_none(),
            _ => false,
        };
        if cheap {
            a.recompute[v.index()] = true;
            for &arg in &data.args {
                need(func, a, arg);
            }
        }
    }
}

/// Whether `cond` compares integers or booleans (`layer == 0`, `i < n`): cheap to evaluate
/// again, and from values (loop indices, sizes) the backward pass usually has anyway.
fn integer_comparison(func: &Function, a: &Analysis, cond: Value) -> bool {
    let Some(def) = func.def_inst(cond) else {
        return false;
    };
    let data = func.inst(def);
    matches!(data.opcode, Opcode::Binary(BinaryOp::Compare(_)))
        && data
            .args
            .iter()
            .all(|&v| is_integer(a, v) || a.types[v.index()] == Some(syn::parse_quote!(bool)))
}

/// Whether `v` has an integer type.
pub(crate) fn is_integer(a: &Analysis, v: Value) -> bool {
    a.types[v.index()].as_ref().is_some_and(|ty| {
        matches!(ty, syn::Type::Path(p) if p.path.get_ident().is_some_and(|i| {
            matches!(
                i.to_string().as_str(),
                "usize" | "isize" | "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64"
            )
        }))
    })
}

/// The instructions inside loop bodies, at any depth.
fn insts_in_loops(func: &Function) -> HashSet<Inst> {
    fn walk(func: &Function, block: Block, in_loop: bool, out: &mut HashSet<Inst>) {
        for &inst in &func.block(block).insts {
            if in_loop {
                out.insert(inst);
            }
            let is_loop = func.loop_layout(inst).is_some();
            for &arm in &func.inst(inst).arms {
                walk(func, arm, in_loop || is_loop, out);
            }
        }
    }
    let mut out = HashSet::new();
    walk(func, func.entry, false, &mut out);
    out
}

/// Marks `v` as read by the backward pass; a borrow is read through its operand.
/// For each block other than the entry: the instruction it is an arm or body of, and the
/// block that instruction is in.
fn block_owners(func: &Function) -> HashMap<Block, (Inst, Block)> {
    fn walk(func: &Function, block: Block, out: &mut HashMap<Block, (Inst, Block)>) {
        for &inst in &func.block(block).insts {
            for &arm in &func.inst(inst).arms {
                out.insert(arm, (inst, block));
                walk(func, arm, out);
            }
        }
    }
    let mut out = HashMap::new();
    walk(func, func.entry, &mut out);
    out
}

/// A counter of loop `inner` (body parameter `counter`) that continues a carried integer of
/// an enclosing `for` loop: its initial value is the enclosing loop's parameter `p`, and its
/// result is that loop's next value `p'`, directly or through an `if` whose other arm leaves
/// `p` as it is (the guard of a loop-invariant read, `hoist.rs`). Then, iteration by reversed
/// iteration of the enclosing loop, `p'` is where the count-down of the iteration after it
/// ended, or the enclosing loop's result for its last iteration: one variable counted down
/// through all of them needs no saved result per iteration. Returns `p` and the enclosing
/// loop's result.
fn chained_counter(
    func: &Function,
    owners: &HashMap<Block, (Inst, Block)>,
    inner: Inst,
    counter: Value,
) -> Option<(Value, Value)> {
    let inner_data = func.inst(inner);
    if !matches!(&inner_data.opcode, Opcode::ForRange(range) if !range.breaks) {
        return None;
    }
    let (init, _, _, result) = loop_slots(func, inner)
        .into_iter()
        .find(|&(_, param, _, _)| param == counter)?;
    let (&(owner, parent), inner_block) = (
        owners.get(&block_of(func, owners, inner)?)?,
        block_of(func, owners, inner)?,
    );
    // directly in the enclosing loop's body, or in one arm of an `if` there
    let (outer, body, next) = if matches!(func.inst(owner).opcode, Opcode::If) {
        let (&(outer, _), guard) = (owners.get(&parent)?, owner);
        let data = func.inst(guard);
        let k = func
            .block(inner_block)
            .yields
            .iter()
            .position(|&y| y == result)?;
        let other = data.arms.iter().find(|&&arm| arm != inner_block)?;
        if data.arms.len() != 2 || func.block(*other).yields.get(k) != Some(&init) {
            return None;
        }
        (outer, parent, *data.results.get(k)?)
    } else {
        (owner, inner_block, result)
    };
    if !matches!(&func.inst(outer).opcode, Opcode::ForRange(range) if !range.breaks)
        || func.inst(outer).arms.first() != Some(&body)
    {
        return None;
    }
    loop_slots(func, outer)
        .into_iter()
        .find(|&(_, param, outer_next, _)| param == init && outer_next == next)
        .map(|(_, param, _, outer_result)| (param, outer_result))
}

/// The block `inst` is in.
fn block_of(func: &Function, owners: &HashMap<Block, (Inst, Block)>, inst: Inst) -> Option<Block> {
    if func.block(func.entry).insts.contains(&inst) {
        return Some(func.entry);
    }
    owners
        .keys()
        .copied()
        .find(|&block| func.block(block).insts.contains(&inst))
}

fn need(func: &Function, a: &mut Analysis, v: Value) {
    need_as(func, a, v, true);
}

/// Marks `v` read by the backward pass, `fully` or for its shape only.
fn need_as(func: &Function, a: &mut Analysis, v: Value, fully: bool) {
    if let Some(inst) = func.def_inst(v) {
        match &func.inst(inst).opcode {
            Opcode::Ref => return need_as(func, a, func.inst(inst).args[0], fully),
            // a place is read from its saved root at the same path
            Opcode::Place(_) => {
                for arg in func.inst(inst).args.clone() {
                    need(func, a, arg);
                }
                return;
            }
            _ => {}
        }
    }
    a.needed[v.index()] = true;
    a.needed_fully[v.index()] |= fully;
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
                let work = inner || active_result;
                if work
                    && matches!(data.opcode, Opcode::If)
                    && integer_comparison(func, a, data.args[0])
                {
                    a.replayable_branch[inst.index()] = true;
                    need(func, a, data.args[0]);
                }
                work
            }
            Opcode::ForRange(_) | Opcode::While => {
                let inner = record(func, data.arms[0], a);
                let carried = loop_slots(func, inst)
                    .iter()
                    .any(|&(_, param, _, _)| a.is_active(param));
                inner || carried || active_result
            }
            _ if active_result => {
                for i in 0..data.args.len() {
                    let arg = data.args[i];
                    let replayed = matches!(data.opcode, Opcode::Call(_));
                    if !a.is_active(arg) && !replayed {
                        continue;
                    }
                    let shape_reads: Vec<Value> = rule_for(func, a, inst, i)
                        .filter(|_| {
                            matches!(
                                data.opcode,
                                Opcode::Binary(_) | Opcode::Unary(_) | Opcode::Primitive(_)
                            )
                        })
                        .map(|rule| {
                            rule.reads
                                .iter()
                                .filter_map(|r| match r {
                                    crate::primitives::Read::Shape(j) => Some(data.args[*j]),
                                    _ => None,
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    for v in pullback_reads(func, Some(a), inst, i).unwrap_or_default() {
                        let fully = !shape_reads.contains(&v);
                        need_as(func, a, v, fully);
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

/// The tensor version of an operator or shared method whose operands are tensors.
pub fn tensor_variant(
    func: &Function,
    a: &Analysis,
    inst: Inst,
) -> Option<&'static crate::primitives::Primitive> {
    use crate::primitives::{linalg, tensor};
    let data = func.inst(inst);
    let is_matrix = |i: usize| data.args.get(i).is_some_and(|v| a.matrices[v.index()]);
    if is_matrix(0) || is_matrix(1) {
        return match &data.opcode {
            Opcode::Binary(BinaryOp::Add) => Some(&linalg::ADD),
            Opcode::Binary(BinaryOp::Sub) => Some(&linalg::SUB),
            Opcode::Binary(BinaryOp::Mul) => Some(&linalg::MUL),
            Opcode::Unary(UnaryOp::Neg) => Some(&linalg::NEG),
            Opcode::Primitive(p) if is_matrix(0) => linalg::method(p.name, p.arity).or(Some(p)),
            _ => None,
        };
    }
    let is_tensor = |i: usize| data.args.get(i).is_some_and(|v| a.tensors[v.index()]);
    match &data.opcode {
        Opcode::Binary(op) => match (op, is_tensor(0), is_tensor(1)) {
            (_, false, false) => None,
            (BinaryOp::Add, true, true) => Some(&tensor::ADD),
            (BinaryOp::Sub, true, true) => Some(&tensor::SUB),
            (BinaryOp::Mul, true, true) => Some(&tensor::MUL),
            (BinaryOp::Add, true, false) => Some(&tensor::ADD_SCALAR),
            (BinaryOp::Sub, true, false) => Some(&tensor::SUB_SCALAR),
            (BinaryOp::Mul, true, false) => Some(&tensor::MUL_SCALAR),
            (BinaryOp::Add, false, true) => Some(&tensor::SCALAR_ADD),
            (BinaryOp::Sub, false, true) => Some(&tensor::SCALAR_SUB),
            (BinaryOp::Mul, false, true) => Some(&tensor::SCALAR_MUL),
            _ => None,
        },
        Opcode::Unary(UnaryOp::Neg) if is_tensor(0) => Some(&tensor::NEG),
        Opcode::Primitive(p) if is_tensor(0) && !p.name.is_empty() => {
            tensor::method(p.name, p.arity)
        }
        _ => None,
    }
}

/// The rule giving the cotangent of argument `i` of `inst`, for tensors or scalars.
pub fn rule_for(
    func: &Function,
    a: &Analysis,
    inst: Inst,
    i: usize,
) -> Option<&'static crate::primitives::Rule> {
    match tensor_variant(func, a, inst) {
        Some(prim) => match &prim.derivative {
            Derivative::Rules(rules) => rules.get(i)?.as_ref(),
            Derivative::Zero => None,
        },
        None if i == 1 && divides_one(func, inst) => Some(&crate::primitives::DIV_OF_ONE),
        None => match sibling(func, inst) {
            Some(_) if i == 0 => match &func.inst(inst).opcode {
                Opcode::Primitive(p) if std::ptr::eq(*p, &crate::primitives::SIN) => {
                    Some(&crate::primitives::SIN_FROM_COS)
                }
                _ => Some(&crate::primitives::COS_FROM_SIN),
            },
            _ => rule_of(&func.inst(inst).opcode, i),
        },
    }
}

/// Whether `inst` is a scalar division whose dividend is the float literal `1.0` (see
/// [`crate::primitives::DIV_OF_ONE`]).
fn divides_one(func: &Function, inst: Inst) -> bool {
    let data = func.inst(inst);
    if !matches!(data.opcode, Opcode::Binary(BinaryOp::Div)) {
        return false;
    }
    let Some(dividend) = data.args.first().and_then(|&v| func.def_inst(v)) else {
        return false;
    };
    match &func.inst(dividend).opcode {
        Opcode::Const(tokens) => matches!(
            syn::parse2::<syn::LitFloat>(tokens.clone()).map(|lit| lit.base10_parse::<f64>()),
            Ok(Ok(one)) if one == 1.0
        ),
        _ => false,
    }
}

/// For a scalar `sin x` (or `cos x`), the result of `cos x` (or `sin x`) computed in the same
/// block, whose value is the derivative the backward pass would otherwise evaluate again.
pub fn sibling(func: &Function, inst: Inst) -> Option<Value> {
    use crate::primitives::{COS, SIN};
    let data = func.inst(inst);
    let other: &'static crate::primitives::Primitive = match &data.opcode {
        Opcode::Primitive(p) if std::ptr::eq(*p, &SIN) => &COS,
        Opcode::Primitive(p) if std::ptr::eq(*p, &COS) => &SIN,
        _ => return None,
    };
    fn containing(func: &Function, block: Block, inst: Inst) -> Option<Block> {
        let insts = &func.block(block).insts;
        if insts.contains(&inst) {
            return Some(block);
        }
        insts
            .iter()
            .flat_map(|&i| func.inst(i).arms.iter())
            .find_map(|&arm| containing(func, arm, inst))
    }
    let block = containing(func, func.entry, inst)?;
    func.block(block).insts.iter().find_map(|&i| {
        let candidate = func.inst(i);
        match &candidate.opcode {
            Opcode::Primitive(p) if std::ptr::eq(*p, other) && candidate.args == data.args => {
                candidate.results.first().copied()
            }
            _ => None,
        }
    })
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

/// Union-find over type variables: one per value, and one per value for its element type.
struct Types {
    parent: Vec<usize>,
    ty: Vec<Option<syn::Type>>,
    kind: Vec<Option<ArrayKind>>,
    values: usize,
}

impl Types {
    fn new(values: usize) -> Self {
        Types {
            parent: (0..2 * values).collect(),
            ty: vec![None; 2 * values],
            kind: vec![None; 2 * values],
            values,
        }
    }

    fn elem(&self, v: usize) -> usize {
        self.values + v
    }

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

    /// Unifies two values, and their element types.
    fn union(&mut self, a: usize, b: usize) {
        self.union_node(a, b);
        if a < self.values && b < self.values {
            let (ea, eb) = (self.elem(a), self.elem(b));
            self.union_node(ea, eb);
        }
    }

    fn union_node(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[rb] = ra;
            if self.ty[ra].is_none() {
                self.ty[ra] = self.ty[rb].take();
            }
            // a fixed-size array is more specific than the `Vec` assumed for indexed values,
            // and a named matrix type than a matrix of unknown shape
            let more_specific = matches!(
                (&self.kind[ra], &self.kind[rb]),
                (None, _)
                    | (_, Some(ArrayKind::Fixed(_)))
                    | (
                        Some(ArrayKind::Matrix(None)),
                        Some(ArrayKind::Matrix(Some(_)))
                    )
            );
            if more_specific {
                if let Some(kind) = self.kind[rb].take() {
                    self.kind[ra] = Some(kind);
                }
            }
        }
    }

    fn set(&mut self, a: usize, ty: syn::Type) {
        // element variables hold the element type as written (no nested element variables)
        let array = if a < self.values {
            crate::args::array_type(&ty)
        } else {
            None
        };
        if let Some((kind, elem)) = array {
            self.set_array(a, kind, Some(elem));
            return;
        }
        let r = self.find(a);
        if self.ty[r].is_none() {
            self.ty[r] = Some(ty);
        }
    }

    fn set_array(&mut self, a: usize, kind: ArrayKind, elem: Option<syn::Type>) {
        let r = self.find(a);
        // as in `union_node`: a named matrix type is more specific than one of unknown shape
        let more_specific = matches!(
            (&self.kind[r], &kind),
            (None, _)
                | (_, ArrayKind::Fixed(_))
                | (Some(ArrayKind::Matrix(None)), ArrayKind::Matrix(Some(_)))
        );
        if more_specific {
            self.kind[r] = Some(kind);
        }
        if let Some(elem) = elem {
            let e = self.elem(a);
            self.set(e, elem);
        }
    }

    fn is_container(&mut self, v: usize) -> bool {
        let r = self.find(v);
        self.kind[r].is_some()
    }

    fn is_matrix(&mut self, v: usize) -> bool {
        let r = self.find(v);
        matches!(self.kind[r], Some(ArrayKind::Matrix(_)))
    }

    fn is_tensor(&mut self, v: usize) -> bool {
        let r = self.find(v);
        matches!(self.kind[r], Some(ArrayKind::Tensor))
    }

    fn element(&mut self, v: usize) -> Option<syn::Type> {
        let e = self.elem(v);
        let r = self.find(e);
        self.ty[r].clone()
    }

    fn resolve(&mut self, v: usize) -> (Option<syn::Type>, bool) {
        let r = self.find(v);
        match self.kind[r].clone() {
            // a matrix whose shape the macro cannot tell has no nameable type
            Some(ArrayKind::Matrix(None)) => (None, true),
            Some(kind) => {
                let e = self.elem(v);
                let er = self.find(e);
                let elem = self.ty[er].clone();
                (elem.map(|elem| kind.container(&elem)), true)
            }
            None => (self.ty[r].clone(), false),
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

/// The type of a nalgebra constructor call that takes no matrix (`DMatrix::zeros(r, c)`,
/// `DVector::from_element(n, v)`, `Matrix3::identity()`, `DMatrix::<f64>::zeros(..)`): the
/// alias with its element type, the function's float unless written.
fn matrix_constructor_type(path: &syn::ExprPath, float: Option<&syn::Type>) -> Option<syn::Type> {
    const CONSTRUCTORS: &[&str] = &[
        "zeros",
        "from_element",
        "repeat",
        "identity",
        "from_diagonal_element",
    ];
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<&syn::PathSegment> = path.path.segments.iter().collect();
    let (last, ty) = segments.split_last()?;
    if !CONSTRUCTORS.contains(&last.ident.to_string().as_str()) || !last.arguments.is_none() {
        return None;
    }
    let alias = ty.last()?;
    let name = alias.ident.to_string();
    let fixed_size = ["Matrix", "Vector", "RowVector"].iter().any(|prefix| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            rest.chars().next().is_some_and(|c| c.is_ascii_digit())
                && rest.chars().all(|c| c.is_ascii_digit() || c == 'x')
        })
    });
    if !(fixed_size || matches!(name.as_str(), "DMatrix" | "DVector" | "RowDVector")) {
        return None;
    }
    let mut segment = (*alias).clone();
    match &mut segment.arguments {
        syn::PathArguments::AngleBracketed(args) => args.colon2_token = None,
        syn::PathArguments::None => {
            let float = float?;
            segment.arguments = syn::PathArguments::AngleBracketed(syn::parse_quote!(<#float>));
        }
        syn::PathArguments::Parenthesized(_) => return None,
    }
    let mut type_path = syn::Path {
        leading_colon: path.path.leading_colon,
        segments: ty.iter().map(|s| (*s).clone()).collect(),
    };
    *type_path.segments.last_mut()? = segment;
    Some(syn::Type::Path(syn::TypePath {
        qself: None,
        path: type_path,
    }))
}

/// What an element read or write tells of the array and the index: whatever is indexed is an
/// array, a `Vec` with a `usize` index unless known otherwise, a matrix when the index is a
/// pair (`m[(i, j)]`).
fn indexed_container(
    func: &Function,
    t: &mut Types,
    data: &crate::ir::InstData,
    usize_ty: &syn::Type,
) {
    let (array, index) = (data.args[0].index(), data.args[1].index());
    let pair = func
        .def_inst(data.args[1])
        .is_some_and(|i| matches!(func.inst(i).opcode, Opcode::Tuple));
    if pair {
        t.set_array(array, ArrayKind::Matrix(None), None);
    } else {
        t.set_array(array, ArrayKind::Vec, None);
        t.set(index, usize_ty.clone());
    }
}

fn infer_types(
    func: &Function,
    annotations: &HashMap<Value, syn::Type>,
    output_types: &[syn::Type],
    a: &mut Analysis,
) {
    let n = func.values.len();
    let bool_ty: syn::Type = syn::parse_quote!(bool);
    let i32_ty: syn::Type = syn::parse_quote!(i32);
    let usize_ty: syn::Type = syn::parse_quote!(usize);
    let mut t = Types::new(n);
    for p in &func.params {
        t.set(p.value.index(), p.ty.clone());
    }
    // the container kind of the function's tensor or matrix parameters, for values whose kind
    // only their use tells
    let world: Option<(ArrayKind, syn::Type)> =
        func.params
            .iter()
            .find_map(|p| match crate::args::array_type(&p.ty) {
                Some((ArrayKind::Tensor, elem)) => Some((ArrayKind::Tensor, elem)),
                Some((ArrayKind::Matrix(_), elem)) => Some((ArrayKind::Matrix(None), elem)),
                _ => None,
            });
    for (v, ty) in annotations {
        t.set(v.index(), ty.clone());
    }
    for (y, ty) in func.block(func.entry).yields.iter().zip(output_types) {
        t.set(y.index(), ty.clone());
    }
    // the float type of the function, when its float parameters agree on one (a parameter
    // set's type names no float)
    let float_types: Vec<syn::Type> = func
        .params
        .iter()
        .zip(&func.param_structs)
        .filter(|(p, is_set)| p.role == ParamRole::Float && !**is_set)
        .map(|(p, _)| {
            crate::args::array_type(&p.ty)
                .map(|(_, elem)| elem)
                .unwrap_or_else(|| p.ty.clone())
        })
        .chain(output_types.iter().map(|ty| {
            crate::args::array_type(ty)
                .map(|(_, elem)| elem)
                .unwrap_or_else(|| ty.clone())
        }))
        .collect();
    let unique_float = float_types
        .first()
        .filter(|first| float_types.iter().all(|t| t == *first))
        .cloned();
    a.float = unique_float.clone();
    // `T::zero()`, `T::from(n).unwrap()`: constructors of the function's float type
    let float_constructor = |path: &syn::ExprPath, names: &[&str]| {
        let segments = &path.path.segments;
        let float_name = unique_float.as_ref().and_then(|ty| match ty {
            syn::Type::Path(p) => p.path.get_ident().cloned(),
            _ => None,
        });
        path.qself.is_none()
            && segments.len() == 2
            && float_name.is_some_and(|f| segments[0].ident == f)
            && names.iter().any(|n| segments[1].ident == n)
    };
    const CONSTANTS: &[&str] = &[
        "zero",
        "one",
        "epsilon",
        "max_value",
        "min_value",
        "min_positive_value",
        "infinity",
        "neg_infinity",
        "neg_zero",
        "nan",
    ];
    const CONVERSIONS: &[&str] = &["from", "from_f64", "from_f32", "from_usize", "from_i32"];
    // products of a matrix and a value of unknown type: (result, the matrix)
    let mut scalings: Vec<(usize, usize)> = Vec::new();
    // matrix products whose operands' types were not known yet: (result, left, right)
    let mut products: Vec<(usize, usize, usize)> = Vec::new();
    // the first read of each field of a value, by the value and the path of field names
    let mut same_places: HashMap<(usize, Vec<String>), usize> = HashMap::new();
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let args: Vec<usize> = data.args.iter().map(|v| v.index()).collect();
        let results: Vec<usize> = data.results.iter().map(|v| v.index()).collect();
        let float = unique_float.clone();
        match &data.opcode {
            // `DMatrix::zeros(r, c)`, `DVector::from_element(n, v)`, `Matrix3::identity()`: the
            // type named, with the function's float
            Opcode::Call(path)
                if results.len() == 1
                    && matrix_constructor_type(path, float.as_ref()).is_some() =>
            {
                let ty = matrix_constructor_type(path, float.as_ref()).expect("checked");
                t.set(results[0], ty);
            }
            Opcode::Call(path) if float_constructor(path, CONSTANTS) && results.len() == 1 => {
                t.set(results[0], float.expect("checked by float_constructor"));
            }
            Opcode::Method(name, _)
                if (name == "unwrap" || name == "expect")
                    && func.def_inst(data.args[0]).is_some_and(|i| {
                        matches!(&func.inst(i).opcode, Opcode::Call(path)
                            if float_constructor(path, CONVERSIONS))
                    }) =>
            {
                t.set(results[0], float.expect("checked by float_constructor"));
            }
            Opcode::Const(tokens) => {
                if let Some(ty) = literal_type(tokens) {
                    t.set(results[0], ty);
                } else if let (Ok(expr), Some(float)) =
                    (syn::parse2::<syn::Expr>(tokens.clone()), float)
                {
                    let constructed = match &expr {
                        syn::Expr::Call(call) => matches!(&*call.func,
                            syn::Expr::Path(path) if float_constructor(path, CONSTANTS)),
                        syn::Expr::MethodCall(m)
                            if m.method == "unwrap" || m.method == "expect" =>
                        {
                            matches!(&*m.receiver, syn::Expr::Call(call)
                                if matches!(&*call.func,
                                    syn::Expr::Path(path) if float_constructor(path, CONVERSIONS)))
                        }
                        _ => false,
                    };
                    if constructed {
                        t.set(results[0], float);
                    }
                }
            }
            Opcode::Binary(BinaryOp::Compare(_)) => {
                t.union(args[0], args[1]);
                t.set(results[0], bool_ty.clone());
            }
            Opcode::Binary(BinaryOp::Bit(crate::ir::BitOp::Shl | crate::ir::BitOp::Shr)) => {
                t.union(results[0], args[0])
            }
            Opcode::Binary(_) => {
                // a borrowed operand of arithmetic is a container (scalars are not borrowed
                // for arithmetic): a tensor or matrix like the function's parameters
                for (&arg, &value) in args.iter().zip(&data.args) {
                    let borrowed = func
                        .def_inst(value)
                        .is_some_and(|i| matches!(func.inst(i).opcode, Opcode::Ref));
                    if borrowed && !t.is_container(arg) {
                        if let Some((kind, elem)) = &world {
                            t.set_array(arg, kind.clone(), Some(elem.clone()));
                        }
                    }
                }
                // scalar arithmetic keeps its type; with a tensor, the result is the tensor and
                // the other operand may be its scalar
                match (t.is_container(args[0]), t.is_container(args[1])) {
                    (false, false) => {
                        t.union(args[0], args[1]);
                        t.union(results[0], args[0]);
                    }
                    // a matrix product has a shape of its own: rows of the first operand,
                    // columns of the second, when their types are known
                    (true, true)
                        if matches!(data.opcode, Opcode::Binary(BinaryOp::Mul))
                            && t.is_matrix(args[0]) =>
                    {
                        match product_of(&mut t, args[0], args[1]) {
                            Some(ty) => t.set(results[0], ty),
                            None => {
                                t.set_array(results[0], ArrayKind::Matrix(None), None);
                                products.push((results[0], args[0], args[1]));
                            }
                        }
                    }
                    // a sum or difference of two matrices has the type of both
                    (true, true)
                        if matches!(data.opcode, Opcode::Binary(BinaryOp::Add | BinaryOp::Sub))
                            && t.is_matrix(args[0])
                            && t.is_matrix(args[1]) =>
                    {
                        t.union(results[0], args[0]);
                        t.union(results[0], args[1]);
                    }
                    // a matrix times a value of unknown type (a call's result) may be a
                    // product of another shape: a matrix the macro cannot tell yet, which a
                    // later use may name (`a * x + b * ones`), else the matrix scaled (see
                    // `scalings` below); merged with the operand now, such a later use would
                    // change the operand's type
                    (true, false)
                        if matches!(data.opcode, Opcode::Binary(BinaryOp::Mul))
                            && t.is_matrix(args[0])
                            && t.resolve(args[1]).0.is_none() =>
                    {
                        t.set_array(results[0], ArrayKind::Matrix(None), None);
                        scalings.push((results[0], args[0]));
                    }
                    (false, true)
                        if matches!(data.opcode, Opcode::Binary(BinaryOp::Mul))
                            && t.is_matrix(args[1])
                            && t.resolve(args[0]).0.is_none() =>
                    {
                        t.set_array(results[0], ArrayKind::Matrix(None), None);
                        scalings.push((results[0], args[1]));
                    }
                    (true, _) => t.union(results[0], args[0]),
                    (false, true) => t.union(results[0], args[1]),
                }
            }
            Opcode::Place(steps) => {
                let indices = steps
                    .iter()
                    .filter(|s| matches!(s, crate::ir::PlaceStep::Index(_)))
                    .count();
                for k in 0..indices {
                    t.set(args[1 + k], usize_ty.clone());
                }
                // every read of one field (`p.wq` in `x.matmul(&p.wq)` and in
                // `p.wq.shape()`) has one type, at any index (`p.layers[i].w`)
                let path: Vec<String> = steps
                    .iter()
                    .map(|step| match step {
                        crate::ir::PlaceStep::Field(member) => quote::quote!(#member).to_string(),
                        crate::ir::PlaceStep::Index(_) => "[]".to_string(),
                    })
                    .collect();
                match same_places.entry((args[0], path)) {
                    std::collections::hash_map::Entry::Occupied(first) => {
                        t.union(results[0], *first.get())
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(results[0]);
                    }
                }
            }
            Opcode::Unary(_) | Opcode::Ref => t.union(results[0], args[0]),
            Opcode::Deref => match &func.value(data.args[0]).def {
                crate::ir::ValueDef::Param(i) => match &func.params[*i].ty {
                    syn::Type::Reference(r) => t.set(results[0], (*r.elem).clone()),
                    _ => t.union(results[0], args[0]),
                },
                _ => t.union(results[0], args[0]),
            },
            Opcode::Cast(ty) => t.set(results[0], ty.clone()),
            Opcode::Primitive(p) => {
                for (i, ty) in p.arg_types.iter().enumerate() {
                    match ty {
                        Ty::Same => t.union(args[i + 1], args[0]),
                        Ty::I32 => t.set(args[i + 1], i32_ty.clone()),
                        Ty::Bool => t.set(args[i + 1], bool_ty.clone()),
                        Ty::Usize => t.set(args[i + 1], usize_ty.clone()),
                        Ty::Elem => {
                            let e = t.elem(args[0]);
                            t.union_node(args[i + 1], e);
                        }
                        Ty::Matrix => t.set_array(args[i + 1], ArrayKind::Matrix(None), None),
                        Ty::Second | Ty::Column | Ty::Row | Ty::Rows | Ty::Columns => {}
                    }
                }
                match p.result {
                    Ty::Same => t.union(results[0], args[0]),
                    Ty::I32 => t.set(results[0], i32_ty.clone()),
                    Ty::Bool => t.set(results[0], bool_ty.clone()),
                    Ty::Usize => t.set(results[0], usize_ty.clone()),
                    Ty::Elem => {
                        let e = t.elem(args[0]);
                        t.union_node(results[0], e);
                    }
                    Ty::Matrix => {
                        let transposed = std::ptr::eq(*p, &crate::primitives::linalg::TRANSPOSE)
                            .then(|| t.resolve(args[0]).0)
                            .flatten()
                            .and_then(|ty| crate::args::transpose_type(&ty));
                        match transposed {
                            Some(ty) => t.set(results[0], ty),
                            None => t.set_array(results[0], ArrayKind::Matrix(None), None),
                        }
                    }
                    Ty::Second => t.union(results[0], args[1]),
                    // a part of the matrix, named from the matrix's type when it is known
                    Ty::Column | Ty::Row | Ty::Rows | Ty::Columns => {
                        let part = t.resolve(args[0]).0.and_then(|ty| match p.result {
                            Ty::Column => crate::args::column_type(&ty),
                            Ty::Row => crate::args::row_type(&ty),
                            Ty::Rows => crate::args::rows_type(&ty),
                            _ => crate::args::columns_type(&ty),
                        });
                        match part {
                            Some(ty) => t.set(results[0], ty),
                            None => t.set_array(results[0], ArrayKind::Matrix(None), None),
                        }
                    }
                }
            }
            Opcode::Index => {
                indexed_container(func, &mut t, data, &usize_ty);
                let e = t.elem(args[0]);
                t.union_node(results[0], e);
            }
            Opcode::IndexSet | Opcode::IndexAdd { .. } => {
                indexed_container(func, &mut t, data, &usize_ty);
                t.union(results[0], args[0]);
                let e = t.elem(args[0]);
                t.union_node(args[2], e);
            }
            Opcode::ShapeOf => t.set(results[0], syn::parse_quote!(::std::vec::Vec<usize>)),
            Opcode::Tuple => {
                let types: Vec<syn::Type> = args.iter().map(|_| usize_ty.clone()).collect();
                t.set(results[0], syn::parse_quote!((#(#types),*)));
            }
            Opcode::Len => {
                t.set_array(args[0], ArrayKind::Vec, None);
                t.set(results[0], usize_ty.clone());
            }
            Opcode::Push => {
                t.union(results[0], args[0]);
                let e = t.elem(args[0]);
                t.union_node(args[1], e);
                t.set(args[2], usize_ty.clone());
            }
            Opcode::Swap => {
                // what is swapped in is an array (a `Vec` unless known otherwise), also the
                // result of a call, whose type nothing else may tell
                t.set_array(args[0], ArrayKind::Vec, None);
                t.union(results[0], args[0]);
                t.set(args[1], usize_ty.clone());
                t.set(args[2], usize_ty.clone());
            }
            Opcode::VecFill => {
                t.set_array(results[0], ArrayKind::Vec, None);
                let e = t.elem(results[0]);
                t.union_node(args[0], e);
                t.set(args[1], usize_ty.clone());
            }
            Opcode::ArrayFill(len) => {
                t.set_array(results[0], ArrayKind::Fixed(len.clone()), None);
                let e = t.elem(results[0]);
                t.union_node(args[0], e);
            }
            Opcode::ArrayLiteral { vec } => {
                let kind = if *vec {
                    ArrayKind::Vec
                } else {
                    let len = args.len();
                    ArrayKind::Fixed(quote::quote!(#len))
                };
                t.set_array(results[0], kind, None);
                let e = t.elem(results[0]);
                for &arg in &args {
                    t.union_node(arg, e);
                }
            }
            Opcode::VecNew => t.set_array(results[0], ArrayKind::Vec, None),
            // a tensor's shape: its dimensions (`&[usize]`, read by index)
            Opcode::Method(..) if is_shape_query(data) && t.is_tensor(args[0]) => {
                t.set_array(results[0], ArrayKind::Vec, Some(usize_ty.clone()));
            }
            // `Vector3::new(x, y, z)`: the alias with the elements' float type (`Vector3<f64>`),
            // unless the path names it (`Vector3::<f64>`)
            Opcode::MatrixNew(path) => {
                let mut ty = path.clone();
                let mut named = false;
                if let Some(last) = ty.segments.last_mut() {
                    if let syn::PathArguments::AngleBracketed(args) = &mut last.arguments {
                        args.colon2_token = None;
                        named = true;
                    }
                }
                let elem = args
                    .iter()
                    .find_map(|&arg| t.resolve(arg).0)
                    .filter(|elem| crate::args::array_type(elem).is_none())
                    .or_else(|| float.clone());
                match elem {
                    Some(elem) if !named => {
                        if let Some(last) = ty.segments.last_mut() {
                            last.arguments =
                                syn::PathArguments::AngleBracketed(syn::parse_quote!(<#elem>));
                        }
                        t.set(
                            results[0],
                            syn::Type::Path(syn::TypePath {
                                qself: None,
                                path: ty,
                            }),
                        );
                    }
                    _ if named => t.set(
                        results[0],
                        syn::Type::Path(syn::TypePath {
                            qself: None,
                            path: ty,
                        }),
                    ),
                    _ => t.set_array(results[0], ArrayKind::Matrix(None), None),
                }
                for &arg in &args {
                    if let Some(elem) = t
                        .resolve(results[0])
                        .0
                        .and_then(|ty| crate::args::array_type(&ty).map(|(_, elem)| elem))
                    {
                        t.set(arg, elem);
                    }
                }
            }
            // `DMatrix::from_row_slice(r, c, &x)`: the type with the data's element type
            // (`DMatrix<f64>`), unless the path names it
            Opcode::MatrixFrom { ty, .. } => {
                let mut path = ty.clone();
                let named = path.segments.last_mut().is_some_and(|last| {
                    if let syn::PathArguments::AngleBracketed(args) = &mut last.arguments {
                        args.colon2_token = None;
                        true
                    } else {
                        false
                    }
                });
                let data = args.last().copied();
                let elem = data
                    .and_then(|d| t.resolve(d).0)
                    .and_then(|ty| crate::args::array_type(&ty).map(|(_, elem)| elem))
                    .or_else(|| float.clone());
                if !named {
                    if let (Some(elem), Some(last)) = (&elem, path.segments.last_mut()) {
                        last.arguments =
                            syn::PathArguments::AngleBracketed(syn::parse_quote!(<#elem>));
                    }
                }
                if named || elem.is_some() {
                    t.set(
                        results[0],
                        syn::Type::Path(syn::TypePath { qself: None, path }),
                    );
                } else {
                    t.set_array(results[0], ArrayKind::Matrix(None), None);
                }
            }
            Opcode::Copy(crate::ir::CopyKind::Clone) => t.union(results[0], args[0]),
            // an element-wise map keeps the matrix's shape and element type
            Opcode::MapElementwise(_) => t.union(results[0], args[0]),
            Opcode::Slice => {
                t.set_array(results[0], ArrayKind::Vec, None);
                let (er, ea) = (t.elem(results[0]), t.elem(args[0]));
                t.union_node(er, ea);
            }
            Opcode::Copy(crate::ir::CopyKind::ToVec) => {
                t.set_array(args[0], ArrayKind::Vec, None);
                t.set_array(results[0], ArrayKind::Vec, None);
                let (er, ea) = (t.elem(results[0]), t.elem(args[0]));
                t.union_node(er, ea);
            }
            Opcode::If | Opcode::Match(_) => {
                if let Opcode::If = data.opcode {
                    t.set(args[0], bool_ty.clone());
                }
                for &arm in &data.arms {
                    for (r, y) in results.iter().zip(&func.block(arm).yields) {
                        t.union(*r, y.index());
                    }
                }
            }
            Opcode::ForRange(range) => {
                let body = func.block(data.arms[0]);
                t.union(body.params[0].index(), args[0]);
                t.union(args[0], args[1]);
                if range.stepped {
                    t.set(args[2], usize_ty.clone());
                }
                if range.breaks {
                    t.set(body.yields[0].index(), bool_ty.clone());
                }
                for (init, param, next, result) in loop_slots(func, inst) {
                    t.union(param.index(), init.index());
                    t.union(param.index(), next.index());
                    t.union(param.index(), result.index());
                }
            }
            Opcode::While => {
                let body = func.block(data.arms[0]);
                t.set(body.yields[0].index(), bool_ty.clone());
                for (init, param, next, result) in loop_slots(func, inst) {
                    t.union(param.index(), init.index());
                    t.union(param.index(), next.index());
                    t.union(param.index(), result.index());
                }
            }
            _ => {}
        }
    });
    // a product with a value of unknown type that nothing after it named is taken for the
    // matrix scaled by a number, its most common form (`m * k` with `k = g(x)`)
    for (result, matrix) in scalings {
        if t.resolve(result).0.is_none() {
            t.union(matrix, result);
        }
    }
    // a tuple built for a call has its elements' types (floats, read where they are made)
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        if matches!(data.opcode, Opcode::MakeTuple) {
            // an element nothing typed yet (a literal `1.5`) is the function's float
            let elements: Option<Vec<syn::Type>> = data
                .args
                .iter()
                .map(|a| {
                    let a = a.index();
                    t.resolve(a)
                        .0
                        .or_else(|| (!t.is_container(a)).then(|| unique_float.clone()).flatten())
                })
                .collect();
            if let Some(elements) = elements {
                t.set(data.results[0].index(), syn::parse_quote!((#(#elements,)*)));
            }
        }
    });
    // products typed once their operands are (`(m * 0.5) * w`, the scaling resolved above),
    // in as many rounds as products feed products
    for _ in 0..products.len() {
        let mut typed = false;
        for &(result, a, b) in &products {
            if t.resolve(result).0.is_none() {
                if let Some(ty) = product_of(&mut t, a, b) {
                    t.set(result, ty);
                    typed |= t.resolve(result).0.is_some();
                }
            }
        }
        if !typed {
            break;
        }
    }
    // values passed on by reference (`h(&u)`): floats rarely are, vectors always
    let mut borrowed = HashSet::new();
    func.walk_insts(func.entry, &mut |inst| {
        if matches!(func.inst(inst).opcode, Opcode::Ref) {
            borrowed.insert(func.inst(inst).args[0]);
        }
    });
    // an array built of unsuffixed integer literals (`[n, 3]`, a shape) whose element type
    // nothing else tells holds integers, not the function's float
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        let built = matches!(
            data.opcode,
            Opcode::ArrayLiteral { .. } | Opcode::ArrayFill(_) | Opcode::VecFill
        );
        let integer_literal = |v: &Value| {
            func.def_inst(*v).is_some_and(|def| {
                matches!(&func.inst(def).opcode, Opcode::Const(tokens)
                    if matches!(syn::parse2::<syn::Lit>(tokens.clone()),
                        Ok(syn::Lit::Int(i)) if i.suffix().is_empty()))
            })
        };
        let elements = match data.opcode {
            Opcode::VecFill => &data.args[..1],
            _ => &data.args[..],
        };
        if built && elements.iter().any(integer_literal) {
            let result = data.results[0].index();
            if t.element(result).is_none() {
                let e = t.elem(result);
                t.set(e, usize_ty.clone());
            }
        }
    });
    for v in 0..n {
        let (mut ty, is_array) = t.resolve(v);
        if is_array && ty.is_none() {
            if let Some(float) = &unique_float {
                let r = t.find(v);
                ty = t.kind[r]
                    .clone()
                    .filter(|k| !matches!(k, ArrayKind::Matrix(None)))
                    .map(|kind| kind.container(float));
            }
        }
        // a varied value of unknown type is the function's float, unless it is the result of
        // a call returning one value (which may be anything) and nothing else tells; an
        // element of a returned tuple that is not indexed anywhere is a float
        let call_result = func.def_inst(Value(v as u32)).is_some_and(|i| {
            matches!(func.inst(i).opcode, Opcode::Call(_))
                && (func.inst(i).results.len() == 1 || borrowed.contains(&Value(v as u32)))
        });
        if ty.is_none() && !is_array && a.varied[v] && !call_result {
            ty = unique_float.clone();
        }
        // a float method's result (`T::from(n).unwrap().sin()`) is a float even when it
        // depends on constants only
        let float_method = func.def_inst(Value(v as u32)).is_some_and(|i| {
            matches!(func.inst(i).opcode, Opcode::Primitive(p)
                if p.result == Ty::Same
                    && crate::primitives::ALL.iter().any(|q| std::ptr::eq(*q, p)))
        });
        if ty.is_none() && !is_array && float_method && !t.is_container(v) {
            ty = unique_float.clone();
        }
        a.elements[v] = is_array
            .then(|| t.element(v))
            .flatten()
            .or_else(|| t.is_matrix(v).then(|| unique_float.clone()).flatten());
        a.types[v] = ty;
        a.arrays[v] = is_array;
        a.tensors[v] = t.is_tensor(v);
        a.matrices[v] = t.is_matrix(v);
    }
    // the per-element pullbacks of a map are a plain field of their named type
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        if let Opcode::MapElementwise(k) = data.opcode {
            let v = data.results[1].index();
            a.types[v] = Some(func.closures[k].pullbacks_ty.clone());
            a.arrays[v] = false;
            a.tensors[v] = false;
            a.matrices[v] = false;
        }
    });
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
        let mut saved: Vec<String> = data
            .results
            .iter()
            .filter(|r| self.0.is_saved(**r))
            .map(|r| r.to_string())
            .collect();
        for &arm in &data.arms {
            let params = func
                .block(arm)
                .params
                .iter()
                .filter(|p| self.0.is_saved(**p));
            saved.extend(params.map(|p| p.to_string()));
        }
        if !saved.is_empty() {
            notes.push(format!("saved {}", saved.join(", ")));
        }
        let recomputed: Vec<String> = data
            .results
            .iter()
            .filter(|r| self.0.recompute[r.index()])
            .map(|r| r.to_string())
            .collect();
        if !recomputed.is_empty() {
            notes.push(format!("recomputed {}", recomputed.join(", ")));
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
