//! Closures bound by `let` and called by name: inlined at each call, checked against finite
//! differences and analytic gradients.

use autodiff::prelude::*;

fn close(a: f64, b: f64) -> bool {
    autodiff::relative_error(a, b) < 1e-7
}

fn assert_matches_finite_differences(ours: &[f64], f: impl Fn(&[f64]) -> f64, point: &[f64]) {
    let fd = finite_difference_gradient(f, point);
    for (k, (a, b)) in ours.iter().zip(&fd).enumerate() {
        assert!(close(*a, *b), "component {k}: {a} vs {b}");
    }
}

// an index helper, a closure calling a closure, a `move` closure capturing a parameter, a
// closure yielding a tuple, and a closure called inside an iterator chain's closure
#[differentiate]
fn helpers(x: &[f64], w: f64) -> f64 {
    let n = x.len();
    let at = |i: usize, j: usize| i * n + j;
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let scaled = move |v| sigmoid(v * w);
    let mut acc = 0.0;
    for i in 0..n {
        acc += scaled(x[at(0, i)]) * x[i];
        if acc > 10.0 {
            acc = acc.sqrt();
        }
    }
    let both = |a: f64, b: f64| (a * b, a + b);
    let (p, q) = both(acc, w);
    p + q + x.iter().map(|v| sigmoid(*v)).sum::<f64>()
}

#[test]
fn helper_closures_match_finite_differences() {
    for (x, w) in [
        (vec![0.5, -1.0, 2.0], 0.7),
        (vec![3.0, 2.5, 4.0, -0.5], 1.3),
    ] {
        let (value, (dx, dw)) = helpers_grad(&x, w);
        assert_eq!(value.to_bits(), helpers(&x, w).to_bits());
        let n = x.len();
        let point = [x.clone(), vec![w]].concat();
        assert_matches_finite_differences(
            &[dx, vec![dw]].concat(),
            |p: &[f64]| helpers(&p[..n], p[n]),
            &point,
        );
    }
}

// a closure sees its captures as they were where it was defined: `a` is shadowed and `b`
// reassigned after the closure copied it
// value = x (x + 1) + 2x (shadowed a) + (x + 1) · 3  =>  d/dx = 2x + 1 + 2 + 3 = 2x + 6
#[differentiate]
fn captures_at_definition(x: f64) -> f64 {
    let a = x;
    let mut b = x + 1.0;
    let f = move |v: f64| v * b + a;
    let a = 2.0 * x;
    b = 3.0;
    let with_a = f(x) - x;
    with_a + a + (x + 1.0) * b
}

#[test]
fn captures_are_read_where_the_closure_is_defined() {
    for x in [-1.5, 0.25, 2.0] {
        let (value, dx) = captures_at_definition_grad(x);
        assert_eq!(value.to_bits(), captures_at_definition(x).to_bits());
        assert!(close(dx, 2.0 * x + 6.0), "{x}: {dx}");
    }
}

// a closure with a block body and locals, defined inside a loop and capturing the loop's
// index, in a generic function
// value = Σ_i (x_i² + i) · x_i  =>  d/dx_i = 3 x_i² + i
#[differentiate]
fn per_iteration<T: Float>(x: &[T]) -> T {
    let mut total = T::zero();
    for i in 0..x.len() {
        let offset = T::from(i).unwrap();
        let cubic = |v: T| {
            let square = v * v;
            (square + offset) * v
        };
        total = total + cubic(x[i]);
    }
    total
}

#[test]
fn closures_in_loops_of_generic_functions() {
    let x = [0.5f64, -1.25, 2.0];
    let (value, dx) = per_iteration_grad(&x);
    assert_eq!(value.to_bits(), per_iteration(&x).to_bits());
    for (i, (d, v)) in dx.iter().zip(x).enumerate() {
        assert!(close(*d, 3.0 * v * v + i as f64), "{i}: {d}");
    }
    let (value32, dx32) = per_iteration_grad(&[0.5f32, -1.25, 2.0]);
    assert!((value32 as f64 - value).abs() < 1e-5);
    assert!((dx32[1] as f64 - dx[1]).abs() < 1e-4);
}

// closures called in both arms of a branch and in a `while` loop
#[differentiate]
fn closures_in_branches(x: f64, y: f64) -> f64 {
    let damp = |v: f64, k: f64| v * (-k * v * v).exp();
    let mut z = if x > y {
        damp(x, 0.5)
    } else {
        damp(y, 0.25) * x
    };
    let mut steps = 0;
    while steps < 3 {
        z = damp(z + y, 0.1);
        steps += 1;
    }
    z
}

#[test]
fn closures_in_branches_and_while_loops() {
    for (x, y) in [(1.2, 0.3), (0.2, 0.9), (-0.7, -0.1)] {
        let (value, (dx, dy)) = closures_in_branches_grad(x, y);
        assert_eq!(value.to_bits(), closures_in_branches(x, y).to_bits());
        assert_matches_finite_differences(
            &[dx, dy],
            |p: &[f64]| closures_in_branches(p[0], p[1]),
            &[x, y],
        );
    }
}

// a closure taking a slice, called with a local vector (coerced from `&Vec<f64>`) and with
// the parameter itself
// value = (Σ x)² · 2  =>  d/dx_i = 4 Σ x
#[differentiate]
fn slice_helper(x: &[f64]) -> f64 {
    let doubled: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
    let total = |v: &[f64]| v.iter().sum::<f64>();
    total(&doubled) * total(x)
}

#[test]
fn closures_taking_slices_accept_coerced_vectors() {
    let x = [0.5, -1.0, 2.5];
    let (value, dx) = slice_helper_grad(&x);
    assert_eq!(value.to_bits(), slice_helper(&x).to_bits());
    let s: f64 = x.iter().sum();
    for d in dx {
        assert!(close(d, 4.0 * s), "{d}");
    }
}

// a closure whose body binds a closure of its own and runs a loop, called in a `while` loop
#[differentiate]
fn nested_closures(x: f64) -> f64 {
    let f = |v: f64| {
        let double = |w: f64| w * 2.0;
        let mut s = 0.0;
        for i in 0..3 {
            s += double(v) * i as f64;
        }
        s
    };
    let mut total = 0.0;
    let mut k = 0;
    while k < 2 {
        total += f(x * total.cos());
        k += 1;
    }
    total
}

#[test]
fn nested_closures_with_loops_match_finite_differences() {
    for x in [0.7, -0.4, 1.9] {
        let (value, dx) = nested_closures_grad(x);
        assert_eq!(value.to_bits(), nested_closures(x).to_bits());
        assert_matches_finite_differences(&[dx], |p: &[f64]| nested_closures(p[0]), &[x]);
    }
}
