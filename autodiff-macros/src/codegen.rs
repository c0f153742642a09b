//! Turns the analysed IR into Rust: the saved-value struct, branch enums and loop records,
//! the forward function that fills them, `backward`, `_grad`, and the hidden all-active
//! pullback.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use std::collections::{HashMap, HashSet};
use syn::{GenericParam, ItemFn};

use crate::analysis::{loop_slots, rule_for, Analysis};
use crate::args::{ArrayKind, Output, Signature};
use crate::errors::Errors;
use crate::ir::{
    BinaryOp, BitOp, Block, CompareOp, CopyKind, Function, Inst, Opcode, ParamRole, UnaryOp, Value,
    ValueDef,
};
use crate::names;
use crate::primitives::Read;

/// Readable, unique identifiers for every value and its cotangent.
pub struct ValueNames {
    names: Vec<Ident>,
    cotangents: Vec<Ident>,
}

impl ValueNames {
    /// Chooses names: parameters keep theirs (see [`crate::args::avoid_generated_names`]), bound
    /// values take the variable's name with a numeric suffix on reassignment, temporaries are
    /// `v<n>`.
    pub fn new(func: &Function) -> Self {
        let mut used: HashSet<String> = ["self", "d_output", "_marker"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut names = vec![None; func.values.len()];
        for p in &func.params {
            used.insert(p.name.to_string());
            names[p.value.index()] = Some(p.name.clone());
        }
        for (i, data) in func.values.iter().enumerate() {
            if names[i].is_some() {
                continue;
            }
            let base = data.name.clone().unwrap_or_else(|| format!("v{i}"));
            let mut base = base.trim_start_matches("r#").to_string();
            if names::has_generated_prefix(&base) {
                // a numeric suffix would not leave the pattern (`call3_x_1`): a prefix does
                base = format!("u_{base}");
            }
            let mut candidate = base.clone();
            let mut k = 1;
            while used.contains(&candidate) || names::looks_generated(&candidate) {
                candidate = format!("{base}_{k}");
                k += 1;
            }
            used.insert(candidate.clone());
            names[i] = Some(make_ident(&candidate, data.span));
        }
        let names: Vec<Ident> = names.into_iter().map(|n| n.expect("named")).collect();
        let mut cot_used = used.clone();
        let cotangents = names
            .iter()
            .map(|n| {
                // a numeric suffix, not another prefix: `d_shift` of a variable `shift` ends
                // like a helper (`d_x_shift`), and so does every `d_d_shift`
                let base = format!("d_{}", names::unraw(n));
                let mut candidate = base.clone();
                let mut k = 1;
                while cot_used.contains(&candidate) || names::looks_generated(&candidate) {
                    candidate = format!("{base}_{k}");
                    k += 1;
                }
                cot_used.insert(candidate.clone());
                make_ident(&candidate, n.span())
            })
            .collect();
        ValueNames { names, cotangents }
    }

    /// The variable (and pullback field) name of `v`.
    pub fn name(&self, v: Value) -> &Ident {
        &self.names[v.index()]
    }

    fn cotangent(&self, v: Value) -> &Ident {
        &self.cotangents[v.index()]
    }

    /// Every cotangent name, as text.
    fn cotangent_names(&self) -> HashSet<String> {
        self.cotangents.iter().map(|c| c.to_string()).collect()
    }
}

/// The most rows `jacobian` is generated for: one lane of backward statements per row.
const MAX_JACOBIAN_ROWS: usize = 8;

/// An identifier for a generated name, raw (`r#type`) where the name is a keyword; the path
/// keywords, which cannot be raw, get a trailing underscore.
fn make_ident(name: &str, span: proc_macro2::Span) -> Ident {
    if syn::parse_str::<Ident>(name).is_ok() {
        Ident::new(name, span)
    } else if matches!(name, "super" | "self" | "Self" | "crate" | "_") {
        Ident::new(&format!("{name}_"), span)
    } else {
        Ident::new_raw(name, span)
    }
}

/// Everything codegen needs about the function, shared by both variants.
pub struct Context<'a> {
    /// The user's function.
    pub item: &'a ItemFn,
    /// The classified signature.
    pub sig: &'a Signature,
    /// The IR.
    pub func: &'a Function,
    /// Value names.
    pub names: ValueNames,
    /// The cotangents a fused loop declared in `_grad`'s forward statements, which the
    /// backward statements after it add to.
    pub fused_scope: std::cell::RefCell<HashSet<Value>>,
    /// While an eager loop's body is generated: its calls of differentiated functions, which
    /// the forward statements make through the callee's pullback, kept for the backward
    /// statements of the same iteration instead of replayed.
    pub kept_calls: std::cell::RefCell<HashSet<Inst>>,
    /// While reversed loops' bodies are generated, innermost last: the slots their replayed
    /// calls fill (`callN_slot`), declared in front of the outermost of those loops so that
    /// a replay reuses the record stacks of the one before it.
    pub replay_slots: std::cell::RefCell<Vec<Vec<Ident>>>,
    /// While an eager loop's body is generated: the `Vec`s its record would copy only for
    /// calls whose pullbacks are kept, which then read nothing.
    pub unsaved_arrays: std::cell::RefCell<HashSet<Value>>,
    /// While a branch's arms are generated: the arrays of fixed length (see
    /// [`Analysis::lengths`]) whose cotangents were declared empty in front of it, so that an
    /// arm's first contribution moves in rather than adds; their elements are updated with
    /// the growing rules until the branch is over and they are brought to full length.
    pub lazy_cotangents: std::cell::RefCell<HashSet<Value>>,
    /// While a reversed loop's body is generated: its element reads served from rows sliced
    /// in front of the loop (see [`Context::row_plan`]).
    pub row_reads: std::cell::RefCell<HashMap<Inst, RowRead>>,
    /// Whether the differentiated arguments of the public variant are a subset of the float
    /// arguments, so that a hidden variant with all of them active exists for callers.
    pub separate_hidden: bool,
    /// The type parameters whose `Float` bound the generated items add (see
    /// `expand::with_float_bounds`); the lifted closures, functions as written, leave it out.
    pub added_float_bounds: Vec<Ident>,
    /// The scalar primitives whose receiver has one of those types: emitted as
    /// `Float::sin(x)`, as `x.sin()` would be ambiguous between `Float` and nalgebra's
    /// `ComplexField` under both bounds.
    pub float_calls: HashSet<Inst>,
    /// Under those added bounds, the `map` instructions whose closure the forward pass calls
    /// as its lifted function (`m.map(|v| __autodiff_map_f_0::<T>(v))`): the closure as
    /// written would be ambiguous there too (see [`Context::maps_through_lifted`]).
    pub lifted_maps: HashSet<Inst>,
}

/// One generated variant: the public one (respecting `wrt`) or the hidden all-active one.
pub struct Variant<'a> {
    /// Analyses for this variant's active set.
    pub analysis: &'a Analysis,
    /// Whether this is the hidden all-active pullback called by other differentiated functions.
    pub hidden: bool,
    /// Element reads whose cotangent goes to a local of the reversed iteration instead of
    /// into the array's cotangent (see [`Context::shifted_reads`]): read → local.
    pub shifted: HashMap<Inst, Ident>,
    /// In `_grad`, the loop whose forward and backward iterations run together (see
    /// [`Context::fusable_loop`]); the backward pass skips it.
    pub fused: Option<Inst>,
    /// In `_grad`, the loops whose iterations each run forward and then backward for a seed
    /// of one (see [`Context::eager_loops`]); the backward pass only scales their gradients.
    pub eager: Vec<EagerLoop>,
}

/// A top-level loop `_grad` runs iteration by iteration, each one's backward statements right
/// after its forward ones, accumulating the gradient of the one sum it carries out for a seed
/// of one (see [`Context::eager_loops`]).
#[derive(Clone)]
pub struct EagerLoop {
    inst: Inst,
    /// The carried slot `(init, param, next, result)` of the sum read after the loop.
    sum: (Value, Value, Value, Value),
    /// Whether the loop carries scratch arrays, whose cotangent into the previous iteration
    /// every iteration checks to be zero.
    checked: bool,
}

/// In an ascending counted loop whose body reads `a[i]` and `a[i + 1]` of an array from
/// outside it (and touches `a` nowhere else), element `i + 1` gets its last two contributions
/// in consecutive reversed iterations. The backward pass carries the `a[i]` contribution in a
/// register to the next reversed iteration, where it is added together with that iteration's
/// `a[i + 1]` contribution: one update of the array per iteration instead of two updates
/// chained through memory.
struct ShiftedReads {
    array: Value,
    at_index: Inst,
    at_next: Inst,
    next_index: Value,
}

/// The locals of a [`ShiftedReads`] pair in the generated code.
struct ShiftLocals {
    /// The array's cotangent.
    d_array: Ident,
    /// The contribution carried to the next iteration.
    carried: Ident,
    /// This iteration's contributions of `a[i]` and `a[i + 1]`.
    at_index: Ident,
    at_next: Ident,
}

/// An element read `a[k]` of a reversed counted loop, `k` the loop's index or a counter
/// stepping with it, whose backward pass indexes rows of `a` and of its cotangent sliced in
/// front of the loop by the iteration's offset into the range (see [`Context::row_plan`]).
#[derive(Clone)]
pub struct RowRead {
    /// The row of the array, where the backward pass recomputes the read.
    primal: Option<Ident>,
    /// The row of the array's cotangent, where the read's cotangent goes.
    cotangent: Option<Ident>,
    /// The iteration's offset into the rows.
    offset: Ident,
}

/// The rows of a reversed loop (see [`Context::row_plan`]).
struct RowPlan {
    /// The range's start and length, bound in front of the loop.
    start: Ident,
    trip: Ident,
    offset: Ident,
    /// The rows' declarations, in front of the loop and behind the check that it runs.
    rows: TokenStream,
    reads: Vec<(Inst, RowRead)>,
}

/// The numbering of the records the forward pass keeps: one per reversed branch (an enum of
/// its arms) and one per reversed loop (a stack of per-iteration structs, or a trip count).
struct Records {
    index: HashMap<Inst, usize>,
    /// Loops with per-iteration fields nested in another loop: their records go on one flat
    /// stack for the whole call (a field of the pullback struct), and the enclosing record
    /// keeps only how many it pushed, so no inner loop allocates a vector of its own.
    flat: Vec<Inst>,
}

fn private() -> TokenStream {
    quote!(::autodiff::__private)
}

/// Whether `tokens` contain the identifier `ident`, at any depth.
fn mentions(tokens: &TokenStream, ident: &Ident) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        proc_macro2::TokenTree::Ident(i) => &i == ident,
        proc_macro2::TokenTree::Group(g) => mentions(&g.stream(), ident),
        _ => false,
    })
}

fn tuple_pattern(items: &[TokenStream]) -> TokenStream {
    match items {
        [] => quote!(()),
        [one] => one.clone(),
        many => quote!((#(#many),*)),
    }
}

fn binary_token(op: BinaryOp) -> TokenStream {
    match op {
        BinaryOp::Add => quote!(+),
        BinaryOp::Sub => quote!(-),
        BinaryOp::Mul => quote!(*),
        BinaryOp::Div => quote!(/),
        BinaryOp::Rem => quote!(%),
        BinaryOp::Bit(BitOp::And) => quote!(&),
        BinaryOp::Bit(BitOp::Or) => quote!(|),
        BinaryOp::Bit(BitOp::Xor) => quote!(^),
        BinaryOp::Bit(BitOp::Shl) => quote!(<<),
        BinaryOp::Bit(BitOp::Shr) => quote!(>>),
        BinaryOp::Compare(CompareOp::Eq) => quote!(==),
        BinaryOp::Compare(CompareOp::Ne) => quote!(!=),
        BinaryOp::Compare(CompareOp::Lt) => quote!(<),
        BinaryOp::Compare(CompareOp::Le) => quote!(<=),
        BinaryOp::Compare(CompareOp::Gt) => quote!(>),
        BinaryOp::Compare(CompareOp::Ge) => quote!(>=),
    }
}

/// The path of the hidden all-active pullback of the function a call refers to.
pub fn hidden_callee(path: &syn::ExprPath) -> syn::ExprPath {
    let mut path = path.clone();
    if let Some(last) = path.path.segments.last_mut() {
        last.ident = names::hidden_pullback_fn(&last.ident);
    }
    path
}

/// The path of the hidden zero-output-cotangent function of the function a call refers to.
pub fn hidden_zero_callee(path: &syn::ExprPath) -> syn::ExprPath {
    let mut path = path.clone();
    if let Some(last) = path.path.segments.last_mut() {
        last.ident = names::hidden_zero_output_fn(&last.ident);
    }
    path
}

/// The path of the hidden forward function reusing an earlier pullback, of the function a
/// call refers to.
pub fn hidden_reusing_callee(path: &syn::ExprPath) -> syn::ExprPath {
    let mut path = path.clone();
    if let Some(last) = path.path.segments.last_mut() {
        last.ident = names::hidden_reusing_pullback_fn(&last.ident);
    }
    path
}

/// The zero cotangent of a function output: a scalar, a container, or a tuple of them.
fn output_zero(output: &Output) -> TokenStream {
    let private = private();
    let zero = |ty: &syn::Type| match crate::args::array_type(ty) {
        Some(_) => quote!(#private::Cotangent::zero()),
        None => quote!(#private::zero()),
    };
    match output {
        Output::Scalar(ty) | Output::Array(ty) => zero(ty),
        Output::Tuple(items) => {
            let zeros = items.iter().map(zero);
            quote!((#(#zeros,)*))
        }
        // no zero without a value to take the non-float fields from (see `zero_output_item`)
        Output::Struct(_) => TokenStream::new(),
    }
}

/// `__autodiff_zero_output_f`: the zero cotangent of `f`'s output, for callers that cannot
/// name its type. A struct output has none: its fields that carry no derivative keep their
/// primal values, which a zero made from nothing cannot know, so a caller that needs one
/// fails to compile (rustc names the missing function).
pub fn zero_output_item(item: &ItemFn, sig: &Signature, cfgs: &[&syn::Attribute]) -> TokenStream {
    if matches!(sig.output, Output::Struct(_)) {
        return TokenStream::new();
    }
    let name = names::hidden_zero_output_fn(&item.sig.ident);
    let vis = &item.vis;
    let generics = &item.sig.generics;
    let params = &generics.params;
    let where_clause = &generics.where_clause;
    let ty = crate::args::cotangent_type(&sig.return_type);
    let zero = output_zero(&sig.output);
    quote! {
        #[doc(hidden)]
        #(#cfgs)*
        #[allow(dead_code, non_snake_case, clippy::all)]
        #[inline]
        #vis fn #name <#params> () -> #ty #where_clause {
            #zero
        }
    }
}

/// The iterator of a counted loop, `(start..end).rev().step_by(step)` as written, given
/// tokens for its operands (0: start, 1: end, 2: step).
fn range_iterator(
    range: &crate::ir::RangeLoop,
    operand: impl Fn(usize) -> TokenStream,
) -> TokenStream {
    let (start, end) = (operand(0), operand(1));
    let mut iter = if range.inclusive {
        quote!((#start..=#end))
    } else {
        quote!((#start..#end))
    };
    if range.reverse {
        iter = quote!(#iter.rev());
    }
    if range.stepped {
        let step = operand(2);
        iter = quote!(#iter.step_by(#step));
    }
    iter
}

/// The `#[cfg]` attributes of the function, repeated on every generated item.
fn cfg_attrs(item: &ItemFn) -> Vec<&syn::Attribute> {
    item.attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect()
}

/// Replaces bindings in a match pattern by `_`: the IR already maps them to the scrutinee.
fn strip_binders(pat: &syn::Pat) -> syn::Pat {
    match pat {
        syn::Pat::Ident(p) if p.subpat.is_some() => *p.subpat.as_ref().expect("checked").1.clone(),
        syn::Pat::Ident(p)
            if !p
                .ident
                .to_string()
                .chars()
                .next()
                .is_some_and(char::is_uppercase) =>
        {
            syn::parse_quote!(_)
        }
        other => other.clone(),
    }
}

/// The `.field[index]` path of a place, with index operands in the given tokens.
fn place_path(steps: &[crate::ir::PlaceStep], operands: &[TokenStream]) -> TokenStream {
    steps
        .iter()
        .map(|step| match step {
            crate::ir::PlaceStep::Field(member) => quote!(.#member),
            crate::ir::PlaceStep::Index(k) => {
                let index = &operands[*k];
                quote!([#index])
            }
        })
        .collect()
}

/// Whether a borrowed parameter of this type (a parameter set) is saved by cloning it.
fn saved_by_clone(elem: &syn::Type) -> bool {
    crate::args::is_parameter_set_type(elem)
}

/// Whether a borrowed parameter of this type can be saved by copying the referent.
fn copies_through_reference(elem: &syn::Type) -> bool {
    match elem {
        syn::Type::Path(p) => p.path.get_ident().is_some_and(|id| {
            matches!(
                id.to_string().as_str(),
                "i8" | "i16"
                    | "i32"
                    | "i64"
                    | "i128"
                    | "isize"
                    | "u8"
                    | "u16"
                    | "u32"
                    | "u64"
                    | "u128"
                    | "usize"
                    | "bool"
                    | "char"
                    | "f32"
                    | "f64"
            )
        }),
        _ => false,
    }
}

impl Context<'_> {
    fn fn_generics(&self) -> &syn::Generics {
        &self.item.sig.generics
    }

    /// The function's generics without lifetimes: saved values are owned.
    fn struct_generics(&self) -> syn::Generics {
        let mut generics = self.fn_generics().clone();
        generics.params = generics
            .params
            .into_iter()
            .filter(|p| !matches!(p, GenericParam::Lifetime(_)))
            .map(|mut p| {
                if let GenericParam::Type(t) = &mut p {
                    t.bounds = t
                        .bounds
                        .clone()
                        .into_iter()
                        .filter(|b| !matches!(b, syn::TypeParamBound::Lifetime(_)))
                        .collect();
                }
                p
            })
            .collect();
        generics
    }

    fn struct_ty_args(&self) -> TokenStream {
        let generics = self.struct_generics();
        let (_, ty_generics, _) = generics.split_for_impl();
        quote!(#ty_generics)
    }

    fn marker_type(&self) -> Option<TokenStream> {
        let params = crate::args::type_params(self.item);
        if params.is_empty() {
            return None;
        }
        let private = private();
        Some(quote!(#private::PhantomData<fn() -> (#(#params,)*)>))
    }

    fn cfg_attrs(&self) -> Vec<&syn::Attribute> {
        cfg_attrs(self.item)
    }

    fn params_decl(&self) -> Vec<TokenStream> {
        self.sig
            .params
            .iter()
            .map(|p| {
                let (name, ty) = (&p.name, &p.ty);
                quote!(#name: #ty)
            })
            .collect()
    }

    /// The cotangent types returned by `backward`: one per active parameter (public), or one
    /// per parameter with `()` for inactive ones (hidden).
    fn gradient_type(&self, active: &[bool], hidden: bool) -> TokenStream {
        let types: Vec<TokenStream> = self
            .sig
            .params
            .iter()
            .zip(active)
            .filter_map(|(p, &a)| {
                let ty = crate::args::cotangent_type(&p.ty);
                match (a, hidden) {
                    (true, _) => Some(quote!(#ty)),
                    (false, true) => Some(quote!(())),
                    (false, false) => None,
                }
            })
            .collect();
        if !hidden && types.len() == 1 {
            types[0].clone()
        } else {
            quote!((#(#types,)*))
        }
    }

    fn records(&self, analysis: &Analysis) -> Records {
        let mut index = HashMap::new();
        self.func.walk_insts(self.func.entry, &mut |inst| {
            let structured = matches!(
                self.func.inst(inst).opcode,
                Opcode::If | Opcode::Match(_) | Opcode::ForRange(_) | Opcode::While
            );
            if structured && analysis.reversed[inst.index()] {
                let next = index.len();
                index.insert(inst, next);
            }
        });
        let mut records = Records {
            index,
            flat: Vec::new(),
        };
        // an `if` whose condition the backward pass evaluates again needs no record when no
        // arm saves anything (inner branches first, so that outer ones see them gone)
        let mut order = Vec::new();
        self.func
            .walk_insts(self.func.entry, &mut |inst| order.push(inst));
        // nor does a loop whose iterations save nothing and whose index the backward pass
        // replays: its trip count is the range's
        for &inst in order.iter().rev() {
            let saves_nothing = self.func.inst(inst).arms.iter().all(|&arm| {
                self.saved_in_block(analysis, arm).is_empty()
                    && self.records_in_block(&records, arm).is_empty()
            });
            let replayed = analysis.replayable_branch[inst.index()]
                || self.replayed_index(analysis, inst).is_some();
            if replayed && saves_nothing && records.index.contains_key(&inst) {
                records.index.remove(&inst);
            }
        }
        // numbered again in program order, so record names do not depend on what was removed
        let kept: Vec<Inst> = order
            .iter()
            .copied()
            .filter(|inst| records.index.contains_key(inst))
            .collect();
        records.index = kept
            .iter()
            .enumerate()
            .map(|(n, &inst)| (inst, n))
            .collect();
        let mut flat = Vec::new();
        self.nested_loops(self.func.entry, false, &mut flat);
        flat.retain(|inst| {
            records.index.contains_key(inst) && self.loop_has_fields(analysis, &records, *inst)
        });
        flat.sort_by_key(|inst| records.index[inst]);
        records.flat = flat;
        records
    }

    /// The loops inside `block` that run inside another loop.
    fn nested_loops(&self, block: Block, in_loop: bool, out: &mut Vec<Inst>) {
        for &inst in &self.func.block(block).insts {
            let is_loop = self.is_loop(inst);
            if is_loop && in_loop {
                out.push(inst);
            }
            for &arm in &self.func.inst(inst).arms {
                self.nested_loops(arm, in_loop || is_loop, out);
            }
        }
    }

    /// The flat stack of a nested loop's records, see [`Records::flat`].
    fn record_stack(&self, inst: Inst, index: usize) -> Ident {
        format_ident!("{}_stack", self.record_field(inst, index))
    }

    fn is_loop(&self, inst: Inst) -> bool {
        self.func.loop_layout(inst).is_some()
    }

    fn record_field(&self, inst: Inst, index: usize) -> Ident {
        if self.is_loop(inst) {
            format_ident!("loop{}", index)
        } else {
            names::branch_field(index)
        }
    }

    fn record_type(&self, inst: Inst, index: usize, hidden: bool) -> Ident {
        let base = names::upper_camel(&names::unraw(&self.func.name));
        let all = if hidden { "All" } else { "" };
        let kind = if self.is_loop(inst) { "Loop" } else { "Branch" };
        if hidden {
            format_ident!("__{}{}{}{}", base, all, kind, index)
        } else {
            format_ident!("{}{}{}", base, kind, index)
        }
    }

    /// Whether a loop's per-iteration record has fields, or only its trip count is kept.
    fn loop_has_fields(&self, analysis: &Analysis, records: &Records, inst: Inst) -> bool {
        let body = self.func.inst(inst).arms[0];
        !self.saved_in_block(analysis, body).is_empty()
            || !self.records_in_block(records, body).is_empty()
    }

    /// Whether a nested loop's entries on its flat stack are counted by its range in the
    /// backward pass instead of by a count in the enclosing record.
    fn range_counted(&self, analysis: &Analysis, records: &Records, inst: Inst) -> bool {
        records.flat.contains(&inst) && self.replayed_trip_count(analysis, inst).is_some()
    }

    /// The trip count of a loop that runs a whole `start..end` range of `usize` (replayed in
    /// the backward pass), from the bounds the backward pass reads.
    fn replayed_trip_count(&self, analysis: &Analysis, inst: Inst) -> Option<TokenStream> {
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return None;
        };
        let index = self.func.block(data.arms[0]).params[0];
        let usize_ty: syn::Type = syn::parse_quote!(usize);
        if range.stepped
            || range.inclusive
            || analysis.types[index.index()].as_ref() != Some(&usize_ty)
        {
            return None;
        }
        let (_, reversed) = self.replayed_index(analysis, inst)?;
        Some(quote!(::core::iter::ExactSizeIterator::len(&#reversed)))
    }

    /// The forward-pass tokens of an instruction's arguments (see [`Self::operand`]).
    fn operands(&self, inst: Inst) -> Vec<TokenStream> {
        let args = &self.func.inst(inst).args;
        args.iter().map(|a| self.operand(*a)).collect()
    }

    /// Tokens evaluating a value in the forward pass: its name, or a constant inline.
    fn operand(&self, v: Value) -> TokenStream {
        if let Some(inst) = self.func.def_inst(v) {
            match &self.func.inst(inst).opcode {
                Opcode::Const(tokens) => return tokens.clone(),
                // places are written out where they are used, as the user wrote them
                Opcode::Place(_) => {
                    let operands = self.operands(inst);
                    return self.inst_expr(inst, &operands);
                }
                _ => {}
            }
        }
        let name = self.names.name(v);
        quote!(#name)
    }

    /// A value passed on by a block: a copy when a later yield passes the same value on too
    /// (as a hidden return slot and a carried variable can), so a vector is not moved twice.
    fn yielded(&self, v: Value, later: &[Value]) -> TokenStream {
        let operand = self.operand(v);
        if later.contains(&v) {
            quote!(::core::clone::Clone::clone(&#operand))
        } else {
            operand
        }
    }

    /// The expression an instruction computes, given tokens for its operands.
    fn inst_expr(&self, inst: Inst, operands: &[TokenStream]) -> TokenStream {
        let data = self.func.inst(inst);
        let span = data.span;
        let arg = |i: usize| &operands[i];
        match &data.opcode {
            Opcode::Const(tokens) => tokens.clone(),
            Opcode::Binary(op) => {
                let (a, b, op) = (arg(0), arg(1), binary_token(*op));
                quote_spanned!(span=> #a #op #b)
            }
            Opcode::Unary(UnaryOp::Neg) => {
                let a = arg(0);
                quote_spanned!(span=> -#a)
            }
            Opcode::Unary(UnaryOp::Not) => {
                let a = arg(0);
                quote_spanned!(span=> !#a)
            }
            Opcode::Cast(ty) => {
                let a = arg(0);
                quote_spanned!(span=> #a as #ty)
            }
            Opcode::Primitive(p) if std::ptr::eq(*p, &crate::primitives::linalg::INVERSE) => {
                let m = arg(0);
                quote_spanned!(span=> #m.try_inverse().expect("try_inverse: the matrix is singular"))
            }
            Opcode::Primitive(p) if crate::primitives::is_chunk_count(p) => {
                let (name, len, size) = (Ident::new(p.name, span), arg(0), arg(1));
                quote_spanned!(span=> ::autodiff::__private::rules::#name(#len, #size))
            }
            Opcode::Primitive(p) if std::ptr::eq(*p, &crate::primitives::linalg::SOLVE) => {
                let (a, b) = (arg(0), arg(1));
                quote_spanned!(span=> ::core::clone::Clone::clone(&#a).lu().solve(#b).expect("solve: the matrix is singular"))
            }
            Opcode::Primitive(p) if self.float_calls.contains(&inst) => {
                let name = Ident::new(p.name, span);
                quote_spanned!(span=> ::autodiff::__private::num_traits::Float::#name(#(#operands),*))
            }
            Opcode::Primitive(p) => {
                let name = Ident::new(p.name, span);
                let (recv, rest) = operands.split_first().expect("receiver");
                quote_spanned!(span=> #recv.#name(#(#rest),*))
            }
            Opcode::Method(name, turbofish) => {
                let (recv, rest) = operands.split_first().expect("receiver");
                quote_spanned!(span=> #recv.#name #turbofish(#(#rest),*))
            }
            Opcode::Call(path) => quote_spanned!(span=> #path(#(#operands),*)),
            Opcode::Place(steps) => {
                let root = arg(0);
                let path = place_path(steps, operands);
                quote!(#root #path)
            }
            Opcode::Tuple => quote!((#(#operands),*)),
            Opcode::MatrixNew(path) => quote_spanned!(span=> #path::new(#(#operands),*)),
            // copies: a field's value (a vector) may still be read after the call
            Opcode::MakeStruct(path, fields) => {
                quote!(#path { #(#fields: ::core::clone::Clone::clone(&#operands)),* })
            }
            Opcode::Assert(assertion) => {
                let path = &assertion.path;
                let mut arguments: Vec<TokenStream> =
                    operands.iter().take(assertion.checked).cloned().collect();
                if let Some(format) = &assertion.message {
                    arguments.push(quote!(#format));
                    arguments.extend(
                        operands
                            .iter()
                            .skip(assertion.checked)
                            .zip(&assertion.names)
                            .map(|(operand, name)| match name {
                                Some(name) => quote!(#name = #operand),
                                None => operand.clone(),
                            }),
                    );
                }
                quote_spanned!(span=> #path!(#(#arguments),*))
            }
            Opcode::ShapeOf => {
                let a = arg(0);
                quote!(::autodiff::__private::ShapeOf::shape_of(&#a))
            }
            // a borrowed slice is a reference already, as the user's `&x[a..b]` is
            Opcode::Ref
                if self
                    .func
                    .def_inst(data.args[0])
                    .is_some_and(|d| self.func.borrows_range(d)) =>
            {
                arg(0).clone()
            }
            Opcode::Ref => {
                let a = arg(0);
                quote!(&#a)
            }
            Opcode::Deref => {
                let a = arg(0);
                quote!(*#a)
            }
            Opcode::Index => {
                let (a, i) = (arg(0), arg(1));
                quote_spanned!(span=> #a[#i])
            }
            Opcode::Len => {
                let a = arg(0);
                quote!(#a.len())
            }
            Opcode::VecFill => {
                let (v, n) = (arg(0), arg(1));
                quote!(::std::vec![#v; #n])
            }
            Opcode::ArrayFill(len) => {
                let v = arg(0);
                quote!([#v; #len])
            }
            Opcode::ArrayLiteral { vec: true } => quote!(::std::vec![#(#operands),*]),
            Opcode::ArrayLiteral { vec: false } => quote!([#(#operands),*]),
            Opcode::VecNew if operands.is_empty() => quote!(::std::vec::Vec::new()),
            Opcode::VecNew => {
                let n = arg(0);
                quote!(::std::vec::Vec::with_capacity(#n))
            }
            Opcode::Copy(CopyKind::Clone) => {
                let a = arg(0);
                quote!(#a.clone())
            }
            Opcode::Copy(CopyKind::ToVec) => {
                let a = arg(0);
                quote!(#a.to_vec())
            }
            Opcode::Slice if self.func.borrows_range(inst) => {
                let (a, start, end) = (arg(0), arg(1), arg(2));
                quote!(&#a[#start..#end])
            }
            Opcode::Slice => {
                let (a, start, end) = (arg(0), arg(1), arg(2));
                quote!(#a[#start..#end].to_vec())
            }
            Opcode::MapElementwise(k) if self.lifted_maps.contains(&inst) => {
                let m = arg(0);
                let lifted = self.with_generic_args(&self.func.closures[*k].function);
                let values = &operands[1..];
                quote_spanned!(span=> #m.map(|element| #lifted(element #(, #values)*)))
            }
            Opcode::MapElementwise(k) => {
                let (m, closure) = (arg(0), &self.func.closures[*k].closure);
                let captures = &self.func.closures[*k].captures;
                if captures.is_empty() {
                    quote_spanned!(span=> #m.map(#closure))
                } else {
                    // the names the closure reads, bound to the values they have here
                    let values = &operands[1..];
                    quote_spanned!(span=> { #(let #captures = #values;)* #m.map(#closure) })
                }
            }
            Opcode::IndexSet
            | Opcode::IndexAdd { .. }
            | Opcode::Push
            | Opcode::Swap
            | Opcode::If
            | Opcode::Match(_)
            | Opcode::ForRange(_)
            | Opcode::While => unreachable!("statements are emitted separately"),
        }
    }

    /// A constant value recomputed in the backward pass.
    fn constant_expr(&self, v: Value) -> TokenStream {
        let inst = self
            .func
            .def_inst(v)
            .expect("constants are instruction results");
        let data = self.func.inst(inst);
        let operands: Vec<TokenStream> = data.args.iter().map(|a| self.constant_expr(*a)).collect();
        let expr = self.inst_expr(inst, &operands);
        match data.opcode {
            Opcode::Const(_) => expr,
            _ => quote!((#expr)),
        }
    }

    // ---- saved values and records ----

    fn saved_in_block(&self, analysis: &Analysis, block: Block) -> Vec<Value> {
        let saved = self.saved_in_block_all(analysis, block);
        if block == self.func.entry {
            return saved;
        }
        saved
            .into_iter()
            .filter(|&v| self.held_by_next_record(analysis, v).is_none())
            .collect()
    }

    /// For the value `next` a top-level loop passes on to its next iteration as `param`:
    /// `(param, result)` when the iteration's record need not keep `next`, because the next
    /// record keeps it as its `param` (and, after the last iteration, the pullback keeps the
    /// loop's `result`). Both are saved arrays, read in full; every active carried value of
    /// the loop is an array (a loop summing a scalar may run fused or eagerly in `_grad`,
    /// without records).
    fn held_by_next_record(&self, analysis: &Analysis, next: Value) -> Option<(Value, Value)> {
        let full = |v: Value| {
            analysis.is_saved(v) && analysis.arrays[v.index()] && !analysis.shape_only(v)
        };
        if !full(next) {
            return None;
        }
        let entry = self.func.block(self.func.entry);
        for &inst in &entry.insts {
            if !self.is_loop(inst) {
                continue;
            }
            let slots = loop_slots(self.func, inst);
            let Some(&(_, param, _, result)) = slots.iter().find(|s| s.2 == next) else {
                continue;
            };
            let unique = slots.iter().filter(|s| s.2 == next || s.1 == next).count() == 1;
            let arrays_only = slots
                .iter()
                .all(|s| !analysis.is_active(s.1) || analysis.arrays[s.1.index()]);
            let result_kept = analysis.is_saved(result) && !analysis.shape_only(result);
            return (param != next && unique && arrays_only && full(param) && result_kept)
                .then_some((param, result));
        }
        None
    }

    fn saved_in_block_all(&self, analysis: &Analysis, block: Block) -> Vec<Value> {
        let mut saved = Vec::new();
        if block == self.func.entry {
            saved.extend(
                self.func
                    .params
                    .iter()
                    .map(|p| p.value)
                    .filter(|v| analysis.is_saved(*v)),
            );
        }
        saved.extend(
            self.func
                .block(block)
                .params
                .iter()
                .copied()
                .filter(|v| analysis.is_saved(*v)),
        );
        for &inst in &self.func.block(block).insts {
            saved.extend(
                self.func
                    .inst(inst)
                    .results
                    .iter()
                    .copied()
                    .filter(|v| analysis.is_saved(*v)),
            );
        }
        saved
    }

    fn records_in_block(&self, records: &Records, block: Block) -> Vec<(Inst, usize)> {
        self.func
            .block(block)
            .insts
            .iter()
            .filter_map(|inst| records.index.get(inst).map(|&i| (*inst, i)))
            .collect()
    }

    /// The variable holding a saved array's copy, taken where it was defined; for an array
    /// saved in place (see [`Self::saved_in_place`]) the array itself.
    fn saved_copy(&self, analysis: &Analysis, v: Value) -> Ident {
        if self.saved_in_place(analysis, v) {
            self.names.name(v).clone()
        } else {
            format_ident!("{}_saved", self.names.name(v))
        }
    }

    /// Whether saved array `v` goes into the pullback itself instead of a copy: it is
    /// computed at the function's top level, and the forward pass only ever borrows it (an
    /// element read, a length, a `&v`, a method of our tensors or nalgebra's that takes
    /// `&self`, or an operator on a tensor or matrix, which the forward pass then writes with
    /// `&v`), so it is still there, unchanged, when the pullback is built at the end.
    fn saved_in_place(&self, analysis: &Analysis, v: Value) -> bool {
        if analysis.shape_only(v) {
            return false;
        }
        let entry = self.func.block(self.func.entry);
        // made at the top level by an operation whose result is owned (a borrowed slice, or
        // a call's or unknown method's result, which may be a reference, is copied as before)
        let top_level = self.func.def_inst(v).is_some_and(|def| {
            entry.insts.contains(&def)
                && match &self.func.inst(def).opcode {
                    Opcode::Slice => !self.func.borrows_range(def),
                    Opcode::Binary(_)
                    | Opcode::Unary(_)
                    | Opcode::Primitive(_)
                    | Opcode::MapElementwise(_)
                    | Opcode::Copy(_)
                    | Opcode::VecFill
                    | Opcode::ArrayFill(_)
                    | Opcode::ArrayLiteral { .. }
                    | Opcode::MatrixNew(_)
                    | Opcode::VecNew
                    | Opcode::IndexSet
                    | Opcode::IndexAdd { .. }
                    | Opcode::Push
                    | Opcode::Swap => true,
                    _ => false,
                }
        });
        let in_loop_body = !top_level && self.made_in_loop_body(analysis, v);
        if !(top_level || in_loop_body)
            || !analysis.is_saved(v)
            || !analysis.arrays[v.index()]
            || self.unsaved_arrays.borrow().contains(&v)
            || self.func.blocks.iter().any(|b| b.yields.contains(&v))
        {
            return false;
        }
        let mut borrowed_only = true;
        self.func.walk_insts(self.func.entry, &mut |inst| {
            let data = self.func.inst(inst);
            for (i, &arg) in data.args.iter().enumerate() {
                if arg == v && !self.borrows_operand(analysis, inst, i, entry.insts.contains(&inst))
                {
                    borrowed_only = false;
                }
            }
        });
        borrowed_only
    }

    /// Whether `v` is an owned array made directly in a loop's body, by an operation whose
    /// result is owned or as a carried variable (moved in from the carrier), so that it can
    /// be moved into the iteration's record, which is pushed at the end of the iteration.
    fn made_in_loop_body(&self, analysis: &Analysis, v: Value) -> bool {
        if !matches!(&analysis.types[v.index()], Some(ty) if !matches!(ty, syn::Type::Reference(_)))
        {
            return false;
        }
        let owned_result = |def: Inst| {
            matches!(
                &self.func.inst(def).opcode,
                Opcode::Binary(_)
                    | Opcode::Unary(_)
                    | Opcode::Primitive(_)
                    | Opcode::Copy(_)
                    | Opcode::VecFill
                    | Opcode::ArrayLiteral { vec: true }
                    | Opcode::MatrixNew(_)
                    | Opcode::VecNew
            )
        };
        let mut found = false;
        self.func.walk_insts(self.func.entry, &mut |inst| {
            let data = self.func.inst(inst);
            if !matches!(data.opcode, Opcode::ForRange(_) | Opcode::While) {
                return;
            }
            let Some(&body) = data.arms.first() else {
                return;
            };
            let block = self.func.block(body);
            let carried = loop_slots(self.func, inst)
                .iter()
                .any(|&(_, param, _, _)| param == v);
            let made_here = self
                .func
                .def_inst(v)
                .is_some_and(|def| block.insts.contains(&def) && owned_result(def));
            found |= carried || made_here;
        });
        found
    }

    /// Whether operand `i` of `inst` is only borrowed by the forward statement written for
    /// it. `top_level`: the instruction is in the function's entry block, where operators on
    /// tensors and matrices are written with borrowed operands for values saved in place.
    fn borrows_operand(&self, analysis: &Analysis, inst: Inst, i: usize, top_level: bool) -> bool {
        let data = self.func.inst(inst);
        let v = data.args[i];
        let container = analysis.tensors[v.index()] || analysis.matrices[v.index()];
        // a result that may hold the borrow must not outlive the move into the pullback
        let result_ends_here = || {
            data.results.iter().all(|r| {
                !analysis.is_saved(*r) && !self.func.blocks.iter().any(|b| b.yields.contains(r))
            })
        };
        match &data.opcode {
            Opcode::Index
            | Opcode::Len
            | Opcode::ShapeOf
            | Opcode::Copy(_)
            | Opcode::MapElementwise(_) => i == 0,
            Opcode::Slice => i == 0 && !self.func.borrows_range(inst),
            // the assertion macros and `format_args!` take their arguments by reference
            Opcode::Assert(_) => true,
            Opcode::Ref => result_ends_here(),
            Opcode::Primitive(p) => i == 0 && container && crate::primitives::borrows_receiver(p),
            Opcode::Method(name, None) => {
                i == 0 && container && name == "shape" && result_ends_here()
            }
            Opcode::Binary(BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul)
            | Opcode::Unary(UnaryOp::Neg) => top_level && container,
            _ => false,
        }
    }

    fn field_decls(
        &self,
        variant: &Variant,
        records: &Records,
        block: Block,
        errors: &mut Errors,
    ) -> Vec<TokenStream> {
        let analysis = variant.analysis;
        let mut fields = Vec::new();
        for v in self.saved_in_block(analysis, block) {
            let name = self.names.name(v);
            if analysis.shape_only(v) {
                fields.push(quote!(#name: ::std::vec::Vec<usize>));
                continue;
            }
            match &analysis.types[v.index()] {
                Some(syn::Type::Reference(r))
                    if copies_through_reference(&r.elem) || saved_by_clone(&r.elem) =>
                {
                    let elem = &r.elem;
                    fields.push(quote!(#name: #elem));
                }
                Some(syn::Type::Reference(r)) => {
                    errors.push_spanned(r, "a borrowed value that the backward pass needs cannot be saved; pass it by value");
                }
                Some(ty) => fields.push(quote!(#name: #ty)),
                None => {}
            }
        }
        for (field, ty) in self.record_fields(analysis, records, block, variant.hidden) {
            fields.push(quote!(#field: #ty));
        }
        fields
    }

    /// The record fields of a frame with their types: a branch's enum, a loop's `Vec` of
    /// iteration records, or a count (a loop that saves nothing, or a nested loop whose records
    /// are on a flat stack); in the entry frame also the flat stacks.
    fn record_fields(
        &self,
        analysis: &Analysis,
        records: &Records,
        block: Block,
        hidden: bool,
    ) -> Vec<(Ident, TokenStream)> {
        let ty_args = self.struct_ty_args();
        let mut fields = Vec::new();
        for (inst, index) in self.records_in_block(records, block) {
            if self.range_counted(analysis, records, inst) {
                continue;
            }
            let field = self.record_field(inst, index);
            let ty = self.record_type(inst, index, hidden);
            let ty = if !self.is_loop(inst) {
                quote!(#ty #ty_args)
            } else if self.loop_has_fields(analysis, records, inst) && !records.flat.contains(&inst)
            {
                quote!(::std::vec::Vec<#ty #ty_args>)
            } else {
                quote!(usize)
            };
            fields.push((field, ty));
        }
        if block == self.func.entry {
            for &inst in &records.flat {
                let index = records.index[&inst];
                let ty = self.record_type(inst, index, hidden);
                fields.push((
                    self.record_stack(inst, index),
                    quote!(::std::vec::Vec<#ty #ty_args>),
                ));
            }
        }
        fields
    }

    /// The fields of a frame, each with the value the forward pass fills it with: one per
    /// saved value, then one per record of a branch or loop in the frame.
    fn fields(
        &self,
        analysis: &Analysis,
        records: &Records,
        block: Block,
    ) -> Vec<(TokenStream, TokenStream)> {
        let mut fields: Vec<(TokenStream, TokenStream)> = self
            .saved_in_block(analysis, block)
            .into_iter()
            .map(|v| {
                let name = self.names.name(v);
                let value = if analysis.arrays[v.index()] {
                    let copy = self.saved_copy(analysis, v);
                    quote!(#copy)
                } else if let Some(syn::Type::Reference(_)) = &analysis.types[v.index()] {
                    quote!(::core::clone::Clone::clone(#name))
                } else if self.struct_type(analysis, v).is_some() {
                    let copy = self.saved_copy(analysis, v);
                    quote!(#copy)
                } else {
                    quote!(#name)
                };
                (quote!(#name), value)
            })
            .collect();
        for (inst, index) in self.records_in_block(records, block) {
            if !self.range_counted(analysis, records, inst) {
                let field = self.record_field(inst, index);
                fields.push((quote!(#field), quote!(#field)));
            }
        }
        if block == self.func.entry {
            for &inst in &records.flat {
                let stack = self.record_stack(inst, records.index[&inst]);
                fields.push((quote!(#stack), quote!(#stack)));
            }
        }
        fields
    }

    fn field_inits(
        &self,
        analysis: &Analysis,
        records: &Records,
        block: Block,
    ) -> Vec<TokenStream> {
        self.fields(analysis, records, block)
            .into_iter()
            .map(|(name, value)| {
                if name.to_string() == value.to_string() {
                    name
                } else {
                    quote!(#name: #value)
                }
            })
            .collect()
    }

    fn field_bindings(
        &self,
        analysis: &Analysis,
        records: &Records,
        block: Block,
    ) -> Vec<TokenStream> {
        self.fields(analysis, records, block)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// The heap bytes held by the fields of a frame, whose names are bound as references.
    fn frame_heap_bytes(&self, variant: &Variant, records: &Records, block: Block) -> TokenStream {
        let analysis = variant.analysis;
        let private = private();
        let mut terms = vec![quote!(0usize)];
        for v in self.saved_in_block(analysis, block) {
            if analysis.arrays[v.index()] {
                let name = self.names.name(v);
                terms.push(quote!(#private::ArrayStorage::heap_bytes(#name)));
            }
        }
        let mut stacks: Vec<(Inst, usize, Ident)> = Vec::new();
        for (inst, index) in self.records_in_block(records, block) {
            let field = self.record_field(inst, index);
            if !self.is_loop(inst) {
                terms.push(quote!(#field.__heap_bytes()));
            } else if self.loop_has_fields(analysis, records, inst) && !records.flat.contains(&inst)
            {
                stacks.push((inst, index, field));
            }
        }
        if block == self.func.entry {
            for &inst in &records.flat {
                let index = records.index[&inst];
                stacks.push((inst, index, self.record_stack(inst, index)));
            }
        }
        for (inst, index, field) in stacks {
            let (ty, ty_args) = (
                self.record_type(inst, index, variant.hidden),
                self.struct_ty_args(),
            );
            terms.push(quote!(
                #field.capacity() * ::core::mem::size_of::<#ty #ty_args>()
                    + #field.iter().map(|record| record.__heap_bytes()).sum::<usize>()
            ));
        }
        quote!(#(#terms)+*)
    }

    /// `__heap_bytes` for a generated struct whose frame is `block`.
    fn struct_heap_bytes(
        &self,
        variant: &Variant,
        records: &Records,
        block: Block,
        ty: &Ident,
    ) -> TokenStream {
        let generics = self.struct_generics();
        let (s_impl, s_ty, s_where) = generics.split_for_impl();
        let bindings = self.field_bindings(variant.analysis, records, block);
        let total = self.frame_heap_bytes(variant, records, block);
        let cfgs = self.cfg_attrs();
        let vis = &self.item.vis;
        quote! {
            #(#cfgs)*
            impl #s_impl #ty #s_ty #s_where {
                #[doc(hidden)]
                #[allow(non_snake_case, unreachable_code, unused_variables, clippy::all)]
                #vis fn __heap_bytes(&self) -> usize {
                    let #ty { #(#bindings,)* .. } = self;
                    #total
                }
            }
        }
    }

    /// The struct, branch enums and loop records of one variant.
    fn declarations(
        &self,
        variant: &Variant,
        records: &Records,
        struct_name: &Ident,
        errors: &mut Errors,
    ) -> TokenStream {
        let generics = self.struct_generics();
        let where_clause = &generics.where_clause;
        let params = &generics.params;
        let vis = &self.item.vis;
        let cfgs = self.cfg_attrs();
        let marker = self.marker_type();
        let fields = self.field_decls(variant, records, self.func.entry, errors);
        let marker_field = marker.as_ref().map(|m| {
            let name = names::marker_field();
            quote!(#name: #m,)
        });
        let fname = &self.func.name;
        let doc = if variant.hidden {
            quote!(#[doc(hidden)])
        } else {
            let text = format!(
                " The forward values the backward pass of [`{fname}`] reads, saved by [`{}`].",
                names::pullback_fn(fname)
            );
            quote!(#[doc = #text])
        };
        let mut out = quote! {
            #doc
            #(#cfgs)*
            #[allow(non_camel_case_types, non_snake_case, dead_code, clippy::all)]
            #vis struct #struct_name <#params> #where_clause {
                #(#fields,)*
                #marker_field
            }
        };
        if !variant.hidden {
            let (s_impl, s_ty, s_where) = generics.split_for_impl();
            let heap = self.frame_heap_bytes(variant, records, self.func.entry);
            let bindings = self.field_bindings(variant.analysis, records, self.func.entry);
            let body = if heap.to_string() == "0usize" {
                quote!(::core::mem::size_of::<Self>())
            } else {
                quote! {
                    let #struct_name { #(#bindings,)* .. } = self;
                    ::core::mem::size_of::<Self>() + #heap
                }
            };
            out.extend(quote! {
                #(#cfgs)*
                impl #s_impl #struct_name #s_ty #s_where {
                    /// The memory these saved values occupy, in bytes: the struct itself plus
                    /// the heap storage of its per-iteration stacks and saved arrays.
                    #[allow(dead_code, non_snake_case, unreachable_code, unused_variables)]
                    #vis fn saved_bytes(&self) -> usize {
                        #body
                    }
                }
            });
        }
        let mut all: Vec<(Inst, usize)> = records.index.iter().map(|(i, n)| (*i, *n)).collect();
        all.sort_by_key(|(_, n)| *n);
        for (inst, index) in all {
            let data = self.func.inst(inst);
            let ty = self.record_type(inst, index, variant.hidden);
            let hidden_doc = |text: String| {
                if variant.hidden {
                    quote!(#[doc(hidden)])
                } else {
                    quote!(#[doc = #text])
                }
            };
            if self.is_loop(inst) {
                if !self.loop_has_fields(variant.analysis, records, inst) {
                    continue;
                }
                let fields = self.field_decls(variant, records, data.arms[0], errors);
                let doc = hidden_doc(format!(
                    " The values one iteration of a loop in [`{fname}`] saves."
                ));
                out.extend(quote! {
                    #doc
                    #(#cfgs)*
                    #[allow(non_camel_case_types, non_snake_case, dead_code, clippy::all)]
                    #vis struct #ty <#params> #where_clause {
                        #(#fields,)*
                        #marker_field
                    }
                });
                out.extend(self.struct_heap_bytes(variant, records, data.arms[0], &ty));
                continue;
            }
            let is_if = matches!(data.opcode, Opcode::If);
            let variants: Vec<TokenStream> = data
                .arms
                .iter()
                .enumerate()
                .map(|(arm_index, &arm)| {
                    let variant_name = names::arm_variant(is_if, arm_index);
                    let fields = self.field_decls(variant, records, arm, errors);
                    quote!(#variant_name { #(#fields),* })
                })
                .collect();
            let marker_variant = marker
                .as_ref()
                .map(|m| quote!(#[doc(hidden)] __Marker(#m, ::core::convert::Infallible),));
            let doc = hidden_doc(format!(
                " Which arm of a branch in [`{fname}`] ran, with the values saved on that arm."
            ));
            out.extend(quote! {
                #doc
                #(#cfgs)*
                #[allow(non_camel_case_types, non_snake_case, dead_code, clippy::all)]
                #vis enum #ty <#params> #where_clause {
                    #(#variants,)*
                    #marker_variant
                }
            });
            let (s_impl, s_ty, s_where) = generics.split_for_impl();
            let arms: Vec<TokenStream> = data
                .arms
                .iter()
                .enumerate()
                .map(|(arm_index, &arm)| {
                    let variant_name = names::arm_variant(is_if, arm_index);
                    let bindings = self.field_bindings(variant.analysis, records, arm);
                    let total = self.frame_heap_bytes(variant, records, arm);
                    quote!(#ty::#variant_name { #(#bindings,)* .. } => #total,)
                })
                .collect();
            let never = marker
                .as_ref()
                .map(|_| quote!(#ty::__Marker(_, never) => match *never {},));
            out.extend(quote! {
                #(#cfgs)*
                impl #s_impl #ty #s_ty #s_where {
                    #[doc(hidden)]
                    #[allow(non_snake_case, unreachable_code, unused_variables, clippy::all)]
                    #vis fn __heap_bytes(&self) -> usize {
                        match self { #(#arms)* #never }
                    }
                }
            });
        }
        out
    }

    // ---- forward pass ----

    /// Copies of arrays the backward pass reads, taken as soon as they exist, before any
    /// later in-place write can change them.
    fn save_arrays(&self, analysis: &Analysis, values: &[Value], out: &mut TokenStream) {
        for &v in values {
            if analysis.is_saved(v) && self.struct_type(analysis, v).is_some() {
                // a struct the forward pass goes on to move (into a call, a carried variable)
                let (name, copy) = (self.names.name(v), self.saved_copy(analysis, v));
                out.extend(quote!(let #copy = ::core::clone::Clone::clone(&#name);));
                continue;
            }
            if analysis.is_saved(v)
                && analysis.arrays[v.index()]
                && self.held_by_next_record(analysis, v).is_none()
            {
                let (name, copy, private) =
                    (self.names.name(v), self.saved_copy(analysis, v), private());
                if analysis.shape_only(v) {
                    out.extend(quote!(let #copy = #private::ShapeOf::shape_of(&#name);));
                } else if self.saved_in_place(analysis, v) {
                    // moved into the pullback at the end
                } else if self.unsaved_arrays.borrow().contains(&v) {
                    // no backward statement reads it: an empty `Vec` fills the record's field
                    out.extend(quote!(let #copy = ::core::default::Default::default();));
                } else {
                    out.extend(quote!(let #copy = #private::Save::save(&#name);));
                }
            }
        }
    }

    fn forward_block(
        &self,
        variant: &Variant,
        records: &Records,
        block: Block,
        out: &mut TokenStream,
    ) {
        for &inst in &self.func.block(block).insts {
            let data = self.func.inst(inst);
            let mut operands = self.operands(inst);
            if block == self.func.entry
                && matches!(
                    data.opcode,
                    Opcode::Binary(BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul)
                        | Opcode::Unary(UnaryOp::Neg)
                )
            {
                // an operand saved in place is borrowed, as tensors' and matrices' operators allow
                for (operand, &arg) in operands.iter_mut().zip(&data.args) {
                    if self.saved_in_place(variant.analysis, arg) {
                        *operand = quote!(&#operand);
                    }
                }
            }
            let result = data.results.first().map(|r| self.names.name(*r).clone());
            match &data.opcode {
                Opcode::Const(_) | Opcode::Place(_) => {}
                Opcode::If | Opcode::Match(_) => self.forward_branch(variant, records, inst, out),
                Opcode::ForRange(_) if variant.fused == Some(inst) => {
                    self.fused_loop(variant, records, inst, out)
                }
                Opcode::ForRange(_) if variant.eager.iter().any(|e| e.inst == inst) => {
                    let eager = variant.eager.iter().find(|e| e.inst == inst);
                    if let Some(eager) = eager {
                        self.eager_forward(variant, records, eager, out)
                    }
                }
                Opcode::ForRange(_) | Opcode::While => {
                    self.forward_loop(variant, records, inst, out)
                }
                Opcode::IndexSet => {
                    let (r, a, i, v) = (
                        result.expect("one result"),
                        &operands[0],
                        &operands[1],
                        &operands[2],
                    );
                    out.extend(quote!(let mut #r = #a; #r[#i] = #v;));
                }
                Opcode::IndexAdd { subtract } => {
                    let (r, a, i, v) = (
                        result.expect("one result"),
                        &operands[0],
                        &operands[1],
                        &operands[2],
                    );
                    let op = if *subtract { quote!(-=) } else { quote!(+=) };
                    out.extend(quote!(let mut #r = #a; #r[#i] #op #v;));
                }
                Opcode::Push => {
                    let (r, a, v) = (result.expect("one result"), &operands[0], &operands[1]);
                    out.extend(quote!(let mut #r = #a; #r.push(#v);));
                }
                Opcode::Swap => {
                    let (r, a, i, j) = (
                        result.expect("one result"),
                        &operands[0],
                        &operands[1],
                        &operands[2],
                    );
                    out.extend(quote!(let mut #r = #a; #r.swap(#i, #j);));
                }
                // not differentiated, or its pullbacks rebuilt in the backward pass: the map
                // as written
                Opcode::MapElementwise(k)
                    if !variant.analysis.reversed[inst.index()]
                        || self.func.closures[*k].rebuilt_from.is_some() =>
                {
                    let (y, expr) = (result.expect("one result"), self.inst_expr(inst, &operands));
                    out.extend(quote!(let #y = #expr;));
                }
                Opcode::MapElementwise(k) => {
                    // each element through the lifted closure's pullback, which is kept
                    let (y, m) = (result.expect("one result"), &operands[0]);
                    let captures = &operands[1..];
                    let pullbacks = self.names.name(data.results[1]);
                    let lifted = self.lifted_pullback_fn(*k);
                    out.extend(quote_spanned! {data.span=>
                        let mut #pullbacks = ::std::vec::Vec::with_capacity(#m.len());
                        let #y = #m.map(|element| {
                            let (value, pullback) = #lifted(element #(, #captures)*);
                            #pullbacks.push(pullback);
                            value
                        });
                    });
                }
                Opcode::Call(path) if self.kept_calls.borrow().contains(&inst) => {
                    // the call fills the slot declared in front of the loop, where the
                    // previous iteration's pullback lends its allocations
                    let callee = hidden_reusing_callee(path);
                    let call_name = names::call_pullback(inst.index());
                    let slot = format_ident!("{}_slot", call_name);
                    let pattern = self.results_pattern(inst);
                    out.extend(quote_spanned! {data.span=>
                        let (#pattern, #call_name) = #callee(#(#operands,)* &mut #slot);
                    });
                }
                Opcode::Assert(_) if data.results.is_empty() => {
                    let expr = self.inst_expr(inst, &operands);
                    out.extend(quote!(#expr;));
                }
                _ => {
                    let expr = self.inst_expr(inst, &operands);
                    let pattern = self.results_pattern(inst);
                    out.extend(quote!(let #pattern = #expr;));
                }
            }
            self.save_arrays(variant.analysis, &data.results, out);
        }
    }

    /// Whether loop `inst`'s records are a field of the pullback struct itself (a loop at the
    /// function's top level), rather than of a branch's or an enclosing loop's record.
    fn is_struct_field_record(&self, inst: Inst) -> bool {
        self.func.block(self.func.entry).insts.contains(&inst)
    }

    /// The record stack `field` of the earlier pullback the forward pass may reuse, taken out
    /// of it (see [`names::hidden_reusing_pullback_fn`]).
    fn previous_field(&self, field: &Ident) -> TokenStream {
        let previous = names::previous_pullback();
        quote!(#previous.as_mut().map(|previous| ::core::mem::take(&mut previous.#field)))
    }

    /// Whether the pullback struct holds stacks of records, which a reusing forward pass
    /// takes over from an earlier pullback.
    fn has_record_stacks(&self, analysis: &Analysis, records: &Records) -> bool {
        !records.flat.is_empty()
            || self.func.block(self.func.entry).insts.iter().any(|&inst| {
                records.index.contains_key(&inst)
                    && matches!(
                        self.func.inst(inst).opcode,
                        Opcode::ForRange(_) | Opcode::While
                    )
                    && self.loop_has_fields(analysis, records, inst)
            })
    }

    /// The names of an instruction's results, as the pattern its `let` binds.
    fn results_pattern(&self, inst: Inst) -> TokenStream {
        let results: Vec<TokenStream> = self
            .func
            .inst(inst)
            .results
            .iter()
            .map(|r| {
                let n = self.names.name(*r);
                quote!(#n)
            })
            .collect();
        tuple_pattern(&results)
    }

    fn forward_branch(
        &self,
        variant: &Variant,
        records: &Records,
        inst: Inst,
        out: &mut TokenStream,
    ) {
        let data = self.func.inst(inst);
        let record = records.index.get(&inst).copied();
        let is_if = matches!(data.opcode, Opcode::If);
        let mut pattern_items: Vec<TokenStream> = data
            .results
            .iter()
            .map(|r| {
                let n = self.names.name(*r);
                quote!(#n)
            })
            .collect();
        if let Some(index) = record {
            let field = self.record_field(inst, index);
            pattern_items.push(quote!(#field));
        }
        let ty_path = record.map(|index| self.record_type(inst, index, variant.hidden));
        let arms: Vec<TokenStream> = data
            .arms
            .iter()
            .enumerate()
            .map(|(arm_index, &arm)| {
                let mut body = TokenStream::new();
                self.forward_block(variant, records, arm, &mut body);
                let yields = &self.func.block(arm).yields;
                let mut tail: Vec<TokenStream> = yields
                    .iter()
                    .enumerate()
                    .map(|(k, y)| self.yielded(*y, &yields[k + 1..]))
                    .collect();
                if let Some(enum_name) = &ty_path {
                    let variant_name = names::arm_variant(is_if, arm_index);
                    let inits = self.field_inits(variant.analysis, records, arm);
                    tail.push(quote!(#enum_name::#variant_name { #(#inits),* }));
                }
                let tail = tuple_pattern(&tail);
                quote!({ #body #tail })
            })
            .collect();
        let selector = self.operand(data.args[0]);
        let expr = match &data.opcode {
            Opcode::If => {
                let (then_arm, else_arm) = (&arms[0], &arms[1]);
                quote!(if #selector #then_arm else #else_arm)
            }
            Opcode::Match(pats) => {
                let pats = pats.iter().map(strip_binders);
                quote!(match #selector { #(#pats => #arms)* })
            }
            _ => unreachable!("branches only"),
        };
        let pattern = tuple_pattern(&pattern_items);
        out.extend(quote!(let #pattern = #expr;));
    }

    /// `let mut carrier = init;` for each carried variable of a loop, before it.
    fn declare_carriers(
        &self,
        analysis: &Analysis,
        slots: &[(Value, Value, Value, Value)],
        out: &mut TokenStream,
    ) {
        for &(init, _, _, result) in slots {
            // a carried reference (`cur = &b`) has its referent's inferred type: left to rustc
            let reference = self
                .func
                .def_inst(init)
                .is_some_and(|i| matches!(self.func.inst(i).opcode, Opcode::Ref));
            let (carrier, init) = (self.names.name(result), self.operand(init));
            if reference {
                out.extend(quote!(let mut #carrier = #init;));
            } else {
                out.extend(self.let_mut_typed_as(analysis, result, carrier, init));
            }
        }
    }

    /// `let mut name = init;`, with the type of `v` written out when it is known and owned.
    fn let_mut_typed_as(
        &self,
        analysis: &Analysis,
        v: Value,
        name: &Ident,
        init: TokenStream,
    ) -> TokenStream {
        match &analysis.types[v.index()] {
            Some(ty) if !matches!(ty, syn::Type::Reference(_)) => {
                quote!(let mut #name: #ty = #init;)
            }
            _ => quote!(let mut #name = #init;),
        }
    }

    /// One forward iteration of a loop body: its parameters bound from the carriers, its
    /// statements, and the carriers set to the values it yields.
    fn forward_iteration(
        &self,
        variant: &Variant,
        records: &Records,
        body: Block,
        slots: &[(Value, Value, Value, Value)],
    ) -> TokenStream {
        let mut iteration = TokenStream::new();
        for &(_, param, _, result) in slots {
            let (param, carrier) = (self.names.name(param), self.names.name(result));
            iteration.extend(quote!(let #param = #carrier;));
        }
        let params = &self.func.block(body).params;
        self.save_arrays(variant.analysis, params, &mut iteration);
        self.forward_block(variant, records, body, &mut iteration);
        let nexts: Vec<Value> = slots.iter().map(|s| s.2).collect();
        for (k, &(_, _, next, result)) in slots.iter().enumerate() {
            let carrier = self.names.name(result);
            let next = self.yielded(next, &nexts[k + 1..]);
            iteration.extend(quote!(#carrier = #next;));
        }
        iteration
    }

    fn forward_loop(
        &self,
        variant: &Variant,
        records: &Records,
        inst: Inst,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let data = self.func.inst(inst);
        let layout = self.func.loop_layout(inst).expect("a loop");
        let body = data.arms[0];
        let slots = loop_slots(self.func, inst);
        self.declare_carriers(analysis, &slots, out);
        let record = records.index.get(&inst).map(|&index| {
            let has_fields = self.loop_has_fields(analysis, records, inst);
            (
                self.record_field(inst, index),
                self.record_type(inst, index, variant.hidden),
                has_fields,
            )
        });
        let mut iteration = self.forward_iteration(variant, records, body, &slots);
        let yields = &self.func.block(body).yields;
        let flat = records.flat.contains(&inst);
        let counted = self.range_counted(analysis, records, inst);
        let stack = record
            .as_ref()
            .map(|_| self.record_stack(inst, records.index[&inst]));
        let mut deferred_push = None;
        // the record a closure returns when the loop runs as `stack.extend(range.map(..))`
        let mut returned_record = None;
        let mut record_target = None;
        let extends = matches!(&data.opcode, Opcode::ForRange(range) if !range.breaks)
            && !layout.flag
            && self.carries_only_numbers(analysis, inst);
        match &record {
            Some((field, ty, true)) => {
                let inits = self.field_inits(analysis, records, body);
                let marker = self.marker_type().map(|_| {
                    let (name, private) = (names::marker_field(), private());
                    quote!(#name: #private::PhantomData,)
                });
                let target = if flat {
                    stack.as_ref().expect("a record")
                } else {
                    field
                };
                match self.deferred_record_reads(analysis, records, inst) {
                    Some(chain) => {
                        deferred_push = Some(
                            self.records_read_after_loop(inst, &chain, target, ty, &inits, marker),
                        );
                    }
                    None if extends => {
                        returned_record = Some(quote!(#ty { #(#inits,)* #marker }));
                        record_target = Some(target.clone());
                    }
                    None => iteration.extend(quote!(#target.push(#ty { #(#inits,)* #marker });)),
                }
            }
            Some((field, _, false)) => iteration.extend(quote!(#field += 1;)),
            None => {}
        }
        if layout.flag {
            let flag = self.operand(yields[0]);
            iteration.extend(quote!(if !#flag { break; }));
        }
        match &data.opcode {
            Opcode::ForRange(range) => {
                let iter = range_iterator(range, |k| self.operand(data.args[k]));
                let index = self.names.name(self.func.block(body).params[0]);
                let range_name = format_ident!("range{}", inst.index());
                out.extend(quote!(let #range_name = #iter;));
                match &record {
                    Some((_, _, true)) if flat && counted => {}
                    Some((field, _, true)) if flat => {
                        let stack = stack.as_ref().expect("a record");
                        out.extend(quote!(let #field = #stack.len();));
                    }
                    Some((field, _, true)) if self.is_struct_field_record(inst) => {
                        let (private, previous) = (private(), self.previous_field(field));
                        out.extend(quote!(let mut #field = #private::reused_stack(#previous, ::core::iter::Iterator::size_hint(&#range_name).0);))
                    }
                    Some((field, _, true)) => out.extend(
                        quote!(let mut #field = ::std::vec::Vec::with_capacity(::core::iter::Iterator::size_hint(&#range_name).0);),
                    ),
                    Some((field, _, false)) => out.extend(quote!(let mut #field: usize = 0;)),
                    None => {}
                }
                match (returned_record, record_target) {
                    // the stack's length stays in the extend's local instead of being loaded
                    // and stored through memory by a `push` per iteration
                    (Some(value), Some(target)) => out.extend(quote! {
                        #target.extend(#range_name.map(|#index| { #iteration #value }));
                    }),
                    _ => out.extend(quote!(for #index in #range_name { #iteration })),
                }
                if let Some(extend) = deferred_push {
                    out.extend(extend);
                }
            }
            _ => {
                match &record {
                    Some((_, _, true)) if flat && counted => {}
                    Some((field, _, true)) if flat => {
                        let stack = stack.as_ref().expect("a record");
                        out.extend(quote!(let #field = #stack.len();));
                    }
                    Some((field, _, true)) if self.is_struct_field_record(inst) => {
                        let (private, previous) = (private(), self.previous_field(field));
                        out.extend(quote!(let mut #field = #private::reused_stack(#previous, 0);))
                    }
                    Some((field, _, true)) => {
                        out.extend(quote!(let mut #field = ::std::vec::Vec::new();))
                    }
                    Some((field, _, false)) => out.extend(quote!(let mut #field: usize = 0;)),
                    None => {}
                }
                out.extend(quote!(loop { #iteration }));
            }
        }
        // a nested loop's record keeps how many entries it pushed onto the flat stack
        if let (Some((field, _, true)), true, false) = (&record, flat, counted) {
            let stack = stack.as_ref().expect("a record");
            out.extend(quote!(let #field = #stack.len() - #field;));
        }
    }

    /// Whether every variable loop `inst` carries is a number or a bool, which the closure of
    /// `stack.extend(range.map(|i| ..))` updates in place: a carried array would have to be
    /// moved out of the closure's captures in every iteration.
    fn carries_only_numbers(&self, analysis: &Analysis, inst: Inst) -> bool {
        let number = |v: Value| {
            let i = v.index();
            let Some(ty) = &analysis.types[i] else {
                return false;
            };
            let scalar = ["f32", "f64", "bool"]
                .iter()
                .any(|name| matches!(ty, syn::Type::Path(p) if p.path.is_ident(name)));
            // a generic type other than the function's float type may not be `Copy`
            !(analysis.arrays[i] || analysis.tensors[i] || analysis.matrices[i])
                && (analysis.float.as_ref() == Some(ty)
                    || scalar
                    || crate::analysis::is_integer(analysis, v))
        };
        loop_slots(self.func, inst)
            .iter()
            .all(|&(_, param, _, result)| number(param) && number(result))
    }

    /// The instructions that recompute the saved values of a `for` loop after it has run,
    /// when each of them is an element read `a[i]` of an array defined outside the loop (so
    /// unchanged by it) at an index computed from the loop's index and values defined outside
    /// it, and the loop runs its whole range and records nothing else (GMM's squared norm
    /// `sq += qx[id] * qx[id]` saves `qx[id]`). Such a loop's records are pushed in one
    /// `extend` after it instead of one `push` per iteration: the loop itself then carries no
    /// stack length through memory, and the copy runs as one pass over the array.
    fn deferred_record_reads(
        &self,
        analysis: &Analysis,
        records: &Records,
        inst: Inst,
    ) -> Option<Vec<Inst>> {
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return None;
        };
        let body = data.arms[0];
        let layout = self.func.loop_layout(inst)?;
        if range.breaks || layout.flag || !self.records_in_block(records, body).is_empty() {
            return None;
        }
        let saved = self.saved_in_block(analysis, body);
        if saved.is_empty() {
            return None;
        }
        let mut inside = HashSet::new();
        self.func.walk_insts(body, &mut |i| {
            inside.insert(i);
        });
        // the parameters of the body and of the arms nested in it
        let mut inner_params: HashSet<Value> =
            self.func.block(body).params.iter().copied().collect();
        for &i in &inside {
            for &arm in &self.func.inst(i).arms {
                inner_params.extend(self.func.block(arm).params.iter().copied());
            }
        }
        let index = self.func.block(body).params[0];
        let body_insts = &self.func.block(body).insts;
        let mut chain: HashSet<Inst> = HashSet::new();
        for v in saved {
            let def = self.func.def_inst(v)?;
            let read = self.func.inst(def);
            if !matches!(read.opcode, Opcode::Index)
                || !body_insts.contains(&def)
                || analysis.arrays[v.index()]
                || matches!(analysis.types[v.index()], Some(syn::Type::Reference(_)))
            {
                return None;
            }
            let array = read.args[0];
            let array_outside = self
                .func
                .def_inst(array)
                .map_or(!inner_params.contains(&array), |d| !inside.contains(&d));
            if !array_outside {
                return None;
            }
            // the index is evaluated again after the loop, given the loop's index: only pure
            // arithmetic of the body on it and on values defined outside the loop
            let mut pending = read.args[1..].to_vec();
            while let Some(operand) = pending.pop() {
                if operand == index {
                    continue;
                }
                let Some(operand_def) = self.func.def_inst(operand) else {
                    if inner_params.contains(&operand) {
                        return None;
                    }
                    continue;
                };
                if !inside.contains(&operand_def) {
                    continue;
                }
                let data = self.func.inst(operand_def);
                let pure = matches!(
                    data.opcode,
                    Opcode::Const(_) | Opcode::Binary(_) | Opcode::Unary(_) | Opcode::Cast(_)
                );
                if !pure || !body_insts.contains(&operand_def) || analysis.arrays[operand.index()] {
                    return None;
                }
                chain.insert(operand_def);
                pending.extend(data.args.iter().copied());
            }
            chain.insert(def);
        }
        Some(
            body_insts
                .iter()
                .copied()
                .filter(|i| chain.contains(i))
                .collect(),
        )
    }

    /// `stack.extend(range.map(|i| Record { .. }))` after a loop whose records are element
    /// reads recomputed by `chain` (see [`Self::deferred_record_reads`]).
    fn records_read_after_loop(
        &self,
        inst: Inst,
        chain: &[Inst],
        target: &Ident,
        ty: &Ident,
        inits: &[TokenStream],
        marker: Option<TokenStream>,
    ) -> TokenStream {
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return TokenStream::new();
        };
        let iter = range_iterator(range, |k| self.operand(data.args[k]));
        let index = self.names.name(self.func.block(data.arms[0]).params[0]);
        let mut statements = TokenStream::new();
        for &i in chain {
            if matches!(self.func.inst(i).opcode, Opcode::Const(_)) {
                continue;
            }
            let operands = self.operands(i);
            let expr = self.inst_expr(i, &operands);
            let pattern = self.results_pattern(i);
            statements.extend(quote!(let #pattern = #expr;));
        }
        quote! {
            #target.extend(#iter.map(|#index| {
                #statements
                #ty { #(#inits,)* #marker }
            }));
        }
    }

    /// The loop `_grad` runs with each iteration's backward pass right after its forward
    /// pass, as a hand-written adjoint would, instead of a forward sweep and then a backward
    /// sweep: a top-level `for` loop whose result is the function's output, with nothing after
    /// it to differentiate (so the cotangent of its result is the output's, known before it
    /// runs), whose every active carried value is a sum (`s = s + e`, `s = s - e`, `s` used
    /// nowhere else, so its cotangent is the same in every iteration and the iterations'
    /// backward passes may run in any order), and whose body is straight-line code (no branch,
    /// loop, call of a differentiated function or parameter-set path).
    fn fusable_loop(&self, analysis: &Analysis) -> Option<Inst> {
        let entry = self.func.block(self.func.entry);
        let [output] = entry.yields[..] else {
            return None;
        };
        let l = self.func.def_inst(output)?;
        let data = self.func.inst(l);
        if !matches!(&data.opcode, Opcode::ForRange(range) if !range.breaks)
            || !analysis.reversed[l.index()]
            || !analysis.is_active(output)
        {
            return None;
        }
        let position = entry.insts.iter().position(|&inst| inst == l)?;
        if entry.insts[position + 1..]
            .iter()
            .any(|inst| analysis.reversed[inst.index()])
        {
            return None;
        }
        let body = data.arms[0];
        // (calls of constants, like `T::from(0.5)`, are forward code only)
        let straight = self.func.block(body).insts.iter().all(|&inst| {
            let d = self.func.inst(inst);
            let differentiated_call =
                matches!(d.opcode, Opcode::Call(_)) && analysis.reversed[inst.index()];
            d.arms.is_empty()
                && !differentiated_call
                && !matches!(d.opcode, Opcode::MapElementwise(_) | Opcode::Place(_))
                && d.args.iter().all(|&a| {
                    !self
                        .func
                        .def_inst(a)
                        .is_some_and(|def| matches!(self.func.inst(def).opcode, Opcode::Place(_)))
                })
        });
        // the backward statements read the iteration's values in place: none may be an
        // array the forward statements moved on (`backward` reads its saved copy)
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let saved_array = inside
            .iter()
            .any(|v| analysis.is_saved(*v) && analysis.arrays[v.index()]);
        if !straight
            || saved_array
            || self
                .func
                .block(body)
                .params
                .iter()
                .any(|p| analysis.counters.contains_key(p))
        {
            return None;
        }
        for (_, param, next, result) in loop_slots(self.func, l) {
            if !analysis.is_active(param) && !analysis.is_active(next) {
                continue;
            }
            let scalar = !analysis.arrays[param.index()]
                && !analysis.tensors[param.index()]
                && !analysis.matrices[param.index()];
            let mut next_uses = Vec::new();
            self.uses_in(body, next, &mut next_uses);
            if !scalar
                || !self.is_sum(body, param, next)
                || next_uses != [None]
                || (result != output && analysis.is_active(result))
            {
                return None;
            }
        }
        Some(l)
    }

    /// Whether the carried value `param` of loop body `body` becomes `next` by a sum: plus or
    /// minus terms, one addition or subtraction at a time, each partial sum used only by the
    /// next (`s += a; s -= b;`), possibly in the arms of a branch (`if c { s += a }`), and
    /// `param` used nowhere else. Its cotangent is then the same in every iteration.
    fn is_sum(&self, body: Block, param: Value, next: Value) -> bool {
        let mut param_uses = Vec::new();
        self.uses_in(body, param, &mut param_uses);
        param != next && self.sum_chain_uses(body, body, param, next) == Some(param_uses.len())
    }

    /// If `v` in `block` is `param` plus or minus terms (see [`Context::is_sum`]), how many
    /// times the chain uses `param`; partial sums are counted in `body`.
    fn sum_chain_uses(&self, body: Block, block: Block, param: Value, v: Value) -> Option<usize> {
        let def = self.func.def_inst(v)?;
        if !self.func.block(block).insts.contains(&def) {
            return None;
        }
        let from = |a: Value| {
            if a == param {
                return Some(1);
            }
            let mut uses = Vec::new();
            self.uses_in(body, a, &mut uses);
            if uses.len() != 1 {
                return None;
            }
            self.sum_chain_uses(body, block, param, a)
        };
        let data = self.func.inst(def);
        match data.opcode {
            Opcode::Binary(BinaryOp::Add) => from(data.args[0]).or_else(|| from(data.args[1])),
            Opcode::Binary(BinaryOp::Sub) => from(data.args[0]),
            Opcode::If | Opcode::Match(_) => {
                // every arm adds its terms to the same value from before the branch, which
                // only the arms use (one of them runs)
                let k = data.results.iter().position(|&r| r == v)?;
                let mut base = None;
                for &arm in &data.arms {
                    let y = *self.func.block(arm).yields.get(k)?;
                    let b = self.arm_chain_base(body, arm, y)?;
                    if base.replace(b).is_some_and(|previous| previous != b) {
                        return None;
                    }
                }
                let base = base?;
                if base == param {
                    return Some(data.arms.len());
                }
                let mut uses = Vec::new();
                self.uses_in(body, base, &mut uses);
                if uses.len() != data.arms.len() {
                    return None;
                }
                self.sum_chain_uses(body, block, param, base)
            }
            _ => None,
        }
    }

    /// The value from before a branch that arm `arm` yields as `y` plus or minus terms, one
    /// addition or subtraction at a time, each partial sum used once (`y` itself when the arm
    /// leaves it as it is).
    fn arm_chain_base(&self, body: Block, arm: Block, y: Value) -> Option<Value> {
        let in_arm = |v: Value| {
            self.func
                .def_inst(v)
                .is_some_and(|d| self.func.block(arm).insts.contains(&d))
        };
        if !in_arm(y) {
            return Some(y);
        }
        let from = |a: Value| {
            if !in_arm(a) {
                return Some(a);
            }
            let mut uses = Vec::new();
            self.uses_in(body, a, &mut uses);
            if uses.len() != 1 {
                return None;
            }
            self.arm_chain_base(body, arm, a)
        };
        let data = self.func.inst(self.func.def_inst(y)?);
        match data.opcode {
            Opcode::Binary(BinaryOp::Add) => from(data.args[0]).or_else(|| from(data.args[1])),
            Opcode::Binary(BinaryOp::Sub) => from(data.args[0]),
            _ => None,
        }
    }

    /// The cotangents of outer values a loop's body contributes to, in the forward statements
    /// of `_grad`: the values, in order, and `let (mut d_a, ..) = { .. };` declaring them zero
    /// in a block where the lengths they are sized by are bound by reference, as the backward
    /// pass reads them.
    fn declare_outer_cotangents(
        &self,
        analysis: &Analysis,
        arms: &[Block],
    ) -> (Vec<Value>, TokenStream) {
        let mut scope = HashSet::new();
        let mut declarations = TokenStream::new();
        self.predeclare(analysis, arms, &mut scope, &mut declarations);
        let mut declared: Vec<Value> = scope.into_iter().collect();
        declared.sort_by_key(|v| v.index());
        let lengths = declared.iter().filter_map(|&v| {
            let len = self.full_length(analysis, v)?;
            let name = self.names.name(len);
            (!analysis.constant[len.index()]).then(|| quote!(let #name = &#name;))
        });
        let names: Vec<&Ident> = declared.iter().map(|&v| self.names.cotangent(v)).collect();
        let declaration = quote! {
            let (#(mut #names,)*) = {
                #(#lengths)*
                #declarations
                (#(#names,)*)
            };
        };
        (declared, declaration)
    }

    /// The fused loop of `_grad` (see [`Context::fusable_loop`]): each iteration's forward
    /// statements, then, in a block of their own where the values they read are bound by
    /// reference as the backward pass binds them, the same iteration's backward statements.
    fn fused_loop(&self, variant: &Variant, records: &Records, inst: Inst, out: &mut TokenStream) {
        let analysis = variant.analysis;
        let private = private();
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return self.forward_loop(variant, records, inst, out);
        };
        let body = data.arms[0];
        let (d_output, ret) = (names::output_cotangent(), &self.sig.return_type);
        out.extend(quote!(let #d_output: #ret = #private::one();));
        let (declared, declaration) = self.declare_outer_cotangents(analysis, &data.arms);
        let mut scope: HashSet<Value> = declared.into_iter().collect();
        out.extend(declaration);
        let slots = loop_slots(self.func, inst);
        let carry = |result: Value| format_ident!("{}_carry", self.names.cotangent(result));
        self.declare_carriers(analysis, &slots, out);
        for &(_, param, _, result) in &slots {
            if analysis.is_active(param) {
                // the output's cotangent, in every iteration (`fusable_loop`)
                let c = carry(result);
                out.extend(quote!(let #c = #d_output;));
            }
        }
        let mut iteration = self.forward_iteration(variant, records, body, &slots);

        // this iteration's backward statements, reading its values by reference
        let mut backward = TokenStream::new();
        let index = self.func.block(body).params[0];
        let index_name = self.names.name(index);
        backward.extend(quote!(let #index_name = &#index_name;));
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let mut bound = HashSet::new();
        for &i in &self.func.block(body).insts {
            for &arg in &self.func.inst(i).args {
                let mut root = arg;
                while let Some(def) = self.func.def_inst(root) {
                    match self.func.inst(def).opcode {
                        Opcode::Ref if !inside.contains(&root) => {
                            root = self.func.inst(def).args[0]
                        }
                        _ => break,
                    }
                }
                if inside.contains(&root) || analysis.constant[root.index()] || !bound.insert(root)
                {
                    continue;
                }
                backward.extend(self.reference_binding(analysis, root));
            }
        }
        // the lengths the cotangents of fixed-length arrays are allocated at or checked against
        for &i in &self.func.block(body).insts {
            let data = self.func.inst(i);
            for &v in data.args.iter().chain(&data.results) {
                let Some(len) = self.local_length(analysis, v) else {
                    continue;
                };
                if !inside.contains(&len) && !analysis.constant[len.index()] && bound.insert(len) {
                    backward.extend(self.reference_binding(analysis, len));
                }
            }
        }
        for &v in self.func.block(body).params.iter().skip(1) {
            if analysis.is_saved(v) {
                backward.extend(self.reference_binding(analysis, v));
            }
        }
        for &i in &self.func.block(body).insts {
            for &r in &self.func.inst(i).results {
                if analysis.is_saved(r) {
                    backward.extend(self.reference_binding(analysis, r));
                }
            }
        }
        backward.extend(self.recompute_block(analysis, body));
        let shifted = self
            .shifted_reads(analysis, inst)
            .filter(|shift| scope.contains(&shift.array));
        let mut inner_variant = Variant {
            analysis,
            hidden: variant.hidden,
            shifted: variant.shifted.clone(),
            fused: variant.fused,
            eager: variant.eager.clone(),
        };
        let mut after = TokenStream::new();
        let locals = shifted.as_ref().map(|shift| {
            // forward order: element `i` gets this iteration's `a[i]` contribution and the
            // previous iteration's `a[i + 1]` one; the last `a[i + 1]` goes in after the loop
            let locals = self.shift_locals(analysis, shift, &mut inner_variant, out, &mut backward);
            let (d_array, carried) = (&locals.d_array, &locals.carried);
            let carried_at = format_ident!("{}_shift_at", d_array);
            out.extend(quote! {
                let mut #carried_at: ::core::option::Option<usize> = ::core::option::Option::None;
            });
            // the element after the last one the loop wrote got nothing in the loop either
            let rule = if self.presized_length(analysis, shift.array).is_some()
                || self.fixed_length_param(shift.array)
            {
                quote!(index_set_in_bounds)
            } else {
                self.shift_add_rule(analysis, shift)
            };
            after.extend(quote! {
                if let ::core::option::Option::Some(at) = #carried_at {
                    #private::rules::#rule(&mut #d_array, &at, #carried);
                }
            });
            locals
        });
        let mut inner = scope.clone();
        for &(_, param, next, result) in &slots {
            if analysis.is_active(param) {
                let c = carry(result);
                self.contribute_from(
                    analysis,
                    &mut inner,
                    next,
                    result,
                    quote!(#c),
                    &mut backward,
                );
            }
        }
        self.backward_block(&inner_variant, records, body, &mut inner, &mut backward);
        if let (Some(shift), Some(locals)) = (&shifted, &locals) {
            let ShiftLocals {
                d_array,
                carried,
                at_index,
                at_next,
            } = locals;
            let carried_at = format_ident!("{}_shift_at", d_array);
            let next = self.read_ref(analysis, shift.next_index);
            // the cotangent was declared zero in front of the loop, and element `i` gets no
            // other contribution in it: its first one is written, not added
            let rule = if self.presized_length(analysis, shift.array).is_some()
                || self.fixed_length_param(shift.array)
            {
                quote!(index_set_in_bounds)
            } else {
                quote!(index_add)
            };
            backward.extend(quote! {
                #private::rules::#rule(&mut #d_array, #index_name, #at_index + #carried);
                #carried = #at_next;
                #carried_at = ::core::option::Option::Some(*#next);
            });
        }
        iteration.extend(quote!({ #backward }));
        let iter = range_iterator(range, |k| self.operand(data.args[k]));
        out.extend(quote!(for #index_name in #iter { #iteration }));
        out.extend(after);
        for &(init, param, _, result) in &slots {
            if analysis.is_active(param) && analysis.is_active(init) {
                let c = carry(result);
                self.contribute_from(analysis, &mut scope, init, result, quote!(#c), out);
            }
        }
        *self.fused_scope.borrow_mut() = scope;
    }

    /// The loops `_grad` runs eagerly. A top-level `for` loop over a scratch buffer, like
    /// ADBench's GMM objective (per point: centre it into a buffer, transform it into another,
    /// add the log-sum-exp of the components to a sum), would otherwise save records for every
    /// iteration and replay them all in reverse after the forward pass. When the loop's active
    /// carried values are sums ([`Context::is_sum`], also in the arms of a branch) of which
    /// exactly one is read after the loop, and float arrays read nowhere after it that start
    /// from a value without derivative, the loop's contribution to the gradient is the
    /// gradient of that one sum times its cotangent: `_grad` accumulates the gradient for a
    /// seed of one while the loop runs, each iteration's backward statements right after its
    /// forward ones (its records still in cache), and the backward pass scales it.
    ///
    /// This assumes no cotangent crosses from an iteration to the one before it through the
    /// arrays, that is, each iteration writes every element it reads before reading it, which
    /// only the run can tell: every iteration after the first checks that its arrays'
    /// cotangents are zero, and if not `_grad` starts over with `f_pullback` and `backward`.
    /// That call takes the arguments again, so a loop carrying arrays is eager only when every
    /// argument is a shared reference or a number (`Copy`).
    fn eager_loops(&self, analysis: &Analysis, fused: Option<Inst>) -> Vec<EagerLoop> {
        const NUMBERS: &[&str] = &[
            "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64",
            "u128", "usize", "bool",
        ];
        let generics = crate::args::type_params(self.item);
        let restartable = self.sig.params.iter().all(|p| match &p.ty {
            syn::Type::Reference(r) => r.mutability.is_none(),
            syn::Type::Path(path) => {
                path.qself.is_none()
                    && path.path.get_ident().is_some_and(|id| {
                        generics.contains(id) || NUMBERS.contains(&id.to_string().as_str())
                    })
            }
            _ => false,
        });
        self.func
            .block(self.func.entry)
            .insts
            .iter()
            .filter(|&&l| Some(l) != fused)
            .filter_map(|&l| self.eager_loop(analysis, l, restartable))
            .collect()
    }

    /// Loop `l` as an eager loop of `_grad`, if it is one (see [`Context::eager_loops`]).
    fn eager_loop(&self, analysis: &Analysis, l: Inst, restartable: bool) -> Option<EagerLoop> {
        let data = self.func.inst(l);
        if !matches!(&data.opcode, Opcode::ForRange(range) if !range.breaks)
            || !analysis.reversed[l.index()]
        {
            return None;
        }
        let body = data.arms[0];
        // parameter-set paths write through to outer values
        let mut places = false;
        self.func.walk_insts(body, &mut |i| {
            places |= matches!(self.func.inst(i).opcode, Opcode::Place(_));
        });
        // a counter is counted down from the value it has after the last iteration
        let counted = self.func.block(body).params.iter().any(|p| {
            analysis.counters.contains_key(p)
                || analysis.chained.values().any(|(outer, _)| outer == p)
        });
        if places || counted {
            return None;
        }
        let (mut sum, mut checked) = (None, false);
        for slot in loop_slots(self.func, l) {
            let (init, param, next, result) = slot;
            if !analysis.is_active(param) && !analysis.is_active(next) {
                continue;
            }
            let mut after = Vec::new();
            self.uses_in(self.func.entry, result, &mut after);
            let scalar = !analysis.arrays[param.index()]
                && !analysis.tensors[param.index()]
                && !analysis.matrices[param.index()];
            if scalar {
                let mut next_uses = Vec::new();
                self.uses_in(body, next, &mut next_uses);
                if !self.is_sum(body, param, next) || next_uses != [None] {
                    return None;
                }
                if !after.is_empty() && sum.replace(slot).is_some() {
                    return None;
                }
            } else if analysis.arrays[param.index()]
                && !analysis.tensors[param.index()]
                && !analysis.matrices[param.index()]
                && self.float_elements(analysis, param)
                && after.is_empty()
                && !analysis.is_active(init)
                && restartable
            {
                checked = true;
            } else {
                return None;
            }
        }
        let sum = sum?;
        // the gradient is scaled: the outer values must be numbers or arrays of numbers
        let generics = crate::args::type_params(self.item);
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let mut touched = Vec::new();
        self.active_refs(analysis, body, &mut touched);
        let scalable = touched.iter().filter(|v| !inside.contains(v)).all(|&v| {
            let struct_param = matches!(self.func.value(v).def,
                ValueDef::Param(i) if self.func.param_structs[i]);
            if analysis.tensors[v.index()] || analysis.matrices[v.index()] {
                false
            } else if analysis.arrays[v.index()] {
                self.float_elements(analysis, v)
            } else {
                !struct_param
                    && self.callee_zero(analysis, v).is_none()
                    && analysis.types[v.index()]
                        .as_ref()
                        .is_none_or(|ty| crate::args::is_float_type(ty, &generics))
            }
        });
        scalable.then_some(EagerLoop {
            inst: l,
            sum,
            checked,
        })
    }

    /// The forward statements of an eager loop in `_grad` (see [`Context::eager_loops`]): the
    /// cotangents of the outer values its body reads, declared in front of it; each iteration's
    /// forward statements, its record in a local, and, in a block binding what they read as
    /// the backward pass binds it, its backward statements; the gradient in `loopN_gradient`.
    fn eager_forward(
        &self,
        variant: &Variant,
        records: &Records,
        eager: &EagerLoop,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let private = private();
        let inst = eager.inst;
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return self.forward_loop(variant, records, inst, out);
        };
        let body = data.arms[0];
        let slots = loop_slots(self.func, inst);
        self.declare_carriers(analysis, &slots, out);
        let (declared, declaration) = self.declare_outer_cotangents(analysis, &data.arms);
        let mut run = declaration;
        let carry = |result: Value| format_ident!("{}_carry", self.names.cotangent(result));
        let active: Vec<_> = slots
            .iter()
            .copied()
            .filter(|(_, param, _, _)| analysis.is_active(*param))
            .collect();
        for &(_, param, _, result) in &active {
            let c = carry(result);
            let initial = if result == eager.sum.3 {
                let carrier = self.names.name(result);
                quote!(#private::one_like(&#carrier))
            } else {
                self.zero_in_forward(analysis, param)
            };
            run.extend(self.let_mut_typed_as(analysis, param, &c, initial));
        }

        // forward: the flat stacks of the loops inside start empty in every iteration
        let mut nested = Vec::new();
        self.nested_loops(body, true, &mut nested);
        let stacks: Vec<Ident> = records
            .flat
            .iter()
            .filter(|inst| nested.contains(inst))
            .map(|&inst| self.record_stack(inst, records.index[&inst]))
            .collect();
        // the calls of the body run through their pullbacks, kept for its backward statements
        *self.kept_calls.borrow_mut() = self
            .func
            .block(body)
            .insts
            .iter()
            .copied()
            .filter(|&i| {
                matches!(self.func.inst(i).opcode, Opcode::Call(_)) && analysis.reversed[i.index()]
            })
            .collect();
        *self.unsaved_arrays.borrow_mut() = self.read_only_by_kept_calls(analysis, body);
        let mut kept: Vec<Inst> = self.kept_calls.borrow().iter().copied().collect();
        kept.sort_by_key(|i| i.index());
        let kept_calls: Vec<Ident> = kept
            .iter()
            .map(|&i| names::call_pullback(i.index()))
            .collect();
        let call_slots: Vec<Ident> = kept_calls
            .iter()
            .map(|call| format_ident!("{}_slot", call))
            .collect();
        run.extend(quote!(#(let mut #call_slots = ::core::option::Option::None;)*));
        let mut iteration = quote!(#(#stacks.clear();)*);
        iteration.extend(self.forward_iteration(variant, records, body, &slots));
        let record = records
            .index
            .get(&inst)
            .filter(|_| self.loop_has_fields(analysis, records, inst))
            .map(|&index| {
                (
                    self.record_type(inst, index, variant.hidden),
                    format_ident!("record{}", inst.index()),
                )
            });
        if let Some((ty, record)) = &record {
            let inits = self.field_inits(analysis, records, body);
            let marker = self.marker_type().map(|_| {
                let name = names::marker_field();
                quote!(#name: #private::PhantomData,)
            });
            // typed: in a generic function only the marker may mention the type parameters
            let ty_args = self.struct_ty_args();
            iteration.extend(quote!(let #record: #ty #ty_args = #ty { #(#inits,)* #marker };));
        }
        self.unsaved_arrays.borrow_mut().clear();

        // backward, for this iteration
        let index_name = self.names.name(self.func.block(body).params[0]);
        let mut backward = quote!(let #index_name = &#index_name;);
        backward.extend(self.outer_bindings(analysis, body, &declared));
        if let Some((ty, record)) = &record {
            let bindings = self.field_bindings(analysis, records, body);
            backward.extend(quote!(let #ty { #(#bindings,)* .. } = &#record;));
        }
        for stack in &stacks {
            let cursor = format_ident!("{}_cursor", stack);
            backward.extend(quote! {
                let #stack = &#stack;
                let mut #cursor = #stack.len();
            });
        }
        backward.extend(self.recompute_block(analysis, body));
        let mut inner: HashSet<Value> = declared.iter().copied().collect();
        for &(_, _, next, result) in &active {
            if analysis.is_active(next) {
                let c = carry(result);
                self.contribute_from(
                    analysis,
                    &mut inner,
                    next,
                    result,
                    quote!(#c),
                    &mut backward,
                );
            }
        }
        let inner_variant = Variant {
            analysis,
            hidden: variant.hidden,
            shifted: variant.shifted.clone(),
            fused: None,
            eager: Vec::new(),
        };
        self.backward_block(&inner_variant, records, body, &mut inner, &mut backward);
        self.kept_calls.borrow_mut().clear();
        let mut crossed = Vec::new();
        let mut reset = TokenStream::new();
        for &(_, param, _, result) in &active {
            let c = carry(result);
            if inner.contains(&param) {
                let d = self.names.cotangent(param);
                backward.extend(quote!(#c = #d;));
                if analysis.arrays[param.index()] {
                    crossed.push(quote!(!#private::all_zero(&#c)));
                    let zero = self.zero_in_forward(analysis, param);
                    reset.extend(quote!(#c = #zero;));
                }
            } else {
                let zero = self.zero_of(analysis, param);
                backward.extend(quote!(#c = #zero;));
            }
        }
        if eager.checked && !crossed.is_empty() {
            // a cotangent into the first iteration goes to the arrays' initial values, which
            // have none; into any other, the two-sweep pass must carry it
            let later = format_ident!("loop{}_later", inst.index());
            let pullback = self.with_generic_args(&names::pullback_fn(&self.func.name));
            let args = self.sig.params.iter().map(|p| &p.name);
            run.extend(quote!(let mut #later = false;));
            iteration.extend(quote! {
                let crossed = { #backward #(#crossed)||* };
                if crossed {
                    if #later {
                        let (value, pullback) = #pullback(#(#args),*);
                        return (value, pullback.backward(#private::one()));
                    }
                    #reset
                }
                #later = true;
            });
        } else {
            iteration.extend(quote!({ #backward }));
        }
        let iter = range_iterator(range, |k| self.operand(data.args[k]));
        run.extend(quote!(for #index_name in #iter { #iteration }));
        let gradient = format_ident!("loop{}_gradient", inst.index());
        let names = declared.iter().map(|&v| self.names.cotangent(v));
        out.extend(quote!(let #gradient = { #run (#(#names,)*) };));
    }

    /// The saved `Vec`s of an eager loop's body that only the calls whose pullbacks are kept
    /// read (directly or through a borrow), besides being carried to the next iteration: the
    /// copy its record would take for replaying those calls is never read.
    fn read_only_by_kept_calls(&self, analysis: &Analysis, body: Block) -> HashSet<Value> {
        let kept = self.kept_calls.borrow();
        let block = self.func.block(body);
        // a kept call, or an element read whose element is saved itself
        let kept_use = |u: &Option<Inst>| {
            u.is_some_and(|i| {
                let data = self.func.inst(i);
                kept.contains(&i)
                    || matches!(data.opcode, Opcode::Index)
                        && !analysis.matrices[data.args[0].index()]
                        && !analysis.recompute[data.results[0].index()]
            })
        };
        let mut candidates: Vec<Value> = block.params.clone();
        for &inst in &block.insts {
            candidates.extend(&self.func.inst(inst).results);
        }
        candidates
            .into_iter()
            .filter(|&v| {
                let is_vec = analysis.types[v.index()].as_ref().is_some_and(|ty| {
                    matches!(ty, syn::Type::Path(_))
                        && matches!(crate::args::array_type(ty), Some((ArrayKind::Vec, _)))
                });
                if !analysis.is_saved(v) || !analysis.arrays[v.index()] || !is_vec {
                    return false;
                }
                let mut uses = Vec::new();
                self.uses_in(body, v, &mut uses);
                let yielded = block.yields.iter().filter(|&&y| y == v).count();
                let through_kept = uses.iter().filter(|u| {
                    kept_use(u)
                        || u.is_some_and(|i| {
                            let data = self.func.inst(i);
                            let mut borrows = Vec::new();
                            if matches!(data.opcode, Opcode::Ref) {
                                self.uses_in(body, data.results[0], &mut borrows);
                            }
                            !borrows.is_empty() && borrows.iter().all(kept_use)
                        })
                });
                through_kept.count() + yielded == uses.len()
            })
            .collect()
    }

    /// In a backward block inside `_grad`'s forward statements: every value from outside loop
    /// body `body` its backward statements read, bound by reference under its name as the
    /// backward pass binds it (with the lengths the cotangents `declared` are sized by).
    fn outer_bindings(&self, analysis: &Analysis, body: Block, declared: &[Value]) -> TokenStream {
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let mut roots = Vec::new();
        let visit = |v: Value, roots: &mut Vec<Value>| {
            let mut root = v;
            while let Some(def) = self.func.def_inst(root) {
                match self.func.inst(def).opcode {
                    Opcode::Ref if !inside.contains(&root) => root = self.func.inst(def).args[0],
                    _ => break,
                }
            }
            if !inside.contains(&root) && !analysis.constant[root.index()] && !roots.contains(&root)
            {
                roots.push(root);
            }
        };
        self.func.walk_insts(body, &mut |i| {
            let data = self.func.inst(i);
            for &arg in &data.args {
                visit(arg, &mut roots);
            }
            for &arm in &data.arms {
                for &y in &self.func.block(arm).yields {
                    visit(y, &mut roots);
                }
            }
        });
        for &y in &self.func.block(body).yields {
            visit(y, &mut roots);
        }
        for &v in declared {
            if let Some(len) = self.full_length(analysis, v) {
                visit(len, &mut roots);
            }
        }
        // the lengths the cotangents of fixed-length arrays are allocated at or checked
        // against, wherever the body's backward statements declare them
        let arrays: Vec<Value> = roots.clone();
        for v in arrays {
            if let Some(len) = self.local_length(analysis, v) {
                visit(len, &mut roots);
            }
        }
        self.func.walk_insts(body, &mut |i| {
            for &r in &self.func.inst(i).results {
                if let Some(len) = self.local_length(analysis, r) {
                    visit(len, &mut roots);
                }
            }
        });
        roots
            .into_iter()
            .map(|v| self.reference_binding(analysis, v))
            .collect()
    }

    /// The backward statements of an eager loop: the gradient it accumulated for a seed of
    /// one, times the cotangent of its sum, added to the outer values' cotangents.
    fn eager_backward(
        &self,
        analysis: &Analysis,
        eager: &EagerLoop,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let private = private();
        let (init, _, _, result) = eager.sum;
        if !scope.contains(&result) {
            return;
        }
        let d_sum = self.names.cotangent(result);
        let data = self.func.inst(eager.inst);
        let (declared, _) = self.declare_outer_cotangents(analysis, &data.arms);
        let gradient = format_ident!("loop{}_gradient", eager.inst.index());
        let parts: Vec<Ident> = declared
            .iter()
            .map(|&v| format_ident!("{}_loop{}", self.names.cotangent(v), eager.inst.index()))
            .collect();
        out.extend(quote!(let (#(#parts,)*) = #gradient;));
        for (&v, part) in declared.iter().zip(&parts) {
            let scaled = if analysis.arrays[v.index()] {
                quote!(#private::scale_elements(#part, #d_sum))
            } else {
                quote!((#part * #d_sum))
            };
            if scope.contains(&v) {
                self.contribute(analysis, scope, v, scaled, out);
            } else {
                // the accumulated gradient has the cotangent's full length already
                let d = self.names.cotangent(v);
                out.extend(quote!(let mut #d = #scaled;));
                scope.insert(v);
            }
        }
        if analysis.is_active(init) {
            self.contribute(analysis, scope, init, quote!(#d_sum), out);
        }
    }

    /// `let v = &v;`: a forward value bound by reference under its name, as the backward pass
    /// reads it (a borrowed array parameter as the slice itself).
    fn reference_binding(&self, analysis: &Analysis, v: Value) -> TokenStream {
        let name = self.names.name(v);
        let borrowed_param = matches!(self.func.value(v).def, ValueDef::Param(i)
            if matches!(self.func.params[i].ty, syn::Type::Reference(_)));
        if borrowed_param && analysis.arrays[v.index()] {
            quote!(let #name = &*#name;)
        } else if let Some(syn::Type::Reference(_)) = &analysis.types[v.index()] {
            quote!(let #name = #name;)
        } else {
            quote!(let #name = &#name;)
        }
    }

    // ---- backward pass ----

    /// A reference to a forward value in the backward pass.
    fn read_ref(&self, analysis: &Analysis, v: Value) -> TokenStream {
        if let Some(inst) = self.func.def_inst(v) {
            match &self.func.inst(inst).opcode {
                Opcode::Ref => return self.read_ref(analysis, self.func.inst(inst).args[0]),
                Opcode::Place(steps) => {
                    let (root, path) = self.place_in_backward(analysis, inst, steps);
                    return quote!(&#root #path);
                }
                _ => {}
            }
        }
        if analysis.constant[v.index()] {
            let e = self.constant_expr(v);
            quote!(&#e)
        } else {
            let n = self.names.name(v);
            quote!(#n)
        }
    }

    /// The saved root of a place and its path, with indices read in the backward pass.
    fn place_in_backward(
        &self,
        analysis: &Analysis,
        inst: Inst,
        steps: &[crate::ir::PlaceStep],
    ) -> (Ident, TokenStream) {
        let args = &self.func.inst(inst).args;
        let operands: Vec<TokenStream> = args
            .iter()
            .map(|&a| {
                let r = self.read_ref(analysis, a);
                quote!(*#r)
            })
            .collect();
        (
            self.names.name(args[0]).clone(),
            place_path(steps, &operands),
        )
    }

    /// A forward value as the argument of a replayed call: borrowed where the forward pass
    /// borrowed it, an owned copy otherwise.
    fn read_argument(&self, analysis: &Analysis, v: Value) -> TokenStream {
        if analysis.constant[v.index()] {
            return self.constant_expr(v);
        }
        let borrowed_param = matches!(self.func.value(v).def, ValueDef::Param(i) if matches!(self.func.params[i].ty, syn::Type::Reference(_)));
        let is_ref_inst = self
            .func
            .def_inst(v)
            .is_some_and(|i| matches!(self.func.inst(i).opcode, Opcode::Ref));
        if is_ref_inst
            || borrowed_param
            || matches!(analysis.types[v.index()], Some(syn::Type::Reference(_)))
        {
            return self.read_ref(analysis, v);
        }
        // a place (`m.b`) is read where it is used, never bound to a name
        let r = self.read_ref(analysis, v);
        quote!(::core::clone::Clone::clone(#r))
    }

    /// Recomputes, at the start of a block's reversal, the values of that block the backward
    /// pass reads but the forward pass did not save. Each is bound to a reference, like the
    /// saved values.
    fn recompute_block(&self, analysis: &Analysis, block: Block) -> TokenStream {
        let mut out = TokenStream::new();
        for &inst in &self.func.block(block).insts {
            let data = self.func.inst(inst);
            for &r in &data.results {
                if !analysis.recompute[r.index()] {
                    continue;
                }
                let is_call = matches!(data.opcode, Opcode::Call(_));
                let operands: Vec<TokenStream> = data
                    .args
                    .iter()
                    .map(|&a| {
                        if is_call {
                            self.read_argument(analysis, a)
                        } else if analysis.constant[a.index()] {
                            self.constant_expr(a)
                        } else {
                            let r = self.read_ref(analysis, a);
                            quote!((*#r))
                        }
                    })
                    .collect();
                let name = self.names.name(r);
                let expr = match self.row_reads.borrow().get(&inst) {
                    Some(RowRead {
                        primal: Some(row),
                        offset,
                        ..
                    }) => quote!(#row[#offset]),
                    _ => self.inst_expr(inst, &operands),
                };
                out.extend(quote!(let #name = &(#expr);));
            }
        }
        out
    }

    /// For a slice or `Vec` parameter whose length the backward pass reads: that length.
    /// Its cotangent starts at its full length, so that no contribution has to grow it (its
    /// gradient is fitted to that length anyway).
    fn presized_length(&self, analysis: &Analysis, v: Value) -> Option<Value> {
        let ValueDef::Param(i) = self.func.value(v).def else {
            return None;
        };
        let kind = crate::args::array_type(&self.func.params[i].ty).map(|(k, _)| k);
        let len = self.func.param_lens.get(i).copied().flatten()?;
        (matches!(kind, Some(ArrayKind::Vec)) && analysis.needed[len.index()]).then_some(len)
    }

    /// Whether `v` is a parameter of fixed length (`&[T; N]`), whose cotangent, an array,
    /// always has every element.
    fn fixed_length_param(&self, v: Value) -> bool {
        let ValueDef::Param(i) = self.func.value(v).def else {
            return false;
        };
        matches!(
            crate::args::array_type(&self.func.params[i].ty),
            Some((ArrayKind::Fixed(_), _))
        )
    }

    /// The rule adding a shifted read's carried contribution into its array's cotangent:
    /// the element was read in the forward pass, so its index is in bounds of a cotangent
    /// allocated at the full length, and a growing update there would hide that length from
    /// the optimiser (the final `fit` would stay a real resize).
    fn shift_add_rule(&self, analysis: &Analysis, shift: &ShiftedReads) -> TokenStream {
        if self.full_length(analysis, shift.array).is_some() {
            quote!(index_add_in_bounds)
        } else {
            quote!(index_add)
        }
    }

    /// For a local `Vec` of floats whose length never changes (see [`Analysis::lengths`]):
    /// that length, which its cotangent is allocated at.
    fn local_length(&self, analysis: &Analysis, v: Value) -> Option<Value> {
        let len = analysis.lengths[v.index()]?;
        (analysis.needed[len.index()] && self.float_elements(analysis, v)).then_some(len)
    }

    /// The length an array's cotangent has whenever it exists, for a parameter (see
    /// [`Self::presized_length`]) or a local array of fixed length: element updates index it
    /// directly instead of growing it.
    fn full_length(&self, analysis: &Analysis, v: Value) -> Option<Value> {
        self.presized_length(analysis, v).or_else(|| {
            self.local_length(analysis, v)
                .filter(|_| !self.lazy_cotangents.borrow().contains(&v))
        })
    }

    /// [`Self::zero_of`] among `_grad`'s forward statements, where values are bound by value
    /// rather than by reference as in the backward pass.
    fn zero_in_forward(&self, analysis: &Analysis, v: Value) -> TokenStream {
        let zero = self.zero_of(analysis, v);
        match self.full_length(analysis, v) {
            Some(len) if !analysis.constant[len.index()] => {
                let name = self.names.name(len);
                quote!({
                    let #name = &#name;
                    #zero
                })
            }
            _ => zero,
        }
    }

    fn zero_of(&self, analysis: &Analysis, v: Value) -> TokenStream {
        let private = private();
        if analysis.arrays[v.index()] {
            if let Some(len) = self.full_length(analysis, v) {
                let len = if analysis.constant[len.index()] {
                    self.constant_expr(len)
                } else {
                    let len = self.read_ref(analysis, len);
                    quote!(*#len)
                };
                return quote!(::std::vec![#private::zero(); #len]);
            }
            if let Some(zero) = self.call_result_zero(v) {
                return quote!(#zero());
            }
            return quote!(#private::Cotangent::zero());
        }
        if let Some(zero) = self.callee_zero(analysis, v) {
            return quote!(#zero());
        }
        if let Some(ty) = self.struct_type(analysis, v) {
            return quote!(<#ty as #private::ZeroCotangent>::zero_cotangent());
        }
        quote!(#private::zero())
    }

    /// The type of a value known to be a user struct (a parameter set returned by a call and
    /// written down, `let s: State = step(..)`), which is not `Copy` and has no scalar zero.
    fn struct_type(&self, analysis: &Analysis, v: Value) -> Option<syn::Type> {
        // parameters are saved and zeroed as parameter sets or constants
        if matches!(self.func.value(v).def, ValueDef::Param(_)) {
            return None;
        }
        let ty = analysis.types[v.index()].as_ref()?;
        let generics = crate::args::type_params(self.item);
        let is_struct = !analysis.arrays[v.index()]
            && !analysis.tensors[v.index()]
            && !analysis.matrices[v.index()]
            && !crate::args::is_float_type(ty, &generics)
            && crate::args::array_type(ty).is_none()
            && crate::args::is_user_enum_like(ty);
        is_struct.then(|| ty.clone())
    }

    /// The zero of an array a differentiated callee returned, which has the callee's output
    /// type (`[f64; 2]` or a `Vec`): the array's type here is only inferred from its uses,
    /// and the callee's `backward` takes its own type.
    fn call_result_zero(&self, v: Value) -> Option<syn::ExprPath> {
        let data = self.func.inst(self.func.def_inst(v)?);
        match (&data.opcode, &data.results[..]) {
            (Opcode::Call(path), [_]) => Some(hidden_zero_callee(path)),
            _ => None,
        }
    }

    /// The result of a call whose type nothing here tells (a `Vec` passed on, never indexed)
    /// is whatever the callee returns: its zero comes from the callee.
    fn callee_zero(&self, analysis: &Analysis, v: Value) -> Option<syn::ExprPath> {
        if analysis.arrays[v.index()] || analysis.types[v.index()].is_some() {
            return None;
        }
        let data = self.func.inst(self.func.def_inst(v)?);
        match (&data.opcode, &data.results[..]) {
            (Opcode::Call(path), [_]) => Some(hidden_zero_callee(path)),
            _ => None,
        }
    }

    /// `m̄` for `y = m.map(closure)` whose closure's pullback is rebuilt per element from
    /// `m`'s and `y`'s elements (`from` names its fields) rather than kept: the lifted
    /// closure's `backward` applied to each element of `d`.
    fn rebuilt_map_pullback(
        &self,
        analysis: &Analysis,
        inst: Inst,
        k: usize,
        from: &crate::ir::RebuiltFrom,
        d: &TokenStream,
    ) -> TokenStream {
        let private = private();
        let data = self.func.inst(inst);
        let pullback =
            self.with_generic_args(&names::pullback_struct(&self.func.closures[k].function));
        let marker = self.marker_type().map(|_| {
            let name = names::marker_field();
            quote!(#name: #private::PhantomData,)
        });
        let element = from.element.as_ref().map(|f| quote!(#f: element,));
        let result = from.result.as_ref().map(|f| quote!(#f: result,));
        let build = quote!(#pullback { #element #result #marker });
        let linalg = quote!(#private::rules::linalg);
        match (&from.element, &from.result) {
            (Some(_), Some(_)) => {
                let (m, y) = (
                    self.read_ref(analysis, data.args[0]),
                    self.read_ref(analysis, data.results[0]),
                );
                quote!(#linalg::map_elementwise2_d0((#m).as_slice(), (#y).as_slice(), #d, |&element, &result, d| #build.backward(d)))
            }
            (Some(_), None) => {
                let m = self.read_ref(analysis, data.args[0]);
                quote!(#linalg::map_elementwise_d0((#m).as_slice(), #d, |&element, d| #build.backward(d)))
            }
            _ => {
                let y = self.read_ref(analysis, data.results[0]);
                quote!(#linalg::map_elementwise_d0((#y).as_slice(), #d, |&result, d| #build.backward(d)))
            }
        }
    }

    /// The public pullback of the k-th lifted closure, with the function's generic arguments.
    fn lifted_pullback_fn(&self, k: usize) -> TokenStream {
        self.with_generic_args(&names::pullback_fn(&self.func.closures[k].function))
    }

    /// `name`, or `name::<T, N>` with the function's type and const parameters.
    fn with_generic_args(&self, name: &Ident) -> TokenStream {
        let args: Vec<&Ident> = self
            .fn_generics()
            .params
            .iter()
            .filter_map(|p| match p {
                GenericParam::Type(t) => Some(&t.ident),
                GenericParam::Const(c) => Some(&c.ident),
                GenericParam::Lifetime(_) => None,
            })
            .collect();
        if args.is_empty() {
            quote!(#name)
        } else {
            quote!(#name::<#(#args),*>)
        }
    }

    /// The closures of `map` calls, lifted to scalar functions and differentiated like any
    /// other: `fn __autodiff_map_f_0(v: T) -> T { body }` and its generated items. Only those
    /// whose map has backward work in some variant are lifted, so an unused closure cannot
    /// fail.
    pub fn lifted_closures(&self, variants: &[&Analysis]) -> TokenStream {
        let mut out = TokenStream::new();
        self.func.walk_insts(self.func.entry, &mut |inst| {
            let data = self.func.inst(inst);
            let Opcode::MapElementwise(k) = data.opcode else {
                return;
            };
            let reversed = variants.iter().any(|a| a.reversed[inst.index()]);
            if !reversed && !self.lifted_maps.contains(&inst) {
                return;
            }
            let Some(item) = self.lifted_item(variants, inst, k) else {
                return;
            };
            if !reversed {
                // called by the forward pass only: the function as written
                out.extend(item);
                return;
            }
            if syn::parse2::<syn::ItemFn>(item.clone()).is_err() {
                // a body that parsed as a closure's but not as a function's (`|v| crate`)
                out.extend(
                    syn::Error::new_spanned(
                        &self.func.closures[k].closure.body,
                        "this closure body is not an expression; write the value it computes, such as `v * v`",
                    )
                    .to_compile_error(),
                );
                return;
            }
            out.extend(crate::expand::differentiate(TokenStream::new(), item));
        });
        out
    }

    /// The `map` instructions whose closure the forward pass calls as its lifted function:
    /// all whose lifted function can be written, when the generated items add a `Float`
    /// bound (see [`Context::lifted_maps`]); none otherwise.
    pub fn maps_through_lifted(&self, variants: &[&Analysis]) -> HashSet<Inst> {
        let mut maps = HashSet::new();
        if self.added_float_bounds.is_empty() {
            return maps;
        }
        self.func.walk_insts(self.func.entry, &mut |inst| {
            if let Opcode::MapElementwise(k) = self.func.inst(inst).opcode {
                let item = self.lifted_item(variants, inst, k);
                if item.is_some_and(|item| syn::parse2::<syn::ItemFn>(item).is_ok()) {
                    maps.insert(inst);
                }
            }
        });
        maps
    }

    /// The function closure `k` of map instruction `inst` is lifted to: its element, then the
    /// variables it reads, as parameters (`fn __autodiff_map_f_0(v: f64, scale: f64) -> f64`),
    /// with the types the analysis found.
    fn lifted_item(&self, variants: &[&Analysis], inst: Inst, k: usize) -> Option<TokenStream> {
        let data = self.func.inst(inst);
        let closure = &self.func.closures[k];
        let ty = closure.param_ty.clone().or_else(|| {
            variants
                .iter()
                .find_map(|a| a.elements[data.args[0].index()].clone())
        })?;
        let mut capture_params = Vec::new();
        for (name, v) in closure.captures.iter().zip(&data.args[1..]) {
            let capture_ty = variants.iter().find_map(|a| a.types[v.index()].clone())?;
            capture_params.push(quote!(#name: #capture_ty));
        }
        let mut generics = self.fn_generics().clone();
        generics.params = generics
            .params
            .into_iter()
            .filter(|p| !matches!(p, GenericParam::Lifetime(_)))
            .collect();
        // the closure's body is the user's code: with the added `Float` bound its float
        // methods would be ambiguous (its own expansion adds the bound to its generated items)
        if let Some(where_clause) = &mut generics.where_clause {
            where_clause.predicates = std::mem::take(&mut where_clause.predicates)
                .into_iter()
                .filter(|p| {
                    !matches!(p, syn::WherePredicate::Type(t)
                        if matches!(&t.bounded_ty, syn::Type::Path(tp)
                            if self.added_float_bounds.iter().any(|a| tp.path.is_ident(a)))
                            && t.bounds.len() == 1
                            && matches!(t.bounds.first(), Some(syn::TypeParamBound::Trait(b))
                                if b.path.segments.last().is_some_and(|s| s.ident == "Float")))
                })
                .collect();
        }
        let (name, param, body) = (&closure.function, &closure.param, &closure.closure.body);
        let where_clause = &generics.where_clause;
        let cfgs = self.cfg_attrs();
        Some(quote! {
            #[doc(hidden)]
            #(#cfgs)*
            #[allow(dead_code, non_snake_case, clippy::all)]
            fn #name #generics (#param: #ty #(, #capture_params)*) -> #ty #where_clause {
                #body
            }
        })
    }

    /// The backward pass of `y = m.map(closure)` whose closure reads variables: each element's
    /// pullback gives the element's cotangent and those of the captured numbers, which are
    /// summed over the elements (`s̄ = Σₖ ∂yₖ/∂s ȳₖ`).
    fn map_with_captures_backward(
        &self,
        analysis: &Analysis,
        scope: &mut HashSet<Value>,
        inst: Inst,
        k: usize,
        d: &TokenStream,
        out: &mut TokenStream,
    ) {
        let private = private();
        let data = self.func.inst(inst);
        let active = |i: usize| analysis.is_active(data.args[i]);
        // which parameters of the lifted function carry a derivative: as its own expansion
        // classifies them
        let Some(lifted) = self
            .lifted_item(&[analysis], inst, k)
            .and_then(|item| syn::parse2::<ItemFn>(item).ok())
        else {
            return;
        };
        let mut errors = crate::errors::Errors::default();
        let Some(signature) = crate::args::signature(&lifted, &mut errors) else {
            return;
        };
        let floats: Vec<usize> = signature
            .params
            .iter()
            .enumerate()
            .filter(|(_, p)| p.role == ParamRole::Float)
            .map(|(i, _)| i)
            .collect();
        if !floats.iter().any(|&i| active(i)) {
            return;
        }
        // one name per float parameter of the lifted function, in its gradient's order
        let sums: Vec<(usize, Ident)> = floats
            .iter()
            .filter(|&&i| i > 0 && active(i))
            .map(|&i| (i, format_ident!("d_map{}_capture{}", inst.index(), i)))
            .collect();
        let pattern: Vec<TokenStream> = floats
            .iter()
            .map(|&i| {
                if i == 0 {
                    quote!(d_element)
                } else if let Some((_, sum)) = sums.iter().find(|(j, _)| *j == i) {
                    let local = format_ident!("{}_here", sum);
                    quote!(#local)
                } else {
                    quote!(_)
                }
            })
            .collect();
        let pattern = if pattern.len() == 1 {
            quote!(#(#pattern)*)
        } else {
            quote!((#(#pattern,)*))
        };
        let adds: Vec<TokenStream> = sums
            .iter()
            .map(|(_, sum)| {
                let local = format_ident!("{}_here", sum);
                quote!(#sum = #sum + #local;)
            })
            .collect();
        let element = if floats.first() == Some(&0) {
            quote!(d_element)
        } else {
            quote!(d)
        };
        let pullbacks = self.read_ref(analysis, data.results[1]);
        let sum_names: Vec<&Ident> = sums.iter().map(|(_, s)| s).collect();
        let sum_types: Vec<&syn::Type> = sums
            .iter()
            .filter_map(|(i, _)| analysis.types[data.args[*i].index()].as_ref())
            .collect();
        let d_m = format_ident!("d_map{}_element", inst.index());
        // one statement binding all of them from `d`, so that `jacobian`'s lanes each get
        // their own sums
        out.extend(quote! {
            let (#d_m, #(#sum_names,)*) = {
                #(let mut #sum_names: #sum_types = #private::zero();)*
                let #d_m = #private::rules::linalg::map_elementwise_d0(#pullbacks, #d, |pullback, d| {
                    let #pattern = pullback.backward(d);
                    #(#adds)*
                    #element
                });
                (#d_m, #(#sum_names,)*)
            };
        });
        if active(0) {
            self.contribute(analysis, scope, data.args[0], quote!(#d_m), out);
        }
        for (i, sum) in &sums {
            self.contribute(analysis, scope, data.args[*i], quote!(#sum), out);
        }
    }

    /// `__autodiff_zero_output_f`, see [`zero_output_item`].
    pub fn zero_output(&self) -> TokenStream {
        zero_output_item(self.item, self.sig, &self.cfg_attrs())
    }

    fn declare_zero(
        &self,
        analysis: &Analysis,
        v: Value,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let d = self.names.cotangent(v);
        let zero = self.zero_of(analysis, v);
        let typed_by_callee = analysis.arrays[v.index()]
            && self.full_length(analysis, v).is_none()
            && self.call_result_zero(v).is_some();
        match &analysis.types[v.index()] {
            Some(ty) if !matches!(ty, syn::Type::Reference(_)) && !typed_by_callee => {
                out.extend(quote!(let mut #d: #ty = #zero;))
            }
            _ => out.extend(quote!(let mut #d = #zero;)),
        }
        scope.insert(v);
    }

    /// Adds `expr` to `v`'s cotangent, declaring it with the first contribution. A local
    /// array of fixed length gets its full length then: `expr` may come from anywhere (a
    /// callee's cotangent, an array of another length).
    fn contribute(
        &self,
        analysis: &Analysis,
        scope: &mut HashSet<Value>,
        v: Value,
        expr: TokenStream,
        out: &mut TokenStream,
    ) {
        let expr = match self.full_length(analysis, v) {
            Some(len) if !scope.contains(&v) && self.presized_length(analysis, v).is_none() => {
                let private = private();
                let len = self.read_ref(analysis, len);
                quote!(#private::rules::presized(#expr, #len))
            }
            _ => expr,
        };
        self.contribute_moved(analysis, scope, v, expr, out);
    }

    /// Adds `expr`, the cotangent of `source`, to `v`'s cotangent: moved without a check of
    /// its length when both are versions of one array of fixed length (an element write, a
    /// loop's carried value, a branch's result).
    fn contribute_from(
        &self,
        analysis: &Analysis,
        scope: &mut HashSet<Value>,
        v: Value,
        source: Value,
        expr: TokenStream,
        out: &mut TokenStream,
    ) {
        let same_length = analysis.lengths[source.index()].is_some()
            && analysis.lengths[source.index()] == analysis.lengths[v.index()]
            && self.full_length(analysis, source).is_some();
        if same_length {
            self.contribute_moved(analysis, scope, v, expr, out);
        } else {
            self.contribute(analysis, scope, v, expr, out);
        }
    }

    /// Adds `expr` to `v`'s cotangent, declaring it with the first contribution as it is.
    fn contribute_moved(
        &self,
        analysis: &Analysis,
        scope: &mut HashSet<Value>,
        v: Value,
        expr: TokenStream,
        out: &mut TokenStream,
    ) {
        let d = self.names.cotangent(v);
        if !scope.contains(&v)
            && analysis.arrays[v.index()]
            && self.presized_length(analysis, v).is_some()
        {
            // a parameter's cotangent is full length from its first contribution on (which
            // may be a shorter vector), so element updates can index it directly
            self.declare_zero(analysis, v, scope, out);
        }
        if scope.contains(&v) && self.callee_zero(analysis, v).is_some() {
            // the zero of a generic callee's result has a type only the contributions fix,
            // and rustc resolves a method call before that: a function call unifies first
            let private = private();
            out.extend(quote!(#private::accumulate_with(&mut #d, #expr, |d, c| d.accumulate(c));));
            return;
        }
        if scope.contains(&v) {
            let parameter_set =
                matches!(self.func.value(v).def, ValueDef::Param(i) if self.func.param_structs[i]);
            if parameter_set {
                let private = private();
                out.extend(quote!(#private::Differentiable::accumulate_from(&mut #d, &#expr);));
            } else {
                // `Cotangent` (containers) or `ScalarCotangent` (floats), whichever applies
                let _ = analysis;
                out.extend(quote!(#d.accumulate(#expr);));
            }
        } else {
            out.extend(quote!(let mut #d = #expr;));
            scope.insert(v);
        }
    }

    fn active_refs(&self, analysis: &Analysis, block: Block, out: &mut Vec<Value>) {
        for &inst in &self.func.block(block).insts {
            let data = self.func.inst(inst);
            if analysis.reversed[inst.index()] {
                out.extend(data.args.iter().copied().filter(|v| analysis.is_active(*v)));
            }
            for &arm in &data.arms {
                self.active_refs(analysis, arm, out);
            }
        }
        out.extend(
            self.func
                .block(block)
                .yields
                .iter()
                .copied()
                .filter(|v| analysis.is_active(*v)),
        );
    }

    /// Declares, before a reversed branch or loop, the cotangents of outer values its body
    /// contributes to, so the contributions outlive the body's scope.
    fn predeclare(
        &self,
        analysis: &Analysis,
        arms: &[Block],
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        for v in self.outer_refs(analysis, arms) {
            if !scope.contains(&v) {
                self.declare_zero(analysis, v, scope, out);
            }
        }
    }

    /// The active values defined outside `arms` that they use (with repeats).
    fn outer_refs(&self, analysis: &Analysis, arms: &[Block]) -> Vec<Value> {
        let mut inside = HashSet::new();
        let mut touched = Vec::new();
        for &arm in arms {
            self.func.defined_in(arm, &mut inside);
            self.active_refs(analysis, arm, &mut touched);
        }
        touched.retain(|v| !inside.contains(v));
        touched
    }

    /// [`Self::predeclare`] for the arms of branch `inst`. An array of fixed length that an
    /// arm passes on whole (yields it, starts a loop with it, writes an element of it) gets an
    /// empty cotangent instead of a full one, so that the arm's contribution moves in rather
    /// than adds; until [`Self::end_lazy`] its elements use the growing rules. Returns those
    /// arrays, each with whether some arm may leave its cotangent empty.
    fn predeclare_arms(
        &self,
        analysis: &Analysis,
        inst: Inst,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) -> Vec<(Value, bool)> {
        let data = self.func.inst(inst);
        let arms = &data.arms;
        let mut lazy = Vec::new();
        for v in self.outer_refs(analysis, arms) {
            if scope.contains(&v) {
                continue;
            }
            if self.local_length(analysis, v).is_some()
                && !self.lazy_cotangents.borrow().contains(&v)
                && arms.iter().any(|&arm| self.used_whole(arm, v))
            {
                let filled = arms
                    .iter()
                    .all(|&arm| self.arm_fills(analysis, arm, &data.results, scope, v));
                self.lazy_cotangents.borrow_mut().insert(v);
                lazy.push((v, !filled));
            }
            self.declare_zero(analysis, v, scope, out);
        }
        lazy
    }

    /// Whether the backward pass of `arm` surely moves a full cotangent into outer array `v`'s:
    /// `v` reaches a value the arm yields (into a result with a cotangent) through element
    /// writes and loops at the arm's top level, each of which hands its result's cotangent on
    /// whole.
    fn arm_fills(
        &self,
        analysis: &Analysis,
        arm: Block,
        results: &[Value],
        scope: &HashSet<Value>,
        v: Value,
    ) -> bool {
        let block = self.func.block(arm);
        let mut seeded: HashSet<Value> = results
            .iter()
            .zip(&block.yields)
            .filter(|(r, y)| scope.contains(r) && analysis.is_active(**y))
            .map(|(_, y)| *y)
            .collect();
        for &inst in block.insts.iter().rev() {
            if !analysis.reversed[inst.index()] {
                continue;
            }
            let data = self.func.inst(inst);
            match &data.opcode {
                Opcode::IndexSet | Opcode::IndexAdd { .. } | Opcode::Swap
                    if seeded.contains(&data.results[0]) =>
                {
                    seeded.insert(data.args[0]);
                }
                Opcode::ForRange(_) | Opcode::While => {
                    for (init, _, _, result) in loop_slots(self.func, inst) {
                        if seeded.contains(&result) {
                            seeded.insert(init);
                        }
                    }
                }
                _ => {}
            }
        }
        seeded.contains(&v)
    }

    /// After a branch: the cotangents [`Self::predeclare_arms`] declared empty are full length
    /// again, brought to it where an arm may have left one empty.
    fn end_lazy(&self, analysis: &Analysis, lazy: &[(Value, bool)], out: &mut TokenStream) {
        let private = private();
        for &(v, maybe_empty) in lazy {
            self.lazy_cotangents.borrow_mut().remove(&v);
            if let (true, Some(len)) = (maybe_empty, self.local_length(analysis, v)) {
                let (d, len) = (self.names.cotangent(v), self.read_ref(analysis, len));
                out.extend(quote!(let mut #d = #private::rules::presized(#d, #len);));
            }
        }
    }

    /// Whether `block` uses array `v` other than by reading an element.
    fn used_whole(&self, block: Block, v: Value) -> bool {
        let mut whole = self.func.block(block).yields.contains(&v);
        self.func.walk_insts(block, &mut |inst| {
            let data = self.func.inst(inst);
            let element_read =
                matches!(data.opcode, Opcode::Index) && data.args[1..].iter().all(|&a| a != v);
            if !element_read && data.args.contains(&v) {
                whole = true;
            }
            for &arm in &data.arms {
                if self.func.block(arm).yields.contains(&v) {
                    whole = true;
                }
            }
        });
        whole
    }

    fn backward_block(
        &self,
        variant: &Variant,
        records: &Records,
        block: Block,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let private = private();
        for &inst in self.func.block(block).insts.iter().rev() {
            if !analysis.reversed[inst.index()] || variant.fused == Some(inst) {
                continue;
            }
            if let Some(eager) = variant.eager.iter().find(|e| e.inst == inst) {
                self.eager_backward(analysis, eager, scope, out);
                continue;
            }
            let data = self.func.inst(inst);
            if matches!(data.opcode, Opcode::If | Opcode::Match(_)) {
                self.backward_branch(variant, records, inst, scope, out);
                continue;
            }
            if self.is_loop(inst) {
                self.backward_loop(variant, records, inst, scope, out);
                continue;
            }
            if !data.results.iter().any(|r| scope.contains(r)) {
                continue;
            }
            let active = |i: usize| analysis.is_active(data.args[i]);
            let read = |i: usize| self.read_ref(analysis, data.args[i]);
            let result = data.results[0];
            let d = self.names.cotangent(result);
            let cotangent_row = self
                .row_reads
                .borrow()
                .get(&inst)
                .and_then(|read| Some((read.cotangent.clone()?, read.offset.clone())));
            match &data.opcode {
                Opcode::Call(path) => {
                    let callee = hidden_callee(path);
                    let call_name = names::call_pullback(inst.index());
                    let args: Vec<TokenStream> = data
                        .args
                        .iter()
                        .map(|a| self.read_argument(analysis, *a))
                        .collect();
                    let d_results: Vec<TokenStream> = data
                        .results
                        .iter()
                        .map(|r| {
                            if scope.contains(r) {
                                let d = self.names.cotangent(*r);
                                quote!(#d)
                            } else {
                                self.zero_of(analysis, *r)
                            }
                        })
                        .collect();
                    let d_out = tuple_pattern(&d_results);
                    let d_args: Vec<Ident> = (0..data.args.len())
                        .map(|i| format_ident!("{}_d{}", call_name, i))
                        .collect();
                    let span = data.span;
                    if !self.kept_calls.borrow().contains(&inst) {
                        match self.replay_slots.borrow_mut().last_mut() {
                            Some(slots) => {
                                let slot = format_ident!("{}_slot", call_name);
                                let reusing = hidden_reusing_callee(path);
                                out.extend(quote_spanned! {span=>
                                    let (_, #call_name) = #reusing(#(#args,)* &mut #slot);
                                });
                                slots.push(slot);
                            }
                            None => out.extend(quote_spanned! {span=>
                                let (_, #call_name) = #callee(#(#args),*);
                            }),
                        }
                    }
                    let mut targets: Vec<Option<Value>> = Vec::new();
                    for i in 0..data.args.len() {
                        // one `&mut` borrow per cotangent: an array passed twice takes the
                        // second gradient as a value
                        let target = self
                            .call_sink_target(analysis, scope, inst, i)
                            .filter(|t| !targets.contains(&Some(*t)));
                        targets.push(target);
                    }
                    if targets.iter().all(Option::is_none) {
                        out.extend(quote_spanned! {span=>
                            let (#(#d_args,)*) = #call_name.__backward_all(#d_out);
                        });
                    } else {
                        // the callee adds into the cotangents of the arrays passed by reference
                        let into = names::backward_into();
                        let sinks = targets.iter().enumerate().map(|(i, target)| match target {
                            Some(v) => {
                                let d = self.names.cotangent(*v);
                                quote!(&mut #d)
                            }
                            None if active(i) => quote!(#private::ReturnGradient),
                            None => quote!(#private::DropGradient),
                        });
                        out.extend(quote_spanned! {span=>
                            let (#(#d_args,)*) = #call_name.#into(#d_out, #(#sinks),*);
                        });
                    }
                    for (i, d_arg) in d_args.iter().enumerate() {
                        if active(i) && targets[i].is_none() {
                            // the callee may take a fixed array as a slice: a `Vec` gradient
                            let d = match self.fixed_array_type(analysis, data.args[i]) {
                                Some(ty) => {
                                    quote!(#private::rules::fixed_array_cotangent::<#ty, _>(#d_arg))
                                }
                                None => quote!(#d_arg),
                            };
                            self.contribute(analysis, scope, data.args[i], d, out);
                        }
                    }
                }
                Opcode::Place(steps) => {
                    // into the root parameter set's cotangent, at the same path
                    let root = data.args[0];
                    if analysis.is_active(root)
                        && !scope.contains(&root)
                        && self.struct_type(analysis, root).is_some()
                    {
                        // a struct a callee returned: its cotangent starts here
                        self.declare_zero(analysis, root, scope, out);
                    } else if analysis.is_active(root)
                        && !scope.contains(&root)
                        && analysis.matrices[root.index()]
                    {
                        // a coordinate of a fixed-size vector (`v.x`): its cotangent starts as
                        // the zero vector, whose coordinates exist
                        if let Some(ty) = &analysis.types[root.index()] {
                            let ty = crate::args::cotangent_type(ty);
                            let d_root = self.names.cotangent(root);
                            out.extend(quote!(let mut #d_root: #ty = #private::Cotangent::zero();));
                            scope.insert(root);
                        }
                    }
                    if analysis.is_active(root) && scope.contains(&root) {
                        let d_root = self.names.cotangent(root);
                        let operands: Vec<TokenStream> = data
                            .args
                            .iter()
                            .map(|&a| {
                                let r = self.read_ref(analysis, a);
                                quote!(*#r)
                            })
                            .collect();
                        let path = place_path(steps, &operands);
                        out.extend(quote!(#d_root #path.accumulate(#d);));
                    }
                }
                Opcode::Copy(CopyKind::ToVec) => {
                    // the conversion's target is the source's cotangent type, named when known
                    let d = match &analysis.types[data.args[0].index()] {
                        Some(ty) if !matches!(ty, syn::Type::Reference(_)) => {
                            quote!(#private::rules::to_vec_d0::<_, #ty>(#d))
                        }
                        _ => quote!(#private::rules::to_vec_d0(#d)),
                    };
                    self.contribute(analysis, scope, data.args[0], d, out)
                }
                Opcode::Ref | Opcode::Deref | Opcode::Copy(_) => {
                    self.contribute(analysis, scope, data.args[0], quote!(#d), out)
                }
                Opcode::MakeStruct(_, fields) => {
                    // each field of the struct's cotangent, moved out, to that field's value
                    for (k, field) in fields.iter().enumerate() {
                        if active(k) {
                            self.contribute(analysis, scope, data.args[k], quote!(#d.#field), out);
                        }
                    }
                }
                Opcode::MapElementwise(k) if !self.func.closures[*k].captures.is_empty() => {
                    self.map_with_captures_backward(analysis, scope, inst, *k, &quote!(#d), out)
                }
                Opcode::MapElementwise(k) => {
                    if active(0) {
                        let d_m = match &self.func.closures[*k].rebuilt_from {
                            Some(from) => {
                                self.rebuilt_map_pullback(analysis, inst, *k, from, &quote!(#d))
                            }
                            None => {
                                let pullbacks = self.read_ref(analysis, data.results[1]);
                                quote!(#private::rules::linalg::map_elementwise_d0(#pullbacks, #d, |pullback, d| pullback.backward(d)))
                            }
                        };
                        self.contribute(analysis, scope, data.args[0], d_m, out)
                    }
                }
                Opcode::Index if variant.shifted.contains_key(&inst) => {
                    let local = &variant.shifted[&inst];
                    out.extend(quote!(#local = #d;));
                }
                Opcode::Index if cotangent_row.is_some() => {
                    // the forward pass read this element, so it is in the row
                    if let Some((row, offset)) = &cotangent_row {
                        out.extend(
                            quote!(#private::rules::index_add_in_bounds(&mut *#row, &#offset, #d);),
                        );
                    }
                }
                Opcode::Index => {
                    if !scope.contains(&data.args[0]) {
                        self.declare_zero(analysis, data.args[0], scope, out);
                    }
                    let (d_array, i) = (self.names.cotangent(data.args[0]), read(1));
                    if analysis.matrices[data.args[0].index()] {
                        let m = read(0);
                        out.extend(
                            quote!(#private::rules::linalg::index_add(&mut #d_array, #m, #i, #d);),
                        );
                    } else if self.full_length(analysis, data.args[0]).is_some()
                        && self.float_elements(analysis, data.args[0])
                    {
                        // the forward pass read this element, so it is in bounds
                        out.extend(
                            quote!(#private::rules::index_add_in_bounds(&mut #d_array, #i, #d);),
                        );
                    } else {
                        out.extend(quote!(#private::rules::index_add(&mut #d_array, #i, #d);));
                    }
                }
                Opcode::Slice => {
                    if !scope.contains(&data.args[0]) {
                        self.declare_zero(analysis, data.args[0], scope, out);
                    }
                    let (d_array, start) = (self.names.cotangent(data.args[0]), read(1));
                    out.extend(quote!(#private::rules::slice_add(&mut #d_array, #start, #d);));
                }
                Opcode::IndexSet => {
                    // the overwritten element gets nothing: its cotangent goes to the written
                    // value or nowhere, never to the old version of the array
                    let i = read(1);
                    let taken = if self.full_length(analysis, result).is_some() {
                        quote!(#private::rules::index_take_in_bounds(&mut #d, #i))
                    } else {
                        quote!(#private::rules::index_take(&mut #d, #i))
                    };
                    if active(2) {
                        self.contribute(analysis, scope, data.args[2], taken, out);
                    } else {
                        out.extend(quote!(let _ = #taken;));
                    }
                    if active(0) {
                        self.contribute_from(
                            analysis,
                            scope,
                            data.args[0],
                            result,
                            quote!(#d),
                            out,
                        );
                    }
                }
                Opcode::IndexAdd { subtract } => {
                    // every element passes through; the added value gets the element's
                    // cotangent (negated for `-=`)
                    let i = read(1);
                    let in_bounds = self.full_length(analysis, result).is_some();
                    let rule = match (*subtract, in_bounds) {
                        (true, false) => quote!(index_sub_d2),
                        (false, false) => quote!(index_add_d2),
                        (true, true) => quote!(index_sub_d2_in_bounds),
                        (false, true) => quote!(index_add_d2_in_bounds),
                    };
                    if active(2) {
                        let element = quote!(#private::rules::#rule(&#d, #i));
                        self.contribute(analysis, scope, data.args[2], element, out);
                    }
                    if active(0) {
                        self.contribute_from(
                            analysis,
                            scope,
                            data.args[0],
                            result,
                            quote!(#d),
                            out,
                        );
                    }
                }
                Opcode::Push => {
                    let len = read(2);
                    let taken = quote!(#private::rules::pop_take(&mut #d, #len));
                    if active(1) {
                        self.contribute(analysis, scope, data.args[1], taken, out);
                    } else {
                        out.extend(quote!(#taken;));
                    }
                    if active(0) {
                        self.contribute(analysis, scope, data.args[0], quote!(#d), out);
                    }
                }
                Opcode::Swap => {
                    let (i, j) = (read(1), read(2));
                    out.extend(quote!(#private::rules::swap(&mut #d, #i, #j);));
                    if active(0) {
                        self.contribute_from(
                            analysis,
                            scope,
                            data.args[0],
                            result,
                            quote!(#d),
                            out,
                        );
                    }
                }
                Opcode::VecFill | Opcode::ArrayFill(_) => {
                    if active(0) {
                        self.contribute(
                            analysis,
                            scope,
                            data.args[0],
                            quote!(#private::rules::sum_all(&#d)),
                            out,
                        );
                    }
                }
                // each argument takes its element of the cotangent (`new` takes a matrix's
                // in row-major order)
                Opcode::ArrayLiteral { .. } | Opcode::MatrixNew(_) => {
                    let rule = match data.opcode {
                        Opcode::MatrixNew(_) => quote!(#private::rules::linalg::new_d),
                        _ => quote!(#private::rules::element),
                    };
                    for (k, &elem) in data.args.iter().enumerate() {
                        if analysis.is_active(elem) {
                            self.contribute(analysis, scope, elem, quote!(#rule(&#d, #k)), out);
                        }
                    }
                }
                // `a + b`, `a - b` of two tensors both differentiated: both cotangents from
                // one rule, which hands `ȳ` itself to the operand of the output's shape
                _ if data.args.len() == 2
                    && active(0)
                    && active(1)
                    && crate::analysis::tensor_variant(self.func, analysis, inst).is_some_and(
                        |p| {
                            std::ptr::eq(p, &crate::primitives::tensor::ADD)
                                || std::ptr::eq(p, &crate::primitives::tensor::SUB)
                        },
                    ) =>
                {
                    let joint = match crate::analysis::tensor_variant(self.func, analysis, inst) {
                        Some(p) if std::ptr::eq(p, &crate::primitives::tensor::SUB) => {
                            quote!(sub_d01)
                        }
                        _ => quote!(add_d01),
                    };
                    let (a, b) = (
                        self.read_ref(analysis, data.args[0]),
                        self.read_ref(analysis, data.args[1]),
                    );
                    let parts = format_ident!("{}_parts", d.to_string());
                    out.extend(quote! {
                        let #parts = #private::rules::tensor::#joint(#a, #b, #d);
                    });
                    self.contribute(analysis, scope, data.args[0], quote!(#parts.0), out);
                    self.contribute(analysis, scope, data.args[1], quote!(#parts.1), out);
                }
                _ => {
                    let has_rule = |i: usize| {
                        matches!(data.opcode, Opcode::Cast(_))
                            || rule_for(self.func, analysis, inst, i).is_some()
                    };
                    let borrows = |i: usize| {
                        rule_for(self.func, analysis, inst, i)
                            .is_some_and(crate::primitives::borrows_cotangent)
                    };
                    // the rules that only read the cotangent first, so that it is lent to them
                    let mut active_args: Vec<usize> = (0..data.args.len())
                        .filter(|&i| active(i) && has_rule(i))
                        .collect();
                    active_args.sort_by_key(|&i| !borrows(i));
                    let consuming = active_args.iter().filter(|&&i| !borrows(i)).count();
                    let mut consumed = 0;
                    for &i in &active_args {
                        let arg = data.args[i];
                        // a container cotangent is lent to the rules that only read it, and
                        // copied for every other one but the last
                        let d = if borrows(i) {
                            quote!(&#d)
                        } else {
                            consumed += 1;
                            if analysis.arrays[result.index()] && consumed < consuming {
                                quote!(::core::clone::Clone::clone(&#d))
                            } else {
                                quote!(#d)
                            }
                        };
                        let expr = if let Opcode::Cast(_) = data.opcode {
                            quote!(#private::rules::cast_d0(#d))
                        } else {
                            // an argument without a rule (an integer exponent) passes no derivative
                            let Some(rule) = rule_for(self.func, analysis, inst, i) else {
                                continue;
                            };
                            let path: TokenStream =
                                rule.path.parse().expect("rule paths are paths");
                            let reads: Vec<TokenStream> = rule
                                .reads
                                .iter()
                                .filter_map(|r| match r {
                                    Read::Arg(j) => Some(self.read_ref(analysis, data.args[*j])),
                                    Read::Result => Some(self.read_ref(analysis, result)),
                                    Read::Sibling => crate::analysis::sibling(self.func, inst)
                                        .map(|v| self.read_ref(analysis, v)),
                                    // the tensor, or the dimensions kept in its place
                                    Read::Shape(j) => Some(self.read_ref(analysis, data.args[*j])),
                                })
                                .collect();
                            quote!(#private::rules::#path(#(#reads,)* #d))
                        };
                        self.contribute(analysis, scope, arg, expr, out);
                    }
                }
            }
        }
    }

    fn backward_branch(
        &self,
        variant: &Variant,
        records: &Records,
        inst: Inst,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let data = self.func.inst(inst);
        let Some(&index) = records.index.get(&inst) else {
            return self.backward_replayed_branch(variant, records, inst, scope, out);
        };
        let lazy = self.predeclare_arms(analysis, inst, scope, out);
        let is_if = matches!(data.opcode, Opcode::If);
        let enum_name = self.record_type(inst, index, variant.hidden);
        let field = self.record_field(inst, index);
        let mut arms = Vec::new();
        for (arm_index, &arm) in data.arms.iter().enumerate() {
            let body = self.backward_arm(variant, records, inst, arm, scope);
            let variant_name = names::arm_variant(is_if, arm_index);
            let bindings = self.field_bindings(analysis, records, arm);
            arms.push(quote!(#enum_name::#variant_name { #(#bindings,)* .. } => { #body }));
        }
        if self.marker_type().is_some() {
            arms.push(quote!(#enum_name::__Marker(_, never) => match *never {},));
        }
        out.extend(quote!(match #field { #(#arms)* }));
        self.end_lazy(analysis, &lazy, out);
    }

    /// The backward pass of one arm of a branch: its recomputed values, the cotangents of the
    /// branch's results handed to the values the arm yields, then its instructions reversed.
    fn backward_arm(
        &self,
        variant: &Variant,
        records: &Records,
        inst: Inst,
        arm: Block,
        scope: &HashSet<Value>,
    ) -> TokenStream {
        let analysis = variant.analysis;
        let data = self.func.inst(inst);
        let mut arm_scope = scope.clone();
        let mut body = self.recompute_block(analysis, arm);
        for (r, y) in data.results.iter().zip(&self.func.block(arm).yields) {
            if scope.contains(r) && analysis.is_active(*y) {
                let d = self.names.cotangent(*r);
                self.contribute_from(analysis, &mut arm_scope, *y, *r, quote!(#d), &mut body);
            }
        }
        self.backward_block(variant, records, arm, &mut arm_scope, &mut body);
        body
    }

    /// The backward pass of an `if` without a record: its condition evaluated again.
    fn backward_replayed_branch(
        &self,
        variant: &Variant,
        records: &Records,
        inst: Inst,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let data = self.func.inst(inst);
        let lazy = self.predeclare_arms(analysis, inst, scope, out);
        let arms: Vec<TokenStream> = data
            .arms
            .iter()
            .map(|&arm| self.backward_arm(variant, records, inst, arm, scope))
            .collect();
        let condition = self.read_ref(analysis, data.args[0]);
        let (then_arm, else_arm) = (&arms[0], &arms[1]);
        out.extend(quote!(if *#condition { #then_arm } else { #else_arm }));
        self.end_lazy(analysis, &lazy, out);
    }

    fn backward_loop(
        &self,
        variant: &Variant,
        records: &Records,
        inst: Inst,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let private = private();
        let data = self.func.inst(inst);
        let body = data.arms[0];
        // a loop without a record replays its range (see `records`)
        let index = records.index.get(&inst).copied();
        let field = index.map(|index| self.record_field(inst, index));
        self.predeclare(analysis, &data.arms, scope, out);
        let slots: Vec<_> = loop_slots(self.func, inst)
            .into_iter()
            .filter(|(_, param, _, _)| analysis.is_active(*param))
            .collect();
        let carry = |result: Value| format_ident!("{}_carry", self.names.cotangent(result));
        for &(_, param, _, result) in &slots {
            let c = carry(result);
            let initial = if scope.contains(&result) {
                let d = self.names.cotangent(result);
                quote!(#d)
            } else {
                self.zero_of(analysis, param)
            };
            out.extend(self.let_mut_typed_as(analysis, param, &c, initial));
        }
        // a carried integer that an inner loop's counter continues is counted down through
        // every reversed iteration, from this loop's result
        for &param in &self.func.block(body).params {
            let chained = analysis.chained.values().find(|(outer, _)| *outer == param);
            if let Some(&(_, result)) = chained {
                let chain = format_ident!("{}_chain", self.names.name(param));
                let result = self.read_ref(analysis, result);
                out.extend(quote!(let mut #chain = *#result;));
            }
        }
        // counters are counted down from the loop's result, one step per reversed iteration
        let mut iteration = TokenStream::new();
        let mut chains_after = TokenStream::new();
        for &param in &self.func.block(body).params {
            if let Some(&(step, result)) = analysis.counters.get(&param) {
                let name = self.names.name(param);
                let counter = format_ident!("{}_countdown", name);
                let step = self.constant_expr(step);
                match analysis.chained.get(&param) {
                    Some(&(outer, _)) => {
                        let chain = format_ident!("{}_chain", self.names.name(outer));
                        out.extend(quote!(let mut #counter = #chain;));
                        chains_after.extend(quote!(#chain = #counter;));
                    }
                    None => {
                        let result = self.read_ref(analysis, result);
                        out.extend(quote!(let mut #counter = *#result;));
                    }
                }
                iteration.extend(quote! {
                    #counter = #counter - #step;
                    let #name = &#counter;
                });
            }
        }
        let shifted = self
            .shifted_reads(analysis, inst)
            .filter(|shift| scope.contains(&shift.array));
        let plan = self.row_plan(analysis, inst, scope, shifted.as_ref());
        if let Some(plan) = &plan {
            self.row_reads
                .borrow_mut()
                .extend(plan.reads.iter().cloned());
        }
        iteration.extend(self.recompute_block(analysis, body));
        let mut inner_variant = Variant {
            analysis,
            hidden: variant.hidden,
            shifted: variant.shifted.clone(),
            fused: variant.fused,
            eager: variant.eager.clone(),
        };
        let locals = shifted.as_ref().map(|shift| {
            self.shift_locals(analysis, shift, &mut inner_variant, out, &mut iteration)
        });
        let mut inner = scope.clone();
        for &(_, _, next, result) in &slots {
            if analysis.is_active(next) {
                let c = carry(result);
                self.contribute_from(
                    analysis,
                    &mut inner,
                    next,
                    result,
                    quote!(#c),
                    &mut iteration,
                );
            }
        }
        self.replay_slots.borrow_mut().push(Vec::new());
        self.backward_block(&inner_variant, records, body, &mut inner, &mut iteration);
        let replay_slots = {
            let mut frames = self.replay_slots.borrow_mut();
            let slots = frames.pop().unwrap_or_default();
            match frames.last_mut() {
                Some(outer) => {
                    outer.extend(slots);
                    Vec::new()
                }
                None => slots,
            }
        };
        out.extend(quote!(#(let mut #replay_slots = ::core::option::Option::None;)*));
        if let (Some(shift), Some(locals)) = (&shifted, &locals) {
            // element `i + 1` is final: this iteration's contribution and the previous
            // (reversed) iteration's `a[i]` contribution
            let ShiftLocals {
                d_array,
                carried,
                at_index,
                at_next,
            } = locals;
            let next = self.read_ref(analysis, shift.next_index);
            let rule = self.shift_add_rule(analysis, shift);
            iteration.extend(quote! {
                #private::rules::#rule(&mut #d_array, #next, #at_next + #carried);
                #carried = #at_index;
            });
        }
        for &(_, param, _, result) in &slots {
            let c = carry(result);
            let value = if inner.contains(&param) {
                let d = self.names.cotangent(param);
                quote!(#d)
            } else {
                self.zero_of(analysis, param)
            };
            iteration.extend(quote!(#c = #value;));
        }
        // a value passed on that the next record holds as its parameter: read from there, or
        // from the loop's result for the last iteration (the first one reversed)
        let mut from_next_record = TokenStream::new();
        for &(_, param, next, result) in &loop_slots(self.func, inst) {
            if self.held_by_next_record(analysis, next) == Some((param, result)) {
                let (next, param) = (self.names.name(next), self.names.name(param));
                let held = format_ident!("{}_from_next_record", next);
                let result = self.read_ref(analysis, result);
                out.extend(quote!(let mut #held = #result;));
                from_next_record.extend(quote!(let #next = #held;));
                iteration.extend(quote!(#held = #param;));
            }
        }
        let iteration = quote!(#from_next_record #iteration);
        // the reversed iterations run over the index, or over the offset into the rows
        let replayed_index = self
            .replayed_index(analysis, inst)
            .map(|(i, range)| match &plan {
                Some(RowPlan {
                    start,
                    trip,
                    offset,
                    ..
                }) => (
                    offset.clone(),
                    quote!((0..#trip).rev()),
                    quote!(let #i = &(#start + #offset);),
                ),
                None => (i.clone(), range, quote!(let #i = &#i;)),
            });
        let mut looped = TokenStream::new();
        match (index, field, replayed_index) {
            (Some(index), Some(field), replayed_index)
                if self.loop_has_fields(analysis, records, inst) =>
            {
                let ty = self.record_type(inst, index, variant.hidden);
                let bindings = self.field_bindings(analysis, records, body);
                let record = format_ident!("record{}", inst.index());
                // a nested loop's records are the last `field` entries of its flat stack not
                // yet replayed
                if records.flat.contains(&inst) {
                    let stack = self.record_stack(inst, index);
                    let cursor = format_ident!("{}_cursor", stack);
                    let count = match self.replayed_trip_count(analysis, inst) {
                        Some(count) => count,
                        None => quote!(*#field),
                    };
                    out.extend(quote! {
                        let #field = &#stack[#cursor - #count..#cursor];
                        #cursor -= #field.len();
                    });
                }
                match replayed_index {
                    Some((i, range, bind)) => looped.extend(quote! {
                        for (#record, #i) in #field.iter().rev().zip(#range) {
                            let #ty { #(#bindings,)* .. } = #record;
                            #bind
                            #iteration
                        }
                    }),
                    None => looped.extend(quote! {
                        for #record in #field.iter().rev() {
                            let #ty { #(#bindings,)* .. } = #record;
                            #iteration
                        }
                    }),
                }
            }
            (_, _, Some((i, range, bind))) => looped.extend(quote! {
                for #i in #range {
                    #bind
                    #iteration
                }
            }),
            (_, Some(field), None) => looped.extend(quote!(for _ in 0..*#field { #iteration })),
            // `records` keeps a record for every loop whose range cannot be replayed
            (_, None, None) => {}
        }
        match &plan {
            Some(plan) => {
                let RowPlan {
                    start, trip, rows, ..
                } = plan;
                let (first, end) = (
                    self.range_bound(analysis, inst, 0),
                    self.range_bound(analysis, inst, 1),
                );
                out.extend(quote! {
                    let #start = #first;
                    let #trip = ::core::iter::ExactSizeIterator::len(&(#start..#end));
                    if #trip != 0 {
                        #rows
                        #looped
                    }
                });
                let mut row_reads = self.row_reads.borrow_mut();
                for (read, _) in &plan.reads {
                    row_reads.remove(read);
                }
            }
            None => out.extend(looped),
        }
        out.extend(chains_after);
        if let (Some(shift), Some(locals)) = (&shifted, &locals) {
            // what the last reversed iteration carried belongs to the range's first element
            let ShiftLocals {
                d_array, carried, ..
            } = locals;
            let rule = self.shift_add_rule(analysis, shift);
            let (start, end) = (
                self.range_bound(analysis, inst, 0),
                self.range_bound(analysis, inst, 1),
            );
            let ran = match &data.opcode {
                Opcode::ForRange(range) if range.inclusive => quote!(#start <= #end),
                _ => quote!(#start < #end),
            };
            out.extend(quote! {
                if #ran {
                    #private::rules::#rule(&mut #d_array, &#start, #carried);
                }
            });
        }
        for &(init, _, _, result) in &slots {
            if analysis.is_active(init) {
                let c = carry(result);
                self.contribute_from(analysis, scope, init, result, quote!(#c), out);
            }
        }
    }

    /// Operand `k` of a loop (a bound of its range) as read in the backward pass.
    fn range_bound(&self, analysis: &Analysis, inst: Inst, k: usize) -> TokenStream {
        let v = self.func.inst(inst).args[k];
        if analysis.constant[v.index()] {
            self.constant_expr(v)
        } else {
            let r = self.read_ref(analysis, v);
            quote!((*#r))
        }
    }

    /// The pair of reads `a[i]`, `a[i + 1]` of a reversed loop whose backward pass carries a
    /// contribution to the next reversed iteration (see [`ShiftedReads`]), if it has one.
    fn shifted_reads(&self, analysis: &Analysis, inst: Inst) -> Option<ShiftedReads> {
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return None;
        };
        let body = data.arms[0];
        let index = self.func.block(body).params[0];
        // the replayed range gives the first element after the loop
        if range.reverse || range.stepped || range.breaks || !analysis.recompute[index.index()] {
            return None;
        }
        let insts = &self.func.block(body).insts;
        let is_one = |v: Value| self.is_one(v);
        let is_next = |v: Value| {
            self.func.def_inst(v).is_some_and(|d| {
                let next = self.func.inst(d);
                matches!(next.opcode, Opcode::Binary(BinaryOp::Add))
                    && insts.contains(&d)
                    && ((next.args[0] == index && is_one(next.args[1]))
                        || (next.args[1] == index && is_one(next.args[0])))
            })
        };
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        for &at_index in insts {
            let read = self.func.inst(at_index);
            if !matches!(read.opcode, Opcode::Index) || read.args[1] != index {
                continue;
            }
            let array = read.args[0];
            if inside.contains(&array)
                || !analysis.is_active(array)
                || !analysis.arrays[array.index()]
                || !self.float_elements(analysis, array)
            {
                continue;
            }
            let mut uses = Vec::new();
            self.uses_in(body, array, &mut uses);
            let [first, second] = uses[..] else {
                continue;
            };
            let Some(at_next) = (if first == Some(at_index) {
                second
            } else {
                first
            }) else {
                continue;
            };
            let next = self.func.inst(at_next);
            if matches!(next.opcode, Opcode::Index)
                && insts.contains(&at_next)
                && is_next(next.args[1])
                && analysis.reversed[at_index.index()]
                && analysis.reversed[at_next.index()]
            {
                return Some(ShiftedReads {
                    array,
                    at_index,
                    at_next,
                    next_index: next.args[1],
                });
            }
        }
        None
    }

    /// Whether `v` is the constant `1`.
    fn is_one(&self, v: Value) -> bool {
        self.func.def_inst(v).is_some_and(|d| {
            matches!(&self.func.inst(d).opcode,
                Opcode::Const(t) if matches!(t.to_string().as_str(), "1" | "1usize"))
        })
    }

    /// The rows of a reversed counted loop `for i in start..end` over `usize`: for each array
    /// from outside the loop that the body reads at one index `k`, the loop's index or a
    /// counter stepping by one with it, and touches nowhere else, the slice of the elements
    /// the loop reads (`a[low..low + trip]`, `low` the index's value in the first iteration)
    /// and the same slice of its cotangent, if the read passes a contribution to one allocated
    /// at its full length. The reversed iterations run over the offset `t` into the range and
    /// index the rows by it: the optimiser sees that `t < trip`, the rows' length, and drops
    /// the bounds checks a reversed loop otherwise keeps in every iteration (for the index
    /// `k` counted down, it proves nothing about `k`).
    ///
    /// Only reads the body makes in every iteration qualify (no branch or nested loop around
    /// them, no early exit), so that a loop that ran read every element of its rows and the
    /// slicing cannot fail; a loop that did not run slices nothing (`trip` is checked first).
    fn row_plan(
        &self,
        analysis: &Analysis,
        inst: Inst,
        scope: &HashSet<Value>,
        shifted: Option<&ShiftedReads>,
    ) -> Option<RowPlan> {
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return None;
        };
        let body = data.arms[0];
        let params = &self.func.block(body).params;
        let index = params[0];
        let usize_ty: syn::Type = syn::parse_quote!(usize);
        if range.reverse
            || range.stepped
            || range.inclusive
            || range.breaks
            || !analysis.recompute[index.index()]
            || analysis.types[index.index()].as_ref() != Some(&usize_ty)
        {
            return None;
        }
        let insts = &self.func.block(body).insts;
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let name = self.names.name(index);
        let start = format_ident!("{}_start", name);
        let trip = format_ident!("{}_trip", name);
        let offset = format_ident!("{}_offset", name);
        let mut rows = TokenStream::new();
        let mut reads = Vec::new();
        let mut sliced = HashSet::new();
        for &read in insts {
            let data = self.func.inst(read);
            if !matches!(data.opcode, Opcode::Index) {
                continue;
            }
            let (array, at) = (data.args[0], data.args[1]);
            if inside.contains(&array)
                || sliced.contains(&array)
                || !analysis.arrays[array.index()]
                || analysis.matrices[array.index()]
                || analysis.tensors[array.index()]
                || shifted.is_some_and(|shift| shift.array == array)
            {
                continue;
            }
            let low = if at == index {
                quote!(#start)
            } else {
                match analysis.counters.get(&at) {
                    Some(&(step, _)) if params.contains(&at) && self.is_one(step) => {
                        let counter = format_ident!("{}_countdown", self.names.name(at));
                        quote!((#counter - #trip))
                    }
                    _ => continue,
                }
            };
            let mut uses = Vec::new();
            self.uses_in(body, array, &mut uses);
            let same_reads: Option<Vec<Inst>> = uses
                .iter()
                .map(|u| {
                    u.filter(|&u| {
                        let data = self.func.inst(u);
                        insts.contains(&u)
                            && matches!(data.opcode, Opcode::Index)
                            && data.args[..] == [array, at]
                    })
                })
                .collect();
            let Some(same_reads) = same_reads else {
                continue;
            };
            sliced.insert(array);
            let recomputed = same_reads.iter().any(|&r| {
                let result = self.func.inst(r).results[0];
                analysis.recompute[result.index()]
            });
            let primal = recomputed.then(|| {
                let row = format_ident!("{}_row", self.names.name(array));
                let a = self.read_ref(analysis, array);
                rows.extend(quote!(let #row = &(*#a)[#low..#low + #trip];));
                row
            });
            let contributes = analysis.is_active(array)
                && scope.contains(&array)
                && self.full_length(analysis, array).is_some()
                && self.float_elements(analysis, array)
                && same_reads.iter().any(|r| analysis.reversed[r.index()]);
            let cotangent = contributes.then(|| {
                let d_array = self.names.cotangent(array);
                let row = format_ident!("{}_row", d_array);
                rows.extend(quote!(let #row = &mut #d_array[#low..#low + #trip];));
                row
            });
            if primal.is_none() && cotangent.is_none() {
                continue;
            }
            let row_read = RowRead {
                primal,
                cotangent,
                offset: offset.clone(),
            };
            reads.extend(same_reads.into_iter().map(|r| (r, row_read.clone())));
        }
        (!reads.is_empty()).then_some(RowPlan {
            start,
            trip,
            offset,
            rows,
            reads,
        })
    }

    /// Whether the elements of array `v` are floats (of a concrete or generic float type).
    fn float_elements(&self, analysis: &Analysis, v: Value) -> bool {
        let generics = crate::args::type_params(self.item);
        analysis.elements[v.index()]
            .as_ref()
            .is_some_and(|ty| crate::args::is_float_type(ty, &generics))
    }

    /// Declares the locals of a pair of neighbouring reads: the carried contribution in front
    /// of the loop (in `out`), this iteration's two contributions at its start (in
    /// `iteration`), where `variant` sends the reads' cotangents.
    fn shift_locals(
        &self,
        analysis: &Analysis,
        shift: &ShiftedReads,
        variant: &mut Variant,
        out: &mut TokenStream,
        iteration: &mut TokenStream,
    ) -> ShiftLocals {
        let private = private();
        let d_array = self.names.cotangent(shift.array).clone();
        let locals = ShiftLocals {
            carried: format_ident!("{}_shift", d_array),
            at_index: format_ident!("{}_at_index", d_array),
            at_next: format_ident!("{}_at_next", d_array),
            d_array,
        };
        let (carried, at_index, at_next) = (&locals.carried, &locals.at_index, &locals.at_next);
        let elem = &analysis.elements[shift.array.index()];
        out.extend(quote!(let mut #carried: #elem = #private::zero();));
        iteration.extend(quote! {
            let mut #at_index: #elem = #private::zero();
            let mut #at_next: #elem = #private::zero();
        });
        variant.shifted.insert(shift.at_index, at_index.clone());
        variant.shifted.insert(shift.at_next, at_next.clone());
        locals
    }

    /// Every instruction of `block` and its nested blocks that takes `v`, and `None` for each
    /// block that yields it.
    fn uses_in(&self, block: Block, v: Value, out: &mut Vec<Option<Inst>>) {
        for &inst in &self.func.block(block).insts {
            let data = self.func.inst(inst);
            out.extend(data.args.iter().filter(|&&a| a == v).map(|_| Some(inst)));
            for &arm in &data.arms {
                self.uses_in(arm, v, out);
            }
        }
        let yields = &self.func.block(block).yields;
        out.extend(yields.iter().filter(|&&y| y == v).map(|_| None));
    }

    /// For a loop whose index the backward pass replays rather than saves: the index's name
    /// and the loop's range, reversed, from the bounds read in the backward pass.
    fn replayed_index(&self, analysis: &Analysis, inst: Inst) -> Option<(Ident, TokenStream)> {
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return None;
        };
        let index = self.func.block(data.arms[0]).params[0];
        if !analysis.recompute[index.index()] {
            return None;
        }
        let iter = range_iterator(range, |k| self.range_bound(analysis, inst, k));
        Some((self.names.name(index).clone(), quote!(#iter.rev())))
    }

    /// For argument `i` of call `inst`: the array whose cotangent, already declared, the
    /// callee's gradient is added into, when it can take it directly (see
    /// `GradientSink`): the argument itself, or `x` of an argument `&x` used nowhere else.
    /// Only where the contribution would be a plain `accumulate`, so that the cotangent has
    /// the callee's gradient type.
    fn call_sink_target(
        &self,
        analysis: &Analysis,
        scope: &HashSet<Value>,
        inst: Inst,
        i: usize,
    ) -> Option<Value> {
        let arg = self.func.inst(inst).args[i];
        if !analysis.is_active(arg) {
            return None;
        }
        let target = if scope.contains(&arg) {
            arg
        } else {
            let data = self.func.inst(self.func.def_inst(arg)?);
            let mut uses = Vec::new();
            self.uses_in(self.func.entry, arg, &mut uses);
            match data.opcode {
                Opcode::Ref if uses.len() == 1 => data.args[0],
                _ => return None,
            }
        };
        let plain = scope.contains(&target)
            && analysis.arrays[target.index()]
            && self.fixed_array_type(analysis, target).is_none()
            && analysis.is_active(target)
            && self.callee_zero(analysis, target).is_none()
            && !matches!(self.func.value(target).def, ValueDef::Param(k) if self.func.param_structs[k]);
        plain.then_some(target)
    }

    /// The cotangent type `[T; N]` of `v` when it is a fixed-length array, or a reference to
    /// one (`&x` included), by its parameter's or its annotated type.
    fn fixed_array_type(&self, analysis: &Analysis, v: Value) -> Option<syn::Type> {
        if let Some(data) = self.func.def_inst(v).map(|inst| self.func.inst(inst)) {
            if matches!(data.opcode, Opcode::Ref) {
                return self.fixed_array_type(analysis, data.args[0]);
            }
        }
        let ty = match self.func.value(v).def {
            ValueDef::Param(i) => Some(&self.func.params[i].ty),
            _ => analysis.types[v.index()].as_ref(),
        }?;
        match crate::args::array_type(ty)? {
            (ArrayKind::Fixed(_), _) => Some(crate::args::cotangent_type(ty)),
            _ => None,
        }
    }

    /// The gradient of parameter `i` at the end of `backward`.
    fn parameter_gradient(
        &self,
        analysis: &Analysis,
        i: usize,
        scope: &HashSet<Value>,
    ) -> TokenStream {
        let private = private();
        let p = &self.func.params[i];
        let d = self.names.cotangent(p.value);
        let value = if scope.contains(&p.value) {
            quote!(#d)
        } else {
            self.zero_of(analysis, p.value)
        };
        match (
            crate::args::array_type(&p.ty),
            self.func.param_lens.get(i).copied().flatten(),
        ) {
            (Some((ArrayKind::Vec, _)), Some(len)) => {
                let len = self.read_ref(analysis, len);
                quote!(#private::rules::fit(#value, #len))
            }
            _ => value,
        }
    }

    /// The parameters whose gradient accumulates in a buffer from its sink (a vector sized
    /// by the parameter's length), with that length: the caller's own cotangent when it
    /// passes one, so that a call in a loop allocates no gradient.
    fn gradient_buffers(&self, analysis: &Analysis, scope: &HashSet<Value>) -> Vec<(usize, Value)> {
        (0..self.func.params.len())
            .filter_map(|i| {
                let p = self.func.params[i].value;
                let eligible = analysis.active_params[i]
                    && !self.func.param_structs[i]
                    && !scope.contains(&p)
                    && self.float_elements(analysis, p);
                eligible
                    .then(|| self.presized_length(analysis, p))
                    .flatten()
                    .map(|len| (i, len))
            })
            .collect()
    }

    /// Parameter `i`'s `gradient` (of type `ty`) handed to its sink, which adds it into the
    /// caller's cotangent as the caller would have: a parameter set through
    /// `accumulate_from`, anything else through `accumulate`. The type is named because a
    /// returning sink takes any, and a zero gradient's type would be unknown when the
    /// closure is checked.
    fn finish_sink(
        &self,
        analysis: &Analysis,
        i: usize,
        ty: &TokenStream,
        gradient: TokenStream,
    ) -> TokenStream {
        let private = private();
        let sink = names::gradient_sink(i);
        let add = if !analysis.active_params[i] {
            quote!(|_, _| {})
        } else if self.func.param_structs[i] {
            quote!(|target, gradient| #private::Differentiable::accumulate_from(target, &gradient))
        } else {
            quote!(|target, gradient| target.accumulate(gradient))
        };
        quote!(<_ as #private::GradientSink<#ty>>::finish(#sink, #gradient, #add))
    }

    /// `__backward_into` for a function without gradient buffers: `__backward_all`'s
    /// gradients, each handed to its sink.
    fn backward_into_returned(&self, analysis: &Analysis) -> TokenStream {
        let private = private();
        let d_output = names::output_cotangent();
        let sink_types = sink_types(self.sig, &analysis.active_params);
        let gradients: Vec<Ident> = (0..sink_types.len())
            .map(|i| format_ident!("__autodiff_gradient{}", i))
            .collect();
        let finished = (0..sink_types.len()).map(|i| {
            let gradient = &gradients[i];
            self.finish_sink(analysis, i, &sink_types[i], quote!(#gradient))
        });
        let vis = &self.item.vis;
        let signature = backward_into_signature(self.sig, &analysis.active_params, false);
        quote! {
            #[doc(hidden)]
            #[allow(dead_code, clippy::all)]
            #[inline]
            #vis #signature {
                #[allow(unused_imports)]
                use #private::{Cotangent as _, ParameterSetCotangent as _, ScalarCotangent as _};
                let (#(#gradients,)*) = self.__backward_all(#d_output);
                (#(#finished,)*)
            }
        }
    }

    /// The checks `backward` makes of the output cotangent it is given: its shape or length
    /// against the output's.
    fn output_cotangent_checks(&self, analysis: &Analysis) -> TokenStream {
        let (private, d_output) = (private(), names::output_cotangent());
        let name = self.func.name.to_string();
        let mut out = TokenStream::new();
        if let Some(shape) = self.func.output_shape {
            let shape = self.read_ref(analysis, shape);
            out.extend(quote! {
                #private::check_cotangent_shape(#name, &#private::ShapeOf::shape_of(&#d_output), #shape);
            });
        }
        if let Some(len) = self.func.output_len {
            let len = self.read_ref(analysis, len);
            out.extend(quote!(#private::check_cotangent_len(#name, &#d_output, #len);));
        }
        out
    }

    /// `backward` (or the hidden `__backward_all`) as `__backward_into` with every gradient
    /// returned, after `backward`'s checks of the output cotangent (`destructure` binds the
    /// saved values they read).
    fn returned_gradients(
        &self,
        analysis: &Analysis,
        hidden: bool,
        destructure: &TokenStream,
    ) -> TokenStream {
        let private = private();
        let (d_output, into) = (names::output_cotangent(), names::backward_into());
        let returned = (0..self.func.params.len()).map(|_| quote!(#private::ReturnGradient));
        let all = quote!(self.#into(#d_output, #(#returned),*));
        if hidden {
            return all;
        }
        let checks = self.output_cotangent_checks(analysis);
        let gradients = self.public_gradients(analysis, all);
        if checks.is_empty() {
            gradients
        } else {
            quote!({
                #destructure
                #checks
                #gradients
            })
        }
    }

    /// The gradients `backward` returns, from the tuple `all` of every parameter's.
    fn public_gradients(&self, analysis: &Analysis, all: TokenStream) -> TokenStream {
        let names: Vec<Ident> = (0..self.func.params.len())
            .map(|i| format_ident!("__autodiff_gradient{}", i))
            .collect();
        let active: Vec<&Ident> = names
            .iter()
            .zip(&analysis.active_params)
            .filter_map(|(n, &a)| a.then_some(n))
            .collect();
        let value = if active.len() == 1 {
            let only = active[0];
            quote!(#only)
        } else {
            quote!((#(#active,)*))
        };
        quote!({
            let (#(#names,)*) = #all;
            #value
        })
    }

    /// The public or hidden items of one variant.
    pub fn variant_items(&self, variant: &Variant, errors: &mut Errors) -> TokenStream {
        let analysis = variant.analysis;
        let records = self.records(analysis);
        let fname = &self.func.name;
        let (struct_name, pullback_name) = if variant.hidden {
            (
                names::pullback_struct_all(fname),
                names::hidden_pullback_fn(fname),
            )
        } else {
            (names::pullback_struct(fname), names::pullback_fn(fname))
        };
        let declarations = self.declarations(variant, &records, &struct_name, errors);
        let private = private();
        let vis = &self.item.vis;
        let cfgs = self.cfg_attrs();
        let fn_generics = self.fn_generics();
        let fn_where = &fn_generics.where_clause;
        let fn_params = &fn_generics.params;
        let sgen = self.struct_generics();
        let (s_impl, s_ty, s_where) = sgen.split_for_impl();
        let params = self.params_decl();
        let ret = &self.sig.return_type;

        // forward
        let mut body = TokenStream::new();
        let param_values: Vec<Value> = self.func.params.iter().map(|p| p.value).collect();
        self.save_arrays(analysis, &param_values, &mut body);
        // `_grad` runs the forward pass and the backward pass in one body, where borrowed
        // parameters need no copy: they outlive both
        let mut fused = TokenStream::new();
        let owned_params: Vec<Value> = self
            .func
            .params
            .iter()
            .filter(|p| !matches!(p.ty, syn::Type::Reference(_)))
            .map(|p| p.value)
            .collect();
        self.save_arrays(analysis, &owned_params, &mut fused);
        let mut stacks = TokenStream::new();
        for &inst in &records.flat {
            let stack = self.record_stack(inst, records.index[&inst]);
            let previous = self.previous_field(&stack);
            stacks.extend(quote!(let mut #stack = #private::reused_stack(#previous, 0);));
        }
        body.extend(stacks.clone());
        fused.extend(stacks);
        let mut forward_statements = TokenStream::new();
        self.forward_block(variant, &records, self.func.entry, &mut forward_statements);
        body.extend(forward_statements.clone());
        // `_grad` may run a loop's backward iterations with its forward ones
        let fused_loop = match (&self.sig.output, variant.hidden) {
            (Output::Scalar(_), false) => self.fusable_loop(analysis),
            _ => None,
        };
        let eager = match (&self.sig.output, variant.hidden) {
            (Output::Scalar(_), false) => self.eager_loops(analysis, fused_loop),
            _ => Vec::new(),
        };
        let one_sweep = fused_loop.is_some() || !eager.is_empty();
        let skipped: Vec<Inst> = fused_loop
            .into_iter()
            .chain(eager.iter().map(|e| e.inst))
            .collect();
        let fused_variant = Variant {
            analysis,
            hidden: variant.hidden,
            shifted: variant.shifted.clone(),
            fused: fused_loop,
            eager,
        };
        if one_sweep {
            let mut statements = TokenStream::new();
            self.forward_block(&fused_variant, &records, self.func.entry, &mut statements);
            fused.extend(statements);
        } else {
            fused.extend(forward_statements);
        }
        let yields: Vec<TokenStream> = self
            .func
            .block(self.func.entry)
            .yields
            .iter()
            .map(|y| self.operand(*y))
            .collect();
        let value = match &self.sig.output {
            Output::Struct(output) if !output.fields.is_empty() => {
                let (path, fields) = (&output.path, &output.fields);
                quote!(#path { #(#fields: #yields),* })
            }
            _ => tuple_pattern(&yields),
        };
        let inits = self.field_inits(analysis, &records, self.func.entry);
        let (field_names, field_values): (Vec<TokenStream>, Vec<TokenStream>) = self
            .fields(analysis, &records, self.func.entry)
            .into_iter()
            .unzip();
        let marker_init = self.marker_type().map(|_| {
            let name = names::marker_field();
            quote!(#name: #private::PhantomData,)
        });
        let forward_doc = if variant.hidden {
            quote!(#[doc(hidden)])
        } else {
            let text = format!(
                " Runs [`{fname}`] and saves what its backward pass needs: returns the value and a [`{struct_name}`]."
            );
            quote!(#[doc = #text])
        };
        // the primal is "used" wherever its derivative is, so users calling only `f_grad`
        // get no dead-code warning for `f`
        let param_types = self.sig.params.iter().map(|p| &p.ty);
        // with the type arguments spelled out: a parameter the signature does not mention (a
        // lifted `map` closure of a generic function) cannot be inferred from it
        let fname_with_args = self.with_generic_args(fname);
        let mark_used = quote!(let _: fn(#(#param_types),*) -> #ret = #fname_with_args;);
        // the hidden forward function callers use in a loop: it fills a slot that may hold
        // the pullback of the previous iteration's call, reusing its record stacks'
        // allocations, and lends the new pullback from there
        let reusing_entry = variant.hidden || !self.separate_hidden;
        let reusing_name = names::hidden_reusing_pullback_fn(fname);
        let previous = names::previous_pullback();
        let previous_ty = quote!(::core::option::Option<#struct_name #s_ty>);
        let no_previous = quote!(let mut #previous: #previous_ty = ::core::option::Option::None;);
        // the reusing function fills the caller's slot and lends the pullback from there: a
        // pullback moved in and out of its callers by value on every call costs more than
        // the call's records
        let slot = syn::Lifetime::new("'__autodiff_slot", proc_macro2::Span::call_site());
        let slot_ty = quote!(&#slot mut #previous_ty);
        let lent_ty = quote!(&#slot #struct_name #s_ty);
        let has_stacks = self.has_record_stacks(analysis, &records);
        let args: Vec<&Ident> = self.sig.params.iter().map(|p| &p.name).collect();
        let allow = quote!(#[allow(dead_code, non_snake_case, unreachable_code, unused_variables, unused_assignments, unused_mut, unused_parens, unused_braces, clippy::all)]);
        // (the names of lifted closures start with underscores)
        let allow_hidden = quote!(#[allow(dead_code, non_snake_case, unreachable_code, unused_variables, unused_assignments, unused_mut, unused_parens, unused_braces, clippy::all)]);
        let forward = match (has_stacks, reusing_entry) {
            (true, true) => {
                let reusing = self.with_generic_args(&reusing_name);
                quote! {
                    #forward_doc
                    #(#cfgs)*
                    #allow
                    #[inline]
                    #vis fn #pullback_name <#fn_params> (#(#params),*) -> (#ret, #struct_name #s_ty) #fn_where {
                        #no_previous
                        let (value, _) = #reusing(#(#args,)* &mut #previous);
                        match #previous {
                            ::core::option::Option::Some(pullback) => (value, pullback),
                            ::core::option::Option::None => ::core::unreachable!("the reusing forward pass fills its slot"),
                        }
                    }
                    #[doc(hidden)]
                    #(#cfgs)*
                    #allow_hidden
                    #[inline]
                    #vis fn #reusing_name <#slot, #fn_params> (#(#params,)* #previous: #slot_ty) -> (#ret, #lent_ty) #fn_where {
                        #mark_used
                        #body
                        let __autodiff_pullback: #lent_ty = match #previous {
                            ::core::option::Option::Some(__autodiff_reused) => {
                                #(__autodiff_reused.#field_names = #field_values;)*
                                __autodiff_reused
                            }
                            #previous => #previous.insert(#struct_name { #(#inits,)* #marker_init }),
                        };
                        (#value, __autodiff_pullback)
                    }
                }
            }
            (has_stacks, reusing_entry) => {
                let previous_none = has_stacks.then(|| no_previous.clone());
                let pullback = self.with_generic_args(&pullback_name);
                let wrapper = reusing_entry.then(|| {
                    quote! {
                        #[doc(hidden)]
                        #(#cfgs)*
                        #allow_hidden
                        #[inline]
                        #vis fn #reusing_name <#slot, #fn_params> (#(#params,)* #previous: #slot_ty) -> (#ret, #lent_ty) #fn_where {
                            let (value, pullback) = #pullback(#(#args),*);
                            (value, #previous.insert(pullback))
                        }
                    }
                });
                quote! {
                    #forward_doc
                    #(#cfgs)*
                    #allow
                    #[inline]
                    #vis fn #pullback_name <#fn_params> (#(#params),*) -> (#ret, #struct_name #s_ty) #fn_where {
                        #mark_used
                        #previous_none
                        #body
                        (#value, #struct_name { #(#inits,)* #marker_init })
                    }
                    #wrapper
                }
            }
        };

        // backward
        let d_output = names::output_cotangent();
        // the variant callers call (see `reusing_entry`) hands its gradients to sinks, and
        // accumulates vector gradients in the caller's buffers when it has any
        let sinks = reusing_entry && !self.gradient_buffers(analysis, &HashSet::new()).is_empty();
        let (bwd, grads) = self.backward_statements(variant, &records, HashSet::new(), sinks);
        let grad_ty = self.gradient_type(&analysis.active_params, variant.hidden);
        let bindings = self.field_bindings(analysis, &records, self.func.entry);
        let destructure = if bindings.is_empty() {
            quote!()
        } else {
            quote!(let #struct_name { #(#bindings,)* .. } = self;)
        };
        let backward_name = if variant.hidden {
            format_ident!("__backward_all")
        } else {
            format_ident!("backward")
        };
        let backward_doc = if variant.hidden {
            quote!(#[doc(hidden)])
        } else {
            let text = format!(
                " The vector-Jacobian product of [`{fname}`]: takes the cotangent of the output and returns one cotangent per active argument. It only reads the saved values, so it can be called many times."
            );
            quote!(#[doc = #text])
        };
        // with sinks, the body is `__backward_into`'s and `backward` returns its gradients
        let (body, into) = if sinks {
            let signature = backward_into_signature(self.sig, &analysis.active_params, true);
            let vis = &self.item.vis;
            let into = quote! {
                #[doc(hidden)]
                #[allow(non_snake_case, unreachable_code, unused_variables, unused_assignments, unused_mut, unused_parens, unused_braces, clippy::all)]
                #[inline]
                #vis #signature {
                    #[allow(unused_imports)]
                    use #private::{Cotangent as _, ParameterSetCotangent as _, ScalarCotangent as _};
                    #destructure
                    #bwd
                    #grads
                }
            };
            let returned = self.returned_gradients(analysis, variant.hidden, &destructure);
            (returned, Some(into))
        } else {
            let body = quote! {
                #[allow(unused_imports)]
                use #private::{Cotangent as _, ParameterSetCotangent as _, ScalarCotangent as _};
                #destructure
                #bwd
                #grads
            };
            // (`hidden_alias` adds it next to `__backward_all` when the hidden items alias these)
            let into = variant
                .hidden
                .then(|| self.backward_into_returned(analysis));
            (body, into)
        };
        // (with sinks, `body` only calls `__backward_into`: nothing to interleave)
        let jacobian = (!variant.hidden)
            .then(|| {
                self.jacobian(&body, &grad_ty, !sinks)
                    .or_else(|| self.vec_jacobian(analysis, &destructure, &grad_ty))
            })
            .flatten();
        let backward = quote! {
            #(#cfgs)*
            impl #s_impl #struct_name #s_ty #s_where {
                #backward_doc
                #[allow(non_snake_case, unreachable_code, unused_variables, unused_assignments, unused_mut, unused_parens, unused_braces, clippy::all)]
                #[inline]
                #vis fn #backward_name(&self, #d_output: #ret) -> #grad_ty {
                    #body
                }
                #into
                #jacobian
            }
        };

        // value and gradient: the forward statements, the saved values bound by reference
        // as `backward` binds the struct's fields, then the backward statements
        let grad_fn = match (&self.sig.output, variant.hidden) {
            (Output::Scalar(_), false) => {
                let grad_name = names::grad_fn(fname);
                // only a loop `_grad` runs as the pullback does allocates a record stack
                let grad_previous = mentions(&fused, &previous).then(|| no_previous.clone());
                let text = format!(" The value of [`{fname}`] and its gradient with respect to the active arguments.");
                let rebind = self.fused_bindings(analysis, &records, &skipped);
                // the one sweep without sinks: a gradient that starts as a moved vector (an
                // eager loop's, scaled) stays a move; otherwise `backward`'s statements, their
                // sinks returning the gradients
                let (bwd, grads) = if one_sweep {
                    let scope = self.fused_scope.borrow().clone();
                    self.backward_statements(&fused_variant, &records, scope, false)
                } else if sinks {
                    let sink_params = (0..self.func.params.len()).map(names::gradient_sink);
                    let bwd = quote! {
                        #(let mut #sink_params = #private::ReturnGradient;)*
                        #bwd
                    };
                    (bwd, self.public_gradients(analysis, grads.clone()))
                } else {
                    (bwd.clone(), grads.clone())
                };
                // the value is live across the whole backward pass, whose loops may call out
                // (a growing cotangent); passed through `black_box`, it is kept in memory from
                // here on, where otherwise the register allocator may keep the accumulator of
                // the forward loop that computed it in memory, a store and load per iteration.
                // A loop fused with its backward pass leaves no backward loop after it: there
                // the store and load would only lengthen the path to the returned value
                let has_loops = self
                    .func
                    .insts
                    .iter()
                    .any(|data| matches!(data.opcode, Opcode::ForRange(_) | Opcode::While));
                let value = if has_loops && fused_loop.is_none() {
                    quote!(::core::hint::black_box(#value))
                } else {
                    value
                };
                quote! {
                    #[doc = #text]
                    #(#cfgs)*
                    #[allow(dead_code, non_snake_case, unreachable_code, unused_variables, unused_assignments, unused_mut, unused_parens, unused_braces, clippy::all)]
                    #[inline]
                    #vis fn #grad_name <#fn_params> (#(#params),*) -> (#ret, #grad_ty) #fn_where {
                        #[allow(unused_imports)]
                        use #private::{Cotangent as _, ParameterSetCotangent as _, ScalarCotangent as _};
                        #mark_used
                        #grad_previous
                        #fused
                        let __autodiff_value = #value;
                        #rebind
                        let #d_output: #ret = #private::one();
                        #bwd
                        (__autodiff_value, #grads)
                    }
                }
            }
            _ => quote!(),
        };
        quote! {
            #declarations
            #forward
            #backward
            #grad_fn
        }
    }

    /// `jacobian(&self) -> [gradients; N]` for an output `[T; N]` with a literal `N`, or a
    /// tuple of `N` floats, `N` at most [`MAX_JACOBIAN_ROWS`]: row `i` is `backward` of the
    /// `i`-th unit cotangent. Without
    /// loops, when `interleave` allows it, the rows' backward passes run as interleaved lanes
    /// of `backward`'s `body` ([`crate::lanes`]); otherwise `backward` is called once per row.
    fn jacobian(
        &self,
        body: &TokenStream,
        grad_ty: &TokenStream,
        interleave: bool,
    ) -> Option<TokenStream> {
        let private = private();
        // the output's type and its unit cotangents: `[T; N]` with a literal `N`, or a tuple
        // of scalars
        let (ret, rows, unit): (syn::Type, usize, Box<dyn Fn(usize) -> TokenStream>) =
            match &self.sig.output {
                Output::Array(ty) => {
                    let syn::Type::Array(array) = ty else {
                        return None;
                    };
                    let syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(rows),
                        ..
                    }) = &array.len
                    else {
                        return None;
                    };
                    let rows: usize = rows.base10_parse().ok()?;
                    let ret = ty.clone();
                    let seed_ty = ty.clone();
                    let private = private.clone();
                    let unit = move |k: usize| {
                        quote!({
                            let mut seed: #seed_ty = [#private::zero(); #rows];
                            seed[#k] = #private::one();
                            seed
                        })
                    };
                    (ret, rows, Box::new(unit))
                }
                Output::Tuple(types)
                    if types.len() > 1
                        && types.iter().all(|t| crate::args::array_type(t).is_none()) =>
                {
                    let rows = types.len();
                    let ret: syn::Type = syn::parse_quote!((#(#types),*));
                    let private = private.clone();
                    let unit = move |k: usize| {
                        let parts = (0..rows).map(|j| {
                            if j == k {
                                quote!(#private::one())
                            } else {
                                quote!(#private::zero())
                            }
                        });
                        quote!((#(#parts),*))
                    };
                    (ret, rows, Box::new(unit))
                }
                _ => return None,
            };
        if rows == 0 || rows > MAX_JACOBIAN_ROWS {
            return None;
        }
        let vis = &self.item.vis;
        let fname = &self.item.sig.ident;
        let doc = format!(
            " The Jacobian of [`{fname}`]: row `i` holds the cotangents `backward` returns for \
             the `i`-th unit output cotangent, the rows' backward passes run together."
        );
        let has_loops = self
            .func
            .insts
            .iter()
            .any(|data| matches!(data.opcode, Opcode::ForRange(_) | Opcode::While));
        let d_output = names::output_cotangent();
        let mut cotangents = self.names.cotangent_names();
        cotangents.insert(d_output.to_string());
        let lanes = if has_loops || !interleave {
            None
        } else {
            crate::lanes::interleaved(
                body.clone(),
                &cotangents,
                rows,
                |k, name| {
                    let seed = unit(k);
                    quote!(let #name: #ret = #seed;)
                },
                &d_output,
            )
        };
        let body = lanes.unwrap_or_else(|| {
            let seeds = (0..rows).map(unit);
            quote!([#(self.backward(#seeds)),*])
        });
        Some(quote! {
            #[doc = #doc]
            #[allow(non_snake_case, unreachable_code, unused_variables, unused_assignments, unused_mut, unused_parens, unused_braces, clippy::all)]
            #[inline]
            #vis fn jacobian(&self) -> [#grad_ty; #rows] {
                #body
            }
        })
    }

    /// `jacobian(&self) -> Vec<gradients>` for a `Vec` output: one row per output element,
    /// row `i` being `backward` of the `i`-th unit cotangent, with `backward` called once per
    /// row (the number of rows is the output's length, known only when the forward pass ran).
    fn vec_jacobian(
        &self,
        analysis: &Analysis,
        destructure: &TokenStream,
        grad_ty: &TokenStream,
    ) -> Option<TokenStream> {
        let Output::Array(ty) = &self.sig.output else {
            return None;
        };
        if !matches!(crate::args::array_type(ty), Some((ArrayKind::Vec, _))) {
            return None;
        }
        let len = self.read_ref(analysis, self.func.output_len?);
        let (private, vis, fname) = (private(), &self.item.vis, &self.item.sig.ident);
        let doc = format!(
            " The Jacobian of [`{fname}`]: one row per element of the output, row `i` holding \
             the cotangents `backward` returns for the `i`-th unit output cotangent."
        );
        Some(quote! {
            #[doc = #doc]
            #[allow(non_snake_case, unreachable_code, unused_variables, clippy::all)]
            #vis fn jacobian(&self) -> ::std::vec::Vec<#grad_ty> {
                #destructure
                let rows: usize = *#len;
                (0..rows)
                    .map(|row| {
                        let mut seed: #ty = ::std::vec![#private::zero(); rows];
                        seed[row] = #private::one();
                        self.backward(seed)
                    })
                    .collect()
            }
        })
    }

    /// The backward statements of `variant` (the body of `backward`, and of `_grad` after
    /// its forward statements) and the gradient they end with. `scope` holds the cotangents
    /// already declared (by a fused loop). With `sinks`, each parameter's gradient goes to its
    /// sink (`__autodiff_sink0`, ...), a vector parameter's accumulated in the buffer its
    /// sink gives (see [`Self::gradient_buffers`]).
    fn backward_statements(
        &self,
        variant: &Variant,
        records: &Records,
        mut scope: HashSet<Value>,
        sinks: bool,
    ) -> (TokenStream, TokenStream) {
        let analysis = variant.analysis;
        let private = private();
        let d_output = names::output_cotangent();
        let mut bwd = self.recompute_block(analysis, self.func.entry);
        for &inst in &records.flat {
            let stack = self.record_stack(inst, records.index[&inst]);
            let cursor = format_ident!("{}_cursor", stack);
            bwd.extend(quote!(let mut #cursor = #stack.len();));
        }
        for (p, &is_struct) in self.func.params.iter().zip(&self.func.param_structs) {
            if is_struct && analysis.is_active(p.value) {
                let (d, name) = (self.names.cotangent(p.value), self.names.name(p.value));
                bwd.extend(quote!(let mut #d = #private::Differentiable::zero_like(#name);));
                scope.insert(p.value);
            }
        }
        let buffers = if sinks {
            self.gradient_buffers(analysis, &scope)
        } else {
            Vec::new()
        };
        for &(i, len) in &buffers {
            // declared here, once, so that the caller's vector is taken exactly once and
            // every contribution reaches the gradient handed back at the end
            let p = self.func.params[i].value;
            let (d, sink, len) = (
                self.names.cotangent(p),
                names::gradient_sink(i),
                self.read_ref(analysis, len),
            );
            bwd.extend(quote!(let mut #d = #private::gradient_buffer(&mut #sink, *#len);));
            scope.insert(p);
        }
        // with sinks, `backward` checks the output cotangent before it calls these statements
        let checked = variant.hidden || sinks;
        if !checked {
            bwd.extend(self.output_cotangent_checks(analysis));
        }
        if let (Some(len), true) = (self.func.output_len, checked) {
            // callers pass cotangents that grew only as far as they were touched
            let len = self.read_ref(analysis, len);
            bwd.extend(quote!(let #d_output = #private::rules::fit(#d_output, #len);));
        }
        let entry_yields = self.func.block(self.func.entry).yields.clone();
        match &self.sig.output {
            Output::Struct(output) if !output.fields.is_empty() => {
                // the fields that carry a derivative, moved out of the cotangent by name
                let active: Vec<(usize, &Ident)> = output
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| analysis.is_active(entry_yields[k]))
                    .collect();
                let parts: Vec<Ident> = active
                    .iter()
                    .map(|(k, _)| format_ident!("d_output{}", k))
                    .collect();
                let (path, fields) = (&output.path, active.iter().map(|(_, f)| f));
                bwd.extend(quote!(let #path { #(#fields: #parts,)* .. } = #d_output;));
                for ((k, _), part) in active.iter().zip(&parts) {
                    self.contribute(
                        analysis,
                        &mut scope,
                        entry_yields[*k],
                        quote!(#part),
                        &mut bwd,
                    );
                }
            }
            // one value: a float, an array, or a struct returned whole (its cotangent whole)
            Output::Scalar(_) | Output::Array(_) | Output::Struct(_) => {
                if analysis.is_active(entry_yields[0]) {
                    self.contribute(
                        analysis,
                        &mut scope,
                        entry_yields[0],
                        quote!(#d_output),
                        &mut bwd,
                    );
                }
            }
            Output::Tuple(types) => {
                let parts: Vec<Ident> = (0..types.len())
                    .map(|i| format_ident!("d_output{}", i))
                    .collect();
                bwd.extend(quote!(let (#(#parts,)*) = #d_output;));
                for (y, part) in entry_yields.iter().zip(&parts) {
                    if analysis.is_active(*y) {
                        self.contribute(analysis, &mut scope, *y, quote!(#part), &mut bwd);
                    }
                }
            }
        }
        self.backward_block(variant, records, self.func.entry, &mut scope, &mut bwd);
        let sink_types = sink_types(self.sig, &analysis.active_params);
        let grads: Vec<TokenStream> = (0..self.func.params.len())
            .filter_map(|i| {
                let sink = names::gradient_sink(i);
                let ty = &sink_types[i];
                if let Some(&(_, len)) = buffers.iter().find(|(k, _)| *k == i) {
                    let d = self.names.cotangent(self.func.params[i].value);
                    let len = self.read_ref(analysis, len);
                    Some(quote!(#private::finish_gradient_buffer(#sink, #d, #len)))
                } else if sinks {
                    let gradient = if analysis.active_params[i] {
                        self.parameter_gradient(analysis, i, &scope)
                    } else {
                        quote!(())
                    };
                    Some(self.finish_sink(analysis, i, ty, gradient))
                } else if analysis.active_params[i] {
                    Some(self.parameter_gradient(analysis, i, &scope))
                } else if variant.hidden {
                    Some(quote!(()))
                } else {
                    None
                }
            })
            .collect();
        if sinks {
            // every parameter's entry, in order: `__backward_into` returns them all
            return (bwd, quote!((#(#grads,)*)));
        }
        let grads = if !variant.hidden && grads.len() == 1 {
            grads[0].clone()
        } else {
            quote!((#(#grads,)*))
        };
        (bwd, grads)
    }

    /// For the fused `_grad`: each value the pullback struct would hold, bound by reference
    /// under its field's name, as `backward` binds the fields of `self`. Borrowed parameters
    /// are bound to themselves, without the copy the struct takes.
    fn fused_bindings(
        &self,
        analysis: &Analysis,
        records: &Records,
        one_sweep: &[Inst],
    ) -> TokenStream {
        let mut out = TokenStream::new();
        let borrowed: HashSet<Value> = self
            .func
            .params
            .iter()
            .filter(|p| matches!(p.ty, syn::Type::Reference(_)))
            .map(|p| p.value)
            .collect();
        for v in self.saved_in_block(analysis, self.func.entry) {
            let name = self.names.name(v);
            if borrowed.contains(&v) && analysis.arrays[v.index()] {
                out.extend(quote!(let #name = &*#name;));
            } else if analysis.arrays[v.index()] || self.struct_type(analysis, v).is_some() {
                let copy = self.saved_copy(analysis, v);
                out.extend(quote!(let #name = &#copy;));
            } else if let Some(syn::Type::Reference(_)) = &analysis.types[v.index()] {
                out.extend(quote!(let #name = #name;));
            } else {
                out.extend(quote!(let #name = &#name;));
            }
        }
        // records are typed: a generic function's type parameters may appear in them only
        // through a marker, which the struct's field types pin down in `f_pullback`
        // a fused or eager loop keeps no record
        let local_fields: Vec<Ident> = one_sweep
            .iter()
            .filter_map(|l| {
                records
                    .index
                    .get(l)
                    .map(|&index| self.record_field(*l, index))
            })
            .collect();
        for (field, ty) in self.record_fields(analysis, records, self.func.entry, false) {
            if !local_fields.contains(&field) {
                out.extend(quote!(let #field: &#ty = &#field;));
            }
        }
        out
    }

    /// When `wrt` leaves every float parameter active, the hidden items reuse the public
    /// ones and only reshape the gradient.
    pub fn hidden_alias(&self, analysis: &Analysis) -> TokenStream {
        let fname = &self.func.name;
        let vis = &self.item.vis;
        let cfgs = self.cfg_attrs();
        let fn_generics = self.fn_generics();
        let fn_params = &fn_generics.params;
        let fn_where = &fn_generics.where_clause;
        let sgen = self.struct_generics();
        let (s_impl, s_ty, s_where) = sgen.split_for_impl();
        let params = self.params_decl();
        let args = self.sig.params.iter().map(|p| &p.name);
        let ret = &self.sig.return_type;
        let struct_name = names::pullback_struct(fname);
        let public_fn = names::pullback_fn(fname);
        let hidden_fn = names::hidden_pullback_fn(fname);
        let grad_ty = self.gradient_type(&analysis.active_params, true);
        let active_count = analysis.active_params.iter().filter(|a| **a).count();
        let names_out: Vec<Ident> = (0..active_count).map(|i| format_ident!("d{}", i)).collect();
        let mut k = 0;
        let all: Vec<TokenStream> = analysis
            .active_params
            .iter()
            .map(|&a| {
                if a {
                    let n = &names_out[k];
                    k += 1;
                    quote!(#n)
                } else {
                    quote!(())
                }
            })
            .collect();
        let unpack = tuple_pattern(&names_out.iter().map(|n| quote!(#n)).collect::<Vec<_>>());
        // `__backward_into` is `backward`'s body when it has gradient buffers
        let into = self
            .gradient_buffers(analysis, &HashSet::new())
            .is_empty()
            .then(|| self.backward_into_returned(analysis));
        // callers pass cotangents that grew only as far as they were touched
        let fit = self.func.output_len.map(|len| {
            let (len, private) = (self.names.name(len), private());
            quote!(let d_output = #private::rules::fit(d_output, &self.#len);)
        });
        quote! {
            #[doc(hidden)]
            #(#cfgs)*
            #[allow(dead_code, non_snake_case, clippy::all)]
            #[inline]
            #vis fn #hidden_fn <#fn_params> (#(#params),*) -> (#ret, #struct_name #s_ty) #fn_where {
                #public_fn(#(#args),*)
            }
            #(#cfgs)*
            impl #s_impl #struct_name #s_ty #s_where {
                #[doc(hidden)]
                #[allow(dead_code, clippy::all)]
                #[inline]
                #vis fn __backward_all(&self, d_output: #ret) -> #grad_ty {
                    #fit
                    let #unpack = self.backward(d_output);
                    (#(#all,)*)
                }
                #into
            }
        }
    }
}

/// Per parameter, the type of its gradient as `__backward_into` hands it to a sink: `()` for
/// an inactive one.
fn sink_types(sig: &Signature, active: &[bool]) -> Vec<TokenStream> {
    sig.params
        .iter()
        .zip(active)
        .map(|(p, &active)| {
            if active {
                let ty = crate::args::cotangent_type(&p.ty);
                quote!(#ty)
            } else {
                quote!(())
            }
        })
        .collect()
}

/// `fn __backward_into<__S0: GradientSink<G0>, ...>(&self, d_output, sink0: __S0, ...)`
/// returning each sink's `Out`; with `mutable`, the sinks are `mut` bindings (the body takes
/// gradient buffers from them).
fn backward_into_signature(sig: &Signature, active: &[bool], mutable: bool) -> TokenStream {
    let private = private();
    let (d_output, into) = (names::output_cotangent(), names::backward_into());
    let ret = &sig.return_type;
    let sink_types = sink_types(sig, active);
    let generics: Vec<Ident> = (0..sink_types.len())
        .map(|i| format_ident!("__S{}", i))
        .collect();
    let sinks = (0..sink_types.len()).map(|i| {
        let sink = names::gradient_sink(i);
        if mutable {
            quote!(mut #sink)
        } else {
            quote!(#sink)
        }
    });
    quote! {
        fn #into<#(#generics: #private::GradientSink<#sink_types>),*>(
            &self,
            #d_output: #ret,
            #(#sinks: #generics),*
        ) -> (#(<#generics as #private::GradientSink<#sink_types>>::Out,)*)
    }
}

/// The scalar primitives (`sin`, `max`, ...) whose receiver's type is one of `generic`, the
/// type parameters whose `Float` bound the generated items add (see [`Context::float_calls`]).
pub fn float_calls(func: &Function, analysis: &Analysis, generic: &[Ident]) -> HashSet<Inst> {
    let mut calls = HashSet::new();
    if generic.is_empty() {
        return calls;
    }
    for (k, data) in func.insts.iter().enumerate() {
        let Opcode::Primitive(p) = &data.opcode else {
            continue;
        };
        let scalar = crate::primitives::ALL.iter().any(|q| std::ptr::eq(*q, *p));
        let receiver_generic = data.args.first().is_some_and(|a| {
            matches!(&analysis.types[a.index()], Some(syn::Type::Path(tp))
                if generic.iter().any(|g| tp.path.is_ident(g)))
        });
        if scalar && receiver_generic {
            calls.insert(Inst(k as u32));
        }
    }
    calls
}

/// Items with the right signatures and no bodies, emitted next to errors so that one
/// mistake does not cascade into "cannot find `f_grad`" errors at every call site.
pub fn stubs(item: &ItemFn, sig: &Signature, active: &[bool]) -> TokenStream {
    let func = Function::new(item.sig.ident.clone());
    let ctx = Context {
        item,
        sig,
        func: &func,
        names: ValueNames {
            names: Vec::new(),
            cotangents: Vec::new(),
        },
        fused_scope: Default::default(),
        kept_calls: Default::default(),
        replay_slots: Default::default(),
        unsaved_arrays: Default::default(),
        lazy_cotangents: Default::default(),
        row_reads: Default::default(),
        separate_hidden: false,
        added_float_bounds: Vec::new(),
        float_calls: HashSet::new(),
        lifted_maps: HashSet::new(),
    };
    let fname = &item.sig.ident;
    let vis = &item.vis;
    let sgen = ctx.struct_generics();
    let (s_impl, s_ty, s_where) = sgen.split_for_impl();
    let s_params = &sgen.params;
    let fn_params = &item.sig.generics.params;
    let fn_where = &item.sig.generics.where_clause;
    let params = ctx.params_decl();
    let ret = &sig.return_type;
    let marker = ctx.marker_type().map(|m| quote!(_marker: #m));
    let mut out = zero_output_item(item, sig, &cfg_attrs(item));
    let all: Vec<bool> = sig
        .params
        .iter()
        .map(|p| p.role == ParamRole::Float)
        .collect();
    for hidden in [false, true] {
        let (struct_name, fn_name, backward, flags) = if hidden {
            (
                names::pullback_struct_all(fname),
                names::hidden_pullback_fn(fname),
                format_ident!("__backward_all"),
                &all,
            )
        } else {
            (
                names::pullback_struct(fname),
                names::pullback_fn(fname),
                format_ident!("backward"),
                &active.to_vec(),
            )
        };
        let grad_ty = ctx.gradient_type(flags, hidden);
        out.extend(quote! {
            #[allow(dead_code, non_camel_case_types)]
            #vis struct #struct_name <#s_params> #s_where { #marker }
            #[allow(non_snake_case, unreachable_code, unused_variables, dead_code, clippy::all)]
            #vis fn #fn_name <#fn_params> (#(#params),*) -> (#ret, #struct_name #s_ty) #fn_where {
                ::core::unreachable!()
            }
            impl #s_impl #struct_name #s_ty #s_where {
                #[allow(non_snake_case, unreachable_code, unused_variables, dead_code, clippy::all)]
                #vis fn #backward(&self, d_output: #ret) -> #grad_ty {
                    ::core::unreachable!()
                }
            }
        });
        if hidden {
            let signature = backward_into_signature(sig, flags, false);
            out.extend(quote! {
                impl #s_impl #struct_name #s_ty #s_where {
                    #[allow(non_snake_case, unreachable_code, unused_variables, dead_code, clippy::all)]
                    #vis #signature {
                        ::core::unreachable!()
                    }
                }
            });
        }
        if !hidden && matches!(sig.output, Output::Scalar(_)) {
            let grad_name = names::grad_fn(fname);
            out.extend(quote! {
                #[allow(non_snake_case, unreachable_code, unused_variables, dead_code, clippy::all)]
                #vis fn #grad_name <#fn_params> (#(#params),*) -> (#ret, #grad_ty) #fn_where {
                    ::core::unreachable!()
                }
            });
        }
    }
    out
}
