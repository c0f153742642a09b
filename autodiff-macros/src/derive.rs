//! `#[derive(Differentiable)]`: delegates every method of the trait to each field (a field
//! marked `#[differentiable(skip)]` is a constant, copied into the gradient).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields, Index};

/// Expands the derive for a struct; other items get a spanned error.
pub fn differentiable(input: DeriveInput) -> TokenStream {
    let name = &input.ident;
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => {
            return syn::Error::new(
                data.enum_token.span,
                "#[derive(Differentiable)] applies to structs; hold the parameters in a struct",
            )
            .to_compile_error();
        }
        Data::Union(data) => {
            return syn::Error::new(
                data.union_token.span,
                "#[derive(Differentiable)] applies to structs; hold the parameters in a struct",
            )
            .to_compile_error();
        }
    };
    let skipped = match skipped_fields(fields) {
        Ok(skipped) => skipped,
        Err(error) => return error.to_compile_error(),
    };
    let trait_path = quote!(::autodiff::__private::Differentiable);
    let visitor = quote!(::autodiff::__private::ParamVisitor);
    let members: Vec<TokenStream> = match fields {
        Fields::Named(named) => named
            .named
            .iter()
            .map(|f| {
                let ident = f.ident.as_ref().expect("named field");
                quote!(#ident)
            })
            .collect(),
        Fields::Unnamed(unnamed) => (0..unnamed.unnamed.len())
            .map(|i| {
                let index = Index::from(i);
                quote!(#index)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    // a skipped field is a constant: copied into the cotangent, left alone otherwise
    let zeros: Vec<TokenStream> = members
        .iter()
        .zip(&skipped)
        .map(|(m, skip)| {
            if *skip {
                quote!(::core::clone::Clone::clone(&self.#m))
            } else {
                quote!(#trait_path::zero_like(&self.#m))
            }
        })
        .collect();
    let zero_like = match fields {
        Fields::Named(_) => quote!(#name { #(#members: #zeros,)* }),
        Fields::Unnamed(_) => quote!(#name ( #(#zeros,)* )),
        Fields::Unit => quote!(#name),
    };
    let carried: Vec<&TokenStream> = members
        .iter()
        .zip(&skipped)
        .filter(|(_, skip)| !**skip)
        .map(|(m, _)| m)
        .collect();
    let mut generics = input.generics.clone();
    {
        let where_clause = generics.make_where_clause();
        for (field, skip) in fields.iter().zip(&skipped) {
            let ty = &field.ty;
            where_clause.predicates.push(if *skip {
                syn::parse_quote!(#ty: ::core::clone::Clone)
            } else {
                syn::parse_quote!(#ty: #trait_path)
            });
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let visitor_ty = format_ident!("__AutodiffVisitor");
    // a skipped field has no zero of its own
    let zero_cotangent = if skipped.contains(&true) {
        TokenStream::new()
    } else {
        zero_cotangent_impl(&input, fields, &members)
    };
    quote! {
        impl #impl_generics #trait_path for #name #ty_generics #where_clause {
            fn zero_like(&self) -> Self {
                #zero_like
            }

            fn accumulate_from(&mut self, other: &Self) {
                #(#trait_path::accumulate_from(&mut self.#carried, &other.#carried);)*
            }

            fn visit<#visitor_ty: #visitor>(&mut self, grad: &Self, visitor: &mut #visitor_ty) {
                #(#trait_path::visit(&mut self.#carried, &grad.#carried, visitor);)*
            }
        }
        impl #impl_generics ::autodiff::__private::ParameterSetCotangent for #name #ty_generics #where_clause {}
        #zero_cotangent
    }
}

/// Per field, whether it is marked `#[differentiable(skip)]`; any other use of the attribute is
/// an error at it.
fn skipped_fields(fields: &Fields) -> syn::Result<Vec<bool>> {
    fields
        .iter()
        .map(|field| {
            let mut skip = false;
            for attr in field.attrs.iter().filter(|a| a.path().is_ident("differentiable")) {
                let usage = "the field option is `#[differentiable(skip)]`: a field that carries no derivative, copied into the gradient (its type must be `Clone`)";
                let ident: syn::Ident = attr
                    .parse_args()
                    .map_err(|e| syn::Error::new(e.span(), usage))?;
                if ident != "skip" {
                    return Err(syn::Error::new(ident.span(), usage));
                }
                skip = true;
            }
            Ok(skip)
        })
        .collect()
}

/// `ZeroCotangent` for a struct whose fields all have a zero without a value to shape it
/// (floats, integers, `bool`, the struct's type parameters, fixed-length arrays of those);
/// nothing for others, whose bounds would not hold (a `Vec` has no zero of unknown length).
fn zero_cotangent_impl(
    input: &DeriveInput,
    fields: &Fields,
    members: &[TokenStream],
) -> TokenStream {
    let params: Vec<&syn::Ident> = input.generics.type_params().map(|p| &p.ident).collect();
    if !fields.iter().all(|f| has_zero(&f.ty, &params)) {
        return TokenStream::new();
    }
    let name = &input.ident;
    let zero = quote!(::autodiff::__private::ZeroCotangent);
    let mut generics = input.generics.clone();
    {
        let where_clause = generics.make_where_clause();
        for field in fields.iter() {
            let ty = &field.ty;
            where_clause.predicates.push(syn::parse_quote!(#ty: #zero));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let value = match fields {
        Fields::Named(_) => quote!(#name { #(#members: #zero::zero_cotangent(),)* }),
        Fields::Unnamed(_) => {
            let zeros = members.iter().map(|_| quote!(#zero::zero_cotangent()));
            quote!(#name ( #(#zeros,)* ))
        }
        Fields::Unit => quote!(#name),
    };
    quote! {
        impl #impl_generics #zero for #name #ty_generics #where_clause {
            fn zero_cotangent() -> Self {
                #value
            }
        }
    }
}

/// Whether `ty` surely implements `ZeroCotangent` (a type parameter gets the bound).
fn has_zero(ty: &syn::Type, params: &[&syn::Ident]) -> bool {
    const LEAVES: &[&str] = &[
        "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64",
        "u128", "usize", "bool",
    ];
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => p
            .path
            .get_ident()
            .is_some_and(|id| params.contains(&id) || LEAVES.contains(&id.to_string().as_str())),
        syn::Type::Array(a) => has_zero(&a.elem, params),
        syn::Type::Paren(p) => has_zero(&p.elem, params),
        _ => false,
    }
}
