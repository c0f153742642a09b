//! `map` closures: lifted to functions of their own and differentiated, their pullbacks kept
//! or rebuilt per element.

use super::*;

impl Context<'_> {
    /// `m̄` for `y = m.map(closure)` whose closure's pullback is rebuilt per element from
    /// `m`'s and `y`'s elements (`from` names its fields) rather than kept: the lifted
    /// closure's `backward` applied to each element of `d`.
    pub(super) fn rebuilt_map_pullback(
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
    pub(super) fn lifted_pullback_fn(&self, k: usize) -> TokenStream {
        self.with_generic_args(&names::pullback_fn(&self.func.closures[k].function))
    }

    /// `name`, or `name::<T, N>` with the function's type and const parameters.
    pub(super) fn with_generic_args(&self, name: &Ident) -> TokenStream {
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
    pub(super) fn lifted_item(
        &self,
        variants: &[&Analysis],
        inst: Inst,
        k: usize,
    ) -> Option<TokenStream> {
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
    pub(super) fn map_with_captures_backward(
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
}
