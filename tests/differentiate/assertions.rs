//! `assert!`, `assert_eq!`, `assert_ne!` and their `debug_` forms, and the print macros,
//! inside differentiated functions: they run with the forward pass and take no part in the
//! derivative.

use autodiff::prelude::*;
use autodiff::Tensor;

fn close(a: f64, b: f64) -> bool {
    autodiff::relative_error(a, b) < 1e-8
}

// value: s · Σ x[i] y[i] passed through `sqrt` when above one; every assertion form, with
// positional, named and captured message arguments, in straight-line code, a loop and a branch
#[differentiate]
fn checked_dot(x: &[f64], y: &[f64], s: f64) -> f64 {
    assert_eq!(
        x.len(),
        y.len(),
        "checked_dot: {} and {} elements",
        x.len(),
        y.len()
    );
    debug_assert!(s > 0.0, "scale {s} must be positive");
    let mut acc = 0.0;
    for i in 0..x.len() {
        let t = x[i] * y[i];
        assert!(t.is_finite(), "term {i} is {t:?} ({:>w$})", t, w = 8);
        acc += t * s;
    }
    if acc > 1.0 {
        std::assert_ne!(acc, 2.0);
        acc = acc.sqrt();
    }
    acc
}

#[test]
fn assertions_leave_the_gradient_alone() {
    for (x, y, s) in [
        (vec![1.0, 2.0, -0.5], vec![3.0, 0.5, 1.5], 2.0),
        (vec![0.1, 0.2, 0.3], vec![0.4, -0.2, 0.1], 0.7),
    ] {
        let (value, (dx, dy, ds)) = checked_dot_grad(&x, &y, s);
        assert_eq!(value.to_bits(), checked_dot(&x, &y, s).to_bits());
        let point = [x.clone(), y.clone(), vec![s]].concat();
        let fd =
            finite_difference_gradient(|p: &[f64]| checked_dot(&p[0..3], &p[3..6], p[6]), &point);
        let ours = [dx, dy, vec![ds]].concat();
        for (k, (a, b)) in ours.iter().zip(&fd).enumerate() {
            assert!(close(*a, *b), "component {k}: {a} vs {b}");
        }
        // the pullback's forward pass checks too, and `backward` runs no assertion
        let (_, pullback) = checked_dot_pullback(&x, &y, s);
        let (dx2, _, _) = pullback.backward(1.0);
        assert!(close(dx2[0], ours[0]));
    }
}

/// The message a panic carried.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_failing_assertion_panics_with_its_message() {
    let lengths = std::panic::catch_unwind(|| checked_dot_grad(&[1.0], &[1.0, 2.0], 1.0));
    let message = panic_message(lengths.expect_err("the lengths differ"));
    assert!(
        message.contains("checked_dot: 1 and 2 elements"),
        "{message}"
    );
    let infinite =
        std::panic::catch_unwind(|| checked_dot_pullback(&[f64::INFINITY], &[1.0], 1.0).0);
    let message = panic_message(infinite.expect_err("the term is infinite"));
    assert!(message.contains("term 0 is inf"), "{message}");
}

// an assertion reading a local vector that the backward pass keeps, and a tensor's shape
#[differentiate]
fn checked_local(x: &[f64], a: &Tensor<f64>) -> f64 {
    let mut v = vec![0.0; x.len()];
    for i in 0..x.len() {
        v[i] = x[i].sin();
    }
    assert!(v.len() == x.len(), "{v:?}");
    assert_eq!(a.shape().len(), 1);
    let mut acc = 0.0;
    for i in 0..v.len() {
        acc += v[i] * v[i] * x[i];
    }
    acc + a.tanh().sum()
}

#[test]
fn assertions_on_saved_arrays_and_tensors() {
    let x = [0.3, -1.2, 0.8];
    let a = Tensor::from_vec(vec![0.5, -0.25], &[2]);
    let (value, (dx, da)) = checked_local_grad(&x, &a);
    assert_eq!(value.to_bits(), checked_local(&x, &a).to_bits());
    // d/dx sin²(x)·x = 2 sin x cos x · x + sin² x;  d/da Σ tanh a = 1 - tanh² a
    for i in 0..3 {
        let (s, c) = x[i].sin_cos();
        assert!(close(dx[i], 2.0 * s * c * x[i] + s * s));
    }
    for (d, v) in da.data().iter().zip(a.data()) {
        assert!(close(*d, 1.0 - v.tanh().powi(2)));
    }
}

// the print macros: positional, named and captured arguments (a loop-carried variable, read
// under its own name), debug formatting, no arguments at all, a path; f = Σ sin(x_i) s
#[differentiate]
fn printed_sum<T: Float + std::fmt::Debug + std::fmt::Display>(x: &[T], s: T) -> T {
    let mut acc = T::zero();
    println!("printed_sum of {} elements, scale {s:?}", x.len());
    for i in 0..x.len() {
        acc = acc + x[i].sin() * s;
        eprint!("{i}: {acc} ");
        print!("{value:.3} ", value = acc);
    }
    eprintln!();
    std::println!("total {acc:>w$}", w = 12);
    acc
}

#[test]
fn prints_leave_the_gradient_alone() {
    let (x, s): (Vec<f64>, f64) = (vec![0.3, -1.2, 2.0], 1.5);
    let (value, (dx, ds)) = printed_sum_grad(&x, s);
    assert_eq!(value.to_bits(), printed_sum(&x, s).to_bits());
    // df/dx_i = cos(x_i) s, df/ds = Σ sin(x_i)
    for (k, d) in dx.iter().enumerate() {
        assert!(close(*d, x[k].cos() * s), "{k}: {d}");
    }
    assert!(close(ds, x.iter().map(|v: &f64| v.sin()).sum()), "{ds}");
    let (_, pullback) = printed_sum_pullback(&x, s);
    assert_eq!(pullback.backward(1.0), (dx, ds));
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let (_, (dx32, _)) = printed_sum_grad(&x32, 1.5f32);
    assert!((dx32[1] as f64 - (-1.2f64).cos() * 1.5).abs() < 1e-6);
}

// `panic!` and its relatives: a guard statement, an arm's whole value, a `match`'s catch-all;
// for y > 1, f = (y ln x)² + x, else f = 2 y ln x + x
#[differentiate]
fn guarded_log(x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        panic!("guarded_log needs x > 0, got {x}");
    }
    let z = if y > 0.0 {
        y * x.ln()
    } else {
        unreachable!("y = {}", y)
    };
    let w = match (y > 1.0) as usize {
        0 => z * 2.0,
        1 => z * z,
        _ => unreachable!(),
    };
    w + x
}

// a guard inside a loop, a variable initialised in the one arm that comes back, a
// tuple-valued `match` with a diverging arm, and the function's last statement after an
// early return: f = s⁻¹ sin(s) + s + s⁻¹ (mode 0) or s sin(s⁻¹) + s⁻¹ + s (mode 1),
// s = Σ √v[i]
#[differentiate]
fn root_sum<T: Float + std::fmt::Display>(v: &[T], mode: usize) -> T {
    let mut s = T::zero();
    for i in 0..v.len() {
        if v[i] < T::zero() {
            panic!("root_sum: element {i} is negative ({})", v[i]);
        }
        s = s + v[i].sqrt();
    }
    let scale;
    if s > T::zero() {
        scale = T::one() / s;
    } else {
        todo!("an all-zero input");
    }
    let (a, b) = match mode {
        0 => (scale, s),
        1 => (s, scale),
        _ => unimplemented!("mode {mode}"),
    };
    if mode < 2 {
        return a * b.sin() + (a + b);
    }
    core::unreachable!()
}

// a caller of both, whose backward pass replays them
#[differentiate]
fn guarded_caller(x: f64, v: &[f64]) -> f64 {
    guarded_log(x, 0.5) * root_sum(v, 1)
}

#[test]
fn panics_on_paths_not_taken_leave_the_gradient_alone() {
    for (x, y) in [(2.0, 3.0), (0.7, 0.4)] {
        let (value, (dx, dy)) = guarded_log_grad(x, y);
        assert_eq!(value.to_bits(), guarded_log(x, y).to_bits());
        let l: f64 = f64::ln(x);
        let (ex, ey) = if y > 1.0 {
            (2.0 * y * y * l / x + 1.0, 2.0 * y * l * l)
        } else {
            (2.0 * y / x + 1.0, 2.0 * l)
        };
        assert!(close(dx, ex), "{dx} vs {ex}");
        assert!(close(dy, ey), "{dy} vs {ey}");
    }
    let v: Vec<f64> = vec![0.25, 1.5, 4.0];
    for mode in [0, 1] {
        let (value, dv) = root_sum_grad(&v, mode);
        assert_eq!(value.to_bits(), root_sum(&v, mode).to_bits());
        let fd = finite_difference_gradient(|p: &[f64]| root_sum(p, mode), &v);
        for (k, (a, b)) in dv.iter().zip(&fd).enumerate() {
            assert!(close(*a, *b), "mode {mode}, component {k}: {a} vs {b}");
        }
        let v32: Vec<f32> = v.iter().map(|&e| e as f32).collect();
        let (_, dv32) = root_sum_grad(&v32, mode);
        assert!((dv32[2] as f64 - dv[2]).abs() < 1e-4 * (1.0 + dv[2].abs()));
    }
    let (value, (dx, dv)) = guarded_caller_grad(1.5, &v);
    assert_eq!(value.to_bits(), guarded_caller(1.5, &v).to_bits());
    let point = [vec![1.5], v.clone()].concat();
    let fd = finite_difference_gradient(|p: &[f64]| guarded_caller(p[0], &p[1..]), &point);
    let ours = [vec![dx], dv].concat();
    for (k, (a, b)) in ours.iter().zip(&fd).enumerate() {
        assert!(close(*a, *b), "component {k}: {a} vs {b}");
    }
}

#[test]
fn a_panic_on_the_path_taken_panics_with_its_message() {
    let cases: Vec<(Box<dyn Fn() + std::panic::RefUnwindSafe>, &str)> = vec![
        (
            Box::new(|| {
                let _ = guarded_log_grad(-1.0, 2.0);
            }),
            "guarded_log needs x > 0, got -1",
        ),
        (
            Box::new(|| {
                let _ = guarded_log_pullback(1.0, -2.0);
            }),
            "internal error: entered unreachable code: y = -2",
        ),
        (
            Box::new(|| {
                let _ = root_sum_grad(&[1.0, -2.0], 0);
            }),
            "root_sum: element 1 is negative (-2)",
        ),
        (
            Box::new(|| {
                let _ = root_sum_grad(&[0.0, 0.0], 0);
            }),
            "not yet implemented: an all-zero input",
        ),
        (
            Box::new(|| {
                let _ = root_sum_pullback(&[1.0], 7);
            }),
            "not implemented: mode 7",
        ),
        (
            Box::new(|| {
                let _ = guarded_caller_grad(1.5, &[-1.0]);
            }),
            "root_sum: element 0 is negative (-1)",
        ),
    ];
    for (run, expected) in cases {
        let message = panic_message(std::panic::catch_unwind(&run).expect_err(expected));
        assert!(message.contains(expected), "{message} vs {expected}");
    }
}
