//! `_grad`'s own loops: a sum loop run forward and back in one sweep, and eager loops that
//! run each iteration forward and then backward.

use super::*;

impl Context<'_> {
    /// The loop `_grad` runs with each iteration's backward pass right after its forward
    /// pass, as a hand-written adjoint would, instead of a forward sweep and then a backward
    /// sweep: a top-level `for` loop whose result is the function's output, with nothing after
    /// it to differentiate (so the cotangent of its result is the output's, known before it
    /// runs), whose every active carried value is a sum (`s = s + e`, `s = s - e`, `s` used
    /// nowhere else, so its cotangent is the same in every iteration and the iterations'
    /// backward passes may run in any order), and whose body is straight-line code (no branch,
    /// loop, call of a differentiated function or parameter-set path).
    pub(super) fn fusable_loop(&self, analysis: &Analysis) -> Option<Inst> {
        let entry = self.func.block(self.func.entry);
        let [output] = entry.yields[..] else {
            return None;
        };
        let l = self.func.def_inst(output)?;
        let data = self.func.inst(l);
        if !matches!(&data.opcode, Opcode::ForRange(range) if !range.breaks)
            || !analysis.reversed[l.index()]
            || !analysis.is_active(output)
        {
            return None;
        }
        let position = entry.insts.iter().position(|&inst| inst == l)?;
        if entry.insts[position + 1..]
            .iter()
            .any(|inst| analysis.reversed[inst.index()])
        {
            return None;
        }
        let body = data.arms[0];
        // (calls of constants, like `T::from(0.5)`, are forward code only)
        let straight = self.func.block(body).insts.iter().all(|&inst| {
            let d = self.func.inst(inst);
            let differentiated_call =
                matches!(d.opcode, Opcode::Call(_)) && analysis.reversed[inst.index()];
            d.arms.is_empty()
                && !differentiated_call
                && !matches!(d.opcode, Opcode::MapElementwise(_) | Opcode::Place(_))
                && d.args.iter().all(|&a| {
                    !self
                        .func
                        .def_inst(a)
                        .is_some_and(|def| matches!(self.func.inst(def).opcode, Opcode::Place(_)))
                })
        });
        // the backward statements read the iteration's values in place: none may be an
        // array the forward statements moved on (`backward` reads its saved copy)
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let saved_array = inside
            .iter()
            .any(|v| analysis.is_saved(*v) && analysis.arrays[v.index()]);
        if !straight
            || saved_array
            || self
                .func
                .block(body)
                .params
                .iter()
                .any(|p| analysis.counters.contains_key(p))
        {
            return None;
        }
        for (_, param, next, result) in loop_slots(self.func, l) {
            if !analysis.is_active(param) && !analysis.is_active(next) {
                continue;
            }
            let scalar = !analysis.arrays[param.index()]
                && !analysis.tensors[param.index()]
                && !analysis.matrices[param.index()];
            let mut next_uses = Vec::new();
            self.uses_in(body, next, &mut next_uses);
            if !scalar
                || !self.is_sum(body, param, next)
                || next_uses != [None]
                || (result != output && analysis.is_active(result))
            {
                return None;
            }
        }
        Some(l)
    }

    /// Whether the carried value `param` of loop body `body` becomes `next` by a sum: plus or
    /// minus terms, one addition or subtraction at a time, each partial sum used only by the
    /// next (`s += a; s -= b;`), possibly in the arms of a branch (`if c { s += a }`), and
    /// `param` used nowhere else. Its cotangent is then the same in every iteration.
    pub(super) fn is_sum(&self, body: Block, param: Value, next: Value) -> bool {
        let mut param_uses = Vec::new();
        self.uses_in(body, param, &mut param_uses);
        param != next && self.sum_chain_uses(body, body, param, next) == Some(param_uses.len())
    }

    /// If `v` in `block` is `param` plus or minus terms (see [`Context::is_sum`]), how many
    /// times the chain uses `param`; partial sums are counted in `body`.
    pub(super) fn sum_chain_uses(
        &self,
        body: Block,
        block: Block,
        param: Value,
        v: Value,
    ) -> Option<usize> {
        let def = self.func.def_inst(v)?;
        if !self.func.block(block).insts.contains(&def) {
            return None;
        }
        let from = |a: Value| {
            if a == param {
                return Some(1);
            }
            let mut uses = Vec::new();
            self.uses_in(body, a, &mut uses);
            if uses.len() != 1 {
                return None;
            }
            self.sum_chain_uses(body, block, param, a)
        };
        let data = self.func.inst(def);
        match data.opcode {
            Opcode::Binary(BinaryOp::Add) => from(data.args[0]).or_else(|| from(data.args[1])),
            Opcode::Binary(BinaryOp::Sub) => from(data.args[0]),
            Opcode::If | Opcode::Match(_) => {
                // every arm adds its terms to the same value from before the branch, which
                // only the arms use (one of them runs)
                let k = data.results.iter().position(|&r| r == v)?;
                let mut base = None;
                for &arm in &data.arms {
                    let y = *self.func.block(arm).yields.get(k)?;
                    let b = self.arm_chain_base(body, arm, y)?;
                    if base.replace(b).is_some_and(|previous| previous != b) {
                        return None;
                    }
                }
                let base = base?;
                if base == param {
                    return Some(data.arms.len());
                }
                let mut uses = Vec::new();
                self.uses_in(body, base, &mut uses);
                if uses.len() != data.arms.len() {
                    return None;
                }
                self.sum_chain_uses(body, block, param, base)
            }
            _ => None,
        }
    }

    /// The value from before a branch that arm `arm` yields as `y` plus or minus terms, one
    /// addition or subtraction at a time, each partial sum used once (`y` itself when the arm
    /// leaves it as it is).
    pub(super) fn arm_chain_base(&self, body: Block, arm: Block, y: Value) -> Option<Value> {
        let in_arm = |v: Value| {
            self.func
                .def_inst(v)
                .is_some_and(|d| self.func.block(arm).insts.contains(&d))
        };
        if !in_arm(y) {
            return Some(y);
        }
        let from = |a: Value| {
            if !in_arm(a) {
                return Some(a);
            }
            let mut uses = Vec::new();
            self.uses_in(body, a, &mut uses);
            if uses.len() != 1 {
                return None;
            }
            self.arm_chain_base(body, arm, a)
        };
        let data = self.func.inst(self.func.def_inst(y)?);
        match data.opcode {
            Opcode::Binary(BinaryOp::Add) => from(data.args[0]).or_else(|| from(data.args[1])),
            Opcode::Binary(BinaryOp::Sub) => from(data.args[0]),
            _ => None,
        }
    }

    /// The cotangents of outer values a loop's body contributes to, in the forward statements
    /// of `_grad`: the values, in order, and `let (mut d_a, ..) = { .. };` declaring them zero
    /// in a block where the lengths they are sized by are bound by reference, as the backward
    /// pass reads them.
    pub(super) fn declare_outer_cotangents(
        &self,
        analysis: &Analysis,
        arms: &[Block],
    ) -> (Vec<Value>, TokenStream) {
        let mut scope = HashSet::new();
        let mut declarations = TokenStream::new();
        self.predeclare(analysis, arms, &mut scope, &mut declarations);
        let mut declared: Vec<Value> = scope.into_iter().collect();
        declared.sort_by_key(|v| v.index());
        let lengths = declared.iter().filter_map(|&v| {
            let len = self.full_length(analysis, v)?;
            let name = self.names.name(len);
            (!analysis.constant[len.index()]).then(|| quote!(let #name = &#name;))
        });
        let names: Vec<&Ident> = declared.iter().map(|&v| self.names.cotangent(v)).collect();
        let declaration = quote! {
            let (#(mut #names,)*) = {
                #(#lengths)*
                #declarations
                (#(#names,)*)
            };
        };
        (declared, declaration)
    }

    /// The fused loop of `_grad` (see [`Context::fusable_loop`]): each iteration's forward
    /// statements, then, in a block of their own where the values they read are bound by
    /// reference as the backward pass binds them, the same iteration's backward statements.
    pub(super) fn fused_loop(
        &self,
        variant: &Variant,
        records: &Records,
        inst: Inst,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let private = private();
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return self.forward_loop(variant, records, inst, out);
        };
        let body = data.arms[0];
        let (d_output, ret) = (names::output_cotangent(), &self.sig.return_type);
        out.extend(quote!(let #d_output: #ret = #private::one();));
        let (declared, declaration) = self.declare_outer_cotangents(analysis, &data.arms);
        let mut scope: HashSet<Value> = declared.into_iter().collect();
        out.extend(declaration);
        let slots = loop_slots(self.func, inst);
        let carry = |result: Value| format_ident!("{}_carry", self.names.cotangent(result));
        self.declare_carriers(analysis, &slots, out);
        for &(_, param, _, result) in &slots {
            if analysis.is_active(param) {
                // the output's cotangent, in every iteration (`fusable_loop`)
                let c = carry(result);
                out.extend(quote!(let #c = #d_output;));
            }
        }
        let mut iteration = self.forward_iteration(variant, records, body, &slots);

        // this iteration's backward statements, reading its values by reference
        let mut backward = TokenStream::new();
        let index = self.func.block(body).params[0];
        let index_name = self.names.name(index);
        backward.extend(quote!(let #index_name = &#index_name;));
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let mut bound = HashSet::new();
        for &i in &self.func.block(body).insts {
            for &arg in &self.func.inst(i).args {
                let mut root = arg;
                while let Some(def) = self.func.def_inst(root) {
                    match self.func.inst(def).opcode {
                        Opcode::Ref if !inside.contains(&root) => {
                            root = self.func.inst(def).args[0]
                        }
                        _ => break,
                    }
                }
                if inside.contains(&root) || analysis.constant[root.index()] || !bound.insert(root)
                {
                    continue;
                }
                backward.extend(self.reference_binding(analysis, root));
            }
        }
        // the lengths the cotangents of fixed-length arrays are allocated at or checked against
        for &i in &self.func.block(body).insts {
            let data = self.func.inst(i);
            for &v in data.args.iter().chain(&data.results) {
                let Some(len) = self.local_length(analysis, v) else {
                    continue;
                };
                if !inside.contains(&len) && !analysis.constant[len.index()] && bound.insert(len) {
                    backward.extend(self.reference_binding(analysis, len));
                }
            }
        }
        for &v in self.func.block(body).params.iter().skip(1) {
            if analysis.is_saved(v) {
                backward.extend(self.reference_binding(analysis, v));
            }
        }
        for &i in &self.func.block(body).insts {
            for &r in &self.func.inst(i).results {
                if analysis.is_saved(r) {
                    backward.extend(self.reference_binding(analysis, r));
                }
            }
        }
        backward.extend(self.recompute_block(analysis, body));
        let shifted = self
            .shifted_reads(analysis, inst)
            .filter(|shift| scope.contains(&shift.array));
        let mut inner_variant = Variant {
            analysis,
            hidden: variant.hidden,
            shifted: variant.shifted.clone(),
            fused: variant.fused,
            eager: variant.eager.clone(),
        };
        let mut after = TokenStream::new();
        let locals = shifted.as_ref().map(|shift| {
            // forward order: element `i` gets this iteration's `a[i]` contribution and the
            // previous iteration's `a[i + 1]` one; the last `a[i + 1]` goes in after the loop
            let locals = self.shift_locals(analysis, shift, &mut inner_variant, out, &mut backward);
            let (d_array, carried) = (&locals.d_array, &locals.carried);
            let carried_at = format_ident!("{}_shift_at", d_array);
            out.extend(quote! {
                let mut #carried_at: ::core::option::Option<usize> = ::core::option::Option::None;
            });
            // the element after the last one the loop wrote got nothing in the loop either
            let rule = if self.presized_length(analysis, shift.array).is_some()
                || self.fixed_length_param(shift.array)
            {
                quote!(index_set_in_bounds)
            } else {
                self.shift_add_rule(analysis, shift)
            };
            after.extend(quote! {
                if let ::core::option::Option::Some(at) = #carried_at {
                    #private::rules::#rule(&mut #d_array, &at, #carried);
                }
            });
            locals
        });
        let mut inner = scope.clone();
        for &(_, param, next, result) in &slots {
            if analysis.is_active(param) {
                let c = carry(result);
                self.contribute_from(
                    analysis,
                    &mut inner,
                    next,
                    result,
                    quote!(#c),
                    &mut backward,
                );
            }
        }
        self.backward_block(&inner_variant, records, body, &mut inner, &mut backward);
        if let (Some(shift), Some(locals)) = (&shifted, &locals) {
            let ShiftLocals {
                d_array,
                carried,
                at_index,
                at_next,
            } = locals;
            let carried_at = format_ident!("{}_shift_at", d_array);
            let next = self.read_ref(analysis, shift.next_index);
            // the cotangent was declared zero in front of the loop, and element `i` gets no
            // other contribution in it: its first one is written, not added
            let rule = if self.presized_length(analysis, shift.array).is_some()
                || self.fixed_length_param(shift.array)
            {
                quote!(index_set_in_bounds)
            } else {
                quote!(index_add)
            };
            backward.extend(quote! {
                #private::rules::#rule(&mut #d_array, #index_name, #at_index + #carried);
                #carried = #at_next;
                #carried_at = ::core::option::Option::Some(*#next);
            });
        }
        iteration.extend(quote!({ #backward }));
        let iter = range_iterator(range, |k| self.operand(data.args[k]));
        out.extend(quote!(for #index_name in #iter { #iteration }));
        out.extend(after);
        for &(init, param, _, result) in &slots {
            if analysis.is_active(param) && analysis.is_active(init) {
                let c = carry(result);
                self.contribute_from(analysis, &mut scope, init, result, quote!(#c), out);
            }
        }
        *self.fused_scope.borrow_mut() = scope;
    }

    /// The loops `_grad` runs eagerly. A top-level `for` loop over a scratch buffer, like
    /// ADBench's GMM objective (per point: centre it into a buffer, transform it into another,
    /// add the log-sum-exp of the components to a sum), would otherwise save records for every
    /// iteration and replay them all in reverse after the forward pass. When the loop's active
    /// carried values are sums ([`Context::is_sum`], also in the arms of a branch) of which
    /// exactly one is read after the loop, and float arrays read nowhere after it that start
    /// from a value without derivative, the loop's contribution to the gradient is the
    /// gradient of that one sum times its cotangent: `_grad` accumulates the gradient for a
    /// seed of one while the loop runs, each iteration's backward statements right after its
    /// forward ones (its records still in cache), and the backward pass scales it.
    ///
    /// This assumes no cotangent crosses from an iteration to the one before it through the
    /// arrays, that is, each iteration writes every element it reads before reading it, which
    /// only the run can tell: every iteration after the first checks that its arrays'
    /// cotangents are zero, and if not `_grad` starts over with `f_pullback` and `backward`.
    /// That call takes the arguments again, so a loop carrying arrays is eager only when every
    /// argument is a shared reference or a number (`Copy`).
    pub(super) fn eager_loops(&self, analysis: &Analysis, fused: Option<Inst>) -> Vec<EagerLoop> {
        const NUMBERS: &[&str] = &[
            "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64",
            "u128", "usize", "bool",
        ];
        let generics = crate::args::type_params(self.item);
        let restartable = self.sig.params.iter().all(|p| match &p.ty {
            syn::Type::Reference(r) => r.mutability.is_none(),
            syn::Type::Path(path) => {
                path.qself.is_none()
                    && path.path.get_ident().is_some_and(|id| {
                        generics.contains(id) || NUMBERS.contains(&id.to_string().as_str())
                    })
            }
            _ => false,
        });
        self.func
            .block(self.func.entry)
            .insts
            .iter()
            .filter(|&&l| Some(l) != fused)
            .filter_map(|&l| self.eager_loop(analysis, l, restartable))
            .collect()
    }

    /// Loop `l` as an eager loop of `_grad`, if it is one (see [`Context::eager_loops`]).
    pub(super) fn eager_loop(
        &self,
        analysis: &Analysis,
        l: Inst,
        restartable: bool,
    ) -> Option<EagerLoop> {
        let data = self.func.inst(l);
        if !matches!(&data.opcode, Opcode::ForRange(range) if !range.breaks)
            || !analysis.reversed[l.index()]
        {
            return None;
        }
        let body = data.arms[0];
        // parameter-set paths write through to outer values
        let mut places = false;
        self.func.walk_insts(body, &mut |i| {
            places |= matches!(self.func.inst(i).opcode, Opcode::Place(_));
        });
        // a counter is counted down from the value it has after the last iteration
        let counted = self.func.block(body).params.iter().any(|p| {
            analysis.counters.contains_key(p)
                || analysis.chained.values().any(|(outer, _)| outer == p)
        });
        if places || counted {
            return None;
        }
        let (mut sum, mut checked) = (None, false);
        for slot in loop_slots(self.func, l) {
            let (init, param, next, result) = slot;
            if !analysis.is_active(param) && !analysis.is_active(next) {
                continue;
            }
            let mut after = Vec::new();
            self.uses_in(self.func.entry, result, &mut after);
            let scalar = !analysis.arrays[param.index()]
                && !analysis.tensors[param.index()]
                && !analysis.matrices[param.index()];
            if scalar {
                let mut next_uses = Vec::new();
                self.uses_in(body, next, &mut next_uses);
                if !self.is_sum(body, param, next) || next_uses != [None] {
                    return None;
                }
                if !after.is_empty() && sum.replace(slot).is_some() {
                    return None;
                }
            } else if analysis.arrays[param.index()]
                && !analysis.tensors[param.index()]
                && !analysis.matrices[param.index()]
                && self.float_elements(analysis, param)
                && after.is_empty()
                && !analysis.is_active(init)
                && restartable
            {
                checked = true;
            } else {
                return None;
            }
        }
        let sum = sum?;
        // the gradient is scaled: the outer values must be numbers or arrays of numbers
        let generics = crate::args::type_params(self.item);
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let mut touched = Vec::new();
        self.active_refs(analysis, body, &mut touched);
        let scalable = touched.iter().filter(|v| !inside.contains(v)).all(|&v| {
            let struct_param = matches!(self.func.value(v).def,
                ValueDef::Param(i) if self.func.param_structs[i]);
            if analysis.tensors[v.index()] || analysis.matrices[v.index()] {
                false
            } else if analysis.arrays[v.index()] {
                self.float_elements(analysis, v)
            } else {
                !struct_param
                    && self.callee_zero(analysis, v).is_none()
                    && analysis.types[v.index()]
                        .as_ref()
                        .is_none_or(|ty| crate::args::is_float_type(ty, &generics))
            }
        });
        scalable.then_some(EagerLoop {
            inst: l,
            sum,
            checked,
        })
    }

    /// The forward statements of an eager loop in `_grad` (see [`Context::eager_loops`]): the
    /// cotangents of the outer values its body reads, declared in front of it; each iteration's
    /// forward statements, its record in a local, and, in a block binding what they read as
    /// the backward pass binds it, its backward statements; the gradient in `loopN_gradient`.
    pub(super) fn eager_forward(
        &self,
        variant: &Variant,
        records: &Records,
        eager: &EagerLoop,
        out: &mut TokenStream,
    ) {
        let analysis = variant.analysis;
        let private = private();
        let inst = eager.inst;
        let data = self.func.inst(inst);
        let Opcode::ForRange(range) = &data.opcode else {
            return self.forward_loop(variant, records, inst, out);
        };
        let body = data.arms[0];
        let slots = loop_slots(self.func, inst);
        self.declare_carriers(analysis, &slots, out);
        let (declared, declaration) = self.declare_outer_cotangents(analysis, &data.arms);
        let mut run = declaration;
        let carry = |result: Value| format_ident!("{}_carry", self.names.cotangent(result));
        let active: Vec<_> = slots
            .iter()
            .copied()
            .filter(|(_, param, _, _)| analysis.is_active(*param))
            .collect();
        for &(_, param, _, result) in &active {
            let c = carry(result);
            let initial = if result == eager.sum.3 {
                let carrier = self.names.name(result);
                quote!(#private::one_like(&#carrier))
            } else {
                self.zero_in_forward(analysis, param)
            };
            run.extend(self.let_mut_typed_as(analysis, param, &c, initial));
        }

        // forward: the flat stacks of the loops inside start empty in every iteration
        let mut nested = Vec::new();
        self.nested_loops(body, true, &mut nested);
        let stacks: Vec<Ident> = records
            .flat
            .iter()
            .filter(|inst| nested.contains(inst))
            .map(|&inst| self.record_stack(inst, records.index[&inst]))
            .collect();
        // the calls of the body run through their pullbacks, kept for its backward statements
        *self.kept_calls.borrow_mut() = self
            .func
            .block(body)
            .insts
            .iter()
            .copied()
            .filter(|&i| {
                matches!(self.func.inst(i).opcode, Opcode::Call(_)) && analysis.reversed[i.index()]
            })
            .collect();
        *self.unsaved_arrays.borrow_mut() = self.read_only_by_kept_calls(analysis, body);
        let mut kept: Vec<Inst> = self.kept_calls.borrow().iter().copied().collect();
        kept.sort_by_key(|i| i.index());
        let kept_calls: Vec<Ident> = kept
            .iter()
            .map(|&i| names::call_pullback(i.index()))
            .collect();
        let call_slots: Vec<Ident> = kept_calls
            .iter()
            .map(|call| format_ident!("{}_slot", call))
            .collect();
        run.extend(quote!(#(let mut #call_slots = ::core::option::Option::None;)*));
        let mut iteration = quote!(#(#stacks.clear();)*);
        iteration.extend(self.forward_iteration(variant, records, body, &slots));
        let record = records
            .index
            .get(&inst)
            .filter(|_| self.loop_has_fields(analysis, records, inst))
            .map(|&index| {
                (
                    self.record_type(inst, index, variant.hidden),
                    format_ident!("record{}", inst.index()),
                )
            });
        if let Some((ty, record)) = &record {
            let inits = self.field_inits(analysis, records, body);
            let marker = self.marker_type().map(|_| {
                let name = names::marker_field();
                quote!(#name: #private::PhantomData,)
            });
            // typed: in a generic function only the marker may mention the type parameters
            let ty_args = self.struct_ty_args();
            iteration.extend(quote!(let #record: #ty #ty_args = #ty { #(#inits,)* #marker };));
        }
        self.unsaved_arrays.borrow_mut().clear();

        // backward, for this iteration
        let index_name = self.names.name(self.func.block(body).params[0]);
        let mut backward = quote!(let #index_name = &#index_name;);
        backward.extend(self.outer_bindings(analysis, body, &declared));
        if let Some((ty, record)) = &record {
            let bindings = self.field_bindings(analysis, records, body);
            backward.extend(quote!(let #ty { #(#bindings,)* .. } = &#record;));
        }
        for stack in &stacks {
            let cursor = format_ident!("{}_cursor", stack);
            backward.extend(quote! {
                let #stack = &#stack;
                let mut #cursor = #stack.len();
            });
        }
        backward.extend(self.recompute_block(analysis, body));
        let mut inner: HashSet<Value> = declared.iter().copied().collect();
        for &(_, _, next, result) in &active {
            if analysis.is_active(next) {
                let c = carry(result);
                self.contribute_from(
                    analysis,
                    &mut inner,
                    next,
                    result,
                    quote!(#c),
                    &mut backward,
                );
            }
        }
        let inner_variant = Variant {
            analysis,
            hidden: variant.hidden,
            shifted: variant.shifted.clone(),
            fused: None,
            eager: Vec::new(),
        };
        self.backward_block(&inner_variant, records, body, &mut inner, &mut backward);
        self.kept_calls.borrow_mut().clear();
        let mut crossed = Vec::new();
        let mut reset = TokenStream::new();
        for &(_, param, _, result) in &active {
            let c = carry(result);
            if inner.contains(&param) {
                let d = self.names.cotangent(param);
                backward.extend(quote!(#c = #d;));
                if analysis.arrays[param.index()] {
                    crossed.push(quote!(!#private::all_zero(&#c)));
                    let zero = self.zero_in_forward(analysis, param);
                    reset.extend(quote!(#c = #zero;));
                }
            } else {
                let zero = self.zero_of(analysis, param);
                backward.extend(quote!(#c = #zero;));
            }
        }
        if eager.checked && !crossed.is_empty() {
            // a cotangent into the first iteration goes to the arrays' initial values, which
            // have none; into any other, the two-sweep pass must carry it
            let later = format_ident!("loop{}_later", inst.index());
            let pullback = self.with_generic_args(&names::pullback_fn(&self.func.name));
            let args = self.sig.params.iter().map(|p| &p.name);
            run.extend(quote!(let mut #later = false;));
            iteration.extend(quote! {
                let crossed = { #backward #(#crossed)||* };
                if crossed {
                    if #later {
                        let (value, pullback) = #pullback(#(#args),*);
                        return (value, pullback.backward(#private::one()));
                    }
                    #reset
                }
                #later = true;
            });
        } else {
            iteration.extend(quote!({ #backward }));
        }
        let iter = range_iterator(range, |k| self.operand(data.args[k]));
        run.extend(quote!(for #index_name in #iter { #iteration }));
        let gradient = format_ident!("loop{}_gradient", inst.index());
        let names = declared.iter().map(|&v| self.names.cotangent(v));
        out.extend(quote!(let #gradient = { #run (#(#names,)*) };));
    }

    /// The saved `Vec`s of an eager loop's body that only the calls whose pullbacks are kept
    /// read (directly or through a borrow), besides being carried to the next iteration: the
    /// copy its record would take for replaying those calls is never read.
    pub(super) fn read_only_by_kept_calls(
        &self,
        analysis: &Analysis,
        body: Block,
    ) -> HashSet<Value> {
        let kept = self.kept_calls.borrow();
        let block = self.func.block(body);
        // a kept call, or an element read whose element is saved itself
        let kept_use = |u: &Option<Inst>| {
            u.is_some_and(|i| {
                let data = self.func.inst(i);
                kept.contains(&i)
                    || matches!(data.opcode, Opcode::Index)
                        && !analysis.matrices[data.args[0].index()]
                        && !analysis.recompute[data.results[0].index()]
            })
        };
        let mut candidates: Vec<Value> = block.params.clone();
        for &inst in &block.insts {
            candidates.extend(&self.func.inst(inst).results);
        }
        candidates
            .into_iter()
            .filter(|&v| {
                let is_vec = analysis.types[v.index()].as_ref().is_some_and(|ty| {
                    matches!(ty, syn::Type::Path(_))
                        && matches!(crate::args::array_type(ty), Some((ArrayKind::Vec, _)))
                });
                if !analysis.is_saved(v) || !analysis.arrays[v.index()] || !is_vec {
                    return false;
                }
                let mut uses = Vec::new();
                self.uses_in(body, v, &mut uses);
                let yielded = block.yields.iter().filter(|&&y| y == v).count();
                let through_kept = uses.iter().filter(|u| {
                    kept_use(u)
                        || u.is_some_and(|i| {
                            let data = self.func.inst(i);
                            let mut borrows = Vec::new();
                            if matches!(data.opcode, Opcode::Ref) {
                                self.uses_in(body, data.results[0], &mut borrows);
                            }
                            !borrows.is_empty() && borrows.iter().all(kept_use)
                        })
                });
                through_kept.count() + yielded == uses.len()
            })
            .collect()
    }

    /// In a backward block inside `_grad`'s forward statements: every value from outside loop
    /// body `body` its backward statements read, bound by reference under its name as the
    /// backward pass binds it (with the lengths the cotangents `declared` are sized by).
    pub(super) fn outer_bindings(
        &self,
        analysis: &Analysis,
        body: Block,
        declared: &[Value],
    ) -> TokenStream {
        let mut inside = HashSet::new();
        self.func.defined_in(body, &mut inside);
        let mut roots = Vec::new();
        let visit = |v: Value, roots: &mut Vec<Value>| {
            let mut root = v;
            while let Some(def) = self.func.def_inst(root) {
                match self.func.inst(def).opcode {
                    Opcode::Ref if !inside.contains(&root) => root = self.func.inst(def).args[0],
                    _ => break,
                }
            }
            if !inside.contains(&root) && !analysis.constant[root.index()] && !roots.contains(&root)
            {
                roots.push(root);
            }
        };
        self.func.walk_insts(body, &mut |i| {
            let data = self.func.inst(i);
            for &arg in &data.args {
                visit(arg, &mut roots);
            }
            for &arm in &data.arms {
                for &y in &self.func.block(arm).yields {
                    visit(y, &mut roots);
                }
            }
        });
        for &y in &self.func.block(body).yields {
            visit(y, &mut roots);
        }
        for &v in declared {
            if let Some(len) = self.full_length(analysis, v) {
                visit(len, &mut roots);
            }
        }
        // the lengths the cotangents of fixed-length arrays are allocated at or checked
        // against, wherever the body's backward statements declare them
        let arrays: Vec<Value> = roots.clone();
        for v in arrays {
            if let Some(len) = self.local_length(analysis, v) {
                visit(len, &mut roots);
            }
        }
        self.func.walk_insts(body, &mut |i| {
            for &r in &self.func.inst(i).results {
                if let Some(len) = self.local_length(analysis, r) {
                    visit(len, &mut roots);
                }
            }
        });
        roots
            .into_iter()
            .map(|v| self.reference_binding(analysis, v))
            .collect()
    }

    /// The backward statements of an eager loop: the gradient it accumulated for a seed of
    /// one, times the cotangent of its sum, added to the outer values' cotangents.
    pub(super) fn eager_backward(
        &self,
        analysis: &Analysis,
        eager: &EagerLoop,
        scope: &mut HashSet<Value>,
        out: &mut TokenStream,
    ) {
        let private = private();
        let (init, _, _, result) = eager.sum;
        if !scope.contains(&result) {
            return;
        }
        let d_sum = self.names.cotangent(result);
        let data = self.func.inst(eager.inst);
        let (declared, _) = self.declare_outer_cotangents(analysis, &data.arms);
        let gradient = format_ident!("loop{}_gradient", eager.inst.index());
        let parts: Vec<Ident> = declared
            .iter()
            .map(|&v| format_ident!("{}_loop{}", self.names.cotangent(v), eager.inst.index()))
            .collect();
        out.extend(quote!(let (#(#parts,)*) = #gradient;));
        for (&v, part) in declared.iter().zip(&parts) {
            let scaled = if analysis.arrays[v.index()] {
                quote!(#private::scale_elements(#part, #d_sum))
            } else {
                quote!((#part * #d_sum))
            };
            if scope.contains(&v) {
                self.contribute(analysis, scope, v, scaled, out);
            } else {
                // the accumulated gradient has the cotangent's full length already
                let d = self.names.cotangent(v);
                out.extend(quote!(let mut #d = #scaled;));
                scope.insert(v);
            }
        }
        if analysis.is_active(init) {
            self.contribute(analysis, scope, init, quote!(#d_sum), out);
        }
    }
}
