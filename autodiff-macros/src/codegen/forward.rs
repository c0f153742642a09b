//! The forward statements: blocks, branches and loops run forward, filling the records
//! (element reads of unchanged arrays pushed in one `extend` after their loop).

use super::*;

impl Context<'_> {
    pub(super) fn forward_block(
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
                    let mut args = operands.clone();
                    args.push(quote!(&mut #slot));
                    let call = call_expr(&callee, &args, data.span);
                    out.extend(quote_spanned! {data.span=>
                        let (#pattern, #call_name) = #call;
                    });
                }
                Opcode::Assert(_) if data.results.is_empty() => {
                    let expr = self.inst_expr(inst, &operands);
                    out.extend(quote!(#expr;));
                }
                _ => {
                    let expr = self.inst_expr(inst, &operands);
                    let pattern = self.typed_results_pattern(inst);
                    out.extend(quote!(let #pattern = #expr;));
                }
            }
            self.save_arrays(variant.analysis, &data.results, out);
        }
    }

    /// Whether loop `inst`'s records are a field of the pullback struct itself (a loop at the
    /// function's top level), rather than of a branch's or an enclosing loop's record.
    pub(super) fn is_struct_field_record(&self, inst: Inst) -> bool {
        self.func.block(self.func.entry).insts.contains(&inst)
    }

    /// The record stack `field` of the earlier pullback the forward pass may reuse, taken out
    /// of it (see [`names::hidden_reusing_pullback_fn`]).
    pub(super) fn previous_field(&self, field: &Ident) -> TokenStream {
        let previous = names::previous_pullback();
        quote!(#previous.as_mut().map(|previous| ::core::mem::take(&mut previous.#field)))
    }

    /// Whether the pullback struct holds stacks of records, which a reusing forward pass
    /// takes over from an earlier pullback.
    pub(super) fn has_record_stacks(&self, analysis: &Analysis, records: &Records) -> bool {
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
    /// [`Self::results_pattern`], with the type the user wrote when the instruction is a
    /// call or method with one result bound by a typed `let`: nothing else may tell rustc the
    /// type of `nalgebra::convert(0.5)` or `T::from_f64(0.5)`.
    pub(super) fn typed_results_pattern(&self, inst: Inst) -> TokenStream {
        let data = self.func.inst(inst);
        let pattern = self.results_pattern(inst);
        match (&data.opcode, &data.results[..]) {
            (Opcode::Call(_) | Opcode::Method(..), [result]) => match self.declared.get(result) {
                Some(ty) => quote!(#pattern: #ty),
                None => pattern,
            },
            _ => pattern,
        }
    }

    pub(super) fn results_pattern(&self, inst: Inst) -> TokenStream {
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

    pub(super) fn forward_branch(
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
    pub(super) fn declare_carriers(
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
    pub(super) fn let_mut_typed_as(
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
    pub(super) fn forward_iteration(
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

    pub(super) fn forward_loop(
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
    pub(super) fn carries_only_numbers(&self, analysis: &Analysis, inst: Inst) -> bool {
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
    pub(super) fn deferred_record_reads(
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
    pub(super) fn records_read_after_loop(
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
            let pattern = self.typed_results_pattern(i);
            statements.extend(quote!(let #pattern = #expr;));
        }
        quote! {
            #target.extend(#iter.map(|#index| {
                #statements
                #ty { #(#inits,)* #marker }
            }));
        }
    }
}
