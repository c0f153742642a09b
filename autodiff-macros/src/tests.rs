//! Snapshot tests of the IR after lowering and after each analysis, and of generated code.

use expect_test::{expect, Expect};
use quote::quote;

use crate::analysis::{self, ActivityNotes, RecordNotes};
use crate::args;
use crate::errors::Errors;
use crate::ir::{self, Plain};
use crate::lower;

fn stages(source: proc_macro2::TokenStream, wrt: Option<&[&str]>) -> (String, String, String) {
    let item: syn::ItemFn = syn::parse2(source).expect("valid function");
    let mut errors = Errors::default();
    let sig = args::signature(&item, &mut errors).expect("valid signature");
    let options = args::Options {
        wrt: wrt.map(|names| {
            names
                .iter()
                .map(|n| syn::Ident::new(n, proc_macro2::Span::call_site()))
                .collect()
        }),
        dump: false,
        partials: None,
    };
    let active = args::active_set(&sig, &options, &mut errors);
    let lowered =
        lower::lower(&item, &sig, &mut errors).unwrap_or_else(|| panic!("{:?}", errors.messages()));
    ir::verify(&lowered.func).expect("verifies");
    let outputs = match &sig.output {
        args::Output::Scalar(t) => vec![t.clone()],
        args::Output::Tuple(t) => t.clone(),
        args::Output::Array(t) => vec![t.clone()],
        args::Output::Struct(_) => Vec::new(),
    };
    let analysis = analysis::analyze(
        &lowered.func,
        &active,
        &lowered.annotations,
        &outputs,
        &mut errors,
    );
    assert!(errors.is_empty(), "{:?}", errors.messages());
    (
        ir::print(&lowered.func, &Plain),
        ir::print(&lowered.func, &ActivityNotes(&analysis)),
        ir::print(&lowered.func, &RecordNotes(&analysis)),
    )
}

fn check(source: proc_macro2::TokenStream, lowered: Expect, activity: Expect, recorded: Expect) {
    let (l, a, r) = stages(source, None);
    lowered.assert_eq(&l);
    activity.assert_eq(&a);
    recorded.assert_eq(&r);
}

fn errors_of(attr: proc_macro2::TokenStream, source: proc_macro2::TokenStream) -> Vec<String> {
    let out = crate::expand::differentiate(attr, source);
    let text = out.to_string();
    text.match_indices("compile_error")
        .map(|(i, _)| {
            let rest = &text[i..];
            let start = rest.find('"').map(|s| s + 1).unwrap_or(0);
            let end = rest[start..]
                .find('"')
                .map(|e| start + e)
                .unwrap_or(rest.len());
            rest[start..end].to_string()
        })
        .collect()
}

#[test]
fn seed_function() {
    check(
        quote! {
            fn f(x1: f64, x2: f64) -> f64 { x1.ln() + x1 * x2 - x2.sin() }
        },
        expect![[r#"
            fn f(v0: f64, v1: f64)
            block0:
                v2 = ln v0
                v3 = mul v0, v1
                v4 = add v2, v3
                v5 = sin v1
                v6 = sub v4, v5
                yield v6
        "#]],
        expect![[r#"
            fn f(v0: f64, v1: f64) ; active v0, v1
            block0:
                v2 = ln v0 ; active v2
                v3 = mul v0, v1 ; active v3
                v4 = add v2, v3 ; active v4
                v5 = sin v1 ; active v5
                v6 = sub v4, v5 ; active v6
                yield v6
        "#]],
        expect![[r#"
            fn f(v0: f64, v1: f64) ; saved v0, v1
            block0:
                v2 = ln v0 ; reversed
                v3 = mul v0, v1 ; reversed
                v4 = add v2, v3 ; reversed
                v5 = sin v1 ; reversed
                v6 = sub v4, v5 ; reversed
                yield v6
        "#]],
    );
}

#[test]
fn branches_merge_assigned_variables_and_save_per_arm() {
    check(
        quote! {
            fn g(x: f64, n: i32) -> f64 {
                let mut y = x * 2.0;
                if x > 1.0 {
                    y = y.exp();
                } else {
                    y = y * y;
                }
                y + n as f64
            }
        },
        expect![[r#"
            fn g(v0: f64, v1: i32 const)
            block0:
                v2 = const 2.0
                v3 = mul v0, v2
                v4 = const 1.0
                v5 = cmp.gt v0, v4
                v8 = if v5
                then
                    block1:
                        v6 = exp v3
                        yield v6
                else
                    block2:
                        v7 = mul v3, v3
                        yield v7
                v9 = cast.f64 v1
                v10 = add v8, v9
                yield v10
        "#]],
        expect![[r#"
            fn g(v0: f64, v1: i32 const) ; active v0
            block0:
                v2 = const 2.0
                v3 = mul v0, v2 ; active v3
                v4 = const 1.0
                v5 = cmp.gt v0, v4
                v8 = if v5 ; active v8
                then
                    block1:
                        v6 = exp v3 ; active v6
                        yield v6
                else
                    block2:
                        v7 = mul v3, v3 ; active v7
                        yield v7
                v9 = cast.f64 v1
                v10 = add v8, v9 ; active v10
                yield v10
        "#]],
        expect![[r#"
            fn g(v0: f64, v1: i32 const) ; saved v0
            block0:
                v2 = const 2.0
                v3 = mul v0, v2 ; recomputed v3; reversed
                v4 = const 1.0
                v5 = cmp.gt v0, v4
                v8 = if v5 ; reversed
                then
                    block1:
                        v6 = exp v3 ; saved v6; reversed
                        yield v6
                else
                    block2:
                        v7 = mul v3, v3 ; reversed
                        yield v7
                v9 = cast.f64 v1
                v10 = add v8, v9 ; reversed
                yield v10
        "#]],
    );
}

#[test]
fn early_return_becomes_nested_arms() {
    let (lowered, _, _) = stages(
        quote! {
            fn r(x: f64) -> f64 {
                if x < 0.0 { return -x; }
                let y = x * x;
                y
            }
        },
        None,
    );
    expect![[r#"
        fn r(v0: f64)
        block0:
            v1 = const 0.0
            v2 = cmp.lt v0, v1
            v5 = if v2
            then
                block1:
                    v3 = neg v0
                    yield v3
            else
                block2:
                    v4 = mul v0, v0
                    yield v4
            yield v5
    "#]]
    .assert_eq(&lowered);
}

#[test]
fn wrt_makes_other_floats_inactive() {
    let (_, activity, recorded) = stages(
        quote! {
            fn p(x: f64, y: f64) -> f64 { x.sin() * y.exp() }
        },
        Some(&["x"]),
    );
    expect![[r#"
        fn p(v0: f64, v1: f64) ; active v0
        block0:
            v2 = sin v0 ; active v2
            v3 = exp v1
            v4 = mul v2, v3 ; active v4
            yield v4
    "#]]
    .assert_eq(&activity);
    // only y.exp() (the other factor) and x (for cos) are saved; y itself is not
    expect![[r#"
        fn p(v0: f64, v1: f64) ; saved v0
        block0:
            v2 = sin v0 ; reversed
            v3 = exp v1 ; saved v3
            v4 = mul v2, v3 ; reversed
            yield v4
    "#]]
    .assert_eq(&recorded);
}

/// The IR of `source` straight from lowering, before any pass.
fn lowered(source: proc_macro2::TokenStream) -> ir::Function {
    let item: syn::ItemFn = syn::parse2(source).expect("valid function");
    let mut errors = Errors::default();
    let sig = args::signature(&item, &mut errors).expect("valid signature");
    lower::lower(&item, &sig, &mut errors)
        .unwrap_or_else(|| panic!("{:?}", errors.messages()))
        .func
}

#[test]
fn verifier_rejects_use_before_definition() {
    let mut func = lowered(quote! { fn f(x: f64) -> f64 { x * 2.0 } });
    assert!(ir::verify(&func).is_ok());
    let entry = func.entry;
    func.blocks[entry.index()].insts.swap(0, 1);
    let message = ir::verify(&func).unwrap_err();
    assert!(message.contains("not in scope"), "{message}");
}

/// The expansion of `#[differentiate]` on `source`, formatted.
fn expansion(source: proc_macro2::TokenStream) -> String {
    let out = crate::expand::differentiate(quote!(), source);
    let file: syn::File = syn::parse2(out).expect("generated code parses");
    prettyplease::unparse(&file)
}

#[test]
fn expansion_of_the_seed_function_is_readable() {
    let text =
        expansion(quote! { pub fn f(x1: f64, x2: f64) -> f64 { x1.ln() + x1 * x2 - x2.sin() } });
    expect![[r#"
        pub fn f(x1: f64, x2: f64) -> f64 {
            x1.ln() + x1 * x2 - x2.sin()
        }
        /// The forward values the backward pass of [`f`] reads, saved by [`f_pullback`].
        #[allow(non_camel_case_types, non_snake_case, dead_code, clippy::all)]
        pub struct FPullback {
            x1: f64,
            x2: f64,
        }
        impl FPullback {
            /// The memory these saved values occupy, in bytes: the struct itself plus
            /// the heap storage of its per-iteration stacks and saved arrays.
            #[allow(dead_code, non_snake_case, unreachable_code, unused_variables)]
            pub fn saved_bytes(&self) -> usize {
                ::core::mem::size_of::<Self>()
            }
        }
        /// Runs [`f`] and saves what its backward pass needs: returns the value and a [`FPullback`].
        #[allow(
            dead_code,
            non_snake_case,
            unreachable_code,
            unused_variables,
            unused_assignments,
            unused_mut,
            unused_parens,
            unused_braces,
            clippy::all
        )]
        #[inline]
        pub fn f_pullback(x1: f64, x2: f64) -> (f64, FPullback) {
            let _: fn(f64, f64) -> f64 = f;
            let v2 = x1.ln();
            let v3 = x1 * x2;
            let v4 = v2 + v3;
            let v5 = x2.sin();
            let v6 = v4 - v5;
            (v6, FPullback { x1, x2 })
        }
        #[doc(hidden)]
        #[allow(
            dead_code,
            non_snake_case,
            unreachable_code,
            unused_variables,
            unused_assignments,
            unused_mut,
            unused_parens,
            unused_braces,
            clippy::all
        )]
        #[inline]
        pub fn __autodiff_reusing_pullback_f<'__autodiff_slot>(
            x1: f64,
            x2: f64,
            __autodiff_previous: &'__autodiff_slot mut ::core::option::Option<FPullback>,
        ) -> (f64, &'__autodiff_slot FPullback) {
            let (value, pullback) = f_pullback(x1, x2);
            (value, __autodiff_previous.insert(pullback))
        }
        impl FPullback {
            /// The vector-Jacobian product of [`f`]: takes the cotangent of the output and returns one cotangent per active argument. It only reads the saved values, so it can be called many times.
            #[allow(
                non_snake_case,
                unreachable_code,
                unused_variables,
                unused_assignments,
                unused_mut,
                unused_parens,
                unused_braces,
                clippy::all
            )]
            #[inline]
            pub fn backward(&self, d_output: f64) -> (f64, f64) {
                #[allow(unused_imports)]
                use ::autodiff::__private::{
                    ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _,
                    ScalarCotangent as _,
                };
                let FPullback { x1, x2, .. } = self;
                let mut d_v6 = d_output;
                let mut d_v4 = ::autodiff::__private::rules::sub_d0(d_v6);
                let mut d_v5 = ::autodiff::__private::rules::sub_d1(d_v6);
                let mut d_x2 = ::autodiff::__private::rules::sin_d0(x2, d_v5);
                let mut d_v2 = ::autodiff::__private::rules::add_d0(d_v4);
                let mut d_v3 = ::autodiff::__private::rules::add_d1(d_v4);
                let mut d_x1 = ::autodiff::__private::rules::mul_d0(x2, d_v3);
                d_x2.accumulate(::autodiff::__private::rules::mul_d1(x1, d_v3));
                d_x1.accumulate(::autodiff::__private::rules::ln_d0(x1, d_v2));
                (d_x1, d_x2)
            }
        }
        /// The value of [`f`] and its gradient with respect to the active arguments.
        #[allow(
            dead_code,
            non_snake_case,
            unreachable_code,
            unused_variables,
            unused_assignments,
            unused_mut,
            unused_parens,
            unused_braces,
            clippy::all
        )]
        #[inline]
        pub fn f_grad(x1: f64, x2: f64) -> (f64, (f64, f64)) {
            #[allow(unused_imports)]
            use ::autodiff::__private::{
                ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _,
                ScalarCotangent as _,
            };
            let _: fn(f64, f64) -> f64 = f;
            let v2 = x1.ln();
            let v3 = x1 * x2;
            let v4 = v2 + v3;
            let v5 = x2.sin();
            let v6 = v4 - v5;
            let __autodiff_value = v6;
            let x1 = &x1;
            let x2 = &x2;
            let d_output: f64 = ::autodiff::__private::one();
            let mut d_v6 = d_output;
            let mut d_v4 = ::autodiff::__private::rules::sub_d0(d_v6);
            let mut d_v5 = ::autodiff::__private::rules::sub_d1(d_v6);
            let mut d_x2 = ::autodiff::__private::rules::sin_d0(x2, d_v5);
            let mut d_v2 = ::autodiff::__private::rules::add_d0(d_v4);
            let mut d_v3 = ::autodiff::__private::rules::add_d1(d_v4);
            let mut d_x1 = ::autodiff::__private::rules::mul_d0(x2, d_v3);
            d_x2.accumulate(::autodiff::__private::rules::mul_d1(x1, d_v3));
            d_x1.accumulate(::autodiff::__private::rules::ln_d0(x1, d_v2));
            (__autodiff_value, (d_x1, d_x2))
        }
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case, clippy::all)]
        #[inline]
        pub fn __autodiff_pullback_f(x1: f64, x2: f64) -> (f64, FPullback) {
            f_pullback(x1, x2)
        }
        impl FPullback {
            #[doc(hidden)]
            #[allow(dead_code, clippy::all)]
            #[inline]
            pub fn __backward_all(&self, d_output: f64) -> (f64, f64) {
                let (d0, d1) = self.backward(d_output);
                (d0, d1)
            }
            #[doc(hidden)]
            #[allow(dead_code, clippy::all)]
            #[inline]
            pub fn __backward_into<
                __S0: ::autodiff::__private::GradientSink<f64>,
                __S1: ::autodiff::__private::GradientSink<f64>,
            >(
                &self,
                d_output: f64,
                __autodiff_sink0: __S0,
                __autodiff_sink1: __S1,
            ) -> (
                <__S0 as ::autodiff::__private::GradientSink<f64>>::Out,
                <__S1 as ::autodiff::__private::GradientSink<f64>>::Out,
            ) {
                #[allow(unused_imports)]
                use ::autodiff::__private::{
                    Cotangent as _, ParameterSetCotangent as _, ScalarCotangent as _,
                };
                let (__autodiff_gradient0, __autodiff_gradient1) = self.__backward_all(d_output);
                (
                    <_ as ::autodiff::__private::GradientSink<
                        f64,
                    >>::finish(
                        __autodiff_sink0,
                        __autodiff_gradient0,
                        |target, gradient| target.accumulate(gradient),
                    ),
                    <_ as ::autodiff::__private::GradientSink<
                        f64,
                    >>::finish(
                        __autodiff_sink1,
                        __autodiff_gradient1,
                        |target, gradient| target.accumulate(gradient),
                    ),
                )
            }
        }
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case, clippy::all)]
        #[inline]
        pub fn __autodiff_zero_output_f() -> f64 {
            ::autodiff::__private::zero()
        }
    "#]].assert_eq(&text);
}

#[test]
fn errors_are_collected_not_panicked() {
    let messages = errors_of(quote!(wrt(z)), quote! { fn f(x: f64) -> f64 { x } });
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].starts_with("`wrt` names `z`"), "{messages:?}");

    let messages = errors_of(
        quote!(),
        quote! { fn f(x: f64) -> f64 { let c = |a: f64| { return a; }; c(x) } },
    );
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with("a closure bound to a variable is inlined"),
        "{messages:?}"
    );

    let messages = errors_of(quote!(), quote! { struct S; });
    assert_eq!(messages.len(), 1);
}

#[test]
fn invariant_reads_move_in_front_of_their_loop_behind_a_guard() {
    let mut func = lowered(quote! {
        fn f(a: &[f64], xc: &[f64], n: usize) -> f64 {
            let mut s = 0.0;
            for i in 0..n {
                for j in i + 1..n {
                    s += a[j] * xc[i];
                }
            }
            s
        }
    });
    crate::hoist::hoist_invariants(&mut func);
    ir::verify(&func).expect("verifies after hoisting");
    // `xc[i]` is read once per `i`, and only when `i + 1 < n`; the outer loop reads no
    // invariant element, so it stays as it was
    expect![[r#"
        fn f(v0: &[f64], v1: &[f64], v2: usize const)
        block0:
            v3 = len v0
            v4 = len v1
            v5 = const 0.0
            v6 = const 0
            v18 = for v6, v2, v5
            body
                block1(v7, v8):
                    v9 = const 1
                    v10 = add v7, v9
                    v19 = cmp.lt v10, v2
                    v20 = if v19
                    then
                        block3:
                            v14 = index v1, v7
                            v17 = for v10, v2, v8
                            body
                                block2(v11, v12):
                                    v13 = index v0, v11
                                    v15 = mul v13, v14
                                    v16 = add v12, v15
                                    yield v16
                            yield v17
                    else
                        block4:
                            yield v8
                    yield v20
            yield v18
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
}

#[test]
fn elements_of_a_filled_array_are_read_as_their_expression() {
    let mut func = lowered(quote! {
        fn f(x: &[f64], m: &[f64], n: usize) -> f64 {
            let mut xc = vec![0.0; n];
            let mut ys = vec![0.0; n];
            let mut s = 0.0;
            for k in 0..2 {
                for id in 0..n {
                    xc[id] = x[id] - m[k * n + id];
                    ys[id] = x[id].sin();
                }
                for i in 0..n {
                    s += xc[i] * ys[i];
                }
                s += xc[0];
            }
            s
        }
    });
    crate::remat::rematerialise_filled_elements(&mut func);
    ir::verify(&func).expect("verifies after rematerialising");
    // `xc[i]` becomes `x[i] - m[k n + i]`; `ys[i]` stays a read (a `sin` is not evaluated
    // again), and so does `xc[0]` (its index is no induction variable of a loop inside the
    // range)
    expect![[r#"
        fn f(v0: &[f64], v1: &[f64], v2: usize const)
        block0:
            v3 = len v0
            v4 = len v1
            v5 = const 0.0
            v6 = vec_fill v5, v2
            v7 = const 0.0
            v8 = vec_fill v7, v2
            v9 = const 0.0
            v10 = const 0
            v11 = const 2
            v41, v42, v43 = for v10, v11, v6, v8, v9
            body
                block1(v12, v13, v14, v15):
                    v16 = const 0
                    v28, v29 = for v16, v2, v13, v14
                    body
                        block2(v17, v18, v19):
                            v20 = index v0, v17
                            v21 = mul v12, v2
                            v22 = add v21, v17
                            v23 = index v1, v22
                            v24 = sub v20, v23
                            v25 = index_set v18, v17, v24
                            v26 = sin v20
                            v27 = index_set v19, v17, v26
                            yield v25, v27
                    v30 = const 0
                    v37 = for v30, v2, v15
                    body
                        block3(v31, v32):
                            v44 = index v0, v31
                            v45 = mul v12, v2
                            v46 = add v45, v31
                            v47 = index v1, v46
                            v33 = sub v44, v47
                            v34 = index v29, v31
                            v35 = mul v33, v34
                            v36 = add v32, v35
                            yield v36
                    v38 = const 0
                    v39 = index v28, v38
                    v40 = add v37, v39
                    yield v28, v29, v40
            yield v43
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
}

#[test]
fn a_kept_element_is_read_again_where_the_loop_took_it() {
    let mut func = lowered(quote! {
        fn f(v: &[f64], w: f64) -> f64 {
            let mut mx = v[0];
            for i in 1..v.len() {
                if v[i] > mx {
                    mx = v[i];
                }
            }
            let mut mn = w;
            for i in 0..=3 {
                if v[i] < mn {
                    mn = v[i];
                }
            }
            mx * mn
        }
    });
    crate::last_pick::remember_last_picks(&mut func);
    ir::verify(&func).expect("verifies after the rewrite");
    // the first loop carries where it took `v[i]` (from `v4`, its end: none yet), and the
    // product reads `v[at]`, or `v[0]` when no iteration took one; the second loop's range
    // includes its end, which could be an index: it stays as it was
    expect![[r#"
        fn f(v0: &[f64], v1: f64)
        block0:
            v2 = len v0
            v3 = const 0
            v4 = index v0, v3
            v5 = const 1
            v6 = len v0
            v13, v26 = for v5, v6, v4, v6
            body
                block1(v7, v8, v24):
                    v9 = index v0, v7
                    v10 = cmp.gt v9, v8
                    v12, v25 = if v10
                    then
                        block2:
                            v11 = index v0, v7
                            yield v11, v7
                    else
                        block3:
                            yield v8, v24
                    yield v12, v25
            v27 = cmp.lt v26, v6
            v29 = if v27
            then
                block7:
                    v28 = index v0, v26
                    yield v28
            else
                block8:
                    yield v4
            v14 = const 0
            v15 = const 3
            v22 = for.inclusive v14, v15, v1
            body
                block4(v16, v17):
                    v18 = index v0, v16
                    v19 = cmp.lt v18, v17
                    v21 = if v19
                    then
                        block5:
                            v20 = index v0, v16
                            yield v20
                    else
                        block6:
                            yield v17
                    yield v21
            v23 = mul v29, v22
            yield v23
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
}

#[test]
fn only_arrays_filled_in_full_by_unchanging_values_are_rematerialised() {
    let cases = [
        // a stepped loop fills every other element
        quote! {
            fn f(x: &[f64], n: usize) -> f64 {
                let mut a = vec![0.0; n];
                for i in (0..n).step_by(2) { a[i] = x[i] * 2.0; }
                let mut s = 0.0;
                for i in 0..n { s += a[i]; }
                s
            }
        },
        // the element is written under a condition
        quote! {
            fn f(x: &[f64], n: usize) -> f64 {
                let mut a = vec![0.0; n];
                for i in 0..n { if x[i] > 0.0 { a[i] = x[i] * 2.0; } }
                let mut s = 0.0;
                for i in 0..n { s += a[i]; }
                s
            }
        },
        // the array the expression reads changes after the filling loop
        quote! {
            fn f(x: &[f64], n: usize) -> f64 {
                let mut w = x.to_vec();
                let mut a = vec![0.0; n];
                for i in 0..n { a[i] = w[i] * 2.0; }
                w[0] = 1.0;
                let mut s = w[0];
                for i in 0..n { s += a[i]; }
                s
            }
        },
        // the reading loop runs past the filled range
        quote! {
            fn f(x: &[f64], n: usize) -> f64 {
                let mut a = vec![0.0; n + 1];
                for i in 0..n { a[i] = x[i] * 2.0; }
                let mut s = 0.0;
                for i in 0..=n { s += a[i]; }
                s
            }
        },
        // the element depends on the previous one
        quote! {
            fn f(x: &[f64], n: usize) -> f64 {
                let mut a = vec![0.0; n];
                let mut t = 0.0;
                for i in 0..n { t += x[i]; a[i] = t; }
                let mut s = 0.0;
                for i in 0..n { s += a[i]; }
                s
            }
        },
        // the array stays as filled: its elements are there for the backward pass
        quote! {
            fn f(x: &[f64], n: usize) -> f64 {
                let mut a = vec![0.0; n];
                for i in 0..n { a[i] = x[i] * 2.0; }
                let mut s = 0.0;
                for i in 0..n { s += a[i] * a[i]; }
                s
            }
        },
        // the loop may stop early
        quote! {
            fn f(x: &[f64], n: usize) -> f64 {
                let mut a = vec![0.0; n];
                for i in 0..n { if x[i] > 1.0 { break; } a[i] = x[i] * 2.0; }
                let mut s = 0.0;
                for i in 0..n { s += a[i]; }
                s
            }
        },
    ];
    for case in cases {
        let mut func = lowered(case.clone());
        let before = ir::print(&func, &Plain);
        crate::remat::rematerialise_filled_elements(&mut func);
        assert_eq!(ir::print(&func, &Plain), before, "{case}");
    }
}

#[test]
fn reading_back_the_element_just_written_is_the_written_value() {
    let (lowered, _, _) = stages(
        quote! {
            fn f(x: f64) -> f64 {
                let mut v = vec![0.0; 2];
                v[1] = x * x;
                v[1] * 3.0
            }
        },
        None,
    );
    // the product reads the square directly, with no `index` instruction
    expect![[r#"
        fn f(v0: f64)
        block0:
            v1 = const 0.0
            v2 = const 2
            v3 = vec_fill v1, v2
            v4 = mul v0, v0
            v5 = const 1
            v6 = index_set v3, v5, v4
            v7 = const 1
            v8 = const 3.0
            v9 = mul v4, v8
            yield v9
    "#]]
    .assert_eq(&lowered);
}

#[test]
fn compound_assignment_to_an_element_is_one_instruction() {
    let (lowered, _, recorded) = stages(
        quote! {
            fn f(x: &[f64]) -> f64 {
                let mut v = vec![0.0; 2];
                v[1] += x[0] * x[1];
                v[0] -= x[1];
                v[1] * v[0]
            }
        },
        None,
    );
    // no read of the old element, and nothing saved for the updates
    expect![[r#"
        fn f(v0: &[f64])
        block0:
            v1 = len v0
            v2 = const 0.0
            v3 = const 2
            v4 = vec_fill v2, v3
            v5 = const 1
            v6 = const 0
            v7 = index v0, v6
            v8 = const 1
            v9 = index v0, v8
            v10 = mul v7, v9
            v11 = index_add v4, v5, v10
            v12 = const 0
            v13 = const 1
            v14 = index v0, v13
            v15 = index_sub v11, v12, v14
            v16 = const 1
            v17 = index v15, v16
            v18 = const 0
            v19 = index v15, v18
            v20 = mul v17, v19
            yield v20
    "#]]
    .assert_eq(&lowered);
    expect![[r#"
        fn f(v0: &[f64]) ; saved v0
        block0:
            v1 = len v0 ; recomputed v1
            v2 = const 0.0
            v3 = const 2
            v4 = vec_fill v2, v3
            v5 = const 1
            v6 = const 0
            v7 = index v0, v6 ; recomputed v7; reversed
            v8 = const 1
            v9 = index v0, v8 ; recomputed v9; reversed
            v10 = mul v7, v9 ; reversed
            v11 = index_add v4, v5, v10 ; reversed
            v12 = const 0
            v13 = const 1
            v14 = index v0, v13 ; reversed
            v15 = index_sub v11, v12, v14 ; reversed
            v16 = const 1
            v17 = index v15, v16 ; saved v17; reversed
            v18 = const 0
            v19 = index v15, v18 ; saved v19; reversed
            v20 = mul v17, v19 ; reversed
            yield v20
    "#]]
    .assert_eq(&recorded);
}

#[test]
fn neighbouring_element_reads_update_the_cotangent_once_per_iteration() {
    let text = expansion(quote! {
        fn chain(x: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..x.len() - 1 {
                s += x[i] * x[i + 1];
            }
            s
        }
    });
    // the reversed loop of `backward`: `x[i]`'s contribution waits for the next reversed
    // iteration, and the first element gets the last one after the loop
    let start = text
        .find("let mut d_x_shift")
        .expect("a carried contribution");
    let end = start + text[start..].find("d_x_shift);").expect("a final update") + 11;
    expect![[r#"
        let mut d_x_shift: f64 = ::autodiff::__private::zero();
                for i in (0..(*v6)).rev() {
                    let i = &i;
                    let v9 = &((*x)[(*i)]);
                    let v11 = &((*i) + 1);
                    let v12 = &((*x)[(*v11)]);
                    let mut d_x_at_index: f64 = ::autodiff::__private::zero();
                    let mut d_x_at_next: f64 = ::autodiff::__private::zero();
                    let mut d_s_2 = d_s_3_carry;
                    let mut d_s_1 = ::autodiff::__private::rules::add_d0(d_s_2);
                    let mut d_v13 = ::autodiff::__private::rules::add_d1(d_s_2);
                    let mut d_v9 = ::autodiff::__private::rules::mul_d0(v12, d_v13);
                    let mut d_v12 = ::autodiff::__private::rules::mul_d1(v9, d_v13);
                    d_x_at_next = d_v12;
                    d_x_at_index = d_v9;
                    ::autodiff::__private::rules::index_add_in_bounds(
                        &mut d_x,
                        v11,
                        d_x_at_next + d_x_shift,
                    );
                    d_x_shift = d_x_at_index;
                    d_s_3_carry = d_s_1;
                }
                if 0 < (*v6) {
                    ::autodiff::__private::rules::index_add_in_bounds(&mut d_x, &0, d_x_shift);"#]]
    .assert_eq(&text[start..end]);
}

#[test]
fn records_of_element_reads_are_pushed_after_their_loop() {
    let text = expansion(quote! {
        fn norms(x: &[f64], n: usize) -> f64 {
            let mut q = vec![0.0; n];
            let mut total = 0.0;
            for k in 0..3 {
                for i in 0..n {
                    q[i] = (x[i] * x[k]).sin();
                }
                let mut sq = 0.0;
                for i in 0..n {
                    sq += q[i] * q[i];
                }
                total += sq.sqrt();
            }
            total
        }
    });
    // `q[i]` is saved (a `sin` is not evaluated again in place of the read), but `q` does not
    // change in the loop: one `extend` after it
    let start = text.find("let mut sq_3").expect("the squared norm");
    let extend = start + text[start..].find(".extend(").expect("one extend");
    let end = extend + text[extend..].find(");").expect("its end") + 2;
    expect![[r#"
        let mut sq_3: f64 = 0.0;
                let range18 = (0..n);
                for i_1 in range18 {
                    let sq_1 = sq_3;
                    let v24 = q_6[i_1];
                    let v25 = v24 * v24;
                    let sq_2 = sq_1 + v25;
                    sq_3 = sq_2;
                }
                loop1_stack
                    .extend(
                        (0..n)
                            .map(|i_1| {
                                let v24 = q_6[i_1];
                                NormsLoop1 { v24 }
                            }),
                    );"#]]
    .assert_eq(&text[start..end]);
}

#[test]
fn grad_runs_a_sum_loop_in_one_sweep() {
    let text = expansion(quote! {
        fn total(x: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..x.len() {
                s += x[i].sin();
            }
            s
        }
    });
    // each iteration's backward statements follow its forward ones; the sum's cotangent is
    // the output's throughout
    let start = text.find("fn total_grad").expect("a _grad");
    let end = start + text[start..].find("\n}\n").expect("its end") + 2;
    expect![[r#"
        fn total_grad(x: &[f64]) -> (f64, ::std::vec::Vec<f64>) {
            #[allow(unused_imports)]
            use ::autodiff::__private::{
                ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _,
                ScalarCotangent as _,
            };
            let _: fn(&[f64]) -> f64 = total;
            let x_len = x.len();
            let v4 = x.len();
            let d_output: f64 = ::autodiff::__private::one();
            let (mut d_x,) = {
                let x_len = &x_len;
                let mut d_x: ::std::vec::Vec<f64> = ::std::vec![
                    ::autodiff::__private::zero(); * x_len
                ];
                (d_x,)
            };
            let mut s_3: f64 = 0.0;
            let d_s_3_carry = d_output;
            for i in (0..v4) {
                let s_1 = s_3;
                let v7 = x[i];
                let v8 = v7.sin();
                let s_2 = s_1 + v8;
                s_3 = s_2;
                {
                    let i = &i;
                    let x = &*x;
                    let v7 = &((*x)[(*i)]);
                    let mut d_s_2 = d_s_3_carry;
                    let mut d_s_1 = ::autodiff::__private::rules::add_d0(d_s_2);
                    let mut d_v8 = ::autodiff::__private::rules::add_d1(d_s_2);
                    let mut d_v7 = ::autodiff::__private::rules::sin_d0(v7, d_v8);
                    ::autodiff::__private::rules::index_add_in_bounds(&mut d_x, i, d_v7);
                }
            }
            let __autodiff_value = s_3;
            let x = &*x;
            let d_output: f64 = ::autodiff::__private::one();
            let x_len = &((*x).len());
            let v4 = &((*x).len());
            let mut d_s_3 = d_output;
            (__autodiff_value, ::autodiff::__private::rules::fit(d_x, x_len))
        }"#]]
    .assert_eq(&text[start..end]);
}

#[test]
fn grad_runs_a_loop_over_a_scratch_buffer_eagerly() {
    let text = expansion(quote! {
        fn smooth(x: &[f64], w: f64) -> f64 {
            let mut buffer = vec![0.0; 2];
            let mut s = 0.0;
            for i in 0..x.len() {
                buffer[0] = x[i] * w;
                buffer[1] = buffer[0].sin();
                s += buffer[1] * buffer[0];
            }
            s * s
        }
    });
    // each iteration's backward statements follow its forward ones for a seed of one; the
    // buffer's cotangent into the previous iteration is checked to be zero; the backward pass
    // scales the gradient by the sum's cotangent
    let start = text.find("fn smooth_grad").expect("a _grad");
    let end = start + text[start..].find("\n}\n").expect("its end") + 2;
    expect![[r#"
        fn smooth_grad(x: &[f64], w: f64) -> (f64, (::std::vec::Vec<f64>, f64)) {
            #[allow(unused_imports)]
            use ::autodiff::__private::{
                ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _,
                ScalarCotangent as _,
            };
            let _: fn(&[f64], f64) -> f64 = smooth;
            let x_len = x.len();
            let buffer = ::std::vec![0.0; 2];
            let v8 = x.len();
            let mut buffer_4: ::std::vec::Vec<f64> = buffer;
            let mut s_3: f64 = 0.0;
            let loop20_gradient = {
                let (mut d_x, mut d_w) = {
                    let x_len = &x_len;
                    let mut d_x: ::std::vec::Vec<f64> = ::std::vec![
                        ::autodiff::__private::zero(); * x_len
                    ];
                    let mut d_w: f64 = ::autodiff::__private::zero();
                    (d_x, d_w)
                };
                let mut d_buffer_4_carry: ::std::vec::Vec<f64> = ::std::vec![
                    ::autodiff::__private::zero(); 2
                ];
                let mut d_s_3_carry: f64 = ::autodiff::__private::one_like(&s_3);
                let mut loop20_later = false;
                for i in (0..v8) {
                    let buffer_1 = buffer_4;
                    let s_1 = s_3;
                    let v12 = x[i];
                    let v13 = v12 * w;
                    let mut buffer_2 = buffer_1;
                    buffer_2[0] = v13;
                    let v17 = v13.sin();
                    let mut buffer_3 = buffer_2;
                    buffer_3[1] = v17;
                    let v22 = buffer_3[0];
                    let v23 = v17 * v22;
                    let s_2 = s_1 + v23;
                    buffer_4 = buffer_3;
                    s_3 = s_2;
                    let record20: SmoothLoop0 = SmoothLoop0 { v17, v22 };
                    let crossed = {
                        let i = &i;
                        let x = &*x;
                        let w = &w;
                        let x_len = &x_len;
                        let SmoothLoop0 { v17, v22, .. } = &record20;
                        let v12 = &((*x)[(*i)]);
                        let v13 = &((*v12) * (*w));
                        let mut d_buffer_3 = d_buffer_4_carry;
                        let mut d_s_2 = d_s_3_carry;
                        let mut d_s_1 = ::autodiff::__private::rules::add_d0(d_s_2);
                        let mut d_v23 = ::autodiff::__private::rules::add_d1(d_s_2);
                        let mut d_v17 = ::autodiff::__private::rules::mul_d0(v22, d_v23);
                        let mut d_v22 = ::autodiff::__private::rules::mul_d1(v17, d_v23);
                        ::autodiff::__private::rules::index_add_in_bounds(
                            &mut d_buffer_3,
                            &0,
                            d_v22,
                        );
                        d_v17
                            .accumulate(
                                ::autodiff::__private::rules::index_take_in_bounds(
                                    &mut d_buffer_3,
                                    &1,
                                ),
                            );
                        let mut d_buffer_2 = d_buffer_3;
                        let mut d_v13 = ::autodiff::__private::rules::sin_d0(v13, d_v17);
                        d_v13
                            .accumulate(
                                ::autodiff::__private::rules::index_take_in_bounds(
                                    &mut d_buffer_2,
                                    &0,
                                ),
                            );
                        let mut d_buffer_1 = d_buffer_2;
                        let mut d_v12 = ::autodiff::__private::rules::mul_d0(w, d_v13);
                        d_w.accumulate(::autodiff::__private::rules::mul_d1(v12, d_v13));
                        ::autodiff::__private::rules::index_add_in_bounds(&mut d_x, i, d_v12);
                        d_buffer_4_carry = d_buffer_1;
                        d_s_3_carry = d_s_1;
                        !::autodiff::__private::all_zero(&d_buffer_4_carry)
                    };
                    if crossed {
                        if loop20_later {
                            let (value, pullback) = smooth_pullback(x, w);
                            return (value, pullback.backward(::autodiff::__private::one()));
                        }
                        d_buffer_4_carry = ::std::vec![::autodiff::__private::zero(); 2];
                    }
                    loop20_later = true;
                }
                (d_x, d_w)
            };
            let v27 = s_3 * s_3;
            let __autodiff_value = ::core::hint::black_box(v27);
            let x = &*x;
            let w = &w;
            let s_3 = &s_3;
            let d_output: f64 = ::autodiff::__private::one();
            let x_len = &((*x).len());
            let v8 = &((*x).len());
            let mut d_v27 = d_output;
            let mut d_s_3 = ::autodiff::__private::rules::mul_d0(s_3, d_v27);
            d_s_3.accumulate(::autodiff::__private::rules::mul_d1(s_3, d_v27));
            let (d_x_loop20, d_w_loop20) = loop20_gradient;
            let mut d_x = ::autodiff::__private::scale_elements(d_x_loop20, d_s_3);
            let mut d_w = (d_w_loop20 * d_s_3);
            (__autodiff_value, (::autodiff::__private::rules::fit(d_x, x_len), d_w))
        }"#]]
    .assert_eq(&text[start..end]);
}

#[test]
fn sine_and_cosine_of_one_angle_read_each_other() {
    let text = expansion(quote! {
        fn rotated(x: f64, y: f64, t: f64) -> f64 {
            let (c, s) = (t.cos(), t.sin());
            x * c - y * s
        }
    });
    // `cos t` and `sin t` are saved (the products read them), and their pullbacks read each
    // other instead of evaluating `sin t` and `cos t` again
    let start = text.find("fn backward(").expect("a backward");
    let end = start + text[start..].find("\n    }\n").expect("its end") + 6;
    expect![[r#"
        fn backward(&self, d_output: f64) -> (f64, f64, f64) {
                #[allow(unused_imports)]
                use ::autodiff::__private::{
                    ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _,
                    ScalarCotangent as _,
                };
                let RotatedPullback { x, y, c, s, .. } = self;
                let mut d_v7 = d_output;
                let mut d_v5 = ::autodiff::__private::rules::sub_d0(d_v7);
                let mut d_v6 = ::autodiff::__private::rules::sub_d1(d_v7);
                let mut d_y = ::autodiff::__private::rules::mul_d0(s, d_v6);
                let mut d_s = ::autodiff::__private::rules::mul_d1(y, d_v6);
                let mut d_x = ::autodiff::__private::rules::mul_d0(c, d_v5);
                let mut d_c = ::autodiff::__private::rules::mul_d1(x, d_v5);
                let mut d_t = ::autodiff::__private::rules::sin_d0_with_cos(c, d_s);
                d_t.accumulate(::autodiff::__private::rules::cos_d0_with_sin(s, d_c));
                (d_x, d_y, d_t)
            }"#]]
    .assert_eq(&text[start..end]);
}

#[test]
fn a_callee_adds_its_vector_gradient_into_the_callers_cotangent() {
    let callee = expansion(quote! {
        fn total(v: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..v.len() {
                s += v[i] * v[i];
            }
            s
        }
    });
    // the body accumulates in the buffer its sink gives, which `backward` asks to return
    let start = callee.find("fn backward(").expect("backward");
    let end = start + callee[start..].find("let mut d_s_3").expect("its body");
    expect![[r#"
        fn backward(&self, d_output: f64) -> ::std::vec::Vec<f64> {
                {
                    let (__autodiff_gradient0,) = self
                        .__backward_into(d_output, ::autodiff::__private::ReturnGradient);
                    __autodiff_gradient0
                }
            }
            #[doc(hidden)]
            #[allow(
                non_snake_case,
                unreachable_code,
                unused_variables,
                unused_assignments,
                unused_mut,
                unused_parens,
                unused_braces,
                clippy::all
            )]
            #[inline]
            fn __backward_into<__S0: ::autodiff::__private::GradientSink<::std::vec::Vec<f64>>>(
                &self,
                d_output: f64,
                mut __autodiff_sink0: __S0,
            ) -> (<__S0 as ::autodiff::__private::GradientSink<::std::vec::Vec<f64>>>::Out,) {
                #[allow(unused_imports)]
                use ::autodiff::__private::{
                    ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _,
                    ScalarCotangent as _,
                };
                let TotalPullback { v, .. } = self;
                let v_len = &((*v).len());
                let v4 = &((*v).len());
                let mut d_v = ::autodiff::__private::gradient_buffer(
                    &mut __autodiff_sink0,
                    *v_len,
                );"#]]
    .assert_eq(callee[start..end].trim_end());
    let caller = expansion(quote! {
        fn caller(x: &[f64]) -> f64 {
            let mut v = vec![0.0; 3];
            let mut t = 0.0;
            for k in 0..x.len() {
                v[k % 3] = x[k];
                t += total(&v) * v[0];
            }
            t
        }
    });
    // `&v` is passed nowhere else: its gradient goes into `v`'s cotangent directly
    let call = caller.find(", &mut d_").expect("a call into the cotangent");
    let start = caller[..call].rfind("let (").expect("its results");
    let end = call + caller[call..].find(';').expect("its end") + 1;
    expect!["let (call12_d0,) = call12.__backward_into(d_v16, &mut d_v_2);"]
        .assert_eq(&caller[start..end]);
}

/// The `jacobian` method of the expansion of `source`.
fn jacobian_of(source: proc_macro2::TokenStream) -> String {
    let text = expansion(source);
    let start = text.find("fn jacobian").expect("a jacobian");
    let end = start + text[start..].find("\n    }\n").expect("its end") + 6;
    text[start..end].to_string()
}

#[test]
fn jacobian_interleaves_the_rows_backward_passes() {
    let text = jacobian_of(quote! {
        fn polar(r: f64, t: f64) -> [f64; 2] {
            let c = t.cos();
            if r > 1.0 { [r * c, r / c] } else { [c, r] }
        }
    });
    expect![[r#"
        fn jacobian(&self) -> [(f64, f64); 2usize] {
                let d_output_lane0: [f64; 2] = {
                    let mut seed: [f64; 2] = [::autodiff::__private::zero(); 2usize];
                    seed[0usize] = ::autodiff::__private::one();
                    seed
                };
                let d_output_lane1: [f64; 2] = {
                    let mut seed: [f64; 2] = [::autodiff::__private::zero(); 2usize];
                    seed[1usize] = ::autodiff::__private::one();
                    seed
                };
                #[allow(unused_imports)]
                use ::autodiff::__private::{
                    ConstantCotangent as _, Cotangent as _, ParameterSetCotangent as _,
                    ScalarCotangent as _,
                };
                let PolarPullback { r, t, c, branch0, .. } = self;
                let mut d_v9_lane0 = d_output_lane0;
                let mut d_v9_lane1 = d_output_lane1;
                let mut d_r_lane0: f64 = ::autodiff::__private::zero();
                let mut d_r_lane1: f64 = ::autodiff::__private::zero();
                let mut d_c_lane0: f64 = ::autodiff::__private::zero();
                let mut d_c_lane1: f64 = ::autodiff::__private::zero();
                match branch0 {
                    PolarBranch0::Then { .. } => {
                        let v6 = &((*r) / (*c));
                        let mut d_v7_lane0 = d_v9_lane0;
                        let mut d_v7_lane1 = d_v9_lane1;
                        let mut d_v5_lane0 = ::autodiff::__private::rules::element(
                            &d_v7_lane0,
                            0usize,
                        );
                        let mut d_v5_lane1 = ::autodiff::__private::rules::element(
                            &d_v7_lane1,
                            0usize,
                        );
                        let mut d_v6_lane0 = ::autodiff::__private::rules::element(
                            &d_v7_lane0,
                            1usize,
                        );
                        let mut d_v6_lane1 = ::autodiff::__private::rules::element(
                            &d_v7_lane1,
                            1usize,
                        );
                        d_r_lane0
                            .accumulate(::autodiff::__private::rules::div_d0(c, d_v6_lane0));
                        d_r_lane1
                            .accumulate(::autodiff::__private::rules::div_d0(c, d_v6_lane1));
                        d_c_lane0
                            .accumulate(::autodiff::__private::rules::div_d1(c, v6, d_v6_lane0));
                        d_c_lane1
                            .accumulate(::autodiff::__private::rules::div_d1(c, v6, d_v6_lane1));
                        d_r_lane0
                            .accumulate(::autodiff::__private::rules::mul_d0(c, d_v5_lane0));
                        d_r_lane1
                            .accumulate(::autodiff::__private::rules::mul_d0(c, d_v5_lane1));
                        d_c_lane0
                            .accumulate(::autodiff::__private::rules::mul_d1(r, d_v5_lane0));
                        d_c_lane1
                            .accumulate(::autodiff::__private::rules::mul_d1(r, d_v5_lane1));
                    }
                    PolarBranch0::Else { .. } => {
                        let mut d_v8_lane0 = d_v9_lane0;
                        let mut d_v8_lane1 = d_v9_lane1;
                        d_c_lane0
                            .accumulate(
                                ::autodiff::__private::rules::element(&d_v8_lane0, 0usize),
                            );
                        d_c_lane1
                            .accumulate(
                                ::autodiff::__private::rules::element(&d_v8_lane1, 0usize),
                            );
                        d_r_lane0
                            .accumulate(
                                ::autodiff::__private::rules::element(&d_v8_lane0, 1usize),
                            );
                        d_r_lane1
                            .accumulate(
                                ::autodiff::__private::rules::element(&d_v8_lane1, 1usize),
                            );
                    }
                }
                let mut d_t_lane0 = ::autodiff::__private::rules::cos_d0(t, d_c_lane0);
                let mut d_t_lane1 = ::autodiff::__private::rules::cos_d0(t, d_c_lane1);
                [(d_r_lane0, d_t_lane0), (d_r_lane1, d_t_lane1)]
            }"#]]
    .assert_eq(&text);
}

#[test]
fn jacobian_of_a_function_with_loops_calls_backward_per_row() {
    let text = jacobian_of(quote! {
        fn running(x: &[f64; 2]) -> [f64; 2] {
            let mut out = [0.0; 2];
            let mut s = 0.0;
            for i in 0..2 {
                s += x[i].sin();
                out[i] = s;
            }
            out
        }
    });
    expect![[r#"
        fn jacobian(&self) -> [[f64; 2]; 2usize] {
                [
                    self
                        .backward({
                            let mut seed: [f64; 2] = [::autodiff::__private::zero(); 2usize];
                            seed[0usize] = ::autodiff::__private::one();
                            seed
                        }),
                    self
                        .backward({
                            let mut seed: [f64; 2] = [::autodiff::__private::zero(); 2usize];
                            seed[1usize] = ::autodiff::__private::one();
                            seed
                        }),
                ]
            }"#]]
    .assert_eq(&text);
    // `jacobian` for a fixed-length array of literal length, a tuple of scalars and a `Vec`
    // (`Vec` rows, one per element of the output, the output's saved length read)
    let pair = expansion(quote!(
        fn f(x: f64) -> (f64, f64) {
            (x, x)
        }
    ));
    assert!(pair.contains("fn jacobian"));
    let vector = expansion(quote!(
        fn f(x: &[f64]) -> Vec<f64> {
            x.to_vec()
        }
    ));
    assert!(
        vector.contains("fn jacobian(&self) -> ::std::vec::Vec<::std::vec::Vec<f64>>"),
        "{vector}"
    );
    for source in [
        quote!(
            fn f(x: f64) -> f64 {
                x
            }
        ),
        quote!(
            fn f(x: f64) -> (f64, [f64; 2]) {
                (x, [x, x])
            }
        ),
        quote!(
            fn f(x: f64) -> [f64; 9] {
                [x; 9]
            }
        ),
    ] {
        assert!(!expansion(source).contains("fn jacobian"));
    }
}

#[test]
fn arrays_the_forward_pass_only_borrows_are_saved_without_a_copy() {
    let text = expansion(quote! {
        fn f(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
            let h = a.tanh();
            let y = h * b + a;
            let z = y.sigmoid() * y;
            z.sum()
        }
    });
    // every intermediate is read by the backward pass: moved into the pullback at the end,
    // the operators that took them by value now borrowing them
    for name in ["h", "v3", "y", "v5", "z"] {
        assert!(
            !text.contains(&format!("Save::save(&{name})")),
            "{name}: {text}"
        );
    }
    assert!(text.contains("let z = &v5 * &y;"), "{text}");
    assert!(text.contains("let y = &y;"), "{text}");
    // moved on in a branch's arm: copied where it is made, as before
    let text = expansion(quote! {
        fn f(a: &Tensor<f64>, b: &Tensor<f64>, flip: bool) -> f64 {
            let h = a.tanh();
            let y = if flip { h * b } else { b * 2.0 };
            y.sum()
        }
    });
    assert!(
        text.contains("let h_saved = ::autodiff::__private::Save::save(&h);"),
        "{text}"
    );
    // passed by value to a call: copied too
    let text = expansion(quote! {
        fn f(a: &Tensor<f64>) -> f64 {
            let h = a.tanh();
            g(h)
        }
    });
    assert!(
        text.contains("let h_saved = ::autodiff::__private::Save::save(&h);"),
        "{text}"
    );
}

#[test]
fn a_map_whose_closure_keeps_only_its_result_keeps_no_pullback_per_element() {
    // `tanh` keeps its result: rebuilt from the map's result, nothing pushed per element
    let text = expansion(quote! {
        fn f(m: &DMatrix<f64>) -> f64 {
            let h: DMatrix<f64> = m.map(|v| v.tanh());
            h.sum()
        }
    });
    assert!(!text.contains("map0_pullbacks"), "{text}");
    assert!(text.contains("(h).as_slice()"), "{text}");
    assert!(
        text.contains("AutodiffMapF0Pullback {") && text.contains("v1: result,"),
        "{text}"
    );
    // a branch keeps a record: one pullback per element, as before
    let text = expansion(quote! {
        fn f(m: &DMatrix<f64>) -> f64 {
            let h: DMatrix<f64> = m.map(|v| if v > 0.0 { v } else { 0.1 * v });
            h.sum()
        }
    });
    assert!(text.contains("map0_pullbacks.push(pullback)"), "{text}");
}

#[test]
fn assertions_are_instructions_without_results_or_derivatives() {
    check(
        quote! {
            fn f(x: f64, n: usize) -> f64 {
                assert!(x > 0.0, "x = {x}, n = {}", n);
                x.sqrt()
            }
        },
        expect![[r#"
            fn f(v0: f64, v1: usize const)
            block0:
                v2 = const 0.0
                v3 = cmp.gt v0, v2
                assert! v3, v1, v0
                v4 = sqrt v0
                yield v4
        "#]],
        expect![[r#"
            fn f(v0: f64, v1: usize const) ; active v0
            block0:
                v2 = const 0.0
                v3 = cmp.gt v0, v2
                assert! v3, v1, v0
                v4 = sqrt v0 ; active v4
                yield v4
        "#]],
        expect![[r#"
            fn f(v0: f64, v1: usize const) ; saved 
            block0:
                v2 = const 0.0
                v3 = cmp.gt v0, v2
                assert! v3, v1, v0
                v4 = sqrt v0 ; saved v4; reversed
                yield v4
        "#]],
    );
    let code = expansion(quote! {
        fn f(x: f64, n: usize) -> f64 {
            assert!(x > 0.0, "x = {x}, n = {}", n);
            x.sqrt()
        }
    });
    assert!(
        code.contains(r#"assert!(v3, "x = {x}, n = {}", n, x = x);"#),
        "{code}"
    );
}

#[test]
fn closures_bound_by_let_are_inlined_where_called() {
    let func = lowered(quote! {
        fn f(x: f64, y: f64) -> f64 {
            let scale = y;
            let weigh = |v: f64| v * scale;
            let y = 3.0;
            weigh(x) + weigh(y)
        }
    });
    ir::verify(&func).expect("verifies");
    // one multiplication per call, each by `scale` as it was defined (the parameter `y`)
    expect![[r#"
        fn f(v0: f64, v1: f64)
        block0:
            v2 = const 3.0
            v3 = mul v0, v1
            v4 = mul v2, v1
            v5 = add v3, v4
            yield v5
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
}

#[test]
fn tensors_read_only_for_their_shape_keep_their_dimensions() {
    let code = expansion(quote! {
        fn f(w: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
            let h = w.tanh();
            let z = &h.matmul(w) + b;
            z.mean() + z.tanh().sum()
        }
    });
    // `z` is read by `mean`'s rule and by the bias add's only for the shape; `b` by the add's
    let shapes = code.matches("ShapeOf::shape_of(").count();
    assert!(shapes >= 2, "{code}");
    assert!(
        code.contains("z_saved = ::autodiff::__private::ShapeOf::shape_of(&z)"),
        "{code}"
    );
    assert!(code.contains("z: ::std::vec::Vec<usize>"), "{code}");
    // `h` is read by the product's rule in full, so it is kept as it is
    assert!(!code.contains("ShapeOf::shape_of(&h)"), "{code}");
}

#[test]
fn arrays_a_loop_body_only_borrows_move_into_its_record() {
    let code = expansion(quote! {
        fn f(x: &Tensor<f64>, w: &Tensor<f64>) -> f64 {
            let mut h = x.tanh();
            for _ in 0..3 {
                let z = h.matmul(w);
                h = z.tanh();
            }
            h.sum()
        }
    });
    // the carried state is only borrowed by the product: moved into the record, not copied;
    // the state passed on (`tanh`'s result, which the carrier takes) is copied
    assert!(!code.contains("h_1_saved"), "{code}");
    assert!(code.contains("push(FLoop0 { h_1, h_2: h_2_saved"), "{code}");
    assert!(code.contains("Save::save(&h_2)"), "{code}");
}

#[test]
fn cotangents_are_lent_to_rules_that_only_read_them() {
    let code = expansion(quote! {
        fn f(x: &Tensor<f64>, w: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
            x.linear(w, b).tanh().sum()
        }
    });
    // the input's and the weight's rules borrow the layer's cotangent; the bias's consumes it
    assert!(code.contains("linear_d0(w, &d_"), "{code}");
    assert!(code.contains("linear_d1(x, &d_"), "{code}");
    assert!(!code.contains("Clone::clone(&d_"), "{code}");
}

#[test]
fn a_sum_of_two_differentiated_tensors_takes_both_cotangents_from_one_rule() {
    let code = expansion(quote! {
        fn f(x: &Tensor<f64>, w: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
            let z = &x.matmul(w) + b;
            (&z.tanh() - &z).sum()
        }
    });
    assert!(code.contains("rules::tensor::add_d01("), "{code}");
    assert!(code.contains("rules::tensor::sub_d01("), "{code}");
    assert!(!code.contains("rules::tensor::add_d0("), "{code}");
}

#[test]
fn a_state_passed_on_is_read_from_the_next_record() {
    let code = expansion(quote! {
        fn f(x: &Tensor<f64>, w: &Tensor<f64>) -> f64 {
            let mut h = x.tanh();
            for _ in 0..3 {
                let z = h.matmul(w);
                h = z.tanh();
            }
            h.matmul(w).sum()
        }
    });
    // `tanh`'s result is not copied into the record: the next record's `h_1`, or the final
    // state, holds it
    assert!(!code.contains("h_2_saved"), "{code}");
    assert!(code.contains("let h_2 = h_2_from_next_record;"), "{code}");
    assert!(code.contains("h_2_from_next_record = h_1;"), "{code}");
}

#[test]
fn a_loop_carrying_numbers_returns_its_records_to_an_extend() {
    let code = expansion(quote! {
        fn f(v: &[f64], n: usize) -> f64 {
            let mut s = 0.0;
            for i in 0..v.len() {
                s += (v[i] * s).exp();
            }
            let mut w = vec![0.0; n];
            for i in 0..n {
                if v[i] > s {
                    w[i] = v[i] * s;
                }
            }
            w[0] * s
        }
    });
    // `s` is a number: the loop is the closure of an `extend`, whose length stays local
    assert!(code.contains(".map(|i| {"), "{code}");
    assert!(!code.contains("for i in range"), "{code}");
    // `w` is carried by the second loop (which records its branches): a closure could not move
    // it in and out, so it pushes
    assert!(code.contains("for i_1 in range"), "{code}");
    assert!(code.contains(".push("), "{code}");
}

#[test]
fn a_diverging_arm_yields_the_results_of_its_panic() {
    let func = lowered(quote! {
        fn f(x: f64) -> f64 {
            if x < 0.0 {
                panic!("negative {x}");
            }
            let (a, b) = match x as usize {
                0 => (x, 1.0),
                1 => (2.0, x),
                _ => unreachable!(),
            };
            let c;
            if a > b {
                c = a;
            } else {
                todo!()
            }
            c * b
        }
    });
    ir::verify(&func).expect("verifies");
    // the guard's arm yields nothing; the catch-all yields two results of its `unreachable!`,
    // and the arm of `todo!` one for `c`, which only the other arm assigns
    expect![[r#"
        fn f(v0: f64)
        block0:
            v1 = const 0.0
            v2 = cmp.lt v0, v1
            if v2
            then
                block1:
                    panic! v0
                    yield 
            else
                block2:
                    yield 
            v3 = cast.usize v0
            v8, v9 = match v3
            arm 0
                block3:
                    v4 = const 1.0
                    yield v0, v4
            arm 1
                block4:
                    v5 = const 2.0
                    yield v5, v0
            arm _
                block5:
                    v6, v7 = unreachable!
                    yield v6, v7
            v10 = cmp.gt v8, v9
            v12 = if v10
            then
                block6:
                    yield v8
            else
                block7:
                    v11 = todo!
                    yield v11
            v13 = mul v12, v9
            yield v13
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
}

#[test]
fn a_match_with_guards_runs_on_the_position_of_the_arm_taken() {
    let func = lowered(quote! {
        fn f(x: f64, n: usize) -> f64 {
            match n {
                0 => x,
                k if k > 2 => x * x,
                _ => x.sin(),
            }
        }
    });
    ir::verify(&func).expect("verifies");
    // the first pattern by a match of its own, the guard only when it is reached, the
    // catch-all last without a test; then the match on the position, the binder `k` the
    // scrutinee in its arm
    expect![[r#"
        fn f(v0: f64, v1: usize const)
        block0:
            v4 = match v1
            arm 0
                block1:
                    v2 = const true
                    yield v2
            arm _
                block2:
                    v3 = const false
                    yield v3
            v11 = if v4
            then
                block3:
                    v5 = const 0usize
                    yield v5
            else
                block4:
                    v6 = const 2
                    v7 = cmp.gt v1, v6
                    v10 = if v7
                    then
                        block5:
                            v8 = const 1usize
                            yield v8
                    else
                        block6:
                            v9 = const 2usize
                            yield v9
                    yield v10
            v14 = match v11
            arm 0usize
                block7:
                    yield v0
            arm 1usize
                block8:
                    v12 = mul v0, v0
                    yield v12
            arm _
                block9:
                    v13 = sin v0
                    yield v13
            yield v14
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
}

#[test]
fn use_items_at_the_top_of_the_body_are_repeated_in_every_generated_function() {
    let text = expansion(quote! {
        fn f(x: f64) -> f64 {
            use std::f64::consts::PI;
            (x * PI).sin()
        }
    });
    // the function as written, `f_pullback`, the reusing pullback, `backward`, `f_grad`
    let uses = text.matches("use std::f64::consts::PI;").count();
    assert!(uses >= 5, "{uses}: {text}");
    assert!(
        text.contains("#[allow(unused_imports)]\n        use std::f64::consts::PI;"),
        "{text}"
    );
}

#[test]
fn methods_become_free_functions_with_forwarding_methods() {
    let out = crate::expand::differentiate(
        quote!(),
        quote! {
            impl Scale {
                #[differentiate]
                pub fn apply(&self, x: f64) -> f64 { self.k * Self::square(x) + self.shift }
                #[differentiate]
                fn square(x: f64) -> f64 { x * x }
                fn offset(&self, x: f64) -> f64 { x }
            }
        },
    );
    let file: syn::File = syn::parse2(out).expect("generated code parses");
    // the block as written (marks removed), the free functions, the forwarding methods
    let shown: Vec<syn::Item> = file
        .items
        .into_iter()
        .filter(|item| match item {
            syn::Item::Impl(block) => {
                let ty = &block.self_ty;
                quote!(#ty).to_string() == "Scale"
            }
            syn::Item::Fn(f) => {
                ["scale_apply", "scale_square"].contains(&f.sig.ident.to_string().as_str())
            }
            _ => false,
        })
        .collect();
    let text = prettyplease::unparse(&syn::File {
        shebang: None,
        attrs: Vec::new(),
        items: shown,
    });
    expect![[r#"
        impl Scale {
            pub fn apply(&self, x: f64) -> f64 {
                self.k * Self::square(x) + self.shift
            }
            fn square(x: f64) -> f64 {
                x * x
            }
            fn offset(&self, x: f64) -> f64 {
                x
            }
        }
        #[doc(hidden)]
        #[allow(unused)]
        pub fn scale_apply(self_: &Scale, x: f64) -> f64 {
            self_.k * scale_square(x) + self_.shift
        }
        #[doc(hidden)]
        #[allow(unused)]
        fn scale_square(x: f64) -> f64 {
            x * x
        }
        impl Scale {
            /// Runs the forward pass of [`Self::apply`]: its value and the values its backward pass needs (generated by `#[differentiate]`).
            #[inline]
            #[allow(dead_code, clippy::type_complexity)]
            pub fn apply_pullback(&self, x: f64) -> (f64, ScaleApplyPullback) {
                let _ = Self::apply;
                scale_apply_pullback(self, x)
            }
            /// The value of [`Self::apply`] and its gradient: one cotangent per active argument, `self` first (generated by `#[differentiate]`).
            #[inline]
            #[allow(dead_code, clippy::type_complexity)]
            pub fn apply_grad(&self, x: f64) -> (f64, (Scale, f64)) {
                let _ = Self::apply;
                scale_apply_grad(self, x)
            }
            #[doc(hidden)]
            #[inline]
            #[allow(dead_code, non_snake_case, clippy::all)]
            pub fn __autodiff_pullback_apply(&self, x: f64) -> (f64, ScaleApplyPullback) {
                __autodiff_pullback_scale_apply(self, x)
            }
            #[doc(hidden)]
            #[inline]
            #[allow(dead_code, non_snake_case, clippy::all)]
            pub fn __autodiff_reusing_pullback_apply<'__autodiff_slot>(
                &self,
                x: f64,
                __autodiff_previous: &'__autodiff_slot mut ::core::option::Option<
                    ScaleApplyPullback,
                >,
            ) -> (f64, &'__autodiff_slot ScaleApplyPullback) {
                __autodiff_reusing_pullback_scale_apply(self, x, __autodiff_previous)
            }
            #[doc(hidden)]
            #[inline]
            #[allow(dead_code, non_snake_case, clippy::all)]
            pub fn __autodiff_zero_output_apply() -> f64 {
                __autodiff_zero_output_scale_apply()
            }
            /// Runs the forward pass of [`Self::square`]: its value and the values its backward pass needs (generated by `#[differentiate]`).
            #[inline]
            #[allow(dead_code, clippy::type_complexity)]
            fn square_pullback(x: f64) -> (f64, ScaleSquarePullback) {
                let _ = Self::square;
                scale_square_pullback(x)
            }
            /// The value of [`Self::square`] and its gradient: one cotangent per active argument (generated by `#[differentiate]`).
            #[inline]
            #[allow(dead_code, clippy::type_complexity)]
            fn square_grad(x: f64) -> (f64, f64) {
                let _ = Self::square;
                scale_square_grad(x)
            }
            #[doc(hidden)]
            #[inline]
            #[allow(dead_code, non_snake_case, clippy::all)]
            fn __autodiff_pullback_square(x: f64) -> (f64, ScaleSquarePullback) {
                __autodiff_pullback_scale_square(x)
            }
            #[doc(hidden)]
            #[inline]
            #[allow(dead_code, non_snake_case, clippy::all)]
            fn __autodiff_reusing_pullback_square<'__autodiff_slot>(
                x: f64,
                __autodiff_previous: &'__autodiff_slot mut ::core::option::Option<
                    ScaleSquarePullback,
                >,
            ) -> (f64, &'__autodiff_slot ScaleSquarePullback) {
                __autodiff_reusing_pullback_scale_square(x, __autodiff_previous)
            }
            #[doc(hidden)]
            #[inline]
            #[allow(dead_code, non_snake_case, clippy::all)]
            fn __autodiff_zero_output_square() -> f64 {
                __autodiff_zero_output_scale_square()
            }
        }
    "#]]
    .assert_eq(&text);
}

#[test]
fn a_struct_output_is_its_fields_values_in_the_order_of_their_names() {
    let source = quote! {
        fn step(x: f64, dt: f64) -> State {
            let mut s = State { x, v: 0.5 * x };
            s.v += s.x * dt;
            let State { x: position, v } = s;
            State { x: position + v * dt, v }
        }
    };
    let func = lowered(source.clone());
    ir::verify(&func).expect("verifies");
    // no instruction builds the struct: `s` is `(v, x)` by name; the yields are `v` then `x`
    expect![[r#"
        fn step(v0: f64, v1: f64)
        block0:
            v2 = const 0.5
            v3 = mul v2, v0
            v4 = mul v0, v1
            v5 = add v3, v4
            v6 = mul v5, v1
            v7 = add v0, v6
            yield v5, v7
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
    let expanded = expansion(source);
    assert!(
        expanded.contains("State { v: v, x: v7 }"),
        "the forward pass builds the struct from the yields:\n{expanded}"
    );
    assert!(
        expanded.contains("let State { v: d_output0, x: d_output1, .. } = d_output;"),
        "backward takes the cotangent apart by name:\n{expanded}"
    );
}

#[test]
fn a_vector_built_with_new_is_one_instruction_and_its_coordinates_are_places() {
    let source = quote! {
        fn rotate(p: &Vector2<f64>, c: f64, s: f64) -> f64 {
            let q = Vector2::new(c * p.x - s * p.y, s * p.x + c * p.y);
            q.x * q.y
        }
    };
    let func = lowered(source.clone());
    ir::verify(&func).expect("verifies");
    expect![[r#"
        fn rotate(v0: &Vector2<f64>, v1: f64, v2: f64)
        block0:
            v3 = place.x v0
            v4 = mul v1, v3
            v5 = place.y v0
            v6 = mul v2, v5
            v7 = sub v4, v6
            v8 = place.x v0
            v9 = mul v2, v8
            v10 = place.y v0
            v11 = mul v1, v10
            v12 = add v9, v11
            v13 = Vector2::new v7, v12
            v14 = place.x v13
            v15 = place.y v13
            v16 = mul v14, v15
            yield v16
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
    let expanded = expansion(source);
    assert!(
        expanded.contains("rules::linalg::new_d(&d_q, 1usize)"),
        "element 1 of the cotangent goes to the second argument:\n{expanded}"
    );
}

#[test]
fn a_cholesky_factorisation_is_its_factor_and_from_fn_is_a_filling_loop() {
    let source = quote! {
        fn gp(l: f64, x: &[f64], y: &DVector<f64>) -> f64 {
            let k = DMatrix::from_fn(2, 2, |i, j| (x[i] - x[j]) * l);
            let c = k.cholesky().unwrap();
            y.dot(&c.solve(y)) + c.ln_determinant()
        }
    };
    let func = lowered(source.clone());
    ir::verify(&func).expect("verifies");
    expect![[r#"
        fn gp(v0: f64, v1: &[f64], v2: &DVector<f64>)
        block0:
            v3 = len v1
            v4 = const 2
            v5 = cast.usize v4
            v6 = const 2
            v7 = cast.usize v6
            v8 = mul v5, v7
            v9 = vec_new v8
            v10 = const 0
            v23 = for v10, v7, v9
            body
                block1(v11, v12):
                    v13 = const 0
                    v22 = for v13, v5, v12
                    body
                        block2(v14, v15):
                            v16 = index v1, v14
                            v17 = index v1, v11
                            v18 = sub v16, v17
                            v19 = mul v18, v0
                            v20 = len v15
                            v21 = push v15, v19, v20
                            yield v21
                    yield v22
            v24 = DMatrix::from_vec v5, v7, v23
            v25 = cholesky v24
            v26 = cholesky_solve v25, v2
            v27 = ref v26
            v28 = dot v2, v27
            v29 = cholesky_ln_determinant v25
            v30 = add v28, v29
            yield v30
    "#]]
    .assert_eq(&ir::print(&func, &Plain));
    let expanded = expansion(source);
    for call in [
        "rules::cholesky::factor(&k)",
        "rules::cholesky::factor_d0(",
        "rules::linalg::from_column_slice_d(",
    ] {
        assert!(expanded.contains(call), "no `{call}` in:\n{expanded}");
    }
}

#[test]
fn given_partials_become_the_backward_pass() {
    let out = crate::expand::differentiate(
        quote!(partials(x = 1.0 / (1.0 + (-x).exp()))),
        quote! {
            fn softplus(x: f64, mode: usize) -> f64 { external::softplus(x, mode) }
        },
    );
    let text = crate::expand::pretty(&out);
    let backward = text
        .split("fn backward")
        .nth(1)
        .and_then(|rest| rest.split("#[doc(hidden)]").next())
        .unwrap_or_default()
        .trim_end();
    expect![[r#"
        (&self, d_output: f64) -> f64 {
                let x = ::core::clone::Clone::clone(&self.x);
                let mode = ::core::clone::Clone::clone(&self.mode);
                d_output * (1.0 / (1.0 + (-x).exp()))
            }"#]]
    .assert_eq(backward);
    assert!(
        text.contains("fn __backward_all(&self, d_output: f64) -> (f64, ()) {"),
        "{text}"
    );
    assert!(
        text.contains("fn softplus_grad(x: f64, mode: usize) -> (f64, f64)"),
        "{text}"
    );
}
