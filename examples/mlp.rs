//! A two-layer perceptron on `Tensor<f64>` learns to separate two interleaved spirals.
//!
//! The loss is an ordinary function of a `#[derive(Differentiable)]` parameter struct;
//! `#[differentiate(wrt(p))]` generates `loss_grad`, which returns the gradient as another
//! `Mlp`. Before training, that gradient is compared with finite differences
//! (`check_gradient`); then `Adam` follows it.
//!
//! ```text
//! cargo run --release --example mlp
//! ```

use autodiff::prelude::*;
use autodiff::ParamVisitor;

#[derive(Differentiable, Clone)]
struct Dense {
    w: Tensor<f64>, // [out, in]
    b: Tensor<f64>, // [out]
}

#[derive(Differentiable, Clone)]
struct Mlp {
    hidden: Dense,
    out: Dense,
}

/// The mean cross-entropy of the two-class logits for points `x` (`[n, 2]`).
#[differentiate(wrt(p))]
fn loss(p: &Mlp, x: &Tensor<f64>, labels: &[usize]) -> f64 {
    let h = x.linear(&p.hidden.w, &p.hidden.b).tanh();
    h.linear(&p.out.w, &p.out.b).cross_entropy(labels)
}

/// The fraction of points classified correctly (plain forward pass, not differentiated).
fn accuracy(p: &Mlp, x: &Tensor<f64>, labels: &[usize]) -> f64 {
    let logits = x
        .linear(&p.hidden.w, &p.hidden.b)
        .tanh()
        .linear(&p.out.w, &p.out.b);
    let rows = logits.data().chunks_exact(2);
    let correct = rows
        .zip(labels)
        .filter(|(r, &l)| usize::from(r[1] > r[0]) == l);
    correct.count() as f64 / labels.len() as f64
}

const HIDDEN: usize = 32;
const POINTS: usize = 200; // per spiral

/// A small deterministic generator (xorshift64*), uniform in [0, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn tensor(&mut self, shape: &[usize], bound: f64) -> Tensor<f64> {
        let n = shape.iter().product();
        Tensor::from_vec(
            (0..n).map(|_| bound * (2.0 * self.next() - 1.0)).collect(),
            shape,
        )
    }
}

/// Two spirals of 1.5 turns each, the second rotated by half a turn, with a little noise.
fn spirals(rng: &mut Rng) -> (Tensor<f64>, Vec<usize>) {
    let (mut xy, mut labels) = (Vec::new(), Vec::new());
    for class in 0..2 {
        for i in 0..POINTS {
            let t = 0.1 + 0.9 * i as f64 / POINTS as f64;
            let angle = 3.0 * std::f64::consts::PI * t + class as f64 * std::f64::consts::PI;
            xy.push(t * angle.cos() + 0.02 * (rng.next() - 0.5));
            xy.push(t * angle.sin() + 0.02 * (rng.next() - 0.5));
            labels.push(class);
        }
    }
    (Tensor::from_vec(xy, &[2 * POINTS, 2]), labels)
}

/// All the floats of a parameter set, in the order `Differentiable::visit` gives them.
fn flatten(p: &Mlp) -> Vec<f64> {
    struct Read(Vec<f64>);
    impl ParamVisitor for Read {
        fn leaf<T: Float>(&mut self, params: &mut [T], _: &[T]) {
            self.0.extend(params.iter().map(|v| v.to_f64().unwrap()));
        }
    }
    let mut read = Read(Vec::new());
    p.clone().visit(p, &mut read);
    read.0
}

/// `p` with its floats replaced by `values` (the inverse of `flatten`).
fn unflatten(p: &Mlp, values: &[f64]) -> Mlp {
    struct Write<'a>(&'a [f64]);
    impl ParamVisitor for Write<'_> {
        fn leaf<T: Float>(&mut self, params: &mut [T], _: &[T]) {
            let (head, rest) = self.0.split_at(params.len());
            for (p, &v) in params.iter_mut().zip(head) {
                *p = T::from(v).unwrap();
            }
            self.0 = rest;
        }
    }
    let mut q = p.clone();
    q.visit(p, &mut Write(values));
    q
}

fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (x, labels) = spirals(&mut rng);
    // uniform initialisation with the fan-in scaling of PyTorch's nn.Linear
    let mut p = Mlp {
        hidden: Dense {
            w: rng.tensor(&[HIDDEN, 2], (1.0 / 2.0f64).sqrt()),
            b: rng.tensor(&[HIDDEN], (1.0 / 2.0f64).sqrt()),
        },
        out: Dense {
            w: rng.tensor(&[2, HIDDEN], (1.0 / HIDDEN as f64).sqrt()),
            b: Tensor::zeros(&[2]),
        },
    };

    // The generated gradient against central finite differences, over all parameters.
    let (_, grad) = loss_grad(&p, &x, &labels);
    let error = check_gradient(
        |theta| loss(&unflatten(&p, theta), &x, &labels),
        &flatten(&p),
        &flatten(&grad),
    );
    println!(
        "gradient check over {} parameters: max relative error {error:.1e}",
        flatten(&p).len()
    );
    assert!(
        error < 1e-6,
        "the gradient disagrees with finite differences"
    );

    // Full-batch training.
    let mut adam = Adam::new(0.02);
    for step in 0..=1500 {
        let (value, grad) = loss_grad(&p, &x, &labels);
        if step % 150 == 0 {
            let acc = 100.0 * accuracy(&p, &x, &labels);
            println!("step {step:4}  loss {value:.4}  accuracy {acc:5.1}%");
        }
        adam.step(&mut p, &grad);
    }
}
