//! `#[differentiate(partials(x = ..))]`: a function whose derivatives are given, not derived.
//!
//! The body is left as it is (it may call code the macro cannot see: `libm::erf`, a C
//! library, a solver), and the items a differentiated function has are generated from the
//! given partial derivatives: the pullback keeps the arguments, and `backward` multiplies each
//! partial, evaluated at them, by the output's cotangent. Calls from other differentiated
//! functions compose through the same hidden entry points as for any differentiated function
//! (docs/design.md, "Composition").

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::args::{self, Options, Output};
use crate::errors::Errors;
use crate::ir::ParamRole;
use crate::names;

/// The items of a function with given partial derivatives, or `None` after errors.
pub fn generate(item: &ItemFn, options: &Options, errors: &mut Errors) -> Option<TokenStream> {
    let (span, partials) = options.partials.as_ref()?;
    if options.wrt.is_some() {
        errors.push(
            *span,
            "`partials` names the arguments it differentiates; leave out `wrt`",
        );
        return None;
    }
    let sig = args::signature(item, errors)?;
    let generics = args::type_params(item);
    let output = match &sig.output {
        Output::Scalar(ty) => ty.clone(),
        _ => {
            errors.push_spanned(
                &sig.return_type,
                "`partials` gives the derivatives of a function returning one float; for several outputs write one function per output",
            );
            return None;
        }
    };
    for param in &sig.params {
        let by_value_float = param.role == ParamRole::Float
            && args::is_float_type(&param.ty, &generics)
            && !matches!(param.ty, syn::Type::Reference(_));
        let float_array =
            param.role == ParamRole::Float && float_array(&param.ty, &generics).is_some();
        let by_value_constant =
            param.role == ParamRole::Constant && !matches!(param.ty, syn::Type::Reference(_));
        if !by_value_float && !float_array && !by_value_constant {
            errors.push_spanned(
                &param.ty,
                "`partials` takes floats by value (`x: f64`, `x: T`), slices, `Vec`s and arrays of floats (whose partial is the gradient vector), and constants by value (`n: usize`), which the pullback keeps; differentiate a function of structs, matrices or tensors from its body, without `partials`",
            );
        }
    }
    let mut given: Vec<Option<&syn::Expr>> = vec![None; sig.params.len()];
    for (name, expr) in partials {
        match sig.params.iter().position(|p| p.source == *name) {
            None => errors.push(
                name.span(),
                format!("`partials` names `{name}`, which is not a parameter of this function"),
            ),
            Some(i) if sig.params[i].role != ParamRole::Float => errors.push(
                name.span(),
                format!("`{name}` is a constant (it cannot carry a derivative), so it has no partial derivative; leave it out of `partials`"),
            ),
            Some(i) if given[i].is_some() => errors.push(
                name.span(),
                format!("`{name}` appears twice in `partials`; give one partial derivative per parameter"),
            ),
            Some(i) => given[i] = Some(expr),
        }
    }
    for (param, partial) in sig.params.iter().zip(&given) {
        if param.role == ParamRole::Float && partial.is_none() {
            errors.push(
                param.source.span(),
                format!(
                    "`partials` gives no derivative with respect to `{}`; add `{} = ..` to `partials(..)` (without it the derivative through `{}` would be lost)",
                    param.source, param.source, param.source
                ),
            );
        }
    }
    if !errors.is_empty() {
        return None;
    }
    Some(items(item, &sig, &output, &given))
}

/// For a slice, `Vec` or fixed-length array of floats (`&[T]`, `Vec<T>`, `[T; N]`): its
/// kind and element type.
fn float_array(ty: &syn::Type, generics: &[syn::Ident]) -> Option<(args::ArrayKind, syn::Type)> {
    let (kind, elem) = args::array_type(ty)?;
    (matches!(kind, args::ArrayKind::Vec | args::ArrayKind::Fixed(_))
        && args::is_float_type(&elem, generics))
    .then_some((kind, elem))
}

/// How the pullback keeps a parameter: the field's type, the value saved, the binding the
/// partials' expressions read in `backward`, and the gradient from the partial.
struct Kept {
    field: TokenStream,
    save: TokenStream,
    bind: TokenStream,
    cotangent: TokenStream,
}

fn kept(param: &args::SigParam, generics: &[syn::Ident], partial: Option<&syn::Expr>) -> Kept {
    let (name, ty) = (&param.source, &param.ty);
    let d_output = names::output_cotangent();
    match float_array(ty, generics) {
        Some((args::ArrayKind::Fixed(len), elem)) => {
            let owned = quote!([#elem; #len]);
            let value = if matches!(ty, syn::Type::Reference(_)) {
                quote!(*#name)
            } else {
                quote!(#name)
            };
            let gradient = partial.map(|p| {
                let span = p.span();
                quote_spanned! {span=> {
                    let partial: #owned = #p;
                    partial.map(|g| #d_output * g)
                }}
            });
            Kept {
                field: quote!(#name: #owned),
                save: quote!(#name: #value),
                bind: quote!(let #name: #owned = self.#name;),
                cotangent: gradient.unwrap_or_default(),
            }
        }
        Some((_, elem)) => {
            let text = format!(
                "`partials`: the partial with respect to `{name}` has {{}} elements, `{name}` {{}}"
            );
            let gradient = partial.map(|p| {
                let span = p.span();
                quote_spanned! {span=> {
                    let mut partial: ::std::vec::Vec<#elem> = ::core::iter::IntoIterator::into_iter(#p).collect();
                    assert_eq!(partial.len(), #name.len(), #text, partial.len(), #name.len());
                    for g in partial.iter_mut() {
                        *g = #d_output * *g;
                    }
                    partial
                }}
            });
            Kept {
                field: quote!(#name: ::std::vec::Vec<#elem>),
                save: quote!(#name: #name.to_vec()),
                bind: quote!(let #name: &[#elem] = &self.#name;),
                cotangent: gradient.unwrap_or_default(),
            }
        }
        None => {
            let gradient = partial.map(|p| {
                let span = p.span();
                quote_spanned!(span=> #d_output * (#p))
            });
            Kept {
                field: quote!(#name: #ty),
                save: quote!(#name: ::core::clone::Clone::clone(&#name)),
                bind: quote!(let #name = ::core::clone::Clone::clone(&self.#name);),
                cotangent: gradient.unwrap_or_default(),
            }
        }
    }
}

/// The pullback struct, `f_pullback`, `backward`, `f_grad` and the hidden entry points.
fn items(
    item: &ItemFn,
    sig: &args::Signature,
    output: &syn::Type,
    given: &[Option<&syn::Expr>],
) -> TokenStream {
    let private = quote!(::autodiff::__private);
    let fname = &item.sig.ident;
    let vis = &item.vis;
    let cfgs: Vec<&syn::Attribute> = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect();
    let generics = &item.sig.generics;
    let fn_params = &generics.params;
    let fn_where = &generics.where_clause;
    let (s_impl, s_ty, s_where) = generics.split_for_impl();
    let struct_name = names::pullback_struct(fname);
    let pullback_fn = names::pullback_fn(fname);
    let grad_fn = names::grad_fn(fname);
    let hidden_fn = names::hidden_pullback_fn(fname);
    let reusing_fn = names::hidden_reusing_pullback_fn(fname);
    let zero_fn = names::hidden_zero_output_fn(fname);
    let into = names::backward_into();
    let d_output = names::output_cotangent();
    // the user's names, as the partials' expressions spell them
    let sources: Vec<&syn::Ident> = sig.params.iter().map(|p| &p.source).collect();
    let types: Vec<&syn::Type> = sig.params.iter().map(|p| &p.ty).collect();
    let params: Vec<TokenStream> = sources
        .iter()
        .zip(&types)
        .map(|(name, ty)| quote!(#name: #ty))
        .collect();
    let type_params = args::type_params(item);
    let kept: Vec<Kept> = sig
        .params
        .iter()
        .zip(given)
        .map(|(param, partial)| kept(param, &type_params, *partial))
        .collect();
    let fields: Vec<&TokenStream> = kept.iter().map(|k| &k.field).collect();
    let saves: Vec<&TokenStream> = kept.iter().map(|k| &k.save).collect();
    let binds: Vec<&TokenStream> = kept.iter().map(|k| &k.bind).collect();
    let cotangent_types: Vec<syn::Type> = types.iter().map(|t| args::cotangent_type(t)).collect();
    let fn_type = {
        let generic_args = generics.params.iter().filter_map(|p| match p {
            syn::GenericParam::Type(t) => Some(&t.ident),
            syn::GenericParam::Const(c) => Some(&c.ident),
            syn::GenericParam::Lifetime(_) => None,
        });
        quote!(#fname::<#(#generic_args),*>)
    };
    // `d_output * (∂f/∂x)` per float parameter, at the kept arguments
    let active: Vec<bool> = given.iter().map(Option::is_some).collect();
    let gradients: Vec<&TokenStream> = kept
        .iter()
        .zip(&active)
        .filter(|(_, a)| **a)
        .map(|(k, _)| &k.cotangent)
        .collect();
    let grad_ty: Vec<&syn::Type> = cotangent_types
        .iter()
        .zip(&active)
        .filter(|(_, a)| **a)
        .map(|(t, _)| t)
        .collect();
    let (grad_ty, grad_value) = if grad_ty.len() == 1 {
        let (ty, value) = (grad_ty[0], &gradients[0]);
        (quote!(#ty), quote!(#value))
    } else {
        (quote!((#(#grad_ty),*)), quote!((#(#gradients),*)))
    };
    let gradient_names: Vec<syn::Ident> = (0..gradients.len())
        .map(|i| format_ident!("d{}", i))
        .collect();
    let unpack = if gradient_names.len() == 1 {
        let name = &gradient_names[0];
        quote!(#name)
    } else {
        quote!((#(#gradient_names),*))
    };
    let mut next = gradient_names.iter();
    let all: Vec<TokenStream> = active
        .iter()
        .map(|&a| match (a, a.then(|| next.next()).flatten()) {
            (true, Some(name)) => quote!(#name),
            _ => quote!(()),
        })
        .collect();
    let sink_types: Vec<TokenStream> = cotangent_types
        .iter()
        .zip(&active)
        .map(|(ty, &a)| if a { quote!(#ty) } else { quote!(()) })
        .collect();
    let sink_generics: Vec<syn::Ident> = (0..sink_types.len())
        .map(|i| format_ident!("__S{}", i))
        .collect();
    let sinks: Vec<syn::Ident> = (0..sink_types.len()).map(names::gradient_sink).collect();
    let returned: Vec<syn::Ident> = (0..sink_types.len())
        .map(|i| format_ident!("__autodiff_gradient{}", i))
        .collect();
    let finishes: Vec<TokenStream> = active
        .iter()
        .zip(&sink_types)
        .zip(sinks.iter().zip(&returned))
        .map(|((&a, ty), (sink, gradient))| {
            if a {
                quote!(<_ as #private::GradientSink<#ty>>::finish(#sink, #gradient, |target, gradient| target.accumulate(gradient)))
            } else {
                quote!(<_ as #private::GradientSink<()>>::finish(#sink, #gradient, |_, _| {}))
            }
        })
        .collect();
    // only the generic parameters the output names, as for any differentiated function
    let zero_generics = crate::codegen::generics_of_type(generics, output);
    let (zero_params, zero_where) = (&zero_generics.params, &zero_generics.where_clause);
    let doc_struct = format!(
        " The arguments of [`{fname}`], kept by [`{pullback_fn}`] for the partial derivatives `backward` evaluates."
    );
    let doc_pullback =
        format!(" [`{fname}`] and its pullback: the value, and the arguments kept for `backward`.");
    let doc_backward = format!(
        " The vector-Jacobian product of [`{fname}`]: the output's cotangent times each given partial derivative, at the kept arguments."
    );
    let doc_grad =
        format!(" The value of [`{fname}`] and its gradient, from the given partial derivatives.");
    quote! {
        #[doc = #doc_struct]
        #(#cfgs)*
        #[derive(Clone)]
        #[allow(non_camel_case_types, non_snake_case, dead_code, clippy::all)]
        #vis struct #struct_name <#fn_params> #fn_where {
            #(#fields,)*
        }

        #(#cfgs)*
        impl #s_impl #struct_name #s_ty #s_where {
            /// The memory these saved values occupy, in bytes.
            #[allow(dead_code)]
            #vis fn saved_bytes(&self) -> usize {
                ::core::mem::size_of::<Self>()
            }

            #[doc = #doc_backward]
            #[allow(non_snake_case, unused_variables, clippy::all)]
            #[inline]
            #vis fn backward(&self, #d_output: #output) -> #grad_ty {
                #(#binds)*
                #grad_value
            }

            #[doc(hidden)]
            #[allow(dead_code, clippy::all)]
            #[inline]
            #vis fn __backward_all(&self, #d_output: #output) -> (#(#sink_types,)*) {
                let #unpack = self.backward(#d_output);
                (#(#all,)*)
            }

            #[doc(hidden)]
            #[allow(dead_code, clippy::all)]
            #[inline]
            #vis fn #into<#(#sink_generics: #private::GradientSink<#sink_types>),*>(
                &self,
                #d_output: #output,
                #(#sinks: #sink_generics),*
            ) -> (#(<#sink_generics as #private::GradientSink<#sink_types>>::Out,)*) {
                #[allow(unused_imports)]
                use #private::{Cotangent as _, ScalarCotangent as _};
                let (#(#returned,)*) = self.__backward_all(#d_output);
                (#(#finishes,)*)
            }
        }

        #[doc = #doc_pullback]
        #(#cfgs)*
        #[allow(dead_code, non_snake_case, clippy::all)]
        #[inline]
        #vis fn #pullback_fn <#fn_params> (#(#params),*) -> (#output, #struct_name #s_ty) #fn_where {
            let pullback = #struct_name { #(#saves,)* };
            (#fn_type(#(#sources),*), pullback)
        }

        #[doc = #doc_grad]
        #(#cfgs)*
        #[allow(dead_code, non_snake_case, clippy::all)]
        #[inline]
        #vis fn #grad_fn <#fn_params> (#(#params),*) -> (#output, #grad_ty) #fn_where {
            let (value, pullback) = #pullback_fn(#(#sources),*);
            (value, pullback.backward(#private::one()))
        }

        #[doc(hidden)]
        #(#cfgs)*
        #[allow(dead_code, non_snake_case, clippy::all)]
        #[inline]
        #vis fn #hidden_fn <#fn_params> (#(#params),*) -> (#output, #struct_name #s_ty) #fn_where {
            #pullback_fn(#(#sources),*)
        }

        #[doc(hidden)]
        #(#cfgs)*
        #[allow(dead_code, non_snake_case, clippy::all)]
        #[inline]
        #vis fn #reusing_fn <'__autodiff_slot, #fn_params> (
            #(#params,)*
            __autodiff_previous: &'__autodiff_slot mut ::core::option::Option<#struct_name #s_ty>,
        ) -> (#output, &'__autodiff_slot #struct_name #s_ty) #fn_where {
            let (value, pullback) = #pullback_fn(#(#sources),*);
            (value, __autodiff_previous.insert(pullback))
        }

        #[doc(hidden)]
        #(#cfgs)*
        #[allow(dead_code, non_snake_case, clippy::all)]
        #[inline]
        #vis fn #zero_fn <#zero_params> () -> #output #zero_where {
            #private::zero()
        }
    }
}
