//! Control flow: statement sequences and what follows a divergence, `return`, `break` and
//! `continue`, blocks, and the structured branches (`if`, `match` with guards).

use super::*;

impl<'e> Lowerer<'e> {
    /// Lowers items until control leaves the sequence: in a function, returns the returned
    /// values; in a loop body, the values the iteration yields (keep-going flag, carried).
    pub(super) fn lower_seq(
        &mut self,
        items: &[Item],
        end_span: Span,
        ctx: Ctx,
    ) -> Option<Vec<Value>> {
        for (i, item) in items.iter().enumerate() {
            if self.too_large {
                return None;
            }
            if let Some(diverged) = self.diverged.take() {
                return self.after_divergence(diverged, end_span, ctx);
            }
            let rest = &items[i + 1..];
            match *item {
                Item::ScopeEnd(len) => self.env.truncate(len),
                Item::Tail(e) if ctx == Ctx::Function => {
                    if jumps(e, ctx) {
                        return self.lower_jump(e, rest, end_span, ctx);
                    }
                    let value = if self.output_arity > 1 && self.struct_output.is_none() {
                        self.lower_expr_expecting(e, self.output_arity)?
                    } else {
                        self.lower_expr(e)?
                    };
                    if let Some(diverged) = self.diverged.take() {
                        return self.after_divergence(diverged, end_span, ctx);
                    }
                    return self.return_values(&value, e.span());
                }
                Item::Tail(e) | Item::StmtExpr(e) | Item::Stmt(Stmt::Expr(e, _))
                    if jumps(e, ctx) =>
                {
                    return self.lower_jump(e, rest, end_span, ctx);
                }
                Item::Tail(e) | Item::StmtExpr(e) => {
                    self.lower_expr(e);
                }
                Item::Stmt(s) => {
                    let let_else = matches!(s, Stmt::Local(l) if l.init.as_ref().is_some_and(|i| i.diverge.is_some()));
                    if stmt_jumps(s, ctx) && !let_else {
                        self.nested_return(s);
                        continue;
                    }
                    self.lower_stmt(s);
                }
            }
        }
        if let Some(diverged) = self.diverged.take() {
            return self.after_divergence(diverged, end_span, ctx);
        }
        match ctx {
            Ctx::Function => {
                self.errors.push(
                    end_span,
                    "the function's value is missing here; end the body with the value to return",
                );
                None
            }
            Ctx::Loop => self.loop_exit(true, end_span),
        }
    }

    /// The values a sequence ended by `panic!` (instruction `diverged`) yields, never
    /// computed: in a function, placeholders of the returned values, which the macro's `!`
    /// type stands for; in a loop body, the next iteration's values as they are.
    pub(super) fn after_divergence(
        &mut self,
        diverged: Inst,
        end_span: Span,
        ctx: Ctx,
    ) -> Option<Vec<Value>> {
        match ctx {
            Ctx::Function => Some(
                (0..self.output_arity)
                    .map(|_| self.func.add_result(diverged))
                    .collect(),
            ),
            Ctx::Loop => self.loop_exit(true, end_span),
        }
    }

    /// Lowers an expression in statement position that contains a `return` (or, in a loop
    /// body, a `break`/`continue`), followed by the rest of the sequence `rest` on every
    /// path that falls through.
    pub(super) fn lower_jump(
        &mut self,
        e: &Expr,
        rest: &[Item],
        end_span: Span,
        ctx: Ctx,
    ) -> Option<Vec<Value>> {
        match e {
            Expr::Return(r) => match &r.expr {
                Some(value) => {
                    if jumps(value, ctx) {
                        self.nested_return(&**value);
                        return None;
                    }
                    let value = if self.output_arity > 1 && self.struct_output.is_none() {
                        self.lower_expr_expecting(value, self.output_arity)?
                    } else {
                        self.lower_expr(value)?
                    };
                    let values = self.return_values(&value, r.span())?;
                    self.perform_return(values, r.span(), ctx)
                }
                None => {
                    // rustc reports the missing value itself
                    self.errors.fail_silently();
                    None
                }
            },
            Expr::Break(b) => {
                if let Some(label) = &b.label {
                    self.errors.push_spanned(label, "labeled `break` is not supported; set a flag and test it after the inner loop");
                    return None;
                }
                if self.loops.is_empty() {
                    self.errors.fail_silently();
                    return None;
                }
                if let Some(value) = &b.expr {
                    let value = self.lower_single(value)?;
                    if !self.set_hidden("#break", Operand::Value(value)) {
                        self.errors
                            .push_spanned(b, "`break` with a value is supported in `loop` only");
                        return None;
                    }
                }
                self.loop_exit(false, b.span())
            }
            Expr::Continue(c) => {
                if let Some(label) = &c.label {
                    self.errors.push_spanned(label, "labeled `continue` is not supported; set a flag and test it after the inner loop");
                    return None;
                }
                if self.loops.is_empty() {
                    self.errors.fail_silently();
                    return None;
                }
                self.loop_exit(true, c.span())
            }
            Expr::Paren(p) => self.lower_jump(&p.expr, rest, end_span, ctx),
            Expr::Block(b) if b.label.is_none() => {
                let mut items = block_items(&b.block, Some(self.env.len()));
                // the block's trailing expression is a statement here: its value is discarded
                statement_tail(&mut items);
                items.extend_from_slice(rest);
                self.lower_seq(&items, end_span, ctx)
            }
            Expr::If(expr_if) => {
                let cond = self.lower_condition(&expr_if.cond)?;
                let env_len = self.env.len();
                let mut then_items = block_items(&expr_if.then_branch, Some(env_len));
                statement_tail(&mut then_items);
                then_items.extend_from_slice(rest);
                let mut else_items = Vec::new();
                if let Some((_, else_expr)) = &expr_if.else_branch {
                    else_items.push(Item::StmtExpr(else_expr));
                }
                else_items.extend_from_slice(rest);
                let arms = vec![
                    (None, ArmSeq::Items(then_items)),
                    (None, ArmSeq::Items(else_items)),
                ];
                self.jumping_arms(Opcode::If, cond, arms, e.span(), end_span, ctx)
            }
            Expr::Match(m) => {
                let scrutinee = self.lower_single(&m.expr)?;
                let mut binders = Vec::new();
                for arm in &m.arms {
                    binders.push(self.check_arm(arm)?);
                }
                // with guards: a match on the position of the arm taken
                let (selector, pats) = match self.guarded_arm_position(m, scrutinee, &binders)? {
                    Some(position) => (position, arm_positions(m.arms.len())),
                    None => (scrutinee, m.arms.iter().map(|a| a.pat.clone()).collect()),
                };
                let mut arms = Vec::new();
                for (arm, binder) in m.arms.iter().zip(binders) {
                    let mut items = vec![Item::StmtExpr(&arm.body)];
                    items.extend_from_slice(rest);
                    arms.push((binder.map(|b| (b, scrutinee)), ArmSeq::Items(items)));
                }
                self.jumping_arms(Opcode::Match(pats), selector, arms, e.span(), end_span, ctx)
            }
            Expr::ForLoop(_) | Expr::While(_) | Expr::Loop(_) => {
                // only a `return` leaves through a nested loop; test its flag after the loop
                let outcome = self.lower_loop_expr(e)?;
                let Some((returned, values)) = outcome.returned else {
                    self.nested_return(e);
                    return None;
                };
                let arms = vec![
                    (None, ArmSeq::Return(values)),
                    (None, ArmSeq::Items(rest.to_vec())),
                ];
                self.jumping_arms(Opcode::If, returned, arms, e.span(), end_span, ctx)
            }
            other => {
                self.nested_return(other);
                None
            }
        }
    }

    /// The arms of an `if`/`match` through which control leaves the sequence.
    pub(super) fn jumping_arms(
        &mut self,
        opcode: Opcode,
        selector: Value,
        arms_seqs: Vec<(Option<(Ident, Value)>, ArmSeq)>,
        span: Span,
        end_span: Span,
        ctx: Ctx,
    ) -> Option<Vec<Value>> {
        let outer_block = self.block;
        let snapshot = self.env.clone();
        let mut arms = Vec::new();
        let mut ok = true;
        let mut count = None;
        for (binder, seq) in &arms_seqs {
            let arm_block = self.func.create_block();
            self.block = arm_block;
            let env_len = self.env.len();
            if let Some((binder, bound)) = binder {
                self.declare(binder, Slot::Bound(Operand::Value(*bound)));
            }
            let yields = match seq {
                ArmSeq::Items(items) => {
                    let mut items = items.clone();
                    if binder.is_some() {
                        items.insert(1, Item::ScopeEnd(env_len));
                    }
                    self.lower_seq(&items, end_span, ctx)
                }
                ArmSeq::Return(values) => self.perform_return(values.clone(), span, ctx),
                ArmSeq::Exit => self.loop_exit(false, span),
            };
            match yields {
                Some(values) => {
                    count = Some(values.len());
                    self.func.blocks[arm_block.index()].yields = values;
                }
                None => ok = false,
            }
            self.env = snapshot.clone();
            arms.push(arm_block);
        }
        self.block = outer_block;
        if !ok {
            return None;
        }
        let inst = self
            .func
            .append(outer_block, opcode, vec![selector], arms, count?, span);
        Some(self.func.inst(inst).results.clone())
    }

    /// `return values`: the function's value, or from inside a loop, the loop's hidden
    /// return slots and an exit.
    pub(super) fn perform_return(
        &mut self,
        values: Vec<Value>,
        span: Span,
        ctx: Ctx,
    ) -> Option<Vec<Value>> {
        match ctx {
            Ctx::Function => Some(values),
            Ctx::Loop => {
                let yes = self.constant(quote!(true), span);
                self.set_hidden("#returned", Operand::Value(yes));
                for (k, v) in values.into_iter().enumerate() {
                    self.set_hidden(&format!("#ret{k}"), Operand::Value(v));
                }
                self.loop_exit(false, span)
            }
        }
    }

    /// Assigns a hidden loop slot (`#break`, `#returned`, `#ret0`, `#acc`); false if absent.
    pub(super) fn set_hidden(&mut self, name: &str, value: Operand) -> bool {
        match self.env.iter_mut().rev().find(|b| b.name == name) {
            Some(binding) => {
                binding.slot = Slot::Bound(value);
                true
            }
            None => false,
        }
    }

    /// The values a loop body yields when an iteration ends: the keep-going flag (when the
    /// loop has one) and the current values of the carried variables.
    pub(super) fn loop_exit(&mut self, keep_going: bool, span: Span) -> Option<Vec<Value>> {
        let frame = self.loops.last()?.clone();
        let mut yields = Vec::new();
        if frame.flag {
            yields.push(self.constant(
                if keep_going {
                    quote!(true)
                } else {
                    quote!(false)
                },
                span,
            ));
        }
        for (&index, shape) in frame.carried.iter().zip(&frame.shapes) {
            match &self.env[index].slot {
                Slot::Bound(op) if op.same_shape(shape) => yields.extend(op.values()),
                Slot::Bound(_) => {
                    self.errors.push(span, format!("`{}` changes shape inside the loop; keep it a single value or a tuple of the same length", self.env[index].name));
                    return None;
                }
                Slot::Uninit | Slot::Poisoned | Slot::Closure(_) | Slot::Element { .. } => {
                    return None
                }
            }
        }
        Some(yields)
    }

    /// Reports a `return` the continuation lowering cannot place, at the `return` itself.
    pub(super) fn nested_return(&mut self, node: &dyn ToTokens) {
        struct First(Option<Expr>);
        impl<'ast> Visit<'ast> for First {
            fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
                if self.0.is_none() {
                    self.0 = Some(Expr::Return(r.clone()));
                }
            }
            fn visit_expr_break(&mut self, b: &'ast syn::ExprBreak) {
                if self.0.is_none() {
                    self.0 = Some(Expr::Break(b.clone()));
                }
            }
            fn visit_expr_continue(&mut self, c: &'ast syn::ExprContinue) {
                if self.0.is_none() {
                    self.0 = Some(Expr::Continue(c.clone()));
                }
            }
            fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
            fn visit_item(&mut self, _: &'ast syn::Item) {}
        }
        let mut first = First(None);
        if let Ok(stmt) = syn::parse2::<Stmt>(node.to_token_stream()) {
            first.visit_stmt(&stmt);
        } else if let Ok(expr) = syn::parse2::<Expr>(node.to_token_stream()) {
            first.visit_expr(&expr);
        }
        let message = "`return`, `break` and `continue` are supported as statements, or inside `if`/`match` arms in statement position, not inside an expression; assign the value to a variable and leave from there";
        match first.0 {
            Some(r) => self.errors.push_spanned(&r, message),
            None => self.errors.push_spanned(node, message),
        }
    }

    /// Whether `v` is a parameter, or a copy or borrow of one.
    pub(super) fn is_parameter_or_copy(&self, v: Value) -> bool {
        let mut v = v;
        loop {
            if matches!(self.func.value(v).def, crate::ir::ValueDef::Param(_)) {
                return true;
            }
            match self.func.def_inst(v).map(|i| self.func.inst(i)) {
                Some(data)
                    if matches!(data.opcode, Opcode::Copy(_) | Opcode::Ref | Opcode::Deref) =>
                {
                    v = data.args[0];
                }
                _ => return false,
            }
        }
    }

    pub(super) fn return_values(&mut self, value: &Operand, span: Span) -> Option<Vec<Value>> {
        if let Some(output) = &self.struct_output {
            let fields = &output.fields;
            if fields.is_empty() {
                // no struct expression builds it: one value of its type, returned whole
                return match value {
                    Operand::Value(v) if self.is_parameter_or_copy(*v) => {
                        let path = crate::ir::tokens_text(&output.path.to_token_stream());
                        self.errors.push(
                            span,
                            format!(
                                "a parameter (or a copy of one) is returned as a struct built here: list its fields, `{path} {{ x: s.x, .. }}`"
                            ),
                        );
                        None
                    }
                    Operand::Value(v) => {
                        self.annotations.insert(*v, output.ty.clone());
                        Some(vec![*v])
                    }
                    // rustc reports the type mismatch itself
                    _ => {
                        self.errors.fail_silently();
                        None
                    }
                };
            }
            return match value {
                Operand::Struct(_, built)
                    if built.iter().map(|(name, _)| name).eq(fields.iter())
                        && built.iter().all(|(_, f)| matches!(f, Operand::Value(_))) =>
                {
                    Some(value.values())
                }
                Operand::Struct(_, built)
                    if built.iter().map(|(name, _)| name).eq(fields.iter()) =>
                {
                    self.errors.push(
                        span,
                        "each field of the returned struct must be a single value, not a tuple or a struct; return the nested value from a function of its own or flatten it into fields",
                    );
                    None
                }
                // another struct: rustc reports the type mismatch itself
                Operand::Struct(..) => {
                    self.errors.fail_silently();
                    None
                }
                _ => {
                    let names: Vec<String> = fields.iter().map(|f| format!("{f}: ..")).collect();
                    let rebuilt: Vec<String> =
                        fields.iter().map(|f| format!("{f}: s.{f}")).collect();
                    let path = crate::ir::tokens_text(&output.path.to_token_stream());
                    self.errors.push(
                        span,
                        format!(
                            "return a struct built in this function, `{path} {{ {} }}` or a variable bound to one; a struct from elsewhere cannot be returned as it is: rebuild one a #[differentiate] function returned from its fields, `let s: {path} = f(..); {path} {{ {} }}`",
                            names.join(", "),
                            rebuilt.join(", ")
                        ),
                    );
                    None
                }
            };
        }
        let values = value.values();
        let shape_ok = match value {
            Operand::Value(_) => self.output_arity == 1,
            Operand::Tuple(_) => values.len() == self.output_arity && self.output_arity > 1,
            Operand::Struct(..) | Operand::Unit => false,
        };
        if !shape_ok {
            if self.output_arity > 1 && matches!(value, Operand::Value(_)) {
                self.errors.push(
                    span,
                    "return a tuple expression `(a, b, ...)` with one float per element of the return type, or destructure the value first: `let (a, b) = ...;`",
                );
            } else {
                // a value of the wrong shape: rustc reports the type mismatch itself
                self.errors.fail_silently();
            }
            return None;
        }
        Some(values)
    }

    pub(super) fn lower_block(&mut self, block: &syn::Block) -> Option<Operand> {
        let env_len = self.env.len();
        let mut value = Some(Operand::Unit);
        for (i, stmt) in block.stmts.iter().enumerate() {
            if self.diverged.is_some() {
                // after a `panic!`: unreachable, as rustc warns
                break;
            }
            if stmt_jumps(stmt, Ctx::Loop) {
                self.nested_return(stmt);
                value = None;
                continue;
            }
            match stmt {
                Stmt::Expr(e, None) if i + 1 == block.stmts.len() => value = self.lower_expr(e),
                _ => self.lower_stmt(stmt),
            }
        }
        self.env.truncate(env_len);
        value
    }

    /// Lowers the arms of an `if`/`match` whose arms fall through, merging the variables
    /// they assign into results of the instruction.
    pub(super) fn structured(
        &mut self,
        opcode: Opcode,
        selector: Value,
        arms: Vec<Arm<'_, 'e>>,
        span: Span,
    ) -> Option<Operand> {
        let outer = self.block;
        let snapshot = self.env.clone();
        let mut lowered: Vec<(Block, Option<Operand>, Vec<Binding>)> = Vec::new();
        // per arm: the `panic!` that ends it, whose arm neither yields a value nor assigns
        let mut diverged: Vec<Option<Inst>> = Vec::new();
        for (binder, arm) in arms {
            let block = self.func.create_block();
            self.block = block;
            let env_len = self.env.len();
            if let Some(binder) = &binder {
                self.declare(binder, Slot::Bound(Operand::Value(selector)));
            }
            let value = arm(self);
            diverged.push(self.diverged.take());
            self.env.truncate(env_len);
            lowered.push((
                block,
                value,
                std::mem::replace(&mut self.env, snapshot.clone()),
            ));
        }
        self.block = outer;
        let all_values: Vec<Operand> = lowered
            .iter()
            .map(|(_, v, _)| v.clone())
            .collect::<Option<_>>()?;
        if lowered.is_empty() {
            // a `match` without arms: rustc checks it on the user's function
            self.errors.fail_silently();
            return None;
        }
        if diverged.iter().all(Option::is_some) {
            // no arm comes back: neither does the branch
            let blocks = lowered.iter().map(|(block, _, _)| *block).collect();
            self.func
                .append(outer, opcode, vec![selector], blocks, 0, span);
            let unreachable = crate::ir::AssertMacro {
                path: syn::parse_quote!(::core::unreachable),
                checked: 0,
                message: None,
                names: Vec::new(),
                diverges: true,
            };
            self.emit(Opcode::Assert(unreachable), Vec::new(), 0, span);
            self.diverged = self.func.block(outer).insts.last().copied();
            return Some(Operand::Unit);
        }
        let values: Vec<&Operand> = all_values
            .iter()
            .zip(&diverged)
            .filter(|(_, d)| d.is_none())
            .map(|(v, _)| v)
            .collect();
        let shape = values[0].clone();
        if !values.iter().all(|v| v.same_shape(&shape)) {
            self.errors.push(span, "the arms evaluate to values of different shapes; make every arm yield the same kind of value");
            return None;
        }
        // variables whose value differs between arms become results
        let mut merged: Vec<(usize, Operand)> = Vec::new();
        let mut final_env = snapshot.clone();
        for (index, before) in snapshot.iter().enumerate() {
            let slots: Vec<&Slot> = lowered
                .iter()
                .zip(&diverged)
                .filter(|(_, d)| d.is_none())
                .map(|((_, _, env), _)| &env[index].slot)
                .collect();
            if slots.iter().all(|s| **s == before.slot) {
                continue;
            }
            if slots.iter().any(|s| matches!(s, Slot::Poisoned)) {
                final_env[index].slot = Slot::Poisoned;
                continue;
            }
            let operands: Option<Vec<&Operand>> = slots
                .iter()
                .map(|s| match s {
                    Slot::Bound(op) => Some(op),
                    _ => None,
                })
                .collect();
            match operands {
                Some(ops) if ops.iter().all(|o| o.same_shape(ops[0])) => {
                    merged.push((index, ops[0].clone()))
                }
                Some(_) => {
                    self.errors.push(
                        span,
                        format!(
                            "`{}` is given a tuple in one arm and a single value in another; give it values of the same shape in every arm",
                            before.name
                        ),
                    );
                    final_env[index].slot = Slot::Poisoned;
                }
                None => final_env[index].slot = Slot::Uninit,
            }
        }
        let mut arm_blocks = Vec::new();
        let mut count = 0;
        for ((block, value, env), diverged) in lowered.iter().zip(&diverged) {
            if diverged.is_none() {
                let mut yields = value.as_ref().expect("checked").values();
                for (index, _) in &merged {
                    if let Slot::Bound(op) = &env[*index].slot {
                        yields.extend(op.values());
                    }
                }
                count = yields.len();
                self.func.blocks[block.index()].yields = yields;
            }
            arm_blocks.push(*block);
        }
        // an arm ended by `panic!` yields the macro's results: `!` stands for any value
        for (block, diverged) in arm_blocks.iter().zip(&diverged) {
            if let Some(diverged) = diverged {
                let yields = (0..count)
                    .map(|_| self.func.add_result(*diverged))
                    .collect();
                self.func.blocks[block.index()].yields = yields;
            }
        }
        let inst = self
            .func
            .append(outer, opcode, vec![selector], arm_blocks, count, span);
        let results = self.func.inst(inst).results.clone();
        let mut results = results.into_iter();
        let value = shape.rebuild(&mut results);
        for (index, shape) in &merged {
            final_env[*index].slot = Slot::Bound(shape.rebuild(&mut results));
        }
        for (index, binding) in final_env.iter().enumerate() {
            if let Slot::Bound(Operand::Value(v)) = &binding.slot {
                if merged.iter().any(|(i, _)| *i == index) {
                    self.name_value_str(*v, &binding.name);
                }
            }
        }
        self.env = final_env;
        Some(value)
    }

    pub(super) fn lower_if(&mut self, e: &syn::ExprIf) -> Option<Operand> {
        let cond = self.lower_condition(&e.cond)?;
        let then_arm = |this: &mut Self| this.lower_block(&e.then_branch);
        let else_arm = |this: &mut Self| match &e.else_branch {
            Some((_, else_expr)) => this.lower_expr(else_expr),
            None => Some(Operand::Unit),
        };
        self.structured(
            Opcode::If,
            cond,
            vec![(None, &then_arm), (None, &else_arm)],
            e.span(),
        )
    }

    /// Checks a match arm; returns the name the scrutinee is bound to, if any.
    pub(super) fn check_arm(&mut self, arm: &syn::Arm) -> Option<Option<Ident>> {
        match &arm.pat {
            Pat::Ident(p) if p.subpat.is_none() && !starts_uppercase(&p.ident) => {
                Some(Some(p.ident.clone()))
            }
            Pat::Ident(p) if p.subpat.is_some() => {
                let (_, sub) = p.subpat.as_ref().expect("checked");
                self.check_pattern_has_no_bindings(sub)?;
                Some(Some(p.ident.clone()))
            }
            other => {
                self.check_pattern_has_no_bindings(other)?;
                Some(None)
            }
        }
    }

    pub(super) fn check_pattern_has_no_bindings(&mut self, pat: &Pat) -> Option<()> {
        struct Finder(Option<Ident>);
        impl<'ast> Visit<'ast> for Finder {
            fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
                if !starts_uppercase(&p.ident) && self.0.is_none() {
                    self.0 = Some(p.ident.clone());
                }
            }
        }
        let mut finder = Finder(None);
        finder.visit_pat(pat);
        match finder.0 {
            Some(ident) => {
                self.errors.push_spanned(
                    &ident,
                    format!("binding `{ident}` inside a pattern is not supported; match without binding and compute the value inside the arm"),
                );
                None
            }
            None => Some(()),
        }
    }

    /// For a `match` with guards: the position of the arm it takes, an integer computed
    /// arm by arm as Rust does (the pattern, then the guard, only while no arm before was
    /// taken); `None` for a match without guards.
    pub(super) fn guarded_arm_position(
        &mut self,
        m: &syn::ExprMatch,
        scrutinee: Value,
        binders: &[Option<Ident>],
    ) -> Option<Option<Value>> {
        if m.arms.iter().all(|arm| arm.guard.is_none()) {
            return Some(None);
        }
        let position = self.arm_position_from(m, scrutinee, binders, 0)?;
        match position {
            Operand::Value(v) => Some(Some(v)),
            _ => None,
        }
    }

    /// The position of the arm taken among arms `k..` (the last one when no other is: the
    /// match is exhaustive without its guards, which rustc checks).
    pub(super) fn arm_position_from(
        &mut self,
        m: &syn::ExprMatch,
        scrutinee: Value,
        binders: &[Option<Ident>],
        k: usize,
    ) -> Option<Operand> {
        let span = m.arms[k].pat.span();
        let here = |this: &mut Self| -> Option<Operand> {
            let k = proc_macro2::Literal::usize_suffixed(k);
            Some(Operand::Value(this.constant(quote!(#k), span)))
        };
        if k + 1 == m.arms.len() {
            return here(self);
        }
        let arm = &m.arms[k];
        // the pattern alone: a binding `n` and `_` match anything, `n @ p` what `p` matches,
        // a constant `N` (no binding) what equals it
        let pattern = match &arm.pat {
            Pat::Wild(_) => None,
            Pat::Ident(p) if p.subpat.is_some() => {
                p.subpat.as_ref().map(|(_, sub)| (**sub).clone())
            }
            Pat::Ident(_) if binders[k].is_some() => None,
            other => Some(other.clone()),
        };
        let matched = match pattern {
            Some(pat) => {
                let wild = Pat::Wild(syn::PatWild {
                    attrs: Vec::new(),
                    underscore_token: Default::default(),
                });
                let yes = |this: &mut Self| Some(Operand::Value(this.constant(quote!(true), span)));
                let no = |this: &mut Self| Some(Operand::Value(this.constant(quote!(false), span)));
                match self.structured(
                    Opcode::Match(vec![pat, wild]),
                    scrutinee,
                    vec![(None, &yes), (None, &no)],
                    span,
                )? {
                    Operand::Value(v) => Some(v),
                    _ => return None,
                }
            }
            None => None,
        };
        let guard = |this: &mut Self| -> Option<Operand> {
            let env_len = this.env.len();
            if let Some(binder) = &binders[k] {
                this.declare(binder, Slot::Bound(Operand::Value(scrutinee)));
            }
            let (_, guard) = arm.guard.as_ref()?;
            let taken = this.lower_condition(guard);
            this.env.truncate(env_len);
            Some(Operand::Value(taken?))
        };
        let taken = match (matched, &arm.guard) {
            (None, None) => return here(self),
            (Some(matched), None) => matched,
            (None, Some(_)) => match guard(self)? {
                Operand::Value(v) => v,
                _ => return None,
            },
            (Some(matched), Some(_)) => {
                let no = |this: &mut Self| Some(Operand::Value(this.constant(quote!(false), span)));
                match self.structured(
                    Opcode::If,
                    matched,
                    vec![(None, &guard), (None, &no)],
                    span,
                )? {
                    Operand::Value(v) => v,
                    _ => return None,
                }
            }
        };
        let rest = |this: &mut Self| this.arm_position_from(m, scrutinee, binders, k + 1);
        self.structured(Opcode::If, taken, vec![(None, &here), (None, &rest)], span)
    }

    pub(super) fn lower_match(&mut self, m: &syn::ExprMatch) -> Option<Operand> {
        let scrutinee = self.lower_single(&m.expr)?;
        let mut binders = Vec::new();
        for arm in &m.arms {
            binders.push(self.check_arm(arm)?);
        }
        if let Some(position) = self.guarded_arm_position(m, scrutinee, &binders)? {
            // a match on the position of the arm taken; binders name the scrutinee
            let bodies: Vec<_> = m
                .arms
                .iter()
                .zip(&binders)
                .map(|(arm, binder)| {
                    move |this: &mut Self| {
                        if let Some(binder) = binder {
                            this.declare(binder, Slot::Bound(Operand::Value(scrutinee)));
                        }
                        this.lower_expr(&arm.body)
                    }
                })
                .collect();
            let arms: Vec<Arm<'_, 'e>> = bodies
                .iter()
                .map(|f| (None, f as &dyn Fn(&mut Self) -> Option<Operand>))
                .collect();
            let pats = arm_positions(m.arms.len());
            return self.structured(Opcode::Match(pats), position, arms, m.span());
        }
        let bodies: Vec<_> = m
            .arms
            .iter()
            .map(|arm| move |this: &mut Self| this.lower_expr(&arm.body))
            .collect();
        let arms: Vec<Arm<'_, 'e>> = binders
            .into_iter()
            .zip(bodies.iter())
            .map(|(b, f)| (b, f as &dyn Fn(&mut Self) -> Option<Operand>))
            .collect();
        let pats = m.arms.iter().map(|a| a.pat.clone()).collect();
        self.structured(Opcode::Match(pats), scrutinee, arms, m.span())
    }
}
