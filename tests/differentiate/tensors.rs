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

#[derive(Differentiable, Clone, Debug)]
struct Conv {
    w: Tensor<f64>,
    b: Tensor<f64>,
}

#[derive(Differentiable, Clone, Debug)]
struct LeNet {
    c1: Conv,
    c2: Conv,
    f1: Dense,
    f2: Dense,
    f3: Dense,
}

// The seed's LeNet: conv 1→6 5x5 pad 2, relu, pool 2, conv 6→16 5x5, relu, pool 2,
// flatten 400, linear 120, relu, linear 84, relu, linear 10, cross-entropy.
#[differentiate(wrt(p))]
fn lenet_loss(p: &LeNet, x: &Tensor<f64>, labels: &[usize]) -> f64 {
    let h = x.conv2d(&p.c1.w, &p.c1.b, 1, 2).relu().max_pool2d(2);
    let h = h.conv2d(&p.c2.w, &p.c2.b, 1, 0).relu().max_pool2d(2);
    let n = h.shape()[0];
    let h = h.reshape(&[n, 400]);
    let h = h.linear(&p.f1.w, &p.f1.b).relu();
    let h = h.linear(&p.f2.w, &p.f2.b).relu();
    h.linear(&p.f3.w, &p.f3.b).cross_entropy(labels)
}

/// The same network's gradient, written out by hand from the runtime's rules.
fn lenet_backward_by_hand(p: &LeNet, x: &Tensor<f64>, labels: &[usize]) -> LeNet {
    use autodiff::__private::rules::tensor as r;
    let a1 = x.conv2d(&p.c1.w, &p.c1.b, 1, 2);
    let r1 = a1.relu();
    let m1 = r1.max_pool2d(2);
    let a2 = m1.conv2d(&p.c2.w, &p.c2.b, 1, 0);
    let r2 = a2.relu();
    let m2 = r2.max_pool2d(2);
    let flat = m2.reshape(&[m2.shape()[0], 400]);
    let z1 = flat.linear(&p.f1.w, &p.f1.b);
    let h1 = z1.relu();
    let z2 = h1.linear(&p.f2.w, &p.f2.b);
    let h2 = z2.relu();
    let z3 = h2.linear(&p.f3.w, &p.f3.b);
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
    LeNet {
        c1: Conv { w: d_cw1, b: d_cb1 },
        c2: Conv { w: d_cw2, b: d_cb2 },
        f1: Dense { w: d_w1, b: d_b1 },
        f2: Dense { w: d_w2, b: d_b2 },
        f3: Dense { w: d_w3, b: d_b3 },
    }
}

fn leaves(m: &LeNet) -> Vec<&Tensor<f64>> {
    vec![
        &m.c1.w, &m.c1.b, &m.c2.w, &m.c2.b, &m.f1.w, &m.f1.b, &m.f2.w, &m.f2.b, &m.f3.w, &m.f3.b,
    ]
}

fn leaves_mut(m: &mut LeNet) -> Vec<&mut Tensor<f64>> {
    vec![
        &mut m.c1.w,
        &mut m.c1.b,
        &mut m.c2.w,
        &mut m.c2.b,
        &mut m.f1.w,
        &mut m.f1.b,
        &mut m.f2.w,
        &mut m.f2.b,
        &mut m.f3.w,
        &mut m.f3.b,
    ]
}

#[test]
fn lenet_gradient_matches_finite_differences_and_a_hand_written_backward_pass() {
    let mut seed = 0x2545f4914f6cdd1d;
    let scaled = |t: Tensor<f64>, s: f64| &t * s;
    let p = LeNet {
        c1: Conv {
            w: scaled(tensor(&mut seed, &[6, 1, 5, 5]), 0.4),
            b: scaled(tensor(&mut seed, &[6]), 0.1),
        },
        c2: Conv {
            w: scaled(tensor(&mut seed, &[16, 6, 5, 5]), 0.16),
            b: scaled(tensor(&mut seed, &[16]), 0.1),
        },
        f1: Dense {
            w: scaled(tensor(&mut seed, &[120, 400]), 0.1),
            b: scaled(tensor(&mut seed, &[120]), 0.1),
        },
        f2: Dense {
            w: scaled(tensor(&mut seed, &[84, 120]), 0.18),
            b: scaled(tensor(&mut seed, &[84]), 0.1),
        },
        f3: Dense {
            w: scaled(tensor(&mut seed, &[10, 84]), 0.2),
            b: scaled(tensor(&mut seed, &[10]), 0.1),
        },
    };
    let x = tensor(&mut seed, &[3, 1, 28, 28]);
    let labels = [3usize, 7, 1];
    let (value, grad) = lenet_loss_grad(&p, &x, &labels);
    assert_eq!(value.to_bits(), lenet_loss(&p, &x, &labels).to_bits());

    let by_hand = lenet_backward_by_hand(&p, &x, &labels);
    for (g, h) in leaves(&grad).into_iter().zip(leaves(&by_hand)) {
        assert_eq!(g.shape(), h.shape());
        for (a, b) in g.data().iter().zip(h.data()) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    // sampled parameters of every leaf against central differences
    let h = 1e-6;
    for leaf in 0..10 {
        let len = leaves(&p)[leaf].data().len();
        for k in [0, len / 3, len / 2, len - 1] {
            let mut plus = p.clone();
            leaves_mut(&mut plus)[leaf].data_mut()[k] += h;
            let mut minus = p.clone();
            leaves_mut(&mut minus)[leaf].data_mut()[k] -= h;
            let fd = (lenet_loss(&plus, &x, &labels) - lenet_loss(&minus, &x, &labels)) / (2.0 * h);
            let g = leaves(&grad)[leaf].data()[k];
            assert!(
                (g - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "leaf {leaf}[{k}]: {g} vs {fd}"
            );
        }
    }
}

#[differentiate]
fn tensor_arithmetic(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let z = a.tanh();
    let d = &z * 2.0;
    let e = &(a - b) * &d;
    (&e + &z).sum() + (2.0 - &e).mean()
}

/// A function of two tensors at random points of the given shapes: `_grad`'s value is the
/// function's, bit for bit, and its gradient matches central finite differences.
fn check_two_tensor_function(
    f: fn(&Tensor<f64>, &Tensor<f64>) -> f64,
    grad: GradOfTwo,
    mut seed: u64,
    a_shape: &[usize],
    b_shape: &[usize],
) {
    let a = tensor(&mut seed, a_shape);
    let b = tensor(&mut seed, b_shape);
    let (value, (da, db)) = grad(&a, &b);
    assert_eq!(value.to_bits(), f(&a, &b).to_bits());
    check_two_tensor_gradient(f, &a, &b, &da, &db);
}

type GradOfTwo = fn(&Tensor<f64>, &Tensor<f64>) -> (f64, (Tensor<f64>, Tensor<f64>));

/// `(da, db)` against central finite differences of `f` at `(a, b)`, element by element.
fn check_two_tensor_gradient(
    f: fn(&Tensor<f64>, &Tensor<f64>) -> f64,
    a: &Tensor<f64>,
    b: &Tensor<f64>,
    da: &Tensor<f64>,
    db: &Tensor<f64>,
) {
    let h = 1e-6;
    for (grad, which) in [(da, 0), (db, 1)] {
        let base = if which == 0 { a } else { b };
        for k in 0..base.data().len() {
            let mut plus = base.clone();
            plus.data_mut()[k] += h;
            let mut minus = base.clone();
            minus.data_mut()[k] -= h;
            let at = |t: &Tensor<f64>| if which == 0 { f(t, b) } else { f(a, t) };
            let fd = (at(&plus) - at(&minus)) / (2.0 * h);
            assert!(
                autodiff::relative_error(grad.data()[k], fd) < 1e-6,
                "{which}[{k}]: {} vs {fd}",
                grad.data()[k]
            );
        }
    }
}

#[test]
fn tensor_operators_with_tensors_and_scalars() {
    check_two_tensor_function(tensor_arithmetic, tensor_arithmetic_grad, 7, &[3, 4], &[4]);
}

// `h` and `y` are saved for the backward pass; the forward pass borrows them (the second
// `h` and `y` by value, as the operators allow), so the pullback keeps them without copies
#[differentiate]
fn tensors_saved_without_copies(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let h = a.tanh();
    let y = &h * b + a;
    let z = y.sigmoid() * y - h;
    (-z).sum()
}

#[test]
fn tensor_values_saved_in_place() {
    check_two_tensor_function(
        tensors_saved_without_copies,
        tensors_saved_without_copies_grad,
        11,
        &[2, 3],
        &[3],
    );
}

#[differentiate(wrt(p))]
fn dense_layer(p: &Dense, x: &Tensor<f64>) -> Tensor<f64> {
    x.linear(&p.w, &p.b).tanh()
}

#[differentiate(wrt(p))]
fn composed_layers(p: &Dense, x: &Tensor<f64>) -> f64 {
    dense_layer(p, x).sum() + dense_layer(p, &x.tanh()).mean()
}

#[test]
fn calls_pass_parameter_sets_through() {
    let mut seed = 11;
    let p = Dense {
        w: tensor(&mut seed, &[3, 2]),
        b: tensor(&mut seed, &[3]),
    };
    let x = tensor(&mut seed, &[5, 2]);
    let (value, grad) = composed_layers_grad(&p, &x);
    assert_eq!(value.to_bits(), composed_layers(&p, &x).to_bits());
    let h = 1e-6;
    for k in 0..6 {
        let mut plus = p.clone();
        plus.w.data_mut()[k] += h;
        let mut minus = p.clone();
        minus.w.data_mut()[k] -= h;
        let fd = (composed_layers(&plus, &x) - composed_layers(&minus, &x)) / (2.0 * h);
        assert!(autodiff::relative_error(grad.w.data()[k], fd) < 1e-6);
    }
}

#[derive(Differentiable, Clone, Debug)]
struct Deep {
    layers: Vec<Dense>,
}

#[differentiate(wrt(p))]
fn deep_loss(p: &Deep, x: &Tensor<f64>) -> f64 {
    let mut h = x.clone();
    for layer in &p.layers {
        h = h.linear(&layer.w, &layer.b).tanh();
    }
    let mut extra = 0.0;
    for i in 0..p.layers.len() {
        extra += (&p.layers[i].b * &p.layers[i].b).sum();
    }
    h.sum() + extra
}

#[test]
fn loops_over_vectors_of_layers() {
    let mut seed = 99;
    let p = Deep {
        layers: vec![
            Dense {
                w: tensor(&mut seed, &[4, 3]),
                b: tensor(&mut seed, &[4]),
            },
            Dense {
                w: tensor(&mut seed, &[2, 4]),
                b: tensor(&mut seed, &[2]),
            },
        ],
    };
    let x = tensor(&mut seed, &[5, 3]);
    let (value, grad) = deep_loss_grad(&p, &x);
    assert_eq!(value.to_bits(), deep_loss(&p, &x).to_bits());
    let h = 1e-6;
    for l in 0..2 {
        for (which, len) in [
            (0, p.layers[l].w.data().len()),
            (1, p.layers[l].b.data().len()),
        ] {
            for k in 0..len {
                let mut plus = p.clone();
                let mut minus = p.clone();
                let (tp, tm) = if which == 0 {
                    (&mut plus.layers[l].w, &mut minus.layers[l].w)
                } else {
                    (&mut plus.layers[l].b, &mut minus.layers[l].b)
                };
                tp.data_mut()[k] += h;
                tm.data_mut()[k] -= h;
                let fd = (deep_loss(&plus, &x) - deep_loss(&minus, &x)) / (2.0 * h);
                let g = if which == 0 {
                    &grad.layers[l].w
                } else {
                    &grad.layers[l].b
                };
                assert!(
                    autodiff::relative_error(g.data()[k], fd) < 1e-6,
                    "layer {l} {which}[{k}]"
                );
            }
        }
    }
}

#[test]
#[should_panic(
    expected = "backward of `dense_layer`: the output cotangent has shape [2, 3], but the output has shape [5, 3]"
)]
fn backward_rejects_a_tensor_cotangent_of_the_wrong_shape() {
    let mut seed = 5;
    let p = Dense {
        w: tensor(&mut seed, &[3, 2]),
        b: tensor(&mut seed, &[3]),
    };
    let x = tensor(&mut seed, &[5, 2]);
    let (y, pullback) = dense_layer_pullback(&p, &x);
    assert_eq!(y, dense_layer(&p, &x));
    pullback.backward(Tensor::zeros(&[2, 3]));
}

// `h` is saved and read in a loop through `&h`, by `shape()` (whose first axis counts the
// loop's trips) and by `mean()`: never moved, so saved in place
#[differentiate]
fn tensor_read_in_a_loop(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let h = a.tanh();
    let rows: usize = h.shape()[0];
    let mut acc = b.sum();
    for k in 0..rows {
        acc = acc + (&h * b).sum() * (k as f64 + 1.0);
    }
    acc + h.mean()
}

#[test]
fn tensors_read_in_loops_saved_in_place() {
    check_two_tensor_function(
        tensor_read_in_a_loop,
        tensor_read_in_a_loop_grad,
        13,
        &[2, 3],
        &[3],
    );
}

// the batch size of a tensor being differentiated, as an integer declared as such: no
// derivative passes through it, and it divides as a float
#[differentiate]
fn batch_mean(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let h = &a.tanh() * b;
    let n: usize = a.shape()[0];
    let rows: usize = h.shape()[0];
    h.sum() / (n * rows) as f64
}

#[test]
fn integer_shapes_of_differentiated_tensors() {
    check_two_tensor_function(batch_mean, batch_mean_grad, 17, &[3, 2], &[2]);
}

// `shape()` of a tensor being differentiated, used directly: its entries are integers, so
// `x.shape()[0] as f64` is a constant; also through a named shape read twice
#[differentiate]
fn shape_read_directly(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let h = &a.tanh() * b;
    let shape = h.shape();
    let cells = (shape[0] * shape[1]) as f64;
    h.sum() / (a.shape()[0] as f64) + h.mean() * cells
}

#[test]
fn shapes_of_differentiated_tensors_used_directly() {
    check_two_tensor_function(
        shape_read_directly,
        shape_read_directly_grad,
        19,
        &[3, 2],
        &[2],
    );
}

// a recurrent loop whose bias add and whose `sum`, `mean`, `reshape` and `sum_axis` read their
// operands only for their shapes: the pullback keeps dimensions for those, not tensors
#[differentiate(wrt(w, b))]
fn recurrent(w: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let mut h = w.tanh();
    let mut total = 0.0;
    for _ in 0..3 {
        let z = &h.matmul(w) + b;
        total += z.mean() + (&z - b).sum_axis(0).sum();
        h = z.reshape(&[2, 2]).tanh();
    }
    total + h.sum()
}

#[test]
fn shapes_kept_for_sums_and_broadcasts_give_the_gradient() {
    check_two_tensor_function(recurrent, recurrent_grad, 23, &[2, 2], &[2]);
}

// the elementwise functions of tensors, under the float methods' names, each through its own
// rule, with `sin` and `cos` of one tensor side by side
#[differentiate]
fn elementwise_functions(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let positive = &a.powi(2) + 1.0;
    let waves = &a.sin() * &a.cos();
    let e = (&b.abs() * 0.5).exp();
    (&positive.ln() + &positive.sqrt()).sum() + (&waves * &e).mean() + b.powi(3).sum()
}

#[test]
fn elementwise_tensor_functions_match_finite_differences() {
    check_two_tensor_function(
        elementwise_functions,
        elementwise_functions_grad,
        31,
        &[2, 3],
        &[2, 3],
    );
}

// a recurrent loop whose state is read by the product at the start of an iteration and by
// `tanh`'s rule at its end: each record keeps the state once, the next iteration's record (or
// the loop's result, for the last) holding the one passed on; the output layer reads the
// final state in full
#[differentiate(wrt(w, b))]
fn recurrent_with_output(w: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let mut h = w.tanh();
    for _ in 0..4 {
        let z = &h.matmul(w) + b;
        h = z.tanh();
    }
    h.matmul(w).sum()
}

#[test]
fn states_held_by_the_next_record_give_the_gradient() {
    check_two_tensor_function(
        recurrent_with_output,
        recurrent_with_output_grad,
        37,
        &[3, 3],
        &[3],
    );
    let mut seed = 41;
    let (w, b) = (tensor(&mut seed, &[3, 3]), tensor(&mut seed, &[3]));
    let (_, pullback) = recurrent_with_output_pullback(&w, &b);
    let (value, (dw, db)) = recurrent_with_output_grad(&w, &b);
    assert_eq!(value.to_bits(), recurrent_with_output(&w, &b).to_bits());
    assert_eq!((dw, db), pullback.backward(1.0));
}

// `transpose` of 2-D tensors, inside a product and through an elementwise function
#[differentiate]
fn transposed(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    let gram = a.matmul(&a.transpose());
    let h = b.transpose().tanh();
    (&gram * 0.5).sum() + h.matmul(a).sum()
}

#[test]
fn transposed_tensors_match_finite_differences() {
    check_two_tensor_function(transposed, transposed_grad, 43, &[2, 3], &[2, 2]);
}

// Every operation of the contract in one function, with a zeros tensor shaped from the
// input's `shape()` (`[n, 3]`: integers, not the function's float).
#[differentiate(wrt(w, b, w2))]
fn every_operation(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    b: &Tensor<f64>,
    w2: &Tensor<f64>,
    labels: &[usize],
) -> f64 {
    let c = x.conv2d(w, b, 1, 1).relu().max_pool2d(2);
    let n = c.shape()[0];
    let flat = c.reshape(&[n, 8]);
    let h = flat.matmul(w2).tanh();
    let s = &h * 0.5 + 1.0;
    let z = s.sigmoid() - &h;
    let lp = z.log_softmax(1);
    let target = Tensor::zeros(&[n, 3]);
    lp.cross_entropy(labels) + z.mse(&target) + h.sum_axis(0).sum() * 0.1 + (&z * &z).mean()
}

#[test]
fn every_contract_operation_matches_finite_differences() {
    let mut seed = 11;
    let x = tensor(&mut seed, &[2, 1, 4, 4]);
    let w = tensor(&mut seed, &[2, 1, 3, 3]);
    let b = tensor(&mut seed, &[2]);
    let w2 = tensor(&mut seed, &[8, 3]);
    let labels = [0usize, 2];
    let (value, (d_w, d_b, d_w2)) = every_operation_grad(&x, &w, &b, &w2, &labels);
    assert_eq!(value, every_operation(&x, &w, &b, &w2, &labels));
    let mut at: Vec<f64> = w.data().to_vec();
    at.extend(b.data());
    at.extend(w2.data());
    let mut ours: Vec<f64> = d_w.data().to_vec();
    ours.extend(d_b.data());
    ours.extend(d_w2.data());
    let f = |p: &[f64]| {
        let w = Tensor::from_vec(p[..18].to_vec(), &[2, 1, 3, 3]);
        let b = Tensor::from_vec(p[18..20].to_vec(), &[2]);
        let w2 = Tensor::from_vec(p[20..].to_vec(), &[8, 3]);
        every_operation(&x, &w, &b, &w2, &labels)
    };
    let error = check_gradient(f, &at, &ours);
    assert!(error < 1e-6, "error {error:e}");
}

/// Single-head self-attention reading its head size from a parameter's shape: the field
/// `p.wq` is a tensor because `x.matmul(&p.wq)` takes one.
mod attention {
    use super::tensor;
    use autodiff::prelude::*;
    use autodiff::Tensor;

    #[derive(Differentiable, Clone)]
    struct Head {
        wq: Tensor<f64>,
        wk: Tensor<f64>,
        wv: Tensor<f64>,
    }

    #[differentiate(wrt(p))]
    fn attention_loss(p: &Head, x: &Tensor<f64>, target: &Tensor<f64>) -> f64 {
        let q = x.matmul(&p.wq);
        let k = x.matmul(&p.wk);
        let v = x.matmul(&p.wv);
        let d = p.wq.shape()[1] as f64;
        let scores = q.matmul(&k.transpose()) * (1.0 / d.sqrt());
        let weights = scores.log_softmax(1).exp();
        let out = weights.matmul(&v);
        out.mse(target) + (&out * &out).sum_axis(1).sqrt().mean() * 0.1
    }

    #[test]
    fn attention_gradient_matches_finite_differences() {
        let mut seed = 0x5eed_a77e_u64;
        let p = Head {
            wq: tensor(&mut seed, &[4, 3]),
            wk: tensor(&mut seed, &[4, 3]),
            wv: tensor(&mut seed, &[4, 3]),
        };
        let x = tensor(&mut seed, &[5, 4]);
        let target = tensor(&mut seed, &[5, 3]);
        let (value, g) = attention_loss_grad(&p, &x, &target);
        assert_eq!(value.to_bits(), attention_loss(&p, &x, &target).to_bits());
        let flat = |h: &Head| [h.wq.data(), h.wk.data(), h.wv.data()].concat();
        let head = |v: &[f64]| Head {
            wq: Tensor::from_vec(v[..12].to_vec(), &[4, 3]),
            wk: Tensor::from_vec(v[12..24].to_vec(), &[4, 3]),
            wv: Tensor::from_vec(v[24..].to_vec(), &[4, 3]),
        };
        let error = check_gradient(
            |v: &[f64]| attention_loss(&head(v), &x, &target),
            &flat(&p),
            &flat(&g),
        );
        assert!(error < 1e-7, "relative error {error}");
    }
}
