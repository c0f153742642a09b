//! Places: element and field reads and writes of parameters, locals and structs built in
//! the function, the containers of data parameters.

use super::*;

impl<'e> Lowerer<'e> {
    pub(super) fn assign_place(&mut self, place: &Expr, value: Operand) {
        match place {
            Expr::Path(p) if p.path.get_ident().is_some() => {
                let ident = p.path.get_ident().expect("checked");
                match self.lookup(&ident.to_string()) {
                    // rustc rejects assignments to constants and unknown names itself
                    None => {
                        self.errors.fail_silently();
                        return;
                    }
                    Some(Slot::Poisoned) => return,
                    Some(_) => {}
                }
                self.assign(ident, Slot::Bound(value));
            }
            Expr::Paren(p) => self.assign_place(&p.expr, value),
            Expr::Tuple(t) => match value {
                Operand::Tuple(items) if items.len() == t.elems.len() => {
                    for (place, item) in t.elems.iter().zip(items) {
                        self.assign_place(place, item);
                    }
                }
                _ => self.errors.push_spanned(
                    t,
                    "destructuring assignment needs a tuple expression on the right, like `(a, b) = (b, a)`; bind a call's result with `let (a, b) = f(x);` first",
                ),
            },
            Expr::Infer(_) => {}
            Expr::Field(_) if self.struct_root(place).is_some() => {
                self.assign_struct_field(place, value)
            }
            Expr::Unary(syn::ExprUnary {
                op: UnOp::Deref(_),
                expr,
                ..
            }) if self.element_item(expr).is_some() => {
                let (array, index) = self.element_item(expr).expect("checked");
                let Operand::Value(value) = value else {
                    self.errors.push_spanned(place, "an array element holds a single value");
                    return;
                };
                let Some(Slot::Bound(Operand::Value(current))) = self.lookup(&array.to_string()) else {
                    return;
                };
                let current = *current;
                let updated =
                    self.emit1(Opcode::IndexSet, vec![current, index, value], place.span());
                self.assign(&array, Slot::Bound(Operand::Value(updated)));
            }
            Expr::Index(index) => {
                let Operand::Value(value) = value else {
                    self.errors.push_spanned(index, "an array element holds a single value");
                    return;
                };
                let Some(base) = local_ident(&index.expr) else {
                    let message = if matches!(strip_parens(&index.expr), Expr::Index(_)) {
                        "nested arrays are not written element by element; keep the numbers in one flat array or `Vec` (`m[i * cols + j] = x`), or use a nalgebra matrix"
                    } else {
                        "write to elements of a local array or `Vec` variable, like `v[i] = x`"
                    };
                    self.errors.push_spanned(&index.expr, message);
                    return;
                };
                let array = self.lower_single(&index.expr);
                // `m[(i, j)] = x`: a tuple of indices into a matrix
                let i = match &*index.index {
                    Expr::Tuple(t) if !t.elems.is_empty() => self
                        .lower_args(&t.elems)
                        .map(|parts| self.emit1(Opcode::Tuple, parts, t.span())),
                    other => self.lower_single(other),
                };
                let (Some(array), Some(i)) = (array, i) else {
                    return;
                };
                let updated = self.emit1(Opcode::IndexSet, vec![array, i, value], index.span());
                self.assign(&base, Slot::Bound(Operand::Value(updated)));
            }
            other => self.errors.push_spanned(
                other,
                format!(
                    "assignment through {} is not supported; assign to a local variable",
                    describe(other)
                ),
            ),
        }
    }

    /// For `s.x.y` (fields only) of a variable bound to a struct built in the function: the
    /// variable and the field names, outermost first.
    pub(super) fn struct_root(&self, place: &Expr) -> Option<(Ident, Vec<Ident>)> {
        let mut names = Vec::new();
        let mut cursor = strip_parens(place);
        while let Expr::Field(f) = cursor {
            let syn::Member::Named(name) = &f.member else {
                return None;
            };
            names.push(name.clone());
            cursor = strip_parens(&f.base);
        }
        let root = local_ident(cursor)?;
        names.reverse();
        match self.lookup(&root.to_string()) {
            Some(Slot::Bound(Operand::Struct(..))) if !names.is_empty() => Some((root, names)),
            _ => None,
        }
    }

    /// `s.x = e` on a struct built in the function: a new version of `s` with that field.
    pub(super) fn assign_struct_field(&mut self, place: &Expr, value: Operand) {
        let Some((root, names)) = self.struct_root(place) else {
            return;
        };
        let Some(Slot::Bound(current)) = self.lookup(&root.to_string()).cloned() else {
            return;
        };
        fn replace(operand: &mut Operand, names: &[Ident], value: Operand) -> Result<(), bool> {
            let Some((first, rest)) = names.split_first() else {
                if operand.same_shape(&value) {
                    *operand = value;
                    return Ok(());
                }
                return Err(true);
            };
            let Operand::Struct(_, fields) = operand else {
                return Err(true);
            };
            match fields.iter_mut().find(|(n, _)| n == first) {
                Some((_, field)) => replace(field, rest, value),
                None => Err(false),
            }
        }
        let mut updated = current;
        match replace(&mut updated, &names, value) {
            Ok(()) => {
                self.assign(&root, Slot::Bound(updated));
            }
            Err(true) => self.errors.push_spanned(
                place,
                "assign a single value to a field of a struct built in the function (`s.x = e`), as its struct expression gave it",
            ),
            // rustc reports the unknown field itself
            Err(false) => self.errors.fail_silently(),
        }
    }

    /// For the name of an `iter_mut()` loop's item: the array it is an element of, and its
    /// index.
    pub(super) fn element_item(&self, e: &Expr) -> Option<(Ident, Value)> {
        let name = local_ident(strip_parens(e))?;
        match self.lookup(&name.to_string()) {
            Some(Slot::Element { array, index }) => Some((array.clone(), *index)),
            _ => None,
        }
    }

    /// Whether `array` is a parameter whose elements are vectors, matrices or tensors (a
    /// batch of samples, `&[Vec<f64>]`), which are borrowed rather than copied.
    pub(super) fn has_container_elements(&self, array: Value) -> bool {
        let crate::ir::ValueDef::Param(i) = self.func.value(array).def else {
            return false;
        };
        crate::args::array_type(&self.func.params[i].ty).is_some_and(|(_, elem)| {
            crate::args::array_type(&elem)
                .is_some_and(|(kind, _)| !matches!(kind, crate::args::ArrayKind::Fixed(_)))
        })
    }

    /// `xs[i]` of a parameter with container elements, written where it is used (a `Place`)
    /// rather than bound to a variable, which would move the `Vec` out of the slice.
    pub(super) fn container_element(&mut self, array: Value, index: Value, span: Span) -> Value {
        self.emit1(
            Opcode::Place(vec![crate::ir::PlaceStep::Index(1)]),
            vec![array, index],
            span,
        )
    }

    /// Element `index` of `array`; an element of a place (`p.layers`) is a longer place, so
    /// that `for layer in &p.layers { .. layer.w .. }` reads (and differentiates) `p.layers[i].w`.
    pub(super) fn element(&mut self, array: Value, index: Value, span: Span) -> Value {
        if let Some(value) = self.just_written(array, index) {
            return value;
        }
        if let Some(inst) = self.func.def_inst(array) {
            if let Opcode::Place(steps) = &self.func.inst(inst).opcode {
                let mut steps = steps.clone();
                let mut args = self.func.inst(inst).args.clone();
                steps.push(crate::ir::PlaceStep::Index(args.len()));
                args.push(index);
                return self.emit1(Opcode::Place(steps), args, span);
            }
        }
        self.emit1(Opcode::Index, vec![array, index], span)
    }

    /// Reading back the element just written (`v[i] = e; ... v[i]`) is `e`: `Some(e)` when
    /// `array` is the result of writing at `index`.
    pub(super) fn just_written(&self, array: Value, index: Value) -> Option<Value> {
        let data = self.func.inst(self.func.def_inst(array)?);
        match (&data.opcode, &data.args[..]) {
            (Opcode::IndexSet, [_, written, value])
                if *written == index || self.same_constant(*written, index) =>
            {
                Some(*value)
            }
            _ => None,
        }
    }

    /// Whether `a` and `b` are constants written the same way (`v[1] = e; v[1]`).
    pub(super) fn same_constant(&self, a: Value, b: Value) -> bool {
        let text = |v: Value| match self.func.def_inst(v).map(|i| &self.func.inst(i).opcode) {
            Some(Opcode::Const(tokens)) => Some(crate::ir::tokens_text(tokens)),
            _ => None,
        };
        text(a).is_some_and(|a| Some(a) == text(b))
    }

    /// `State { x: a, v: b }`: its fields' values by name (evaluated in the order written).
    pub(super) fn lower_struct(&mut self, st: &syn::ExprStruct) -> Option<Operand> {
        if let Some(rest) = &st.rest {
            self.errors.push_spanned(
                rest,
                "struct update syntax (`..base`) is not supported in #[differentiate] functions; list every field",
            );
            return None;
        }
        if st.qself.is_some() {
            self.errors.push_spanned(
                &st.path,
                "a struct expression with a qualified path (`<T as Trait>::S { .. }`) is not supported; name the struct",
            );
            return None;
        }
        let mut fields = Vec::new();
        for field in &st.fields {
            let syn::Member::Named(name) = &field.member else {
                self.errors.push_spanned(
                    &field.member,
                    "fields are built by name here (`S { x: a }`); build a tuple struct with a call, `S(a, b)`, outside the differentiated function",
                );
                return None;
            };
            let value = match self.lower_expr(&field.expr)? {
                Operand::Unit => {
                    self.errors.fail_silently();
                    return None;
                }
                value => value,
            };
            fields.push((name.clone(), value));
        }
        fields.sort_by_key(|(name, _)| name.to_string());
        Some(Operand::Struct(st.path.clone(), fields))
    }

    /// `s.x.y` of a struct built in the function: the field's operand, then any element
    /// reads that follow (`s.w[i]`).
    pub(super) fn struct_field(
        &mut self,
        e: &Expr,
        root: Operand,
        steps: &[crate::ir::PlaceStep],
        indices: &[&Expr],
    ) -> Option<Operand> {
        let mut operand = root;
        let mut indices = indices.iter();
        for step in steps {
            match (step, operand) {
                (
                    crate::ir::PlaceStep::Field(syn::Member::Named(name)),
                    Operand::Struct(_, fields),
                ) => {
                    let Some((_, field)) = fields.into_iter().find(|(n, _)| n == name) else {
                        // rustc reports the unknown field itself
                        self.errors.fail_silently();
                        return None;
                    };
                    operand = field;
                }
                (crate::ir::PlaceStep::Index(_), Operand::Value(array)) => {
                    let index_expr = indices.next()?;
                    let index = self.lower_single(index_expr)?;
                    operand = Operand::Value(self.element(array, index, e.span()));
                }
                _ => {
                    self.errors.push_spanned(
                        e,
                        "of a struct built in the function, read a field by name (`s.x`) or an element of a field (`s.w[i]`)",
                    );
                    return None;
                }
            }
        }
        Some(operand)
    }

    /// `p.c1.w`, `p.layers[i].b`: a path into a parameter, as one `Place` instruction.
    pub(super) fn lower_place(&mut self, e: &Expr) -> Option<Operand> {
        let mut steps = Vec::new();
        let mut indices = Vec::new();
        let mut cursor = e;
        loop {
            match cursor {
                Expr::Field(f) => {
                    steps.push(crate::ir::PlaceStep::Field(f.member.clone()));
                    cursor = &f.base;
                }
                Expr::Index(i) => {
                    indices.push(&*i.index);
                    steps.push(crate::ir::PlaceStep::Index(0));
                    cursor = &i.expr;
                }
                Expr::Paren(p) => cursor = &p.expr,
                _ => break,
            }
        }
        let Some(root_name) = local_ident(cursor) else {
            self.errors.push_spanned(
                cursor,
                "field access is supported on parameters and local variables (`p.layer.w`); bind this value to a variable first",
            );
            return None;
        };
        let root = match self.lookup(&root_name.to_string()) {
            Some(Slot::Bound(Operand::Value(v))) => *v,
            Some(Slot::Bound(built @ Operand::Struct(..))) => {
                let built = built.clone();
                steps.reverse();
                indices.reverse();
                return self.struct_field(e, built, &steps, &indices);
            }
            Some(Slot::Bound(Operand::Tuple(items))) => {
                // `t.0` on a tuple variable is its element
                if let (Expr::Field(f), 1) = (e, steps.len()) {
                    if let syn::Member::Unnamed(index) = &f.member {
                        if let Some(item) = items.get(index.index as usize) {
                            return Some(item.clone());
                        }
                    }
                }
                self.errors
                    .push_spanned(e, "take tuples apart with `let (a, b) = t;`");
                return None;
            }
            Some(Slot::Poisoned) => return None,
            Some(_) | None => {
                self.errors.fail_silently();
                return None;
            }
        };
        steps.reverse();
        indices.reverse();
        // a path from a value that is itself a place (a loop's `layer`) extends that place
        let (root, mut prefix_steps, prefix_args) =
            match self.func.def_inst(root).map(|i| self.func.inst(i)) {
                Some(data) if matches!(data.opcode, Opcode::Place(_)) => {
                    let Opcode::Place(prefix) = &data.opcode else {
                        unreachable!("checked")
                    };
                    (data.args[0], prefix.clone(), data.args[1..].to_vec())
                }
                _ => (root, Vec::new(), Vec::new()),
            };
        let mut args = vec![root];
        args.extend(prefix_args);
        let mut next_index = args.len();
        for step in &mut steps {
            if let crate::ir::PlaceStep::Index(slot) = step {
                *slot = next_index;
                next_index += 1;
            }
        }
        for index in indices {
            args.push(self.lower_single(index)?);
        }
        prefix_steps.extend(steps);
        Some(Operand::Value(self.emit1(
            Opcode::Place(prefix_steps),
            args,
            e.span(),
        )))
    }

    /// `value.step` as one `Place`: a value that is itself a place (`stencil[k].1` when
    /// taking `stencil[k]` apart) is extended, as [`Self::lower_place`] extends one.
    pub(super) fn extended_place(
        &mut self,
        value: Value,
        step: crate::ir::PlaceStep,
        span: Span,
    ) -> Value {
        let (steps, args) = match self.func.def_inst(value).map(|i| self.func.inst(i)) {
            Some(data) if matches!(data.opcode, Opcode::Place(_)) => {
                let Opcode::Place(prefix) = &data.opcode else {
                    unreachable!("checked")
                };
                let mut steps = prefix.clone();
                steps.push(step);
                (steps, data.args.clone())
            }
            _ => (vec![step], vec![value]),
        };
        self.emit1(Opcode::Place(steps), args, span)
    }
}
