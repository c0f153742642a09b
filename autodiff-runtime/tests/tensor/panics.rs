//! Shape mismatches panic with the operation's name and both shapes.

use autodiff_runtime::rules::tensor::{relu_d0, unbroadcast};
use autodiff_runtime::{Cotangent, Tensor};

fn t(shape: &[usize]) -> Tensor<f64> {
    Tensor::zeros(shape)
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] are incompatible")]
fn matmul_inner_dimensions() {
    t(&[2, 3]).matmul(&t(&[4, 5]));
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3, 1] and [3, 5] are incompatible")]
fn matmul_not_2d() {
    t(&[2, 3, 1]).matmul(&t(&[3, 5]));
}

#[test]
#[should_panic(expected = "linear: shapes [4, 3] and [2, 5] are incompatible")]
fn linear_weight() {
    t(&[4, 3]).linear(&t(&[2, 5]), &t(&[2]));
}

#[test]
#[should_panic(expected = "linear: shapes [2, 3] and [3] are incompatible")]
fn linear_bias() {
    t(&[4, 3]).linear(&t(&[2, 3]), &t(&[3]));
}

#[test]
#[should_panic(expected = "conv2d: shapes [1, 2, 5, 5] and [4, 3, 3, 3] are incompatible")]
fn conv2d_channels() {
    t(&[1, 2, 5, 5]).conv2d(&t(&[4, 3, 3, 3]), &t(&[4]), 1, 0);
}

#[test]
#[should_panic(expected = "conv2d: shapes [1, 2, 5] and [4, 2, 3, 3] are incompatible")]
fn conv2d_not_4d() {
    t(&[1, 2, 5]).conv2d(&t(&[4, 2, 3, 3]), &t(&[4]), 1, 0);
}

#[test]
#[should_panic(expected = "conv2d: shapes [1, 1, 2, 2] and [1, 1, 3, 3] are incompatible")]
fn conv2d_kernel_too_large() {
    t(&[1, 1, 2, 2]).conv2d(&t(&[1, 1, 3, 3]), &t(&[1]), 1, 0);
}

#[test]
#[should_panic(expected = "conv2d: shapes [4, 2, 3, 3] and [3] are incompatible")]
fn conv2d_bias() {
    t(&[1, 2, 5, 5]).conv2d(&t(&[4, 2, 3, 3]), &t(&[3]), 1, 0);
}

#[test]
#[should_panic(expected = "max_pool2d: input of shape [2, 5, 5] is not 4-D")]
fn max_pool2d_not_4d() {
    t(&[2, 5, 5]).max_pool2d(2);
}

#[test]
#[should_panic(expected = "max_pool2d: kernel size 3 does not fit the input of shape [1, 1, 2, 4]")]
fn max_pool2d_kernel_too_large() {
    t(&[1, 1, 2, 4]).max_pool2d(3);
}

#[test]
#[should_panic(expected = "add: shapes [3, 4] and [5] are incompatible")]
fn add_broadcast() {
    let _ = &t(&[3, 4]) + &t(&[5]);
}

#[test]
#[should_panic(expected = "sub: shapes [2, 3] and [3, 2] are incompatible")]
fn sub_broadcast_owned() {
    let _ = t(&[2, 3]) - t(&[3, 2]);
}

#[test]
#[should_panic(expected = "mul: shapes [2, 1, 3] and [4, 2] are incompatible")]
fn mul_broadcast() {
    let _ = &t(&[2, 1, 3]) * t(&[4, 2]);
}

#[test]
#[should_panic(expected = "mse: shapes [3] and [4] are incompatible")]
fn mse_shapes() {
    t(&[3]).mse(&t(&[4]));
}

#[test]
#[should_panic(expected = "cross_entropy: shapes [2, 3] and [3] are incompatible")]
fn cross_entropy_label_count() {
    t(&[2, 3]).cross_entropy(&[0, 1, 2]);
}

#[test]
#[should_panic(expected = "cross_entropy: label 3 at position 1 is out of range for 3 classes")]
fn cross_entropy_label_range() {
    t(&[2, 3]).cross_entropy(&[0, 3]);
}

#[test]
#[should_panic(expected = "log_softmax: axis 2 is out of range for shape [2, 3]")]
fn log_softmax_axis() {
    t(&[2, 3]).log_softmax(2);
}

#[test]
#[should_panic(expected = "sum_axis: axis 1 is out of range for shape [4]")]
fn sum_axis_axis() {
    t(&[4]).sum_axis(1);
}

#[test]
#[should_panic(expected = "reshape: shapes [2, 3] and [4] have different numbers of elements")]
fn reshape_count() {
    t(&[2, 3]).reshape(&[4]);
}

#[test]
#[should_panic(expected = "from_vec: 5 elements do not fill shape [2, 3]")]
fn from_vec_count() {
    Tensor::from_vec(vec![0.0; 5], &[2, 3]);
}

#[test]
#[should_panic(expected = "accumulate: cotangent shapes [2] and [3] differ")]
fn accumulate_shapes() {
    let mut a = t(&[2]);
    a.accumulate(t(&[3]));
}

#[test]
#[should_panic(
    expected = "relu_d0: the output cotangent has shape [3], but the output has shape [2]"
)]
fn rule_cotangent_shape() {
    relu_d0(&t(&[2]), t(&[3]));
}

#[test]
#[should_panic(expected = "unbroadcast: shape [3] does not broadcast to [2, 4]")]
fn unbroadcast_shape() {
    unbroadcast(t(&[2, 4]), &[3]);
}

#[test]
fn zero_cotangent_is_not_a_shape_error() {
    let mut a = Tensor::<f64>::zero();
    a.accumulate(t(&[3]));
    assert_eq!(a.shape(), &[3]);
}

#[test]
#[should_panic(expected = "transpose: shape [2, 3, 4] is not 2-D")]
fn transpose_not_2d() {
    t(&[2, 3, 4]).transpose();
}
