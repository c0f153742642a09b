//! One smoke test of every operation and rule in `f32`, against the same code in `f64`.

use autodiff_runtime::rules::tensor::*;
use autodiff_runtime::{Tensor, TensorElement};

use crate::support::{assert_close, to_f32, Rng};

/// The inputs, as drawn in f64.
struct Inputs {
    x: Tensor<f64>,
    w: Tensor<f64>,
    b: Tensor<f64>,
    m: Tensor<f64>,
    img: Tensor<f64>,
    kernel: Tensor<f64>,
    bias: Tensor<f64>,
    target: Tensor<f64>,
    row: Tensor<f64>,
    labels: Vec<usize>,
}

fn scalar<T: TensorElement>(v: T) -> Tensor<T> {
    Tensor::from_vec(vec![v], &[])
}

/// Every forward operation and every rule, named, on the inputs converted by `conv`.
fn run_all<T: TensorElement>(
    inputs: &Inputs,
    conv: impl Fn(&Tensor<f64>) -> Tensor<T>,
) -> Vec<(&'static str, Tensor<T>)> {
    let (x, w, b, m) = (
        conv(&inputs.x),
        conv(&inputs.w),
        conv(&inputs.b),
        conv(&inputs.m),
    );
    let (img, kernel, bias) = (conv(&inputs.img), conv(&inputs.kernel), conv(&inputs.bias));
    let (target, row, labels) = (conv(&inputs.target), conv(&inputs.row), &inputs.labels[..]);
    let half = T::from(0.5).unwrap();
    let one = T::one();

    let mm = x.matmul(&m);
    let lin = x.linear(&w, &b);
    let cv = img.conv2d(&kernel, &bias, 2, 1);
    let pool = img.max_pool2d(2);
    let (relu, tanh, sig) = (x.relu(), x.tanh(), x.sigmoid());
    let lsm = x.log_softmax(1);
    let sum_axis = x.sum_axis(0);
    let (add, sub, mul) = (&x + &row, &x - &row, &x * &row);
    vec![
        ("matmul", mm.clone()),
        ("matmul_d0", matmul_d0(&m, mm.clone())),
        ("matmul_d1", matmul_d1(&x, mm)),
        ("linear", lin.clone()),
        ("linear_d0", linear_d0(&w, lin.clone())),
        ("linear_d1", linear_d1(&x, lin.clone())),
        ("linear_d2", linear_d2(lin)),
        ("conv2d", cv.clone()),
        ("conv2d_d0", conv2d_d0(&img, &kernel, &2, &1, cv.clone())),
        ("conv2d_d1", conv2d_d1(&img, &kernel, &2, &1, cv.clone())),
        ("conv2d_d2", conv2d_d2(cv)),
        ("max_pool2d", pool.clone()),
        ("max_pool2d_d0", max_pool2d_d0(&img, &2, pool)),
        ("relu", relu.clone()),
        ("relu_d0", relu_d0(&relu, x.clone())),
        ("tanh", tanh.clone()),
        ("tanh_d0", tanh_d0(&tanh, x.clone())),
        ("sigmoid", sig.clone()),
        ("sigmoid_d0", sigmoid_d0(&sig, x.clone())),
        ("log_softmax", lsm.clone()),
        ("log_softmax_d0", log_softmax_d0(&lsm, &1, x.clone())),
        ("cross_entropy", scalar(x.cross_entropy(labels))),
        ("cross_entropy_d0", cross_entropy_d0(&x, labels, half)),
        ("mse", scalar(x.mse(&target))),
        ("mse_d0", mse_d0(&x, &target, half)),
        ("mse_d1", mse_d1(&x, &target, half)),
        ("reshape", x.reshape(&[5, 4])),
        ("reshape_d0", reshape_d0(&x, x.reshape(&[20]))),
        ("sum", scalar(x.sum())),
        ("sum_d0", sum_d0(&x, half)),
        ("mean", scalar(x.mean())),
        ("mean_d0", mean_d0(&x, half)),
        ("sum_axis", sum_axis.clone()),
        ("sum_axis_d0", sum_axis_d0(&x, &0, sum_axis)),
        ("add", add.clone()),
        ("add_d0", add_d0(&x, add.clone())),
        ("add_d1", add_d1(&row, add)),
        ("sub", sub.clone()),
        ("sub_d0", sub_d0(&x, sub.clone())),
        ("sub_d1", sub_d1(&row, sub)),
        ("mul", mul.clone()),
        ("mul_d0", mul_d0(&x, &row, mul.clone())),
        ("mul_d1", mul_d1(&x, &row, mul)),
        ("mul_scalar", &x * half),
        ("mul_scalar_d0", mul_scalar_d0(&half, x.clone())),
        ("mul_scalar_d1", scalar(mul_scalar_d1(&x, x.clone()))),
        ("add_scalar", &x + one),
        ("add_scalar_d0", add_scalar_d0(x.clone())),
        ("add_scalar_d1", scalar(add_scalar_d1(x.clone()))),
        ("sub_scalar", &x - one),
        ("sub_scalar_d0", sub_scalar_d0(x.clone())),
        ("sub_scalar_d1", scalar(sub_scalar_d1(x.clone()))),
        ("neg", -&x),
        ("neg_d0", neg_d0(x.clone())),
    ]
}

#[test]
fn every_op_and_rule_runs_in_f32_and_agrees_with_f64() {
    let mut rng = Rng::new(31);
    let inputs = Inputs {
        x: rng.tensor(&[4, 5]),
        w: rng.tensor(&[3, 5]),
        b: rng.tensor(&[3]),
        m: rng.tensor(&[5, 6]),
        img: rng.tensor(&[2, 2, 8, 8]),
        kernel: rng.tensor(&[3, 2, 3, 3]),
        bias: rng.tensor(&[3]),
        target: rng.tensor(&[4, 5]),
        row: rng.tensor(&[5]),
        labels: rng.labels(4, 5),
    };
    let wide = run_all(&inputs, Tensor::clone);
    let narrow = run_all(&inputs, to_f32);
    assert_eq!(wide.len(), narrow.len());
    for ((name, want), (_, got)) in wide.iter().zip(&narrow) {
        let got64 = Tensor::from_vec(got.data().iter().map(|&v| v as f64).collect(), got.shape());
        std::panic::catch_unwind(|| assert_close(&got64, want, 1e-4))
            .unwrap_or_else(|_| panic!("{name} differs between f32 and f64"));
    }
}
