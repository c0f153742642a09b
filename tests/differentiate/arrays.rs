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

// `+=` and `-=` on elements: repeated targets, a target computed from the indices, and an
// update that reads the element it adds to; then a nonlinear read of every element.
#[differentiate]
fn accumulate_in_place(x: &[f64]) -> f64 {
    let n = x.len();
    let mut acc = vec![1.0; n];
    for i in 0..n {
        for j in 0..n {
            acc[j] += x[i] * x[j].sin();
            acc[(i + j) % n] -= 0.25 * x[i] * x[i];
        }
        acc[i] += acc[i] * x[i];
    }
    let mut s = 0.0;
    for j in 0..n {
        s += acc[j] * acc[j].cos();
    }
    s
}

#[test]
fn compound_assignments_to_elements() {
    for n in [1usize, 3, 5] {
        let x = point(n, 40 + n as u64);
        let (value, grad) = accumulate_in_place_grad(&x);
        assert_eq!(value.to_bits(), accumulate_in_place(&x).to_bits());
        assert_fd("accumulate_in_place", &grad, accumulate_in_place, &x);
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

// folds with a float method by path: the maximum (d/dx_i = 1 at the argmax), the minimum of a
// generic float, and the norm by `hypot` (d/dx = x / |x|)
#[differentiate]
fn iter_fold_max(x: &[f64]) -> f64 {
    x.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

#[differentiate]
fn iter_fold_min<T: Float>(x: &[T]) -> T {
    x.iter().cloned().fold(T::infinity(), T::min)
}

#[differentiate]
fn iter_fold_hypot(x: &[f64]) -> f64 {
    x.iter().copied().fold(0.0, f64::hypot)
}

// a fold over a map's values: Σ (2 x_i)², d/dx_i = 8 x_i
#[differentiate]
fn iter_map_fold(x: &[f64]) -> f64 {
    x.iter().map(|v| v * 2.0).fold(0.0, |acc, b| acc + b * b)
}

// `filter` before a `map`, after one (on its values), on a `zip`, before a `fold`, before a
// `collect`, and alone, with every pattern of the `&&f64` item
#[differentiate]
fn iter_filters(x: &[f64], y: &[f64]) -> f64 {
    let logs: f64 = x.iter().filter(|v| **v > 0.0).map(|v| v.ln()).sum();
    let small: f64 = x.iter().map(|v| v * 3.0).filter(|&t| t < 4.0).sum();
    let above: f64 = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a > **b)
        .map(|(a, b)| a * b)
        .sum();
    let product = x
        .iter()
        .copied()
        .filter(|v| *v > 0.5)
        .fold(1.0, |acc, v| acc * v);
    let sines: Vec<f64> = x.iter().filter(|&&v| v < 1.5).map(|v| v.sin()).collect();
    let large: f64 = x.iter().filter(|v| v.abs() > 0.2).sum();
    logs + small + above + product + sines.iter().sum::<f64>() + large
}

// `filter` as the last step of a `for` loop's source: on `iter()` (every item pattern), after
// `enumerate` and `zip`, on a range, on `iter_mut()`, with `continue` in the body
#[differentiate]
fn for_filters(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x.iter().filter(|v| **v > 0.0) {
        s += v.ln();
    }
    for &v in x.iter().filter(|&&v| v < 1.0) {
        s += v * v;
    }
    for (i, v) in x.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        s += *v * (i as f64 + 1.0);
    }
    for (a, b) in x.iter().zip(y).filter(|&(a, b)| *a > *b) {
        s += a * b;
        if *a > 1.0 {
            continue;
        }
        s += a.sin();
    }
    for i in (0..x.len()).filter(|&i| i != 1) {
        s += x[i] * y[i];
    }
    let mut w = x.to_vec();
    for o in w.iter_mut().filter(|o| **o > 0.5) {
        *o *= 3.0;
    }
    s + w.iter().sum::<f64>()
}

// the same loops with `if` in the body, written without `filter`
fn for_filters_by_if(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for v in x {
        if *v > 0.0 {
            s += v.ln();
        }
    }
    for &v in x {
        if v < 1.0 {
            s += v * v;
        }
    }
    for (i, v) in x.iter().enumerate() {
        if i % 2 == 0 {
            s += *v * (i as f64 + 1.0);
        }
    }
    for (a, b) in x.iter().zip(y) {
        if a > b {
            s += a * b;
            if *a <= 1.0 {
                s += a.sin();
            }
        }
    }
    for i in 0..x.len() {
        if i != 1 {
            s += x[i] * y[i];
        }
    }
    let mut w = x.to_vec();
    for o in w.iter_mut() {
        if *o > 0.5 {
            *o *= 3.0;
        }
    }
    s + w.iter().sum::<f64>()
}

#[test]
fn filters_on_for_loop_sources() {
    let x = [0.3, -0.4, 1.2, 0.7, 2.0];
    let y = [0.1, 0.5, -0.2, 0.9, 1.0];
    let (v, (gx, gy)) = for_filters_grad(&x, &y);
    assert_eq!(v.to_bits(), for_filters(&x, &y).to_bits());
    assert_eq!(v.to_bits(), for_filters_by_if(&x, &y).to_bits());
    let point = [x.to_vec(), y.to_vec()].concat();
    let fd = finite_difference_gradient(|p: &[f64]| for_filters(&p[..5], &p[5..]), &point);
    assert_close("for-loop filters", &[gx, gy].concat(), &fd, 1e-7);
}

// `all` and `any` as conditions: on `iter()`, on a range with a predicate that would index
// past the end if it ran after the first `false` (it does not: `acc && p(v)`), after a `map`
// on a `zip`, on `enumerate`
#[differentiate]
fn all_and_any(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    if x.iter().all(|v| *v > -1.0) {
        s += x[0] * 2.0;
    }
    if x.iter().any(|&v| v > 1.0) {
        s += x[1].sin();
    }
    let n = x.len();
    if (0..n).all(|i| i + 1 == n || x[i] <= x[i + 1]) {
        s += x[2];
    }
    let close = x.iter().zip(y).map(|(a, b)| a - b).any(|d| d.abs() < 0.1);
    let all_pos = x
        .iter()
        .enumerate()
        .all(|(i, v)| *v * (i as f64 + 1.0) > -2.0);
    let t = if close { s * y[0] } else { s };
    if all_pos {
        t * t
    } else {
        t
    }
}

// the same with loops and flags
fn all_and_any_by_loops(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut all = true;
    let mut any = false;
    for &v in x {
        all &= v > -1.0;
        any |= v > 1.0;
    }
    if all {
        s += x[0] * 2.0;
    }
    if any {
        s += x[1].sin();
    }
    let mut sorted = true;
    for i in 0..x.len() - 1 {
        sorted &= x[i] <= x[i + 1];
    }
    if sorted {
        s += x[2];
    }
    let mut close = false;
    let mut all_pos = true;
    for i in 0..x.len() {
        close |= (x[i] - y[i]).abs() < 0.1;
        all_pos &= x[i] * (i as f64 + 1.0) > -2.0;
    }
    let t = if close { s * y[0] } else { s };
    if all_pos {
        t * t
    } else {
        t
    }
}

#[test]
fn all_and_any_short_circuit_like_the_methods() {
    let cases = [
        (vec![0.3, 1.4, 2.0], vec![0.35, 0.2, 0.1]),
        (vec![-1.5, 0.4, 0.2], vec![0.0, 1.0, 1.0]),
        (vec![0.5, 0.6, 0.7], vec![0.9, 0.9, 0.9]),
        (vec![0.5, -0.9, 1.7], vec![0.45, 0.9, 0.9]),
    ];
    for (x, y) in &cases {
        let (v, (gx, gy)) = all_and_any_grad(x, y);
        assert_eq!(v.to_bits(), all_and_any(x, y).to_bits());
        assert_eq!(v.to_bits(), all_and_any_by_loops(x, y).to_bits());
        let point = [x.clone(), y.clone()].concat();
        let fd = finite_difference_gradient(|p: &[f64]| all_and_any(&p[..3], &p[3..]), &point);
        assert_close("all and any", &[gx, gy].concat(), &fd, 1e-7);
    }
}

#[test]
fn filters_and_folds_over_maps() {
    let x = [0.3, -0.4, 1.2, 2.0, 0.9];
    let y = [0.1, 0.5, 1.0, 3.0, 0.2];
    let (v, g) = iter_map_fold_grad(&x);
    assert_eq!(v.to_bits(), iter_map_fold(&x).to_bits());
    assert_close("map then fold", &g, &x.map(|xi| 8.0 * xi), 1e-15);

    let (v, (gx, gy)) = iter_filters_grad(&x, &y);
    assert_eq!(v.to_bits(), iter_filters(&x, &y).to_bits());
    let point = [x.to_vec(), y.to_vec()].concat();
    let fd = finite_difference_gradient(|p: &[f64]| iter_filters(&p[..5], &p[5..]), &point);
    assert_close("filters", &[gx, gy].concat(), &fd, 1e-7);
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

    let (v, g) = iter_fold_max_grad(&x);
    assert_eq!(v.to_bits(), iter_fold_max(&x).to_bits());
    assert_eq!(g, vec![0.0, 0.0, 1.0, 0.0]);
    let (v, g) = iter_fold_min_grad(&x);
    assert_eq!(v.to_bits(), iter_fold_min(&x).to_bits());
    assert_eq!(g, vec![0.0, 1.0, 0.0, 0.0]);
    let (v, g) = iter_fold_hypot_grad(&x);
    assert_eq!(v.to_bits(), iter_fold_hypot(&x).to_bits());
    assert_close("fold hypot", &g, &x.map(|xi| xi / v), 1e-14);
    assert_fd("fold hypot", &g, iter_fold_hypot, &x);

    let (v, g) = iter_fold_nonlinear_grad(&x);
    assert_eq!(v.to_bits(), iter_fold_nonlinear(&x).to_bits());
    assert_fd("fold_nonlinear", &g, iter_fold_nonlinear, &x);
}

// `collect` into a `Vec`: mapped elements, zipped pairs, a range reading two arrays, copied
// values and enumerated ones, then a reduction of the results
#[allow(clippy::iter_cloned_collect)] // the chain under test
#[differentiate]
fn collected_chains(x: &[f64], s: f64) -> f64 {
    let y: Vec<f64> = x.iter().map(|v| (v * s).sin()).collect();
    let z = y.iter().zip(x).map(|(a, b)| a * b).collect::<Vec<_>>();
    let w: Vec<f64> = (0..x.len()).map(|i| z[i] * y[x.len() - 1 - i]).collect();
    let copy: Vec<f64> = w.iter().copied().collect();
    let reversed: Vec<f64> = copy.iter().copied().rev().collect();
    let e: Vec<f64> = copy.iter().enumerate().map(|(i, v)| v * i as f64).collect();
    e.iter().sum::<f64>() + copy[0] * s + reversed[0] * reversed[1]
}

// a collected vector as the output, generic in the float type
#[differentiate]
fn collected_output<T: Float>(x: &[T], y: &[T]) -> Vec<T> {
    x.iter().zip(y).map(|(&a, &b)| a.exp() * b).collect()
}

// a vector collected in every iteration of a loop
#[differentiate]
fn collected_per_iteration(x: &[f64], steps: usize) -> f64 {
    let mut state = x.to_vec();
    for _ in 0..steps {
        let next: Vec<f64> = state.iter().map(|v| v.tanh() + 0.5 * v).collect();
        state = next;
    }
    state.iter().map(|v| v * v).sum::<f64>()
}

#[test]
fn collect_into_vectors() {
    let x = point(5, 3350);
    let s = 1.3;
    let (value, (dx, ds)) = collected_chains_grad(&x, s);
    assert_eq!(value.to_bits(), collected_chains(&x, s).to_bits());
    assert_fd("collected_chains, x", &dx, |x| collected_chains(x, s), &x);
    assert_fd(
        "collected_chains, s",
        &[ds],
        |s| collected_chains(&x, s[0]),
        &[s],
    );

    let y = point(5, 3351);
    let (value, pullback) = collected_output_pullback(&x, &y);
    assert_eq!(value, collected_output(&x, &y));
    // d(e^a b)/da = e^a b, d/db = e^a
    let c = point(5, 3352);
    let (dx, dy) = pullback.backward(c.clone());
    let expected_dx: Vec<f64> = (0..5).map(|i| c[i] * x[i].exp() * y[i]).collect();
    let expected_dy: Vec<f64> = (0..5).map(|i| c[i] * x[i].exp()).collect();
    assert_close("collected_output, x", &dx, &expected_dx, 1e-14);
    assert_close("collected_output, y", &dy, &expected_dy, 1e-14);
    let joined = |v: &[f64]| collected_output(&v[..5], &v[5..]);
    let vjp = |v: &[f64], c: &[f64]| {
        let (dx, dy) = collected_output_pullback(&v[..5], &v[5..])
            .1
            .backward(c.to_vec());
        [dx, dy].concat()
    };
    assert_dot_product_test(
        "collected_output",
        joined,
        vjp,
        &[x.clone(), y].concat(),
        3353,
    );

    for steps in [0, 1, 4] {
        let (value, dx) = collected_per_iteration_grad(&x, steps);
        assert_eq!(
            value.to_bits(),
            collected_per_iteration(&x, steps).to_bits()
        );
        assert_fd(
            "collected_per_iteration",
            &dx,
            |x| collected_per_iteration(x, steps),
            &x,
        );
    }
    let empty: [f64; 0] = [];
    assert_eq!(collected_output_grad_free(&empty), Vec::<f64>::new());
}

fn collected_output_grad_free(x: &[f64]) -> Vec<f64> {
    collected_output_pullback(x, x).1.backward(Vec::new()).0
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
    assert_eq!(
        value.to_bits(),
        calls_with_borrowed_vec(x.clone()).to_bits()
    );
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

// slices `a[start..end]` of parameters and locals: blocks passed to a differentiated callee
// (a generic one too), the open forms `x[1..]`, `x[..n]`, `x[..=k]`, `x[..]`, a slice of a
// slice, a slice of a local vector written before, an empty slice
#[allow(clippy::redundant_slicing)] // `x[..]` under test
#[differentiate]
fn sliced_blocks(x: &[f64], w: [f64; 4], d: usize) -> f64 {
    let mut total = 0.0;
    for k in 0..x.len() / d {
        let block = &x[k * d..(k + 1) * d];
        total += inner_energy(block) * w[k % 4] + generic_dot(block, &w[..d]) * block[0];
    }
    let n = x.len();
    // the Rosenbrock terms through shifted slices
    let pairs: f64 = x[1..]
        .iter()
        .zip(&x[..n - 1])
        .map(|(b, a)| (b - a * a) * (b - a * a))
        .sum();
    let head: f64 = x[..=1].iter().copied().sum();
    let all = &x[..];
    let inner = &all[1..n - 1][1..];
    let mut scaled = vec![0.0; n];
    for i in 0..n {
        scaled[i] = x[i] * w[i % 4];
    }
    let window = &scaled[n - 3..];
    let empty = &x[2..2];
    total + pairs * head + inner[0] * w[2..][1] + window[2] * window[0] + empty.len() as f64
}

#[differentiate]
fn generic_dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut s = T::zero();
    for i in 0..a.len() {
        s = s + a[i] * b[i];
    }
    s
}

// a slice as the output: d/dx of `x[1..n-1]` scaled is a shifted diagonal
#[differentiate]
fn sliced_output(x: &[f64], s: f64) -> Vec<f64> {
    let n = x.len();
    let middle = &x[1..n - 1];
    middle.iter().map(|v| v * s).collect()
}

// slices of a borrowed parameter borrow their range (no copy): in a loop, in a branch's arm,
// passed to a call that a product loop replays in the backward pass, a slice of a slice
#[differentiate]
fn sliced_borrowed(x: &[f64], c: f64) -> f64 {
    let mut s = 0.0;
    let first = &x[0..2];
    for k in 1..3 {
        let window = &x[k..k + 2];
        s += first[0] * window[1] * window[0];
    }
    let t = if c > 0.0 {
        let pair = &x[1..3];
        pair[0] * pair[1] * c
    } else {
        x[0]
    };
    let mut p = 1.0;
    for k in 0..x.len() - 1 {
        p = p * generic_dot(&x[k..k + 2], &x[k..k + 2]).sin() + p.cos();
    }
    let v = &x[1..];
    let w = &v[1..];
    s + t + p + w[0] * w[1] * v[0] + first[1]
}

// borrowed slices of a parameter yielded by a branch and carried by a loop (references, as
// the user's `&x[a..b]` is)
#[differentiate]
fn sliced_borrowed_carried(x: &[f64], c: f64) -> f64 {
    let pair = if c > 0.0 { &x[0..2] } else { &x[1..3] };
    let mut window = &x[0..2];
    let mut s = pair[0] * pair[1] * c;
    for k in 1..x.len() - 1 {
        s += window[0] * window[1].sin();
        window = &x[k..k + 2];
    }
    s + window[1]
}

// a reference to a local vector carried by a loop and chosen by a branch
#[differentiate]
fn carried_references(x: &[f64], c: f64) -> f64 {
    let a = vec![c; 2];
    let b = x.to_vec();
    let mut current = &a;
    let mut s = 0.0;
    for k in 0..2 {
        s += current[k] * x[k];
        current = &b;
    }
    let chosen = if c > 0.0 { &a } else { &b };
    s + chosen[0] * current[1]
}

// what the diagnostic for slices of local vectors leaving their arm or iteration suggests:
// copies of ranges, yielded by a branch and carried by a loop
#[differentiate]
fn sliced_copies_carried(x: &[f64], c: f64) -> f64 {
    let pair = if c > 0.0 {
        x[0..2].to_vec()
    } else {
        x[1..3].to_vec()
    };
    let mut window = x[0..2].to_vec();
    let mut s = pair[0] * pair[1] * c;
    for k in 1..x.len() - 1 {
        s += window[0] * window[1];
        window = x[k..k + 2].to_vec();
    }
    s + window[1]
}

// windows and chunks of a parameter (borrowed) and of a local vector (copied): Rosenbrock by
// `windows(2)`, blocks by `chunks_exact(d)` with their index passed to a callee, `chunks(d)`
// with a shorter last chunk, windows of a local collected into a vector
#[differentiate]
fn chunked_sums(x: &[f64], w: &[f64], d: usize) -> f64 {
    let rosenbrock: f64 = x
        .windows(2)
        .map(|p| 100.0 * (p[1] - p[0] * p[0]).powi(2) + (1.0 - p[0]).powi(2))
        .sum();
    let mut blocks = 0.0;
    for (k, block) in x.chunks_exact(d).enumerate() {
        blocks += generic_dot(block, &w[..d]) * (k as f64 + 1.0);
    }
    let mut ends = 0.0;
    for c in x.chunks(d) {
        ends += c[c.len() - 1] * c[0];
    }
    let local: Vec<f64> = x.iter().map(|v| v.sin()).collect();
    let triples: Vec<f64> = local.windows(3).map(|q| q[0] * q[2] + q[1]).collect();
    rosenbrock + blocks + ends + triples.iter().sum::<f64>()
}

#[differentiate]
fn windows_of_zero(x: &[f64], k: usize) -> f64 {
    x.windows(k).map(|p| p.len() as f64).sum::<f64>() + x[0]
}

#[differentiate]
fn chunks_of_zero(x: &[f64], k: usize) -> f64 {
    let mut s = x[0];
    for c in x.chunks(k) {
        s += c[0];
    }
    s
}

#[differentiate]
fn exact_chunks_of_zero(x: &[f64], k: usize) -> f64 {
    x.chunks_exact(k).map(|c| c[0] * c[0]).sum::<f64>() + x[0]
}

/// The message a panic carried.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

#[test]
fn zero_sizes_panic_with_the_slice_methods_message() {
    let x = [1.0, 2.0, 3.0];
    let cases: [(&str, fn() -> f64, fn() -> f64); 3] = [
        (
            "window size must be non-zero",
            || windows_of_zero(&[1.0, 2.0, 3.0], 0),
            || windows_of_zero_grad(&[1.0, 2.0, 3.0], 0).0,
        ),
        (
            "chunk size must be non-zero",
            || chunks_of_zero(&[1.0, 2.0, 3.0], 0),
            || chunks_of_zero_grad(&[1.0, 2.0, 3.0], 0).0,
        ),
        (
            "chunk size must be non-zero",
            || exact_chunks_of_zero(&[1.0, 2.0, 3.0], 0),
            || exact_chunks_of_zero_grad(&[1.0, 2.0, 3.0], 0).0,
        ),
    ];
    for (message, primal, grad) in cases {
        let primal = std::panic::catch_unwind(primal).expect_err("the primal panics");
        let grad = std::panic::catch_unwind(grad).expect_err("the gradient panics");
        assert_eq!(panic_message(primal), message);
        assert_eq!(panic_message(grad), message);
    }
    // a nonzero size differentiates as usual, against finite differences
    for k in 1..=4 {
        let (value, dx) = chunks_of_zero_grad(&x, k);
        assert_eq!(value, chunks_of_zero(&x, k));
        assert_fd("chunks", &dx, |x| chunks_of_zero(x, k), &x);
        let (value, dx) = exact_chunks_of_zero_grad(&x, k);
        assert_eq!(value, exact_chunks_of_zero(&x, k));
        assert_fd("exact chunks", &dx, |x| exact_chunks_of_zero(x, k), &x);
        let (value, dx) = windows_of_zero_grad(&x, k);
        assert_eq!(value, windows_of_zero(&x, k));
        assert_fd("windows", &dx, |x| windows_of_zero(x, k), &x);
    }
}

/// The gradient of `f(x, c)` from `_grad`: its value bit for bit the primal's, both parts
/// against finite differences, and the pullback's `x̄` (when given) equal to `_grad`'s.
#[track_caller]
fn assert_in_slice_and_scalar(
    what: &str,
    f: fn(&[f64], f64) -> f64,
    grad: fn(&[f64], f64) -> (f64, (Vec<f64>, f64)),
    pullback_dx: Option<&dyn Fn(&[f64], f64) -> Vec<f64>>,
    x: &[f64],
    c: f64,
) {
    let (value, (dx, dc)) = grad(x, c);
    assert_eq!(value.to_bits(), f(x, c).to_bits(), "{what}: value");
    assert_fd(what, &dx, |x| f(x, c), x);
    assert_fd(what, &[dc], |c| f(x, c[0]), &[c]);
    if let Some(pullback_dx) = pullback_dx {
        assert_close(what, &pullback_dx(x, c), &dx, 1e-12);
    }
}

#[test]
fn slices_of_arrays() {
    let (d, w) = (2, [0.7, -1.2, 0.4, 2.0]);
    for n in [4usize, 6, 8] {
        let x = point(n, 3360 + n as u64);
        let (value, (dx, dw)) = sliced_blocks_grad(&x, w, d);
        assert_eq!(value.to_bits(), sliced_blocks(&x, w, d).to_bits());
        assert_fd("sliced_blocks, x", &dx, |x| sliced_blocks(x, w, d), &x);
        assert_fd(
            "sliced_blocks, w",
            &dw,
            |w| sliced_blocks(&x, w.try_into().unwrap(), d),
            &w,
        );
        let (_, pullback) = sliced_blocks_pullback(&x, w, d);
        let (px, pw) = pullback.backward(1.0);
        assert_close("sliced_blocks, pullback", &px, &dx, 1e-12);
        assert_close("sliced_blocks, pullback w", &pw, &dw, 1e-12);

        for c in [1.5, -1.0] {
            let pullback = |x: &[f64], c| sliced_borrowed_pullback(x, c).1.backward(1.0).0;
            assert_in_slice_and_scalar(
                "sliced_borrowed",
                sliced_borrowed,
                sliced_borrowed_grad,
                Some(&pullback),
                &x,
                c,
            );
        }
        for c in [0.5, -2.0] {
            let pullback = |x: &[f64], c| sliced_borrowed_carried_pullback(x, c).1.backward(1.0).0;
            assert_in_slice_and_scalar(
                "sliced_borrowed_carried",
                sliced_borrowed_carried,
                sliced_borrowed_carried_grad,
                Some(&pullback),
                &x,
                c,
            );
            assert_in_slice_and_scalar(
                "carried_references",
                carried_references,
                carried_references_grad,
                None,
                &x,
                c,
            );
            assert_in_slice_and_scalar(
                "sliced_copies_carried",
                sliced_copies_carried,
                sliced_copies_carried_grad,
                None,
                &x,
                c,
            );
        }

        let w = point(3, 3380);
        for d in [1usize, 2, 3] {
            let (value, (dx, dw)) = chunked_sums_grad(&x, &w, d);
            assert_eq!(value.to_bits(), chunked_sums(&x, &w, d).to_bits());
            assert_fd("chunked_sums, x", &dx, |x| chunked_sums(x, &w, d), &x);
            assert_fd("chunked_sums, w", &dw, |w| chunked_sums(&x, w, d), &w);
            let (_, pullback) = chunked_sums_pullback(&x, &w, d);
            assert_close(
                "chunked_sums, pullback",
                &pullback.backward(1.0).0,
                &dx,
                1e-12,
            );
        }

        let s = 1.7;
        let (y, pullback) = sliced_output_pullback(&x, s);
        assert_eq!(y, sliced_output(&x, s));
        let c = point(n - 2, 3370);
        let (dx, ds) = pullback.backward(c.clone());
        // y_i = s x_{i+1}: x̄_{i+1} = s c_i, s̄ = sum_i c_i x_{i+1}
        let mut expected = vec![0.0; n];
        for i in 0..n - 2 {
            expected[i + 1] = s * c[i];
        }
        assert_close("sliced_output, x", &dx, &expected, 1e-14);
        let expected_ds: f64 = (0..n - 2).map(|i| c[i] * x[i + 1]).sum();
        assert_close("sliced_output, s", &[ds], &[expected_ds], 1e-14);
        assert_dot_product_test(
            "sliced_output",
            |x| sliced_output(x, s),
            |x, c| sliced_output_pullback(x, s).1.backward(c.to_vec()).0,
            &x,
            3371,
        );
    }
}

// ---------------------------------------------------------------------------------------
// More array and reduction cases
// ---------------------------------------------------------------------------------------

const WEIGHTS: [f64; 3] = [1.0, 2.0, 0.5];

// indexing a constant array and building an array literal of active values:
// f = x w_1 + a_0 a_1 with a = [x, 2x]  =>  df/dx = w_1 + 4x
#[differentiate]
fn constant_array_and_literal(x: f64) -> f64 {
    let a = [x, 2.0 * x];
    x * WEIGHTS[1] + a[0] * a[1]
}

#[test]
fn constant_arrays_and_array_literals() {
    let (v, g) = constant_array_and_literal_grad(1.5);
    assert_eq!(v.to_bits(), constant_array_and_literal(1.5).to_bits());
    assert_eq!(g, 2.0 + 4.0 * 1.5);
}

// a closure reading an active scalar captured from outside: f = sum_i w x_i^2
// => df/dx_i = 2 w x_i, df/dw = sum x_i^2
#[differentiate]
fn closure_captures_active_scalar(x: &[f64], w: f64) -> f64 {
    let scale = w * 1.0;
    x.iter().map(|v| v * v * scale).sum::<f64>()
}

// a fold whose closure reads an active scalar: Horner's rule p(t) = sum_i x_i t^(n-1-i)
#[differentiate]
fn horner(x: &[f64], t: f64) -> f64 {
    x.iter().fold(0.0, |acc, v| acc * t + v)
}

// Horner over the reversed coefficients: p(t) = sum_i x_i t^i
#[differentiate]
fn horner_rev(x: &[f64], t: f64) -> f64 {
    x.iter().rev().fold(0.0, |acc, &v| acc * t + v)
}

// enumerate and zip inside reductions
#[differentiate]
fn enumerate_zip_reductions(x: &[f64], y: &[f64]) -> f64 {
    let a = x
        .iter()
        .enumerate()
        .map(|(i, v)| v * (i as f64 + 1.0))
        .sum::<f64>();
    let b = x
        .iter()
        .zip(y.iter())
        .fold(1.0, |acc, (p, q)| acc * (1.0 + p * q));
    a * b
}

#[test]
fn closures_reading_active_values() {
    let x = point(5, 139);
    let w = 0.75;
    let (v, (gx, gw)) = closure_captures_active_scalar_grad(&x, w);
    assert_eq!(v.to_bits(), closure_captures_active_scalar(&x, w).to_bits());
    assert_close(
        "captured: dx",
        &gx,
        &x.iter().map(|v| 2.0 * w * v).collect::<Vec<_>>(),
        1e-15,
    );
    assert_close("captured: dw", &[gw], &[dot(&x, &x)], 1e-15);

    // dp/dx_i = t^(n-1-i), dp/dt = sum_i (n-1-i) x_i t^(n-2-i)
    let t = 1.3;
    let n = x.len();
    let (v, (gx, gt)) = horner_grad(&x, t);
    assert_eq!(v.to_bits(), horner(&x, t).to_bits());
    let ex: Vec<f64> = (0..n).map(|i| t.powi((n - 1 - i) as i32)).collect();
    let et: f64 = (0..n - 1)
        .map(|i| (n - 1 - i) as f64 * x[i] * t.powi((n - 2 - i) as i32))
        .sum();
    assert_close("horner: dx", &gx, &ex, 1e-14);
    assert_close("horner: dt", &[gt], &[et], 1e-14);

    let (v, (gx, gt)) = horner_rev_grad(&x, t);
    assert_eq!(v.to_bits(), horner_rev(&x, t).to_bits());
    let ex: Vec<f64> = (0..n).map(|i| t.powi(i as i32)).collect();
    let et: f64 = (1..n).map(|i| i as f64 * x[i] * t.powi(i as i32 - 1)).sum();
    assert_close("horner_rev: dx", &gx, &ex, 1e-14);
    assert_close("horner_rev: dt", &[gt], &[et], 1e-14);

    let y = point(5, 149);
    let (v, (gx, gy)) = enumerate_zip_reductions_grad(&x, &y);
    assert_eq!(v.to_bits(), enumerate_zip_reductions(&x, &y).to_bits());
    let mut all = gx.clone();
    all.extend(&gy);
    let mut at = x.clone();
    at.extend(&y);
    assert_fd(
        "enumerate_zip_reductions",
        &all,
        |p| enumerate_zip_reductions(&p[..5], &p[5..]),
        &at,
    );
}

#[test]
fn product_with_a_zero_factor() {
    // d/dx_i prod x = prod_{j != i} x_j: finite, no division by the zero factor
    let x = [2.0, 0.0, 3.0, -1.5];
    let (v, g) = iter_product_grad(&x);
    assert_eq!(v, 0.0);
    assert_eq!(g, vec![0.0, -9.0, 0.0, 0.0]);
    let x = [0.0, 0.0, 3.0];
    let (_, g) = iter_product_grad(&x);
    assert_eq!(g, vec![0.0, 0.0, 0.0]);
}

// mean and (population) variance
// d var / dx_i = 2 (x_i - mean) / n
#[differentiate]
fn variance(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let mut s = 0.0;
    for v in x {
        let d = v - mean;
        s += d * d;
    }
    s / n
}

#[test]
fn variance_gradient() {
    let x = point(7, 151);
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let (v, g) = variance_grad(&x);
    assert_eq!(v.to_bits(), variance(&x).to_bits());
    let expected: Vec<f64> = x.iter().map(|v| 2.0 * (v - mean) / n).collect();
    assert_close("variance", &g, &expected, 1e-15);
}

// conditional writes into a vector: an in-place ReLU, then a shift to the right by copying
// elements (v[i] = v[i - 1], from the end)
#[differentiate]
fn relu_then_shift(x: &[f64]) -> f64 {
    let n = x.len();
    let mut v = x.to_vec();
    for i in 0..n {
        if v[i] < 0.0 {
            v[i] = 0.0;
        }
    }
    for i in (1..n).rev() {
        v[i] = v[i - 1];
    }
    v[0] = x[n - 1] * 2.0;
    let mut s = 0.0;
    for i in 0..n {
        s += v[i] * (i as f64 + 1.0);
    }
    s
}

#[test]
fn conditional_writes_and_element_copies() {
    // v = [2 x_{n-1}, relu(x_0), ..., relu(x_{n-2})], s = sum (i + 1) v_i
    let x = [0.5, -1.0, 2.0, -0.25, 1.5];
    let (v, g) = relu_then_shift_grad(&x);
    assert_eq!(v.to_bits(), relu_then_shift(&x).to_bits());
    assert_eq!(g, vec![2.0, 0.0, 4.0, 0.0, 2.0]);
}

// the smallest case of the above: a constant written over an element.
// f = v_0 + v_1 with v_0 overwritten by 0  =>  [0, 1]
#[differentiate]
fn constant_written_over_an_element(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    v[0] = 0.0;
    v[0] + v[1]
}

#[test]
fn a_constant_written_over_an_element_gets_no_cotangent() {
    let x = [-1.0, 2.0];
    let (v, g) = constant_written_over_an_element_grad(&x);
    assert_eq!(v, constant_written_over_an_element(&x));
    assert_eq!(g, vec![0.0, 1.0]);
}

// a triangular nested loop (the inner trip count depends on the outer index) writing a
// lower-triangular product: y_i = sum_{j <= i} L_ij x_j with L_ij = x_i - x_j + 1
#[differentiate]
fn triangular(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut y = vec![0.0; n];
    for i in 0..n {
        for j in 0..=i {
            y[i] += (x[i] - x[j] + 1.0) * x[j];
        }
    }
    y
}

#[test]
fn triangular_nested_loop() {
    let x = point(6, 157);
    let (y, _) = triangular_pullback(&x);
    assert_eq!(y, triangular(&x));
    assert_dot_product_test(
        "triangular",
        triangular,
        |x, c| triangular_pullback(x).1.backward(c.to_vec()),
        &x,
        163,
    );
}

// a scalar differentiated function called in a loop, with the carried value as argument
#[differentiate]
fn step(s: f64, v: f64) -> f64 {
    (s * v).sin() + v
}

#[differentiate]
fn calls_in_a_loop(x: &[f64]) -> f64 {
    let mut s = 0.5;
    for i in 0..x.len() {
        s = step(s, x[i]);
    }
    let mut v = x.to_vec();
    let mut e = 0.0;
    for k in 0..3 {
        e += inner_energy(&v) * (k as f64 + 1.0);
        v[k] = v[k] * s;
    }
    s + e
}

#[test]
fn differentiated_calls_inside_loops() {
    let x = point(4, 167);
    let (v, g) = calls_in_a_loop_grad(&x);
    assert_eq!(v.to_bits(), calls_in_a_loop(&x).to_bits());
    assert_fd("calls_in_a_loop", &g, calls_in_a_loop, &x);
}

// f = sum_i x_i^2 y_i for any float type: forward-over-reverse through slices
#[differentiate]
fn generic_weighted_squares<T: Float>(x: &[T], y: &[T]) -> T {
    let mut s = T::zero();
    for i in 0..x.len() {
        s = s + x[i] * x[i] * y[i];
    }
    s * s
}

#[test]
fn forward_over_reverse_through_slices() {
    // Hessian-vector product H t of f(x) = (sum x_i^2 y_i)^2 with respect to x, by duals,
    // against finite differences of the reverse-mode gradient along t.
    let x = point(4, 173);
    let y = point(4, 179);
    let t = point(4, 181);
    let xd: Vec<Dual<f64>> = (0..4).map(|i| Dual::new(x[i], t[i])).collect();
    let yd: Vec<Dual<f64>> = y.iter().map(|&v| Dual::constant(v)).collect();
    let (_, (gx, _)) = generic_weighted_squares_grad(&xd, &yd);
    let grad_x = |p: &[f64]| generic_weighted_squares_grad(p, &y).1 .0;
    let hv = jvp_fd(grad_x, &x, &t);
    let plain = grad_x(&x);
    for i in 0..4 {
        assert!((gx[i].re - plain[i]).abs() < 1e-14);
        assert!(
            autodiff::relative_error(gx[i].eps, hv[i]) < 1e-8,
            "{i}: {} vs {}",
            gx[i].eps,
            hv[i]
        );
    }
    let _ = generic_weighted_squares(&x, &y);
}

// a const-generic array length
#[differentiate]
fn const_generic_length<const N: usize>(x: [f64; N]) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        s += x[i] * x[i];
    }
    s
}

#[test]
fn const_generic_array_parameter() {
    let (v, g) = const_generic_length_grad([1.0, 2.0, 3.0]);
    assert_eq!(v, const_generic_length([1.0, 2.0, 3.0]));
    assert_eq!(g, [2.0, 4.0, 6.0]);
}

// the identity and a copy with one element changed, as vector outputs
#[differentiate]
fn copy_with_change(x: &[f64], s: f64) -> Vec<f64> {
    let mut y = x.to_vec();
    y[0] = s * y[0];
    y
}

#[test]
fn copied_vector_output() {
    let x = [1.5, -2.0, 0.5];
    let (y, pullback) = copy_with_change_pullback(&x, 3.0);
    assert_eq!(y, copy_with_change(&x, 3.0));
    let (dx, ds) = pullback.backward(vec![1.0, 10.0, 100.0]);
    assert_eq!(dx, vec![3.0, 10.0, 100.0]);
    assert_eq!(ds, 1.5);
}

// a tuple output mixing a scalar and a vector.
#[differentiate]
fn scalar_and_vector(x: &[f64]) -> (f64, Vec<f64>) {
    let mut y = vec![0.0; x.len()];
    let mut s = 0.0;
    for i in 0..x.len() {
        y[i] = x[i] * x[i];
        s += y[i];
    }
    (s, y)
}

#[test]
fn tuple_output_with_a_vector() {
    let x = [1.0, -2.0, 0.5];
    let ((s, y), pullback) = scalar_and_vector_pullback(&x);
    assert_eq!((s, y.clone()), scalar_and_vector(&x));
    // d/dx_i [c0 s + sum c_j y_j] = 2 x_i (c0 + c_i)
    let dx = pullback.backward((2.0, vec![1.0, 0.0, -1.0]));
    assert_eq!(dx, vec![6.0, -8.0, 1.0]);
}

// calls to a differentiated function returning a vector.
#[differentiate]
fn calls_returning_vectors(x: &[f64], s: f64) -> f64 {
    let mut v = vec![0.0; x.len()];
    for i in 0..x.len() {
        v[i] = x[i] * s;
    }
    let y = cumsum(&v);
    let z = sin_running_product(&y);
    inner_energy(&y) * 0.5 + z[z.len() - 1]
}

#[test]
fn calls_to_functions_returning_vectors() {
    let x = point(5, 199);
    let s = 0.8;
    let (value, (gx, gs)) = calls_returning_vectors_grad(&x, s);
    assert_eq!(value.to_bits(), calls_returning_vectors(&x, s).to_bits());
    let mut all = gx.clone();
    all.push(gs);
    let mut at = x.clone();
    at.push(s);
    assert_fd(
        "calls_returning_vectors",
        &all,
        |p| calls_returning_vectors(&p[..5], p[5]),
        &at,
    );
}

// a callee whose `wrt` leaves its slice parameter out: the caller still gets dx
#[differentiate(wrt(s))]
fn scaled_norm(x: &[f64], s: f64) -> f64 {
    let mut q = 0.0;
    for v in x {
        q += v * v;
    }
    q * s
}

// callees taking a fixed array by value and a &Vec
#[differentiate]
fn first_times_last(a: [f64; 3]) -> f64 {
    a[0] * a[2]
}

#[differentiate]
fn vec_ref_sum(v: &Vec<f64>) -> f64 {
    v.iter().sum::<f64>()
}

#[differentiate]
fn calls_with_constant_parameters(x: &[f64], s: f64) -> f64 {
    let v = vec![x[0], x[1] * s, x[2]];
    let a = [x[0] * 2.0, x[1], x[2] + s];
    scaled_norm(x, s) + first_times_last(a) + vec_ref_sum(&v)
}

#[test]
fn callee_constant_parameters_keep_the_caller_derivative() {
    let x = [0.4, -1.1, 0.9];
    let s = 1.7;
    // wrt narrows the callee's public gradient only
    let (_, ds) = scaled_norm_grad(&x, s);
    assert_eq!(ds, dot(&x, &x));
    let (value, (gx, gs)) = calls_with_constant_parameters_grad(&x, s);
    assert_eq!(
        value.to_bits(),
        calls_with_constant_parameters(&x, s).to_bits()
    );
    // f = s |x|^2 + 2 x0 (x2 + s) + x0 + x1 s + x2
    let ex = [
        2.0 * s * x[0] + 2.0 * (x[2] + s) + 1.0,
        2.0 * s * x[1] + s,
        2.0 * s * x[2] + 2.0 * x[0] + 1.0,
    ];
    let es = dot(&x, &x) + 2.0 * x[0] + x[1];
    assert_close("dx", &gx, &ex, 1e-14);
    assert_close("ds", &[gs], &[es], 1e-14);
    let _ = (first_times_last([1.0; 3]), vec_ref_sum(&vec![1.0]));
}

// ---------------------------------------------------------------------------------------
// Index and mask arrays, parameter forms, copies
// ---------------------------------------------------------------------------------------

// gather through an index slice (integer slices are constants): f = sum_k (k + 1) x[idx[k]]
#[differentiate]
fn gather(x: &[f64], idx: &[usize]) -> f64 {
    let mut s = 0.0;
    for k in 0..idx.len() {
        s += x[idx[k]] * (k as f64 + 1.0);
    }
    s
}

// scatter-add with repeated indices: y[idx[k]] += x[k]^2
#[differentiate]
fn scatter(x: &[f64], idx: &[usize]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for (k, &i) in idx.iter().enumerate() {
        y[i] += x[k] * x[k];
    }
    y
}

// a bool mask: f = sum_{mask_i} exp(x_i)
#[differentiate]
fn masked(x: &[f64], mask: &[bool]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        if mask[i] {
            s += x[i].exp();
        }
    }
    s
}

#[test]
fn index_and_mask_arrays_are_constants() {
    let x = [1.0, 2.0, 3.0];
    let (v, g) = gather_grad(&x, &[2, 0, 2]);
    assert_eq!(v, gather(&x, &[2, 0, 2]));
    assert_eq!(g, vec![2.0, 0.0, 4.0]);

    // d/dx_k = 2 x_k c[idx[k]]
    let (y, pullback) = scatter_pullback(&x, &[2, 0, 2]);
    assert_eq!(y, scatter(&x, &[2, 0, 2]));
    assert_eq!(
        pullback.backward(vec![10.0, 0.0, 1.0]),
        vec![2.0, 40.0, 6.0]
    );

    let (v, g) = masked_grad(&x, &[true, false, true]);
    assert_eq!(v, masked(&x, &[true, false, true]));
    assert_eq!(g, vec![1f64.exp(), 0.0, 3f64.exp()]);
}

// a `mut` vector parameter written in place: f = x0 x1 + x1
#[differentiate]
fn mut_vec_parameter(mut x: Vec<f64>) -> f64 {
    x[0] = x[0] * x[1];
    x[0] + x[1]
}

// a non-generic f32 slice in, a Vec<f32> out
#[differentiate]
fn squares_f32(x: &[f32]) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.len());
    for v in x {
        y.push(v * v);
    }
    y
}

// aliases of a slice parameter
#[differentiate]
fn slice_aliases(x: &[f64]) -> f64 {
    let y = x;
    let z = y;
    z[0] * y[1]
}

// clone of a &Vec, swapped and written: v = [3 x1, x0], f = 3 x1 + x0^2
#[differentiate]
fn clone_swap_write(x: &Vec<f64>) -> f64 {
    let mut v = x.clone();
    v.swap(0, 1);
    v[0] = v[0] * 3.0;
    v[0] + v[1] * v[1]
}

// a copy of a fixed array written and returned: y = [x0, x0 x2, x2]
#[differentiate]
fn array_copy_written(x: [f64; 3]) -> [f64; 3] {
    let mut y = x;
    y[1] = y[0] * y[2];
    y
}

#[test]
fn parameter_forms_and_copies() {
    let (v, g) = mut_vec_parameter_grad(vec![1.0, 2.0]);
    assert_eq!(v, mut_vec_parameter(vec![1.0, 2.0]));
    assert_eq!((v, g), (4.0, vec![2.0, 2.0]));

    let (y, pullback) = squares_f32_pullback(&[1.0f32, -2.0]);
    assert_eq!(y, squares_f32(&[1.0, -2.0]));
    assert_eq!(pullback.backward(vec![1.0, 0.5]), vec![2.0f32, -2.0]);

    let (v, g) = slice_aliases_grad(&[1.0, 2.0]);
    assert_eq!((v, g), (slice_aliases(&[1.0, 2.0]), vec![2.0, 1.0]));

    let x = vec![1.0, 2.0];
    let (v, g) = clone_swap_write_grad(&x);
    assert_eq!((v, g), (clone_swap_write(&x), vec![2.0, 3.0]));

    let (y, pullback) = array_copy_written_pullback([1.0, 2.0, 3.0]);
    assert_eq!(y, array_copy_written([1.0, 2.0, 3.0]));
    // c = [1, 1, 1]: dx0 = 1 + x2, dx1 = 0 (overwritten), dx2 = 1 + x0
    assert_eq!(pullback.backward([1.0; 3]), [4.0, 0.0, 2.0]);
}

// `to_vec` on a fixed-size array parameter.
#[differentiate]
fn array_to_vec(x: [f64; 3]) -> f64 {
    let v = x.to_vec();
    v[0] * v[2]
}

#[test]
fn to_vec_of_a_fixed_array() {
    let (v, g) = array_to_vec_grad([1.0, 2.0, 3.0]);
    assert_eq!((v, g), (array_to_vec([1.0, 2.0, 3.0]), [3.0, 0.0, 1.0]));
}

// ---------------------------------------------------------------------------------------
// Nested reductions, reductions in loops, reductions over ranges
// ---------------------------------------------------------------------------------------

// x^T M x as nested `map(..).sum()` over index ranges
#[differentiate]
fn nested_reductions(m: &[f64], x: &[f64]) -> f64 {
    let n = x.len();
    (0..n)
        .map(|i| (0..n).map(|j| m[i * n + j] * x[j]).sum::<f64>() * x[i])
        .sum::<f64>()
}

// a reduction inside a loop body, reading the carried value
#[differentiate]
fn reduction_in_a_loop(x: &[f64]) -> f64 {
    let mut s = 0.5;
    for k in 0..3usize {
        s += x.iter().map(|v| v * (k as f64)).sum::<f64>() * s.cos();
    }
    s
}

#[differentiate]
fn exp_product(x: &[f64]) -> f64 {
    x.iter().map(|v| v.exp()).product::<f64>()
}

#[differentiate]
fn inclusive_range_reduction(x: &[f64]) -> f64 {
    let n = x.len();
    (1..=n - 1).map(|i| x[i] * x[i - 1]).sum::<f64>()
}

#[differentiate]
fn reversed_range_fold(x: &[f64]) -> f64 {
    let n = x.len();
    (0..n).rev().fold(0.0, |acc, i| acc * 0.5 + x[i])
}

#[differentiate]
fn stepped_range_reduction(x: &[f64]) -> f64 {
    let n = x.len();
    (0..n).step_by(2).map(|i| x[i].sin()).sum::<f64>()
}

#[test]
fn nested_and_range_reductions() {
    let x = point(4, 211);
    let m = point(16, 223);
    let (v, (gm, gx)) = nested_reductions_grad(&m, &x);
    assert_eq!(v.to_bits(), nested_reductions(&m, &x).to_bits());
    let mut all = gm.clone();
    all.extend(&gx);
    let mut at = m.clone();
    at.extend(&x);
    assert_fd(
        "nested_reductions",
        &all,
        |p| nested_reductions(&p[..16], &p[16..]),
        &at,
    );

    type Case = (
        &'static str,
        fn(&[f64]) -> (f64, Vec<f64>),
        fn(&[f64]) -> f64,
    );
    let cases: [Case; 5] = [
        (
            "reduction_in_a_loop",
            |x| reduction_in_a_loop_grad(x),
            reduction_in_a_loop,
        ),
        ("exp_product", |x| exp_product_grad(x), exp_product),
        (
            "inclusive_range_reduction",
            |x| inclusive_range_reduction_grad(x),
            inclusive_range_reduction,
        ),
        (
            "reversed_range_fold",
            |x| reversed_range_fold_grad(x),
            reversed_range_fold,
        ),
        (
            "stepped_range_reduction",
            |x| stepped_range_reduction_grad(x),
            stepped_range_reduction,
        ),
    ];
    for (what, grad, f) in cases {
        let (v, g) = grad(&x);
        assert_eq!(v.to_bits(), f(&x).to_bits(), "{what}");
        assert_fd(what, &g, f, &x);
    }
}

#[differentiate]
fn sums_bound_to_locals(x: &[f64]) -> f64 {
    let n = x.len();
    let a = (1..=n - 1).map(|i| x[i] * x[i - 1]).sum::<f64>();
    let b: f64 = x.iter().sum();
    a.sin() + b.exp()
}

#[test]
fn sums_bound_to_local_variables() {
    let x = point(4, 227);
    let (v, g) = sums_bound_to_locals_grad(&x);
    assert_eq!(v.to_bits(), sums_bound_to_locals(&x).to_bits());
    assert_fd("sums_bound_to_locals", &g, sums_bound_to_locals, &x);
}

// ---------------------------------------------------------------------------------------
// Memory: in-place writes save O(n), not a copy of the vector per iteration
// ---------------------------------------------------------------------------------------

#[test]
fn in_place_writes_save_linear_memory() {
    // A copy of the vector per iteration would be n^2 floats (80 GB at n = 100 000); a few
    // words per element and iteration are fine.
    type Saved = fn(&[f64]) -> usize;
    let cases: [(&str, Saved); 4] = [
        ("square_twice", |x| square_twice_pullback(x).1.saved_bytes()),
        ("cumsum", |x| cumsum_pullback(x).1.saved_bytes()),
        ("smooth_in_place", |x| {
            smooth_in_place_pullback(x).1.saved_bytes()
        }),
        ("fill_then_update", |x| {
            fill_then_update_pullback(x).1.saved_bytes()
        }),
    ];
    for (what, saved) in cases {
        for n in [1_000usize, 100_000] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.1).sin()).collect();
            let bytes = saved(&x);
            let bound = 16 * n * std::mem::size_of::<f64>() + 4096;
            assert!(bytes <= bound, "{what} n={n}: {bytes} bytes > {bound}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Local vectors of fixed length: cotangents allocated at that length, updated in place
// ---------------------------------------------------------------------------------------

/// A buffer used whole in one arm of a branch (copied) and element by element in the other:
/// its cotangent starts empty in front of the branch and the copy's arm may leave it so.
#[differentiate]
fn buffer_copied_in_one_arm(x: &[f64], m: usize) -> f64 {
    let mut buf = vec![0.0; m];
    for i in 0..m {
        buf[i] = x[i] * x[i + 1];
    }
    let first = buf[0];
    let mut s = 0.0;
    if x[0] > 0.0 {
        let t = buf.clone();
        s += t[0] * t[1];
    } else {
        s += buf[1].sin();
    }
    s + first
}

/// A fixed-length buffer that is pushed onto afterwards: the pushed vector's cotangent is
/// not of the buffer's length.
#[differentiate]
fn buffer_then_pushed(x: &[f64]) -> f64 {
    let mut v = vec![0.0; 2];
    v[0] = x[0];
    v[1] = x[1].sin();
    v.push(x[0] * x[1]);
    v[0] * v[2] + v[1]
}

/// A buffer whose length changes from one iteration to the next: not of fixed length.
#[differentiate]
fn buffer_reallocated_in_a_loop(x: &[f64]) -> f64 {
    let mut buf = vec![0.0; 2];
    let mut s = 0.0;
    for i in 0..x.len() {
        s += buf[0] * x[i];
        buf = vec![x[i]; i + 1];
        buf[i] = buf[i] * x[i];
    }
    s + buf[0]
}

/// A buffer filled in each branch arm (or passed through), handed to a differentiated callee.
#[differentiate]
fn buffer_through_branches_and_a_call(x: &[f64], m: usize) -> f64 {
    let mut buf = vec![0.0; m];
    let mut total = 0.0;
    for r in 0..2 {
        for i in 0..m {
            if x[i] > 0.0 {
                buf[i] = x[i] * (r as f64 + 1.0);
            } else if i > 0 {
                buf[i] -= x[i].exp();
            }
        }
        total += sum_of_squares(&buf);
    }
    total
}

#[differentiate]
fn sum_of_squares(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i];
    }
    s
}

/// A fixed-length buffer returned as the output.
#[differentiate]
fn buffer_as_output(x: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m];
    for i in 0..m {
        out[i] = x[i] * x[(i + 1) % m];
    }
    out.swap(0, m - 1);
    out
}

/// A buffer made in every iteration of a one-sweep loop.
#[differentiate]
fn buffer_per_iteration(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let mut t = vec![0.0; 2];
        t[0] = x[i].sin();
        t[1] = t[0] * x[i];
        s += t[1];
    }
    s
}

/// A buffer carried by a `while` loop and passed on whole by the arms of nested branches.
#[differentiate]
fn buffer_in_while_and_nested_branches(x: &[f64]) -> f64 {
    let mut buf = vec![0.0; 3];
    let mut k = 0;
    let mut s = 0.0;
    while k < x.len() {
        if x[k] > 0.0 {
            if k % 2 == 0 {
                buf[k % 3] = x[k] * buf[(k + 1) % 3] + x[k];
            } else {
                buf.swap(0, 2);
            }
            s += buf[0] * x[k];
        } else {
            s += buf[2].cos();
        }
        k += 1;
    }
    s + buf[1]
}

#[test]
fn fixed_length_buffers_match_finite_differences_and_the_pullback() {
    type Scalar = (
        &'static str,
        fn(&[f64]) -> f64,
        fn(&[f64]) -> (f64, Vec<f64>),
    );
    let m = 3;
    let cases: [Scalar; 7] = [
        (
            "buffer_in_while_and_nested_branches",
            buffer_in_while_and_nested_branches,
            buffer_in_while_and_nested_branches_grad,
        ),
        (
            "buffer_copied_in_one_arm",
            |x| buffer_copied_in_one_arm(x, 3),
            |x| buffer_copied_in_one_arm_grad(x, 3),
        ),
        (
            "buffer_then_pushed",
            buffer_then_pushed,
            buffer_then_pushed_grad,
        ),
        (
            "buffer_reallocated_in_a_loop",
            buffer_reallocated_in_a_loop,
            buffer_reallocated_in_a_loop_grad,
        ),
        (
            "buffer_through_branches_and_a_call",
            |x| buffer_through_branches_and_a_call(x, 3),
            |x| buffer_through_branches_and_a_call_grad(x, 3),
        ),
        (
            "buffer_per_iteration",
            buffer_per_iteration,
            buffer_per_iteration_grad,
        ),
        ("sum_of_squares", sum_of_squares, sum_of_squares_grad),
    ];
    for seed in 0..6u64 {
        // both signs of x[0] and of the other coordinates, so every arm runs
        let mut x = point(m + 1, 3100 + seed);
        if seed % 2 == 1 {
            x[0] = -x[0].abs();
        } else {
            x[0] = x[0].abs();
        }
        for (what, f, grad) in cases {
            let (value, g) = grad(&x);
            assert_eq!(value.to_bits(), f(&x).to_bits(), "{what}: value");
            assert_fd(what, &g, f, &x);
        }
        let (_, pullback) = buffer_copied_in_one_arm_pullback(&x, m);
        assert_close(
            "buffer_copied_in_one_arm, pullback",
            &pullback.backward(1.0),
            &buffer_copied_in_one_arm_grad(&x, m).1,
            1e-12,
        );
        let (_, pullback) = buffer_through_branches_and_a_call_pullback(&x, m);
        assert_close(
            "buffer_through_branches_and_a_call, pullback",
            &pullback.backward(1.0),
            &buffer_through_branches_and_a_call_grad(&x, m).1,
            1e-12,
        );

        // the vector output: the dot-product test, with cotangents of the output's length
        let (y, pullback) = buffer_as_output_pullback(&x, m);
        assert_eq!(y, buffer_as_output(&x, m));
        let mut rng = XorShift::new(3200 + seed);
        let (c, t) = (rng.vec(m), rng.vec(x.len()));
        let vjp = pullback.backward(c.clone());
        let jvp = jvp_fd(|x| buffer_as_output(x, m), &x, &t);
        let (lhs, rhs) = (dot(&t, &vjp), dot(&jvp, &c));
        assert!(
            autodiff::relative_error(lhs, rhs) < 1e-8,
            "buffer_as_output: {lhs} vs {rhs}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Elements of filled arrays read as the expression that filled them
// ---------------------------------------------------------------------------------------

/// Reads of an array that a loop filled element by element, in the shapes where the reads
/// become the filling expression (docs/design.md, "Rematerialised elements") and in shapes
/// where they must stay reads; every gradient against finite differences.
mod filled_arrays {
    use super::{assert_close, assert_fd, point};
    use autodiff::prelude::*;

    // ADBench GMM's inner loops: a scratch buffer of centred coordinates, rewritten for every
    // row of `means`, read by the strictly lower triangle of `l` in a nested loop.
    #[differentiate]
    pub fn centred_triangle(x: &[f64], means: &[f64], l: &[f64], d: usize) -> f64 {
        let k = means.len() / d;
        let mut xc = vec![0.0; d];
        let mut qx = vec![0.0; d];
        let mut total = 0.0;
        for ik in 0..k {
            for id in 0..d {
                xc[id] = x[id] - means[ik * d + id];
                qx[id] = xc[id];
            }
            let mut li = 0;
            for i in 0..d {
                for j in i + 1..d {
                    qx[j] += l[li] * xc[i];
                    li += 1;
                }
            }
            let mut sq = 0.0;
            for id in 0..d {
                sq += qx[id] * qx[id];
            }
            total += (-0.5 * sq).exp();
        }
        total
    }

    // the same with only the means differentiated
    #[differentiate(wrt(means))]
    pub fn centred_triangle_means(x: &[f64], means: &[f64], l: &[f64], d: usize) -> f64 {
        let k = means.len() / d;
        let mut xc = vec![0.0; d];
        let mut total = 0.0;
        for ik in 0..k {
            for id in 0..d {
                xc[id] = x[id] - means[ik * d + id];
            }
            let mut li = 0;
            for i in 0..d {
                for j in i + 1..d {
                    total += l[li] * xc[i] * xc[j];
                    li += 1;
                }
            }
        }
        total
    }

    // the filling loop inside the loop whose variable indexes the read, a cast of the
    // induction variable in the expression, and a read at a constant index that stays a read
    #[differentiate]
    pub fn filled_inside_the_reading_loop(x: &[f64]) -> f64 {
        let n = x.len();
        let mut a = vec![0.0; n];
        let mut s = 0.0;
        for i in 0..n {
            for j in 0..n {
                a[j] = x[j] * (j as f64 + 1.0) - x[i];
            }
            s += a[i] * a[i] + a[0];
        }
        s
    }

    // one scratch array filled from another; the second also passed to a call
    #[differentiate]
    pub fn sum_of_squares(v: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..v.len() {
            s += v[i] * v[i];
        }
        s
    }

    #[differentiate]
    pub fn chained_fills(x: &[f64], y: &[f64]) -> f64 {
        let n = x.len();
        let mut a = vec![0.0; n];
        let mut b = vec![0.0; n];
        let mut s = 0.0;
        for k in 0..2 {
            let c = k as f64 + 1.0;
            for i in 0..n {
                a[i] = x[i] * y[i] * c;
            }
            for i in 0..n {
                b[i] = a[i] - y[i];
            }
            for i in 0..n {
                s += b[i] * a[i];
            }
            s += sum_of_squares(&b);
        }
        s
    }

    // a fixed array refilled over `0..3`, read over `0..3` and over `1..3`
    #[differentiate]
    pub fn fixed_fill(p: &[f64; 3], q: &[f64; 3]) -> f64 {
        let mut r = [0.0; 3];
        let mut s = 0.0;
        for k in 0..2 {
            for i in 0..3 {
                r[i] = p[i] - q[i] * k as f64;
            }
            for i in 0..3 {
                s += r[i] * r[i];
            }
            for i in 1..3 {
                s += r[i].sin();
            }
        }
        s
    }

    // generic code: constants written `T::from(c).unwrap()`, a parameter also passed on
    #[differentiate]
    pub fn generic_sum<T: num_traits::Float>(v: &[T]) -> T {
        let mut s = T::zero();
        for i in 0..v.len() {
            s = s + v[i];
        }
        s
    }

    #[differentiate]
    pub fn generic_scratch<T: num_traits::Float>(xs: &[T], ys: &[T]) -> T {
        let n = xs.len();
        let mut w = vec![T::zero(); n];
        let mut acc = generic_sum(xs);
        for k in 0..2 {
            for i in 0..n {
                w[i] = xs[i] * T::from(0.5).unwrap() - ys[i] * T::from(k).unwrap();
            }
            for i in 0..n {
                acc = acc + w[i] * w[i] * ys[i];
            }
        }
        acc
    }

    // the ranges written `0..x.len()` in both loops
    #[differentiate]
    pub fn lengths_written_twice(x: &[f64], y: &[f64]) -> f64 {
        let mut w = vec![0.0; x.len()];
        let mut s = 0.0;
        for k in 0..3 {
            for i in 0..x.len() {
                w[i] = x[i] * y[i] - k as f64;
            }
            for i in 0..x.len() {
                s += w[i] * w[i] * x[i];
            }
        }
        s
    }

    // reads that must stay reads: past the filled range, and after the array changed
    #[differentiate]
    pub fn reads_outside_the_rule(x: &[f64]) -> f64 {
        let n = x.len();
        let mut a = vec![1.0; n + 1];
        for i in 0..n {
            a[i] = x[i] * x[i];
        }
        let mut s = 0.0;
        for i in 0..=n {
            s += a[i];
        }
        for i in 0..n {
            a[i] += x[i];
        }
        for i in 0..n {
            s += a[i] * x[i];
        }
        s
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (d, k, seed) in [(1usize, 1usize, 1u64), (2, 3, 2), (4, 2, 3)] {
            let x = point(d, 10 + seed);
            let means = point(d * k, 20 + seed);
            let l = point(d * (d.max(1) - 1) / 2 + 1, 30 + seed);
            let (value, (dx, dm, dl)) = centred_triangle_grad(&x, &means, &l, d);
            assert_eq!(value, centred_triangle(&x, &means, &l, d));
            assert_fd(
                "centred_triangle x",
                &dx,
                |x| centred_triangle(x, &means, &l, d),
                &x,
            );
            assert_fd(
                "centred_triangle means",
                &dm,
                |m| centred_triangle(&x, m, &l, d),
                &means,
            );
            assert_fd(
                "centred_triangle l",
                &dl,
                |l| centred_triangle(&x, &means, l, d),
                &l,
            );
            let (_, pullback) = centred_triangle_pullback(&x, &means, &l, d);
            let (bx, bm, bl) = pullback.backward(1.0);
            assert_close("centred_triangle pullback x", &bx, &dx, 1e-12);
            assert_close("centred_triangle pullback means", &bm, &dm, 1e-12);
            assert_close("centred_triangle pullback l", &bl, &dl, 1e-12);

            let (_, dm) = centred_triangle_means_grad(&x, &means, &l, d);
            assert_fd(
                "centred_triangle_means",
                &dm,
                |m| centred_triangle_means(&x, m, &l, d),
                &means,
            );
        }
        for n in [1usize, 2, 5] {
            let x = point(n, 40 + n as u64);
            let y = point(n, 50 + n as u64);
            let (_, g) = filled_inside_the_reading_loop_grad(&x);
            assert_fd(
                "filled_inside_the_reading_loop",
                &g,
                filled_inside_the_reading_loop,
                &x,
            );
            let (_, (gx, gy)) = chained_fills_grad(&x, &y);
            assert_fd("chained_fills x", &gx, |x| chained_fills(x, &y), &x);
            assert_fd("chained_fills y", &gy, |y| chained_fills(&x, y), &y);
            let (_, (gx, gy)) = generic_scratch_grad(&x, &y);
            assert_fd("generic_scratch x", &gx, |x| generic_scratch(x, &y), &x);
            assert_fd("generic_scratch y", &gy, |y| generic_scratch(&x, y), &y);
            let (_, (gx, gy)) = lengths_written_twice_grad(&x, &y);
            assert_fd(
                "lengths_written_twice x",
                &gx,
                |x| lengths_written_twice(x, &y),
                &x,
            );
            assert_fd(
                "lengths_written_twice y",
                &gy,
                |y| lengths_written_twice(&x, y),
                &y,
            );
            let (_, g) = reads_outside_the_rule_grad(&x);
            assert_fd("reads_outside_the_rule", &g, reads_outside_the_rule, &x);
        }
        let (p, q) = ([0.3, -1.2, 0.7], [0.1, 0.4, -0.5]);
        let (_, (gp, gq)) = fixed_fill_grad(&p, &q);
        // s = Σ_k (Σ_i r_ki² + sin r_k1 + sin r_k2) with r_ki = p_i - k q_i, k = 0, 1:
        // ∂s/∂p_i = Σ_k g_ki and ∂s/∂q_i = -Σ_k k g_ki, g_ki = 2 r_ki + [i ≥ 1] cos r_ki
        let g = |k: f64, i: usize| {
            let r = p[i] - k * q[i];
            2.0 * r + if i >= 1 { r.cos() } else { 0.0 }
        };
        let expected: Vec<f64> = (0..3).map(|i| g(0.0, i) + g(1.0, i)).collect();
        assert_close("fixed_fill p", &gp, &expected, 1e-14);
        let negated: Vec<f64> = (0..3).map(|i| -g(1.0, i)).collect();
        assert_close("fixed_fill q", &gq, &negated, 1e-14);
    }
}

// ---------------------------------------------------------------------------------------
// Local vectors saved in place: the forward pass only reads them, at the top level and in
// nested blocks (a loop, a branch's arm, a borrow passed to a callee), so the pullback takes
// them at the end instead of copying them where they are made
// ---------------------------------------------------------------------------------------

#[differentiate]
fn vectors_read_in_place(x: &[f64], s: f64) -> f64 {
    let n = x.len();
    let w = vec![x[0] * s, x[1].sin(), x[n - 1] * x[0]];
    let mut v = vec![0.0; 3];
    v[0] = x[1] * s;
    v[2] = x[0].exp();
    let mut acc = 0.0;
    for i in 0..3 {
        acc += w[i] * x[i] + v[i] * w[i];
    }
    if s > 0.0 {
        acc += w[2] * w[1] * v[0];
    } else {
        acc -= w[0] * v[2];
    }
    let r = &w;
    acc + sum_of_squares(r) + w.len() as f64 * s * v[2]
}

#[test]
fn local_vectors_saved_in_place() {
    for (seed, s) in [(41, 0.8), (42, -0.6)] {
        let x = point(4, seed);
        let (value, (gx, gs)) = vectors_read_in_place_grad(&x, s);
        assert_eq!(value.to_bits(), vectors_read_in_place(&x, s).to_bits());
        let (_, pullback) = vectors_read_in_place_pullback(&x, s);
        let (px, ps) = pullback.backward(1.0);
        assert_close("pullback x", &px, &gx, 1e-15);
        assert_close("pullback s", &[ps], &[gs], 1e-15);
        assert_fd("x", &gx, |x| vectors_read_in_place(x, s), &x);
        assert_fd("s", &[gs], |p| vectors_read_in_place(&x, p[0]), &[s]);
    }
}

// integers declared as such (`let n: usize`, `let k: i32`) bound loops, index, and scale as
// floats: each a constant of the derivative
// ∂/∂x_i of s = h Σ_{i<h} x_i x_{n-1-i} (h = n / 2) is h x_{n-1-i} for i < h, h x_{n-1-i} for
// i ≥ n - h, and 0 for the middle element of an odd length
#[differentiate]
fn integer_lets(x: &[f64]) -> f64 {
    let n: usize = x.len();
    let half: usize = n / 2;
    let k: i32 = half as i32;
    let mut s = 0.0;
    for i in 0..half {
        s += x[i] * x[n - 1 - i];
    }
    s * k as f64
}

#[test]
fn integer_lets_are_constants() {
    for n in [4, 5] {
        let x = point(n, 43 + n as u64);
        let (_, g) = integer_lets_grad(&x);
        let h = (n / 2) as f64;
        let expected: Vec<f64> = (0..n)
            .map(|i| {
                if n % 2 == 1 && i == n / 2 {
                    0.0
                } else {
                    h * x[n - 1 - i]
                }
            })
            .collect();
        assert_close("integer_lets", &g, &expected, 1e-14);
        assert_fd("integer_lets", &g, integer_lets, &x);
    }
}

// `let [a, b, c] = x;` on an array parameter, through a reference, and with `_`
// value = a d - b c + e² for u = [a, b, _], v = [c, d, e]
// =>  du = [d, -c, 0], dv = [-b, a, 2e]
#[differentiate]
fn array_patterns(u: &[f64; 3], v: [f64; 3]) -> f64 {
    let [a, b, _] = *u;
    let [c, d, e] = v;
    a * d - b * c + e * e
}

#[test]
fn array_patterns_bind_elements() {
    let (u, v) = ([0.5, -1.5, 2.0], [3.0, 0.25, -0.75]);
    let (value, (du, dv)) = array_patterns_grad(&u, v);
    assert_eq!(value.to_bits(), array_patterns(&u, v).to_bits());
    assert_close("array_patterns du", &du, &[v[1], -v[0], 0.0], 1e-15);
    assert_close("array_patterns dv", &dv, &[-u[1], u[0], 2.0 * v[2]], 1e-15);
}

// `skip` and `take` on `x.iter()`: neighbours by zipping with the skipped slice, a prefix
// of a parameter and the suffix of a local vector, and counts past the end (no elements)
// value = Σ_i k/2 (x[i+1] - x[i])² + Σ_{i<n} x[i]² + Σ_{i>=n} 2 x[i]
#[differentiate]
fn skipped_and_taken(x: &[f64], k: f64, n: usize) -> f64 {
    let mut energy = 0.0;
    for (a, b) in x.iter().zip(x.iter().skip(1)) {
        energy += 0.5 * k * (b - a).powi(2);
    }
    let doubled: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
    energy + x.iter().take(n).map(|v| v * v).sum::<f64>() + doubled.iter().skip(n).sum::<f64>()
}

#[test]
fn skip_and_take_slice_the_iteration() {
    for n in [0, 2, 9] {
        let x = point(5, 61 + n as u64);
        let k = 1.5;
        let (value, (dx, dk)) = skipped_and_taken_grad(&x, k, n);
        assert_eq!(value.to_bits(), skipped_and_taken(&x, k, n).to_bits());
        let expected: Vec<f64> = (0..x.len())
            .map(|i| {
                let left = if i > 0 { k * (x[i] - x[i - 1]) } else { 0.0 };
                let right = if i + 1 < x.len() {
                    -k * (x[i + 1] - x[i])
                } else {
                    0.0
                };
                left + right + if i < n { 2.0 * x[i] } else { 2.0 }
            })
            .collect();
        assert_close("skipped_and_taken", &dx, &expected, 1e-12);
        let energy: f64 = x.windows(2).map(|w| 0.5 * (w[1] - w[0]).powi(2)).sum();
        assert!((dk - energy).abs() < 1e-12, "{dk} vs {energy}");
    }
}

// ---------------------------------------------------------------------------------------
// Rows sliced in front of reversed loops (docs/design.md, "Rows of reversed loops")
// ---------------------------------------------------------------------------------------

// Reads at a counter stepping with the loop (`l[li]`) and at the loop's index (`x[j]`,
// `w[j]`), the counter continuing across the rows of a triangle; `w` is a local of fixed
// length whose cotangent is sliced too.
#[differentiate]
pub fn triangle_rows(l: &[f64], x: &[f64], d: usize) -> f64 {
    let mut w = vec![0.0; d];
    for i in 0..d {
        w[i] = x[i] * x[i];
    }
    let mut s = 0.0;
    let mut li = 0;
    for i in 0..d {
        let mut row = 0.0;
        for j in i + 1..d {
            row += l[li] * x[j] * w[j];
            li += 1;
        }
        s += row.sin() * x[i];
    }
    s
}

// A counter starting beyond the array and a range beyond it, each with a loop that runs zero
// times there: the backward pass must slice nothing for them.
#[differentiate]
pub fn rows_of_empty_loops(a: &[f64], start: usize, runs: usize, lo: usize, hi: usize) -> f64 {
    let mut s = 0.0;
    let mut li = start;
    for k in 0..runs {
        s += a[li] * a[li] * (k as f64 + 1.0);
        li += 1;
    }
    for j in lo..hi {
        s += a[j].exp();
    }
    s
}

// The same array read at the index and at a counter (two rows would alias: neither is taken)
// and at `j + 1`.
#[differentiate]
pub fn rows_declined(a: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    let mut li = 0;
    for j in 0..n {
        s += a[j] * a[li + 1] + a[li];
        li += 1;
    }
    s
}

// Reads after a `continue` (not made in every iteration) and at a counter stepped only in
// some iterations: neither may be taken from a row.
#[differentiate]
pub fn rows_skipped_iterations(a: &[f64], x: &[f64], n: usize) -> f64 {
    let mut s = 0.0;
    let mut li = 0;
    for j in 0..n {
        if x[j] < 0.0 {
            continue;
        }
        s += a[j] * x[j];
    }
    for j in 0..n {
        s += a[li] * x[j] * x[j];
        if x[j] > 0.5 {
            li += 1;
        }
    }
    s
}

// A generic triangle: rows of `a` (at a counter) and `x` (at the index) in `T`.
#[differentiate]
pub fn generic_rows<T: Float>(a: &[T], x: &[T]) -> T {
    let n = x.len();
    let mut s = T::zero();
    let mut li = 0;
    for i in 0..n {
        let mut row = T::zero();
        for j in 0..i {
            row = row + a[li] * x[j];
            li += 1;
        }
        s = s + (row * x[i]).sin();
    }
    s
}

#[test]
fn rows_of_generic_loops_in_f64_and_f32() {
    let x = point(5, 76);
    let a = point(10, 77);
    let (value, (da, dx)) = generic_rows_grad(&a, &x);
    assert_eq!(value.to_bits(), generic_rows(&a, &x).to_bits());
    assert_fd("generic_rows a", &da, |a| generic_rows(a, &x), &a);
    assert_fd("generic_rows x", &dx, |x| generic_rows(&a, x), &x);
    let (_, pullback) = generic_rows_pullback(&a, &x);
    assert_eq!(pullback.backward(1.0), (da.clone(), dx.clone()));

    let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let (_, (da32, dx32)) = generic_rows_grad(&a32, &x32);
    for (got, expected) in da32.iter().chain(&dx32).zip(da.iter().chain(&dx)) {
        assert!((*got as f64 - expected).abs() < 1e-5, "{got} vs {expected}");
    }
}

#[test]
fn rows_of_reversed_loops_give_the_gradient() {
    let d = 5;
    let x = point(d, 71);
    let l = point(d * (d - 1) / 2, 72);
    let (value, (dl, dx)) = triangle_rows_grad(&l, &x, d);
    assert_eq!(value.to_bits(), triangle_rows(&l, &x, d).to_bits());
    assert_fd("triangle_rows l", &dl, |l| triangle_rows(l, &x, d), &l);
    assert_fd("triangle_rows x", &dx, |x| triangle_rows(&l, x, d), &x);
    let (_, pullback) = triangle_rows_pullback(&l, &x, d);
    let (bl, bx) = pullback.backward(1.0);
    assert_eq!((bl, bx), (dl, dx), "backward and _grad");

    let a = point(6, 73);
    let (_, da) = rows_declined_grad(&a, 4);
    assert_fd("rows_declined", &da, |a| rows_declined(a, 4), &a);

    let a = point(6, 75);
    let x: Vec<f64> = (0..6)
        .map(|k| [0.9, -0.3, 0.7, 0.2, -0.8, 0.6][k])
        .collect();
    let (_, (da, dx)) = rows_skipped_iterations_grad(&a, &x, 6);
    assert_fd(
        "rows_skipped a",
        &da,
        |a| rows_skipped_iterations(a, &x, 6),
        &a,
    );
    assert_fd(
        "rows_skipped x",
        &dx,
        |x| rows_skipped_iterations(&a, x, 6),
        &x,
    );
}

#[test]
fn rows_of_loops_that_ran_zero_times_slice_nothing() {
    let a = point(4, 74);
    // the counter starts past the end, the range lies past it: neither loop runs
    let (value, da) = rows_of_empty_loops_grad(&a, 100, 0, 50, 50);
    assert_eq!(value, 0.0);
    assert_eq!(da, vec![0.0; 4]);
    let (_, pullback) = rows_of_empty_loops_pullback(&a, 100, 0, 9, 3);
    assert_eq!(pullback.backward(1.0), vec![0.0; 4]);
    // and where they run: d/da_k of sum (k - start + 1) a_k^2 over 1..3 and of sum exp a_k
    // over 2..4
    let (_, da) = rows_of_empty_loops_grad(&a, 1, 2, 2, 4);
    let expected: Vec<f64> = (0..4)
        .map(|k| {
            let square = if (1..3).contains(&k) {
                2.0 * a[k] * k as f64
            } else {
                0.0
            };
            let exp = if (2..4).contains(&k) { a[k].exp() } else { 0.0 };
            square + exp
        })
        .collect();
    assert_close("rows_of_empty_loops", &da, &expected, 1e-14);
}
