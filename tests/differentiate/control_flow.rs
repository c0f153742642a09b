//! `if`, `match`, early return, assignments and blocks, checked against finite differences.

use autodiff::prelude::*;

fn fd1(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    finite_difference_gradient(|v: &[f64]| f(v[0]), &[x])[0]
}

fn close(a: f64, b: f64) -> bool {
    autodiff::relative_error(a, b) < 1e-8
}

#[differentiate]
fn piecewise(x: f64) -> f64 {
    if x < 0.0 {
        -x * x
    } else if x < 1.0 {
        x.sin()
    } else {
        x.exp()
    }
}

#[test]
fn if_else_if_else_as_expression() {
    for x in [-1.5, -0.3, 0.4, 0.9, 1.5, 2.5] {
        let (y, g) = piecewise_grad(x);
        assert_eq!(y, piecewise(x));
        assert!(close(g, fd1(piecewise, x)), "x={x}: {g}");
    }
}

#[differentiate]
fn statement_if(x: f64, y: f64) -> f64 {
    let mut acc = x * y;
    if acc > 1.0 {
        acc = acc.ln();
        acc *= y;
    } else {
        acc += x.cos();
    }
    let mut z = 2.0;
    if x > y {
        z = z * x;
    }
    acc * z
}

#[test]
fn statement_if_with_reassignment() {
    for (x, y) in [(2.0, 3.0), (0.5, 0.2), (0.1, 0.3), (3.0, 0.5)] {
        let (v, (gx, gy)) = statement_if_grad(x, y);
        assert_eq!(v, statement_if(x, y));
        let fd = finite_difference_gradient(|p: &[f64]| statement_if(p[0], p[1]), &[x, y]);
        assert!(
            close(gx, fd[0]) && close(gy, fd[1]),
            "({x},{y}): {gx} {gy} vs {fd:?}"
        );
    }
}

#[differentiate]
fn early_return(x: f64, n: i32) -> f64 {
    if n == 0 {
        return x;
    }
    let y = x * x;
    if y > 4.0 {
        return y.sqrt() * 3.0;
    }
    let mut z = y + x;
    if n > 2 {
        z = z * z;
    }
    z
}

#[test]
fn early_returns_on_every_path() {
    for (x, n) in [(1.3, 0), (3.0, 1), (-3.0, 1), (1.2, 1), (1.2, 3), (-0.5, 5)] {
        let (v, g) = early_return_grad(x, n);
        assert_eq!(v, early_return(x, n));
        assert!(close(g, fd1(|x| early_return(x, n), x)), "({x},{n}): {g}");
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Square,
    Cube,
    Sine,
}

#[differentiate]
fn by_mode(x: f64, mode: Mode, k: u8) -> f64 {
    let base = match mode {
        Mode::Square => x * x,
        Mode::Cube => x * x * x,
        Mode::Sine => x.sin(),
    };
    let scaled = match k {
        0 => base,
        1 | 2 => base * 2.0,
        _other => base + x,
    };
    match k > 3 {
        true => scaled * x,
        false => scaled,
    }
}

#[test]
fn match_on_enum_integer_and_bool() {
    for mode in [Mode::Square, Mode::Cube, Mode::Sine] {
        for k in [0u8, 1, 2, 3, 7] {
            let x = 0.7;
            let (v, g) = by_mode_grad(x, mode, k);
            assert_eq!(v, by_mode(x, mode, k));
            assert!(close(g, fd1(|x| by_mode(x, mode, k), x)), "k={k}: {g}");
        }
    }
}

#[differentiate]
fn tuples_and_blocks(a: f64, b: f64) -> f64 {
    let (p, q) = (a * b, a - b);
    let r = {
        let t = p + q;
        t * (q)
    };
    let (mut u, v) = if r > 0.0 { (r, p) } else { (-r, q) };
    u -= v;
    u /= 2.0;
    let p = u * v; // shadowing
    p
}

#[test]
fn tuples_blocks_shadowing_compound_assignment() {
    for (a, b) in [(1.0, 2.0), (3.0, -1.0), (-2.0, 0.5), (0.3, 0.4)] {
        let (v, (ga, gb)) = tuples_and_blocks_grad(a, b);
        assert_eq!(v, tuples_and_blocks(a, b));
        let fd = finite_difference_gradient(|p: &[f64]| tuples_and_blocks(p[0], p[1]), &[a, b]);
        assert!(
            close(ga, fd[0]) && close(gb, fd[1]),
            "({a},{b}): {ga} {gb} vs {fd:?}"
        );
    }
}

#[differentiate]
fn integer_arguments(x: f64, n: i32, flag: bool, scale: usize) -> f64 {
    let m = n * 2 + 1;
    let k = m as f64;
    let s = scale as f64 / 2.0;
    let base = if flag && n > 0 { x.powi(m) } else { x * k };
    base * s + (n as f64) * x
}

#[test]
fn integers_bools_and_casts_are_constants() {
    for (n, flag, scale) in [(1, true, 3usize), (2, false, 4), (-1, true, 1)] {
        let x = 1.1;
        let (v, g) = integer_arguments_grad(x, n, flag, scale);
        assert_eq!(v, integer_arguments(x, n, flag, scale));
        assert!(
            close(g, fd1(|x| integer_arguments(x, n, flag, scale), x)),
            "{g}"
        );
    }
}

#[differentiate]
fn short_circuit(x: f64, y: f64) -> f64 {
    if x > 0.0 && y / x > 1.0 || y < -5.0 {
        x * y
    } else {
        x + y
    }
}

#[test]
fn short_circuit_conditions() {
    for (x, y) in [(1.0, 2.0), (1.0, 0.5), (-1.0, -6.0), (-1.0, 2.0)] {
        let (_, (gx, gy)) = short_circuit_grad(x, y);
        let fd = finite_difference_gradient(|p: &[f64]| short_circuit(p[0], p[1]), &[x, y]);
        assert!(close(gx, fd[0]) && close(gy, fd[1]));
    }
}

#[differentiate]
fn two_outputs(x: f64, y: f64) -> (f64, f64) {
    (x * y, x.sin() + y)
}

#[test]
fn tuple_output_takes_tuple_cotangent() {
    let (x, y) = (0.3, 1.7);
    let ((a, b), pullback) = two_outputs_pullback(x, y);
    assert_eq!((a, b), two_outputs(x, y));
    let (c0, c1) = (0.25, -1.5);
    let (gx, gy) = pullback.backward((c0, c1));
    // d/dx = c0*y + c1*cos(x), d/dy = c0*x + c1
    assert!(close(gx, c0 * y + c1 * x.cos()));
    assert!(close(gy, c0 * x + c1));
}

#[differentiate]
fn uninitialised_then_assigned(x: f64) -> f64 {
    let y;
    if x > 1.0 {
        y = x * 3.0;
    } else {
        y = x * x;
    }
    y
}

#[test]
fn deferred_initialisation() {
    for x in [0.5, 2.0] {
        let (_, g) = uninitialised_then_assigned_grad(x);
        assert!(close(g, fd1(uninitialised_then_assigned, x)));
    }
}

#[differentiate]
fn polar(r: f64, theta: f64) -> (f64, f64) {
    (r * theta.cos(), r * theta.sin())
}

#[differentiate]
fn polar_scaled(r: f64, theta: f64) -> (f64, f64) {
    polar(2.0 * r, theta)
}

#[test]
fn tuple_output_returned_from_a_call() {
    let (r, theta) = (1.5, 0.4);
    let ((x, y), pullback) = polar_scaled_pullback(r, theta);
    assert_eq!((x, y), polar_scaled(r, theta));
    let (dr, dtheta) = pullback.backward((1.0, 0.0));
    // x = 2r cos(theta)  =>  dx/dr = 2 cos(theta), dx/dtheta = -2r sin(theta)
    assert!(close(dr, 2.0 * theta.cos()));
    assert!(close(dtheta, -2.0 * r * theta.sin()));
    let (dr, dtheta) = pullback.backward((0.0, 1.0));
    assert!(close(dr, 2.0 * theta.sin()));
    assert!(close(dtheta, 2.0 * r * theta.cos()));
    assert_eq!(polar(1.0, 0.0), (1.0, 0.0));
}
