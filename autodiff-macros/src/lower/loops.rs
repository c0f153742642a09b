//! Loops and iterator chains: their sources (ranges, slices, `zip`, `enumerate`, `windows`,
//! filters), item patterns, `for`/`while`/`loop`, slices, and reductions.

use super::*;

impl<'e> Lowerer<'e> {
    /// Parses the source of a `for` loop or iterator chain, lowering bounds and arrays.
    pub(super) fn iteration_source(&mut self, e: &Expr) -> Option<Source> {
        match e {
            Expr::Paren(p) => self.iteration_source(&p.expr),
            Expr::Range(range) => {
                let (Some(start), Some(end)) = (&range.start, &range.end) else {
                    self.errors.push_spanned(
                        range,
                        "loop over a range with both bounds, like `a..b` or `a..=b`",
                    );
                    return None;
                };
                let start = self.lower_single(start)?;
                let end = self.lower_single(end)?;
                let inclusive = matches!(range.limits, syn::RangeLimits::Closed(_));
                Some(Source::Range {
                    start,
                    end,
                    step: None,
                    inclusive,
                    reverse: false,
                })
            }
            Expr::Reference(r) if r.mutability.is_none() => self.iteration_source_array(&r.expr),
            Expr::Reference(r) => self.iteration_source_mutable(&r.expr),
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                match (name.as_str(), m.args.len()) {
                    ("copied" | "cloned", 0) => self.iteration_source(&m.receiver),
                    ("iter" | "into_iter", 0) => self.iteration_source_array(&m.receiver),
                    ("iter_mut", 0) => self.iteration_source_mutable(&m.receiver),
                    ("rev", 0) => match self.iteration_source(&m.receiver)? {
                        Source::Range {
                            start,
                            end,
                            step: None,
                            inclusive,
                            reverse: false,
                        } => Some(Source::Range {
                            start,
                            end,
                            step: None,
                            inclusive,
                            reverse: true,
                        }),
                        // `.iter().enumerate().rev()`: the same pairs, last first
                        Source::Arrays {
                            arrays,
                            enumerate,
                            reverse: false,
                            from_end: None,
                        } => Some(Source::Arrays {
                            arrays,
                            enumerate,
                            reverse: true,
                            from_end: None,
                        }),
                        _ => self.unsupported_chain(
                            m,
                            "`.rev()` directly on a range, on `.iter()` or on `.iter().enumerate()`",
                        ),
                    },
                    ("step_by", 1) => match self.iteration_source(&m.receiver)? {
                        Source::Range {
                            start,
                            end,
                            step: None,
                            inclusive,
                            reverse,
                        } => {
                            let step = self.lower_single(&m.args[0])?;
                            Some(Source::Range {
                                start,
                                end,
                                step: Some(step),
                                inclusive,
                                reverse,
                            })
                        }
                        _ => self.unsupported_chain(m, "`.step_by(k)` on a range"),
                    },
                    // `x.iter().skip(k)`, `x.iter().take(k)`: the elements of `x[k.min(n)..]`,
                    // `x[..k.min(n)]` (a `k` past the end gives no elements, as the adaptors do)
                    ("skip" | "take", 1) => match self.iteration_source(&m.receiver)? {
                        Source::Arrays {
                            arrays,
                            enumerate: false,
                            reverse: false,
                            from_end: None,
                        } if arrays.len() == 1 => {
                            let span = m.span();
                            let array = arrays[0];
                            let count = self.lower_single(&m.args[0])?;
                            let len = self.emit1(Opcode::Len, vec![array], span);
                            let min = primitives::method("min", 2)?;
                            let bound = self.emit1(Opcode::Primitive(min), vec![count, len], span);
                            let (start, end) = if name == "skip" {
                                (bound, len)
                            } else {
                                (self.constant(quote!(0usize), span), bound)
                            };
                            let slice = self.emit1(Opcode::Slice, vec![array, start, end], span);
                            Some(Source::Arrays {
                                arrays: vec![slice],
                                enumerate: false,
                                reverse: false,
                                from_end: None,
                            })
                        }
                        // `x.chunks(s).skip(k)` is `x[(k s).min(n)..].chunks(s)`, `.take(k)` is
                        // `x[..(k s).min(n)].chunks(s)`; for windows `k` and `k + s - 1`
                        Source::Chunks {
                            array,
                            size,
                            len,
                            kind,
                            enumerate: false,
                        } => {
                            let span = m.span();
                            let count = self.lower_single(&m.args[0])?;
                            let min = primitives::method("min", 2)?;
                            // no overflow below for a count past the end (`take(usize::MAX)`)
                            let count =
                                self.emit1(Opcode::Primitive(min), vec![count, len], span);
                            let elements = match (kind, name == "skip") {
                                (ChunkKind::Windows, true) => count,
                                (ChunkKind::Windows, false) => {
                                    let one = self.constant(quote!(1usize), span);
                                    let more = self.emit1(
                                        Opcode::Binary(BinaryOp::Add),
                                        vec![count, size],
                                        span,
                                    );
                                    self.emit1(Opcode::Binary(BinaryOp::Sub), vec![more, one], span)
                                }
                                _ => self.emit1(
                                    Opcode::Binary(BinaryOp::Mul),
                                    vec![count, size],
                                    span,
                                ),
                            };
                            let bound =
                                self.emit1(Opcode::Primitive(min), vec![elements, len], span);
                            let (start, end) = if name == "skip" {
                                (bound, len)
                            } else {
                                (self.constant(quote!(0usize), span), bound)
                            };
                            let slice = self.emit1(Opcode::Slice, vec![array, start, end], span);
                            let len = self.emit1(Opcode::Len, vec![slice], span);
                            Some(Source::Chunks {
                                array: slice,
                                size,
                                len,
                                kind,
                                enumerate: false,
                            })
                        }
                        _ => self.unsupported_chain(
                            m,
                            "`.skip(k)` and `.take(k)` directly on `x.iter()`, `x.chunks(s)` or `x.windows(s)`",
                        ),
                    },
                    ("windows" | "chunks" | "chunks_exact", 1) => {
                        let array = self.lower_single(&m.receiver)?;
                        let size = self.lower_single(&m.args[0])?;
                        let len = self.emit1(Opcode::Len, vec![array], m.span());
                        let kind = match name.as_str() {
                            "windows" => ChunkKind::Windows,
                            "chunks" => ChunkKind::Chunks,
                            _ => ChunkKind::Exact,
                        };
                        Some(Source::Chunks {
                            array,
                            size,
                            len,
                            kind,
                            enumerate: false,
                        })
                    }
                    ("enumerate", 0) => match self.iteration_source(&m.receiver)? {
                        Source::Arrays {
                            arrays,
                            enumerate: false,
                            reverse: false,
                            from_end: None,
                        } => Some(Source::Arrays {
                            arrays,
                            enumerate: true,
                            reverse: false,
                            from_end: None,
                        }),
                        // `.iter().rev().enumerate()`: elements last first, counted from 0
                        Source::Arrays {
                            arrays,
                            enumerate: false,
                            reverse: true,
                            from_end: None,
                        } if arrays.len() == 1 => {
                            let len = self.emit1(Opcode::Len, vec![arrays[0]], m.span());
                            Some(Source::Arrays {
                                arrays,
                                enumerate: true,
                                reverse: true,
                                from_end: Some(len),
                            })
                        }
                        Source::Chunks {
                            array,
                            size,
                            len,
                            kind,
                            enumerate: false,
                        } => Some(Source::Chunks {
                            array,
                            size,
                            len,
                            kind,
                            enumerate: true,
                        }),
                        _ => self.unsupported_chain(m, "`.iter().enumerate()`"),
                    },
                    ("zip", 1) => match self.iteration_source(&m.receiver)? {
                        Source::Arrays {
                            mut arrays,
                            enumerate: false,
                            reverse: false,
                            from_end: None,
                        } if arrays.len() == 1 => match self.iteration_source(&m.args[0])? {
                            Source::Arrays {
                                arrays: other,
                                enumerate: false,
                                reverse: false,
                                from_end: None,
                            } if other.len() == 1 => {
                                arrays.extend(other);
                                Some(Source::Arrays {
                                    arrays,
                                    enumerate: false,
                                    reverse: false,
                                    from_end: None,
                                })
                            }
                            _ => self
                                .unsupported_chain(m, "`.zip(y)` with `y` a slice, `Vec` or array"),
                        },
                        _ => self.unsupported_chain(m, "`x.iter().zip(y)`"),
                    },
                    ("filter", _) => {
                        self.errors.push_spanned(
                            &m.method,
                            "`filter` is supported as the last step of a loop's source (`for v in x.iter().enumerate().filter(..)`) and next to the `map` of a chain ending in `sum`, `product`, `fold` or `collect`, once; test other conditions with `if` in the loop body",
                        );
                        None
                    }
                    _ => self.unsupported_chain(
                        m,
                        "ranges, `x.iter()`, `x.windows(k)`, `x.chunks(k)`, `x.chunks_exact(k)`, `.rev()`, `.step_by(k)`, `.skip(k)`, `.take(k)`, `.enumerate()` and `.zip(y)`",
                    ),
                }
            }
            other => self.iteration_source_array(other),
        }
    }

    /// `v.iter_mut()`, `&mut v` on a local array: its elements, which the items name.
    pub(super) fn iteration_source_mutable(&mut self, e: &Expr) -> Option<Source> {
        let Some(name) = local_ident(strip_parens(e)) else {
            self.errors.push_spanned(
                e,
                "`iter_mut()` works on a local array or `Vec` variable, like `for o in out.iter_mut()`; for part of one, loop over its indices and write `v[i] = ..`",
            );
            return None;
        };
        let array = self.lower_single(e)?;
        self.mutable_sources.insert(array, name);
        Some(Source::Arrays {
            arrays: vec![array],
            enumerate: false,
            reverse: false,
            from_end: None,
        })
    }

    pub(super) fn iteration_source_array(&mut self, e: &Expr) -> Option<Source> {
        let array = self.lower_single(e)?;
        Some(Source::Arrays {
            arrays: vec![array],
            enumerate: false,
            reverse: false,
            from_end: None,
        })
    }

    pub(super) fn unsupported_chain<T>(
        &mut self,
        m: &syn::ExprMethodCall,
        supported: &str,
    ) -> Option<T> {
        self.errors.push_spanned(
            &m.method,
            format!("`{}` is not supported here; loops and iterator chains support {supported}; write a `for` loop over indices instead", m.method),
        );
        None
    }

    /// The loop header of a source: bounds (and step) operands and the range flags.
    pub(super) fn source_header(&mut self, source: &Source, span: Span) -> (Vec<Value>, RangeLoop) {
        match source {
            Source::Chunks {
                size, len, kind, ..
            } => {
                let zero = self.constant(quote!(0usize), span);
                // `len + 1 - k` windows, `⌈len / k⌉` or `⌊len / k⌋` chunks; a zero `k` panics
                // with the slice method's message
                let count = match kind {
                    ChunkKind::Windows => &crate::primitives::CHUNK_COUNTS[0],
                    ChunkKind::Chunks => &crate::primitives::CHUNK_COUNTS[1],
                    ChunkKind::Exact => &crate::primitives::CHUNK_COUNTS[2],
                };
                let count = self.emit1(Opcode::Primitive(count), vec![*len, *size], span);
                (
                    vec![zero, count],
                    RangeLoop {
                        inclusive: false,
                        reverse: false,
                        stepped: false,
                        breaks: false,
                    },
                )
            }
            Source::Range {
                start,
                end,
                step,
                inclusive,
                reverse,
            } => {
                let mut args = vec![*start, *end];
                args.extend(step.iter().copied());
                (
                    args,
                    RangeLoop {
                        inclusive: *inclusive,
                        reverse: *reverse,
                        stepped: step.is_some(),
                        breaks: false,
                    },
                )
            }
            Source::Arrays {
                arrays, reverse, ..
            } => {
                let zero = self.constant(quote!(0), span);
                let mut len = self.emit1(Opcode::Len, vec![arrays[0]], span);
                for &other in &arrays[1..] {
                    let other_len = self.emit1(Opcode::Len, vec![other], span);
                    len = self.emit1(
                        Opcode::Primitive(&primitives::MIN),
                        vec![len, other_len],
                        span,
                    );
                }
                (
                    vec![zero, len],
                    RangeLoop {
                        inclusive: false,
                        reverse: *reverse,
                        stepped: false,
                        breaks: false,
                    },
                )
            }
        }
    }

    /// The slice of [`Source::Chunks`] at `index`.
    pub(super) fn chunk(&mut self, source: &Source, index: Value, span: Span) -> Value {
        let Source::Chunks {
            array,
            size,
            len,
            kind,
            ..
        } = source
        else {
            unreachable!("chunk items come from chunked sources")
        };
        let start = match kind {
            ChunkKind::Windows => index,
            ChunkKind::Chunks | ChunkKind::Exact => {
                self.emit1(Opcode::Binary(BinaryOp::Mul), vec![index, *size], span)
            }
        };
        let mut end = self.emit1(Opcode::Binary(BinaryOp::Add), vec![start, *size], span);
        if *kind == ChunkKind::Chunks {
            end = self.emit1(Opcode::Primitive(&primitives::MIN), vec![end, *len], span);
        }
        // the item is a reference, as `&x[start..end]` is
        let slice = self.emit1(Opcode::Slice, vec![*array, start, end], span);
        self.emit1(Opcode::Ref, vec![slice], span)
    }

    /// Binds a `for` or closure pattern to the current item of `source` at `index`.
    pub(super) fn bind_item(
        &mut self,
        pat: &Pat,
        shape: &ItemShape,
        source: &Source,
        index: Value,
        span: Span,
    ) -> Option<()> {
        match (closure_param(pat), shape) {
            (Pat::Wild(_), _) => Some(()),
            (Pat::Reference(r), ItemShape::Element(_)) => {
                self.bind_item(&r.pat, shape, source, index, span)
            }
            (Pat::Paren(p), _) => self.bind_item(&p.pat, shape, source, index, span),
            (Pat::Ident(p), _) if p.subpat.is_none() => {
                let value = match (shape, source) {
                    // `.rev().enumerate()`: element `i` is item `len - 1 - i`
                    (
                        ItemShape::Index,
                        Source::Arrays {
                            from_end: Some(len),
                            ..
                        },
                    ) => {
                        let after =
                            self.emit1(Opcode::Binary(BinaryOp::Sub), vec![*len, index], span);
                        let one = self.constant(quote!(1usize), span);
                        self.emit1(Opcode::Binary(BinaryOp::Sub), vec![after, one], span)
                    }
                    (ItemShape::Index, _) => index,
                    (ItemShape::Chunk, _) => self.chunk(source, index, span),
                    (ItemShape::Element(k), _) => {
                        let Source::Arrays { arrays, .. } = source else {
                            unreachable!("elements come from arrays")
                        };
                        if let Some(array) = self.mutable_sources.get(&arrays[*k]) {
                            let array = array.clone();
                            self.declare(&p.ident, Slot::Element { array, index });
                            return Some(());
                        }
                        if self.has_container_elements(arrays[*k]) {
                            // `for x in xs` over a `&[Vec<f64>]`: each item is `&xs[i]`, as
                            // the iterator's item is a reference (a `Vec` is not copied)
                            let element = self.container_element(arrays[*k], index, span);
                            self.emit1(Opcode::Ref, vec![element], span)
                        } else {
                            self.element(arrays[*k], index, span)
                        }
                    }
                    (ItemShape::Pair(..), _) => {
                        self.errors
                            .push_spanned(p, "this item is a pair; destructure it, like `(a, b)`");
                        return None;
                    }
                };
                self.declare(&p.ident, Slot::Bound(Operand::Value(value)));
                Some(())
            }
            (Pat::Tuple(t), ItemShape::Pair(first, second)) if t.elems.len() == 2 => {
                self.bind_item(&t.elems[0], first, source, index, span)?;
                self.bind_item(&t.elems[1], second, source, index, span)
            }
            // `for &(a, b) in edges`, `for [i, j, k] in triangles`: an element taken apart
            (Pat::Tuple(_) | Pat::Slice(_), ItemShape::Element(k))
                if matches!(source, Source::Arrays { arrays, .. }
                    if !self.mutable_sources.contains_key(&arrays[*k])) =>
            {
                let Source::Arrays { arrays, .. } = source else {
                    unreachable!("checked")
                };
                let element = self.element(arrays[*k], index, span);
                self.bind_pattern(closure_param(pat), Operand::Value(element), true);
                Some(())
            }
            (other, _) => {
                self.errors.push_spanned(other, "this pattern does not fit the loop's items; bind a name, `&name`, `_`, or a pair `(a, b)`");
                None
            }
        }
    }

    /// Lowers a `for`, `while` or `loop` expression.
    pub(super) fn lower_loop_expr(&mut self, e: &Expr) -> Option<LoopOutcome> {
        let span = e.span();
        match e {
            Expr::ForLoop(f) => {
                if let Some(label) = &f.label {
                    self.errors.push_spanned(label, "labeled loops are not supported; set a flag and test it after the inner loop");
                    return None;
                }
                // `for v in xs.filter(|v| p(v)) { body }` is `for v in xs { if p(v) { body } }`
                let (iterable, filter) = match strip_parens(&f.expr) {
                    Expr::MethodCall(m) if m.method == "filter" => {
                        self.chain_step(strip_parens(&f.expr), "filter")?
                    }
                    other => (other, None),
                };
                if let Some(filter) = filter {
                    self.check_closure(filter)?;
                }
                let source = self.iteration_source(iterable)?;
                // the arrays an `iter_mut()` loop writes through its items are carried
                let written: Vec<(Value, String)> = match &source {
                    Source::Arrays { arrays, .. } => arrays
                        .iter()
                        .filter_map(|a| self.mutable_sources.get(a).map(|n| (*a, n.to_string())))
                        .collect(),
                    _ => Vec::new(),
                };
                let (args, mut range) = self.source_header(&source, span);
                let jumps = find_jumps(|j| j.visit_block(&f.body));
                range.breaks = jumps.breaks || jumps.returns;
                let shape = source.item_shape();
                let end_span = f.body.brace_token.span.close();
                let body = |this: &mut Self, index: Option<Value>| {
                    let env_len = this.env.len();
                    let index = index.expect("for loops have an index");
                    let keep = match filter {
                        Some(filter) => {
                            // the closure takes a reference to the item: `|&v|`, `|&&v|`, `|v|`
                            let param = match closure_param(&filter.inputs[0]) {
                                Pat::Reference(r) => &*r.pat,
                                other => other,
                            };
                            this.bind_item(param, &shape, &source, index, span)?;
                            let keep = this.lower_condition(&filter.body)?;
                            this.env.truncate(env_len);
                            Some(keep)
                        }
                        None => None,
                    };
                    this.bind_item(&f.pat, &shape, &source, index, span)?;
                    let items = block_items(&f.body, Some(env_len));
                    match keep {
                        Some(keep) => {
                            let arms = vec![
                                (None, ArmSeq::Items(items)),
                                (None, ArmSeq::Items(Vec::new())),
                            ];
                            this.jumping_arms(Opcode::If, keep, arms, span, end_span, Ctx::Loop)
                        }
                        None => this.lower_seq(&items, end_span, Ctx::Loop),
                    }
                };
                let mut names = assigned_names(&f.body);
                for (_, name) in &written {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
                let outcome = self.lower_loop(
                    Some((args, range)),
                    &names,
                    jumps.first_return,
                    false,
                    span,
                    &body,
                );
                for (array, _) in &written {
                    self.mutable_sources.remove(array);
                }
                outcome
            }
            Expr::While(w) => {
                if let Some(label) = &w.label {
                    self.errors.push_spanned(label, "labeled loops are not supported; set a flag and test it after the inner loop");
                    return None;
                }
                let jumps = find_jumps(|j| j.visit_block(&w.body));
                let end_span = w.body.brace_token.span.close();
                let body = |this: &mut Self, _: Option<Value>| {
                    let cond = this.lower_condition(&w.cond)?;
                    let items = block_items(&w.body, Some(this.env.len()));
                    let arms = vec![(None, ArmSeq::Items(items)), (None, ArmSeq::Exit)];
                    this.jumping_arms(Opcode::If, cond, arms, span, end_span, Ctx::Loop)
                };
                let mut names = assigned_names(&w.body);
                names.retain(|n| !n.is_empty());
                self.lower_loop(None, &names, jumps.first_return, false, span, &body)
            }
            Expr::Loop(l) => {
                if let Some(label) = &l.label {
                    self.errors.push_spanned(label, "labeled loops are not supported; set a flag and test it after the inner loop");
                    return None;
                }
                let jumps = find_jumps(|j| j.visit_block(&l.body));
                let end_span = l.body.brace_token.span.close();
                let body = |this: &mut Self, _: Option<Value>| {
                    let items = block_items(&l.body, Some(this.env.len()));
                    this.lower_seq(&items, end_span, Ctx::Loop)
                };
                let names = assigned_names(&l.body);
                self.lower_loop(
                    None,
                    &names,
                    jumps.first_return,
                    jumps.break_values,
                    span,
                    &body,
                )
            }
            _ => None,
        }
    }

    /// The common part of every loop: carried variables become body parameters and results,
    /// hidden slots carry `return` and `break` values out.
    pub(super) fn lower_loop(
        &mut self,
        range: Option<(Vec<Value>, RangeLoop)>,
        assigned: &[String],
        first_return: Option<Span>,
        break_value: bool,
        span: Span,
        body: LoopBody<'_, 'e>,
    ) -> Option<LoopOutcome> {
        let hidden_start = self.env.len();
        let placeholder = quote!(::autodiff::__private::num_traits::Zero::zero());
        let returns = first_return.is_some();
        if let (Some(at), Some(_)) = (first_return, &self.struct_output) {
            // the hidden return slots need a value of each field's type before the loop
            self.errors.push(
                at,
                "a `return` inside a loop is not supported in a function returning a struct; `break` out of the loop and return after it",
            );
            return None;
        }
        if returns {
            let no = self.constant(quote!(false), span);
            self.env.push(Binding {
                name: "#returned".into(),
                slot: Slot::Bound(Operand::Value(no)),
            });
            for k in 0..self.output_arity {
                // a value of the output's type that is never read: zero, or an empty container
                let zero = self.constant(self.output_placeholders[k].clone(), span);
                self.env.push(Binding {
                    name: format!("#ret{k}"),
                    slot: Slot::Bound(Operand::Value(zero)),
                });
            }
        }
        if break_value {
            let zero = self.constant(placeholder.clone(), span);
            self.env.push(Binding {
                name: "#break".into(),
                slot: Slot::Bound(Operand::Value(zero)),
            });
        }
        let mut carried = Vec::new();
        // a write through an outer `iter_mut()` item (`*o += ..`) changes its array
        let assigned: Vec<String> = assigned
            .iter()
            .map(|name| match self.lookup(name) {
                Some(Slot::Element { array, .. }) => array.to_string(),
                _ => name.clone(),
            })
            .collect();
        for name in &assigned {
            let Some(index) = self.env[..hidden_start]
                .iter()
                .rposition(|b| b.name == *name)
            else {
                continue;
            };
            if carried.contains(&index) {
                continue;
            }
            match &self.env[index].slot {
                Slot::Bound(_) => carried.push(index),
                Slot::Uninit => {
                    self.errors.push(
                        span,
                        format!("give `{name}` a value before the loop; it is assigned inside it"),
                    );
                    return None;
                }
                Slot::Poisoned => return None,
                Slot::Closure(_) => {
                    self.errors.push(
                        span,
                        format!("`{name}` holds a closure and is assigned inside the loop; bind each closure with a `let` of its own"),
                    );
                    return None;
                }
                // (an item's name maps to its array above)
                Slot::Element { .. } => {}
            }
        }
        carried.extend(hidden_start..self.env.len());
        let shapes: Vec<Operand> = carried
            .iter()
            .map(|&i| match &self.env[i].slot {
                Slot::Bound(op) => op.clone(),
                _ => unreachable!("carried slots are bound"),
            })
            .collect();
        let inits: Vec<Value> = shapes.iter().flat_map(Operand::values).collect();
        let body_block = self.func.create_block();
        let index = range
            .as_ref()
            .map(|_| self.func.add_block_param(body_block, span));
        let params: Vec<Value> = inits
            .iter()
            .map(|_| self.func.add_block_param(body_block, span))
            .collect();
        let snapshot = self.env.clone();
        let mut param_iter = params.iter().copied();
        for (&slot, shape) in carried.iter().zip(&shapes) {
            let operand = shape.rebuild(&mut param_iter);
            if let (Operand::Value(v), false) = (&operand, self.env[slot].name.starts_with('#')) {
                let name = self.env[slot].name.clone();
                self.name_value_str(*v, &name);
            }
            self.env[slot].slot = Slot::Bound(operand);
        }
        let flag = range.as_ref().is_none_or(|(_, r)| r.breaks);
        let outer = self.block;
        self.block = body_block;
        self.loops.push(LoopFrame {
            carried: carried.clone(),
            shapes: shapes.clone(),
            flag,
        });
        let yields = body(self, index);
        self.loops.pop();
        self.block = outer;
        self.env = snapshot;
        self.func.blocks[body_block.index()].yields = yields?;
        let (opcode, mut args) = match range {
            Some((args, range)) => (Opcode::ForRange(range), args),
            None => (Opcode::While, Vec::new()),
        };
        args.extend(inits);
        let inst = self
            .func
            .append(outer, opcode, args, vec![body_block], params.len(), span);
        let mut results = self.func.inst(inst).results.clone().into_iter();
        for (&slot, shape) in carried.iter().zip(&shapes) {
            let operand = shape.rebuild(&mut results);
            if let (Operand::Value(v), false) = (&operand, self.env[slot].name.starts_with('#')) {
                let name = self.env[slot].name.clone();
                self.name_value_str(*v, &name);
            }
            self.env[slot].slot = Slot::Bound(operand);
        }
        let hidden_value = |this: &Self, name: &str| match this.lookup(name) {
            Some(Slot::Bound(Operand::Value(v))) => Some(*v),
            _ => None,
        };
        let returned = if returns {
            let flag = hidden_value(self, "#returned")?;
            let values = (0..self.output_arity)
                .map(|k| hidden_value(self, &format!("#ret{k}")))
                .collect::<Option<Vec<_>>>()?;
            Some((flag, values))
        } else {
            None
        };
        let value = if break_value {
            hidden_value(self, "#break")
        } else {
            None
        };
        self.env.truncate(hidden_start);
        Some(LoopOutcome { returned, value })
    }

    /// `a[start..end]`, `a[start..]`, `a[..end]`, `a[..]`, `a[start..=last]`: the copy of a
    /// range, its open ends `0` and `a.len()`.
    pub(super) fn lower_slice(&mut self, array: Value, range: &syn::ExprRange) -> Option<Value> {
        let span = range.span();
        let start = match &range.start {
            Some(start) => self.lower_single(start)?,
            None => self.constant(quote!(0usize), span),
        };
        let end = match (&range.end, &range.limits) {
            (Some(end), syn::RangeLimits::HalfOpen(_)) => self.lower_single(end)?,
            (Some(last), syn::RangeLimits::Closed(_)) => {
                let last = self.lower_single(last)?;
                let one = self.constant(quote!(1usize), span);
                self.emit1(Opcode::Binary(BinaryOp::Add), vec![last, one], span)
            }
            (None, _) => self.emit1(Opcode::Len, vec![array], span),
        };
        Some(self.emit1(Opcode::Slice, vec![array, start, end], span))
    }

    /// `x.iter().sum()`, `.map(|v| ..).sum()`, `.product()`, `.fold(init, |acc, v| ..)`,
    /// `.map(|v| ..).collect::<Vec<_>>()`: a loop with a hidden accumulator (for `collect`, a
    /// vector the loop pushes to).
    pub(super) fn lower_reduction(&mut self, m: &syn::ExprMethodCall) -> Option<Operand> {
        let span = m.span();
        let name = m.method.to_string();
        if let Some(turbofish) = &m.turbofish {
            let into_vec = match turbofish.args.iter().collect::<Vec<_>>()[..] {
                [syn::GenericArgument::Type(syn::Type::Path(ty))] => {
                    ty.qself.is_none() && ty.path.segments.last().is_some_and(|s| s.ident == "Vec")
                }
                _ => false,
            };
            if name == "collect" && !into_vec {
                self.errors.push_spanned(
                    turbofish,
                    "differentiated iterator chains collect into a `Vec` only; write `.collect::<Vec<_>>()`, or a loop",
                );
                return None;
            }
        }
        // `.filter(p)` right before the reduction (after a `map`, on its values) or right
        // before a `map` (on the source's items)
        let (receiver, mut filter) = self.chain_step(&m.receiver, "filter")?;
        let filter_after_map = filter.is_some();
        let (chain, map) = self.chain_step(receiver, "map")?;
        let chain = match filter {
            Some(_) => chain,
            None => {
                let (before, filter_before) = self.chain_step(chain, "filter")?;
                filter = filter_before;
                before
            }
        };
        let filter_after_map = filter_after_map && map.is_some();
        // `.fold(f64::NEG_INFINITY, f64::max)`: a float method of two arguments by path is
        // the closure `|acc, v| acc.max(v)`
        let method_closure: Option<syn::ExprClosure> = match m.args.iter().nth(1) {
            Some(Expr::Path(path)) if name == "fold" && path.qself.is_none() => {
                let segments = &path.path.segments;
                match segments.last() {
                    Some(last)
                        if segments.len() >= 2
                            && last.arguments.is_none()
                            && primitives::method(&last.ident.to_string(), 2).is_some() =>
                    {
                        let method = &last.ident;
                        Some(syn::parse_quote_spanned! {path.span()=>
                            |fold_acc, fold_item| fold_acc.#method(fold_item)
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        // `.all(p)` and `.any(p)`: folds of `acc && p(v)` and `acc || p(v)`, which evaluate
        // `p` only while the answer is open, as the short-circuiting methods do
        let predicate_fold: Option<syn::ExprClosure> = match (name.as_str(), m.args.first()) {
            ("all" | "any", Some(Expr::Closure(p))) if p.inputs.len() == 1 => {
                let (item, body) = (&p.inputs[0], &p.body);
                let op = if name == "all" {
                    quote!(&&)
                } else {
                    quote!(||)
                };
                Some(syn::parse_quote_spanned! {p.span()=>
                    |__autodiff_verdict, #item| __autodiff_verdict #op (#body)
                })
            }
            ("all" | "any", other) => {
                let at = other.map_or_else(|| m.method.span(), |e| e.span());
                self.errors.push(
                    at,
                    format!("`{name}` in a differentiated iterator chain takes a closure of one item, like `.{name}(|v| ..)`"),
                );
                return None;
            }
            _ => None,
        };
        let fold = if predicate_fold.is_some() {
            predicate_fold.as_ref()
        } else if name == "fold" {
            match &m.args[1] {
                Expr::Closure(c) if c.inputs.len() == 2 => Some(c),
                Expr::Path(_) if method_closure.is_some() => method_closure.as_ref(),
                other => {
                    self.errors.push_spanned(
                        other,
                        "`fold` takes an initial value and a closure `|acc, v| ...` or a float method of two arguments like `f64::max`",
                    );
                    return None;
                }
            }
        } else {
            None
        };
        // `.copied()` or `.cloned()` somewhere in the chain (`x.iter().copied().rev()`)
        fn copies(e: &Expr) -> bool {
            match e {
                Expr::MethodCall(c) => {
                    c.method == "copied" || c.method == "cloned" || copies(&c.receiver)
                }
                Expr::Paren(p) => copies(&p.expr),
                _ => false,
            }
        }
        if name == "collect" && map.is_none() && !copies(chain) {
            // `x.iter().collect()` is a `Vec<&T>`
            self.errors.push_spanned(
                &m.method,
                "collect the values, not references: `.iter().copied().collect::<Vec<_>>()`, or `.map(|v| ...)` before `collect`",
            );
            return None;
        }
        for closure in map.iter().chain(fold.iter()).chain(filter.iter()) {
            self.check_closure(closure)?;
        }
        let init = match name.as_str() {
            "all" => self.constant(quote!(true), span),
            "any" => self.constant(quote!(false), span),
            "sum" => self.constant(quote!(::autodiff::__private::sum_identity()), span),
            "product" => self.constant(quote!(::autodiff::__private::one()), span),
            "collect" => self.emit1(Opcode::VecNew, Vec::new(), span),
            _ => self.lower_single(&m.args[0])?,
        };
        let source = self.iteration_source(chain)?;
        if let Source::Arrays { arrays, .. } = &source {
            if arrays
                .iter()
                .any(|a| self.mutable_sources.remove(a).is_some())
            {
                self.errors.push_spanned(
                    chain,
                    "`iter_mut()` and `&mut v` drive `for` loops only; write the changes in a `for o in v.iter_mut()` loop and reduce with `.iter()`",
                );
                return None;
            }
        }
        let (args, range) = self.source_header(&source, span);
        let shape = source.item_shape();
        let acc_slot = self.env.len();
        self.env.push(Binding {
            name: "#acc".into(),
            slot: Slot::Bound(Operand::Value(init)),
        });
        let body = |this: &mut Self, index: Option<Value>| {
            let index = index.expect("reductions loop over indices");
            let env_len = this.env.len();
            // the filter's verdict on the source's item, or on the map's value of it
            let mut mapped = None;
            let keep = match filter {
                Some(filter) if filter_after_map => {
                    let map = map.expect("a filter after a map");
                    this.bind_item(&map.inputs[0], &shape, &source, index, span)?;
                    let value = this.lower_single(&map.body)?;
                    mapped = Some(value);
                    this.bind_pattern(
                        without_references(&filter.inputs[0]),
                        Operand::Value(value),
                        true,
                    );
                    Some(this.lower_condition(&filter.body)?)
                }
                Some(filter) => {
                    this.bind_item(&filter.inputs[0], &shape, &source, index, span)?;
                    Some(this.lower_condition(&filter.body)?)
                }
                None => None,
            };
            let step = |this: &mut Self| -> Option<Operand> {
                let scope = this.env.len();
                let next = this.reduction_step(
                    &name, acc_slot, map, fold, mapped, &shape, &source, index, span, m,
                )?;
                this.env.truncate(scope);
                this.env[acc_slot].slot = Slot::Bound(Operand::Value(next));
                Some(Operand::Unit)
            };
            match keep {
                Some(keep) => {
                    let skip = |_: &mut Self| Some(Operand::Unit);
                    this.structured(Opcode::If, keep, vec![(None, &step), (None, &skip)], span)?;
                }
                None => {
                    step(this)?;
                }
            }
            this.env.truncate(env_len);
            this.loop_exit(true, span)
        };
        let names = vec!["#acc".to_string()];
        self.lower_loop(Some((args, range)), &names, None, false, span, &body)?;
        let result = match &self.env[acc_slot].slot {
            Slot::Bound(op) => op.clone(),
            _ => return None,
        };
        self.env.truncate(acc_slot);
        Some(result)
    }

    /// `receiver.<method>(|..| ..)` in an iterator chain: the chain before it and the closure;
    /// `e` itself and no closure when `e` is another call.
    pub(super) fn chain_step<'c>(
        &mut self,
        e: &'c Expr,
        method: &str,
    ) -> Option<(&'c Expr, Option<&'c syn::ExprClosure>)> {
        match e {
            Expr::MethodCall(inner) if inner.method == method && inner.args.len() == 1 => {
                match &inner.args[0] {
                    Expr::Closure(c) if c.inputs.len() == 1 => Some((&*inner.receiver, Some(c))),
                    other => {
                        self.errors.push_spanned(other, format!("`{method}` in a differentiated iterator chain takes a closure of one item, like `.{method}(|v| ..)`"));
                        None
                    }
                }
            }
            other => Some((other, None)),
        }
    }

    /// One iteration of a reduction: the accumulator's next value from the current item (the
    /// map's value of it when `mapped` holds it already).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reduction_step(
        &mut self,
        name: &str,
        acc_slot: usize,
        map: Option<&syn::ExprClosure>,
        fold: Option<&syn::ExprClosure>,
        mapped: Option<Value>,
        shape: &ItemShape,
        source: &Source,
        index: Value,
        span: Span,
        m: &syn::ExprMethodCall,
    ) -> Option<Value> {
        let acc = match &self.env[acc_slot].slot {
            Slot::Bound(Operand::Value(v)) => *v,
            _ => return None,
        };
        let mapped = match (mapped, map) {
            (Some(value), _) => Some(value),
            (None, Some(map)) => {
                self.bind_item(&map.inputs[0], shape, source, index, span)?;
                Some(self.lower_single(&map.body)?)
            }
            (None, None) => None,
        };
        let this = self;
        let next = match (mapped, fold) {
            (mapped, Some(fold)) => {
                this.bind_pattern(closure_param(&fold.inputs[0]), Operand::Value(acc), true);
                match mapped {
                    // the map's value, owned: `|acc, v|` or a tuple pattern
                    Some(value) => this.bind_pattern(
                        without_references(&fold.inputs[1]),
                        Operand::Value(value),
                        true,
                    ),
                    None => this.bind_item(&fold.inputs[1], shape, source, index, span)?,
                }
                this.lower_single(&fold.body)?
            }
            (mapped, None) => {
                let item = match mapped {
                    Some(value) => value,
                    None => {
                        let ItemShape::Element(k) = shape else {
                            this.errors.push_spanned(
                                &m.method,
                                format!(
                                    "`{name}` needs single elements here; add `.map(|(a, b)| ...)`"
                                ),
                            );
                            return None;
                        };
                        let Source::Arrays { arrays, .. } = source else {
                            unreachable!("elements come from arrays")
                        };
                        this.emit1(Opcode::Index, vec![arrays[*k], index], span)
                    }
                };
                match name {
                    "collect" => {
                        let len = this.emit1(Opcode::Len, vec![acc], span);
                        this.emit1(Opcode::Push, vec![acc, item, len], span)
                    }
                    "sum" => this.emit1(Opcode::Binary(BinaryOp::Add), vec![acc, item], span),
                    _ => this.emit1(Opcode::Binary(BinaryOp::Mul), vec![acc, item], span),
                }
            }
        };
        Some(next)
    }
}
