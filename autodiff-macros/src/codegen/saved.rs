//! What the pullback struct holds: the per-loop record stacks, the values saved in each
//! block and in place, their fields, declarations and heap sizes.

use super::*;

impl Context<'_> {
    pub(super) fn records(&self, analysis: &Analysis) -> Records {
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
    pub(super) fn nested_loops(&self, block: Block, in_loop: bool, out: &mut Vec<Inst>) {
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
    pub(super) fn record_stack(&self, inst: Inst, index: usize) -> Ident {
        format_ident!("{}_stack", self.record_field(inst, index))
    }

    pub(super) fn is_loop(&self, inst: Inst) -> bool {
        self.func.loop_layout(inst).is_some()
    }

    pub(super) fn record_field(&self, inst: Inst, index: usize) -> Ident {
        if self.is_loop(inst) {
            format_ident!("loop{}", index)
        } else {
            names::branch_field(index)
        }
    }

    pub(super) fn record_type(&self, inst: Inst, index: usize, hidden: bool) -> Ident {
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
    pub(super) fn loop_has_fields(
        &self,
        analysis: &Analysis,
        records: &Records,
        inst: Inst,
    ) -> bool {
        let body = self.func.inst(inst).arms[0];
        !self.saved_in_block(analysis, body).is_empty()
            || !self.records_in_block(records, body).is_empty()
    }

    /// Whether a nested loop's entries on its flat stack are counted by its range in the
    /// backward pass instead of by a count in the enclosing record.
    pub(super) fn range_counted(&self, analysis: &Analysis, records: &Records, inst: Inst) -> bool {
        records.flat.contains(&inst) && self.replayed_trip_count(analysis, inst).is_some()
    }

    /// The trip count of a loop that runs a whole `start..end` range of `usize` (replayed in
    /// the backward pass), from the bounds the backward pass reads.
    pub(super) fn replayed_trip_count(
        &self,
        analysis: &Analysis,
        inst: Inst,
    ) -> Option<TokenStream> {
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

    pub(super) fn saved_in_block(&self, analysis: &Analysis, block: Block) -> Vec<Value> {
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
    pub(super) fn held_by_next_record(
        &self,
        analysis: &Analysis,
        next: Value,
    ) -> Option<(Value, Value)> {
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

    pub(super) fn saved_in_block_all(&self, analysis: &Analysis, block: Block) -> Vec<Value> {
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

    pub(super) fn records_in_block(&self, records: &Records, block: Block) -> Vec<(Inst, usize)> {
        self.func
            .block(block)
            .insts
            .iter()
            .filter_map(|inst| records.index.get(inst).map(|&i| (*inst, i)))
            .collect()
    }

    /// The variable holding a saved array's copy, taken where it was defined; for an array
    /// saved in place (see [`Self::saved_in_place`]) the array itself.
    pub(super) fn saved_copy(&self, analysis: &Analysis, v: Value) -> Ident {
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
    pub(super) fn saved_in_place(&self, analysis: &Analysis, v: Value) -> bool {
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
                    | Opcode::MatrixFrom { .. }
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
    pub(super) fn made_in_loop_body(&self, analysis: &Analysis, v: Value) -> bool {
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
                    | Opcode::MatrixFrom { .. }
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
    pub(super) fn borrows_operand(
        &self,
        analysis: &Analysis,
        inst: Inst,
        i: usize,
        top_level: bool,
    ) -> bool {
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
            Opcode::Primitive(p) if crate::primitives::cholesky::is_cholesky(p) => container,
            Opcode::Primitive(p) => i == 0 && container && crate::primitives::borrows_receiver(p),
            Opcode::Method(name, None) => {
                i == 0 && container && name == "shape" && result_ends_here()
            }
            Opcode::Binary(BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul)
            | Opcode::Unary(UnaryOp::Neg) => top_level && container,
            _ => false,
        }
    }

    pub(super) fn field_decls(
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
    pub(super) fn record_fields(
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
    pub(super) fn fields(
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

    pub(super) fn field_inits(
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

    pub(super) fn field_bindings(
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
    pub(super) fn frame_heap_bytes(
        &self,
        variant: &Variant,
        records: &Records,
        block: Block,
    ) -> TokenStream {
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
    pub(super) fn struct_heap_bytes(
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
    pub(super) fn declarations(
        &self,
        variant: &Variant,
        records: &Records,
        struct_name: &Ident,
        errors: &mut Errors,
    ) -> TokenStream {
        let generics = self.struct_generics();
        // the struct holds a settings struct without the hidden items' deferred bounds
        // (`expand::with_deferred_bounds`): a caller that cannot call them is told once
        let where_clause = generics.where_clause.as_ref().map(|w| {
            let mut w = w.clone();
            w.predicates = std::mem::take(&mut w.predicates)
                .into_iter()
                .filter(|p| !names::is_deferred_bound(p))
                .collect();
            w
        });
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
    pub(super) fn save_arrays(&self, analysis: &Analysis, values: &[Value], out: &mut TokenStream) {
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
}
