//! Rules for [`Tensor`] operations, one function per argument.
//!
//! The calling convention is the scalar rules' (reads by reference, then the output
//! cotangent `d` by value), with tensors in place of scalars: a tensor argument's cotangent
//! is a `Tensor<T>` of its shape, a scalar's (`T`) a `T`. The rules of `matmul`, `linear`
//! and `conv2d` for the input and the weight only read `d`, so they take it either way
//! (`impl Borrow<Tensor<T>>`): pass `&d` to all but the one that consumes it, instead of
//! cloning it. The rules that need only an operand's shape take it as [`Shaped`]. These rules are not re-exported
//! into [`rules`](crate::rules), whose scalar rules share their names; generated code names
//! them `rules::tensor::matmul_d0`.
//!
//! The empty tensor ([`Cotangent::zero`](crate::Cotangent::zero)) stands for zero: a rule given it as `d` returns it
//! (or `T::zero()`) without allocating or computing. A cotangent of the wrong shape panics
//! with the rule's name and both shapes.
//!
//! Operators map to rules as follows, for tensors `a`, `b`, `t` and a scalar `s`:
//!
//! | expression | cotangents |
//! | --- | --- |
//! | `a + b`, `a - b`, `a * b` (broadcasting) | `add_d0`/`add_d1`, `sub_d0`/`sub_d1`, `mul_d0`/`mul_d1` |
//! | `t * s`, `s * t` | `t̄ = mul_scalar_d0(s, d)`, `s̄ = mul_scalar_d1(t, d)` |
//! | `t + s`, `s + t` | `t̄ = add_scalar_d0(d)`, `s̄ = add_scalar_d1(d)` |
//! | `t - s` | `t̄ = sub_scalar_d0(d)`, `s̄ = sub_scalar_d1(d)` |
//! | `s - t` | `t̄ = neg_d0(d)`, `s̄ = add_scalar_d1(d)` |
//! | `-t` | `neg_d0(d)` |
//!
//! ```
//! use autodiff_runtime::rules::tensor::{matmul_d0, matmul_d1};
//! use autodiff_runtime::{Cotangent, Tensor};
//!
//! // y = a b with a = [[1, 2]] and b = [[3], [4]], pulled back from ȳ = [[1]].
//! let a = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]);
//! let b = Tensor::from_vec(vec![3.0, 4.0], &[2, 1]);
//! let d = Tensor::from_vec(vec![1.0], &[1, 1]);
//! assert_eq!(matmul_d0(&b, &d).data(), &[3.0, 4.0]);
//! assert_eq!(matmul_d1(&a, d).data(), &[1.0, 2.0]);
//! // A zero cotangent costs nothing.
//! assert!(matmul_d0(&b, Tensor::zero()).is_zero_cotangent());
//! ```

use crate::tensor::{
    cast, col2im, cross_entropy_dims, for_each_argmax, gemm, im2col, logsumexp, numel, pool_dims,
    split_at_axis, unbroadcast_from, unbroadcast_to, ConvGeometry, MatMut, MatRef, Shaped,
};
use crate::{Tensor, TensorElement};
use std::borrow::Borrow;

/// Returns the zero cotangent from the enclosing rule when `d` is it.
macro_rules! pass_zero {
    ($d:ident) => {
        if $d.is_zero_cotangent() {
            return $d;
        }
    };
    ($d:ident, $zero:expr) => {
        if $d.is_zero_cotangent() {
            return $zero;
        }
    };
}

/// Panics unless the output cotangent `d` has the output's shape.
#[track_caller]
fn expect_shape<T: TensorElement>(rule: &str, d: &Tensor<T>, shape: &[usize]) {
    if d.shape() != shape {
        panic!(
            "{rule}: the output cotangent has shape {:?}, but the output has shape {shape:?}",
            d.shape()
        );
    }
}

/// `d` with every element replaced by `f(d, y)` for the matching element of `y`.
#[track_caller]
fn zip_y<T: TensorElement>(
    rule: &str,
    y: &Tensor<T>,
    mut d: Tensor<T>,
    f: impl Fn(T, T) -> T,
) -> Tensor<T> {
    expect_shape(rule, &d, y.shape());
    for (g, &y) in d.data_mut().iter_mut().zip(y.data()) {
        *g = f(*g, y);
    }
    d
}

/// Sums `d` over the axes along which an argument of shape `shape` was broadcast, so the
/// result has the argument's shape: the adjoint of broadcasting. The zero cotangent stays
/// zero.
///
/// ```
/// use autodiff_runtime::rules::tensor::unbroadcast;
/// use autodiff_runtime::Tensor;
///
/// let d = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// assert_eq!(unbroadcast(d.clone(), &[3]).data(), &[5.0, 7.0, 9.0]);
/// assert_eq!(unbroadcast(d.clone(), &[2, 1]).data(), &[6.0, 15.0]);
/// assert_eq!(unbroadcast(d, &[]).data(), &[21.0]);
/// ```
///
/// Panics if `shape` does not broadcast to `d`'s shape.
#[track_caller]
pub fn unbroadcast<T: TensorElement>(d: Tensor<T>, shape: &[usize]) -> Tensor<T> {
    pass_zero!(d);
    unbroadcast_to("unbroadcast", d, shape)
}

/// `y = a b` (`[m, k]` by `[k, n]`): `ā = ȳ bᵀ`.
#[track_caller]
pub fn matmul_d0<T: TensorElement, D: Borrow<Tensor<T>>>(b: &Tensor<T>, d: D) -> Tensor<T> {
    let d = d.borrow();
    pass_zero!(d, <Tensor<T> as crate::Cotangent>::zero());
    let (&[k, n], &[m, _]) = (b.shape(), d.shape()) else {
        panic!(
            "matmul_d0: cotangent of shape {:?} and b of shape {:?} are not 2-D",
            d.shape(),
            b.shape()
        );
    };
    expect_shape("matmul_d0", d, &[m, n]);
    let mut out = vec![T::zero(); m * k];
    gemm(
        T::one(),
        MatRef::new(d.data(), m, n),
        MatRef::new(b.data(), k, n).t(),
        T::zero(),
        MatMut::new(&mut out, m, k),
    );
    Tensor::from_vec(out, &[m, k])
}

/// `y = a b` (`[m, k]` by `[k, n]`): `b̄ = aᵀ ȳ`.
#[track_caller]
pub fn matmul_d1<T: TensorElement, D: Borrow<Tensor<T>>>(a: &Tensor<T>, d: D) -> Tensor<T> {
    let d = d.borrow();
    pass_zero!(d, <Tensor<T> as crate::Cotangent>::zero());
    let (&[m, k], &[_, n]) = (a.shape(), d.shape()) else {
        panic!(
            "matmul_d1: cotangent of shape {:?} and a of shape {:?} are not 2-D",
            d.shape(),
            a.shape()
        );
    };
    expect_shape("matmul_d1", d, &[m, n]);
    let mut out = vec![T::zero(); k * n];
    gemm(
        T::one(),
        MatRef::new(a.data(), m, k).t(),
        MatRef::new(d.data(), m, n),
        T::zero(),
        MatMut::new(&mut out, k, n),
    );
    Tensor::from_vec(out, &[k, n])
}

/// `(rows, out)` of a `linear` output cotangent `[..., out]`.
#[track_caller]
fn linear_rows<T: TensorElement>(rule: &str, d: &Tensor<T>) -> (usize, usize) {
    match d.shape().last() {
        Some(&n_out) => (numel(&d.shape()[..d.ndim() - 1]), n_out),
        None => panic!("{rule}: the output cotangent is 0-d, but linear's output has an axis"),
    }
}

/// `y = x wᵀ + b` (`x` is `[..., in]`, `w` is `[out, in]`): `x̄ = ȳ w`.
#[track_caller]
pub fn linear_d0<T: TensorElement, D: Borrow<Tensor<T>>>(w: &Tensor<T>, d: D) -> Tensor<T> {
    let d = d.borrow();
    pass_zero!(d, <Tensor<T> as crate::Cotangent>::zero());
    let (rows, n_out) = linear_rows("linear_d0", d);
    let &[w_out, n_in] = w.shape() else {
        panic!(
            "linear_d0: weight of shape {:?} is not [out, in]",
            w.shape()
        );
    };
    if n_out != w_out {
        panic!(
            "linear_d0: the output cotangent has shape {:?}, but the weight has shape {:?}",
            d.shape(),
            w.shape()
        );
    }
    let mut out = vec![T::zero(); rows * n_in];
    gemm(
        T::one(),
        MatRef::new(d.data(), rows, n_out),
        MatRef::new(w.data(), n_out, n_in),
        T::zero(),
        MatMut::new(&mut out, rows, n_in),
    );
    let mut shape = d.shape().to_vec();
    *shape.last_mut().unwrap() = n_in;
    Tensor::from_vec(out, &shape)
}

/// `y = x wᵀ + b` (`x` is `[..., in]`, `w` is `[out, in]`): `w̄ = ȳᵀ x`, with the leading
/// axes of `x` and `ȳ` flattened into rows.
#[track_caller]
pub fn linear_d1<T: TensorElement, D: Borrow<Tensor<T>>>(x: &Tensor<T>, d: D) -> Tensor<T> {
    let d = d.borrow();
    pass_zero!(d, <Tensor<T> as crate::Cotangent>::zero());
    let (rows, n_out) = linear_rows("linear_d1", d);
    let Some((&n_in, lead)) = x.shape().split_last() else {
        panic!("linear_d1: x is 0-d, but linear's input has an axis");
    };
    let expected: Vec<usize> = lead.iter().copied().chain([n_out]).collect();
    expect_shape("linear_d1", d, &expected);
    let mut out = vec![T::zero(); n_out * n_in];
    gemm(
        T::one(),
        MatRef::new(d.data(), rows, n_out).t(),
        MatRef::new(x.data(), rows, n_in),
        T::zero(),
        MatMut::new(&mut out, n_out, n_in),
    );
    Tensor::from_vec(out, &[n_out, n_in])
}

/// `y = x wᵀ + b`: `b̄ = Σ ȳ` over every axis but the last (the column sums of `ȳ`).
#[track_caller]
pub fn linear_d2<T: TensorElement>(d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    let (_, n_out) = linear_rows("linear_d2", &d);
    unbroadcast_to("linear_d2", d, &[n_out])
}

/// `y = conv2d(x, w, b, stride, padding)`: `x̄ = col2im(wᵀ ȳₙ)` for every image `n`: the
/// transposed weight maps each output gradient to its receptive field, which is folded back
/// onto the image.
#[track_caller]
pub fn conv2d_d0<T: TensorElement, D: Borrow<Tensor<T>>>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    stride: &usize,
    padding: &usize,
    d: D,
) -> Tensor<T> {
    let d = d.borrow();
    pass_zero!(d, <Tensor<T> as crate::Cotangent>::zero());
    let g = ConvGeometry::new(x.shape(), w.shape(), *stride, *padding);
    expect_shape("conv2d_d0", d, &g.out_shape());
    let (patch, pixels, image) = (g.patch(), g.pixels(), g.image());
    let mut dx = Tensor::zeros(x.shape());
    let mut cols = vec![T::zero(); patch * pixels];
    let weight_t = MatRef::new(w.data(), g.o, patch).t();
    for i in 0..g.n {
        gemm(
            T::one(),
            weight_t,
            MatRef::new(
                &d.data()[i * g.o * pixels..(i + 1) * g.o * pixels],
                g.o,
                pixels,
            ),
            T::zero(),
            MatMut::new(&mut cols, patch, pixels),
        );
        col2im(&cols, &g, &mut dx.data_mut()[i * image..(i + 1) * image]);
    }
    dx
}

/// `y = conv2d(x, w, b, stride, padding)`: `w̄ = Σₙ ȳₙ im2col(xₙ)ᵀ`.
#[track_caller]
pub fn conv2d_d1<T: TensorElement, D: Borrow<Tensor<T>>>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    stride: &usize,
    padding: &usize,
    d: D,
) -> Tensor<T> {
    let d = d.borrow();
    pass_zero!(d, <Tensor<T> as crate::Cotangent>::zero());
    let g = ConvGeometry::new(x.shape(), w.shape(), *stride, *padding);
    expect_shape("conv2d_d1", d, &g.out_shape());
    let (patch, pixels, image) = (g.patch(), g.pixels(), g.image());
    let mut dw = Tensor::zeros(w.shape());
    let mut cols = vec![T::zero(); patch * pixels];
    for i in 0..g.n {
        im2col(&x.data()[i * image..(i + 1) * image], &g, &mut cols);
        gemm(
            T::one(),
            MatRef::new(
                &d.data()[i * g.o * pixels..(i + 1) * g.o * pixels],
                g.o,
                pixels,
            ),
            MatRef::new(&cols, patch, pixels).t(),
            T::one(),
            MatMut::new(dw.data_mut(), g.o, patch),
        );
    }
    dw
}

/// `y = conv2d(x, w, b, stride, padding)`: `b̄[o] = Σ ȳ[·, o, ·, ·]`.
#[track_caller]
pub fn conv2d_d2<T: TensorElement>(d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    let &[_, o, _, _] = d.shape() else {
        panic!(
            "conv2d_d2: the output cotangent has shape {:?}, not [N, out, H, W]",
            d.shape()
        );
    };
    unbroadcast_to("conv2d_d2", d, &[o, 1, 1]).into_reshape(&[o])
}

/// `y = max_pool2d(x, k)`: each `ȳ` goes to the position of its window's maximum (the first
/// one on ties); every other element of `x̄` is zero.
#[track_caller]
pub fn max_pool2d_d0<T: TensorElement>(x: &Tensor<T>, k: &usize, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    let (_, _, _, oh, ow) = pool_dims(x.shape(), *k);
    expect_shape("max_pool2d_d0", &d, &[x.shape()[0], x.shape()[1], oh, ow]);
    let mut dx = Tensor::zeros(x.shape());
    let mut ds = d.data().iter();
    let out = dx.data_mut();
    for_each_argmax(x, *k, |i| out[i] = out[i] + *ds.next().unwrap());
    dx
}

/// `y = relu(x)`: `x̄ = ȳ` where `y > 0`, else 0.
#[track_caller]
pub fn relu_d0<T: TensorElement>(y: &Tensor<T>, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    zip_y(
        "relu_d0",
        y,
        d,
        |d, y| if y > T::zero() { d } else { T::zero() },
    )
}

/// `y = tanh(x)`: `x̄ = ȳ (1 - y²)`.
#[track_caller]
pub fn tanh_d0<T: TensorElement>(y: &Tensor<T>, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    zip_y("tanh_d0", y, d, |d, y| d * (T::one() - y * y))
}

/// The rules of elementwise functions: the scalar rule of the same name at every element,
/// reading the output (`y`) or the input (`x`) as the scalar rule does.
macro_rules! elementwise_rules {
    ($($(#[$doc:meta])* $name:ident($read:ident);)*) => {$(
        $(#[$doc])*
        #[track_caller]
        pub fn $name<T: TensorElement>($read: &Tensor<T>, d: Tensor<T>) -> Tensor<T> {
            pass_zero!(d);
            zip_y(stringify!($name), $read, d, |d, v| crate::rules::$name(&v, d))
        }
    )*};
}

elementwise_rules! {
    /// `y = exp(x)` elementwise: `x̄ = ȳ y`.
    exp_d0(y);
    /// `y = ln(x)` elementwise: `x̄ = ȳ / x`.
    ln_d0(x);
    /// `y = √x` elementwise: `x̄ = ȳ / (2y)`.
    sqrt_d0(y);
    /// `y = |x|` elementwise: `x̄ = ȳ sign(x)`, 0 at `x = 0`.
    abs_d0(x);
    /// `y = sin(x)` elementwise: `x̄ = ȳ cos x`.
    sin_d0(x);
    /// `y = cos(x)` elementwise: `x̄ = -ȳ sin x`.
    cos_d0(x);
}

/// `y = xᵀ` (2-D): `x̄ = ȳᵀ`.
#[track_caller]
pub fn transpose_d0<T: TensorElement>(d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    d.transpose()
}

/// `y = xⁿ` elementwise: `x̄ = ȳ n xⁿ⁻¹` (0 for `n = 0`).
#[track_caller]
pub fn powi_d0<T: TensorElement>(x: &Tensor<T>, n: &i32, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    zip_y("powi_d0", x, d, |d, x| crate::rules::powi_d0(&x, n, d))
}

/// `y = sigmoid(x)`: `x̄ = ȳ y (1 - y)`.
#[track_caller]
pub fn sigmoid_d0<T: TensorElement>(y: &Tensor<T>, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    zip_y("sigmoid_d0", y, d, |d, y| d * y * (T::one() - y))
}

/// `y = log_softmax(x, axis)`: `x̄ = ȳ - exp(y) Σ_axis ȳ`.
#[track_caller]
pub fn log_softmax_d0<T: TensorElement>(
    y: &Tensor<T>,
    axis: &usize,
    mut d: Tensor<T>,
) -> Tensor<T> {
    pass_zero!(d);
    expect_shape("log_softmax_d0", &d, y.shape());
    let (outer, len, inner) = split_at_axis("log_softmax_d0", y.shape(), *axis);
    let (ys, ds) = (y.data(), d.data_mut());
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            let total = (0..len).fold(T::zero(), |s, j| s + ds[base + j * inner]);
            for j in 0..len {
                let at = base + j * inner;
                ds[at] = ds[at] - ys[at].exp() * total;
            }
        }
    }
    d
}

/// `y = cross_entropy(x, labels)` (logits `[N, C]`): `x̄ = ȳ (softmax(x) - onehot(labels)) / N`.
#[track_caller]
pub fn cross_entropy_d0<T: TensorElement>(x: &Tensor<T>, labels: &[usize], d: T) -> Tensor<T> {
    let (n, c) = cross_entropy_dims(x.shape(), labels);
    let scale = d / cast(n);
    let mut dx = Tensor::zeros(x.shape());
    let out = dx.data_mut();
    for (i, &label) in labels.iter().enumerate() {
        let row = &x.data()[i * c..(i + 1) * c];
        let lse = logsumexp(row.iter().copied());
        for (g, &v) in out[i * c..(i + 1) * c].iter_mut().zip(row) {
            *g = scale * (v - lse).exp();
        }
        out[i * c + label] = out[i * c + label] - scale;
    }
    dx
}

/// `2 scale (x - target) / n`, checking the shapes for `rule`.
#[track_caller]
fn mse_grad<T: TensorElement>(
    rule: &str,
    x: &Tensor<T>,
    target: &Tensor<T>,
    scale: T,
) -> Tensor<T> {
    if x.shape() != target.shape() {
        panic!(
            "{rule}: shapes {:?} and {:?} are incompatible",
            x.shape(),
            target.shape()
        );
    }
    let scale = scale * cast(2) / cast(x.numel());
    let data = x
        .data()
        .iter()
        .zip(target.data())
        .map(|(&x, &t)| scale * (x - t))
        .collect();
    Tensor::from_vec(data, x.shape())
}

/// `y = mse(x, target) = mean((x - target)²)`: `x̄ = 2 ȳ (x - target) / n`.
#[track_caller]
pub fn mse_d0<T: TensorElement>(x: &Tensor<T>, target: &Tensor<T>, d: T) -> Tensor<T> {
    mse_grad("mse_d0", x, target, d)
}

/// `y = mse(x, target) = mean((x - target)²)`: `target̄ = -2 ȳ (x - target) / n`.
#[track_caller]
pub fn mse_d1<T: TensorElement>(x: &Tensor<T>, target: &Tensor<T>, d: T) -> Tensor<T> {
    mse_grad("mse_d1", x, target, -d)
}

/// `y = reshape(x, shape)`: `x̄ = ȳ` with `x`'s shape.
#[track_caller]
pub fn reshape_d0<T: TensorElement, S: Shaped + ?Sized>(x: &S, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    if d.numel() != x.count() {
        panic!(
            "reshape_d0: the output cotangent has shape {:?}, but x has shape {:?}",
            d.shape(),
            x.dims()
        );
    }
    d.into_reshape(x.dims())
}

/// `y = sum(x)`: `x̄ = ȳ` everywhere.
pub fn sum_d0<T: TensorElement, S: Shaped + ?Sized>(x: &S, d: T) -> Tensor<T> {
    Tensor::full(x.dims(), d)
}

/// `y = mean(x)`: `x̄ = ȳ / n` everywhere.
pub fn mean_d0<T: TensorElement, S: Shaped + ?Sized>(x: &S, d: T) -> Tensor<T> {
    Tensor::full(x.dims(), d / cast(x.count()))
}

/// `y = sum_axis(x, axis)`: `x̄ = ȳ` repeated along `axis`.
#[track_caller]
pub fn sum_axis_d0<T: TensorElement, S: Shaped + ?Sized>(
    x: &S,
    axis: &usize,
    d: Tensor<T>,
) -> Tensor<T> {
    pass_zero!(d);
    let (outer, len, inner) = split_at_axis("sum_axis_d0", x.dims(), *axis);
    let mut reduced = x.dims().to_vec();
    reduced.remove(*axis);
    expect_shape("sum_axis_d0", &d, &reduced);
    let mut data = Vec::with_capacity(x.count());
    for o in 0..outer {
        let lane = &d.data()[o * inner..(o + 1) * inner];
        for _ in 0..len {
            data.extend_from_slice(lane);
        }
    }
    Tensor::from_vec(data, x.dims())
}

/// `y = a + b` (broadcasting): `ā = ȳ` summed over `a`'s broadcast axes.
#[track_caller]
pub fn add_d0<T: TensorElement, S: Shaped + ?Sized>(a: &S, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    unbroadcast_to("add_d0", d, a.dims())
}

/// `y = a + b` (broadcasting): `b̄ = ȳ` summed over `b`'s broadcast axes.
#[track_caller]
pub fn add_d1<T: TensorElement, S: Shaped + ?Sized>(b: &S, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    unbroadcast_to("add_d1", d, b.dims())
}

/// `y = a - b` (broadcasting): `ā = ȳ` summed over `a`'s broadcast axes.
#[track_caller]
pub fn sub_d0<T: TensorElement, S: Shaped + ?Sized>(a: &S, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    unbroadcast_to("sub_d0", d, a.dims())
}

/// `y = a - b` (broadcasting): `b̄ = -ȳ` summed over `b`'s broadcast axes.
#[track_caller]
pub fn sub_d1<T: TensorElement, S: Shaped + ?Sized>(b: &S, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    -unbroadcast_to("sub_d1", d, b.dims())
}

/// `y = a + b` (broadcasting), both cotangents at once: `ȳ` itself goes to an operand of
/// the output's shape and is summed over the broadcast axes for the other, so a bias add
/// (`&z + &b`) makes no copy of `ȳ`, where [`add_d0`] and [`add_d1`] would need one.
///
/// ```
/// use autodiff_runtime::rules::tensor::add_d01;
/// use autodiff_runtime::Tensor;
///
/// let (z, b) = (Tensor::<f64>::zeros(&[2, 3]), Tensor::<f64>::zeros(&[3]));
/// let d = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// let (dz, db) = add_d01(&z, &b, d.clone());
/// assert_eq!(dz, d);
/// assert_eq!(db.data(), &[5.0, 7.0, 9.0]);
/// ```
#[track_caller]
pub fn add_d01<T: TensorElement, A: Shaped + ?Sized, B: Shaped + ?Sized>(
    a: &A,
    b: &B,
    d: Tensor<T>,
) -> (Tensor<T>, Tensor<T>) {
    split_to_operands(["add_d0", "add_d1"], a, b, d)
}

/// `y = a - b` (broadcasting), both cotangents at once, as [`add_d01`] with `b̄` negated.
#[track_caller]
pub fn sub_d01<T: TensorElement, A: Shaped + ?Sized, B: Shaped + ?Sized>(
    a: &A,
    b: &B,
    d: Tensor<T>,
) -> (Tensor<T>, Tensor<T>) {
    let (da, db) = split_to_operands(["sub_d0", "sub_d1"], a, b, d);
    (da, -db)
}

/// `ȳ` reduced to each operand's shape, moved (not copied) to the first operand of the
/// output's shape; `rules` name the two cotangents in shape errors.
#[track_caller]
fn split_to_operands<T: TensorElement, A: Shaped + ?Sized, B: Shaped + ?Sized>(
    rules: [&str; 2],
    a: &A,
    b: &B,
    d: Tensor<T>,
) -> (Tensor<T>, Tensor<T>) {
    let zero = <Tensor<T> as crate::Cotangent>::zero;
    pass_zero!(d, (zero(), zero()));
    if a.dims() == d.shape() {
        let db = unbroadcast_from(rules[1], &d, b.dims());
        (d, db)
    } else {
        let da = unbroadcast_from(rules[0], &d, a.dims());
        (da, unbroadcast_to(rules[1], d, b.dims()))
    }
}

/// `y = a * b` (broadcasting, elementwise): `ā = ȳ b` summed over `a`'s broadcast axes.
#[track_caller]
pub fn mul_d0<T: TensorElement>(a: &Tensor<T>, b: &Tensor<T>, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    unbroadcast_to("mul_d0", d * b, a.shape())
}

/// `y = a * b` (broadcasting, elementwise): `b̄ = ȳ a` summed over `b`'s broadcast axes.
#[track_caller]
pub fn mul_d1<T: TensorElement>(a: &Tensor<T>, b: &Tensor<T>, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    unbroadcast_to("mul_d1", d * a, b.shape())
}

/// `y = t s` (tensor `t`, scalar `s`, either order): `t̄ = ȳ s`.
pub fn mul_scalar_d0<T: TensorElement>(s: &T, d: Tensor<T>) -> Tensor<T> {
    pass_zero!(d);
    d * *s
}

/// `y = t s` (tensor `t`, scalar `s`, either order): `s̄ = Σ ȳ t`.
#[track_caller]
pub fn mul_scalar_d1<T: TensorElement>(t: &Tensor<T>, d: Tensor<T>) -> T {
    pass_zero!(d, T::zero());
    expect_shape("mul_scalar_d1", &d, t.shape());
    d.data()
        .iter()
        .zip(t.data())
        .fold(T::zero(), |acc, (&d, &t)| acc + d * t)
}

/// `y = t + s` (tensor `t`, scalar `s`, either order): `t̄ = ȳ`.
pub fn add_scalar_d0<T: TensorElement>(d: Tensor<T>) -> Tensor<T> {
    d
}

/// `y = t + s` (tensor `t`, scalar `s`, either order): `s̄ = Σ ȳ`.
pub fn add_scalar_d1<T: TensorElement>(d: Tensor<T>) -> T {
    d.sum()
}

/// `y = t - s` (tensor `t`, scalar `s`): `t̄ = ȳ`.
pub fn sub_scalar_d0<T: TensorElement>(d: Tensor<T>) -> Tensor<T> {
    d
}

/// `y = t - s` (tensor `t`, scalar `s`): `s̄ = -Σ ȳ`.
pub fn sub_scalar_d1<T: TensorElement>(d: Tensor<T>) -> T {
    -d.sum()
}

/// `y = -t`: `t̄ = -ȳ`.
pub fn neg_d0<T: TensorElement>(d: Tensor<T>) -> Tensor<T> {
    -d
}
