//! Generic functions, calls between differentiated functions, and `wrt`.

use autodiff::prelude::*;

fn close(a: f64, b: f64) -> bool {
    autodiff::relative_error(a, b) < 1e-8
}

mod inner {
    use autodiff::prelude::*;

    // gauss(x, s) = exp(-x^2 / (2 s^2))
    #[differentiate]
    pub fn gauss<T: Float>(x: T, s: T) -> T {
        let two = T::from(2.0).unwrap();
        (-(x * x) / (two * s * s)).exp()
    }

    // only x is active in the public gradient, but callers still get ds
    #[differentiate(wrt(x))]
    pub fn scaled(x: f64, s: f64) -> f64 {
        x * s.sin()
    }

    pub mod deeper {
        use autodiff::prelude::*;

        #[differentiate]
        pub fn cube<T>(x: T) -> T
        where
            T: Float,
        {
            x * x * x
        }
    }
}

#[differentiate]
fn uses_callees(a: f64, b: f64) -> f64 {
    let g = inner::gauss(a, b);
    let s = inner::scaled(b, a);
    let c = inner::deeper::cube::<f64>(g + s);
    c * a + g
}

#[test]
fn calls_compose_through_module_paths() {
    for (a, b) in [(0.3, 1.2), (-0.8, 0.7), (1.5, 2.0)] {
        let (v, (ga, gb)) = uses_callees_grad(a, b);
        assert_eq!(v, uses_callees(a, b));
        let fd = finite_difference_gradient(|p: &[f64]| uses_callees(p[0], p[1]), &[a, b]);
        assert!(close(ga, fd[0]) && close(gb, fd[1]), "{ga} {gb} vs {fd:?}");
    }
}

#[test]
fn wrt_narrows_the_public_gradient() {
    // scaled(x, s) = x sin(s)  =>  d/dx = sin(s)
    let (v, g) = inner::scaled_grad(2.0, 0.5);
    assert_eq!(v, 2.0 * 0.5f64.sin());
    assert_eq!(g, 0.5f64.sin());
}

#[differentiate]
fn generic_caller<T: Float>(x: T, y: T, n: i32) -> T {
    let half = T::from(0.5).unwrap();
    let g = inner::gauss(x, y);
    inner::deeper::cube(g) * half + x.powi(n) * T::one()
}

#[test]
fn generic_functions_in_f64_f32_and_dual() {
    let (x, y) = (0.4, 1.3);
    let (v, (gx, gy)) = generic_caller_grad(x, y, 3);
    assert_eq!(v, generic_caller(x, y, 3));
    let fd = finite_difference_gradient(|p: &[f64]| generic_caller(p[0], p[1], 3), &[x, y]);
    assert!(close(gx, fd[0]) && close(gy, fd[1]));

    let (v32, (gx32, _)) = generic_caller_grad(x as f32, y as f32, 3);
    assert!((v32 as f64 - v).abs() < 1e-5);
    assert!((gx32 as f64 - gx).abs() < 1e-4);

    // forward-over-reverse: differentiate the gradient d/dx of generic_caller along x
    let (_, (gx_dual, _)) = generic_caller_grad(Dual::variable(x), Dual::constant(y), 3);
    assert!((gx_dual.re - gx).abs() < 1e-14);
    let h = 1e-5;
    let second =
        (generic_caller_grad(x + h, y, 3).1 .0 - generic_caller_grad(x - h, y, 3).1 .0) / (2.0 * h);
    assert!(
        (gx_dual.eps - second).abs() < 1e-6,
        "{} vs {second}",
        gx_dual.eps
    );
}

// a callee whose wrt excludes an argument the caller differentiates through
#[differentiate]
fn through_wrt_callee(s: f64) -> f64 {
    inner::scaled(1.5, s) + s
}

#[test]
fn callee_wrt_never_drops_a_caller_derivative() {
    // d/ds [1.5 sin(s) + s] = 1.5 cos(s) + 1
    let s = 0.8;
    let (_, g) = through_wrt_callee_grad(s);
    assert!(close(g, 1.5 * s.cos() + 1.0));
}

#[differentiate(wrt(y))]
fn partial(x: f64, y: f64, z: f64) -> f64 {
    x * y * z + y.exp()
}

#[test]
fn wrt_selects_arguments_in_order() {
    let (v, gy) = partial_grad(2.0, 0.5, 3.0);
    assert_eq!(v, partial(2.0, 0.5, 3.0));
    assert!(close(gy, 2.0 * 3.0 + 0.5f64.exp()));
}

#[differentiate]
fn powi_by_ref(x: f64, n: &i32) -> f64 {
    x.powi(*n)
}

#[differentiate]
fn passes_borrowed_constant(x: f64, n: &i32) -> f64 {
    powi_by_ref(x, n) * x
}

#[test]
fn borrowed_integer_arguments_are_saved_by_copy() {
    // x^n * x = x^(n+1)  =>  (n+1) x^n
    let (v, g) = passes_borrowed_constant_grad(1.5, &3);
    assert_eq!(v, passes_borrowed_constant(1.5, &3));
    assert!(close(g, 4.0 * 1.5f64.powi(3)));
    assert_eq!(powi_by_ref_grad(2.0, &2).0, powi_by_ref(2.0, &2));
}

#[differentiate]
fn through_a_borrow(x: f64) -> f64 {
    let r = &x;
    *r * 2.0 + x
}

#[test]
fn borrows_and_dereferences_pass_derivatives_through() {
    // 2x + x  =>  3
    assert_eq!(through_a_borrow_grad(1.5), (through_a_borrow(1.5), 3.0));
}

mod generated_regressions {
    //! Constructs the random-program generator found failing to compile.
    use autodiff::prelude::*;
    use std::iter::Sum;

    // s = Σ xs  =>  d/dx sin(s x) = s cos(s x), d/dxs_i = x cos(s x)
    #[differentiate]
    fn generic_sum<T: Float + Sum>(x: T, xs: &[T]) -> T {
        let s = xs.iter().copied().sum::<T>();
        (s * x).sin()
    }

    #[differentiate]
    fn times<T: Float>(x: T, y: T) -> T {
        x * y
    }

    // a run-time constant passed to a differentiated call  =>  d/dx (x n) = n
    #[differentiate]
    fn call_with_constant<T: Float>(x: T, n: usize) -> T {
        times(x, T::from(n).unwrap())
    }

    // a float method of a run-time constant passed straight to a call  =>  d/dx (x sin n) = sin n
    #[differentiate]
    fn call_with_constant_method<T: Float>(x: T, n: usize) -> T {
        times(x, T::from(n).unwrap().sin())
    }

    #[differentiate]
    fn pair<T: Float>(x: T, y: T) -> (T, T) {
        (x * y, x + y)
    }

    // an element of a returned tuple passed to a call in a branch: q = 2x, p = x²;
    // x > 0: f = times(q, x) = 2x²  =>  4x;  else f = p = x²  =>  2x
    #[differentiate]
    fn tuple_element_to_a_call<T: Float>(x: T) -> T {
        let (p, q) = pair(x, x);
        let mut acc = p;
        if x > T::zero() {
            acc = times(q, x);
        }
        acc
    }

    // an element of a vector of constants, passed to a call in a loop: the vector's type
    // comes from `T::zero()`  =>  f = x (x + 0 + 1)(x + 0 + 2)..., checked against the product
    // rule below
    #[differentiate]
    fn constant_vector_to_a_call<T: Float>(x: T) -> T {
        let mut acc = x;
        for i in 0..3 {
            let w = vec![T::zero(); 4];
            acc = acc * times(x, w[i] + T::from(i).unwrap() + T::one());
        }
        acc
    }

    // a slice that gets no derivative still gets a gradient of its length
    #[differentiate]
    fn slice_without_derivative(x: f64, xs: &[f64]) -> f64 {
        x * xs[0].floor()
    }

    #[test]
    fn fixed() {
        let (_, (dx, dxs)) = generic_sum_grad(0.5, &[1.0, 2.0]);
        assert!((dx - 3.0 * 1.5f64.cos()).abs() < 1e-15);
        assert!(dxs.iter().all(|d| (d - 0.5 * 1.5f64.cos()).abs() < 1e-15));
        assert_eq!(call_with_constant_grad(0.5, 3), (1.5, 3.0));
        assert_eq!(
            call_with_constant_method_grad(0.5, 3),
            (0.5 * 3f64.sin(), 3f64.sin())
        );
        assert_eq!(tuple_element_to_a_call_grad(1.5), (4.5, 6.0));
        // f = x · x · 2x · 3x = 6x⁴  =>  24x³
        let (value, d) = constant_vector_to_a_call_grad(0.5);
        assert_eq!(value, 6.0 * 0.5f64.powi(4));
        assert!((d - 24.0 * 0.5f64.powi(3)).abs() < 1e-15);
        assert_eq!(tuple_element_to_a_call_grad(-1.5), (2.25, -3.0));
        assert_eq!(
            slice_without_derivative_grad(0.5, &[1.5, 2.0]),
            (0.5, (1.0, vec![0.0, 0.0]))
        );
        assert_eq!(
            generic_sum(0.5, &[1.0, 2.0]),
            generic_sum_grad(0.5, &[1.0, 2.0]).0
        );
        assert_eq!(slice_without_derivative(0.5, &[1.5, 2.0]), 0.5);
    }
}

mod to_vec_of_a_local_vector {
    use autodiff::prelude::*;

    // v = [x, x, x]; f = v0 v1 = x²  =>  2x
    #[differentiate]
    fn f(x: f64) -> f64 {
        let w = vec![x; 3];
        let v = w.to_vec();
        v[0] * v[1]
    }

    #[test]
    fn fixed() {
        assert_eq!(f_grad(1.5), (f(1.5), 3.0));
    }
}

mod vector_call_result_passed_on_in_a_branch {
    //! A `Vec` returned by a call and passed on only inside a branch or a loop, never
    //! indexed: nothing in the caller tells its type, so its cotangent starts from the
    //! callee's zero.
    use autodiff::prelude::*;

    #[differentiate]
    fn powers<T: Float>(x: T) -> Vec<T> {
        vec![x, x * x]
    }

    #[differentiate]
    fn product<T: Float>(xs: &[T]) -> T {
        xs[0] * xs[1]
    }

    // x > 0: f = x · x² = x³  =>  3x²;  x ≤ 0: f = x  =>  1
    #[differentiate]
    fn in_a_branch(x: f64) -> f64 {
        let u = powers(x);
        let mut acc = x;
        if x > 0.0 {
            acc = product(&u);
        }
        acc
    }

    // generic, the same function
    #[differentiate]
    fn in_a_branch_generic<T: Float>(x: T) -> T {
        let u = powers(x);
        let mut acc = x;
        if x > T::zero() {
            acc = product(&u);
        }
        acc
    }

    // f = x + 3 x³  =>  1 + 9x²
    #[differentiate]
    fn in_a_loop(x: f64) -> f64 {
        let u = powers(x);
        let mut acc = x;
        for _ in 0..3 {
            acc = acc + product(&u);
        }
        acc
    }

    // f = x · (x²)² = x⁵  =>  5x⁴
    #[differentiate]
    fn copied_in_a_loop(x: f64) -> f64 {
        let u = powers(x);
        let mut acc = x;
        for _ in 0..2 {
            let w = u.to_vec();
            acc = acc * w[1];
        }
        acc
    }

    #[test]
    fn fixed() {
        for x in [1.5, -0.5] {
            let cube = if x > 0.0 { 3.0 * x * x } else { 1.0 };
            assert_eq!(in_a_branch_grad(x), (in_a_branch(x), cube));
            assert_eq!(in_a_branch_generic_grad(x), (in_a_branch(x), cube));
            let (value, d) = in_a_loop_grad(x);
            assert_eq!(value, in_a_loop(x));
            assert!((d - (1.0 + 9.0 * x * x)).abs() < 1e-12);
            let (value, d) = copied_in_a_loop_grad(x);
            assert_eq!(value, copied_in_a_loop(x));
            assert!((d - 5.0 * x.powi(4)).abs() < 1e-12);
        }
    }
}

// The result of a generic callee read only inside a loop: its cotangent is declared before
// the reversed loop, with no type the macro can see (it used to be a generic zero rustc could
// not infer). f = x sin(x)² (two products by t = sin x), so f' = sin² x + 2 x sin x cos x.
mod generic_result_read_in_a_loop {
    use autodiff::prelude::*;

    #[differentiate]
    fn sine<T: Float>(x: T) -> T {
        x.sin()
    }

    #[differentiate]
    fn product<T: Float>(a: T, b: T) -> T {
        a * b
    }

    #[differentiate]
    fn repeated<T: Float>(x: T) -> T {
        let t = sine(x);
        let mut acc = x;
        for _ in 0..2 {
            acc = product(acc, t);
        }
        acc
    }

    // the same result read in a loop that may run no iteration: its cotangent stays `None`
    #[differentiate]
    fn maybe_repeated<T: Float>(x: T, n: usize) -> T {
        let t = sine(x);
        let mut acc = x;
        for _ in 0..n {
            acc = product(acc, t);
        }
        acc
    }

    #[test]
    fn compiles_and_matches_the_analytic_derivative() {
        for x in [0.5f64, -1.25] {
            let expected = x.sin().powi(2) + 2.0 * x * x.sin() * x.cos();
            let (value, d) = repeated_grad(x);
            assert_eq!(value, repeated(x));
            assert!((d - expected).abs() < 1e-14, "{d} vs {expected}");
            assert_eq!(maybe_repeated_grad(x, 2), (value, d));
            assert_eq!(maybe_repeated_grad(x, 0), (x, 1.0));
            let (_, dual) = repeated_grad(Dual::new(x, 1.0));
            assert_eq!(dual.re, d);
        }
    }
}

// The result of a generic callee returning a `Vec`, swapped in place and copied by
// `to_vec`: an array, although no indexing of the call's own result says so (its type was
// taken for the float). f = w[0] w[1] + w[2] with w = [x y, y, sin x] after the swap, so
// df/dx = y² + cos x and df/dy = 2 x y.
mod generic_vector_result_swapped {
    use autodiff::prelude::*;

    #[differentiate]
    fn spread<T: Float>(x: T, y: T) -> Vec<T> {
        vec![x * y, x.sin(), y]
    }

    #[differentiate]
    fn swapped<T: Float>(x: T, y: T) -> T {
        let mut v = spread(x, y);
        v.swap(2, 1);
        let w = v.to_vec();
        w[0] * w[1] + w[2]
    }

    #[test]
    fn compiles_and_matches_the_analytic_derivative() {
        for (x, y) in [(0.5f64, 1.5), (-1.25, 0.75)] {
            let (value, (dx, dy)) = swapped_grad(x, y);
            assert_eq!(value, swapped(x, y));
            assert!((dx - (y * y + x.cos())).abs() < 1e-14, "{dx}");
            assert!((dy - 2.0 * x * y).abs() < 1e-14, "{dy}");
            let (_, (ddx, _)) = swapped_grad(Dual::new(x, 1.0), Dual::new(y, 0.0));
            assert_eq!(ddx.re, dx);
            // d²f/dx² = -sin x
            assert!((ddx.eps + x.sin()).abs() < 1e-14, "{}", ddx.eps);
        }
    }
}

// A function and one named `reusing_` followed by its name: the hidden items generated for
// each (pullbacks, reusing pullbacks, zero outputs) must not collide.
#[differentiate]
fn twice(x: f64) -> f64 {
    2.0 * x
}

#[differentiate]
fn reusing_twice(x: f64) -> f64 {
    twice(x) * x
}

#[test]
fn hidden_items_of_similarly_named_functions_do_not_collide() {
    // reusing_twice(x) = 2 x², whose derivative is 4 x
    let (value, gradient) = reusing_twice_grad(1.5);
    assert_eq!(value, 4.5);
    assert_eq!(gradient, 6.0);
}

// A callee's vector gradient added straight into the caller's cotangent (`__backward_into`):
// the caller's contributions so far must stay in, in every way an array reaches a call.
mod gradients_added_into_the_callers_vectors {
    use crate::arrays::{assert_fd, point};
    use autodiff::prelude::*;

    mod sums {
        use autodiff::prelude::*;

        // lse(v) = ln sum_i exp v_i
        #[differentiate]
        pub fn lse(v: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..v.len() {
                s += v[i].exp();
            }
            s.ln()
        }

        // weighted(v, w, k) = w sum_i v_i^2 + k: a scalar and an integer beside the slice
        #[differentiate]
        pub fn weighted(v: &[f64], w: f64, k: usize) -> f64 {
            let mut s = 0.0;
            for i in 0..v.len() {
                s += v[i] * v[i];
            }
            w * s + k as f64
        }

        // dot(a, b) = sum_i a_i b_i
        #[differentiate]
        pub fn dot(a: &[f64], b: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..a.len() {
                s += a[i] * b[i];
            }
            s
        }

        // the same with a narrower public gradient: callers get both through hidden items
        #[differentiate(wrt(a))]
        pub fn dot_wrt_a(a: &[f64], b: &[f64]) -> f64 {
            let mut s = 0.0;
            for i in 0..a.len() {
                s += a[i] * b[i] * b[i];
            }
            s
        }

        // cubes(v) = sum_i v_i^3, generic
        #[differentiate]
        pub fn cubes<T: Float>(v: &[T]) -> T {
            let mut s = T::zero();
            for i in 0..v.len() {
                s = s + v[i] * v[i] * v[i];
            }
            s
        }

        // fixed_norm(v) = |v|^2 over an array parameter
        #[differentiate]
        pub fn fixed_norm(v: &[f64; 3]) -> f64 {
            v[0] * v[0] + v[1] * v[1] + v[2] * v[2]
        }

        // scaled(v) = 2 v, a vector output
        #[differentiate]
        pub fn scaled(v: &[f64]) -> Vec<f64> {
            let mut out = vec![0.0; v.len()];
            for i in 0..v.len() {
                out[i] = 2.0 * v[i] + v[0];
            }
            out
        }
    }

    // a local vector changed and passed on every iteration, and read after each call
    #[differentiate]
    fn calls_in_a_loop(x: &[f64], rounds: usize) -> f64 {
        let mut v = vec![0.0; x.len()];
        let mut total = 0.0;
        for r in 0..rounds {
            for i in 0..x.len() {
                v[i] = x[i] * (r as f64 + 1.0) + 0.5 * v[i];
            }
            total += sums::lse(&v) * v[0] + sums::weighted(&v, x[1], r);
        }
        total
    }

    // the parameter itself passed on, with other uses around the calls
    #[differentiate]
    fn passes_its_parameter(x: &[f64]) -> f64 {
        let a = x[0] * x[1];
        sums::lse(x) + a + sums::weighted(x, x[2], 3) * x[1]
    }

    // one vector as both arguments
    #[differentiate]
    fn same_vector_twice(x: &[f64]) -> f64 {
        let v = x.to_vec();
        sums::dot(&v, &v) + v[1] * sums::dot(&v, x)
    }

    // constant data beside an active vector
    #[differentiate(wrt(x))]
    fn with_constant_data(x: &[f64], data: &[f64]) -> f64 {
        let mut v = x.to_vec();
        v[0] = v[0] * data[0];
        sums::dot(&v, data) + sums::dot_wrt_a(data, &v) + sums::dot_wrt_a(&v, x)
    }

    #[differentiate]
    fn generic_caller<T: Float>(x: &[T]) -> T {
        let mut v: Vec<T> = x.to_vec();
        v[1] = v[1] * v[2];
        sums::cubes(&v) * v[0] + sums::cubes(x)
    }

    // a vector result's cotangent reaches the argument through the call
    #[differentiate]
    fn through_a_vector_result(x: &[f64]) -> f64 {
        let v = x.to_vec();
        let w = sums::scaled(&v);
        w[0] * w[2] + v[1] * sums::lse(&w)
    }

    // a fixed-length array passed by reference to callees taking a slice and an array; its
    // cotangent is an array, the slice callee's gradient a `Vec`
    #[differentiate]
    fn fixed_array_argument(x: [f64; 3]) -> f64 {
        let b = x[0] * x[1];
        sums::lse(&x) + b + sums::cubes(&x) * x[2] + sums::fixed_norm(&x)
    }

    // a borrowed array parameter passed on as it is
    #[differentiate]
    fn borrowed_array_argument(x: &[f64; 3]) -> f64 {
        sums::lse(x) * x[1] + sums::fixed_norm(x)
    }

    #[differentiate]
    fn local_array_argument(x: &[f64]) -> f64 {
        let a = [x[0] * x[1], x[2], x[3]];
        let c = a[1];
        sums::lse(&a) * c + sums::fixed_norm(&a)
    }

    #[test]
    fn fixed_arrays_take_a_slice_callees_gradient() {
        for seed in [5, 17] {
            let x = point(4, seed);
            let fixed = [x[0], x[1], x[2]];
            let (_, g) = fixed_array_argument_grad(fixed);
            let f = |v: &[f64]| fixed_array_argument([v[0], v[1], v[2]]);
            assert_fd("fixed_array_argument", &g, f, &fixed);
            let (_, g) = borrowed_array_argument_grad(&fixed);
            let f = |v: &[f64]| borrowed_array_argument(&[v[0], v[1], v[2]]);
            assert_fd("borrowed_array_argument", &g, f, &fixed);
            let (_, g) = local_array_argument_grad(&x);
            assert_fd("local_array_argument", &g, local_array_argument, &x);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for seed in [3, 11, 29] {
            let x = point(4, seed);
            for rounds in [1, 3] {
                let (_, g) = calls_in_a_loop_grad(&x, rounds);
                assert_fd("calls_in_a_loop", &g, |x| calls_in_a_loop(x, rounds), &x);
                let (_, pullback) = calls_in_a_loop_pullback(&x, rounds);
                let twice = pullback.backward(2.0);
                let doubled: Vec<f64> = g.iter().map(|g| 2.0 * g).collect();
                assert_eq!(twice, doubled, "calls_in_a_loop: backward(2)");
            }
            let (_, g) = passes_its_parameter_grad(&x);
            assert_fd("passes_its_parameter", &g, passes_its_parameter, &x);
            let (_, g) = same_vector_twice_grad(&x);
            assert_fd("same_vector_twice", &g, same_vector_twice, &x);
            let data = point(4, seed + 1);
            let (_, g) = with_constant_data_grad(&x, &data);
            assert_fd(
                "with_constant_data",
                &g,
                |x| with_constant_data(x, &data),
                &x,
            );
            let (_, g) = generic_caller_grad(&x);
            assert_fd("generic_caller", &g, generic_caller, &x);
            let (_, g) = through_a_vector_result_grad(&x);
            assert_fd("through_a_vector_result", &g, through_a_vector_result, &x);
        }
    }

    #[test]
    fn backward_still_checks_the_output_cotangent() {
        let (_, pullback) = sums::scaled_pullback(&[1.0, 2.0]);
        let result = std::panic::catch_unwind(|| pullback.backward(vec![1.0]));
        let message = result.expect_err("a short cotangent panics");
        let text = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            text.contains("has length 1, but the output has length 2"),
            "{text}"
        );
    }
}

#[derive(Differentiable, Clone, Debug)]
struct Offset {
    shift: f64,
    scale: f64,
}

#[differentiate]
fn softplus(z: f64) -> f64 {
    (1.0 + z.exp()).ln()
}

// a field of a parameter set passed to a call: softplus(p.shift) p.scale + softplus(x p.scale)
#[differentiate]
fn field_arguments(p: &Offset, x: f64) -> f64 {
    softplus(p.shift) * p.scale + softplus(x * p.scale)
}

#[test]
fn fields_of_a_parameter_set_pass_to_calls() {
    let p = Offset {
        shift: 0.3,
        scale: -1.2,
    };
    let (value, (d_p, d_x)) = field_arguments_grad(&p, 0.7);
    assert_eq!(value, field_arguments(&p, 0.7));
    let at = [p.shift, p.scale, 0.7];
    let fd = finite_difference_gradient(
        |v: &[f64]| {
            let p = Offset {
                shift: v[0],
                scale: v[1],
            };
            field_arguments(&p, v[2])
        },
        &at,
    );
    let ours = [d_p.shift, d_p.scale, d_x];
    for (o, f) in ours.iter().zip(&fd) {
        assert!(close(*o, *f), "{ours:?} vs {fd:?}");
    }
}

// A callee returning a fixed-length array whose result the caller indexes: the cotangent
// of the result has the callee's output type. One RK4 step of the damped oscillator
// y'' = -k y - c y', checked against finite differences and forward-mode duals.
mod array_result_indexed {
    use autodiff::prelude::*;

    #[differentiate]
    fn rhs<T: Float>(y: &[T; 2], k: T) -> [T; 2] {
        let c = T::from(0.1).unwrap();
        [y[1], -k * y[0] - c * y[1]]
    }

    #[differentiate]
    fn rk4<T: Float>(y0: [T; 2], k: T, dt: T, steps: usize) -> T {
        let half = T::from(0.5).unwrap();
        let two = T::from(2.0).unwrap();
        let sixth = T::from(1.0 / 6.0).unwrap();
        let mut y = y0;
        for _ in 0..steps {
            let k1 = rhs(&y, k);
            let y2 = [y[0] + half * dt * k1[0], y[1] + half * dt * k1[1]];
            let k2 = rhs(&y2, k);
            let y3 = [y[0] + half * dt * k2[0], y[1] + half * dt * k2[1]];
            let k3 = rhs(&y3, k);
            let y4 = [y[0] + dt * k3[0], y[1] + dt * k3[1]];
            let k4 = rhs(&y4, k);
            for i in 0..2 {
                y[i] = y[i] + dt * sixth * (k1[i] + two * k2[i] + two * k3[i] + k4[i]);
            }
        }
        y[0] * y[0] + y[1]
    }

    /// A `Vec` result indexed too: its cotangent stays a `Vec`.
    #[differentiate]
    fn moments(x: &[f64]) -> Vec<f64> {
        vec![x.iter().sum(), x.iter().map(|v| v * v).sum()]
    }

    #[differentiate]
    fn variance(x: &[f64]) -> f64 {
        let m = moments(x);
        let n = x.len() as f64;
        m[1] / n - (m[0] / n).powi(2)
    }

    #[test]
    fn an_rk4_step_through_an_array_returning_callee_matches_finite_differences() {
        let (value, (d_y0, d_k, d_dt)) = rk4_grad([1.0, 0.0], 2.0, 0.01, 50);
        assert_eq!(value, rk4([1.0, 0.0], 2.0, 0.01, 50));
        // the step in hundredths, so that the finite differences' step (1e-3 of a unit)
        // stays small against it
        let at = [1.0, 0.0, 2.0, 1.0];
        let error = check_gradient(
            |v: &[f64]| rk4([v[0], v[1]], v[2], v[3] / 100.0, 50),
            &at,
            &[d_y0[0], d_y0[1], d_k, d_dt / 100.0],
        );
        assert!(error < 1e-6, "error {error:e}");
        // forward mode in k gives the same derivative
        let (dual, _) = rk4_grad(
            [Dual::new(1.0, 0.0), Dual::new(0.0, 0.0)],
            Dual::new(2.0, 1.0),
            Dual::new(0.01, 0.0),
            50,
        );
        assert!(
            (dual.eps - d_k).abs() < 1e-12 * d_k.abs().max(1.0),
            "{} {d_k}",
            dual.eps
        );
    }

    #[test]
    fn a_vector_returning_callee_indexed_keeps_a_vector_cotangent() {
        let x = [1.0, 2.5, -0.5, 3.0];
        let (value, gradient) = variance_grad(&x);
        assert_eq!(value, variance(&x));
        // var = Σx²/n - (Σx/n)²  =>  ∂/∂x_i = 2 x_i / n - 2 mean / n
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        for (g, xi) in gradient.iter().zip(&x) {
            assert!(
                (g - (2.0 * xi / n - 2.0 * mean / n)).abs() < 1e-14,
                "{gradient:?}"
            );
        }
    }
}

/// A const-generic callee whose output type does not name `N`, called without turbofish:
/// the zero of its output is the same for every `N`.
mod const_generic_callee {
    use autodiff::prelude::*;

    // the tip of a planar arm of N links
    #[differentiate]
    fn tip<const N: usize>(angles: &[f64; N], lengths: &[f64; N]) -> [f64; 2] {
        let mut x = 0.0;
        let mut y = 0.0;
        let mut theta = 0.0;
        for i in 0..N {
            theta += angles[i];
            x += lengths[i] * theta.cos();
            y += lengths[i] * theta.sin();
        }
        [x, y]
    }

    #[differentiate(wrt(angles))]
    fn reach<const N: usize>(angles: &[f64; N], lengths: &[f64; N], target: [f64; 2]) -> f64 {
        let p = tip(angles, lengths);
        (p[0] - target[0]).powi(2) + (p[1] - target[1]).powi(2)
    }

    #[test]
    fn reaching_through_a_const_generic_callee_matches_finite_differences() {
        let angles = [0.3, 0.5, -0.2];
        let lengths = [1.0, 0.8, 0.5];
        let target = [1.0, 1.5];
        let (value, d_angles) = reach_grad(&angles, &lengths, target);
        assert_eq!(value.to_bits(), reach(&angles, &lengths, target).to_bits());
        let error = check_gradient(
            |a: &[f64]| reach(&[a[0], a[1], a[2]], &lengths, target),
            &angles,
            &d_angles,
        );
        assert!(error < 1e-8, "relative error {error}");
        // the tip's Jacobian: ∂x/∂θⱼ = -Σ_{i≥j} lᵢ sin φᵢ, ∂y/∂θⱼ = Σ_{i≥j} lᵢ cos φᵢ
        let (_, pullback) = tip_pullback(&angles, &lengths);
        let [(row_x, _), (row_y, _)] = pullback.jacobian();
        let phi = [0.3, 0.8, 0.6];
        for j in 0..3 {
            let dx: f64 = (j..3).map(|i| -lengths[i] * f64::sin(phi[i])).sum();
            let dy: f64 = (j..3).map(|i| lengths[i] * f64::cos(phi[i])).sum();
            assert!((row_x[j] - dx).abs() < 1e-12 && (row_y[j] - dy).abs() < 1e-12);
        }
    }
}

/// Functions whose derivatives are given (`partials`), as for code the macro cannot see.
mod given_partials {
    use autodiff::prelude::*;

    /// softplus computed where the macro does not look (as a C library would)
    fn softplus_elsewhere(x: f64) -> f64 {
        if x > 30.0 {
            x
        } else {
            x.exp().ln_1p()
        }
    }

    // softplus' = the logistic function
    #[differentiate(partials(x = 1.0 / (1.0 + (-x).exp())))]
    fn softplus(x: f64) -> f64 {
        softplus_elsewhere(x)
    }

    // ∂(aᵇ)/∂a = b aᵇ⁻¹, ∂(aᵇ)/∂b = aᵇ ln a; `label` a constant
    #[differentiate(partials(a = b * a.powf(b - T::one()), b = a.powf(b) * a.ln()))]
    fn power<T: Float>(a: T, b: T, label: usize) -> T {
        let _ = label;
        a.powf(b)
    }

    // a loss calling both, in a loop (the callee's pullback kept per iteration)
    #[differentiate(wrt(w))]
    fn loss(w: &[f64], xs: &[f64]) -> f64 {
        let mut s = 0.0;
        for &x in xs {
            s += softplus(w[0] * x + w[1]);
        }
        s + power(w[0] * w[0] + 1.0, w[1], 7)
    }

    #[test]
    fn given_partials_compose_and_match_finite_differences() {
        let (value, d) = softplus_grad(0.3);
        assert_eq!(value.to_bits(), softplus(0.3).to_bits());
        assert!((d - 1.0 / (1.0 + f64::exp(-0.3))).abs() < 1e-15);
        let (value, (d_a, d_b)) = power_grad(2.0, 1.5, 0);
        assert_eq!(value, 2f64.powf(1.5));
        assert!((d_a - 1.5 * 2f64.sqrt()).abs() < 1e-14);
        assert!((d_b - 2f64.powf(1.5) * 2f64.ln()).abs() < 1e-14);
        let xs = [0.1, -0.5, 1.2, 0.7];
        let w = [0.4, -0.2];
        let (value, d_w) = loss_grad(&w, &xs);
        assert_eq!(value.to_bits(), loss(&w, &xs).to_bits());
        let error = check_gradient(|v: &[f64]| loss(v, &xs), &w, &d_w);
        assert!(error < 1e-8, "relative error {error}");
    }

    fn lse_elsewhere(x: &[f64]) -> f64 {
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        x.iter().map(|v| (v - m).exp()).sum::<f64>().ln() + m
    }

    // ∇ logsumexp = softmax: the partial with respect to a slice is the gradient vector
    #[differentiate(partials(x = {
        let l = lse_elsewhere(x);
        x.iter().map(|v| (v - l).exp()).collect::<Vec<f64>>()
    }))]
    fn logsumexp(x: &[f64]) -> f64 {
        lse_elsewhere(x)
    }

    // (p₀² + p₁³) s with the array's partial an array
    #[differentiate(partials(
        p = [2.0 * p[0] * s, 3.0 * p[1] * p[1] * s],
        s = p[0] * p[0] + p[1] * p[1] * p[1]
    ))]
    fn cubic(p: [f64; 2], s: f64) -> f64 {
        (p[0] * p[0] + p[1] * p[1] * p[1]) * s
    }

    // a local vector passed to the slice function (its gradient added into the caller's)
    #[differentiate(wrt(w))]
    fn vector_loss(w: &[f64], xs: &[f64]) -> f64 {
        let mut z = vec![0.0; xs.len()];
        for i in 0..xs.len() {
            z[i] = w[0] * xs[i] + w[1];
        }
        logsumexp(&z) + cubic([w[0], w[1]], 0.5)
    }

    #[test]
    fn given_gradient_vectors_compose_and_match_finite_differences() {
        let x = [0.3, -1.0, 0.5];
        let (value, d_x) = logsumexp_grad(&x);
        assert_eq!(value.to_bits(), logsumexp(&x).to_bits());
        let error = check_gradient(|v: &[f64]| logsumexp(v), &x, &d_x);
        assert!(error < 1e-8, "relative error {error}");
        let (_, (d_p, d_s)) = cubic_grad([0.5, -0.7], 2.0);
        assert!(
            (d_p[0] - 2.0).abs() < 1e-15 && (d_p[1] - 2.94).abs() < 1e-14,
            "{d_p:?}"
        );
        assert!((d_s - (0.25 - 0.343)).abs() < 1e-15);
        let (xs, w) = ([0.1, -0.5, 1.2, 0.7], [0.4, -0.2]);
        let (value, d_w) = vector_loss_grad(&w, &xs);
        assert_eq!(value.to_bits(), vector_loss(&w, &xs).to_bits());
        let error = check_gradient(|v: &[f64]| vector_loss(v, &xs), &w, &d_w);
        assert!(error < 1e-8, "relative error {error}");
    }

    // a partial of the wrong length is caught where `backward` evaluates it
    #[differentiate(partials(x = vec![1.0]))]
    fn short_partial(x: &[f64]) -> f64 {
        x.iter().sum()
    }

    #[test]
    #[should_panic(expected = "the partial with respect to `x` has 1 elements, `x` 2")]
    fn a_gradient_vector_of_the_wrong_length_panics_with_both_lengths() {
        let _ = short_partial_grad(&[1.0, 2.0]);
    }

    #[test]
    fn given_partials_are_differentiated_by_duals() {
        // ∂²(aᵇ)/∂a² = b (b - 1) aᵇ⁻², from the partial's expression evaluated on duals
        let (_, (d_a, _)) = power_grad(Dual::variable(2.0), Dual::constant(1.5), 0);
        assert!((d_a.eps - 1.5 * 0.5 * 2f64.powf(-0.5)).abs() < 1e-14);
    }
}
