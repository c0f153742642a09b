//! The backward statements: cotangents declared, contributed and moved, blocks, branches and
//! reversed loops (shifted reads carried in registers, rows sliced in front), the
//! gradients handed back.

use super::*;

impl Context<'_> {
    /// `let v = &v;`: a forward value bound by reference under its name, as the backward pass
    /// reads it (a borrowed array parameter as the slice itself).
    pub(super) fn reference_binding(&self, analysis: &Analysis, v: Value) -> TokenStream {
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
    pub(super) fn read_ref(&self, analysis: &Analysis, v: Value) -> TokenStream {
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
    pub(super) fn place_in_backward(
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
    pub(super) fn read_argument(&self, analysis: &Analysis, v: Value) -> TokenStream {
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
    pub(super) fn recompute_block(&self, analysis: &Analysis, block: Block) -> TokenStream {
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
    pub(super) fn presized_length(&self, analysis: &Analysis, v: Value) -> Option<Value> {
        let ValueDef::Param(i) = self.func.value(v).def else {
            return None;
        };
        let kind = crate::args::array_type(&self.func.params[i].ty).map(|(k, _)| k);
        let len = self.func.param_lens.get(i).copied().flatten()?;
        (matches!(kind, Some(ArrayKind::Vec)) && analysis.needed[len.index()]).then_some(len)
    }

    /// Whether `v` is a parameter of fixed length (`&[T; N]`), whose cotangent, an array,
    /// always has every element.
    pub(super) fn fixed_length_param(&self, v: Value) -> bool {
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
    pub(super) fn shift_add_rule(&self, analysis: &Analysis, shift: &ShiftedReads) -> TokenStream {
        if self.full_length(analysis, shift.array).is_some() {
            quote!(index_add_in_bounds)
        } else {
            quote!(index_add)
        }
    }

    /// For a local `Vec` of floats whose length never changes (see [`Analysis::lengths`]):
    /// that length, which its cotangent is allocated at.
    pub(super) fn local_length(&self, analysis: &Analysis, v: Value) -> Option<Value> {
        let len = analysis.lengths[v.index()]?;
        (analysis.needed[len.index()] && self.float_elements(analysis, v)).then_some(len)
    }

    /// The length an array's cotangent has whenever it exists, for a parameter (see
    /// [`Self::presized_length`]) or a local array of fixed length: element updates index it
    /// directly instead of growing it.
    pub(super) fn full_length(&self, analysis: &Analysis, v: Value) -> Option<Value> {
        self.presized_length(analysis, v).or_else(|| {
            self.local_length(analysis, v)
                .filter(|_| !self.lazy_cotangents.borrow().contains(&v))
        })
    }

    /// [`Self::zero_of`] among `_grad`'s forward statements, where values are bound by value
    /// rather than by reference as in the backward pass.
    pub(super) fn zero_in_forward(&self, analysis: &Analysis, v: Value) -> TokenStream {
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

    pub(super) fn zero_of(&self, analysis: &Analysis, v: Value) -> TokenStream {
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
    pub(super) fn struct_type(&self, analysis: &Analysis, v: Value) -> Option<syn::Type> {
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
    pub(super) fn call_result_zero(&self, v: Value) -> Option<syn::ExprPath> {
        let data = self.func.inst(self.func.def_inst(v)?);
        match (&data.opcode, &data.results[..]) {
            // a method called on a field has no type to name its zero by: the generic zero
            (Opcode::Call(path), [_]) if names::method_form(path).is_some() => None,
            (Opcode::Call(path), [_]) => Some(hidden_zero_callee(path)),
            _ => None,
        }
    }

    /// The result of a call whose type nothing here tells (a `Vec` passed on, never indexed)
    /// is whatever the callee returns: its zero comes from the callee.
    pub(super) fn callee_zero(&self, analysis: &Analysis, v: Value) -> Option<syn::ExprPath> {
        if analysis.arrays[v.index()] || analysis.types[v.index()].is_some() {
            return None;
        }
        let data = self.func.inst(self.func.def_inst(v)?);
        match (&data.opcode, &data.results[..]) {
            (Opcode::Call(path), [_]) if names::method_form(path).is_some() => None,
            (Opcode::Call(path), [_]) => Some(hidden_zero_callee(path)),
            _ => None,
        }
    }

    /// `__autodiff_zero_output_f`, see [`zero_output_item`].
    pub fn zero_output(&self) -> TokenStream {
        zero_output_item(self.item, self.sig, &self.cfg_attrs())
    }

    pub(super) fn declare_zero(
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
    pub(super) fn contribute(
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
    pub(super) fn contribute_from(
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
    pub(super) fn contribute_moved(
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

    pub(super) fn active_refs(&self, analysis: &Analysis, block: Block, out: &mut Vec<Value>) {
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
    pub(super) fn predeclare(
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
    pub(super) fn outer_refs(&self, analysis: &Analysis, arms: &[Block]) -> Vec<Value> {
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
    pub(super) fn predeclare_arms(
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
    pub(super) fn arm_fills(
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
    pub(super) fn end_lazy(
        &self,
        analysis: &Analysis,
        lazy: &[(Value, bool)],
        out: &mut TokenStream,
    ) {
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
    pub(super) fn used_whole(&self, block: Block, v: Value) -> bool {
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

    pub(super) fn backward_block(
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
                                let mut args = args.clone();
                                args.push(quote!(&mut #slot));
                                let call = call_expr(&reusing, &args, span);
                                out.extend(quote_spanned! {span=>
                                    let (_, #call_name) = #call;
                                });
                                slots.push(slot);
                            }
                            None => {
                                let call = call_expr(&callee, &args, span);
                                out.extend(quote_spanned! {span=>
                                    let (_, #call_name) = #call;
                                })
                            }
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
                Opcode::MakeTuple => {
                    for k in 0..data.args.len() {
                        if active(k) {
                            let index = syn::Index::from(k);
                            self.contribute(analysis, scope, data.args[k], quote!(#d.#index), out);
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
                // a column, row or diagonal: its cotangent added into that part of the matrix's
                Opcode::Primitive(p) if crate::primitives::linalg::is_part(p) => {
                    if active(0) {
                        if !scope.contains(&data.args[0]) {
                            self.declare_zero(analysis, data.args[0], scope, out);
                        }
                        let d_matrix = self.names.cotangent(data.args[0]);
                        let rule = Ident::new(&format!("{}_add", p.name), data.span);
                        // the matrix (for the shape of an empty cotangent) and the position
                        let reads: Vec<TokenStream> =
                            (0..data.args.len().min(2)).map(read).collect();
                        out.extend(
                            quote!(#private::rules::linalg::#rule(&mut #d_matrix, #(#reads,)* #d);),
                        );
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
                    let taken = if analysis.matrices[result.index()] {
                        quote!(#private::rules::linalg::index_take(&mut #d, #i))
                    } else if self.full_length(analysis, result).is_some() {
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
                // the data takes the cotangent's elements in the order the constructor read
                // them
                Opcode::MatrixFrom { row_major, .. } => {
                    let data = *data.args.last().expect("the data argument");
                    if analysis.is_active(data) {
                        let rule = if *row_major {
                            quote!(#private::rules::linalg::from_row_slice_d)
                        } else {
                            quote!(#private::rules::linalg::from_column_slice_d)
                        };
                        self.contribute(analysis, scope, data, quote!(#rule(&#d)), out);
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

    pub(super) fn backward_branch(
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
    pub(super) fn backward_arm(
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
    pub(super) fn backward_replayed_branch(
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

    pub(super) fn backward_loop(
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
    pub(super) fn range_bound(&self, analysis: &Analysis, inst: Inst, k: usize) -> TokenStream {
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
    pub(super) fn shifted_reads(&self, analysis: &Analysis, inst: Inst) -> Option<ShiftedReads> {
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
    pub(super) fn is_one(&self, v: Value) -> bool {
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
    pub(super) fn row_plan(
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
    pub(super) fn float_elements(&self, analysis: &Analysis, v: Value) -> bool {
        let generics = crate::args::type_params(self.item);
        analysis.elements[v.index()]
            .as_ref()
            .is_some_and(|ty| crate::args::is_float_type(ty, &generics))
    }

    /// Declares the locals of a pair of neighbouring reads: the carried contribution in front
    /// of the loop (in `out`), this iteration's two contributions at its start (in
    /// `iteration`), where `variant` sends the reads' cotangents.
    pub(super) fn shift_locals(
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
    pub(super) fn uses_in(&self, block: Block, v: Value, out: &mut Vec<Option<Inst>>) {
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
    pub(super) fn replayed_index(
        &self,
        analysis: &Analysis,
        inst: Inst,
    ) -> Option<(Ident, TokenStream)> {
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
    pub(super) fn call_sink_target(
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
    pub(super) fn fixed_array_type(&self, analysis: &Analysis, v: Value) -> Option<syn::Type> {
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
    pub(super) fn parameter_gradient(
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
    pub(super) fn gradient_buffers(
        &self,
        analysis: &Analysis,
        scope: &HashSet<Value>,
    ) -> Vec<(usize, Value)> {
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
    pub(super) fn finish_sink(
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
    pub(super) fn backward_into_returned(&self, analysis: &Analysis) -> TokenStream {
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
    pub(super) fn output_cotangent_checks(&self, analysis: &Analysis) -> TokenStream {
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
    pub(super) fn returned_gradients(
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
    pub(super) fn public_gradients(&self, analysis: &Analysis, all: TokenStream) -> TokenStream {
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
}
