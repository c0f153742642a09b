//! Forward operations against naive reference implementations, and the numerics at extreme
//! inputs.

use autodiff_runtime::{Cotangent, Tensor};

use crate::support::{assert_close, assert_close_scalar, Rng};

type T64 = Tensor<f64>;

fn naive_matmul(a: &T64, b: &T64) -> T64 {
    let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                out[i * n + j] += a.data()[i * k + p] * b.data()[p * n + j];
            }
        }
    }
    Tensor::from_vec(out, &[m, n])
}

fn naive_linear(x: &T64, w: &T64, b: &T64) -> T64 {
    let (n, i_n, o_n) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let mut out = vec![0.0; n * o_n];
    for r in 0..n {
        for o in 0..o_n {
            out[r * o_n + o] = b.data()[o]
                + (0..i_n)
                    .map(|i| x.data()[r * i_n + i] * w.data()[o * i_n + i])
                    .sum::<f64>();
        }
    }
    Tensor::from_vec(out, &[n, o_n])
}

fn naive_conv2d(x: &T64, w: &T64, b: &T64, s: usize, p: usize) -> T64 {
    let &[n, c, h, wd] = x.shape() else { panic!() };
    let &[o, _, kh, kw] = w.shape() else { panic!() };
    let oh = (h + 2 * p - kh) / s + 1;
    let ow = (wd + 2 * p - kw) / s + 1;
    let mut out = vec![0.0; n * o * oh * ow];
    for ni in 0..n {
        for oi in 0..o {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = b.data()[oi];
                    for ci in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (y * s + i) as isize - p as isize;
                                let ix = (xx * s + j) as isize - p as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xv =
                                    x.data()[((ni * c + ci) * h + iy as usize) * wd + ix as usize];
                                acc += xv * w.data()[((oi * c + ci) * kh + i) * kw + j];
                            }
                        }
                    }
                    out[((ni * o + oi) * oh + y) * ow + xx] = acc;
                }
            }
        }
    }
    Tensor::from_vec(out, &[n, o, oh, ow])
}

fn naive_max_pool(x: &T64, k: usize) -> T64 {
    let &[n, c, h, w] = x.shape() else { panic!() };
    let (oh, ow) = (h / k, w / k);
    let mut out = vec![f64::NEG_INFINITY; n * c * oh * ow];
    for pl in 0..n * c {
        for y in 0..oh * k {
            for xx in 0..ow * k {
                let o = &mut out[(pl * oh + y / k) * ow + xx / k];
                *o = o.max(x.data()[(pl * h + y) * w + xx]);
            }
        }
    }
    Tensor::from_vec(out, &[n, c, oh, ow])
}

/// Row-major multi-index of flat position `i` in `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        idx[a] = i % shape[a];
        i /= shape[a];
    }
    idx
}

/// Flat position of a multi-index aligned to the trailing axes of `shape`, with axes of
/// length 1 read at 0.
fn ravel_broadcast(idx: &[usize], shape: &[usize]) -> usize {
    let off = idx.len() - shape.len();
    shape.iter().enumerate().fold(0, |acc, (a, &len)| {
        acc * len + if len == 1 { 0 } else { idx[off + a] }
    })
}

fn naive_broadcast(a: &T64, b: &T64, f: impl Fn(f64, f64) -> f64) -> T64 {
    let n = a.ndim().max(b.ndim());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    let shape: Vec<usize> = (0..n)
        .map(|i| match (dim(a.shape(), i), dim(b.shape(), i)) {
            (1, y) => y,
            (x, _) => x,
        })
        .collect();
    let total = shape.iter().product();
    let data = (0..total)
        .map(|i| {
            let idx = unravel(i, &shape);
            f(
                a.data()[ravel_broadcast(&idx, a.shape())],
                b.data()[ravel_broadcast(&idx, b.shape())],
            )
        })
        .collect();
    Tensor::from_vec(data, &shape)
}

fn naive_log_softmax(x: &T64, axis: usize) -> T64 {
    let shape = x.shape();
    let data = (0..x.numel())
        .map(|i| {
            let idx = unravel(i, shape);
            let lane: f64 = (0..shape[axis])
                .map(|j| {
                    let mut k = idx.clone();
                    k[axis] = j;
                    x.data()[ravel_broadcast(&k, shape)].exp()
                })
                .sum();
            x.data()[i] - lane.ln()
        })
        .collect();
    Tensor::from_vec(data, shape)
}

#[test]
fn matmul_linear_and_conv2d_match_naive_loops() {
    let mut rng = Rng::new(21);
    for (m, k, n) in [(1, 1, 1), (3, 5, 2), (8, 3, 9), (4, 0, 3), (0, 2, 3)] {
        let (a, b) = (rng.tensor(&[m, k]), rng.tensor(&[k, n]));
        assert_close(&a.matmul(&b), &naive_matmul(&a, &b), 1e-12);
    }
    for (n, i, o) in [(1, 1, 1), (5, 3, 4), (2, 7, 1)] {
        let (x, w, b) = (rng.tensor(&[n, i]), rng.tensor(&[o, i]), rng.tensor(&[o]));
        assert_close(&x.linear(&w, &b), &naive_linear(&x, &w, &b), 1e-12);
        // Leading axes are flattened, and a single sample works too.
        let x3 = x.reshape(&[1, n, i]);
        assert_close(
            &x3.linear(&w, &b),
            &naive_linear(&x, &w, &b).reshape(&[1, n, o]),
            1e-12,
        );
        let row = x.reshape(&[n * i]).data()[..i].to_vec();
        let x1 = Tensor::from_vec(row, &[i]);
        let want = naive_linear(&x1.reshape(&[1, i]), &w, &b).reshape(&[o]);
        assert_close(&x1.linear(&w, &b), &want, 1e-12);
    }
    for &[n, c, h, w, o, kh, kw, s, p] in &[
        [2, 3, 7, 6, 4, 3, 3, 1, 0],
        [1, 2, 8, 8, 3, 3, 3, 2, 1],
        [2, 1, 5, 7, 2, 3, 2, 1, 2],
        [1, 2, 9, 9, 2, 5, 5, 2, 2],
        [1, 1, 7, 7, 2, 3, 3, 2, 0],
        [1, 1, 2, 2, 1, 3, 3, 1, 1],
        [1, 2, 6, 5, 3, 2, 4, 3, 1],
    ] {
        let x = rng.tensor(&[n, c, h, w]);
        let (wt, b) = (rng.tensor(&[o, c, kh, kw]), rng.tensor(&[o]));
        assert_close(
            &x.conv2d(&wt, &b, s, p),
            &naive_conv2d(&x, &wt, &b, s, p),
            1e-12,
        );
    }
}

#[test]
fn max_pool2d_matches_naive_loops() {
    let mut rng = Rng::new(22);
    for (shape, k) in [
        ([2, 3, 4, 6], 2),
        ([1, 2, 5, 7], 2),
        ([1, 2, 7, 5], 3),
        ([1, 1, 3, 3], 1),
    ] {
        let x = rng.tensor(&shape);
        assert_close(&x.max_pool2d(k), &naive_max_pool(&x, k), 0.0);
    }
}

#[test]
fn activations_match_their_formulas() {
    let mut rng = Rng::new(23);
    let x = rng.tensor(&[3, 5]).map(|v| 4.0 * v);
    assert_close(&x.relu(), &x.map(|v| v.max(0.0)), 0.0);
    assert_close(&x.tanh(), &x.map(f64::tanh), 1e-15);
    assert_close(&x.sigmoid(), &x.map(|v| 1.0 / (1.0 + (-v).exp())), 1e-15);
    assert!(Tensor::from_vec(vec![f64::NAN], &[1]).relu().data()[0].is_nan());
}

#[test]
fn sigmoid_is_stable_for_large_inputs() {
    let x = Tensor::from_vec(vec![-1000.0, -40.0, 40.0, 1000.0], &[4]);
    let y = x.sigmoid();
    assert_eq!(y.data()[0], 0.0);
    assert_close_scalar(y.data()[1] / 4.248354255291589e-18, 1.0, 1e-12);
    assert_eq!(y.data()[2], 1.0);
    assert_eq!(y.data()[3], 1.0);
    let y32 = Tensor::from_vec(vec![-200.0_f32, -90.0, 90.0, 200.0], &[4]).sigmoid();
    assert!(y32.data().iter().all(|v| v.is_finite()));
    assert_eq!(y32.data()[0], 0.0);
    assert!(y32.data()[1] > 0.0 && y32.data()[1] < 1e-38);
}

#[test]
fn log_softmax_and_cross_entropy_match_naive_formulas() {
    let mut rng = Rng::new(24);
    for (shape, axis) in [
        (vec![4, 5], 1),
        (vec![4, 5], 0),
        (vec![2, 3, 4], 1),
        (vec![6], 0),
    ] {
        let x = rng.tensor(&shape);
        assert_close(&x.log_softmax(axis), &naive_log_softmax(&x, axis), 1e-13);
    }
    let x = rng.tensor(&[6, 4]);
    let labels = rng.labels(6, 4);
    let lsm = naive_log_softmax(&x, 1);
    let want = -(0..6).map(|i| lsm.data()[i * 4 + labels[i]]).sum::<f64>() / 6.0;
    assert_close_scalar(x.cross_entropy(&labels), want, 1e-13);
}

#[test]
fn log_softmax_and_cross_entropy_are_stable_for_large_logits() {
    let x = Tensor::from_vec(
        vec![1000.0, 1001.0, 1002.0, -1000.0, -1001.0, -1002.0],
        &[2, 3],
    );
    // log softmax([0, 1, 2]) = [0, 1, 2] - ln(1 + e + e²)
    let lse = (1.0 + 1f64.exp() + 2f64.exp()).ln();
    let want = Tensor::from_vec(
        vec![-lse, 1.0 - lse, 2.0 - lse, 2.0 - lse, 1.0 - lse, -lse],
        &[2, 3],
    );
    assert_close(&x.log_softmax(1), &want, 1e-12);
    // Label 2 is the largest logit of row 0 and the smallest of row 1: (lse - 2 + lse) / 2.
    assert_close_scalar(x.cross_entropy(&[2, 2]), lse - 1.0, 1e-12);
    let x32 = Tensor::from_vec(vec![100.0_f32, 200.0, -300.0, 50.0], &[2, 2]);
    assert!(x32.log_softmax(1).data().iter().all(|v| v.is_finite()));
    assert!((x32.cross_entropy(&[1, 0]) - 175.0).abs() < 1e-3);
}

#[test]
fn mse_and_reductions_match_naive_loops() {
    let mut rng = Rng::new(25);
    let (x, t) = (rng.tensor(&[3, 4]), rng.tensor(&[3, 4]));
    let want = x
        .data()
        .iter()
        .zip(t.data())
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / 12.0;
    assert_close_scalar(x.mse(&t), want, 1e-14);
    assert_close_scalar(x.sum(), x.data().iter().sum(), 1e-14);
    assert_close_scalar(x.mean(), x.data().iter().sum::<f64>() / 12.0, 1e-14);
    let x = rng.tensor(&[2, 3, 4]);
    for axis in 0..3 {
        let mut shape = x.shape().to_vec();
        shape.remove(axis);
        let mut want = vec![0.0; x.numel() / x.shape()[axis]];
        for i in 0..x.numel() {
            let mut idx = unravel(i, x.shape());
            idx.remove(axis);
            let at = idx
                .iter()
                .zip(&shape)
                .fold(0, |acc, (&k, &len)| acc * len + k);
            want[at] += x.data()[i];
        }
        assert_close(&x.sum_axis(axis), &Tensor::from_vec(want, &shape), 1e-14);
    }
}

#[test]
fn broadcasting_operators_match_naive_indexing() {
    let mut rng = Rng::new(26);
    let pairs: &[(&[usize], &[usize])] = &[
        (&[3, 4], &[3, 4]),
        (&[3, 4], &[4]),
        (&[4], &[3, 4]),
        (&[2, 1, 3], &[4, 1]),
        (&[], &[2, 3]),
        (&[2, 3], &[]),
        (&[3, 1], &[1, 4]),
        (&[2, 3, 1, 5], &[3, 4, 1]),
        (&[0, 3], &[3]),
    ];
    for &(sa, sb) in pairs {
        let (a, b) = (rng.tensor(sa), rng.tensor(sb));
        let add = naive_broadcast(&a, &b, |x, y| x + y);
        let sub = naive_broadcast(&a, &b, |x, y| x - y);
        let mul = naive_broadcast(&a, &b, |x, y| x * y);
        for (got, want) in [
            (&a + &b, &add),
            (a.clone() + &b, &add),
            (&a + b.clone(), &add),
            (a.clone() + b.clone(), &add),
            (&a - &b, &sub),
            (a.clone() - &b, &sub),
            (&a - b.clone(), &sub),
            (a.clone() - b.clone(), &sub),
            (&a * &b, &mul),
            (a.clone() * &b, &mul),
            (&a * b.clone(), &mul),
            (a.clone() * b.clone(), &mul),
        ] {
            assert_close(&got, want, 0.0);
        }
    }
    let a = rng.tensor(&[2, 3]);
    let s = 1.5;
    for (got, f) in [
        (&a * s, (|v: f64| v * 1.5) as fn(f64) -> f64),
        (a.clone() * s, |v| v * 1.5),
        (s * &a, |v| 1.5 * v),
        (s * a.clone(), |v| 1.5 * v),
        (&a + s, |v| v + 1.5),
        (a.clone() + s, |v| v + 1.5),
        (s + &a, |v| 1.5 + v),
        (&a - s, |v| v - 1.5),
        (a.clone() - s, |v| v - 1.5),
        (s - &a, |v| 1.5 - v),
        (s - a.clone(), |v| 1.5 - v),
        (-&a, |v| -v),
        (-a.clone(), |v| -v),
    ] {
        assert_close(&got, &a.map(f), 0.0);
    }
    let a32 = Tensor::from_vec(vec![1.0_f32, 2.0], &[2]);
    assert_eq!((2.0_f32 * &a32).data(), &[2.0, 4.0]);
}

#[test]
fn constructors_and_reshape() {
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    assert_eq!(x.shape(), &[2, 3]);
    assert_eq!(x.ndim(), 2);
    assert_eq!(x.numel(), 6);
    let r = x.reshape(&[3, 1, 2]);
    assert_eq!(r.shape(), &[3, 1, 2]);
    assert_eq!(r.data(), x.data());
    assert_eq!(Tensor::<f32>::zeros(&[2, 2]).data(), &[0.0; 4]);
    let s = Tensor::from_vec(vec![7.0], &[]);
    assert_eq!((s.ndim(), s.numel(), s.sum()), (0, 1, 7.0));
    assert!(!s.is_zero_cotangent());
    assert!(!Tensor::<f64>::zeros(&[]).is_zero_cotangent());
    assert!(!Tensor::<f64>::zeros(&[0]).is_zero_cotangent());
}

#[test]
fn cotangent_zero_is_empty_and_accumulates() {
    let z = T64::zero();
    assert!(z.is_zero_cotangent());
    assert!(z.shape().is_empty() && z.data().is_empty());
    let x = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    let mut acc = T64::zero();
    acc.accumulate(T64::zero());
    assert!(acc.is_zero_cotangent());
    acc.accumulate(x.clone());
    assert_eq!(acc, x);
    acc.accumulate(T64::zero());
    assert_eq!(acc, x);
    acc.accumulate(x.clone());
    assert_eq!(acc.data(), &[2.0, 4.0]);
}
