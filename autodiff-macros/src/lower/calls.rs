//! Calls and methods: arguments, float methods and their paths, calls of differentiated
//! functions, `mem::swap`/`mem::replace`, and methods with or without rules.

use super::*;

impl<'e> Lowerer<'e> {
    pub(super) fn lower_args<'a>(
        &mut self,
        args: impl IntoIterator<Item = &'a Expr>,
    ) -> Option<Vec<Value>> {
        let mut values = Vec::new();
        let mut ok = true;
        for arg in args {
            match self.lower_argument(arg) {
                Some(v) => values.push(v),
                None => ok = false,
            }
        }
        ok.then_some(values)
    }

    /// The values of a tuple's elements or a struct's fields built for a call, each one value;
    /// `message` at `at` otherwise.
    fn single_values(
        &mut self,
        operands: Vec<Operand>,
        at: &Expr,
        message: &str,
    ) -> Option<Vec<Value>> {
        let mut values = Vec::new();
        for operand in operands {
            let Operand::Value(value) = operand else {
                self.errors.push_spanned(at, message);
                return None;
            };
            values.push(value);
        }
        Some(values)
    }

    /// A call's argument; a struct built in the function (`s`, `&s`, or a struct expression)
    /// is made into one value here (`MakeStruct`), as the callee takes it whole.
    pub(super) fn lower_argument(&mut self, arg: &Expr) -> Option<Value> {
        let (inner, borrowed) = match strip_parens(arg) {
            Expr::Reference(r) if r.mutability.is_none() => (strip_parens(&r.expr), true),
            other => (other, false),
        };
        // `inner(&(a, b), k)`: a tuple of values built for the call
        let tuple = match inner {
            Expr::Tuple(t) if (1..=8).contains(&t.elems.len()) => Some(self.lower_expr(inner)?),
            _ => local_ident(inner).and_then(|name| match self.lookup(&name.to_string()) {
                Some(Slot::Bound(tuple @ Operand::Tuple(items)))
                    if (1..=8).contains(&items.len()) =>
                {
                    Some(tuple.clone())
                }
                _ => None,
            }),
        };
        if let Some(Operand::Tuple(items)) = tuple {
            let values = self.single_values(
                items,
                inner,
                "a tuple passed to a function holds one value per element here, not a tuple or a struct",
            )?;
            let value = self.emit1(Opcode::MakeTuple, values, inner.span());
            return Some(if borrowed {
                self.emit1(Opcode::Ref, vec![value], arg.span())
            } else {
                value
            });
        }
        let built = match inner {
            Expr::Struct(_) => true,
            _ => local_ident(inner).is_some_and(|name| {
                matches!(
                    self.lookup(&name.to_string()),
                    Some(Slot::Bound(Operand::Struct(..)))
                )
            }),
        };
        if !built {
            return self.lower_single(arg);
        }
        let Operand::Struct(path, fields) = self.lower_expr(inner)? else {
            return self.lower_single(arg);
        };
        let (names, fields): (Vec<_>, Vec<_>) = fields.into_iter().unzip();
        let values = self.single_values(
            fields,
            inner,
            "a struct passed to a function holds one value per field here, not a tuple or a struct; build the inner struct in a function of its own",
        )?;
        let span = inner.span();
        let value = self.emit1(Opcode::MakeStruct(path.clone(), names), values, span);
        // its type (`Pair::<T>` written as `Pair<T>`), which saving it and its zero need
        let mut ty = path;
        for segment in &mut ty.segments {
            if let syn::PathArguments::AngleBracketed(args) = &mut segment.arguments {
                args.colon2_token = None;
            }
        }
        self.annotations.insert(
            value,
            syn::Type::Path(syn::TypePath {
                qself: None,
                path: ty,
            }),
        );
        Some(if borrowed {
            self.emit1(Opcode::Ref, vec![value], arg.span())
        } else {
            value
        })
    }

    /// `f64::sin(x)`, `Float::sin(x)`, `num_traits::Float::sin(x)`, `T::sin(x)`.
    /// `x.sin_cos()`: the pair `(x.sin(), x.cos())`, which is how the standard library computes
    /// it, each with its own rule.
    pub(super) fn sin_cos(&mut self, x: Value, span: Span) -> Option<Operand> {
        let (sin, cos) = (primitives::method("sin", 1)?, primitives::method("cos", 1)?);
        let s = self.emit1(Opcode::Primitive(sin), vec![x], span);
        let c = self.emit1(Opcode::Primitive(cos), vec![x], span);
        Some(Operand::Tuple(vec![Operand::Value(s), Operand::Value(c)]))
    }

    pub(super) fn primitive_path(
        &self,
        path: &syn::ExprPath,
        arity: usize,
    ) -> Option<&'static primitives::Primitive> {
        primitives::method(&self.float_method_path(path)?, arity)
    }

    /// For `f64::name`, `f32::name`, `Float::name`, `num_traits::Float::name` or `T::name` with
    /// `T` a type parameter: `name`.
    pub(super) fn float_method_path(&self, path: &syn::ExprPath) -> Option<String> {
        if path.qself.is_some() {
            return None;
        }
        let segments = path_segments(&path.path);
        let (last, owner) = segments.split_last()?;
        let owner_ok = match owner {
            [one] => {
                one == "f64"
                    || one == "f32"
                    || one == "Float"
                    || self.generics.iter().any(|g| g == one)
            }
            [.., a, b] => b == "Float" && (a == "num_traits" || a == "float"),
            [] => false,
        };
        owner_ok.then(|| last.clone())
    }

    /// `std::mem::swap(&mut a, &mut b)` and `std::mem::replace(&mut a, e)` on local
    /// variables: rebindings, as `(a, b) = (b, a)` and `a = e` (returning the old `a`) are.
    /// None for any other call.
    pub(super) fn lower_mem_call(
        &mut self,
        call: &syn::ExprCall,
        path: &syn::ExprPath,
    ) -> Option<Option<Operand>> {
        let segments = path_segments(&path.path);
        let name = match segments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["mem", name] | ["std" | "core", "mem", name] if path.qself.is_none() => name,
            _ => return None,
        };
        let args: Vec<&Expr> = call.args.iter().collect();
        let read = |this: &mut Self, ident: &Ident| {
            let e: Expr = syn::parse_quote!(#ident);
            this.lower_expr(&e)
        };
        match (name, &args[..]) {
            ("swap", [a, b]) => {
                let (a, b) = (mut_ref_ident(a)?, mut_ref_ident(b)?);
                Some((|| {
                    let (va, vb) = (read(self, &a)?, read(self, &b)?);
                    self.assign_place(&syn::parse_quote!(#a), vb);
                    self.assign_place(&syn::parse_quote!(#b), va);
                    Some(Operand::Unit)
                })())
            }
            ("replace", [a, value]) => {
                let a = mut_ref_ident(a)?;
                Some((|| {
                    let value = self.lower_expr(value)?;
                    let old = read(self, &a)?;
                    self.assign_place(&syn::parse_quote!(#a), value);
                    Some(old)
                })())
            }
            _ => None,
        }
    }

    /// `DMatrix::from_fn(r, c, |i, j| body)` as the loops it stands for: the body's values
    /// pushed column by column into a `Vec`, which `from_vec` turns into the matrix.
    fn lower_matrix_from_fn(
        &mut self,
        call: &syn::ExprCall,
        filled: MatrixFromFn,
    ) -> Option<Operand> {
        let span = call.span();
        let closure = filled.closure;
        if let Some(ret) = first_return(&closure.body) {
            self.errors.push_spanned(
                ret,
                "`return` inside a `from_fn` closure would return from the closure; compute the element as the closure's value",
            );
            return None;
        }
        let (i, j) = (
            closure_param(&closure.inputs[0]),
            closure_param(&closure.inputs[1]),
        );
        let body = &closure.body;
        let ty = &filled.ty;
        let (rows, cols) = (&filled.rows, &filled.cols);
        let build = match filled.shape {
            FromFnShape::Matrix => {
                quote::quote!(#ty::from_vec(__from_fn_rows, __from_fn_cols, __from_fn_data))
            }
            FromFnShape::Vector => quote::quote!(#ty::from_vec(__from_fn_data)),
        };
        let tokens = quote::quote_spanned! {span=> {
            let __from_fn_rows: usize = #rows;
            let __from_fn_cols: usize = #cols;
            let mut __from_fn_data = Vec::with_capacity(__from_fn_rows * __from_fn_cols);
            for #j in 0..__from_fn_cols {
                for #i in 0..__from_fn_rows {
                    __from_fn_data.push(#body);
                }
            }
            #build
        }};
        let Ok(expr) = syn::parse2::<Expr>(tokens) else {
            self.errors.push_spanned(
                &call.func,
                "internal error in #[differentiate] (please report it): a `from_fn` did not rebuild as loops",
            );
            return None;
        };
        self.lower_expr(&expr)
    }

    /// Whether `v` is a Cholesky factorisation (`a.cholesky().unwrap()`), whose methods are
    /// the operations of `primitives::cholesky`.
    fn is_cholesky_factor(&self, v: Value) -> bool {
        self.func.def_inst(v).is_some_and(|inst| {
            matches!(self.func.inst(inst).opcode,
                Opcode::Primitive(p) if std::ptr::eq(p, &primitives::cholesky::FACTOR))
        })
    }

    pub(super) fn lower_call(&mut self, call: &syn::ExprCall, results: usize) -> Option<Operand> {
        let span = call.span();
        let Expr::Path(path) = &*call.func else {
            self.errors
                .push_spanned(&call.func, "only calls of named functions are supported; call the function by its path, like `helper(x)`");
            return None;
        };
        if let Some(ident) = path.path.get_ident() {
            // a closure whose definition was an error already reported
            if let Some(Slot::Poisoned) = self.lookup(&ident.to_string()) {
                return None;
            }
        }
        if let Some(operand) = self.lower_mem_call(call, path) {
            return operand;
        }
        if let Some(filled) = matrix_from_fn(path, &call.args) {
            return self.lower_matrix_from_fn(call, filled);
        }
        let args = self.lower_args(&call.args)?;
        let segments = path_segments(&path.path);
        if path.qself.is_none()
            && segments.len() == 2
            && segments[0] == "Vec"
            && (segments[1] == "new" && args.is_empty()
                || segments[1] == "with_capacity" && args.len() == 1)
        {
            return Some(Operand::Value(self.emit1(Opcode::VecNew, args, span)));
        }
        if let Some((ty, function, row_major)) = matrix_from_constructor(path, args.len()) {
            if results != 1 {
                // rustc reports the mismatched tuple pattern itself
                self.errors.fail_silently();
                return None;
            }
            let opcode = Opcode::MatrixFrom {
                ty,
                function,
                row_major,
            };
            return Some(Operand::Value(self.emit1(opcode, args, span)));
        }
        if let Some(ty) = fixed_matrix_constructor(path).filter(|_| !args.is_empty()) {
            if results != 1 {
                // rustc reports the mismatched tuple pattern itself
                self.errors.fail_silently();
                return None;
            }
            let value = self.emit1(Opcode::MatrixNew(ty), args, span);
            return Some(Operand::Value(value));
        }
        if args.len() == 1 && self.float_method_path(path).is_some_and(|m| m == "sin_cos") {
            return self.sin_cos(args[0], span);
        }
        if let Some(prim) = self.primitive_path(path, args.len()) {
            if results != 1 {
                // rustc reports the mismatched tuple pattern itself
                self.errors.fail_silently();
                return None;
            }
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                args,
                span,
            )));
        }
        if path.qself.is_some() {
            self.errors.push_spanned(
                path,
                "qualified paths `<T as Trait>::f` are not supported in calls; write `Float::sin(x)` or `x.sin()` for float methods",
            );
            return None;
        }
        if let Some(ident) = path.path.get_ident() {
            match self.lookup(&ident.to_string()) {
                Some(Slot::Poisoned) => return None,
                Some(Slot::Closure(closure)) => {
                    let closure = closure.clone();
                    return self.inline_closure(&closure, args, results);
                }
                Some(_) => {
                    self.errors.push_spanned(ident, "calling a local variable is not supported; call a named #[differentiate] function, or a closure bound by `let f = |x| ...;`");
                    return None;
                }
                None => {}
            }
        }
        let values = self.emit(Opcode::Call(path.clone()), args, results, span);
        Some(if results == 1 {
            Operand::Value(values[0])
        } else {
            Operand::Tuple(values.into_iter().map(Operand::Value).collect())
        })
    }

    pub(super) fn lower_method(&mut self, m: &syn::ExprMethodCall) -> Option<Operand> {
        let span = m.span();
        let name = m.method.to_string();
        // `s.energy(k)` on a struct built in the function: its type is the struct
        // expression's, so the method is called by path, `State::energy(&s, k)`, as a
        // differentiated method composes (one that is not differentiated fails there)
        if let Some(receiver) = local_ident(strip_parens(&m.receiver)) {
            if let Some(Slot::Bound(Operand::Struct(path, _))) = self.lookup(&receiver.to_string())
            {
                let mut callee = path.clone();
                callee.segments.push(syn::PathSegment {
                    ident: m.method.clone(),
                    arguments: match &m.turbofish {
                        Some(generics) => syn::PathArguments::AngleBracketed(generics.clone()),
                        None => syn::PathArguments::None,
                    },
                });
                let mut args: syn::punctuated::Punctuated<Expr, syn::Token![,]> =
                    syn::punctuated::Punctuated::new();
                args.push(Expr::Reference(syn::ExprReference {
                    attrs: Vec::new(),
                    and_token: syn::Token![&](m.receiver.span()),
                    mutability: None,
                    expr: m.receiver.clone(),
                }));
                args.extend(m.args.iter().cloned());
                let call = syn::ExprCall {
                    attrs: Vec::new(),
                    func: Box::new(Expr::Path(syn::ExprPath {
                        attrs: Vec::new(),
                        qself: None,
                        path: callee,
                    })),
                    paren_token: m.paren_token,
                    args,
                };
                return self.lower_expr(&Expr::Call(call));
            }
        }
        // sorting: said before its comparison closure is read (closures are not arguments)
        if matches!(
            name.as_str(),
            "sort"
                | "sort_unstable"
                | "sort_by"
                | "sort_by_key"
                | "sort_unstable_by"
                | "sort_unstable_by_key"
                | "sort_by_cached_key"
        ) {
            self.errors.push_spanned(
                &m.method,
                format!("`{name}` sorts its receiver in place, which #[differentiate] does not follow; sort by swapping elements in a loop (`while j > 0 && v[j] < v[j - 1] {{ v.swap(j, j - 1); j -= 1; }}`: the derivative follows the swaps), or sort indices before the call and read `x[order[k]]`"),
            );
            return None;
        }
        // `xs.for_each(|v| body)` is `for v in xs { body; }`, where `return` in the body
        // would mean `continue`
        if let ("for_each", [Expr::Closure(c)]) =
            (name.as_str(), &m.args.iter().collect::<Vec<_>>()[..])
        {
            let iter_mut = matches!(&*m.receiver, Expr::MethodCall(r) if r.method == "iter_mut");
            if c.inputs.len() == 1 && (is_iterator_chain(&m.receiver) || iter_mut) {
                if expr_returns(&c.body) {
                    struct FirstReturn(Option<Span>);
                    impl<'ast> Visit<'ast> for FirstReturn {
                        fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
                            self.0.get_or_insert(r.return_token.span);
                        }
                        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
                    }
                    let mut first = FirstReturn(None);
                    first.visit_expr(&c.body);
                    self.errors.push(
                        first.0.unwrap_or_else(|| c.body.span()),
                        "`return` in a `for_each` closure is not supported; write a `for` loop and use `continue`",
                    );
                    return None;
                }
                // (a typed parameter `|v: &f64|` loses its type: a `for` pattern has none)
                let (pat, source, body) = (closure_param(&c.inputs[0]), &m.receiver, &c.body);
                let tokens = quote::quote_spanned!(span=> for #pat in #source { #body; });
                let Ok(for_loop) = syn::parse2::<Expr>(tokens) else {
                    self.errors.push(
                        span,
                        "internal error in #[differentiate] (please report it): a `for_each` did not rebuild as a `for` loop",
                    );
                    return None;
                };
                return self.lower_expr(&for_loop);
            }
        }
        // `m.try_inverse().unwrap()`, `a.lu().solve(&b).unwrap()` and `a.cholesky().unwrap()`
        // on nalgebra matrices
        if matches!(name.as_str(), "unwrap" | "expect") {
            if let Expr::MethodCall(inner) = &*m.receiver {
                if inner.method == "cholesky" && inner.args.is_empty() {
                    let matrix = self.lower_single(&inner.receiver)?;
                    let prim = &primitives::cholesky::FACTOR;
                    return Some(Operand::Value(self.emit1(
                        Opcode::Primitive(prim),
                        vec![matrix],
                        span,
                    )));
                }
                if inner.method == "try_inverse" && inner.args.is_empty() {
                    let matrix = self.lower_single(&inner.receiver)?;
                    let prim = &primitives::linalg::INVERSE;
                    return Some(Operand::Value(self.emit1(
                        Opcode::Primitive(prim),
                        vec![matrix],
                        span,
                    )));
                }
                if let (true, 1, Expr::MethodCall(lu)) =
                    (inner.method == "solve", inner.args.len(), &*inner.receiver)
                {
                    if lu.method == "lu" && lu.args.is_empty() {
                        let matrix = self.lower_single(&lu.receiver)?;
                        let rhs = self.lower_single(&inner.args[0])?;
                        let prim = &primitives::linalg::SOLVE;
                        return Some(Operand::Value(self.emit1(
                            Opcode::Primitive(prim),
                            vec![matrix, rhs],
                            span,
                        )));
                    }
                }
            }
        }
        match (name.as_str(), m.args.len()) {
            ("push", 1) | ("swap", 2) => return self.lower_mutating_method(m),
            ("sum" | "product" | "collect", 0) | ("fold", 2) | ("all" | "any", 1)
                if is_iterator_chain(&m.receiver) =>
            {
                return self.lower_reduction(m)
            }
            _ => {}
        }
        if let ("map", [Expr::Closure(closure)]) =
            (name.as_str(), &m.args.iter().collect::<Vec<_>>()[..])
        {
            if !is_iterator_chain(&m.receiver) {
                return self.lower_map_closure(m, closure);
            }
        }
        if let Some(adaptor) = unsupported_adaptor(m) {
            self.errors.push_spanned(
                &adaptor,
                format!("`{adaptor}` has no rule in iterator chains; write a `for` loop instead (with `if` for filters)"),
            );
            return None;
        }
        let receiver = self.lower_single(&m.receiver);
        let args = self.lower_args(&m.args);
        let mut all = vec![receiver?];
        all.extend(args?);
        if self.is_cholesky_factor(all[0]) {
            let Some(prim) = primitives::cholesky::method(&name, all.len()) else {
                self.errors.push_spanned(
                    &m.method,
                    format!("`{name}` on a Cholesky factorisation has no derivative rule; use `solve(&b)`, `l()`, `determinant()`, `ln_determinant()` or `inverse()`"),
                );
                return None;
            };
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                all,
                span,
            )));
        }
        match (name.as_str(), all.len()) {
            ("len", 1) => return Some(Operand::Value(self.emit1(Opcode::Len, all, span))),
            ("clone", 1) => {
                return Some(Operand::Value(self.emit1(
                    Opcode::Copy(CopyKind::Clone),
                    all,
                    span,
                )))
            }
            ("to_vec", 1) => {
                return Some(Operand::Value(self.emit1(
                    Opcode::Copy(CopyKind::ToVec),
                    all,
                    span,
                )))
            }
            ("iter" | "into_iter" | "iter_mut", 1) => {
                self.errors.push_spanned(&m.method, "iterators are supported in `for` loops and in `.sum()`, `.product()`, `.fold()` and `.collect()` chains; use the iterator there or write a `for` loop");
                return None;
            }
            _ => {}
        }
        if let Some(prim) = primitives::linalg::method(&name, all.len())
            .filter(|_| primitives::linalg::is_matrix_only(&name))
        {
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                all,
                span,
            )));
        }
        let tensor_method = primitives::tensor::method(&name, all.len());
        if let Some(prim) = tensor_method.filter(|_| {
            primitives::tensor::is_tensor_only(&name) || matches!(name.as_str(), "sum" | "mean")
        }) {
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                all,
                span,
            )));
        }
        if name == "sin_cos" && all.len() == 1 {
            return self.sin_cos(all[0], span);
        }
        if let Some(prim) = primitives::method(&name, all.len()) {
            return Some(Operand::Value(self.emit1(
                Opcode::Primitive(prim),
                all,
                span,
            )));
        }
        // a float method's name with other arguments is another type's method (nalgebra's
        // `v.max()`): one without a rule, like any other below
        match (name.as_str(), all.len() - 1) {
            // capacity only: nothing the values or the derivative see
            ("reserve" | "reserve_exact", 1) | ("shrink_to_fit", 0) => return Some(Operand::Unit),
            ("reverse" | "sort" | "sort_unstable" | "clear" | "pop" | "dedup", 0)
            | (
                "fill"
                | "fill_with"
                | "sort_by"
                | "sort_by_key"
                | "sort_unstable_by"
                | "sort_unstable_by_key"
                | "rotate_left"
                | "rotate_right"
                | "truncate"
                | "remove"
                | "swap_remove"
                | "extend"
                | "extend_from_slice"
                | "append"
                | "retain"
                | "drain"
                | "split_off"
                | "copy_from_slice"
                | "clone_from_slice",
                1,
            )
            | ("insert" | "resize" | "resize_with" | "copy_within", 2)
            // nalgebra's in-place forms
            | ("fill_with_identity", 0)
            | ("copy_from" | "fill_diagonal" | "apply", 1)
            | (
                "set_column" | "set_row" | "swap_rows" | "swap_columns" | "fill_row"
                | "fill_column" | "fill_lower_triangle" | "fill_upper_triangle",
                2,
            ) => {
                self.errors.push_spanned(
                    &m.method,
                    format!("`{name}` changes its receiver in place, which #[differentiate] does not follow; build the changed vector instead, with a loop writing `w[i] = ..`, `push`, `v.swap(i, j)` or `vec![c; n]`"),
                );
                return None;
            }
            // `transpose_mut`, `scale_mut`, `column_mut`, ...: by convention `&mut self`
            _ if name.ends_with("_mut") => {
                self.errors.push_spanned(
                    &m.method,
                    format!("`{name}` changes its receiver in place, which #[differentiate] does not follow; build the changed value instead (`m.transpose()`, `m * c`, a loop writing `w[i] = ..`)"),
                );
                return None;
            }
            _ => {}
        }
        let opcode = Opcode::Method(m.method.clone(), m.turbofish.clone());
        Some(Operand::Value(self.emit1(opcode, all, span)))
    }
}
