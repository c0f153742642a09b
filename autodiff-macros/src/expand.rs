//! The whole expansion of `#[differentiate]` as a plain function on token streams:
//! args → lower → remat → last_pick → hoist → analysis → codegen, with errors collected along the way.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::ItemFn;

use crate::args::{self, Output};
use crate::codegen::{self, Context, ValueNames, Variant};
use crate::errors::Errors;
use crate::ir::ParamRole;
use crate::{analysis, hoist, ir, last_pick, lower, names, remat};

/// Expands `#[differentiate(attr)] item`. Never panics: what cannot be differentiated
/// becomes `compile_error!`s next to the untouched item.
pub fn differentiate(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            return match syn::parse2::<syn::ItemImpl>(item.clone()) {
                Ok(block) => crate::methods::differentiate_impl(attr, block),
                Err(_) => not_a_function(item),
            }
        }
    };
    // `macro_rules!` wraps fragments in invisible groups; the analysis works on a copy with
    // them removed (as parentheses), while the user's function is emitted as written
    let mut normalized = item_fn.clone();
    Ungroup.visit_item_fn_mut(&mut normalized);
    LetConditionsAsMatches.visit_block_mut(&mut normalized.block);
    let mut errors = Errors::default();
    let options = match args::parse_options(attr) {
        Ok(options) => options,
        Err(e) => {
            errors.push_error(e);
            args::Options::default()
        }
    };
    let mut ir_text = String::new();
    let generated = if options.partials.is_some() {
        crate::partials::generate(&normalized, &options, &mut errors)
    } else {
        generate(&normalized, &options, &mut errors, &mut ir_text)
    };
    let mut out = item_fn.to_token_stream();
    match generated {
        Some(items) if errors.is_empty() => {
            let items = with_body_uses(items, &normalized);
            if options.dump || dump_requested(&item_fn.sig.ident.to_string()) {
                eprintln!(
                    "// #[differentiate] {name}: IR with saved values\n{ir}\n// generated code\n{code}",
                    name = item_fn.sig.ident,
                    ir = ir_text.lines().map(|l| format!("// {l}")).collect::<Vec<_>>().join("\n"),
                    code = pretty(&items)
                );
            }
            out.extend(items);
        }
        _ => {
            out.extend(errors.to_compile_errors());
            let mut scratch = Errors::default();
            if let Some(sig) = args::signature(&normalized, &mut scratch) {
                // the stubs follow `wrt` when it is valid, so that correct callers type-check
                let mut active = args::active_set(&sig, &options, &mut scratch);
                if !scratch.is_empty() {
                    active =
                        args::active_set(&sig, &args::Options::default(), &mut Errors::default());
                }
                if active.iter().any(|a| *a) {
                    out.extend(codegen::stubs(&normalized, &sig, &active));
                }
            }
        }
    }
    out
}

/// The `use` items at the top of the function's body, repeated at the top of every generated
/// function, so that the names they bring are in scope there as in the function.
fn with_body_uses(items: TokenStream, item: &ItemFn) -> TokenStream {
    let uses: Vec<syn::Stmt> = item
        .block
        .stmts
        .iter()
        .filter(|stmt| matches!(stmt, syn::Stmt::Item(syn::Item::Use(_))))
        .filter_map(|stmt| syn::parse2(quote!(#[allow(unused_imports)] #stmt)).ok())
        .collect();
    if uses.is_empty() {
        return items;
    }
    let Ok(mut file) = syn::parse2::<syn::File>(items.clone()) else {
        return items;
    };
    let prepend = |block: &mut syn::Block| {
        let body = std::mem::take(&mut block.stmts);
        block.stmts = uses.iter().cloned().chain(body).collect();
    };
    for generated in &mut file.items {
        match generated {
            syn::Item::Fn(f) => prepend(&mut f.block),
            syn::Item::Impl(i) => {
                for member in &mut i.items {
                    if let syn::ImplItem::Fn(f) = member {
                        prepend(&mut f.block);
                    }
                }
            }
            _ => {}
        }
    }
    file.to_token_stream()
}

/// Replaces the invisible groups of macro fragments: types by their content, expressions by
/// parentheses (which keep the precedence the group stood for).
struct Ungroup;

impl VisitMut for Ungroup {
    fn visit_type_mut(&mut self, ty: &mut syn::Type) {
        while let syn::Type::Group(group) = ty {
            *ty = (*group.elem).clone();
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }

    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        if let syn::Expr::Group(group) = expr {
            *expr = syn::Expr::Paren(syn::ExprParen {
                attrs: group.attrs.clone(),
                paren_token: syn::token::Paren(group.group_token.span),
                expr: group.expr.clone(),
            });
        }
        syn::visit_mut::visit_expr_mut(self, expr);
    }
}

/// `if let P = e { a } else { b }` read as `match e { P => { a } _ => b }`, and `while let P
/// = e { body }` as `loop { match e { P => { body } _ => break } }`, which the lowering has
/// (the same patterns, bindings and errors as in a `match`). A `let` inside a longer condition
/// (a let chain) is left for `lower_condition` to report.
struct LetConditionsAsMatches;

impl VisitMut for LetConditionsAsMatches {
    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        syn::visit_mut::visit_expr_mut(self, expr);
        let rewritten = match &*expr {
            syn::Expr::If(e) => {
                let syn::Expr::Let(condition) = &*e.cond else {
                    return;
                };
                let span = condition.let_token.span;
                let (attrs, pat, scrutinee, then) =
                    (&e.attrs, &condition.pat, &condition.expr, &e.then_branch);
                let otherwise = match &e.else_branch {
                    Some((_, otherwise)) => quote!(#otherwise),
                    None => quote!({}),
                };
                quote::quote_spanned! {span=>
                    #(#attrs)* match #scrutinee { #pat => #then _ => #otherwise }
                }
            }
            syn::Expr::While(e) => {
                let syn::Expr::Let(condition) = &*e.cond else {
                    return;
                };
                let span = condition.let_token.span;
                let (attrs, label, pat, scrutinee, body) =
                    (&e.attrs, &e.label, &condition.pat, &condition.expr, &e.body);
                quote::quote_spanned! {span=>
                    #(#attrs)* #label loop { match #scrutinee { #pat => #body _ => break } }
                }
            }
            _ => return,
        };
        if let Ok(matched) = syn::parse2(rewritten) {
            *expr = matched;
        }
    }
}

fn not_a_function(item: TokenStream) -> TokenStream {
    let span = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Struct(s)) => s
            .struct_token
            .span
            .join(s.ident.span())
            .unwrap_or(s.ident.span()),
        Ok(syn::Item::Enum(e)) => e
            .enum_token
            .span
            .join(e.ident.span())
            .unwrap_or(e.ident.span()),
        Ok(syn::Item::Const(c)) => c.const_token.span,
        Ok(syn::Item::Static(s)) => s.static_token.span,
        Ok(syn::Item::Mod(m)) => m.mod_token.span,
        Ok(syn::Item::Trait(t)) => t.trait_token.span,
        Ok(other) => other.span(),
        Err(_) => item
            .clone()
            .into_iter()
            .next()
            .map(|t| t.span())
            .unwrap_or_else(proc_macro2::Span::call_site),
    };
    let error = syn::Error::new(
        span,
        "#[differentiate] applies to functions only; put it on a `fn` that computes a float",
    )
    .to_compile_error();
    quote!(#item #error)
}

fn dump_requested(name: &str) -> bool {
    match std::env::var("AUTODIFF_DUMP") {
        Ok(value) => value
            .split(',')
            .any(|v| v.trim() == name || v.trim() == "1" || v.trim() == "all"),
        Err(_) => false,
    }
}

/// Formats generated items as Rust source.
pub fn pretty(items: &TokenStream) -> String {
    match syn::parse2::<syn::File>(items.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => items.to_string(),
    }
}

/// What the backward pass of `m.map(closure)` can rebuild each element's pullback from (see
/// [`ir::RebuiltFrom`]): the closure, lifted as `codegen` lifts it (with `f64` for an
/// element type it does not name, which changes no saved value), is lowered and analysed as
/// its own expansion will be, and qualifies when it is straight-line code whose pullback
/// holds nothing but its parameter and its result.
fn rebuilt_from(outer: &ItemFn, closure: &ir::MapClosure) -> Option<ir::RebuiltFrom> {
    if !closure.captures.is_empty() {
        // its pullback holds what it read besides its element
        return None;
    }
    let ty = closure
        .param_ty
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(f64));
    let mut generics = outer.sig.generics.clone();
    generics.params = generics
        .params
        .into_iter()
        .filter(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
        .collect();
    let (name, param, body) = (&closure.function, &closure.param, &closure.closure.body);
    let where_clause = &generics.where_clause;
    let item: ItemFn =
        syn::parse2(quote!(fn #name #generics (#param: #ty) -> #ty #where_clause { #body }))
            .ok()?;
    let mut errors = Errors::default();
    let mut sig = args::signature(&item, &mut errors)?;
    let active = args::active_set(&sig, &args::Options::default(), &mut errors);
    args::avoid_generated_names(&mut sig);
    let mut lowered = lower::lower(&item, &sig, &mut errors)?;
    remat::rematerialise_filled_elements(&mut lowered.func);
    last_pick::remember_last_picks(&mut lowered.func);
    hoist::hoist_invariants(&mut lowered.func);
    let func = &lowered.func;
    ir::verify(func).ok()?;
    let analysis = analysis::analyze(func, &active, &lowered.annotations, &[ty], &mut errors);
    if !errors.is_empty() || !analysis.parameter_set_methods.is_empty() {
        return None;
    }
    // no branch, loop or call: its pullback has no record and no callee's pullback
    let mut straight = true;
    func.walk_insts(func.entry, &mut |inst| {
        let data = func.inst(inst);
        if !data.arms.is_empty()
            || matches!(
                data.opcode,
                ir::Opcode::Call(_) | ir::Opcode::MapElementwise(_)
            )
        {
            straight = false;
        }
    });
    let element = func.params.first()?.value;
    let result = *func.block(func.entry).yields.first()?;
    let names = ValueNames::new(func);
    let mut from = ir::RebuiltFrom {
        element: None,
        result: None,
    };
    for v in (0..func.values.len()).map(|v| ir::Value(v as u32)) {
        if !analysis.is_saved(v) {
            continue;
        }
        if v == element {
            from.element = Some(names.name(v).clone());
        } else if v == result {
            from.result = Some(names.name(v).clone());
        } else {
            return None;
        }
    }
    (straight && (from.element.is_some() || from.result.is_some())).then_some(from)
}

fn generate(
    item: &ItemFn,
    options: &args::Options,
    errors: &mut Errors,
    ir_text: &mut String,
) -> Option<TokenStream> {
    let mut as_path_calls = None;
    let generated = generate_once(item, options, errors, ir_text, Some(&mut as_path_calls));
    match as_path_calls {
        Some(rewritten) => generate_once(&rewritten, options, errors, ir_text, None),
        None => generated,
    }
}

/// [`generate`], once. Where methods without a rule are called on parameter sets, it leaves
/// `as_path_calls` (when given) the function with them written as path calls, to be read
/// again, instead of reporting them.
fn generate_once(
    item: &ItemFn,
    options: &args::Options,
    errors: &mut Errors,
    ir_text: &mut String,
    as_path_calls: Option<&mut Option<ItemFn>>,
) -> Option<TokenStream> {
    let mut sig = args::signature(item, errors)?;
    let active = args::active_set(&sig, options, errors);
    args::avoid_generated_names(&mut sig);
    if !errors.is_empty() {
        return None;
    }
    let (item, added_float_bounds) =
        with_float_bounds(&with_parameter_set_bounds(item, &sig, &active));
    let item = &item;
    if !active.iter().any(|a| *a) {
        // a plain user type is read as a constant: perhaps an alias of a float type
        let alias = sig.params.iter().find_map(|p| match &p.ty {
            syn::Type::Path(t) if t.qself.is_none() && t.path.get_ident().is_some() => {
                let ty = t.path.get_ident()?.to_string();
                ty.starts_with(char::is_uppercase)
                    .then(|| (p.source.to_string(), ty))
            }
            _ => None,
        });
        let mut message = String::from(
            "no parameter of this function can carry a derivative; give it a parameter of type `f32`, `f64` or a generic float `T`",
        );
        if let Some((name, ty)) = alias {
            message.push_str(&format!(
                " (`{name}: {ty}` is read as a constant, a settings struct or an enum; if `{ty}` is an alias of a float type, write that type: the macro does not see through aliases)"
            ));
        }
        errors.push(item.sig.ident.span(), message);
        return None;
    }
    reject_nested_uses(item, errors);
    let mut lowered = lower::lower(item, &sig, errors)?;
    remat::rematerialise_filled_elements(&mut lowered.func);
    last_pick::remember_last_picks(&mut lowered.func);
    hoist::hoist_invariants(&mut lowered.func);
    for k in 0..lowered.func.closures.len() {
        lowered.func.closures[k].rebuilt_from = rebuilt_from(item, &lowered.func.closures[k]);
    }
    let with_bounds = with_built_struct_bounds(item, &lowered);
    let item = &with_bounds;
    let func = &lowered.func;
    if let Err(message) = ir::verify(func) {
        errors.push(
            item.sig.ident.span(),
            format!("internal error in #[differentiate] (please report it): {message}"),
        );
        return None;
    }
    let output_types: Vec<syn::Type> = match &sig.output {
        Output::Scalar(t) => vec![t.clone()],
        Output::Tuple(ts) => ts.clone(),
        Output::Array(t) => vec![t.clone()],
        // the fields' types are not in the signature: the analysis infers them; a struct
        // returned whole has the declared type
        Output::Struct(s) if s.fields.is_empty() => vec![s.ty.clone()],
        Output::Struct(_) => Vec::new(),
    };
    let before = errors.len();
    let public = analysis::analyze(func, &active, &lowered.annotations, &output_types, errors);
    let public_failed = errors.len() > before;
    let all: Vec<bool> = sig
        .params
        .iter()
        .map(|p| p.role == ParamRole::Float)
        .collect();
    let hidden = (all != active).then(|| {
        let mut hidden_errors = Errors::default();
        let hidden = analysis::analyze(
            func,
            &all,
            &lowered.annotations,
            &output_types,
            &mut hidden_errors,
        );
        // what only the all-active pullback trips on comes from an argument `wrt` leaves
        // out; reported once the public pullback is clean, saying why
        if !public_failed {
            errors.append_with_note(
                hidden_errors,
                " (here for an argument `wrt` leaves out: other #[differentiate] functions call this one through a pullback that differentiates every float argument)",
            );
        }
        hidden
    });
    let methods: Vec<proc_macro2::Ident> = public
        .parameter_set_methods
        .iter()
        .chain(hidden.iter().flat_map(|h| &h.parameter_set_methods))
        .cloned()
        .collect();
    if !methods.is_empty() {
        match as_path_calls {
            Some(slot) if errors.is_empty() => {
                let receivers: Vec<(proc_macro2::Ident, syn::Type)> = sig
                    .params
                    .iter()
                    .zip(&func.param_structs)
                    .filter(|(_, is_set)| **is_set)
                    .map(|(p, _)| (p.source.clone(), p.ty.clone()))
                    .collect();
                *slot = Some(crate::methods::as_path_calls(item, &receivers, &methods));
                return None;
            }
            _ => analysis::report_parameter_set_methods(&methods, errors),
        }
    }
    if !errors.is_empty() {
        return None;
    }
    *ir_text = ir::print(func, &analysis::RecordNotes(&public));
    let hidden_item = with_deferred_bounds(item, &sig, &active);
    let mut ctx = Context {
        item,
        sig: &sig,
        func,
        names: ValueNames::new(func),
        fused_scope: Default::default(),
        kept_calls: Default::default(),
        replay_slots: Default::default(),
        unsaved_arrays: Default::default(),
        lazy_cotangents: Default::default(),
        row_reads: Default::default(),
        separate_hidden: hidden.is_some(),
        float_calls: codegen::float_calls(func, &public, &added_float_bounds),
        added_float_bounds,
        lifted_maps: Default::default(),
        declared: lowered.annotations.clone(),
    };
    let all_variants: Vec<&analysis::Analysis> =
        std::iter::once(&public).chain(hidden.as_ref()).collect();
    ctx.lifted_maps = ctx.maps_through_lifted(&all_variants);
    let mut items = ctx.variant_items(
        &Variant {
            analysis: &public,
            hidden: false,
            shifted: Default::default(),
            fused: None,
            eager: Vec::new(),
        },
        errors,
    );
    match &hidden {
        Some(hidden) => {
            ctx.item = &hidden_item;
            items.extend(ctx.variant_items(
                &Variant {
                    analysis: hidden,
                    hidden: true,
                    shifted: Default::default(),
                    fused: None,
                    eager: Vec::new(),
                },
                errors,
            ));
            ctx.item = item;
        }
        None => items.extend(ctx.hidden_alias(&public)),
    }
    items.extend(ctx.zero_output());
    let mut variants = vec![&public];
    variants.extend(&hidden);
    items.extend(ctx.lifted_closures(&variants));
    errors.is_empty().then_some(items)
}

/// The function with `Spring<T>: Differentiable` added to its `where` clause for each
/// differentiated parameter set of a generic struct, for the generated items, which need it
/// (the function as written does not, and is emitted unchanged). Those `wrt` leaves out get
/// it on the hidden items only ([`with_deferred_bounds`]).
fn with_parameter_set_bounds(item: &ItemFn, sig: &args::Signature, active: &[bool]) -> ItemFn {
    let mut item = item.clone();
    for (param, _) in sig.params.iter().zip(active).filter(|(_, a)| **a) {
        if let Some(ty) = args::generic_parameter_set(param) {
            if let Ok(bound) = syn::parse2(quote!(#ty: ::autodiff::__private::Differentiable)) {
                item.sig.generics.make_where_clause().predicates.push(bound);
            }
        }
    }
    item
}

/// The function with `for<'__autodiff_any> Settings: Differentiable + Clone` added to its
/// `where` clause for each struct parameter `wrt` leaves out, for the hidden all-active items,
/// which differentiate it: a struct of settings or data read as a constant need not derive
/// `Differentiable` unless another differentiated function passes it on. The binder keeps
/// rustc from rejecting the bound where it does not hold (a bound on a concrete type is
/// checked where it is written); the items are then never called.
fn with_deferred_bounds(item: &ItemFn, sig: &args::Signature, active: &[bool]) -> ItemFn {
    let mut item = item.clone();
    let generics = args::type_params(&item);
    for (param, &is_active) in sig.params.iter().zip(active) {
        if is_active || param.role != ParamRole::Float {
            continue;
        }
        let ty = args::strip_reference(&param.ty);
        let tuple = args::is_float_tuple(ty, &generics);
        if !tuple && (!args::is_user_enum_like(ty) || args::is_float_type(ty, &generics)) {
            continue;
        }
        let Some(ty) = with_any_lifetime(ty) else {
            continue;
        };
        let any = names::deferred_bound_lifetime();
        let bound = quote! {
            for<#any> #ty: ::autodiff::__private::Differentiable + ::core::clone::Clone
        };
        if let Ok(bound) = syn::parse2(bound) {
            item.sig.generics.make_where_clause().predicates.push(bound);
        }
    }
    item
}

/// `ty` with every `'_` written as the bound's `'__autodiff_any`; `None` when it names
/// another lifetime, which the items' structs (without lifetimes) could not hold anyway.
fn with_any_lifetime(ty: &syn::Type) -> Option<syn::Type> {
    struct Rename(bool);
    impl syn::visit_mut::VisitMut for Rename {
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if lifetime.ident == "_" {
                *lifetime = names::deferred_bound_lifetime();
            } else if lifetime.ident != "static" {
                self.0 = true;
            }
        }
    }
    let mut ty = ty.clone();
    let mut rename = Rename(false);
    syn::visit_mut::VisitMut::visit_type_mut(&mut rename, &mut ty);
    (!rename.0).then_some(ty)
}

/// The function with `T: Float` added to its `where` clause for each type parameter whose
/// bounds do not name `Float`, for the generated items, which compute with num-traits' `Float`:
/// nalgebra code is usually generic over `T: RealField + Copy` alone, and writing both bounds
/// would make every float method of the body ambiguous (`ComplexField::sin` or `Float::sin`).
fn with_float_bounds(item: &ItemFn) -> (ItemFn, Vec<proc_macro2::Ident>) {
    let mut item = item.clone();
    let names_float =
        |bounds: &syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]>| {
            bounds.iter().any(|b| {
                matches!(b, syn::TypeParamBound::Trait(t)
                if t.path.segments.last().is_some_and(|s| s.ident == "Float"))
            })
        };
    let mut missing = Vec::new();
    for param in item.sig.generics.type_params() {
        let in_where = item.sig.generics.where_clause.iter().any(|w| {
            w.predicates.iter().any(|p| {
                matches!(p, syn::WherePredicate::Type(t)
                    if matches!(&t.bounded_ty, syn::Type::Path(tp) if tp.path.is_ident(&param.ident))
                        && names_float(&t.bounds))
            })
        });
        if !names_float(&param.bounds) && !in_where {
            missing.push(param.ident.clone());
        }
    }
    for ident in &missing {
        if let Ok(bound) = syn::parse2(quote!(#ident: ::autodiff::__private::num_traits::Float)) {
            item.sig.generics.make_where_clause().predicates.push(bound);
        }
    }
    (item, missing)
}

/// The function with `Pt<T>: Differentiable` added to its `where` clause for each generic
/// struct it builds and passes to a call (`MakeStruct`): the callee's generated items require
/// it of their parameter set, and so do the caller's, which call them.
fn with_built_struct_bounds(item: &ItemFn, lowered: &lower::Lowered) -> ItemFn {
    let mut item = item.clone();
    let mut added: Vec<String> = Vec::new();
    for data in &lowered.func.insts {
        if !matches!(data.opcode, ir::Opcode::MakeStruct(..)) {
            continue;
        }
        let Some(ty) = data
            .results
            .first()
            .and_then(|r| lowered.annotations.get(r))
        else {
            continue;
        };
        let generic = matches!(ty, syn::Type::Path(p)
            if p.path.segments.iter().any(|s| !s.arguments.is_none()));
        let text = quote!(#ty).to_string();
        if !generic || added.contains(&text) {
            continue;
        }
        if let Ok(bound) = syn::parse2(quote!(#ty: ::autodiff::__private::Differentiable)) {
            item.sig.generics.make_where_clause().predicates.push(bound);
            added.push(text);
        }
    }
    item
}

/// A `use` item in an inner block of the function (its scope is that block, which the
/// generated functions do not have): an error; those at the top of the body are repeated in
/// every generated function.
fn reject_nested_uses(item: &ItemFn, errors: &mut Errors) {
    struct Finder<'a>(&'a mut Errors);
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
            self.0.push(
                u.use_token.span,
                "a `use` inside an inner block is not supported in #[differentiate] functions; move it to the top of the function body",
            );
        }
    }
    let mut finder = Finder(errors);
    for stmt in &item.block.stmts {
        if !matches!(stmt, syn::Stmt::Item(syn::Item::Use(_))) {
            syn::visit::Visit::visit_stmt(&mut finder, stmt);
        }
    }
}
