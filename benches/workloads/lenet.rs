//! One LeNet training step on a batch of 64 (the network of `examples/lenet.rs`, `f32`):
//! the loss and its gradient, then an SGD update. The hand-written backward pass chains the
//! runtime's tensor rules in reverse by hand, as `tests/differentiate/tensors.rs` does.

use super::rng::Rng;
use autodiff::prelude::*;
use autodiff::Tensor;

#[derive(Differentiable, Clone)]
pub struct Conv {
    pub w: Tensor<f32>,
    pub b: Tensor<f32>,
}

#[derive(Differentiable, Clone)]
pub struct Dense {
    pub w: Tensor<f32>,
    pub b: Tensor<f32>,
}

#[derive(Differentiable, Clone)]
pub struct LeNet {
    pub c1: Conv,
    pub c2: Conv,
    pub f1: Dense,
    pub f2: Dense,
    pub f3: Dense,
}

#[differentiate(wrt(p))]
pub fn loss(p: &LeNet, x: &Tensor<f32>, labels: &[usize]) -> f32 {
    let h = x.conv2d(&p.c1.w, &p.c1.b, 1, 2).relu().max_pool2d(2);
    let h = h.conv2d(&p.c2.w, &p.c2.b, 1, 0).relu().max_pool2d(2);
    let n = h.shape()[0];
    let h = h.reshape(&[n, 400]);
    let h = h.linear(&p.f1.w, &p.f1.b).relu();
    let h = h.linear(&p.f2.w, &p.f2.b).relu();
    h.linear(&p.f3.w, &p.f3.b).cross_entropy(labels)
}

/// The loss and its gradient, the layers run forward and then back by hand.
pub fn hand_grad(p: &LeNet, x: &Tensor<f32>, labels: &[usize]) -> (f32, LeNet) {
    use autodiff::__private::rules::tensor as r;
    let a1 = x.conv2d(&p.c1.w, &p.c1.b, 1, 2);
    let r1 = a1.relu();
    let m1 = r1.max_pool2d(2);
    let a2 = m1.conv2d(&p.c2.w, &p.c2.b, 1, 0);
    let r2 = a2.relu();
    let m2 = r2.max_pool2d(2);
    let flat = m2.reshape(&[m2.shape()[0], 400]);
    let h1 = flat.linear(&p.f1.w, &p.f1.b).relu();
    let h2 = h1.linear(&p.f2.w, &p.f2.b).relu();
    let z3 = h2.linear(&p.f3.w, &p.f3.b);
    let value = z3.cross_entropy(labels);
    let d_z3 = r::cross_entropy_d0(&z3, labels, 1.0);
    let d_h2 = r::linear_d0(&p.f3.w, &d_z3);
    let (d_w3, d_b3) = (r::linear_d1(&h2, &d_z3), r::linear_d2(d_z3));
    let d_z2 = r::relu_d0(&h2, d_h2);
    let d_h1 = r::linear_d0(&p.f2.w, &d_z2);
    let (d_w2, d_b2) = (r::linear_d1(&h1, &d_z2), r::linear_d2(d_z2));
    let d_z1 = r::relu_d0(&h1, d_h1);
    let d_flat = r::linear_d0(&p.f1.w, &d_z1);
    let (d_w1, d_b1) = (r::linear_d1(&flat, &d_z1), r::linear_d2(d_z1));
    let d_m2 = r::reshape_d0(&m2, d_flat);
    let d_r2 = r::max_pool2d_d0(&r2, &2, d_m2);
    let d_a2 = r::relu_d0(&r2, d_r2);
    let d_m1 = r::conv2d_d0(&m1, &p.c2.w, &1, &0, &d_a2);
    let (d_cw2, d_cb2) = (
        r::conv2d_d1(&m1, &p.c2.w, &1, &0, &d_a2),
        r::conv2d_d2(d_a2),
    );
    let d_r1 = r::max_pool2d_d0(&r1, &2, d_m1);
    let d_a1 = r::relu_d0(&r1, d_r1);
    let (d_cw1, d_cb1) = (r::conv2d_d1(x, &p.c1.w, &1, &2, &d_a1), r::conv2d_d2(d_a1));
    let grad = LeNet {
        c1: Conv { w: d_cw1, b: d_cb1 },
        c2: Conv { w: d_cw2, b: d_cb2 },
        f1: Dense { w: d_w1, b: d_b1 },
        f2: Dense { w: d_w2, b: d_b2 },
        f3: Dense { w: d_w3, b: d_b3 },
    };
    (value, grad)
}

pub struct Batch {
    pub params: LeNet,
    pub x: Tensor<f32>,
    pub labels: Vec<usize>,
}

fn uniform(rng: &mut Rng, shape: &[usize], bound: f64) -> Tensor<f32> {
    let n = shape.iter().product();
    let data = (0..n).map(|_| rng.range(-bound, bound) as f32).collect();
    Tensor::from_vec(data, shape)
}

impl Batch {
    /// Kaiming-uniform weights and zero biases as in `examples/lenet.rs`, `n` random images.
    pub fn new(n: usize) -> Self {
        let mut rng = Rng::new(0x1e4e_7000 + n as u64);
        let mut conv = |out: usize, inp: usize| Conv {
            w: uniform(
                &mut rng,
                &[out, inp, 5, 5],
                (6.0 / (inp * 25) as f64).sqrt(),
            ),
            b: Tensor::zeros(&[out]),
        };
        let (c1, c2) = (conv(6, 1), conv(16, 6));
        let mut dense = |out: usize, inp: usize, gain: f64| Dense {
            w: uniform(&mut rng, &[out, inp], (gain / inp as f64).sqrt()),
            b: Tensor::zeros(&[out]),
        };
        let (f1, f2, f3) = (
            dense(120, 400, 6.0),
            dense(84, 120, 6.0),
            dense(10, 84, 3.0),
        );
        let x = uniform(&mut rng, &[n, 1, 28, 28], 1.0);
        let labels = (0..n).map(|_| rng.below(10)).collect();
        Batch {
            params: LeNet { c1, c2, f1, f2, f3 },
            x,
            labels,
        }
    }

    pub fn loss(&self) -> f32 {
        loss(&self.params, &self.x, &self.labels)
    }

    /// One training step with our gradient; returns the loss before the step.
    pub fn step_ours(&mut self, sgd: &mut Sgd) -> f32 {
        let (value, grad) = loss_grad(&self.params, &self.x, &self.labels);
        sgd.step(&mut self.params, &grad);
        value
    }

    /// One training step with the hand-written gradient.
    pub fn step_hand(&mut self, sgd: &mut Sgd) -> f32 {
        let (value, grad) = hand_grad(&self.params, &self.x, &self.labels);
        sgd.step(&mut self.params, &grad);
        value
    }
}

/// Every parameter tensor of a network, in a fixed order.
pub fn leaves(p: &LeNet) -> [&Tensor<f32>; 10] {
    [
        &p.c1.w, &p.c1.b, &p.c2.w, &p.c2.b, &p.f1.w, &p.f1.b, &p.f2.w, &p.f2.b, &p.f3.w, &p.f3.b,
    ]
}
