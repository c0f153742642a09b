//! A two-layer perceptron on nalgebra matrices learns to separate two interleaved spirals.
//!
//! The loss is an ordinary function of a `#[derive(Differentiable)]` struct of `DMatrix`
//! and `DVector` parameters: matrix products, a bias broadcast by an outer product with a
//! row of ones, `tanh` applied element-wise with `map`, and a numerically stable logistic
//! loss written as a closure with a branch. `#[differentiate(wrt(p))]` generates
//! `loss_grad`, which returns the gradient as another `Mlp`. Before training, that gradient
//! is compared with finite differences (`check_gradient`); then `Adam` follows it.
//!
//! ```text
//! cargo run --release --example mlp
//! ```

use autodiff::nalgebra::{DMatrix, DVector};
use autodiff::prelude::*;
use autodiff::ParamVisitor;

#[derive(Differentiable, Clone)]
struct Mlp {
    w1: DMatrix<f64>, // [hidden, 2]
    b1: DVector<f64>, // [hidden]
    w2: DMatrix<f64>, // [1, hidden]
    b2: DVector<f64>, // [1]
}

/// The mean logistic loss `ln(1 + exp(−y z))` of the points `x` (`2 × n`, one point per
/// column) with labels `y` (`1 × n`, ±1); `ones` is a `1 × n` row of ones, which broadcasts
/// the biases over the batch as outer products.
#[differentiate(wrt(p))]
fn loss(p: &Mlp, x: &DMatrix<f64>, y: &DMatrix<f64>, ones: &DMatrix<f64>) -> f64 {
    let hidden: DMatrix<f64> = (&p.w1 * x + &p.b1 * ones).map(|v| v.tanh());
    let z: DMatrix<f64> = &p.w2 * hidden + &p.b2 * ones;
    let margins = z.component_mul(y);
    // softplus(−m), without overflow for large |m|
    let losses = margins.map(|m| {
        if m > 0.0 {
            (-m).exp().ln_1p()
        } else {
            -m + m.exp().ln_1p()
        }
    });
    losses.mean()
}

/// The fraction of points classified correctly (plain forward pass, not differentiated).
fn accuracy(p: &Mlp, x: &DMatrix<f64>, y: &DMatrix<f64>, ones: &DMatrix<f64>) -> f64 {
    let hidden = (&p.w1 * x + &p.b1 * ones).map(|v| v.tanh());
    let z = &p.w2 * hidden + &p.b2 * ones;
    let correct = z.iter().zip(y.iter()).filter(|(z, y)| *z * *y > 0.0);
    correct.count() as f64 / y.len() as f64
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
    fn matrix(&mut self, rows: usize, cols: usize, bound: f64) -> DMatrix<f64> {
        DMatrix::from_fn(rows, cols, |_, _| bound * (2.0 * self.next() - 1.0))
    }
}

/// Two spirals of 1.5 turns each, the second rotated by half a turn, with a little noise:
/// the points as columns, and their labels ±1.
fn spirals(rng: &mut Rng) -> (DMatrix<f64>, DMatrix<f64>) {
    let (mut xy, mut labels) = (Vec::new(), Vec::new());
    for class in 0..2 {
        for i in 0..POINTS {
            let t = 0.1 + 0.9 * i as f64 / POINTS as f64;
            let angle = 3.0 * std::f64::consts::PI * t + class as f64 * std::f64::consts::PI;
            xy.push(t * angle.cos() + 0.02 * (rng.next() - 0.5));
            xy.push(t * angle.sin() + 0.02 * (rng.next() - 0.5));
            labels.push(if class == 0 { -1.0 } else { 1.0 });
        }
    }
    (
        DMatrix::from_vec(2, 2 * POINTS, xy),
        DMatrix::from_vec(1, 2 * POINTS, labels),
    )
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
    let ones = DMatrix::from_element(1, x.ncols(), 1.0);
    // uniform initialisation with the fan-in scaling of PyTorch's nn.Linear
    let mut p = Mlp {
        w1: rng.matrix(HIDDEN, 2, (1.0 / 2.0f64).sqrt()),
        b1: DVector::from_column_slice(rng.matrix(HIDDEN, 1, (1.0 / 2.0f64).sqrt()).as_slice()),
        w2: rng.matrix(1, HIDDEN, (1.0 / HIDDEN as f64).sqrt()),
        b2: DVector::zeros(1),
    };

    // The generated gradient against central finite differences, over all parameters.
    let (_, grad) = loss_grad(&p, &x, &labels, &ones);
    let error = check_gradient(
        |theta| loss(&unflatten(&p, theta), &x, &labels, &ones),
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
        let (value, grad) = loss_grad(&p, &x, &labels, &ones);
        if step % 150 == 0 {
            let acc = 100.0 * accuracy(&p, &x, &labels, &ones);
            println!("step {step:4}  loss {value:.4}  accuracy {acc:5.1}%");
        }
        adam.step(&mut p, &grad);
    }
}
