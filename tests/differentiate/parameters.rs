//! `#[derive(Differentiable)]` parameter sets and the optimizers that update them.

use autodiff::prelude::*;

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Layer {
    weights: Vec<f64>,
    bias: f64,
    width: usize,
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Model {
    layers: Vec<Layer>,
    scale: [f64; 2],
    name_id: u32,
}

fn model() -> Model {
    Model {
        layers: vec![
            Layer {
                weights: vec![1.0, -2.0],
                bias: 0.5,
                width: 2,
            },
            Layer {
                weights: vec![3.0],
                bias: -1.0,
                width: 1,
            },
        ],
        scale: [2.0, -0.5],
        name_id: 7,
    }
}

/// loss = Σ (p - target)² over every float leaf, target = 1  =>  gradient 2 (p - 1)
fn quadratic_gradient(m: &Model) -> Model {
    let mut g = m.zero_like();
    for (gl, l) in g.layers.iter_mut().zip(&m.layers) {
        for (gw, w) in gl.weights.iter_mut().zip(&l.weights) {
            *gw = 2.0 * (w - 1.0);
        }
        gl.bias = 2.0 * (l.bias - 1.0);
    }
    for (gs, s) in g.scale.iter_mut().zip(&m.scale) {
        *gs = 2.0 * (s - 1.0);
    }
    g
}

#[test]
fn zero_like_keeps_constants_and_zeroes_floats() {
    let m = model();
    let z = m.zero_like();
    assert_eq!(z.layers[0].weights, vec![0.0, 0.0]);
    assert_eq!(z.layers[0].width, 2);
    assert_eq!(z.layers[1].bias, 0.0);
    assert_eq!(z.name_id, 7);
    let mut acc = z.clone();
    acc.accumulate_from(&quadratic_gradient(&m));
    acc.accumulate_from(&quadratic_gradient(&m));
    assert_eq!(acc.layers[1].weights, vec![8.0]);
    assert_eq!(acc.name_id, 7);
}

#[test]
fn sgd_takes_the_plain_step_and_keeps_constants() {
    let mut m = model();
    let g = quadratic_gradient(&m);
    Sgd::new(0.25).step(&mut m, &g);
    // w - 0.25 * 2 (w - 1) = 0.5 w + 0.5
    assert_eq!(m.layers[0].weights, vec![1.0, -0.5]);
    assert_eq!(m.layers[1].bias, 0.0);
    assert_eq!(m.scale, [1.5, 0.25]);
    assert_eq!((m.layers[0].width, m.name_id), (2, 7));
}

#[test]
fn sgd_with_momentum_and_adam_converge_on_a_quadratic() {
    let mut sgd_model = model();
    let mut sgd = Sgd::new(0.05).with_momentum(0.9);
    let mut adam_model = model();
    let mut adam = Adam::new(0.05);
    for _ in 0..400 {
        let g = quadratic_gradient(&sgd_model);
        sgd.step(&mut sgd_model, &g);
        let g = quadratic_gradient(&adam_model);
        adam.step(&mut adam_model, &g);
    }
    for m in [&sgd_model, &adam_model] {
        for l in &m.layers {
            assert!(l.weights.iter().all(|w| (w - 1.0).abs() < 1e-3), "{m:?}");
            assert!((l.bias - 1.0).abs() < 1e-3);
        }
        assert!(m.scale.iter().all(|s| (s - 1.0).abs() < 1e-3));
    }
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Weights {
    w: Vec<f64>,
    b: f64,
}

// a slice of a `Vec` field: f = b Σ_{i ≥ 1} w_i²  =>  ∂f/∂w_i = 2 b w_i (i ≥ 1), ∂f/∂b = Σ w_i²
#[differentiate]
fn tail_energy(p: &Weights) -> f64 {
    let tail: f64 = p.w[1..].iter().map(|v| v * v).sum();
    tail * p.b
}

#[test]
fn slices_of_vec_fields() {
    let p = Weights {
        w: vec![1.0, 2.0, -3.0],
        b: 0.5,
    };
    let (value, g) = tail_energy_grad(&p);
    assert_eq!(value.to_bits(), tail_energy(&p).to_bits());
    assert_eq!(g.w, vec![0.0, 2.0, -3.0]);
    assert_eq!(g.b, 13.0);
}

/// A problem description passed next to the unknowns: a name, a lookup table and a mesh that
/// carry no derivative, copied into the gradient.
mod problem_descriptions {
    use autodiff::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug, PartialEq)]
    struct Mesh {
        cells: usize,
    }

    #[derive(Differentiable, Clone, Debug)]
    struct Problem {
        name: String,
        boundary: HashMap<usize, f64>,
        #[differentiable(skip)]
        mesh: Mesh,
        h: f64,
        target: Vec<f64>,
        weight: Option<f64>,
    }

    impl Problem {
        fn cells(&self) -> usize {
            self.mesh.cells
        }
    }

    fn problem() -> Problem {
        Problem {
            name: "rod".to_string(),
            boundary: HashMap::from([(0, 1.0)]),
            mesh: Mesh { cells: 4 },
            h: 0.5,
            target: vec![0.1, 0.2, 0.3, 0.4],
            weight: Some(2.0),
        }
    }

    // e(u) = Σᵢ ½ ((uᵢ₊₁ - uᵢ) / h)² + (uᵢ - targetᵢ)²
    #[differentiate(wrt(u))]
    fn energy(u: &[f64], prob: &Problem) -> f64 {
        let mut e = 0.0;
        for i in 0..u.len() - 1 {
            let d = (u[i + 1] - u[i]) / prob.h;
            e += 0.5 * d * d + (u[i] - prob.target[i]).powi(2);
        }
        e
    }

    // a caller differentiating the problem too composes through `energy`'s `wrt`
    #[differentiate]
    fn scaled(prob: &Problem, u: &[f64]) -> f64 {
        energy(u, prob) * prob.h
    }

    #[test]
    fn a_problem_left_out_by_wrt_is_read_as_data() {
        let prob = problem();
        let u = [1.0, 0.5, -0.2, 0.3];
        let (value, d_u) = energy_grad(&u, &prob);
        assert_eq!(value, energy(&u, &prob));
        let error = check_gradient(|x: &[f64]| energy(x, &prob), &u, &d_u);
        assert!(error < 1e-8, "relative error {error}");
        assert_eq!(prob.cells(), 4);
    }

    #[test]
    fn its_constant_fields_are_copied_into_the_gradient() {
        let prob = problem();
        let u = [1.0, 0.5, -0.2, 0.3];
        let (_, (d_prob, d_u)) = scaled_grad(&prob, &u);
        let error = check_gradient(|x: &[f64]| scaled(&prob, x), &u, &d_u);
        assert!(error < 1e-8, "relative error {error}");
        let h = 1e-6;
        let at = |dh: f64| {
            let mut p = prob.clone();
            p.h += dh;
            scaled(&p, &u)
        };
        let want = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            (d_prob.h - want).abs() < 1e-6 * (1.0 + want.abs()),
            "{} against {want}",
            d_prob.h
        );
        for (k, d) in d_prob.target.iter().enumerate() {
            let at = |dt: f64| {
                let mut p = prob.clone();
                p.target[k] += dt;
                scaled(&p, &u)
            };
            let want = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (d - want).abs() < 1e-6 * (1.0 + want.abs()),
                "target {k}: {d} against {want}"
            );
        }
        assert_eq!(d_prob.weight, Some(0.0));
        assert_eq!(d_prob.name, prob.name);
        assert_eq!(d_prob.boundary, prob.boundary);
        assert_eq!(d_prob.mesh, prob.mesh);
    }

    #[test]
    fn optimizers_leave_the_constant_fields_alone() {
        let mut prob = problem();
        let grad = prob.zero_like();
        let mut sgd = Sgd::new(0.1);
        sgd.step(&mut prob, &grad);
        assert_eq!((prob.name.as_str(), prob.mesh.cells), ("rod", 4));
    }
}

/// Settings and data structs that `wrt` leaves out are read as constants: they need `Clone`
/// (the pullback keeps a copy) but not `Differentiable`, unless another differentiated
/// function passes them on.
mod settings_without_derive {
    use autodiff::prelude::*;

    #[derive(Clone)]
    struct Settings {
        label: String,
        scale: f64,
        offsets: Vec<f64>,
        stride: usize,
    }

    #[derive(Clone)]
    struct Weights<T> {
        per_entry: Vec<T>,
    }

    fn settings() -> Settings {
        Settings {
            label: "fit".to_string(),
            scale: 1.5,
            offsets: vec![0.25, -1.0, 2.0],
            stride: 1,
        }
    }

    // l(x) = scale Σᵢ (xᵢ - offsetᵢ)²  =>  ∂l/∂xᵢ = 2 scale (xᵢ - offsetᵢ)
    #[differentiate(wrt(x))]
    fn misfit(x: &[f64], settings: &Settings) -> f64 {
        let mut l = 0.0;
        let mut i = 0;
        while i < x.len() {
            let r = x[i] - settings.offsets[i];
            l += settings.scale * r * r;
            i += settings.stride;
        }
        l
    }

    // l(x) = Σᵢ wᵢ sin(xᵢ)  =>  ∂l/∂xᵢ = wᵢ cos(xᵢ)
    #[differentiate(wrt(x))]
    fn weighted<T: Float>(x: &[T], weights: &Weights<T>) -> T {
        let mut l = T::zero();
        for i in 0..x.len() {
            l = l + weights.per_entry[i] * x[i].sin();
        }
        l
    }

    #[test]
    fn a_settings_struct_without_the_derive_is_data() {
        let s = settings();
        let x = [1.0, 0.5, -0.75];
        let (value, d_x) = misfit_grad(&x, &s);
        assert_eq!(value.to_bits(), misfit(&x, &s).to_bits());
        for i in 0..3 {
            let want = 2.0 * s.scale * (x[i] - s.offsets[i]);
            assert!(
                (d_x[i] - want).abs() < 1e-12,
                "{i}: {} against {want}",
                d_x[i]
            );
        }
        let error = check_gradient(|x: &[f64]| misfit(x, &s), &x, &d_x);
        assert!(error < 1e-8, "relative error {error}");
        assert_eq!(s.label, "fit");
    }

    #[test]
    fn so_is_a_generic_one() {
        let w = Weights {
            per_entry: vec![2.0, -1.0],
        };
        let x = [0.3, 1.1];
        let (_, d_x) = weighted_grad(&x, &w);
        for i in 0..2 {
            let want = w.per_entry[i] * f64::cos(x[i]);
            assert!(
                (d_x[i] - want).abs() < 1e-12,
                "{i}: {} against {want}",
                d_x[i]
            );
        }
    }
}

/// Tuples of floats as parameters: read by field or taken apart, with a tuple cotangent whose
/// constant elements keep their values, as a struct's do.
mod tuple_parameters {
    use autodiff::prelude::*;

    // inner(p, k) = p.0 p.1 + k sin p.0
    #[differentiate]
    fn inner<T: Float>(p: &(T, T), k: usize) -> T {
        p.0 * p.1 + T::from(k).unwrap() * p.0.sin()
    }

    #[differentiate(wrt(p, q))]
    fn outer(p: (f64, f64, usize), q: &(f64, f64), scale: f64) -> f64 {
        let mut s = inner(q, p.2) * scale + p.0;
        for i in 0..p.2 {
            s += (p.1 * i as f64).cos() * q.1;
        }
        let (a, b) = *q;
        s + a * b
    }

    // polar(p, w) = r cos θ w + θ r with (r, θ) = p
    #[differentiate]
    fn polar(p: (f64, f64), w: f64) -> f64 {
        let (r, theta) = p;
        r * theta.cos() * w + p.1 * p.0
    }

    #[differentiate]
    fn product3(p: (f64, f64, f64)) -> f64 {
        p.0 * p.1 * p.2
    }

    // tuples built for calls, borrowed and by value, bound to a name and inline, in a loop
    #[differentiate]
    fn built(a: f64, b: f64) -> f64 {
        let pair = (a * 2.0, b - a);
        let mut s = inner(&pair, 3) + inner(&(b, a), 1);
        for i in 0..3 {
            s += product3((a, b * i as f64, 1.5));
        }
        s
    }

    #[derive(Differentiable, Clone)]
    struct Counted {
        a: f64,
        n: usize,
    }

    #[differentiate]
    fn times(a: f64, k: usize) -> f64 {
        a * k as f64
    }

    // an integer field passed to a differentiated callee: its gradient `()` leaves it alone
    #[differentiate]
    fn counted(c: &Counted) -> f64 {
        times(c.a, c.n) + c.a * c.a
    }

    #[test]
    fn tuple_parameters_match_their_analytic_gradients() {
        let (r, theta, w) = (2.0, 0.5, 3.0);
        let (value, (d_p, d_w)) = polar_grad((r, theta), w);
        assert_eq!(value.to_bits(), polar((r, theta), w).to_bits());
        let want = (f64::cos(theta) * w + theta, -r * f64::sin(theta) * w + r);
        assert!((d_p.0 - want.0).abs() < 1e-14 && (d_p.1 - want.1).abs() < 1e-14);
        assert!((d_w - r * f64::cos(theta)).abs() < 1e-14);

        let (p, q) = ((0.7, -0.4, 3), (0.2, 1.3));
        let (value, (d_p, d_q)) = outer_grad(p, &q, 1.5);
        assert_eq!(value.to_bits(), outer(p, &q, 1.5).to_bits());
        assert_eq!(d_p.2, 3, "the constant element keeps its value");
        let error = check_gradient(
            |z: &[f64]| outer((z[0], z[1], 3), &(z[2], z[3]), 1.5),
            &[p.0, p.1, q.0, q.1],
            &[d_p.0, d_p.1, d_q.0, d_q.1],
        );
        assert!(error < 1e-8, "relative error {error}");
    }

    #[test]
    fn tuples_built_for_calls_match_finite_differences() {
        let (value, (d_a, d_b)) = built_grad(0.7, -0.4);
        assert_eq!(value.to_bits(), built(0.7, -0.4).to_bits());
        let error = check_gradient(|z: &[f64]| built(z[0], z[1]), &[0.7, -0.4], &[d_a, d_b]);
        assert!(error < 1e-8, "relative error {error}");
    }

    #[test]
    fn an_integer_field_passed_to_a_callee_is_left_alone() {
        let c = Counted { a: 0.4, n: 2 };
        let (value, d_c) = counted_grad(&c);
        assert_eq!(value.to_bits(), counted(&c).to_bits());
        // n a + a²  =>  n + 2a
        assert!((d_c.a - (2.0 + 2.0 * 0.4)).abs() < 1e-14);
        assert_eq!(d_c.n, 2);
    }
}
