//! Arrays as arguments and outputs, in-place writes into local vectors, iterator reductions
//! and calls between differentiated functions that take slices, each checked against
//! finite differences, an analytic gradient or the dot-product test
//! `<t, backward(c)> == <J t, c>` with `J t` from finite differences.

#![allow(clippy::ptr_arg, clippy::needless_range_loop, clippy::manual_memcpy)]

use autodiff::prelude::*;

// ---------------------------------------------------------------------------------------
// Helpers shared with loops.rs
// ---------------------------------------------------------------------------------------

/// A small xorshift64 generator: reproducible random points and cotangents.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    /// Uniform in `[-1, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    pub(crate) fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next_f64()).collect()
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// `J t` for a vector-valued `f` at `x`, by fourth-order central differences along `t`.
pub(crate) fn jvp_fd(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], t: &[f64]) -> Vec<f64> {
    let h = 1e-3;
    let at = |s: f64| {
        let p: Vec<f64> = x.iter().zip(t).map(|(a, b)| a + s * b).collect();
        f(&p)
    };
    let (m2, m1, p1, p2) = (at(-2.0 * h), at(-h), at(h), at(2.0 * h));
    (0..m1.len())
        .map(|k| (m2[k] - 8.0 * m1[k] + 8.0 * p1[k] - p2[k]) / (12.0 * h))
        .collect()
}

/// The gradient `grad` of `f` at `x` against central finite differences.
#[track_caller]
pub(crate) fn assert_fd(what: &str, grad: &[f64], f: impl Fn(&[f64]) -> f64, x: &[f64]) {
    let fd = finite_difference_gradient(f, x);
    assert_eq!(grad.len(), fd.len(), "{what}: gradient length");
    for (k, (g, e)) in grad.iter().zip(&fd).enumerate() {
        assert!(
            autodiff::relative_error(*g, *e) < 1e-7,
            "{what}: component {k}: {g} vs finite difference {e}\n  grad = {grad:?}\n  fd   = {fd:?}"
        );
    }
}

#[track_caller]
pub(crate) fn assert_close(what: &str, got: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    for (k, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            autodiff::relative_error(*g, *e) < tol,
            "{what}: component {k}: {g} vs {e}\n  got      = {got:?}\n  expected = {expected:?}"
        );
    }
}

/// The dot-product test `<t, backward(c)> == <J t, c>` for random `t` and `c`.
#[track_caller]
pub(crate) fn assert_dot_product_test(
    what: &str,
    f: impl Fn(&[f64]) -> Vec<f64>,
    vjp: impl Fn(&[f64], &[f64]) -> Vec<f64>,
    x: &[f64],
    seed: u64,
) {
    let mut rng = XorShift::new(seed);
    let m = f(x).len();
    for trial in 0..3 {
        let t = rng.vec(x.len());
        let c = rng.vec(m);
        let lhs = dot(&t, &vjp(x, &c));
        let rhs = dot(&jvp_fd(&f, x, &t), &c);
        assert!(
            autodiff::relative_error(lhs, rhs) < 1e-8,
            "{what}: trial {trial}: <t, J^T c> = {lhs} but <J t, c> = {rhs}"
        );
    }
}

/// A deterministic test point.
pub(crate) fn point(n: usize, seed: u64) -> Vec<f64> {
    XorShift::new(seed).vec(n)
}

// ---------------------------------------------------------------------------------------
// 4. In-place writes into local vectors
// ---------------------------------------------------------------------------------------

// v[i] = x[i]^2, then v[i] += v[i-1] x[i] (each update reads the element written in the
// previous iteration), folded in order.
#[differentiate]
fn fill_then_update(x: &[f64]) -> f64 {
    let n = x.len();
    let mut v = vec![0.0; n];
    for i in 0..n {
        v[i] = x[i] * x[i];
    }
    for i in 1..n {
        v[i] += v[i - 1] * x[i];
    }
    let mut s = 0.0;
    for i in 0..n {
        s = s * 0.5 + v[i];
    }
    s
}

#[test]
fn writes_into_a_zero_filled_vector() {
    for n in [1usize, 2, 7] {
        let x = point(n, 11 + n as u64);
        let (value, grad) = fill_then_update_grad(&x);
        assert_eq!(value.to_bits(), fill_then_update(&x).to_bits());
        assert_fd("fill_then_update", &grad, fill_then_update, &x);
    }
}

// sum_i x_i^4 by squaring each element in place twice: the first square is overwritten but
// needed by the backward pass of the second.  d/dx_i = 4 x_i^3.
#[differentiate]
fn square_twice(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    let mut s = 0.0;
    for i in 0..v.len() {
        v[i] = v[i] * v[i];
        v[i] = v[i] * v[i];
        s += v[i];
    }
    s
}

#[test]
fn overwritten_elements_needed_later() {
    let x = [0.5, -1.5, 2.0, 0.1];
    let (value, grad) = square_twice_grad(&x);
    assert_eq!(value.to_bits(), square_twice(&x).to_bits());
    let expected: Vec<f64> = x.iter().map(|v| 4.0 * v * v * v).collect();
    assert_close("square_twice", &grad, &expected, 1e-14);
}

// In-place smoothing: v[i] = (v[i] + v[i-1]) / 2 reads the element overwritten one
// iteration before; then v[i] = sin(v[i]) * v[i] overwrites with a value of itself.
#[differentiate]
fn smooth_in_place(x: &[f64]) -> f64 {
    let n = x.len();
    let mut v = x.to_vec();
    for _ in 0..3 {
        for i in 1..n {
            v[i] = 0.5 * (v[i] + v[i - 1]);
        }
    }
    for i in 0..n {
        v[i] = v[i].sin() * v[i];
    }
    let mut s = 0.0;
    for i in 0..n {
        s = s * 0.7 + v[i] * (i as f64 + 1.0);
    }
    s
}

#[test]
fn repeated_overwrites_of_the_same_elements() {
    let x = point(6, 3);
    let (value, grad) = smooth_in_place_grad(&x);
    assert_eq!(value.to_bits(), smooth_in_place(&x).to_bits());
    assert_fd("smooth_in_place", &grad, smooth_in_place, &x);
}

// v = x reversed by swaps, then weighted by position and squared
#[differentiate]
fn reverse_by_swaps(x: &[f64]) -> f64 {
    let n = x.len();
    let mut v = x.to_vec();
    for i in 0..n / 2 {
        v.swap(i, n - 1 - i);
    }
    v.swap(0, 1);
    let mut s = 0.0;
    for i in 0..n {
        s += v[i] * v[i] * (i as f64 + 1.0);
    }
    s
}

#[test]
fn swaps_move_cotangents_back() {
    // after the swaps, position p holds x[src(p)]: d/dx[src(p)] = 2 x[src(p)] (p + 1)
    let x = point(5, 17);
    let n = x.len();
    let mut src: Vec<usize> = (0..n).rev().collect();
    src.swap(0, 1);
    let mut expected = vec![0.0; n];
    for p in 0..n {
        expected[src[p]] = 2.0 * x[src[p]] * (p as f64 + 1.0);
    }
    let (value, grad) = reverse_by_swaps_grad(&x);
    assert_eq!(value.to_bits(), reverse_by_swaps(&x).to_bits());
    assert_close("reverse_by_swaps", &grad, &expected, 1e-14);
}

// pushes of active values, then of a constant, into a Vec made with capacity or new()
#[differentiate]
fn pushed(x: &[f64]) -> f64 {
    let mut v = Vec::with_capacity(x.len() + 1);
    for i in 0..x.len() {
        v.push(x[i].sin());
    }
    v.push(2.0);
    let mut w = Vec::new();
    w.push(x[0] * 3.0);
    w.push(v[v.len() - 2]);
    let mut s = 0.0;
    for i in 0..v.len() {
        s = s * 0.5 + v[i] * v[i];
    }
    s + w[0] * w[1]
}

#[test]
fn push_onto_local_vectors() {
    for n in [1usize, 4] {
        let x = point(n, 5);
        let (value, grad) = pushed_grad(&x);
        assert_eq!(value.to_bits(), pushed(&x).to_bits());
        assert_fd("pushed", &grad, pushed, &x);
    }
}

// each pass builds a new vector from the old one and reassigns the whole variable
#[differentiate]
fn reassigned_vector(x: &[f64]) -> f64 {
    let n = x.len();
    let mut v = x.to_vec();
    for _ in 0..3 {
        let mut w = vec![0.0; n];
        for i in 0..n {
            w[i] = v[i] * 0.5 + v[(i + 1) % n].sin();
        }
        v = w;
    }
    let mut s = 0.0;
    for i in 0..n {
        s += v[i] * v[i];
    }
    s
}

#[test]
fn whole_vector_reassigned_in_a_loop() {
    let x = point(5, 23);
    let (value, grad) = reassigned_vector_grad(&x);
    assert_eq!(value.to_bits(), reassigned_vector(&x).to_bits());
    assert_fd("reassigned_vector", &grad, reassigned_vector, &x);
}

// a fixed-size local array written in place: a[0] = x0 y0, a[1] = a[0] + x1, a[2] = a[1]^2
#[differentiate]
fn local_fixed_array(x: &[f64; 2], y: f64) -> f64 {
    let mut a = [0.0; 3];
    a[0] = x[0] * y;
    a[1] = a[0] + x[1];
    a[2] = a[1] * a[1];
    a[1] = a[2].sqrt() * 3.0;
    a[0] + a[1] + a[2]
}

#[test]
fn writes_into_a_local_fixed_array() {
    // with u = x0 y + x1 > 0: f = x0 y + 3u + u^2  =>  df/du = 3 + 2u
    let (x, y) = ([0.7, 0.4], 1.3);
    let u = x[0] * y + x[1];
    let (value, (gx, gy)) = local_fixed_array_grad(&x, y);
    assert_eq!(value.to_bits(), local_fixed_array(&x, y).to_bits());
    let du = 3.0 + 2.0 * u;
    assert_close(
        "local_fixed_array",
        &[gx[0], gx[1], gy],
        &[y + du * y, du, x[0] + du * x[0]],
        1e-13,
    );
}

// ---------------------------------------------------------------------------------------
// 5. Vector and array outputs
// ---------------------------------------------------------------------------------------

// y_i = x_0 + ... + x_i   =>  (J^T c)_j = c_j + ... + c_{n-1}
#[differentiate]
fn cumsum(x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    let mut acc = 0.0;
    for i in 0..x.len() {
        acc += x[i];
        y[i] = acc;
    }
    y
}

#[test]
fn cumulative_sum_backward() {
    let x = point(6, 29);
    let (y, pullback) = cumsum_pullback(&x);
    assert_eq!(y, cumsum(&x));
    let c = point(6, 31);
    let expected: Vec<f64> = (0..6).map(|j| c[j..].iter().sum()).collect();
    assert_close("cumsum", &pullback.backward(c.clone()), &expected, 1e-14);
    assert_dot_product_test(
        "cumsum",
        cumsum,
        |x, c| cumsum_pullback(x).1.backward(c.to_vec()),
        &x,
        37,
    );
}

// y_0 = sin(x_0), y_i = sin(x_i) y_{i-1}: a running product built by `push`
#[differentiate]
fn sin_running_product(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut y = Vec::with_capacity(n);
    y.push(x[0].sin());
    for i in 1..n {
        y.push(x[i].sin() * y[i - 1]);
    }
    y
}

// y_i = prod_{j <= i} (1 + x_j^2) written in place into a copy of x
#[differentiate]
fn running_product_in_place(x: &[f64]) -> Vec<f64> {
    let mut y = x.to_vec();
    let mut p = 1.0;
    for i in 0..y.len() {
        p = p * (1.0 + y[i] * y[i]);
        y[i] = p;
    }
    y
}

#[test]
fn nonlinear_vector_outputs_pass_the_dot_product_test() {
    let x = point(7, 41);
    let (y, pullback) = sin_running_product_pullback(&x);
    assert_eq!(y, sin_running_product(&x));
    assert_eq!(pullback.backward(vec![0.0; 7]), vec![0.0; 7]);
    assert_dot_product_test(
        "sin_running_product",
        sin_running_product,
        |x, c| sin_running_product_pullback(x).1.backward(c.to_vec()),
        &x,
        43,
    );

    let (y, _) = running_product_in_place_pullback(&x);
    assert_eq!(y, running_product_in_place(&x));
    assert_dot_product_test(
        "running_product_in_place",
        running_product_in_place,
        |x, c| running_product_in_place_pullback(x).1.backward(c.to_vec()),
        &x,
        47,
    );
}

#[test]
fn vector_output_backward_is_reusable() {
    let x = point(5, 53);
    let (_, pullback) = sin_running_product_pullback(&x);
    let c = point(5, 59);
    let first = pullback.backward(c.clone());
    let second = pullback.backward(c.clone());
    assert_eq!(first, second);
    // linear in the cotangent
    let doubled: Vec<f64> = c.iter().map(|v| 2.0 * v).collect();
    let twice = pullback.backward(doubled);
    assert_close(
        "linearity",
        &twice,
        &first.iter().map(|v| 2.0 * v).collect::<Vec<_>>(),
        1e-14,
    );
}

// a x b   =>  d<c, a x b>/da = b x c,  d<c, a x b>/db = c x a
#[differentiate]
fn cross(a: [f64; 3], b: &[f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn cross_plain(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

// y_i = x_i^2 * s + y_{i-1}, filled in a loop into a local [f64; 3]
#[differentiate]
fn fixed_output_loop(x: &[f64; 3], s: f64) -> [f64; 3] {
    let mut y = [0.0; 3];
    y[0] = x[0] * x[0] * s;
    for i in 1..3 {
        y[i] = x[i] * x[i] * s + y[i - 1];
    }
    y
}

#[test]
fn fixed_size_array_outputs() {
    let a = [0.3, -1.2, 0.8];
    let b = [1.1, 0.4, -0.6];
    let (y, pullback) = cross_pullback(a, &b);
    assert_eq!(y, cross(a, &b));
    let c = [0.5, -0.25, 2.0];
    let (da, db) = pullback.backward(c);
    assert_close("cross: da", &da, &cross_plain(b, c), 1e-14);
    assert_close("cross: db", &db, &cross_plain(c, a), 1e-14);

    let x = [0.3, -0.7, 1.1];
    let s = 1.7;
    let (y, pullback) = fixed_output_loop_pullback(&x, s);
    assert_eq!(y, fixed_output_loop(&x, s));
    assert_dot_product_test(
        "fixed_output_loop",
        |p| fixed_output_loop(&[p[0], p[1], p[2]], p[3]).to_vec(),
        |p, c| {
            let (_, pb) = fixed_output_loop_pullback(&[p[0], p[1], p[2]], p[3]);
            let (dx, ds) = pb.backward([c[0], c[1], c[2]]);
            vec![dx[0], dx[1], dx[2], ds]
        },
        &[x[0], x[1], x[2], s],
        61,
    );
    let _ = pullback;
}

// ---------------------------------------------------------------------------------------
// 7. Arrays as arguments
// ---------------------------------------------------------------------------------------

// s = sum_{i < n-1} x_i x_{i+1} + cos(x_{n-1-i})
#[differentiate]
fn neighbours(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n - 1 {
        s += x[i] * x[i + 1] + x[n - 1 - i].cos();
    }
    s
}

#[test]
fn reads_at_offsets_and_mirrored_indices() {
    let x = point(6, 67);
    let (value, grad) = neighbours_grad(&x);
    assert_eq!(value.to_bits(), neighbours(&x).to_bits());
    let n = x.len();
    let mut expected = vec![0.0; n];
    for i in 0..n - 1 {
        expected[i] += x[i + 1];
        expected[i + 1] += x[i];
        expected[n - 1 - i] -= x[n - 1 - i].sin();
    }
    assert_close("neighbours", &grad, &expected, 1e-14);
}

// only x[0] is read: the gradient still has the slice's length
#[differentiate]
fn reads_first_only(x: &[f64], k: usize) -> f64 {
    x[0] * x[0] + x[k]
}

#[test]
fn gradient_has_the_parameter_length_even_where_untouched() {
    let x = [1.5, 2.0, 3.0, 4.0, 5.0];
    let (value, grad) = reads_first_only_grad(&x, 2);
    assert_eq!(value, reads_first_only(&x, 2));
    assert_eq!(grad, vec![3.0, 0.0, 1.0, 0.0, 0.0]);
    let (value, grad) = reads_first_only_grad(&x, 0);
    assert_eq!(value, 3.75);
    assert_eq!(grad, vec![4.0, 0.0, 0.0, 0.0, 0.0]);
}

// f = sum x_i^3 over a &Vec, a Vec by value, [f64; 4] and &[f64; 4]  =>  3 x_i^2
#[differentiate]
fn cubes_vec_ref(x: &Vec<f64>) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i] * x[i];
    }
    s
}

#[differentiate]
fn cubes_vec(x: Vec<f64>) -> f64 {
    let mut s = 0.0;
    for v in x {
        s += v * v * v;
    }
    s
}

#[differentiate]
fn cubes_array(x: [f64; 4]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i] * x[i];
    }
    s
}

#[differentiate]
fn cubes_array_ref(x: &[f64; 4]) -> f64 {
    let mut s = 0.0;
    for v in x.iter() {
        s += v * v * v;
    }
    s
}

#[test]
fn vec_and_fixed_array_parameters() {
    let x = [0.5, -1.25, 2.0, 0.75];
    let expected: Vec<f64> = x.iter().map(|v| 3.0 * v * v).collect();
    let v = x.to_vec();

    let (value, grad) = cubes_vec_ref_grad(&v);
    assert_eq!(value.to_bits(), cubes_vec_ref(&v).to_bits());
    assert_close("&Vec", &grad, &expected, 1e-14);

    let (value, grad) = cubes_vec_grad(v.clone());
    assert_eq!(value.to_bits(), cubes_vec(v.clone()).to_bits());
    assert_close("Vec", &grad, &expected, 1e-14);

    let (value, grad): (f64, [f64; 4]) = cubes_array_grad(x);
    assert_eq!(value.to_bits(), cubes_array(x).to_bits());
    assert_close("[f64; 4]", &grad, &expected, 1e-14);

    let (value, grad): (f64, [f64; 4]) = cubes_array_ref_grad(&x);
    assert_eq!(value.to_bits(), cubes_array_ref(&x).to_bits());
    assert_close("&[f64; 4]", &grad, &expected, 1e-14);
}

// f = sqrt(sum w_i x_i^2)  =>  df/dx_i = w_i x_i / f,  df/dw_i = x_i^2 / (2 f)
#[differentiate]
fn weighted_norm<T: Float>(x: &[T], w: &[T]) -> T {
    let mut s = T::zero();
    for i in 0..x.len() {
        s = s + w[i] * x[i] * x[i];
    }
    s.sqrt()
}

#[differentiate]
fn generic_fixed<T: Float>(x: [T; 3], y: &[T; 3]) -> T {
    let mut s = T::zero();
    for i in 0..3 {
        s = s + (x[i] * y[i]).sin();
    }
    s
}

#[test]
fn generic_slices_in_f64_and_f32() {
    let x: [f64; 3] = [0.3, -1.1, 0.7];
    let w: [f64; 3] = [1.0, 2.0, 0.5];
    let (f, (gx, gw)) = weighted_norm_grad(&x, &w);
    assert_eq!(f.to_bits(), weighted_norm(&x, &w).to_bits());
    let ex: Vec<f64> = (0..3).map(|i| w[i] * x[i] / f).collect();
    let ew: Vec<f64> = (0..3).map(|i| x[i] * x[i] / (2.0 * f)).collect();
    assert_close("weighted_norm: dx", &gx, &ex, 1e-14);
    assert_close("weighted_norm: dw", &gw, &ew, 1e-14);

    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let (f32v, (gx32, gw32)) = weighted_norm_grad(&x32, &w32);
    assert_eq!(f32v.to_bits(), weighted_norm(&x32, &w32).to_bits());
    assert!((f32v as f64 - f).abs() < 1e-6);
    for i in 0..3 {
        assert!((gx32[i] as f64 - ex[i]).abs() < 1e-5, "{gx32:?}");
        assert!((gw32[i] as f64 - ew[i]).abs() < 1e-5, "{gw32:?}");
    }

    // d/dx_i sum sin(x_i y_i) = y_i cos(x_i y_i)
    let (a, b): ([f64; 3], [f64; 3]) = ([0.3, 0.9, -0.4], [1.2, -0.5, 2.0]);
    let (value, (ga, gb)) = generic_fixed_grad(a, &b);
    assert_eq!(value.to_bits(), generic_fixed(a, &b).to_bits());
    let ea: Vec<f64> = (0..3).map(|i| b[i] * (a[i] * b[i]).cos()).collect();
    let eb: Vec<f64> = (0..3).map(|i| a[i] * (a[i] * b[i]).cos()).collect();
    assert_close("generic_fixed: da", &ga, &ea, 1e-14);
    assert_close("generic_fixed: db", &gb, &eb, 1e-14);
    let (a32, b32) = (a.map(|v| v as f32), b.map(|v| v as f32));
    let (_, (ga32, _)): (f32, ([f32; 3], [f32; 3])) = generic_fixed_grad(a32, &b32);
    for i in 0..3 {
        assert!((ga32[i] as f64 - ea[i]).abs() < 1e-5);
    }
}

// f = a * sum x_i y_i + b^2 * n  =>  (sum x y, a y, a x, 2 b n)
#[differentiate]
fn mixed_scalars_and_slices(a: f64, x: &[f64], b: f64, y: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * y[i];
    }
    a * s + b * b * n as f64
}

#[test]
fn scalars_and_two_slices() {
    let x = point(4, 71);
    let y = point(4, 73);
    let (a, b, n) = (1.5, -0.5, 3usize);
    let (value, (ga, gx, gb, gy)) = mixed_scalars_and_slices_grad(a, &x, b, &y, n);
    assert_eq!(
        value.to_bits(),
        mixed_scalars_and_slices(a, &x, b, &y, n).to_bits()
    );
    assert_close("da", &[ga], &[dot(&x, &y)], 1e-14);
    assert_close(
        "dx",
        &gx,
        &y.iter().map(|v| a * v).collect::<Vec<_>>(),
        1e-14,
    );
    assert_close("db", &[gb], &[2.0 * b * n as f64], 1e-14);
    assert_close(
        "dy",
        &gy,
        &x.iter().map(|v| a * v).collect::<Vec<_>>(),
        1e-14,
    );
}

// only x is active: f = sum w_i exp(x_i)  =>  w_i exp(x_i)
#[differentiate(wrt(x))]
fn wrt_slice(x: &[f64], w: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += w[i] * x[i].exp();
    }
    s
}

#[test]
fn wrt_selects_a_slice() {
    let x = point(5, 79);
    let w = point(5, 83);
    let (value, gx): (f64, Vec<f64>) = wrt_slice_grad(&x, &w);
    assert_eq!(value.to_bits(), wrt_slice(&x, &w).to_bits());
    let expected: Vec<f64> = (0..5).map(|i| w[i] * x[i].exp()).collect();
    assert_close("wrt(x)", &gx, &expected, 1e-14);
}

// ---------------------------------------------------------------------------------------
// 8. Iterator reductions with simple closures
// ---------------------------------------------------------------------------------------

#[differentiate]
fn iter_sum(x: &[f64]) -> f64 {
    x.iter().sum::<f64>()
}

#[differentiate]
fn iter_map_sum(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>()
}

#[differentiate]
fn iter_zip_map_sum(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>()
}

#[differentiate]
fn iter_fold(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |acc, v| acc + v.sin())
}

#[differentiate]
fn iter_product(x: &[f64]) -> f64 {
    x.iter().product::<f64>()
}

#[differentiate]
fn iter_copied_sum(x: &[f64]) -> f64 {
    let s: f64 = x.iter().copied().sum();
    s * s
}

#[differentiate]
fn range_map_sum(x: &[f64], w: &[f64]) -> f64 {
    let n = x.len();
    let s: f64 = (0..n).map(|i| x[i] * w[i]).sum();
    s
}

// a nonlinear fold: the accumulator enters nonlinearly, so the order of the backward pass
// matters: acc <- acc^2 / 2 + v
#[differentiate]
fn iter_fold_nonlinear(x: &[f64]) -> f64 {
    x.iter().fold(0.25, |acc, &v| 0.5 * acc * acc + v)
}

#[test]
fn iterator_reductions() {
    let x = [0.5, -1.5, 2.0, 0.25];
    let y = [1.0, 3.0, -2.0, 0.5];

    let (v, g) = iter_sum_grad(&x);
    assert_eq!(v.to_bits(), iter_sum(&x).to_bits());
    assert_eq!(g, vec![1.0; 4]);

    let (v, g) = iter_map_sum_grad(&x);
    assert_eq!(v.to_bits(), iter_map_sum(&x).to_bits());
    assert_close("map", &g, &x.map(|v| 2.0 * v), 1e-15);

    let (v, (gx, gy)) = iter_zip_map_sum_grad(&x, &y);
    assert_eq!(v.to_bits(), iter_zip_map_sum(&x, &y).to_bits());
    assert_eq!((gx, gy), (y.to_vec(), x.to_vec()));

    let (v, g) = iter_fold_grad(&x);
    assert_eq!(v.to_bits(), iter_fold(&x).to_bits());
    assert_close("fold", &g, &x.map(f64::cos), 1e-15);

    // d/dx_i prod x = prod_{j != i} x_j
    let (v, g) = iter_product_grad(&x);
    assert_eq!(v.to_bits(), iter_product(&x).to_bits());
    let expected: Vec<f64> = (0..4)
        .map(|i| (0..4).filter(|&j| j != i).map(|j| x[j]).product())
        .collect();
    assert_close("product", &g, &expected, 1e-15);

    let (v, g) = iter_copied_sum_grad(&x);
    assert_eq!(v.to_bits(), iter_copied_sum(&x).to_bits());
    let s: f64 = x.iter().sum();
    assert_close("copied", &g, &[2.0 * s; 4], 1e-15);

    let (v, (gx, gw)) = range_map_sum_grad(&x, &y);
    assert_eq!(v.to_bits(), range_map_sum(&x, &y).to_bits());
    assert_eq!((gx, gw), (y.to_vec(), x.to_vec()));

    let (v, g) = iter_fold_nonlinear_grad(&x);
    assert_eq!(v.to_bits(), iter_fold_nonlinear(&x).to_bits());
    assert_fd("fold_nonlinear", &g, iter_fold_nonlinear, &x);
}

#[test]
fn reductions_over_empty_slices() {
    let empty: [f64; 0] = [];
    let (v, g) = iter_sum_grad(&empty);
    assert_eq!(v.to_bits(), iter_sum(&empty).to_bits());
    assert!(g.is_empty());
    let (v, g) = iter_product_grad(&empty);
    assert_eq!(v, 1.0);
    assert!(g.is_empty());
    let (v, g) = iter_fold_grad(&empty);
    assert_eq!(v, 0.0);
    assert!(g.is_empty());
}

// ---------------------------------------------------------------------------------------
// 9. Calls between differentiated functions taking slices
// ---------------------------------------------------------------------------------------

// sum_i x_i^2 sin(x_i)
#[differentiate]
fn inner_energy(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i] * x[i].sin();
    }
    s
}

#[differentiate]
fn calls_with_slice(x: &[f64]) -> f64 {
    inner_energy(x) * 2.0 + x[0]
}

#[differentiate]
fn calls_with_borrowed_vec(x: Vec<f64>) -> f64 {
    let e = inner_energy(&x);
    e * e
}

#[differentiate]
fn calls_with_local_vec(x: &[f64], s: f64) -> f64 {
    let mut v = vec![0.0; x.len()];
    for i in 0..x.len() {
        v[i] = x[i] * s;
    }
    inner_energy(&v)
}

#[test]
fn calls_pass_slices_between_differentiated_functions() {
    let x = point(5, 89);

    let (value, grad) = calls_with_slice_grad(&x);
    assert_eq!(value.to_bits(), calls_with_slice(&x).to_bits());
    assert_fd("calls_with_slice", &grad, calls_with_slice, &x);

    let (value, grad) = calls_with_borrowed_vec_grad(x.clone());
    assert_eq!(value.to_bits(), calls_with_borrowed_vec(x.clone()).to_bits());
    assert_fd(
        "calls_with_borrowed_vec",
        &grad,
        |p| calls_with_borrowed_vec(p.to_vec()),
        &x,
    );

    let s = 0.8;
    let (value, (gx, gs)) = calls_with_local_vec_grad(&x, s);
    assert_eq!(value.to_bits(), calls_with_local_vec(&x, s).to_bits());
    let mut all = gx.clone();
    all.push(gs);
    let mut at = x.clone();
    at.push(s);
    assert_fd(
        "calls_with_local_vec",
        &all,
        |p| calls_with_local_vec(&p[..5], p[5]),
        &at,
    );
}
