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

mod backward;
mod forward;
mod fused;
mod maps;
mod saved;

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
    /// The types the user wrote on `let`s, by value: a call's result keeps it in the
    /// generated code (`let half: T = nalgebra::convert(0.5);` cannot be inferred without).
    pub declared: HashMap<Value, syn::Type>,
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

/// A call of `callee` with `args`: `callee(args)`, or for a method called on a field of a
/// parameter set ([`names::method_form`]) `(args[0]).method(rest)`, which names no type.
pub fn call_expr(
    callee: &syn::ExprPath,
    args: &[TokenStream],
    span: proc_macro2::Span,
) -> TokenStream {
    match (names::method_form(callee), args.split_first()) {
        (Some(method), Some((receiver, rest))) => {
            let turbofish = match callee.path.segments.last().map(|s| &s.arguments) {
                Some(syn::PathArguments::AngleBracketed(generics)) => {
                    let mut generics = generics.clone();
                    generics.colon2_token = Some(Default::default());
                    Some(generics)
                }
                _ => None,
            };
            quote_spanned!(span=> (#receiver).#method #turbofish(#(#rest),*))
        }
        _ => quote_spanned!(span=> #callee(#(#args),*)),
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

/// The path of the hidden zero-output-cotangent function of the function a call refers to,
/// without the call's generic arguments: that function has only the generic parameters its
/// output type names ([`generics_of_type`]), which the zero's use infers.
pub fn hidden_zero_callee(path: &syn::ExprPath) -> syn::ExprPath {
    let mut path = path.clone();
    if let Some(last) = path.path.segments.last_mut() {
        last.ident = names::hidden_zero_output_fn(&last.ident);
        last.arguments = syn::PathArguments::None;
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
    let ty = crate::args::cotangent_type(&sig.return_type);
    let generics = generics_of_type(&item.sig.generics, &ty);
    let params = &generics.params;
    let where_clause = &generics.where_clause;
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

/// `generics` without the type and const parameters `ty` does not mention, and the `where`
/// predicates on them: the zero of an output `[f64; 2]` is the same for every `N` of `fn
/// fk<const N: usize>(a: &[f64; N]) -> [f64; 2]`, and a parameter that nothing names could
/// not be inferred where the zero is called (callers call it without turbofish).
pub(crate) fn generics_of_type(generics: &syn::Generics, ty: &syn::Type) -> syn::Generics {
    fn idents(tokens: TokenStream, out: &mut HashSet<String>) {
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(ident) => {
                    out.insert(ident.to_string());
                }
                proc_macro2::TokenTree::Group(group) => idents(group.stream(), out),
                _ => {}
            }
        }
    }
    let mut named = HashSet::new();
    idents(quote!(#ty), &mut named);
    let dropped: HashSet<String> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.to_string()),
            GenericParam::Const(c) => Some(c.ident.to_string()),
            GenericParam::Lifetime(_) => None,
        })
        .filter(|name| !named.contains(name))
        .collect();
    let mut kept = generics.clone();
    kept.params = generics
        .params
        .iter()
        .filter(|p| match p {
            GenericParam::Type(t) => !dropped.contains(&t.ident.to_string()),
            GenericParam::Const(c) => !dropped.contains(&c.ident.to_string()),
            GenericParam::Lifetime(_) => true,
        })
        .cloned()
        .collect();
    if let Some(where_clause) = &mut kept.where_clause {
        where_clause.predicates = std::mem::take(&mut where_clause.predicates)
            .into_iter()
            .filter(|predicate| {
                let mut mentioned = HashSet::new();
                idents(quote!(#predicate), &mut mentioned);
                mentioned.is_disjoint(&dropped)
            })
            .collect();
    }
    kept
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
            // the factorisation and its methods: runtime functions of the factor, by reference
            Opcode::Primitive(p) if crate::primitives::cholesky::is_cholesky(p) => {
                let forward = Ident::new(crate::primitives::cholesky::forward(p), span);
                quote_spanned!(span=> ::autodiff::__private::rules::cholesky::#forward(#(&#operands),*))
            }
            // a column, row or diagonal, owned (the function holds a view)
            Opcode::Primitive(p) if crate::primitives::linalg::is_part(p) => {
                let name = Ident::new(p.name, span);
                let (recv, rest) = operands.split_first().expect("receiver");
                quote_spanned!(span=> #recv.#name(#(#rest),*).into_owned())
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
            Opcode::Call(path) => call_expr(path, operands, span),
            Opcode::Place(steps) => {
                let root = arg(0);
                let path = place_path(steps, operands);
                quote!(#root #path)
            }
            Opcode::Tuple => quote!((#(#operands),*)),
            Opcode::MatrixNew(path) => quote_spanned!(span=> #path::new(#(#operands),*)),
            // the data as the constructor takes it: a `Vec` (`from_vec`) owned, a slice borrowed
            Opcode::MatrixFrom { ty, function, .. } => {
                let (data, dims) = operands.split_last().expect("the data argument");
                let data = if function == "from_vec" {
                    quote!(::core::clone::Clone::clone(&#data))
                } else {
                    quote!(&(#data)[..])
                };
                quote_spanned!(span=> #ty::#function(#(#dims,)* #data))
            }
            // copies: a field's value (a vector) may still be read after the call
            Opcode::MakeStruct(path, fields) => {
                quote!(#path { #(#fields: ::core::clone::Clone::clone(&#operands)),* })
            }
            Opcode::MakeTuple => quote!((#(::core::clone::Clone::clone(&#operands),)*)),
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
            // the type the user wrote on its `let`, which inference may need
            Opcode::Call(_) | Opcode::Method(..) if self.declared.contains_key(&v) => {
                let ty = &self.declared[&v];
                quote!({ let value: #ty = #expr; value })
            }
            _ => quote!((#expr)),
        }
    }

    // ---- saved values and records ----

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
                    use #private::{ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _, ScalarCotangent as _};
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
                use #private::{ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _, ScalarCotangent as _};
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
                        use #private::{ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _, ScalarCotangent as _};
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
        declared: HashMap::new(),
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
