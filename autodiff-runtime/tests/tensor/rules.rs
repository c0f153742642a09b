//! The dot-product test `<t, vjp(c)> == <jvp_fd(t), c>` for every tensor rule, in f64, at
//! several random shapes.

use autodiff_runtime::rules::tensor::*;
use autodiff_runtime::{Cotangent, Tensor};

use crate::support::{check_vjp, Rng};

type T64 = Tensor<f64>;

#[test]
fn matmul() {
    let mut rng = Rng::new(1);
    for (m, k, n) in [
        (1, 1, 1),
        (2, 3, 4),
        (5, 1, 3),
        (7, 6, 2),
        (1, 8, 1),
        (16, 9, 11),
    ] {
        let (a, b) = (rng.tensor(&[m, k]), rng.tensor(&[k, n]));
        check_vjp(
            "matmul_d0",
            &a,
            |a: &T64| a.matmul(&b),
            |_, d| matmul_d0(&b, d),
            &mut rng,
        );
        check_vjp(
            "matmul_d1",
            &b,
            |b: &T64| a.matmul(b),
            |_, d| matmul_d1(&a, d),
            &mut rng,
        );
    }
}

#[test]
fn linear() {
    let mut rng = Rng::new(2);
    let cases: &[(&[usize], usize)] = &[
        (&[4, 3], 2),
        (&[1, 5], 7),
        (&[6, 1], 1),
        (&[2, 3, 4], 5),
        (&[4], 3),
        (&[17, 10], 9),
    ];
    for &(x_shape, n_out) in cases {
        let n_in = *x_shape.last().unwrap();
        let x = rng.tensor(x_shape);
        let w = rng.tensor(&[n_out, n_in]);
        let b = rng.tensor(&[n_out]);
        check_vjp(
            "linear_d0",
            &x,
            |x: &T64| x.linear(&w, &b),
            |_, d| linear_d0(&w, d),
            &mut rng,
        );
        check_vjp(
            "linear_d1",
            &w,
            |w: &T64| x.linear(w, &b),
            |_, d| linear_d1(&x, d),
            &mut rng,
        );
        check_vjp(
            "linear_d2",
            &b,
            |b: &T64| x.linear(&w, b),
            |_, d| linear_d2(d),
            &mut rng,
        );
    }
}

/// `(n, c, h, w, out, kh, kw, stride, padding)`.
const CONVS: &[[usize; 9]] = &[
    [2, 3, 7, 6, 4, 3, 3, 1, 0],
    [1, 2, 8, 8, 3, 3, 3, 2, 1],
    [2, 1, 5, 7, 2, 3, 2, 1, 2],
    [1, 2, 9, 9, 2, 5, 5, 2, 2],
    [1, 1, 7, 7, 2, 3, 3, 2, 0],
    [2, 3, 6, 6, 2, 1, 1, 2, 0],
    [1, 1, 2, 2, 1, 3, 3, 1, 1],
    [1, 2, 6, 5, 3, 2, 4, 1, 1],
];

#[test]
fn conv2d() {
    let mut rng = Rng::new(3);
    for &[n, c, h, w, o, kh, kw, s, p] in CONVS {
        let x = rng.tensor(&[n, c, h, w]);
        let wt = rng.tensor(&[o, c, kh, kw]);
        let b = rng.tensor(&[o]);
        check_vjp(
            "conv2d_d0",
            &x,
            |x: &T64| x.conv2d(&wt, &b, s, p),
            |_, d| conv2d_d0(&x, &wt, &s, &p, d),
            &mut rng,
        );
        check_vjp(
            "conv2d_d1",
            &wt,
            |wt: &T64| x.conv2d(wt, &b, s, p),
            |_, d| conv2d_d1(&x, &wt, &s, &p, d),
            &mut rng,
        );
        check_vjp(
            "conv2d_d2",
            &b,
            |b: &T64| x.conv2d(&wt, b, s, p),
            |_, d| conv2d_d2(d),
            &mut rng,
        );
    }
}

#[test]
fn max_pool2d() {
    let mut rng = Rng::new(4);
    let cases: &[(&[usize], usize)] = &[
        (&[2, 3, 4, 6], 2),
        (&[1, 2, 7, 5], 3),
        (&[1, 1, 3, 3], 1),
        (&[3, 1, 4, 4], 4),
    ];
    for &(shape, k) in cases {
        let x = rng.distinct(shape);
        check_vjp(
            "max_pool2d_d0",
            &x,
            |x: &T64| x.max_pool2d(k),
            |_, d| max_pool2d_d0(&x, &k, d),
            &mut rng,
        );
    }
}

const SHAPES: &[&[usize]] = &[&[5], &[3, 4], &[2, 3, 4], &[], &[1, 1, 7]];

#[test]
fn activations() {
    let mut rng = Rng::new(5);
    for &shape in SHAPES {
        let x = rng.away_from_zero(shape, 0.05);
        check_vjp(
            "relu_d0",
            &x,
            |x: &T64| x.relu(),
            |y, d| relu_d0(y, d),
            &mut rng,
        );
        let x = rng.tensor(shape);
        check_vjp(
            "tanh_d0",
            &x,
            |x: &T64| x.tanh(),
            |y, d| tanh_d0(y, d),
            &mut rng,
        );
        let x = rng.tensor(shape).map(|v| 3.0 * v);
        check_vjp(
            "sigmoid_d0",
            &x,
            |x: &T64| x.sigmoid(),
            |y, d| sigmoid_d0(y, d),
            &mut rng,
        );
    }
}

#[test]
fn log_softmax() {
    let mut rng = Rng::new(6);
    let cases: &[(&[usize], usize)] = &[
        (&[4, 5], 1),
        (&[4, 5], 0),
        (&[2, 3, 4], 1),
        (&[2, 3, 4], 2),
        (&[6], 0),
        (&[3, 1], 1),
    ];
    for &(shape, axis) in cases {
        let x = rng.tensor(shape).map(|v| 2.0 * v);
        check_vjp(
            "log_softmax_d0",
            &x,
            |x: &T64| x.log_softmax(axis),
            |y, d| log_softmax_d0(y, &axis, d),
            &mut rng,
        );
    }
}

#[test]
fn losses() {
    let mut rng = Rng::new(7);
    for (n, c) in [(4, 5), (1, 3), (7, 10), (3, 1)] {
        let x = rng.tensor(&[n, c]).map(|v| 2.0 * v);
        let labels = rng.labels(n, c);
        check_vjp(
            "cross_entropy_d0",
            &x,
            |x: &T64| x.cross_entropy(&labels),
            |_, d| cross_entropy_d0(&x, &labels, d),
            &mut rng,
        );
    }
    for &shape in SHAPES {
        let (x, t) = (rng.tensor(shape), rng.tensor(shape));
        check_vjp(
            "mse_d0",
            &x,
            |x: &T64| x.mse(&t),
            |_, d| mse_d0(&x, &t, d),
            &mut rng,
        );
        check_vjp(
            "mse_d1",
            &t,
            |t: &T64| x.mse(t),
            |_, d| mse_d1(&x, &t, d),
            &mut rng,
        );
    }
}

#[test]
fn reshape_and_reductions() {
    let mut rng = Rng::new(8);
    let reshapes: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4], &[6, 4]),
        (&[24], &[2, 12]),
        (&[1], &[]),
        (&[3, 4], &[4, 1, 3]),
    ];
    for &(from, to) in reshapes {
        let x = rng.tensor(from);
        check_vjp(
            "reshape_d0",
            &x,
            |x: &T64| x.reshape(to),
            |_, d| reshape_d0(&x, d),
            &mut rng,
        );
    }
    for &shape in SHAPES {
        let x = rng.tensor(shape);
        check_vjp(
            "sum_d0",
            &x,
            |x: &T64| x.sum(),
            |_, d| sum_d0(&x, d),
            &mut rng,
        );
        check_vjp(
            "mean_d0",
            &x,
            |x: &T64| x.mean(),
            |_, d| mean_d0(&x, d),
            &mut rng,
        );
        for axis in 0..shape.len() {
            check_vjp(
                "sum_axis_d0",
                &x,
                |x: &T64| x.sum_axis(axis),
                |_, d| sum_axis_d0(&x, &axis, d),
                &mut rng,
            );
        }
    }
}

/// Pairs of shapes that broadcast, including a 0-d tensor and each side stretched.
const PAIRS: &[(&[usize], &[usize])] = &[
    (&[3, 4], &[3, 4]),
    (&[3, 4], &[4]),
    (&[4], &[3, 4]),
    (&[2, 1, 3], &[4, 1]),
    (&[4, 1], &[2, 1, 3]),
    (&[], &[2, 3]),
    (&[2, 3], &[]),
    (&[2, 3], &[1]),
    (&[3, 1], &[1, 4]),
    (&[2, 3, 1, 5], &[3, 4, 1]),
];

#[test]
fn broadcasting_arithmetic() {
    let mut rng = Rng::new(9);
    for &(sa, sb) in PAIRS {
        let (a, b) = (rng.tensor(sa), rng.tensor(sb));
        check_vjp(
            "add_d0",
            &a,
            |a: &T64| a + &b,
            |_, d| add_d0(&a, d),
            &mut rng,
        );
        check_vjp(
            "add_d1",
            &b,
            |b: &T64| &a + b,
            |_, d| add_d1(&b, d),
            &mut rng,
        );
        check_vjp(
            "sub_d0",
            &a,
            |a: &T64| a - &b,
            |_, d| sub_d0(&a, d),
            &mut rng,
        );
        check_vjp(
            "sub_d1",
            &b,
            |b: &T64| &a - b,
            |_, d| sub_d1(&b, d),
            &mut rng,
        );
        check_vjp(
            "mul_d0",
            &a,
            |a: &T64| a * &b,
            |_, d| mul_d0(&a, &b, d),
            &mut rng,
        );
        check_vjp(
            "mul_d1",
            &b,
            |b: &T64| &a * b,
            |_, d| mul_d1(&a, &b, d),
            &mut rng,
        );
    }
}

#[test]
fn scalar_arithmetic() {
    let mut rng = Rng::new(10);
    for &shape in SHAPES {
        let t = rng.tensor(shape);
        let s = rng.normal();
        // t * s and s * t
        check_vjp(
            "mul_scalar_d0",
            &t,
            |t: &T64| t * s,
            |_, d| mul_scalar_d0(&s, d),
            &mut rng,
        );
        check_vjp(
            "mul_scalar_d0",
            &t,
            |t: &T64| s * t,
            |_, d| mul_scalar_d0(&s, d),
            &mut rng,
        );
        check_vjp(
            "mul_scalar_d1",
            &s,
            |s: &f64| &t * *s,
            |_, d| mul_scalar_d1(&t, d),
            &mut rng,
        );
        check_vjp(
            "mul_scalar_d1",
            &s,
            |s: &f64| *s * &t,
            |_, d| mul_scalar_d1(&t, d),
            &mut rng,
        );
        // t + s and s + t
        check_vjp(
            "add_scalar_d0",
            &t,
            |t: &T64| t + s,
            |_, d| add_scalar_d0(d),
            &mut rng,
        );
        check_vjp(
            "add_scalar_d1",
            &s,
            |s: &f64| *s + &t,
            |_, d| add_scalar_d1(d),
            &mut rng,
        );
        // t - s and s - t
        check_vjp(
            "sub_scalar_d0",
            &t,
            |t: &T64| t - s,
            |_, d| sub_scalar_d0(d),
            &mut rng,
        );
        check_vjp(
            "sub_scalar_d1",
            &s,
            |s: &f64| &t - *s,
            |_, d| sub_scalar_d1(d),
            &mut rng,
        );
        check_vjp(
            "neg_d0 (s - t)",
            &t,
            |t: &T64| s - t,
            |_, d| neg_d0(d),
            &mut rng,
        );
        check_vjp(
            "add_scalar_d1 (s - t)",
            &s,
            |s: &f64| *s - &t,
            |_, d| add_scalar_d1(d),
            &mut rng,
        );
        check_vjp("neg_d0", &t, |t: &T64| -t, |_, d| neg_d0(d), &mut rng);
    }
}

/// Every rule taking a tensor cotangent returns the zero cotangent for it.
#[test]
fn zero_cotangent_passes_through() {
    let mut rng = Rng::new(11);
    let z = || T64::zero();
    let a = rng.tensor(&[2, 3]);
    let b = rng.tensor(&[3, 2]);
    let x = rng.tensor(&[1, 2, 5, 5]);
    let w = rng.tensor(&[3, 2, 3, 3]);
    let results = [
        unbroadcast(z(), &[3]),
        matmul_d0(&b, z()),
        matmul_d1(&a, z()),
        linear_d0(&b, z()),
        linear_d1(&a, z()),
        linear_d2(z()),
        conv2d_d0(&x, &w, &1, &0, z()),
        conv2d_d1(&x, &w, &1, &0, z()),
        conv2d_d2(z()),
        max_pool2d_d0(&x, &2, z()),
        relu_d0(&a, z()),
        tanh_d0(&a, z()),
        sigmoid_d0(&a, z()),
        log_softmax_d0(&a, &1, z()),
        reshape_d0(&a, z()),
        sum_axis_d0(&a, &0, z()),
        add_d0(&a, z()),
        add_d1(&a, z()),
        sub_d0(&a, z()),
        sub_d1(&a, z()),
        mul_d0(&a, &b, z()),
        mul_d1(&a, &b, z()),
        mul_scalar_d0(&2.0, z()),
        add_scalar_d0(z()),
        sub_scalar_d0(z()),
        neg_d0(z()),
    ];
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_zero_cotangent(), "rule {i} returned {r:?}");
    }
    assert_eq!(mul_scalar_d1(&a, z()), 0.0);
    assert_eq!(add_scalar_d1(z()), 0.0);
    assert_eq!(sub_scalar_d1(z()), 0.0);
}

#[test]
fn max_pool2d_ties_go_to_the_first_maximum() {
    // One 2x2 window [[1, 3], [3, 0]]: the first 3 (row-major) takes the cotangent.
    let x = Tensor::from_vec(vec![1.0, 3.0, 3.0, 0.0], &[1, 1, 2, 2]);
    let d = Tensor::from_vec(vec![5.0], &[1, 1, 1, 1]);
    assert_eq!(max_pool2d_d0(&x, &2, d).data(), &[0.0, 5.0, 0.0, 0.0]);
}

#[test]
fn max_pool2d_nan_is_the_maximum_and_the_first_nan_wins() {
    // 2x2 windows (the fast path) and 3x3 windows (the general one): a NaN anywhere in a
    // window is its maximum, and the cotangent goes to the first NaN in row-major order
    let nan = f64::NAN;
    for (k, data, expected) in [
        (2, vec![1.0, nan, nan, 9.0], vec![0.0, 5.0, 0.0, 0.0]),
        (2, vec![9.0, 1.0, 2.0, nan], vec![0.0, 0.0, 0.0, 5.0]),
        (
            3,
            vec![1.0, 2.0, 3.0, 4.0, 9.0, nan, 7.0, nan, 8.0],
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0],
        ),
    ] {
        let x = Tensor::from_vec(data, &[1, 1, k, k]);
        assert!(x.max_pool2d(k).data()[0].is_nan());
        let d = Tensor::from_vec(vec![5.0], &[1, 1, 1, 1]);
        assert_eq!(max_pool2d_d0(&x, &k, d).data(), &expected[..]);
    }
}

#[test]
fn hand_computed_rules() {
    // y = relu(x) at x = [-1, 2]  =>  x̄ = ȳ [0, 1]
    let y = Tensor::from_vec(vec![-1.0, 2.0], &[2]).relu();
    assert_eq!(
        relu_d0(&y, Tensor::from_vec(vec![3.0, 4.0], &[2])).data(),
        &[0.0, 4.0]
    );
    // y = sum_j (a + b)[i, j] with a [2, 2], b [2]  =>  b̄ = column sums of ȳ
    let d = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    assert_eq!(add_d1(&Tensor::<f64>::zeros(&[2]), d).data(), &[4.0, 6.0]);
    // y = mean(x) over 4 elements  =>  x̄ = ȳ / 4
    assert_eq!(
        mean_d0(&Tensor::<f64>::zeros(&[2, 2]), 2.0).data(),
        &[0.5; 4]
    );
    // cross-entropy of equal logits over 2 classes, label 0  =>  x̄ = [-1/2, 1/2]
    let g = cross_entropy_d0(&Tensor::zeros(&[1, 2]), &[0], 1.0);
    assert_eq!(g.data(), &[-0.5, 0.5]);
}

/// The test itself catches a wrong rule: `tanh`'s derivative `1 - y²` given as `1 - y`.
#[test]
#[should_panic(expected = "wrong tanh_d0: <t, vjp(c)>")]
fn dot_product_test_catches_a_wrong_rule() {
    let mut rng = Rng::new(12);
    let x = rng.tensor(&[3, 4]);
    check_vjp(
        "wrong tanh_d0",
        &x,
        |x: &T64| x.tanh(),
        |y, d| d * (1.0 - y),
        &mut rng,
    );
}

#[test]
fn rules_that_only_read_the_cotangent_take_it_lent_or_owned() {
    let mut rng = Rng::new(41);
    let (a, b) = (rng.tensor(&[3, 4]), rng.tensor(&[4, 2]));
    let d = rng.tensor(&[3, 2]);
    assert_eq!(matmul_d0(&b, &d), matmul_d0(&b, d.clone()));
    assert_eq!(matmul_d1(&a, &d), matmul_d1(&a, d.clone()));
    let (x, w) = (rng.tensor(&[5, 4]), rng.tensor(&[3, 4]));
    let dy = rng.tensor(&[5, 3]);
    assert_eq!(linear_d0(&w, &dy), linear_d0(&w, dy.clone()));
    assert_eq!(linear_d1(&x, &dy), linear_d1(&x, dy.clone()));
    let (image, kernel) = (rng.tensor(&[2, 2, 5, 5]), rng.tensor(&[3, 2, 3, 3]));
    let dc = rng.tensor(&[2, 3, 5, 5]);
    assert_eq!(
        conv2d_d0(&image, &kernel, &1, &1, &dc),
        conv2d_d0(&image, &kernel, &1, &1, dc.clone())
    );
    assert_eq!(
        conv2d_d1(&image, &kernel, &1, &1, &dc),
        conv2d_d1(&image, &kernel, &1, &1, dc.clone())
    );
    // a lent zero cotangent gives the zero cotangent too, and is still there to lend again
    let zero = T64::zero();
    assert!(matmul_d0(&b, &zero).is_zero_cotangent());
    assert!(matmul_d1(&a, &zero).is_zero_cotangent());
}

#[test]
fn joint_add_and_sub_rules_equal_the_separate_ones() {
    let mut rng = Rng::new(43);
    for (a_shape, b_shape, out) in [
        (&[2, 3][..], &[3][..], &[2, 3][..]),
        (&[3][..], &[2, 3][..], &[2, 3][..]),
        (&[2, 1][..], &[1, 3][..], &[2, 3][..]),
        (&[2, 3][..], &[2, 3][..], &[2, 3][..]),
    ] {
        let (a, b) = (rng.tensor(a_shape), rng.tensor(b_shape));
        let d = rng.tensor(out);
        let (da, db) = add_d01(&a, &b, d.clone());
        assert_eq!(da, add_d0(&a, d.clone()));
        assert_eq!(db, add_d1(&b, d.clone()));
        let (da, db) = sub_d01(&a, &b, d.clone());
        assert_eq!(da, sub_d0(&a, d.clone()));
        assert_eq!(db, sub_d1(&b, d.clone()));
        // from the dimensions alone, as a pullback that kept only the shapes calls them
        let (da, db) = add_d01(&a.shape().to_vec(), &b.shape().to_vec(), d.clone());
        assert_eq!((da.shape(), db.shape()), (a_shape, b_shape));
    }
    let (za, zb) = add_d01(&T64::zeros(&[2]), &T64::zeros(&[2]), T64::zero());
    assert!(za.is_zero_cotangent() && zb.is_zero_cotangent());
}

#[test]
fn elementwise_functions() {
    let mut rng = Rng::new(47);
    for &shape in SHAPES {
        let x = rng.tensor(shape);
        check_vjp(
            "exp_d0",
            &x,
            |x: &T64| x.exp(),
            |y, d| exp_d0(y, d),
            &mut rng,
        );
        check_vjp(
            "sin_d0",
            &x,
            |x: &T64| x.sin(),
            |_, d| sin_d0(&x, d),
            &mut rng,
        );
        check_vjp(
            "cos_d0",
            &x,
            |x: &T64| x.cos(),
            |_, d| cos_d0(&x, d),
            &mut rng,
        );
        for n in [0, 1, 2, 3, -2] {
            let x = rng.away_from_zero(shape, 0.3);
            check_vjp(
                "powi_d0",
                &x,
                |x: &T64| x.powi(n),
                |_, d| powi_d0(&x, &n, d),
                &mut rng,
            );
        }
        let x = rng.away_from_zero(shape, 0.05);
        check_vjp(
            "abs_d0",
            &x,
            |x: &T64| x.abs(),
            |_, d| abs_d0(&x, d),
            &mut rng,
        );
        let positive = rng.tensor(shape).map(|v| v.abs() + 0.5);
        check_vjp(
            "ln_d0",
            &positive,
            |x: &T64| x.ln(),
            |_, d| ln_d0(&positive, d),
            &mut rng,
        );
        check_vjp(
            "sqrt_d0",
            &positive,
            |x: &T64| x.sqrt(),
            |y, d| sqrt_d0(y, d),
            &mut rng,
        );
    }
}

#[test]
fn transpose() {
    let mut rng = Rng::new(53);
    for shape in [[1, 1], [2, 3], [4, 1], [5, 7]] {
        let x = rng.tensor(&shape);
        check_vjp(
            "transpose_d0",
            &x,
            |x: &T64| x.transpose(),
            |_, d| transpose_d0(d),
            &mut rng,
        );
    }
}
