//! Closures: `map` closures lifted for matrices, and `let`-bound closures inlined at their
//! calls.

use super::*;

impl<'e> Lowerer<'e> {
    /// `m.map(|v| body)`: the closure becomes a scalar function of its own, so it may read
    /// nothing but its parameter.
    pub(super) fn lower_map_closure(
        &mut self,
        m: &syn::ExprMethodCall,
        c: &syn::ExprClosure,
    ) -> Option<Operand> {
        let input = match c.inputs.iter().collect::<Vec<_>>()[..] {
            [input] => input,
            _ => {
                let (or1, inputs, or2) = (&c.or1_token, &c.inputs, &c.or2_token);
                self.errors.push_spanned(
                    quote!(#or1 #inputs #or2),
                    "the closure passed to `map` takes one element, like `|v| v.tanh()`",
                );
                return None;
            }
        };
        let (pat, param_ty) = match input {
            Pat::Type(t) => (&*t.pat, Some((*t.ty).clone())),
            other => (other, None),
        };
        let param = match pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            _ => {
                self.errors.push_spanned(
                    input,
                    "the closure passed to `map` must name its element, like `|v| v.tanh()`",
                );
                return None;
            }
        };
        let captures = self.captured(c, &param);
        if let Some(capture) = captures
            .iter()
            .find(|name| matches!(self.lookup(&name.to_string()), Some(Slot::Closure(_))))
        {
            self.errors.push_spanned(
                capture,
                format!("the closure passed to `map` calls `{capture}`, a closure of the enclosing function, but it is differentiated as a function of its element and the numbers it reads; write the computation out inside it, or make `{capture}` a #[differentiate] function"),
            );
            return None;
        }
        let receiver = self.lower_single(&m.receiver)?;
        // the variables it reads become parameters of the lifted function after the element
        let mut operands = vec![receiver];
        for capture in &captures {
            let read = syn::Expr::Path(syn::ExprPath {
                attrs: Vec::new(),
                qself: None,
                path: capture.clone().into(),
            });
            operands.push(self.lower_single(&read)?);
        }
        let k = self.func.closures.len();
        let function = quote::format_ident!(
            "__autodiff_map_{}_{}",
            crate::names::unraw(&self.func.name),
            k,
            span = m.method.span()
        );
        let pullback = crate::names::pullback_struct(&function);
        let args = &self.generic_args;
        let pullbacks_ty: syn::Type = if args.is_empty() {
            syn::parse_quote!(::std::vec::Vec<#pullback>)
        } else {
            syn::parse_quote!(::std::vec::Vec<#pullback<#(#args),*>>)
        };
        self.func.closures.push(MapClosure {
            closure: c.clone(),
            function,
            param,
            param_ty,
            captures,
            pullbacks_ty,
            rebuilt_from: None,
        });
        let results = self.emit(Opcode::MapElementwise(k), operands, 2, m.span());
        self.name_value_str(results[1], &format!("map{k}_pullbacks"));
        Some(Operand::Value(results[0]))
    }

    /// The variables of the enclosing function a closure body reads, each once, in the order
    /// they first appear.
    pub(super) fn captured(&self, c: &syn::ExprClosure, param: &Ident) -> Vec<Ident> {
        struct Reads<'a> {
            param: &'a Ident,
            locals: Vec<String>,
            names: Vec<Ident>,
        }
        impl<'ast> Visit<'ast> for Reads<'_> {
            fn visit_local(&mut self, local: &'ast syn::Local) {
                syn::visit::visit_local(self, local);
                if let Pat::Ident(p) = &local.pat {
                    self.locals.push(p.ident.to_string());
                }
            }
            fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
                let Some(ident) = path.path.get_ident() else {
                    return;
                };
                if path.qself.is_none()
                    && ident != self.param
                    && !self.locals.contains(&ident.to_string())
                {
                    self.names.push(ident.clone());
                }
            }
        }
        let mut reads = Reads {
            param,
            locals: Vec::new(),
            names: Vec::new(),
        };
        reads.visit_expr(&c.body);
        let mut captures: Vec<Ident> = Vec::new();
        for name in reads.names {
            if self.lookup(&name.to_string()).is_some() && !captures.contains(&name) {
                captures.push(name);
            }
        }
        captures
    }

    /// A closure bound by `let` is inlined where it is called: its parameters must be plain
    /// names, and it may neither return early (a `return` would leave the function, not the
    /// closure, once inlined) nor assign a variable outside it.
    pub(super) fn check_local_closure(&mut self, c: &syn::ExprClosure) -> Option<()> {
        if let Some(token) = c.asyncness.as_ref() {
            self.errors.push(
                token.span,
                "async closures are not supported in #[differentiate] functions",
            );
            return None;
        }
        for input in &c.inputs {
            let name = match input {
                Pat::Type(t) => &*t.pat,
                other => other,
            };
            if !matches!(name, Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none()) {
                self.errors.push_spanned(
                    input,
                    "a closure's parameters must be plain names here, like `|x, i: usize|`; take tuples apart inside the body",
                );
                return None;
            }
        }
        struct Returns(Option<proc_macro2::Span>);
        impl<'ast> Visit<'ast> for Returns {
            fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
                self.0.get_or_insert(r.return_token.span);
            }
            fn visit_expr_try(&mut self, t: &'ast syn::ExprTry) {
                self.0.get_or_insert(t.question_token.span);
            }
            // a closure inside has returns of its own
            fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        }
        let mut returns = Returns(None);
        returns.visit_expr(&c.body);
        if let Some(span) = returns.0 {
            self.errors.push(
                span,
                "a closure bound to a variable is inlined where it is called, so it cannot return early; make its value the last expression of its body (an `if`/`else` works)",
            );
            return None;
        }
        let inner = &c.body;
        let Ok(wrapped) = syn::parse2::<syn::Block>(quote!({ (#inner); })) else {
            return Some(());
        };
        let params: Vec<String> = c
            .inputs
            .iter()
            .filter_map(|input| match input {
                Pat::Type(t) => pattern_ident(&t.pat),
                other => pattern_ident(other),
            })
            .collect();
        for name in assigned_names(&wrapped) {
            if !params.contains(&name) && self.lookup(&name).is_some() {
                self.errors.push_spanned(
                    &c.body,
                    format!("this closure assigns to `{name}`, a variable outside it; closures must not capture mutably here: write the statements where the closure is called, or a `for` loop"),
                );
                return None;
            }
        }
        Some(())
    }

    /// `f(a, b)` of a closure bound by `let f = |x, y| body;`: the body lowered here, in the
    /// closure's environment, with its parameters bound to the arguments.
    pub(super) fn inline_closure(
        &mut self,
        closure: &LocalClosure,
        args: Vec<Value>,
        results: usize,
    ) -> Option<Operand> {
        let (c, env) = &*closure.0;
        if c.inputs.len() != args.len() {
            // rustc reports the wrong number of arguments itself
            self.errors.fail_silently();
            return None;
        }
        let outer = std::mem::replace(&mut self.env, env.clone());
        for (input, arg) in c.inputs.iter().zip(args) {
            let (pat, ty) = match input {
                Pat::Type(t) => (&*t.pat, Some(&*t.ty)),
                other => (other, None),
            };
            if let Pat::Ident(p) = pat {
                let mut value = arg;
                if let Some(ty) = ty {
                    // as a `let` with that type: an integer parameter is a constant. Only a
                    // scalar type is the argument's own; a reference may be coerced into the
                    // parameter's type (`&Vec<f64>` into `&[f64]`)
                    if crate::args::is_integer_type(ty) {
                        value = self.emit1(Opcode::Cast(ty.clone()), vec![value], p.span());
                        self.annotations.insert(value, ty.clone());
                    } else if crate::args::is_float_type(ty, &self.generics) {
                        self.annotations.insert(value, ty.clone());
                    }
                }
                self.declare(&p.ident, Slot::Bound(Operand::Value(value)));
            }
        }
        let body = match results {
            1 => self.lower_expr(&c.body),
            n => self.lower_expr_expecting(&c.body, n),
        };
        self.env = outer;
        body
    }

    /// Closures in iterator chains may read variables but not assign them.
    pub(super) fn check_closure(&mut self, c: &syn::ExprClosure) -> Option<()> {
        // parenthesised, so that a body like `{ .. } as f32` stays one expression
        let inner = &c.body;
        let Ok(wrapped) = syn::parse2::<syn::Block>(quote!({ (#inner); })) else {
            return Some(());
        };
        for name in assigned_names(&wrapped) {
            if self.lookup(&name).is_some() {
                self.errors.push_spanned(
                    &c.body,
                    format!("this closure assigns to `{name}`, a variable outside it; closures in iterator chains must not capture mutably: write a `for` loop instead"),
                );
                return None;
            }
        }
        Some(())
    }
}
