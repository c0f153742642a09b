//! Turns the analysed IR into Rust: the saved-value struct and branch enums, the forward
//! function that fills them, `backward`, `_grad`, and the hidden all-active pullback.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use std::collections::{HashMap, HashSet};
use syn::{GenericParam, ItemFn};

use crate::analysis::{rule_of, Analysis};
use crate::args::{Output, Signature};
use crate::errors::Errors;
use crate::ir::{
    BinaryOp, BitOp, Block, CompareOp, Function, Inst, OpaquePiece, Opcode, ParamRole, UnaryOp,
    Value, ValueDef,
};
use crate::names;
use crate::primitives::Read;

/// Readable, unique identifiers for every value and its cotangent.
pub struct ValueNames {
    names: Vec<Ident>,
    cotangents: Vec<Ident>,
}

impl ValueNames {
    /// Chooses names: parameters keep theirs, bound values take the variable's name with a
    /// numeric suffix on reassignment, temporaries are `v<n>`.
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
            let base = base.trim_start_matches("r#").to_string();
            let mut candidate = base.clone();
            let mut k = 1;
            while used.contains(&candidate)
                || candidate.starts_with("branch")
                || candidate.starts_with("call")
            {
                candidate = format!("{base}_{k}");
                k += 1;
            }
            used.insert(candidate.clone());
            names[i] = Some(Ident::new(&candidate, data.span));
        }
        let names: Vec<Ident> = names.into_iter().map(|n| n.expect("named")).collect();
        let mut cot_used = used.clone();
        let cotangents = names
            .iter()
            .map(|n| {
                let mut candidate = format!("d_{n}");
                while cot_used.contains(&candidate) {
                    candidate = format!("d_{candidate}");
                }
                cot_used.insert(candidate.clone());
                Ident::new(&candidate, n.span())
            })
            .collect();
        ValueNames { names, cotangents }
    }

    fn name(&self, v: Value) -> &Ident {
        &self.names[v.index()]
    }

    fn cotangent(&self, v: Value) -> &Ident {
        &self.cotangents[v.index()]
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
}

/// One generated variant: the public one (respecting `wrt`) or the hidden all-active one.
pub struct Variant<'a> {
    /// Analyses for this variant's active set.
    pub analysis: &'a Analysis,
    /// Whether this is the hidden all-active pullback called by other differentiated functions.
    pub hidden: bool,
}

struct Frames {
    /// Per instruction: the index of its branch record, for reversed `if`/`match`.
    branch_index: HashMap<Inst, usize>,
}

const RUNTIME: &str = "::autodiff::__private";

fn private() -> TokenStream {
    RUNTIME.parse().expect("valid path")
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

    fn type_param_idents(&self) -> Vec<Ident> {
        crate::args::type_params(self.item)
    }

    fn struct_ty_args(&self) -> TokenStream {
        let generics = self.struct_generics();
        let (_, ty_generics, _) = generics.split_for_impl();
        quote!(#ty_generics)
    }

    fn marker_type(&self) -> Option<TokenStream> {
        let params = self.type_param_idents();
        if params.is_empty() {
            return None;
        }
        let private = private();
        Some(quote!(#private::PhantomData<fn() -> (#(#params,)*)>))
    }

    fn vis(&self) -> &syn::Visibility {
        &self.item.vis
    }

    fn cfg_attrs(&self) -> Vec<&syn::Attribute> {
        self.item
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"))
            .collect()
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

    fn param_names(&self) -> Vec<&Ident> {
        self.sig.params.iter().map(|p| &p.name).collect()
    }

    fn return_type(&self) -> &syn::Type {
        &self.sig.return_type
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
                let ty = &p.ty;
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

/// The path of the hidden all-active pullback of the function a call refers to.
pub fn hidden_callee(path: &syn::ExprPath) -> syn::ExprPath {
    let mut path = path.clone();
    if let Some(last) = path.path.segments.last_mut() {
        last.ident = names::hidden_pullback_fn(&last.ident);
    }
    path
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

impl<'a> Context<'a> {
    fn frames(&self, analysis: &Analysis) -> Frames {
        let mut branch_index = HashMap::new();
        self.func.walk_insts(self.func.entry, &mut |inst| {
            if matches!(self.func.inst(inst).opcode, Opcode::If | Opcode::Match(_))
                && analysis.reversed[inst.index()]
            {
                let next = branch_index.len();
                branch_index.insert(inst, next);
            }
        });
        Frames { branch_index }
    }

    /// Tokens evaluating a value in the forward pass: its name, or a constant inline.
    fn operand(&self, v: Value) -> TokenStream {
        if let Some(inst) = self.func.def_inst(v) {
            if let Opcode::Const(tokens) = &self.func.inst(inst).opcode {
                return tokens.clone();
            }
        }
        let name = self.names.name(v);
        quote!(#name)
    }

    /// The expression an instruction computes, given tokens for its operands.
    fn inst_expr(&self, inst: Inst, operands: &[TokenStream]) -> TokenStream {
        let data = self.func.inst(inst);
        let span = data.span;
        match &data.opcode {
            Opcode::Const(tokens) => tokens.clone(),
            Opcode::Binary(op) => {
                let (a, b) = (&operands[0], &operands[1]);
                let op = binary_token(*op);
                quote_spanned!(span=> #a #op #b)
            }
            Opcode::Unary(UnaryOp::Neg) => {
                let a = &operands[0];
                quote_spanned!(span=> -#a)
            }
            Opcode::Unary(UnaryOp::Not) => {
                let a = &operands[0];
                quote_spanned!(span=> !#a)
            }
            Opcode::Cast(ty) => {
                let a = &operands[0];
                quote_spanned!(span=> #a as #ty)
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
            Opcode::Opaque(opaque) => opaque
                .pieces
                .iter()
                .map(|piece| match piece {
                    OpaquePiece::Tokens(t) => t.clone(),
                    OpaquePiece::Hole(i) => operands[*i].clone(),
                })
                .collect(),
            Opcode::If | Opcode::Match(_) => {
                unreachable!("structured instructions are emitted separately")
            }
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

    // ---- types and declarations ----

    fn saved_in_block(&self, analysis: &Analysis, block: Block) -> Vec<Value> {
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

    fn branches_in_block(&self, frames: &Frames, block: Block) -> Vec<(Inst, usize)> {
        self.func
            .block(block)
            .insts
            .iter()
            .filter_map(|inst| frames.branch_index.get(inst).map(|&i| (*inst, i)))
            .collect()
    }

    fn field_decls(
        &self,
        analysis: &Analysis,
        frames: &Frames,
        block: Block,
        hidden: bool,
        errors: &mut Errors,
    ) -> Vec<TokenStream> {
        let mut fields = Vec::new();
        for v in self.saved_in_block(analysis, block) {
            let name = self.names.name(v);
            match &analysis.types[v.index()] {
                Some(syn::Type::Reference(r)) if copies_through_reference(&r.elem) => {
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
        let ty_args = self.struct_ty_args();
        for (_, index) in self.branches_in_block(frames, block) {
            let field = names::branch_field(index);
            let enum_name = names::branch_enum(&self.func.name, hidden, index);
            fields.push(quote!(#field: #enum_name #ty_args));
        }
        fields
    }

    fn field_inits(&self, analysis: &Analysis, frames: &Frames, block: Block) -> Vec<TokenStream> {
        let mut inits: Vec<TokenStream> = self
            .saved_in_block(analysis, block)
            .into_iter()
            .map(|v| {
                let name = self.names.name(v);
                match &analysis.types[v.index()] {
                    Some(syn::Type::Reference(_)) => quote!(#name: *#name),
                    _ => quote!(#name),
                }
            })
            .collect();
        for (_, index) in self.branches_in_block(frames, block) {
            let field = names::branch_field(index);
            inits.push(quote!(#field));
        }
        inits
    }

    fn field_bindings(
        &self,
        analysis: &Analysis,
        frames: &Frames,
        block: Block,
    ) -> Vec<TokenStream> {
        let mut names: Vec<TokenStream> = self
            .saved_in_block(analysis, block)
            .into_iter()
            .map(|v| {
                let name = self.names.name(v);
                quote!(#name)
            })
            .collect();
        for (_, index) in self.branches_in_block(frames, block) {
            let field = names::branch_field(index);
            names.push(quote!(#field));
        }
        names
    }

    /// The struct and branch enums of one variant.
    fn declarations(
        &self,
        variant: &Variant,
        frames: &Frames,
        struct_name: &Ident,
        errors: &mut Errors,
    ) -> TokenStream {
        let analysis = variant.analysis;
        let generics = self.struct_generics();
        let (impl_generics, _, where_clause) = generics.split_for_impl();
        let _ = impl_generics;
        let params = &generics.params;
        let vis = self.vis();
        let cfgs = self.cfg_attrs();
        let marker = self.marker_type();
        let fields = self.field_decls(analysis, frames, self.func.entry, variant.hidden, errors);
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
            #[allow(non_camel_case_types, dead_code, clippy::all)]
            #vis struct #struct_name <#params> #where_clause {
                #(#fields,)*
                #marker_field
            }
        };
        let mut branches: Vec<(Inst, usize)> =
            frames.branch_index.iter().map(|(i, n)| (*i, *n)).collect();
        branches.sort_by_key(|(_, n)| *n);
        for (inst, index) in branches {
            let data = self.func.inst(inst);
            let enum_name = names::branch_enum(fname, variant.hidden, index);
            let is_if = matches!(data.opcode, Opcode::If);
            let variants: Vec<TokenStream> = data
                .arms
                .iter()
                .enumerate()
                .map(|(arm_index, &arm)| {
                    let variant_name = names::arm_variant(is_if, arm_index);
                    let fields = self.field_decls(analysis, frames, arm, variant.hidden, errors);
                    quote!(#variant_name { #(#fields),* })
                })
                .collect();
            let marker_variant = marker
                .as_ref()
                .map(|m| quote!(#[doc(hidden)] __Marker(#m, ::core::convert::Infallible),));
            let text = format!(
                " Which arm of a branch in [`{fname}`] ran, with the values saved on that arm."
            );
            let doc = if variant.hidden {
                quote!(#[doc(hidden)])
            } else {
                quote!(#[doc = #text])
            };
            out.extend(quote! {
                #doc
                #(#cfgs)*
                #[allow(non_camel_case_types, dead_code, clippy::all)]
                #vis enum #enum_name <#params> #where_clause {
                    #(#variants,)*
                    #marker_variant
                }
            });
        }
        out
    }

    // ---- forward pass ----

    fn forward_block(
        &self,
        variant: &Variant,
        frames: &Frames,
        block: Block,
        struct_path: &TokenStream,
    ) -> TokenStream {
        let mut out = TokenStream::new();
        for &inst in &self.func.block(block).insts {
            let data = self.func.inst(inst);
            match &data.opcode {
                Opcode::Const(_) => {}
                Opcode::If | Opcode::Match(_) => {
                    out.extend(self.forward_branch(variant, frames, inst, struct_path))
                }
                _ => {
                    let operands: Vec<TokenStream> =
                        data.args.iter().map(|a| self.operand(*a)).collect();
                    let expr = self.inst_expr(inst, &operands);
                    let results: Vec<TokenStream> = data
                        .results
                        .iter()
                        .map(|r| {
                            let n = self.names.name(*r);
                            quote!(#n)
                        })
                        .collect();
                    let pattern = tuple_pattern(&results);
                    out.extend(quote!(let #pattern = #expr;));
                }
            }
        }
        out
    }

    fn forward_branch(
        &self,
        variant: &Variant,
        frames: &Frames,
        inst: Inst,
        struct_path: &TokenStream,
    ) -> TokenStream {
        let data = self.func.inst(inst);
        let record = frames.branch_index.get(&inst).copied();
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
            let field = names::branch_field(index);
            pattern_items.push(quote!(#field));
        }
        let ty_path = record.map(|index| {
            let enum_name = names::branch_enum(&self.func.name, variant.hidden, index);
            quote!(#enum_name)
        });
        let arms: Vec<TokenStream> = data
            .arms
            .iter()
            .enumerate()
            .map(|(arm_index, &arm)| {
                let body = self.forward_block(variant, frames, arm, struct_path);
                let mut tail: Vec<TokenStream> = self
                    .func
                    .block(arm)
                    .yields
                    .iter()
                    .map(|y| self.operand(*y))
                    .collect();
                if let Some(enum_name) = &ty_path {
                    let variant_name = names::arm_variant(is_if, arm_index);
                    let inits = self.field_inits(variant.analysis, frames, arm);
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
            _ => unreachable!(),
        };
        let pattern = tuple_pattern(&pattern_items);
        quote!(let #pattern = #expr;)
    }

    // ---- backward pass ----

    /// A reference to a forward value in the backward pass.
    fn read_ref(&self, analysis: &Analysis, v: Value) -> TokenStream {
        if analysis.constant[v.index()] {
            let e = self.constant_expr(v);
            quote!(&#e)
        } else {
            let n = self.names.name(v);
            quote!(#n)
        }
    }

    /// An owned copy of a forward value in the backward pass.
    fn read_owned(&self, analysis: &Analysis, v: Value) -> TokenStream {
        if analysis.constant[v.index()] {
            self.constant_expr(v)
        } else if let Some(syn::Type::Reference(_)) = &analysis.types[v.index()] {
            // saved by copy; the backward pass holds a reference to it, as the forward did
            let n = self.names.name(v);
            quote!(#n)
        } else {
            let n = self.names.name(v);
            quote!(::core::clone::Clone::clone(#n))
        }
    }

    fn contribute(
        &self,
        scope: &mut HashSet<Value>,
        v: Value,
        expr: TokenStream,
        out: &mut TokenStream,
    ) {
        let d = self.names.cotangent(v);
        if scope.contains(&v) {
            let private = private();
            out.extend(quote!(#private::accumulate(&mut #d, #expr);));
        } else {
            out.extend(quote!(let mut #d = #expr;));
            scope.insert(v);
        }
    }

    fn defined_in(&self, block: Block, out: &mut HashSet<Value>) {
        for &inst in &self.func.block(block).insts {
            let data = self.func.inst(inst);
            out.extend(data.results.iter().copied());
            for &arm in &data.arms {
                self.defined_in(arm, out);
            }
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

    fn backward_block(
        &self,
        variant: &Variant,
        block: Block,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        for &inst in self.func.block(block).insts.iter().rev() {
            if !analysis.reversed[inst.index()] {
                continue;
            }
            let data = self.func.inst(inst);
            match &data.opcode {
                Opcode::If | Opcode::Match(_) => self.backward_branch(variant, inst, scope, out),
                Opcode::Call(path) => {
                    if !data.results.iter().any(|r| scope.contains(r)) {
                        continue;
                    }
                    let private = private();
                    let callee = hidden_callee(path);
                    let call_name = names::call_pullback(inst.index());
                    let args: Vec<TokenStream> = data
                        .args
                        .iter()
                        .map(|a| self.read_owned(analysis, *a))
                        .collect();
                    let d_results: Vec<TokenStream> = data
                        .results
                        .iter()
                        .map(|r| {
                            if scope.contains(r) {
                                let d = self.names.cotangent(*r);
                                quote!(#d)
                            } else {
                                quote!(#private::zero())
                            }
                        })
                        .collect();
                    let d_out = tuple_pattern(&d_results);
                    let d_args: Vec<Ident> = (0..data.args.len())
                        .map(|i| format_ident!("{}_d{}", call_name, i))
                        .collect();
                    let span = data.span;
                    out.extend(quote_spanned! {span=>
                        let (_, #call_name) = #callee(#(#args),*);
                        let (#(#d_args,)*) = #call_name.__backward_all(#d_out);
                    });
                    for (arg, d) in data.args.iter().zip(&d_args) {
                        if analysis.is_active(*arg) {
                            self.contribute(scope, *arg, quote!(#d), out);
                        }
                    }
                }
                _ => {
                    let result = data.results[0];
                    if !scope.contains(&result) {
                        continue;
                    }
                    let d = self.names.cotangent(result);
                    for (i, &arg) in data.args.iter().enumerate() {
                        if !analysis.is_active(arg) {
                            continue;
                        }
                        let private = private();
                        let expr = if let Opcode::Cast(_) = data.opcode {
                            quote!(#private::rules::cast_d0(#d))
                        } else {
                            let rule =
                                rule_of(&data.opcode, i).expect("active arguments have rules");
                            let path = Ident::new(rule.path, data.span);
                            let reads: Vec<TokenStream> = rule
                                .reads
                                .iter()
                                .map(|r| match r {
                                    Read::Arg(j) => self.read_ref(analysis, data.args[*j]),
                                    Read::Result => self.read_ref(analysis, result),
                                })
                                .collect();
                            quote!(#private::rules::#path(#(#reads,)* #d))
                        };
                        self.contribute(scope, arg, expr, out);
                    }
                }
            }
        }
    }

    fn backward_branch(
        &self,
        variant: &Variant,
        inst: Inst,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let data = self.func.inst(inst);
        let frames = self.frames(analysis);
        let index = frames.branch_index[&inst];
        let private = private();
        // cotangents of outer values that some arm contributes to must exist before the match
        let mut inside = HashSet::new();
        let mut touched = Vec::new();
        for &arm in &data.arms {
            self.defined_in(arm, &mut inside);
            self.active_refs(analysis, arm, &mut touched);
        }
        let mut declared = HashSet::new();
        for v in touched {
            if inside.contains(&v) || scope.contains(&v) || !declared.insert(v) {
                continue;
            }
            let d = self.names.cotangent(v);
            match &analysis.types[v.index()] {
                Some(ty) if !matches!(ty, syn::Type::Reference(_)) => {
                    out.extend(quote!(let mut #d: #ty = #private::zero();))
                }
                _ => out.extend(quote!(let mut #d = #private::zero();)),
            }
            scope.insert(v);
        }
        let is_if = matches!(data.opcode, Opcode::If);
        let enum_name = names::branch_enum(&self.func.name, variant.hidden, index);
        let field = names::branch_field(index);
        let mut arms = Vec::new();
        for (arm_index, &arm) in data.arms.iter().enumerate() {
            let mut arm_scope = scope.clone();
            let mut body = TokenStream::new();
            for (r, y) in data.results.iter().zip(&self.func.block(arm).yields) {
                if scope.contains(r) && analysis.is_active(*y) {
                    let d = self.names.cotangent(*r);
                    self.contribute(&mut arm_scope, *y, quote!(#d), &mut body);
                }
            }
            self.backward_block(variant, arm, &mut arm_scope, &mut body);
            let variant_name = names::arm_variant(is_if, arm_index);
            let bindings = self.field_bindings(analysis, &frames, arm);
            arms.push(quote!(#enum_name::#variant_name { #(#bindings,)* .. } => { #body }));
        }
        if self.marker_type().is_some() {
            arms.push(quote!(#enum_name::__Marker(_, never) => match *never {},));
        }
        out.extend(quote!(match #field { #(#arms)* }));
    }

    /// The public or hidden items of one variant.
    pub fn variant_items(&self, variant: &Variant, errors: &mut Errors) -> TokenStream {
        let analysis = variant.analysis;
        let frames = self.frames(analysis);
        let fname = &self.func.name;
        let (struct_name, pullback_name) = if variant.hidden {
            (
                names::pullback_struct_all(fname),
                names::hidden_pullback_fn(fname),
            )
        } else {
            (names::pullback_struct(fname), names::pullback_fn(fname))
        };
        let declarations = self.declarations(variant, &frames, &struct_name, errors);
        let private = private();
        let vis = self.vis();
        let cfgs = self.cfg_attrs();
        let fn_generics = self.fn_generics();
        let (fn_impl_generics, _, fn_where) = fn_generics.split_for_impl();
        let _ = fn_impl_generics;
        let fn_params = &fn_generics.params;
        let sgen = self.struct_generics();
        let (s_impl, s_ty, s_where) = sgen.split_for_impl();
        let params = self.params_decl();
        let ret = self.return_type();
        let struct_path = quote!(#struct_name);

        // forward
        let body = self.forward_block(variant, &frames, self.func.entry, &struct_path);
        let yields: Vec<TokenStream> = self
            .func
            .block(self.func.entry)
            .yields
            .iter()
            .map(|y| self.operand(*y))
            .collect();
        let value = tuple_pattern(&yields);
        let inits = self.field_inits(analysis, &frames, self.func.entry);
        let marker_init = self.marker_type().map(|_| {
            let name = names::marker_field();
            quote!(#name: #private::PhantomData,)
        });
        let forward_doc = if variant.hidden {
            quote!(#[doc(hidden)])
        } else {
            let text = format!(" Runs [`{fname}`] and saves what its backward pass needs: returns the value and a [`{struct_name}`].");
            quote!(#[doc = #text])
        };
        // the primal is "used" wherever its derivative is, so users calling only `f_grad`
        // get no dead-code warning for `f`
        let param_types = self.sig.params.iter().map(|p| &p.ty);
        let mark_used = quote!(let _: fn(#(#param_types),*) -> #ret = #fname;);
        let forward = quote! {
            #forward_doc
            #(#cfgs)*
            #[allow(dead_code, unused_variables, unused_parens, unused_braces, clippy::all)]
            #[inline]
            #vis fn #pullback_name <#fn_params> (#(#params),*) -> (#ret, #struct_name #s_ty) #fn_where {
                #mark_used
                #body
                (#value, #struct_name { #(#inits,)* #marker_init })
            }
        };

        // backward
        let mut scope = HashSet::new();
        let mut bwd = TokenStream::new();
        let d_output = names::output_cotangent();
        let entry_yields = self.func.block(self.func.entry).yields.clone();
        match &self.sig.output {
            Output::Scalar(_) => {
                if analysis.is_active(entry_yields[0]) {
                    self.contribute(&mut scope, entry_yields[0], quote!(#d_output), &mut bwd);
                }
            }
            Output::Tuple(types) => {
                let parts: Vec<Ident> = (0..types.len())
                    .map(|i| format_ident!("d_output{}", i))
                    .collect();
                bwd.extend(quote!(let (#(#parts,)*) = #d_output;));
                for (y, part) in entry_yields.iter().zip(&parts) {
                    if analysis.is_active(*y) {
                        self.contribute(&mut scope, *y, quote!(#part), &mut bwd);
                    }
                }
            }
        }
        self.backward_block(variant, self.func.entry, &mut scope, &mut bwd);
        let grads: Vec<TokenStream> = self
            .func
            .params
            .iter()
            .zip(&analysis.active_params)
            .filter_map(|(p, &active)| {
                if active {
                    if scope.contains(&p.value) {
                        let d = self.names.cotangent(p.value);
                        Some(quote!(#d))
                    } else {
                        Some(quote!(#private::zero()))
                    }
                } else if variant.hidden {
                    Some(quote!(()))
                } else {
                    None
                }
            })
            .collect();
        let grads = if !variant.hidden && grads.len() == 1 {
            grads[0].clone()
        } else {
            quote!((#(#grads,)*))
        };
        let grad_ty = self.gradient_type(&analysis.active_params, variant.hidden);
        let bindings = self.field_bindings(analysis, &frames, self.func.entry);
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
        let backward = quote! {
            #(#cfgs)*
            impl #s_impl #struct_name #s_ty #s_where {
                #backward_doc
                #[allow(unused_variables, unused_mut, unused_parens, unused_braces, clippy::all)]
                #[inline]
                #vis fn #backward_name(&self, #d_output: #ret) -> #grad_ty {
                    #destructure
                    #bwd
                    #grads
                }
            }
        };

        // value and gradient
        let grad_fn = match (&self.sig.output, variant.hidden) {
            (Output::Scalar(_), false) => {
                let grad_name = names::grad_fn(fname);
                let args = self.param_names();
                let text = format!(" The value of [`{fname}`] and its gradient with respect to the active arguments.");
                quote! {
                    #[doc = #text]
                    #(#cfgs)*
                    #[allow(dead_code, clippy::all)]
                    #[inline]
                    #vis fn #grad_name <#fn_params> (#(#params),*) -> (#ret, #grad_ty) #fn_where {
                        let (value, pullback) = #pullback_name(#(#args),*);
                        (value, pullback.backward(#private::one()))
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

    /// When `wrt` leaves every float parameter active, the hidden items reuse the public
    /// ones and only reshape the gradient.
    pub fn hidden_alias(&self, analysis: &Analysis) -> TokenStream {
        let fname = &self.func.name;
        let private = private();
        let vis = self.vis();
        let cfgs = self.cfg_attrs();
        let fn_generics = self.fn_generics();
        let fn_params = &fn_generics.params;
        let fn_where = &fn_generics.where_clause;
        let sgen = self.struct_generics();
        let (s_impl, s_ty, s_where) = sgen.split_for_impl();
        let params = self.params_decl();
        let args = self.param_names();
        let ret = self.return_type();
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
        let _ = private;
        quote! {
            #[doc(hidden)]
            #(#cfgs)*
            #[allow(dead_code, clippy::all)]
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
                    let #unpack = self.backward(d_output);
                    (#(#all,)*)
                }
            }
        }
    }
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
    let mut out = TokenStream::new();
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
            #[allow(unused_variables, dead_code, clippy::all)]
            #vis fn #fn_name <#fn_params> (#(#params),*) -> (#ret, #struct_name #s_ty) #fn_where {
                ::core::unreachable!()
            }
            impl #s_impl #struct_name #s_ty #s_where {
                #[allow(unused_variables, dead_code, clippy::all)]
                #vis fn #backward(&self, d_output: #ret) -> #grad_ty {
                    ::core::unreachable!()
                }
            }
        });
        if !hidden && matches!(sig.output, Output::Scalar(_)) {
            let grad_name = names::grad_fn(fname);
            out.extend(quote! {
                #[allow(unused_variables, dead_code, clippy::all)]
                #vis fn #grad_name <#fn_params> (#(#params),*) -> (#ret, #grad_ty) #fn_where {
                    ::core::unreachable!()
                }
            });
        }
    }
    let _ = ValueDef::Param(0);
    out
}
