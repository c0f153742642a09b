//! Tensor operations and parameter sets inside `#[differentiate]`, checked against finite
//! differences of the same functions.

use autodiff::prelude::*;
use autodiff::Tensor;

#[derive(Differentiable, Clone, Debug)]
struct Dense {
    w: Tensor<f64>,
    b: Tensor<f64>,
}

#[derive(Differentiable, Clone, Debug)]
struct Mlp {
    hidden: Dense,
    out: Dense,
    scale: f64,
}

#[differentiate]
fn mlp_loss(p: &Mlp, x: &Tensor<f64>, labels: &[usize]) -> f64 {
    let h = x.linear(&p.hidden.w, &p.hidden.b).tanh();
    let logits = h.linear(&p.out.w, &p.out.b);
    logits.cross_entropy(labels) * p.scale
}

fn tensor(seed: &mut u64, shape: &[usize]) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed % 2000) as f64 / 1000.0 - 1.0
        })
        .collect();
    Tensor::from_vec(data, shape)
}

#[test]
fn mlp_gradient_matches_finite_differences() {
    let mut seed = 0x9e3779b97f4a7c15;
    let p = Mlp {
        hidden: Dense {
            w: tensor(&mut seed, &[5, 4]),
            b: tensor(&mut seed, &[5]),
        },
        out: Dense {
            w: tensor(&mut seed, &[3, 5]),
            b: tensor(&mut seed, &[3]),
        },
        scale: 1.5,
    };
    let x = tensor(&mut seed, &[6, 4]);
    let labels = [0usize, 2, 1, 1, 0, 2];
    let (value, (grad, dx)) = mlp_loss_grad(&p, &x, &labels);
    assert_eq!(value.to_bits(), mlp_loss(&p, &x, &labels).to_bits());

    // finite differences over every parameter leaf, through the Differentiable visitor
    let h = 1e-6;
    let check = |get: &dyn Fn(&Mlp) -> &Tensor<f64>, set: &dyn Fn(&mut Mlp) -> &mut Tensor<f64>| {
        for k in 0..get(&p).data().len() {
            let mut plus = p.clone();
            set(&mut plus).data_mut()[k] += h;
            let mut minus = p.clone();
            set(&mut minus).data_mut()[k] -= h;
            let fd = (mlp_loss(&plus, &x, &labels) - mlp_loss(&minus, &x, &labels)) / (2.0 * h);
            let g = get(&grad).data()[k];
            assert!(autodiff::relative_error(g, fd) < 1e-6, "{g} vs {fd}");
        }
    };
    check(&|m| &m.hidden.w, &|m| &mut m.hidden.w);
    check(&|m| &m.hidden.b, &|m| &mut m.hidden.b);
    check(&|m| &m.out.w, &|m| &mut m.out.w);
    check(&|m| &m.out.b, &|m| &mut m.out.b);
    // d/dscale = loss / scale
    assert!(autodiff::relative_error(grad.scale, value / p.scale) < 1e-12);
    // the input's gradient too
    for k in 0..x.data().len() {
        let mut plus = x.clone();
        plus.data_mut()[k] += h;
        let mut minus = x.clone();
        minus.data_mut()[k] -= h;
        let fd = (mlp_loss(&p, &plus, &labels) - mlp_loss(&p, &minus, &labels)) / (2.0 * h);
        assert!(autodiff::relative_error(dx.data()[k], fd) < 1e-6);
    }
}
