//! A two-layer perceptron's loss on nalgebra matrices, as in `examples/mlp.rs`: a hidden
//! `tanh` layer (element-wise by `map`), a linear output, biases broadcast by an outer
//! product with a row of ones, and the mean logistic loss of ±1 labels.

use super::rng::Rng;
use autodiff::nalgebra::{DMatrix, DVector};
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct Mlp {
    pub w1: DMatrix<f64>,
    pub b1: DVector<f64>,
    pub w2: DMatrix<f64>,
    pub b2: DVector<f64>,
}

#[differentiate(wrt(p))]
pub fn loss(p: &Mlp, x: &DMatrix<f64>, y: &DMatrix<f64>, ones: &DMatrix<f64>) -> f64 {
    let hidden: DMatrix<f64> = (&p.w1 * x + &p.b1 * ones).map(|v| v.tanh());
    let z: DMatrix<f64> = &p.w2 * hidden + &p.b2 * ones;
    let margins = z.component_mul(y);
    let losses = margins.map(|m| {
        if m > 0.0 {
            (-m).exp().ln_1p()
        } else {
            -m + m.exp().ln_1p()
        }
    });
    losses.mean()
}

pub struct Data {
    pub params: Mlp,
    /// `inputs × n`, one point per column
    pub x: DMatrix<f64>,
    /// `1 × n`, ±1
    pub y: DMatrix<f64>,
    pub ones: DMatrix<f64>,
}

impl Data {
    pub fn new(inputs: usize, hidden: usize, n: usize) -> Self {
        let mut rng = Rng::new(0x3197_0000 + (inputs * 10_000 + hidden * 100 + n) as u64);
        let mut matrix = |r: usize, c: usize, bound: f64| {
            DMatrix::from_fn(r, c, |_, _| rng.range(-bound, bound))
        };
        let w1 = matrix(hidden, inputs, (1.0 / inputs as f64).sqrt());
        let b1 = matrix(hidden, 1, 0.1).column(0).into_owned();
        let w2 = matrix(1, hidden, (1.0 / hidden as f64).sqrt());
        let b2 = matrix(1, 1, 0.1).column(0).into_owned();
        let x = matrix(inputs, n, 1.0);
        let y = matrix(1, n, 1.0).map(|v| if v > 0.0 { 1.0 } else { -1.0 });
        Data {
            params: Mlp { w1, b1, w2, b2 },
            x,
            y,
            ones: DMatrix::from_element(1, n, 1.0),
        }
    }

    pub fn loss(&self) -> f64 {
        loss(&self.params, &self.x, &self.y, &self.ones)
    }

    pub fn grad_ours(&self) -> (f64, Mlp) {
        loss_grad(&self.params, &self.x, &self.y, &self.ones)
    }
}

/// The gradient by hand: the forward pass keeps the hidden activations, the backward pass
/// is four matrix products and element-wise work, with the biases' gradients as row sums.
pub fn hand_grad(d: &Data) -> (f64, Mlp) {
    let p = &d.params;
    let n = d.x.ncols() as f64;
    let mut a = &p.w1 * &d.x;
    for mut col in a.column_iter_mut() {
        col += &p.b1;
    }
    let h = a.map(|v| v.tanh());
    let mut z = &p.w2 * &h;
    z.add_scalar_mut(p.b2[0]);
    let m = z.component_mul(&d.y);
    let value = m
        .iter()
        .map(|&m| {
            if m > 0.0 {
                (-m).exp().ln_1p()
            } else {
                -m + m.exp().ln_1p()
            }
        })
        .sum::<f64>()
        / n;
    // d softplus(-m) / dm = -1 / (1 + e^m), times the label and the mean's 1/n
    let dz = m.zip_map(&d.y, |m, y| -y / ((1.0 + m.exp()) * n));
    // with one output the adjoint products are matrix-vector products: written as `h dzᵀ`
    // and `w2ᵀ dz`, nalgebra runs them down whole columns (`dz hᵀ` and `tr_mul` take 20 times
    // longer through its per-element fallback for a one-row factor)
    let dw2 = (&h * dz.transpose()).transpose();
    let db2 = DVector::from_element(1, dz.sum());
    let dh = p.w2.transpose() * &dz;
    let da = dh.zip_map(&h, |g, t| g * (1.0 - t * t));
    let dw1 = &da * d.x.transpose();
    let db1 = da.column_sum();
    let grad = Mlp {
        w1: dw1,
        b1: db1,
        w2: dw2,
        b2: db2,
    };
    (value, grad)
}

/// All the parameters of a network in one vector (w1, b1, w2, b2, each column-major).
pub fn flat(p: &Mlp) -> Vec<f64> {
    let parts = [
        p.w1.as_slice(),
        p.b1.as_slice(),
        p.w2.as_slice(),
        p.b2.as_slice(),
    ];
    parts.concat()
}

/// The inverse of `flat`, shaped like `like`.
pub fn unflat(like: &Mlp, v: &[f64]) -> Mlp {
    let mut q = like.clone();
    let (a, rest) = v.split_at(q.w1.len());
    q.w1.copy_from_slice(a);
    let (b, rest) = rest.split_at(q.b1.len());
    q.b1.copy_from_slice(b);
    let (c, rest) = rest.split_at(q.w2.len());
    q.w2.copy_from_slice(c);
    q.b2.copy_from_slice(rest);
    q
}
