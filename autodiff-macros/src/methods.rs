//! `#[differentiate]` on an inherent `impl` block: each marked method becomes a free function
//! that goes through the whole pipeline, and `_pullback` / `_grad` methods forward to it.
//!
//! The pullback struct cannot live inside an `impl`, so the attribute on the block emits it
//! (and the free function it belongs to) next to the block. The free function of
//! `Model::loss` is `model_loss`, so its pullback is `ModelLossPullback`; `self` becomes its
//! first parameter `self_` (named `self` in `wrt`), `Self` the block's type, and a call of
//! another marked method (`self.m(..)`, `Self::m(..)`) a call of that method's free function,
//! which composes as calls between differentiated functions do.

use std::collections::HashMap;

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, ImplItem, ImplItemFn, ItemFn, ItemImpl, Pat, Type};

use crate::errors::Errors;
use crate::names;

/// The parameter `self` becomes in a method's free function.
const SELF_PARAM: &str = "self_";

/// Expands `#[differentiate] impl Type { .. }`.
pub fn differentiate_impl(attr: TokenStream, mut block: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.push_spanned(
            &attr,
            "options go on the methods: write `#[differentiate(wrt(..))]` above a method inside the block, and a bare `#[differentiate]` above `impl`",
        );
    }
    if let Some((_, path, _)) = &block.trait_ {
        errors.push_spanned(
            path,
            "#[differentiate] on a trait impl is not supported (the generated `_pullback` and `_grad` methods are not members of the trait); differentiate the method in an inherent `impl` block or as a free function, and call it from the trait method",
        );
    }
    let type_path = match &*block.self_ty {
        Type::Path(p) if p.qself.is_none() && !p.path.segments.is_empty() => Some(p.path.clone()),
        other => {
            errors.push_spanned(
                other,
                "#[differentiate] works on `impl` blocks of named types (`impl Model { .. }`); move the methods to a block of a named type or make them free functions",
            );
            None
        }
    };
    let marked = take_marks(&mut block);
    if marked.is_empty() && errors.is_empty() {
        errors.push(
            block.impl_token.span,
            "no method of this block is marked; put #[differentiate] above each method to differentiate as well",
        );
    }
    let Some(type_path) = type_path.filter(|_| errors.is_empty()) else {
        let errors = errors.to_compile_errors();
        return quote!(#block #errors);
    };

    let type_name = type_path
        .segments
        .last()
        .map(|s| names::unraw(&s.ident))
        .unwrap_or_default();
    let free_names: HashMap<String, Ident> = marked
        .iter()
        .filter_map(|(index, _)| match &block.items[*index] {
            ImplItem::Fn(method) => Some((
                method.sig.ident.to_string(),
                format_ident!(
                    "{}_{}",
                    snake_case(&type_name),
                    names::unraw(&method.sig.ident),
                    span = method.sig.ident.span()
                ),
            )),
            _ => None,
        })
        .collect();
    let rewriter = SelfRewriter {
        self_ty: (*block.self_ty).clone(),
        self_path: turbofished(&type_path),
        free_names: &free_names,
    };

    let mut generated = TokenStream::new();
    let mut wrappers = Vec::new();
    for (index, options) in &marked {
        let ImplItem::Fn(method) = &block.items[*index] else {
            continue;
        };
        let mut errors = Errors::default();
        let Some(free) = free_function(&block, method, &rewriter, &free_names, &mut errors) else {
            if errors.is_empty() {
                // never silently without its methods
                errors.push(
                    method.sig.ident.span(),
                    "internal error in #[differentiate] (please report it): this method could not be written as a free function",
                );
            }
            generated.extend(errors.to_compile_errors());
            continue;
        };
        let options = rename_self(options.clone());
        let items = crate::expand::differentiate(options, free.to_token_stream());
        let (items, signatures) = hide_free_functions(items, &free.sig.ident);
        generated.extend(items);
        wrappers.extend(forwarding_methods(&block, method, &free, &signatures));
        wrappers.extend(callee_entry_points(&block, method, &free, &signatures));
    }
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let self_ty = &block.self_ty;
    let wrapper_block = (!wrappers.is_empty()).then(|| {
        quote! {
            impl #impl_generics #self_ty #where_clause {
                #(#wrappers)*
            }
        }
    });
    quote! {
        #block
        #generated
        #wrapper_block
    }
}

/// Removes the `#[differentiate]` / `#[differentiate(..)]` attributes of the block's methods,
/// returning each marked method's position and its options.
fn take_marks(block: &mut ItemImpl) -> Vec<(usize, TokenStream)> {
    let mut marked = Vec::new();
    for (index, item) in block.items.iter_mut().enumerate() {
        let ImplItem::Fn(method) = item else { continue };
        let mut options = None;
        method.attrs.retain(|attr| {
            let is_mark = attr
                .path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "differentiate");
            if is_mark && options.is_none() {
                options = Some(match &attr.meta {
                    syn::Meta::List(list) => list.tokens.clone(),
                    _ => TokenStream::new(),
                });
            }
            !is_mark
        });
        if let Some(options) = options {
            marked.push((index, options));
        }
    }
    marked
}

/// `MyModel` → `my_model`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let previous = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if previous.is_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `Model<T, N>` → `Model::<T, N>`, a path usable where an expression or pattern names the type.
fn turbofished(path: &syn::Path) -> syn::Path {
    let mut path = path.clone();
    for segment in &mut path.segments {
        if let syn::PathArguments::AngleBracketed(args) = &mut segment.arguments {
            args.colon2_token = Some(Default::default());
        }
    }
    path
}

/// `wrt(self, x)` → `wrt(self_, x)`.
fn rename_self(tokens: TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Ident(ident) if ident == "self" => {
                TokenTree::Ident(Ident::new(SELF_PARAM, ident.span()))
            }
            TokenTree::Group(group) => {
                let mut renamed =
                    proc_macro2::Group::new(group.delimiter(), rename_self(group.stream()));
                renamed.set_span(group.span());
                TokenTree::Group(renamed)
            }
            other => other,
        })
        .collect()
}

/// The method as a free function: `self` its first parameter, `Self` the block's type, the
/// block's generics before the method's own.
fn free_function(
    block: &ItemImpl,
    method: &ImplItemFn,
    rewriter: &SelfRewriter,
    free_names: &HashMap<String, Ident>,
    errors: &mut Errors,
) -> Option<ItemFn> {
    let mut sig = method.sig.clone();
    let mut inputs = syn::punctuated::Punctuated::<FnArg, syn::token::Comma>::new();
    for input in &method.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                if receiver.reference.is_some() && receiver.mutability.is_some() {
                    errors.push_spanned(
                        receiver,
                        "a #[differentiate] method cannot take `&mut self`; take `&self` and return the new values (or make the change in a method that is not differentiated)",
                    );
                    return None;
                }
                let mut ty = (*receiver.ty).clone();
                rewriter.rewrite_type(&mut ty);
                let ty = respan(ty.to_token_stream(), receiver.span());
                let name = Ident::new(SELF_PARAM, receiver.self_token.span);
                let mutability = receiver.mutability;
                let attrs = &receiver.attrs;
                inputs.push(syn::parse2(quote!(#(#attrs)* #mutability #name: #ty)).ok()?);
            }
            FnArg::Typed(typed) => {
                let mut typed = typed.clone();
                rewriter.rewrite_type(&mut typed.ty);
                inputs.push(FnArg::Typed(typed));
            }
        }
    }
    sig.inputs = inputs;
    if let syn::ReturnType::Type(_, ty) = &mut sig.output {
        rewriter.rewrite_type(ty);
    }
    sig.ident = free_names.get(&method.sig.ident.to_string())?.clone();
    let mut generics = block.generics.clone();
    generics
        .params
        .extend(method.sig.generics.params.iter().cloned());
    if let Some(own) = &method.sig.generics.where_clause {
        generics
            .make_where_clause()
            .predicates
            .extend(own.predicates.iter().cloned());
    }
    sig.generics = generics;
    let mut body = method.block.clone();
    rewriter.clone().visit_block_mut(&mut body);
    let attrs = &method.attrs;
    let vis = &method.vis;
    syn::parse2(quote!(#(#attrs)* #vis #sig #body)).ok()
}

/// Gives every token of `tokens` the span `span`, so errors about a type written in the
/// `impl` header point at the receiver it stands for.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// Rewrites a method's body for its free function.
#[derive(Clone)]
struct SelfRewriter<'a> {
    self_ty: Type,
    /// The block's type as a path with turbofish, for expressions and patterns.
    self_path: syn::Path,
    /// Marked methods by name, with their free functions.
    free_names: &'a HashMap<String, Ident>,
}

impl SelfRewriter<'_> {
    fn rewrite_type(&self, ty: &mut Type) {
        self.clone().visit_type_mut(ty);
    }

    /// `Self`, `Self::X` in an expression or pattern path → the type's path.
    fn rewrite_path(&self, qself: &Option<syn::QSelf>, path: &mut syn::Path) {
        if qself.is_some() || path.leading_colon.is_some() {
            return;
        }
        if path.segments.first().is_some_and(|s| s.ident == "Self") {
            let rest: Vec<syn::PathSegment> = path.segments.iter().skip(1).cloned().collect();
            let span = path.segments[0].ident.span();
            let mut replaced = self.self_path.clone();
            for segment in &mut replaced.segments {
                segment.ident.set_span(span);
            }
            replaced.segments.extend(rest);
            *path = replaced;
        }
    }

    /// The free function a call of marked method `name` becomes.
    fn free_call(&self, name: &Ident) -> Option<Ident> {
        self.free_names.get(&name.to_string()).map(|free| {
            let mut free = free.clone();
            free.set_span(name.span());
            free
        })
    }

    fn macro_tokens(&self, tokens: TokenStream) -> TokenStream {
        let self_path = &self.self_path;
        tokens
            .into_iter()
            .flat_map(|token| -> Vec<TokenTree> {
                match token {
                    TokenTree::Ident(ident) if ident == "self" => {
                        vec![TokenTree::Ident(Ident::new(SELF_PARAM, ident.span()))]
                    }
                    TokenTree::Ident(ident) if ident == "Self" => {
                        respan(self_path.to_token_stream(), ident.span())
                            .into_iter()
                            .collect()
                    }
                    TokenTree::Group(group) => {
                        let mut inner = proc_macro2::Group::new(
                            group.delimiter(),
                            self.macro_tokens(group.stream()),
                        );
                        inner.set_span(group.span());
                        vec![TokenTree::Group(inner)]
                    }
                    other => vec![other],
                }
            })
            .collect()
    }
}

impl VisitMut for SelfRewriter<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(p) = ty {
            if p.qself.is_none()
                && p.path.leading_colon.is_none()
                && p.path.segments.first().is_some_and(|s| s.ident == "Self")
            {
                if p.path.segments.len() == 1 {
                    *ty = self.self_ty.clone();
                    return;
                }
                let self_ty = &self.self_ty;
                let rest: Vec<&syn::PathSegment> = p.path.segments.iter().skip(1).collect();
                if let Ok(qualified) = syn::parse2::<Type>(quote!(<#self_ty>::#(#rest)::*)) {
                    *ty = qualified;
                }
                return;
            }
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }

    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        match expr {
            // `self.m(args)` of a marked method: `free_m(self_, args)`
            syn::Expr::MethodCall(call)
                if call.turbofish.is_none()
                    && matches!(&*call.receiver, syn::Expr::Path(p) if p.path.is_ident("self"))
                    && self.free_names.contains_key(&call.method.to_string()) =>
            {
                if let Some(free) = self.free_call(&call.method) {
                    let receiver = Ident::new(SELF_PARAM, call.receiver.span());
                    let args = &call.args;
                    let comma = (!args.is_empty()).then(|| quote!(,));
                    if let Ok(mut replaced) =
                        syn::parse2::<syn::Expr>(quote!(#free(#receiver #comma #args)))
                    {
                        syn::visit_mut::visit_expr_mut(self, &mut replaced);
                        *expr = replaced;
                        return;
                    }
                }
            }
            // `Self::m(args)` of a marked method: `free_m(args)`
            syn::Expr::Call(call) => {
                if let syn::Expr::Path(p) = &*call.func {
                    let segments = &p.path.segments;
                    if p.qself.is_none()
                        && segments.len() == 2
                        && segments[0].ident == "Self"
                        && segments[1].arguments.is_none()
                    {
                        if let Some(free) = self.free_call(&segments[1].ident) {
                            *call.func = syn::Expr::Path(syn::ExprPath {
                                attrs: Vec::new(),
                                qself: None,
                                path: free.into(),
                            });
                        }
                    }
                }
            }
            syn::Expr::Path(p) if p.qself.is_none() && p.path.is_ident("self") => {
                let span = p.path.segments[0].ident.span();
                p.path = Ident::new(SELF_PARAM, span).into();
                return;
            }
            _ => {}
        }
        syn::visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_expr_path_mut(&mut self, p: &mut syn::ExprPath) {
        self.rewrite_path(&p.qself, &mut p.path);
        syn::visit_mut::visit_expr_path_mut(self, p);
    }

    fn visit_expr_struct_mut(&mut self, s: &mut syn::ExprStruct) {
        self.rewrite_path(&s.qself, &mut s.path);
        syn::visit_mut::visit_expr_struct_mut(self, s);
    }

    fn visit_pat_struct_mut(&mut self, s: &mut syn::PatStruct) {
        self.rewrite_path(&s.qself, &mut s.path);
        syn::visit_mut::visit_pat_struct_mut(self, s);
    }

    fn visit_pat_tuple_struct_mut(&mut self, s: &mut syn::PatTupleStruct) {
        self.rewrite_path(&s.qself, &mut s.path);
        syn::visit_mut::visit_pat_tuple_struct_mut(self, s);
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        mac.tokens = self.macro_tokens(std::mem::take(&mut mac.tokens));
    }
}

/// Marks the free functions of a method's expansion `#[doc(hidden)]` (the methods are its
/// interface) and returns the signatures of those the methods forward to.
fn hide_free_functions(
    items: TokenStream,
    free: &Ident,
) -> (TokenStream, HashMap<String, syn::Signature>) {
    let mut signatures = HashMap::new();
    let Ok(mut file) = syn::parse2::<syn::File>(items.clone()) else {
        return (items, signatures);
    };
    let wanted = [
        names::pullback_fn(free),
        names::grad_fn(free),
        names::hidden_pullback_fn(free),
        names::hidden_reusing_pullback_fn(free),
        names::hidden_zero_output_fn(free),
    ]
    .map(|name| name.to_string());
    for item in &mut file.items {
        if let syn::Item::Fn(f) = item {
            let name = f.sig.ident.to_string();
            if wanted.contains(&name) {
                signatures.insert(name.clone(), f.sig.clone());
            }
            f.attrs.push(syn::parse_quote!(#[doc(hidden)]));
            if *free == name {
                // the method itself is compiled too, and rustc reports its lints there
                f.attrs.push(syn::parse_quote!(#[allow(unused)]));
            }
        }
    }
    (file.to_token_stream(), signatures)
}

/// `loss_pullback(&self, ..)` and `loss_grad(&self, ..)`, calling the free functions.
fn forwarding_methods(
    block: &ItemImpl,
    method: &ImplItemFn,
    free: &ItemFn,
    signatures: &HashMap<String, syn::Signature>,
) -> Vec<TokenStream> {
    let mut arguments = Vec::new();
    let mut inputs = Vec::new();
    for input in &method.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                let self_token = receiver.self_token;
                arguments.push(quote!(#self_token));
                // `mut self` needs no `mut` here (the free function has it); `&mut self`
                // was refused before
                if receiver.colon_token.is_some() {
                    let ty = &receiver.ty;
                    inputs.push(quote!(#self_token: #ty));
                } else {
                    let reference = receiver
                        .reference
                        .as_ref()
                        .map(|(and, lifetime)| quote!(#and #lifetime));
                    inputs.push(quote!(#reference #self_token));
                }
            }
            FnArg::Typed(typed) => {
                let Pat::Ident(p) = &*typed.pat else {
                    return Vec::new();
                };
                let name = &p.ident;
                let ty = &typed.ty;
                arguments.push(quote!(#name));
                inputs.push(quote!(#name: #ty));
            }
        }
    }
    let turbofish = generic_arguments(&free.sig.generics);
    let own_turbofish = generic_arguments(&method.sig.generics);
    let vis = &method.vis;
    let cfgs = cfg_attributes(method);
    let name = &method.sig.ident;
    let mut out = Vec::new();
    let self_first = if method.sig.receiver().is_some() {
        ", `self` first"
    } else {
        ""
    };
    for (suffix, doc) in [
        (
            "pullback",
            format!(" Runs the forward pass of [`Self::{name}`]: its value and the values its backward pass needs (generated by `#[differentiate]`)."),
        ),
        (
            "grad",
            format!(" The value of [`Self::{name}`] and its gradient: one cotangent per active argument{self_first} (generated by `#[differentiate]`)."),
        ),
    ] {
        let free_name = format_ident!("{}_{}", free.sig.ident, suffix);
        let Some(signature) = signatures.get(&free_name.to_string()) else {
            continue;
        };
        // the method's own generics, with the bounds the generated function adds (a
        // generic parameter set's `Spring<T>: Differentiable`)
        let own = without_block_generics(block, signature);
        let (own_generics, own_where) = (&own.generics, &own.generics.where_clause);
        let output = &signature.output;
        let wrapper = format_ident!("{}_{}", names::unraw(name), suffix, span = name.span());
        out.push(quote! {
            #[doc = #doc]
            #(#cfgs)*
            #[inline]
            #[allow(dead_code, clippy::type_complexity)]
            #vis fn #wrapper #own_generics (#(#inputs),*) #output #own_where {
                // the method itself is the function differentiated
                let _ = Self::#name #own_turbofish;
                #free_name #turbofish (#(#arguments),*)
            }
        });
    }
    out
}

/// `::<T, N>` naming the type and const parameters of `generics`, or nothing.
fn generic_arguments(generics: &syn::Generics) -> Option<TokenStream> {
    let args: Vec<&Ident> = generics
        .params
        .iter()
        .filter_map(|param| match param {
            syn::GenericParam::Type(t) => Some(&t.ident),
            syn::GenericParam::Const(c) => Some(&c.ident),
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect();
    (!args.is_empty()).then(|| quote!(::<#(#args),*>))
}

/// The hidden functions a caller's generated code calls (`__autodiff_pullback_loss`, ...), as
/// associated functions forwarding to the free function's, so that a differentiated function
/// calling `Model::loss(&m, x)` composes with the method as with a free function.
fn callee_entry_points(
    block: &ItemImpl,
    method: &ImplItemFn,
    free: &ItemFn,
    signatures: &HashMap<String, syn::Signature>,
) -> Vec<TokenStream> {
    let free_name = &free.sig.ident;
    let name = &method.sig.ident;
    let mut out = Vec::new();
    for (free_entry, entry) in [
        (
            names::hidden_pullback_fn(free_name),
            names::hidden_pullback_fn(name),
        ),
        (
            names::hidden_reusing_pullback_fn(free_name),
            names::hidden_reusing_pullback_fn(name),
        ),
        (
            names::hidden_zero_output_fn(free_name),
            names::hidden_zero_output_fn(name),
        ),
    ] {
        let Some(signature) = signatures.get(&free_entry.to_string()) else {
            continue;
        };
        let free_generics = generic_arguments(&signature.generics);
        let mut signature = without_block_generics(block, signature);
        signature.ident = entry;
        let mut arguments = Vec::new();
        for input in &mut signature.inputs {
            if let FnArg::Typed(typed) = input {
                if let Pat::Ident(p) = &mut *typed.pat {
                    p.mutability = None;
                    arguments.push(p.ident.clone());
                }
            }
        }
        // `self_: &Model` taken as `&self`: a method of a field whose type the caller cannot
        // name is called with method syntax (`names::METHOD_FORM`)
        if let Some(FnArg::Typed(first)) = signature.inputs.first() {
            let is_self = matches!(&*first.pat, Pat::Ident(p) if p.ident == SELF_PARAM);
            let receiver: Option<FnArg> = match &*first.ty {
                Type::Reference(r) if is_self && r.mutability.is_none() => {
                    let lifetime = &r.lifetime;
                    syn::parse2(quote!(&#lifetime self)).ok()
                }
                _ if is_self => syn::parse2(quote!(self)).ok(),
                _ => None,
            };
            if let Some(receiver) = receiver {
                signature.inputs[0] = receiver;
                arguments[0] = Ident::new("self", arguments[0].span());
            }
        }
        let vis = &method.vis;
        let cfgs = cfg_attributes(method);
        out.push(quote! {
            #[doc(hidden)]
            #(#cfgs)*
            #[inline]
            #[allow(dead_code, non_snake_case, clippy::all)]
            #vis #signature {
                #free_entry #free_generics (#(#arguments),*)
            }
        });
    }
    out
}

/// `T`, `N`, `'a`: the name a generic parameter declares.
fn param_name(param: &syn::GenericParam) -> String {
    match param {
        syn::GenericParam::Type(t) => t.ident.to_string(),
        syn::GenericParam::Const(c) => c.ident.to_string(),
        syn::GenericParam::Lifetime(l) => l.lifetime.to_string(),
    }
}

/// `model.predict(x)` → `Model::predict(model, x)` for the parameter sets `receivers` (by
/// name, with their declared types) and the `methods` without a rule called on them: the
/// path call composes with a `#[differentiate]` method (and fails in rustc, naming the hidden
/// function it looked for, when the method is not one), where the method call cannot.
pub fn as_path_calls(item: &ItemFn, receivers: &[(Ident, Type)], methods: &[Ident]) -> ItemFn {
    struct PathCalls<'a> {
        receivers: Vec<(String, syn::Path)>,
        methods: &'a [Ident],
    }
    impl VisitMut for PathCalls<'_> {
        fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
            syn::visit_mut::visit_expr_mut(self, expr);
            let syn::Expr::MethodCall(call) = expr else {
                return;
            };
            if !self.methods.contains(&call.method) {
                return;
            }
            let parameter_set = match &*call.receiver {
                syn::Expr::Path(receiver) => receiver.path.get_ident().and_then(|name| {
                    self.receivers
                        .iter()
                        .find(|(r, _)| name == r)
                        .map(|(_, path)| (receiver, path))
                }),
                _ => None,
            };
            let Some((receiver, path)) = parameter_set else {
                // a field of a parameter set (`net.layers[0].forward(x)`) or a loop's element
                // of one: its type is unknown, so the call keeps method syntax
                let span = call.method.span();
                let marker = Ident::new(names::METHOD_FORM, span);
                let (receiver, method, turbofish, args) =
                    (&call.receiver, &call.method, &call.turbofish, &call.args);
                let comma = (!args.is_empty()).then(|| quote!(,));
                if let Ok(replaced) = syn::parse2(
                    quote_spanned!(span=> #marker::#method #turbofish(&#receiver #comma #args)),
                ) {
                    *expr = replaced;
                }
                return;
            };
            if call.turbofish.is_some() {
                return;
            }
            let path = respan(path.to_token_stream(), call.method.span());
            let (method, args) = (&call.method, &call.args);
            let comma = (!args.is_empty()).then(|| quote!(,));
            if let Ok(replaced) = syn::parse2(quote!(#path::#method(#receiver #comma #args))) {
                *expr = replaced;
            }
        }
    }
    let receivers = receivers
        .iter()
        .filter_map(|(name, ty)| {
            let mut ty = ty;
            while let Type::Reference(r) = ty {
                ty = &r.elem;
            }
            match ty {
                Type::Path(p) if p.qself.is_none() => {
                    Some((name.to_string(), turbofished(&p.path)))
                }
                _ => None,
            }
        })
        .collect();
    let mut item = item.clone();
    PathCalls { receivers, methods }.visit_block_mut(&mut item.block);
    item
}

/// `signature` of a generated function without the block's generic parameters and `where`
/// predicates, which the block declares for its members.
fn without_block_generics(block: &ItemImpl, signature: &syn::Signature) -> syn::Signature {
    let block_params: Vec<String> = block.generics.params.iter().map(param_name).collect();
    let block_predicates: Vec<String> = block
        .generics
        .where_clause
        .iter()
        .flat_map(|w| w.predicates.iter())
        .map(|p| p.to_token_stream().to_string())
        .collect();
    let mut signature = signature.clone();
    signature.generics.params = signature
        .generics
        .params
        .into_iter()
        .filter(|p| !block_params.contains(&param_name(p)))
        .collect();
    if let Some(where_clause) = &mut signature.generics.where_clause {
        where_clause.predicates = std::mem::take(&mut where_clause.predicates)
            .into_iter()
            .filter(|p| !block_predicates.contains(&p.to_token_stream().to_string()))
            .collect();
    }
    signature
}

/// The method's `#[cfg(..)]` attributes: the generated items exist where the method does.
fn cfg_attributes(method: &ImplItemFn) -> Vec<&syn::Attribute> {
    method
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect()
}
