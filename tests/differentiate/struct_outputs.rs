//! Functions returning a `#[derive(Differentiable)]` struct built by a struct expression:
//! `backward` takes a cotangent of the struct's type, checked against central finite
//! differences of the fields weighted by that cotangent, analytic formulas and `Dual`.

use autodiff::prelude::*;

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct State {
    pub x: f64,
    pub v: f64,
}

/// `<c, g(p)>`'s gradient by finite differences against `grad`, for outputs flattened to
/// a vector and a cotangent `c` flattened the same way.
#[track_caller]
fn assert_weighted_fd(
    what: &str,
    g: impl Fn(&[f64]) -> Vec<f64>,
    c: &[f64],
    p: &[f64],
    grad: &[f64],
) {
    let weighted = |q: &[f64]| g(q).iter().zip(c).map(|(y, w)| y * w).sum::<f64>();
    crate::arrays::assert_fd(what, grad, weighted, p);
}

// One step of a damped spring, semi-implicit Euler.
#[differentiate]
fn step(s: &State, k: f64, dt: f64) -> State {
    let a = -k * s.x - 0.1 * s.v;
    let v = s.v + a * dt;
    State { x: s.x + v * dt, v }
}

#[test]
fn a_step_returning_a_struct_matches_finite_differences() {
    let p = [0.7, -0.3, 2.0, 0.05];
    let run = |q: &[f64]| {
        let s = step(&State { x: q[0], v: q[1] }, q[2], q[3]);
        vec![s.x, s.v]
    };
    let state = State { x: p[0], v: p[1] };
    let (value, pullback) = step_pullback(&state, p[2], p[3]);
    assert_eq!(value, step(&state, p[2], p[3]));
    for c in [[1.0, 0.0], [0.0, 1.0], [0.3, -1.2]] {
        let (d_s, d_k, d_dt) = pullback.backward(State { x: c[0], v: c[1] });
        assert_weighted_fd("step", run, &c, &p, &[d_s.x, d_s.v, d_k, d_dt]);
    }
}

#[derive(Differentiable, Clone, Debug)]
pub struct Summary {
    pub mean: f64,
    pub spread: f64,
    pub count: usize,
    pub scaled: Vec<f64>,
}

// Fields written in different orders, an early return, a field that carries no derivative
// (`count`) and a vector field.
#[differentiate]
fn summarize(xs: &[f64], scale: f64) -> Summary {
    let n = xs.len();
    if n == 1 {
        return Summary {
            count: 1,
            scaled: vec![xs[0] * scale],
            mean: xs[0],
            spread: 0.0,
        };
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let mut spread = 0.0;
    let mut scaled = Vec::with_capacity(n);
    for &v in xs {
        spread += (v - mean).powi(2);
        scaled.push(v * scale);
    }
    if spread > 1.0 {
        Summary {
            mean,
            spread: spread.sqrt(),
            count: n,
            scaled,
        }
    } else {
        Summary {
            spread,
            scaled,
            mean,
            count: n,
        }
    }
}

#[test]
fn branches_and_early_returns_build_the_same_struct() {
    for xs in [vec![0.4], vec![0.1, 0.2, -0.1, 0.3], vec![1.5, -1.0, 0.5]] {
        let n = xs.len();
        let scale = 1.7;
        let mut p = xs.clone();
        p.push(scale);
        let run = |q: &[f64]| {
            let s = summarize(&q[..n], q[n]);
            let mut out = vec![s.mean, s.spread];
            out.extend(&s.scaled);
            out
        };
        let (value, pullback) = summarize_pullback(&xs, scale);
        assert_eq!(value.count, n);
        assert_eq!(value.scaled.len(), n);
        for seed in 0..3 {
            let c: Vec<f64> = (0..n + 2)
                .map(|k| ((k + 3 * seed) as f64 * 0.77).sin())
                .collect();
            let (d_xs, d_scale) = pullback.backward(Summary {
                mean: c[0],
                spread: c[1],
                count: 0,
                scaled: c[2..].to_vec(),
            });
            let mut grad = d_xs.clone();
            grad.push(d_scale);
            assert_weighted_fd("summarize", run, &c, &p, &grad);
        }
    }
}

// A struct built in the function, carried through a loop and changed field by field, then
// taken apart by a pattern.
#[differentiate]
fn orbit(x0: f64, v0: f64, dt: f64, steps: usize) -> State {
    let mut s = State { x: x0, v: v0 };
    for _ in 0..steps {
        s.v -= s.x * dt;
        s.x += s.v * dt;
    }
    let State { x, v } = s;
    State {
        x: x.tanh(),
        v: v * s.x,
    }
}

#[test]
fn a_local_struct_carried_through_a_loop() {
    let p = [0.8, 0.1, 0.2];
    for steps in [0usize, 1, 5] {
        let run = |q: &[f64]| {
            let s = orbit(q[0], q[1], q[2], steps);
            vec![s.x, s.v]
        };
        let (value, pullback) = orbit_pullback(p[0], p[1], p[2], steps);
        assert_eq!(value, orbit(p[0], p[1], p[2], steps));
        for c in [[1.0, 0.0], [0.0, 1.0], [-0.6, 0.9]] {
            let (a, b, d) = pullback.backward(State { x: c[0], v: c[1] });
            assert_weighted_fd("orbit", run, &c, &p, &[a, b, d]);
        }
    }
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Pair<T> {
    pub a: T,
    pub b: T,
}

// a = r cos θ, b = r sin θ:
// ∂a/∂r = cos θ, ∂a/∂θ = -r sin θ, ∂b/∂r = sin θ, ∂b/∂θ = r cos θ
#[differentiate]
fn polar<T: Float>(r: T, theta: T) -> Pair<T> {
    Pair {
        a: r * theta.cos(),
        b: r * theta.sin(),
    }
}

#[test]
fn a_generic_struct_output_matches_the_analytic_jacobian_and_runs_in_dual() {
    let (r, t) = (1.3, 0.4);
    let (value, pullback) = polar_pullback(r, t);
    assert_eq!(value, polar(r, t));
    let (a_r, a_t) = pullback.backward(Pair { a: 1.0, b: 0.0 });
    let (b_r, b_t) = pullback.backward(Pair { a: 0.0, b: 1.0 });
    let close = |x: f64, y: f64| autodiff::relative_error(x, y) < 1e-14;
    assert!(close(a_r, t.cos()) && close(a_t, -r * t.sin()));
    assert!(close(b_r, t.sin()) && close(b_t, r * t.cos()));
    // forward over reverse, along θ: d/dθ of (∂a/∂r, ∂a/∂θ) = (-sin θ, -r cos θ)
    let (_, dual) = polar_pullback(Dual::new(r, 0.0), Dual::new(t, 1.0));
    let (d_r, d_t) = dual.backward(Pair {
        a: Dual::new(1.0, 0.0),
        b: Dual::new(0.0, 0.0),
    });
    assert!(close(d_r.re, t.cos()) && close(d_r.eps, -t.sin()));
    assert!(close(d_t.re, -r * t.sin()) && close(d_t.eps, -r * t.cos()));
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Particle {
    pub x: f64,
    pub v: f64,
}

#[differentiate]
impl Particle {
    // x' = x + (v + f dt) dt, v' = v + f dt
    #[differentiate]
    fn advanced(&self, force: f64, dt: f64) -> Self {
        let v = self.v + force * dt;
        Self {
            x: self.x + v * dt,
            v,
        }
    }
}

#[test]
fn a_method_returning_self() {
    let p = Particle { x: 0.5, v: -1.0 };
    let (force, dt) = (3.0, 0.1);
    let (value, pullback) = p.advanced_pullback(force, dt);
    assert_eq!(value, p.advanced(force, dt));
    let (d_p, d_force, d_dt) = pullback.backward(Particle { x: 1.0, v: 0.0 });
    let close = |x: f64, y: f64| autodiff::relative_error(x, y) < 1e-14;
    // ∂x'/∂x = 1, ∂x'/∂v = dt, ∂x'/∂f = dt², ∂x'/∂dt = v + 2 f dt
    assert!(close(d_p.x, 1.0) && close(d_p.v, dt));
    assert!(close(d_force, dt * dt) && close(d_dt, p.v + 2.0 * force * dt));
}

#[differentiate]
fn spring_energy(s: &State, k: f64) -> f64 {
    0.5 * s.v * s.v + 0.5 * k * s.x * s.x
}

// A struct returned by one differentiated function and passed whole to others, also carried
// through a loop (its type written, as the backward pass saves it per iteration).
#[differentiate]
fn simulate(s0: &State, k: f64, dt: f64, steps: usize) -> f64 {
    let mut s: State = step(s0, k, dt);
    for _ in 1..steps {
        s = step(&s, k, dt);
    }
    spring_energy(&s, k)
}

/// `simulate` written again on `Dual` numbers, the input `seed` carrying the tangent: its
/// derivative along that input, by forward mode.
fn simulate_forward(p: &[f64; 4], seed: usize, steps: usize) -> f64 {
    let d = |k: usize| Dual::new(p[k], if k == seed { 1.0 } else { 0.0 });
    let (mut x, mut v, k, dt) = (d(0), d(1), d(2), d(3));
    let (tenth, half) = (Dual::new(0.1, 0.0), Dual::new(0.5, 0.0));
    for _ in 0..steps.max(1) {
        let a = -k * x - tenth * v;
        v = v + a * dt;
        x = x + v * dt;
    }
    (half * v * v + half * k * x * x).eps
}

#[test]
fn struct_results_compose_through_calls_and_loops() {
    let p = [0.9, -0.2, 3.0, 0.05];
    for steps in [1usize, 2, 20] {
        let run = |q: &[f64]| vec![simulate(&State { x: q[0], v: q[1] }, q[2], q[3], steps)];
        let (value, (d_s, d_k, d_dt)) =
            simulate_grad(&State { x: p[0], v: p[1] }, p[2], p[3], steps);
        assert_eq!(value, run(&p)[0]);
        let grad = [d_s.x, d_s.v, d_k, d_dt];
        for (k, g) in grad.iter().enumerate() {
            let expected = simulate_forward(&p, k, steps);
            assert!(
                autodiff::relative_error(*g, expected) < 1e-12,
                "steps {steps}, input {k}: {g} vs forward mode {expected}"
            );
        }
        if steps < 20 {
            assert_weighted_fd("simulate", run, &[1.0], &p, &grad);
        }
    }
}

#[differentiate]
fn misfit(s: &State, target: f64) -> f64 {
    (s.x - target).powi(2)
}

// The state is read twice per iteration (by `misfit` and by the next `step`) and the last
// one is not used after the loop, so its cotangent starts at zero (`ZeroCotangent`, which
// the derive gives `State`), and the saved states are copies (a `State` is not `Copy`).
#[differentiate]
fn tracked(s0: &State, k: f64, dt: f64, targets: &[f64]) -> f64 {
    let mut s: State = step(s0, k, dt);
    let mut total = misfit(&s, targets[0]);
    for i in 1..targets.len() {
        s = step(&s, k, dt);
        total += misfit(&s, targets[i]);
    }
    total
}

/// `tracked` written again on `Dual` numbers: its derivative along input `seed`.
fn tracked_forward(p: &[f64; 4], seed: usize, targets: &[f64]) -> f64 {
    let d = |k: usize| Dual::new(p[k], if k == seed { 1.0 } else { 0.0 });
    let (mut x, mut v, k, dt) = (d(0), d(1), d(2), d(3));
    let tenth = Dual::new(0.1, 0.0);
    let mut total = Dual::new(0.0, 0.0);
    for &target in targets {
        let a = -k * x - tenth * v;
        v = v + a * dt;
        x = x + v * dt;
        total = total + (x - Dual::new(target, 0.0)).powi(2);
    }
    total.eps
}

#[test]
fn a_struct_result_read_twice_per_iteration_and_dropped_after_the_loop() {
    let p = [0.9, -0.2, 3.0, 0.05];
    for n in [1usize, 2, 7] {
        let targets: Vec<f64> = (0..n).map(|i| (i as f64 * 0.4).cos()).collect();
        let (value, (d_s, d_k, d_dt, _)) =
            tracked_grad(&State { x: p[0], v: p[1] }, p[2], p[3], &targets);
        assert_eq!(
            value,
            tracked(&State { x: p[0], v: p[1] }, p[2], p[3], &targets)
        );
        for (k, g) in [d_s.x, d_s.v, d_k, d_dt].iter().enumerate() {
            let expected = tracked_forward(&p, k, &targets);
            assert!(
                autodiff::relative_error(*g, expected) < 1e-12,
                "n {n}, input {k}: {g} vs forward mode {expected}"
            );
        }
    }
}

// Structs built in the function passed whole to differentiated functions: a variable, a
// struct expression in the call, one changed in a loop, and one into a callee that returns
// a struct.
#[differentiate]
fn built_and_passed(x: f64, v: f64, k: f64) -> f64 {
    let s = State {
        x: x * 2.0,
        v: v.sin(),
    };
    spring_energy(&s, k) + spring_energy(&State { x: v, v: x }, 1.0)
}

#[differentiate]
fn built_in_a_loop(x: f64, v: f64, k: f64, dt: f64, n: usize) -> f64 {
    let mut s = State { x, v };
    let mut total = 0.0;
    for _ in 0..n {
        s.v -= k * s.x * dt;
        s.x += s.v * dt;
        total += misfit(&s, 0.25);
    }
    let next: State = step(&State { x: s.v, v: s.x }, k, dt);
    total + spring_energy(&next, k)
}

#[test]
fn structs_built_in_the_function_pass_to_differentiated_functions() {
    // f = ½ sin²v + ½ k (2x)² + ½ v² + ½ x²:
    // ∂f/∂x = 4 k x + x, ∂f/∂v = sin v cos v + v, ∂f/∂k = 2 x²
    let (x, v, k) = (0.3, 0.7, 2.0);
    let (value, (d_x, d_v, d_k)) = built_and_passed_grad(x, v, k);
    assert_eq!(value, built_and_passed(x, v, k));
    let close = |a: f64, b: f64| autodiff::relative_error(a, b) < 1e-14;
    assert!(close(d_x, 4.0 * k * x + x), "{d_x}");
    assert!(close(d_v, v.sin() * v.cos() + v), "{d_v}");
    assert!(close(d_k, 2.0 * x * x), "{d_k}");

    let p = [0.6, -0.4, 2.5, 0.1];
    for n in [0usize, 1, 4] {
        let run = |q: &[f64]| vec![built_in_a_loop(q[0], q[1], q[2], q[3], n)];
        let (value, (a, b, c, d)) = built_in_a_loop_grad(p[0], p[1], p[2], p[3], n);
        assert_eq!(value, run(&p)[0]);
        assert_weighted_fd("built_in_a_loop", run, &[1.0], &p, &[a, b, c, d]);
    }
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
pub struct Body {
    pub x: f64,
    pub v: f64,
    pub m: f64,
}

#[differentiate]
impl Body {
    // E = ½ m v² + ½ k x²
    #[differentiate]
    fn energy(&self, k: f64) -> f64 {
        0.5 * self.m * self.v * self.v + 0.5 * k * self.x * self.x
    }
}

// A method called on a struct built in the function: `b.energy(k)` is `Body::energy(&b, k)`.
#[differentiate]
fn energy_of_built(x: f64, v: f64, k: f64) -> f64 {
    let b = Body {
        x,
        v: 2.0 * v,
        m: 3.0,
    };
    b.energy(k)
}

#[test]
fn a_method_of_a_struct_built_in_the_function() {
    // f = ½ 3 (2v)² + ½ k x² = 6 v² + ½ k x²: ∂x = k x, ∂v = 12 v, ∂k = ½ x²
    let (x, v, k) = (0.8, -0.3, 1.7);
    let (value, (d_x, d_v, d_k)) = energy_of_built_grad(x, v, k);
    assert_eq!(value, energy_of_built(x, v, k));
    let close = |a: f64, b: f64| autodiff::relative_error(a, b) < 1e-14;
    assert!(close(d_x, k * x) && close(d_v, 12.0 * v) && close(d_k, 0.5 * x * x));
}

#[derive(Differentiable, Clone, Debug)]
pub struct Linear {
    pub w: Vec<f64>,
    pub b: f64,
}

#[differentiate]
fn affine(l: &Linear, x: &[f64]) -> f64 {
    let mut s = l.b;
    for i in 0..x.len() {
        s += l.w[i] * x[i];
    }
    s
}

// A struct with a vector field built from a vector that is read again after the call.
#[differentiate]
fn built_with_a_vector(x: &[f64], b: f64) -> f64 {
    let w: Vec<f64> = x.iter().map(|v| v * v).collect();
    let l = Linear { w, b };
    affine(&l, x) + l.w[0] * b
}

#[test]
fn a_struct_with_a_vector_field_passed_and_read_again() {
    let x = [0.5, -1.2, 0.8];
    let b = 0.3;
    let mut p = x.to_vec();
    p.push(b);
    let run = |q: &[f64]| vec![built_with_a_vector(&q[..3], q[3])];
    let (value, (d_x, d_b)) = built_with_a_vector_grad(&x, b);
    assert_eq!(value, run(&p)[0]);
    let mut grad = d_x.clone();
    grad.push(d_b);
    assert_weighted_fd("built_with_a_vector", run, &[1.0], &p, &grad);
}

// Fields of a struct a differentiated callee returned, its type written: the reads'
// cotangents go into the struct's cotangent, which starts at zero (`ZeroCotangent`).
#[differentiate]
fn read_fields_of_results(x: f64, v: f64, k: f64, n: usize) -> f64 {
    let mut s: State = step(&State { x, v }, k, 0.1);
    let mut total = s.x * s.x;
    for _ in 1..n {
        s = step(&s, k, 0.1);
        total += s.x * s.v;
    }
    total + s.v
}

#[test]
fn fields_of_a_struct_a_callee_returned() {
    let p = [0.8, -0.3, 2.0];
    for n in [1usize, 2, 5] {
        let run = |q: &[f64]| vec![read_fields_of_results(q[0], q[1], q[2], n)];
        let (value, (a, b, c)) = read_fields_of_results_grad(p[0], p[1], p[2], n);
        assert_eq!(value, run(&p)[0]);
        assert_weighted_fd("read_fields_of_results", run, &[1.0], &p, &[a, b, c]);
    }
}

// A simulation returning its final state: the struct a callee returned, rebuilt from its
// fields (its type written so that they can be read).
#[differentiate]
fn final_state(s0: &State, k: f64, dt: f64, n: usize) -> State {
    let mut s: State = step(s0, k, dt);
    for _ in 1..n {
        s = step(&s, k, dt);
    }
    State { x: s.x, v: s.v }
}

#[test]
fn a_simulation_returning_its_final_state() {
    let p = [0.9, -0.2, 3.0, 0.05];
    for n in [1usize, 3, 10] {
        let run = |q: &[f64]| {
            let s = final_state(&State { x: q[0], v: q[1] }, q[2], q[3], n);
            vec![s.x, s.v]
        };
        let (value, pullback) = final_state_pullback(&State { x: p[0], v: p[1] }, p[2], p[3], n);
        assert_eq!(vec![value.x, value.v], run(&p));
        for c in [[1.0, 0.0], [0.0, 1.0], [0.4, -0.7]] {
            let (d_s, d_k, d_dt) = pullback.backward(State { x: c[0], v: c[1] });
            assert_weighted_fd("final_state", run, &c, &p, &[d_s.x, d_s.v, d_k, d_dt]);
        }
    }
}

// A struct a callee returned, returned whole (no struct expression of the type in the body):
// `backward` hands its cotangent to the returned value as it is.
#[differentiate]
fn two_steps(s: &State, k: f64, dt: f64) -> State {
    step(&step(s, k, dt), k, dt)
}

#[differentiate]
fn last_state(s0: &State, k: f64, dt: f64, n: usize) -> State {
    let mut s: State = step(s0, k, dt);
    for _ in 1..n {
        s = step(&s, k, dt);
    }
    s
}

#[test]
fn a_struct_a_callee_returned_is_returned_whole() {
    let p = [0.9, -0.2, 3.0, 0.05];
    let state = State { x: p[0], v: p[1] };
    let runs: [(&str, usize); 2] = [("two_steps", 2), ("last_state", 7)];
    for (what, n) in runs {
        let call = |q: &[f64]| {
            let s = State { x: q[0], v: q[1] };
            if what == "two_steps" {
                two_steps(&s, q[2], q[3])
            } else {
                last_state(&s, q[2], q[3], n)
            }
        };
        let run = |q: &[f64]| {
            let s = call(q);
            vec![s.x, s.v]
        };
        for c in [[1.0, 0.0], [0.0, 1.0], [0.4, -0.7]] {
            let cotangent = State { x: c[0], v: c[1] };
            let (d_s, d_k, d_dt) = if what == "two_steps" {
                let (value, pullback) = two_steps_pullback(&state, p[2], p[3]);
                assert_eq!(value, call(&p));
                pullback.backward(cotangent)
            } else {
                let (value, pullback) = last_state_pullback(&state, p[2], p[3], n);
                assert_eq!(value, call(&p));
                pullback.backward(cotangent)
            };
            assert_weighted_fd(what, run, &c, &p, &[d_s.x, d_s.v, d_k, d_dt]);
        }
    }
}

#[differentiate]
fn pair_product<T: Float>(p: &Pair<T>) -> T {
    p.a * p.b
}

// A generic struct built in a generic function and passed on: its type arguments written,
// and `Pair<T>: Differentiable` added to the generated items' bounds (not to the function).
// f = (x sin y)(x + y): ∂x = sin y (x + y) + x sin y, ∂y = x cos y (x + y) + x sin y
#[differentiate]
fn generic_pair_passed<T: Float>(x: T, y: T) -> T {
    let p = Pair::<T> {
        a: x * y.sin(),
        b: x + y,
    };
    pair_product(&p)
}

#[test]
fn a_generic_struct_built_and_passed() {
    let (x, y) = (0.7, -1.3);
    let (value, (d_x, d_y)) = generic_pair_passed_grad(x, y);
    assert_eq!(value, generic_pair_passed(x, y));
    let close = |a: f64, b: f64| autodiff::relative_error(a, b) < 1e-14;
    assert!(close(d_x, y.sin() * (x + y) + x * y.sin()), "{d_x}");
    assert!(close(d_y, x * y.cos() * (x + y) + x * y.sin()), "{d_y}");
}
