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
