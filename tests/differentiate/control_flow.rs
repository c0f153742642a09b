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

// match guards, in an expression (reading the binding, an element at it, another value, a
// binding with a pattern `k @ 1..=2`) and in statements whose arms `continue`, `break` and
// `return`
#[differentiate]
fn guarded_neighbours(x: &[f64], w: f64) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        let left = match i {
            0 => x[n - 1],
            k if x[k - 1] > 0.0 => x[k - 1] * w,
            k @ 1..=2 if w > 0.5 => x[k] * 2.0,
            k => x[k - 1].sin(),
        };
        s += left * x[i];
    }
    let c = match n {
        m if m > 3 => w * w,
        _ => w,
    };
    s * c
}

// the same with `if` chains: a guard runs only when its pattern matched and no arm before was
// taken (`x[k - 1]` is never read at `k = 0`)
fn guarded_neighbours_by_if(x: &[f64], w: f64) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        let left = if i == 0 {
            x[n - 1]
        } else if x[i - 1] > 0.0 {
            x[i - 1] * w
        } else if (1..=2).contains(&i) && w > 0.5 {
            x[i] * 2.0
        } else {
            x[i - 1].sin()
        };
        s += left * x[i];
    }
    let c = if n > 3 { w * w } else { w };
    s * c
}

#[differentiate]
fn guarded_jumps(x: &[f64], w: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        match i {
            0 => continue,
            k if x[k] < -0.3 => break,
            k if k % 2 == 0 => {
                s += x[k] * w;
            }
            _ => {
                s += x[i].cos();
            }
        }
    }
    match x.len() {
        n if n > 4 => return s,
        _ => {}
    }
    s * w
}

fn guarded_jumps_by_if(x: &[f64], w: f64) -> f64 {
    let mut s = 0.0;
    for i in 1..x.len() {
        if x[i] < -0.3 {
            break;
        }
        if i % 2 == 0 {
            s += x[i] * w;
        } else {
            s += x[i].cos();
        }
    }
    if x.len() > 4 {
        s
    } else {
        s * w
    }
}

#[test]
fn match_guards_pick_the_first_arm_whose_pattern_and_guard_hold() {
    let inputs = [
        vec![0.3, -0.4, 1.2, 0.7, -0.1],
        vec![0.3, 0.4, -1.2],
        vec![-0.5, 0.2, 0.9, 0.1],
        vec![0.6, -0.2, 0.8, -0.9],
    ];
    for x in &inputs {
        for w in [0.3, 0.8] {
            let point = [x.clone(), vec![w]].concat();
            let n = x.len();
            for (name, f, by_if, grad) in [
                (
                    "guarded_neighbours",
                    guarded_neighbours as fn(&[f64], f64) -> f64,
                    guarded_neighbours_by_if as fn(&[f64], f64) -> f64,
                    guarded_neighbours_grad as fn(&[f64], f64) -> (f64, (Vec<f64>, f64)),
                ),
                (
                    "guarded_jumps",
                    guarded_jumps,
                    guarded_jumps_by_if,
                    guarded_jumps_grad,
                ),
            ] {
                let (value, (dx, dw)) = grad(x, w);
                assert_eq!(value.to_bits(), f(x, w).to_bits(), "{name}");
                assert_eq!(value.to_bits(), by_if(x, w).to_bits(), "{name}");
                let fd = finite_difference_gradient(|p: &[f64]| f(&p[..n], p[n]), &point);
                let ours = [dx, vec![dw]].concat();
                for (k, (a, b)) in ours.iter().zip(&fd).enumerate() {
                    assert!(
                        autodiff::relative_error(*a, *b) < 1e-7,
                        "{name} {x:?} {w} component {k}: {a} against {b}"
                    );
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Flavour {
    A,
    B,
}

// guards on a float scrutinee (the binding carries the derivative) and on enum patterns
#[differentiate]
fn guarded_float_and_enum(x: f64, mode: Flavour, flag: bool) -> f64 {
    let y = match x {
        v if v > 1.0 => v.ln(),
        v if v < -1.0 => -v,
        v => v * v,
    };
    let z = match mode {
        Flavour::A if flag => y * 2.0,
        Flavour::A => y.sin(),
        Flavour::B if y > 0.5 => y * y,
        _ => y,
    };
    z + x
}

#[test]
fn match_guards_on_floats_and_enums() {
    for x in [1.5, -2.0, 0.3, 0.9] {
        for mode in [Flavour::A, Flavour::B] {
            for flag in [true, false] {
                let (value, grad) = guarded_float_and_enum_grad(x, mode, flag);
                assert_eq!(
                    value.to_bits(),
                    guarded_float_and_enum(x, mode, flag).to_bits()
                );
                let fd = fd1(|v| guarded_float_and_enum(v, mode, flag), x);
                assert!(close(grad, fd), "{x} {flag}: {grad} against {fd}");
            }
        }
    }
}

// `const` items in the body, used before their declaration and in an inner block:
// f = (2 x0 + x1) Σ_{i ≤ 1} ln(x_i + 0.002), so
// ∂f/∂x0 = 2 S + y / (x0 + 0.002), ∂f/∂x1 = S + y / (x1 + 0.002), ∂f/∂x2 = 0
#[differentiate]
fn with_constants(x: &[f64]) -> f64 {
    let y = x[0] * C + x[N];
    const C: f64 = 2.0;
    const N: usize = 1;
    let mut s = 0.0;
    for i in 0..N + 1 {
        const EPS: f64 = 1e-3 * C;
        s += (x[i] + EPS).ln();
    }
    y * s
}

#[test]
fn const_items_are_constants_of_their_block() {
    let x = [0.3, 0.4, 1.2];
    let (value, g) = with_constants_grad(&x);
    assert_eq!(value.to_bits(), with_constants(&x).to_bits());
    let y = 2.0 * x[0] + x[1];
    let s = (x[0] + 0.002).ln() + (x[1] + 0.002).ln();
    let expected = [2.0 * s + y / (x[0] + 0.002), s + y / (x[1] + 0.002), 0.0];
    for (a, b) in g.iter().zip(expected) {
        assert!(close(*a, b), "{g:?} against {expected:?}");
    }
}

mod scales {
    pub const SCALE: f64 = 3.0;
}

// `use` items at the top of the body, also naming a constant another `const` item reads:
// f = Σ_i 3 sin(2π x_i + π/2), ∂f/∂x_i = 6π cos(2π x_i + π/2)
#[differentiate]
fn with_uses(x: &[f64]) -> f64 {
    use scales::SCALE;
    use std::f64::consts::{FRAC_PI_2, PI};
    const TAU: f64 = 2.0 * PI;
    let mut s = 0.0;
    for &v in x {
        s += (v * TAU + FRAC_PI_2).sin() * SCALE;
    }
    s
}

#[test]
fn use_items_are_in_scope_in_the_generated_code() {
    use std::f64::consts::{FRAC_PI_2, PI};
    let x = [0.3, 0.4, 1.2];
    let (value, g) = with_uses_grad(&x);
    assert_eq!(value.to_bits(), with_uses(&x).to_bits());
    for (gi, xi) in g.iter().zip(x) {
        let expected = 6.0 * PI * (2.0 * PI * xi + FRAC_PI_2).cos();
        assert!(close(*gi, expected), "{gi} against {expected}");
    }
}

const TWO: usize = 2;

// a guard after an arm whose pattern is a constant (`TWO`, no binding): the constant is
// compared, not bound
#[differentiate]
fn guarded_after_a_constant(x: f64, n: usize) -> f64 {
    match n {
        TWO => x * x,
        k if k > 3 => x.sin() * k as f64,
        _ => x,
    }
}

#[test]
fn constant_patterns_before_guards_are_compared() {
    for n in 0..6 {
        let x = 0.7;
        let (value, grad) = guarded_after_a_constant_grad(x, n);
        assert_eq!(value.to_bits(), guarded_after_a_constant(x, n).to_bits());
        let expected = match n {
            2 => 2.0 * x,
            k if k > 3 => x.cos() * k as f64,
            _ => 1.0,
        };
        assert!(close(grad, expected), "{n}: {grad} against {expected}");
    }
}

// An assignment in the right operand of `||` or `&&` happens only when that operand runs: the
// variable is merged after the operator as after an `if`.
#[differentiate]
fn assigns_in_a_short_circuit(x1: f64, x2: f64) -> f64 {
    let mut y = x2;
    for _ in 0..3 {
        if x1 > y || {
            y = y * x1 + 1.0;
            y > 5.0
        } {
            y = y * 2.0;
        }
    }
    let c = x1 > y && {
        y = y * x1;
        true
    };
    if c {
        y * 3.0
    } else {
        y
    }
}

#[test]
fn assignments_in_short_circuit_operands_match_finite_differences() {
    for (a, b) in [(0.5, 2.0), (3.0, 1.0), (1.5, 1.0), (0.9, 0.2)] {
        let (value, (d_a, d_b)) = assigns_in_a_short_circuit_grad(a, b);
        assert_eq!(value, assigns_in_a_short_circuit(a, b));
        let error = check_gradient(
            |v: &[f64]| assigns_in_a_short_circuit(v[0], v[1]),
            &[a, b],
            &[d_a, d_b],
        );
        assert!(error < 1e-7, "at ({a}, {b}): error {error:e}");
    }
}

#[derive(Clone, Copy, Debug)]
enum Activation {
    Tanh,
    Relu,
    Identity,
}

// tanh' = 1 - tanh², relu' = [x > 0], identity' = 1; then halved while k ≥ 1 (three times
// for k = 3: y = x/8 + ..., each step y ← sin(y) / 2 + y / 2)
#[differentiate(wrt(x))]
fn activation_then_steps(x: f64, activation: Activation, steps: usize) -> f64 {
    let mut y = if let Activation::Tanh = activation {
        x.tanh()
    } else if let Activation::Relu = activation {
        x.max(0.0)
    } else {
        x
    };
    let mut k = steps;
    while let 1.. = k {
        y = 0.5 * y.sin() + 0.5 * y;
        k -= 1;
    }
    y
}

#[test]
fn if_let_and_while_let_match_finite_differences() {
    for activation in [Activation::Tanh, Activation::Relu, Activation::Identity] {
        for x in [-0.8, 0.3, 1.7] {
            let (value, d_x) = activation_then_steps_grad(x, activation, 3);
            assert_eq!(value, activation_then_steps(x, activation, 3));
            let want = fd1(|v| activation_then_steps(v, activation, 3), x);
            assert!(
                close(d_x, want),
                "{activation:?} at {x}: {d_x} against {want}"
            );
        }
    }
}
