//! nalgebra matrices and vectors inside `#[differentiate]`, against finite differences.

use autodiff::nalgebra::{DMatrix, DVector, Matrix3, Vector3};
use autodiff::prelude::*;

// f(W, x) = ||tanh-free W x + b||^2 / 2 + x·x  =>  dW = r xᵀ, dx = Wᵀ r + 2x, db = r
#[differentiate]
fn quadratic(w: &DMatrix<f64>, x: &DVector<f64>, b: &DVector<f64>) -> f64 {
    let r: DVector<f64> = w * x + b;
    r.norm_squared() * 0.5 + x.dot(x)
}

#[test]
fn matrix_vector_products_and_norms() {
    let w = DMatrix::from_fn(3, 4, |i, j| (i as f64 - j as f64 * 0.5).sin());
    let x = DVector::from_fn(4, |i, _| 0.3 * i as f64 - 0.4);
    let b = DVector::from_fn(3, |i, _| 0.1 * i as f64);
    let (value, (dw, dx, db)) = quadratic_grad(&w, &x, &b);
    assert_eq!(value.to_bits(), quadratic(&w, &x, &b).to_bits());
    let r = &w * &x + &b;
    let expected_dw = &r * x.transpose();
    let expected_dx = w.transpose() * &r + &x * 2.0;
    assert!((dw - expected_dw).norm() < 1e-12);
    assert!((dx - expected_dx).norm() < 1e-12);
    assert!((db - r).norm() < 1e-12);
}

// g(a, b) = (a × b)·a + |a| + trace(M)·det(M)  with static types
#[differentiate]
fn small_static(a: &Vector3<f64>, b: &Vector3<f64>, m: &Matrix3<f64>) -> f64 {
    let c: Vector3<f64> = a.cross(b);
    c.dot(a) + a.norm() + m.trace() * m.determinant() + a.component_mul(b).sum()
}

#[test]
fn static_vectors_and_matrices() {
    let a = Vector3::new(0.3, -1.2, 0.8);
    let b = Vector3::new(1.1, 0.4, -0.6);
    let m = Matrix3::new(1.0, 0.2, -0.3, 0.5, 2.0, 0.1, -0.4, 0.3, 1.5);
    let (value, (da, db, dm)) = small_static_grad(&a, &b, &m);
    assert_eq!(value.to_bits(), small_static(&a, &b, &m).to_bits());
    let h = 1e-6;
    for k in 0..3 {
        let mut e = Vector3::zeros();
        e[k] = h;
        let fd_a = (small_static(&(a + e), &b, &m) - small_static(&(a - e), &b, &m)) / (2.0 * h);
        let fd_b = (small_static(&a, &(b + e), &m) - small_static(&a, &(b - e), &m)) / (2.0 * h);
        assert!(
            autodiff::relative_error(da[k], fd_a) < 1e-7,
            "{} vs {fd_a}",
            da[k]
        );
        assert!(
            autodiff::relative_error(db[k], fd_b) < 1e-7,
            "{} vs {fd_b}",
            db[k]
        );
    }
    for k in 0..9 {
        let mut e = Matrix3::zeros();
        e[k] = h;
        let fd = (small_static(&a, &b, &(m + e)) - small_static(&a, &b, &(m - e))) / (2.0 * h);
        assert!(
            autodiff::relative_error(dm[k], fd) < 1e-7,
            "{} vs {fd}",
            dm[k]
        );
    }
}

// h(M, v) = Σᵢ M[(i, i)] v[i]² + M[(0, 1)]  =>  dM = diag(v²) + e₀₁, dv = 2 diag(M) ⊙ v
#[differentiate]
fn indexed(m: &DMatrix<f64>, v: &DVector<f64>) -> f64 {
    let mut s = m[(0, 1)];
    for i in 0..v.len() {
        s += m[(i, i)] * v[i] * v[i];
    }
    s
}

#[test]
fn element_reads_of_matrices_and_vectors() {
    let m = DMatrix::from_fn(3, 3, |i, j| 1.0 + i as f64 - 0.5 * j as f64);
    let v = DVector::from_fn(3, |i, _| 0.5 - i as f64);
    let (value, (dm, dv)) = indexed_grad(&m, &v);
    assert_eq!(value.to_bits(), indexed(&m, &v).to_bits());
    let mut expected = DMatrix::zeros(3, 3);
    for i in 0..3 {
        expected[(i, i)] = v[i] * v[i];
    }
    expected[(0, 1)] += 1.0;
    assert!((dm - expected).norm() < 1e-14);
    for i in 0..3 {
        assert!((dv[i] - 2.0 * m[(i, i)] * v[i]).abs() < 1e-14);
    }
}

// m(W, X, s) = Σ (Y ⊙ Y - s Y) + s Σ sin.(W X) with Y = W tanh.(W X) + X (checked against
// finite differences): `h`, `y` and `u` are saved for the backward pass and only borrowed by
// the forward pass, also by the operators that take them by value, so the pullback keeps
// them without copies
#[differentiate]
fn saved_operands(w: &DMatrix<f64>, x: &DMatrix<f64>, s: f64) -> f64 {
    let h: DMatrix<f64> = (w * x).map(|v| v.tanh());
    let y: DMatrix<f64> = w * h + x;
    let t: DMatrix<f64> = y.component_mul(&y) - y * s;
    let u: DMatrix<f64> = (w * x).map(|v| v.sin());
    -(-t).sum() + (s * u).sum()
}

#[test]
fn matrices_saved_without_copies() {
    let w = DMatrix::from_fn(3, 3, |i, j| 0.4 * (i as f64 + 1.0) - 0.3 * j as f64);
    let x = DMatrix::from_fn(3, 2, |i, j| 0.2 * i as f64 - 0.5 * j as f64 + 0.1);
    let s = 0.7;
    let (value, (dw, dx, ds)) = saved_operands_grad(&w, &x, s);
    assert_eq!(value.to_bits(), saved_operands(&w, &x, s).to_bits());
    let (value, pullback) = saved_operands_pullback(&w, &x, s);
    assert_eq!(value.to_bits(), saved_operands(&w, &x, s).to_bits());
    let (pw, px, ps) = pullback.backward(1.0);
    assert_eq!((&pw, &px, ps.to_bits()), (&dw, &dx, ds.to_bits()));
    let h = 1e-6;
    for k in 0..9 {
        let mut e = DMatrix::zeros(3, 3);
        e[k] = h;
        let fd =
            (saved_operands(&(&w + &e), &x, s) - saved_operands(&(&w - &e), &x, s)) / (2.0 * h);
        assert!(
            autodiff::relative_error(dw[k], fd) < 1e-7,
            "w[{k}]: {} vs {fd}",
            dw[k]
        );
    }
    for k in 0..6 {
        let mut e = DMatrix::zeros(3, 2);
        e[k] = h;
        let fd =
            (saved_operands(&w, &(&x + &e), s) - saved_operands(&w, &(&x - &e), s)) / (2.0 * h);
        assert!(
            autodiff::relative_error(dx[k], fd) < 1e-7,
            "x[{k}]: {} vs {fd}",
            dx[k]
        );
    }
    let fd = (saved_operands(&w, &x, s + h) - saved_operands(&w, &x, s - h)) / (2.0 * h);
    assert!(autodiff::relative_error(ds, fd) < 1e-7, "s: {ds} vs {fd}");
}

// k(A, b) = Σ (A⁻¹ b) + trace(A⁻¹)  (checked against finite differences)
#[differentiate]
fn solve_and_invert(a: &DMatrix<f64>, b: &DVector<f64>) -> f64 {
    let x: DVector<f64> = a.clone().lu().solve(b).unwrap();
    let inv: DMatrix<f64> = a.clone().try_inverse().unwrap();
    x.sum() + inv.trace()
}

#[test]
fn linear_solves_and_inverses() {
    let a = DMatrix::from_row_slice(3, 3, &[4.0, 1.0, -0.5, 0.3, 3.0, 0.2, -0.4, 0.6, 2.5]);
    let b = DVector::from_vec(vec![1.0, -2.0, 0.5]);
    let (value, (da, db)) = solve_and_invert_grad(&a, &b);
    assert!(autodiff::relative_error(value, solve_and_invert(&a, &b)) < 1e-15);
    let h = 1e-6;
    for k in 0..9 {
        let mut e = DMatrix::zeros(3, 3);
        e[k] = h;
        let fd = (solve_and_invert(&(&a + &e), &b) - solve_and_invert(&(&a - &e), &b)) / (2.0 * h);
        assert!(
            autodiff::relative_error(da[k], fd) < 1e-7,
            "a[{k}]: {} vs {fd}",
            da[k]
        );
    }
    for k in 0..3 {
        let mut e = DVector::zeros(3);
        e[k] = h;
        let fd = (solve_and_invert(&a, &(&b + &e)) - solve_and_invert(&a, &(&b - &e))) / (2.0 * h);
        assert!(
            autodiff::relative_error(db[k], fd) < 1e-7,
            "b[{k}]: {} vs {fd}",
            db[k]
        );
    }
}

#[differentiate]
fn scaled(m: &DMatrix<f64>) -> DMatrix<f64> {
    m * 2.0
}

#[test]
#[should_panic(
    expected = "backward of `scaled`: the output cotangent has shape [3, 3], but the output has shape [2, 2]"
)]
fn backward_rejects_a_matrix_cotangent_of_the_wrong_shape() {
    let m = DMatrix::from_element(2, 2, 1.5);
    let (y, pullback) = scaled_pullback(&m);
    assert_eq!(y, scaled(&m));
    pullback.backward(DMatrix::zeros(3, 3));
}

mod elementwise_maps {
    //! `m.map(|v| ...)`: the closure is differentiated as a scalar function of its element.

    use autodiff::nalgebra::{DMatrix, DVector, Vector3};
    use autodiff::prelude::*;

    /// Central differences of `f` in every element of `m`.
    fn finite_differences(m: &DMatrix<f64>, f: impl Fn(&DMatrix<f64>) -> f64) -> DMatrix<f64> {
        let h = 1e-6;
        DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| {
            let (mut up, mut down) = (m.clone(), m.clone());
            up[(i, j)] += h;
            down[(i, j)] -= h;
            (f(&up) - f(&down)) / (2.0 * h)
        })
    }

    fn assert_close(got: &DMatrix<f64>, want: &DMatrix<f64>) {
        assert_eq!(got.shape(), want.shape());
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(autodiff::relative_error(*g, *w) < 1e-6, "{got} vs {want}");
        }
    }

    // A two-layer perceptron on a batch (columns are samples):
    // loss = |W2 tanh(W1 X + b1 1ᵀ) + b2 1ᵀ − Y|² / (2n)
    #[differentiate(wrt(w1, b1, w2, b2))]
    fn mlp_loss(
        w1: &DMatrix<f64>,
        b1: &DVector<f64>,
        w2: &DMatrix<f64>,
        b2: &DVector<f64>,
        x: &DMatrix<f64>,
        y: &DMatrix<f64>,
        ones: &DMatrix<f64>,
    ) -> f64 {
        let hidden = (w1 * x + b1 * ones).map(|v| v.tanh());
        let out = w2 * hidden + b2 * ones;
        let r = out - y;
        r.norm_squared() * 0.5 / x.ncols() as f64
    }

    #[test]
    fn a_two_layer_perceptron_matches_finite_differences() {
        let (inputs, hidden, outputs, batch) = (3, 5, 2, 4);
        let w1 = DMatrix::from_fn(hidden, inputs, |i, j| ((i * 3 + j) as f64 * 0.7).sin());
        let b1 = DVector::from_fn(hidden, |i, _| 0.1 * i as f64 - 0.2);
        let w2 = DMatrix::from_fn(outputs, hidden, |i, j| ((i + 2 * j) as f64 * 0.3).cos());
        let b2 = DVector::from_fn(outputs, |i, _| 0.05 * i as f64);
        let x = DMatrix::from_fn(inputs, batch, |i, j| (i as f64 - j as f64) * 0.4);
        let y = DMatrix::from_fn(outputs, batch, |i, j| ((i + j) as f64).sin());
        let ones = DMatrix::from_element(1, batch, 1.0);
        let loss = |w1: &DMatrix<f64>, b1: &DVector<f64>, w2: &DMatrix<f64>, b2: &DVector<f64>| {
            mlp_loss(w1, b1, w2, b2, &x, &y, &ones)
        };
        let (value, (dw1, db1, dw2, db2)) = mlp_loss_grad(&w1, &b1, &w2, &b2, &x, &y, &ones);
        assert_eq!(value.to_bits(), loss(&w1, &b1, &w2, &b2).to_bits());
        assert_close(&dw1, &finite_differences(&w1, |w1| loss(w1, &b1, &w2, &b2)));
        assert_close(&dw2, &finite_differences(&w2, |w2| loss(&w1, &b1, w2, &b2)));
        let b1m = DMatrix::from_column_slice(hidden, 1, b1.as_slice());
        let fd_b1 = finite_differences(&b1m, |b| {
            loss(&w1, &DVector::from_column_slice(b.as_slice()), &w2, &b2)
        });
        assert_close(
            &DMatrix::from_column_slice(hidden, 1, db1.as_slice()),
            &fd_b1,
        );
        let b2m = DMatrix::from_column_slice(outputs, 1, b2.as_slice());
        let fd_b2 = finite_differences(&b2m, |b| {
            loss(&w1, &b1, &w2, &DVector::from_column_slice(b.as_slice()))
        });
        assert_close(
            &DMatrix::from_column_slice(outputs, 1, db2.as_slice()),
            &fd_b2,
        );
    }

    // a generic function whose closure mentions none of its generic parameters: the lifted
    // closure's items take them all, so they are named at every use (`T` only names the
    // type of an unused parameter: converting a `T` to `f64` by `to_f64` would lose its
    // derivative in the all-active pullback that callers use, and is refused)
    // d/dm = (1 - tanh² m) · 1.5 · Σ weights
    #[differentiate(wrt(m))]
    fn generic_scale<T: Float, const N: usize>(
        m: &DMatrix<f64>,
        _unit: T,
        weights: [f64; N],
    ) -> f64 {
        let mut total = 0.0;
        for w in weights {
            total += w;
        }
        m.map(|v| v.tanh()).sum() * 1.5 * total
    }

    #[test]
    fn closures_of_generic_functions_match_the_analytic_gradient() {
        let m = DMatrix::from_fn(2, 3, |i, j| i as f64 * 0.4 - j as f64 * 0.3);
        let (value, d) = generic_scale_grad(&m, 1.5f32, [0.5, 0.25]);
        assert_eq!(
            value.to_bits(),
            generic_scale(&m, 1.5f32, [0.5, 0.25]).to_bits()
        );
        let want = m.map(|v| (1.0 - v.tanh().powi(2)) * 1.5 * 0.75);
        assert_close(&d, &want);
        assert_close(
            &d,
            &finite_differences(&m, |m| generic_scale(m, 1.5f32, [0.5, 0.25])),
        );
    }

    // closures with branches and locals, a map of a map, and a map in a loop
    #[differentiate]
    fn shapes_of_closures(m: &DMatrix<f64>) -> f64 {
        let relu = m.map(|v| if v > 0.0 { v } else { 0.01 * v });
        let soft = relu.map(|v| {
            let e = v.exp();
            (1.0 + e).ln() * v
        });
        let mut acc = soft.sum();
        for _ in 0..3 {
            let s = (m * 0.5).map(|v: f64| v.sin() * v);
            acc = acc + s.component_mul(m).sum();
        }
        acc
    }

    #[test]
    fn closures_with_branches_locals_and_loops_match_finite_differences() {
        let m = DMatrix::from_fn(3, 2, |i, j| (i as f64 * 0.8 - j as f64 * 1.1) + 0.05);
        let (value, d) = shapes_of_closures_grad(&m);
        assert_eq!(value.to_bits(), shapes_of_closures(&m).to_bits());
        assert_close(&d, &finite_differences(&m, shapes_of_closures));
    }

    // closures whose pullbacks are rebuilt from the element (`sin`, `(v v).sin()`), from the
    // result (`tanh`, `exp`), from both (`v.powf(v)`), or kept because they need more
    // (`v.exp().sin()`), at the top level, in a loop and on a static vector
    #[differentiate]
    fn maps_rebuilt_or_kept(m: &DMatrix<f64>, s: &Vector3<f64>) -> f64 {
        let a = m.map(|v| v.sin()) + m.map(|v| (v * v).sin());
        let b = m.map(|v| v.tanh()).component_mul(&m.map(|v| v.exp()));
        let c = m.map(|v| v.powf(v)) + m.map(|v| v.exp().sin());
        let mut acc = (a + b + c).sum();
        for k in 0..2 {
            let scaled = m * (k as f64 + 1.0);
            acc = acc + scaled.map(|v| v.tanh()).sum() * s.map(|v| v.sin()).sum();
        }
        acc
    }

    #[test]
    fn rebuilt_and_kept_pullbacks_match_finite_differences() {
        let m = DMatrix::from_fn(3, 2, |i, j| 0.2 + 0.3 * i as f64 + 0.45 * j as f64);
        let s = Vector3::new(0.3, -0.8, 1.1);
        let (value, (dm, ds)) = maps_rebuilt_or_kept_grad(&m, &s);
        assert_eq!(value.to_bits(), maps_rebuilt_or_kept(&m, &s).to_bits());
        let (_, pullback) = maps_rebuilt_or_kept_pullback(&m, &s);
        assert_eq!(pullback.backward(1.0), (dm.clone(), ds));
        assert_close(
            &dm,
            &finite_differences(&m, |m| maps_rebuilt_or_kept(m, &s)),
        );
        for k in 0..3 {
            let (mut up, mut down) = (s, s);
            up[k] += 1e-6;
            down[k] -= 1e-6;
            let fd = (maps_rebuilt_or_kept(&m, &up) - maps_rebuilt_or_kept(&m, &down)) / 2e-6;
            assert!(
                autodiff::relative_error(ds[k], fd) < 1e-6,
                "{} vs {fd}",
                ds[k]
            );
        }
    }

    // a map of a matrix the gradient does not flow through needs no derivative
    #[differentiate(wrt(x))]
    fn map_of_a_constant(x: &Vector3<f64>, w: &Vector3<f64>) -> f64 {
        let c = w.map(|v| v.abs().sqrt());
        x.map(|v| v * v).dot(&c)
    }

    // y = Σ sqrt|w_k| x_k²  =>  dy/dx_k = 2 sqrt|w_k| x_k
    #[test]
    fn a_map_without_derivative_is_left_as_written() {
        let x = Vector3::new(0.5, -1.0, 2.0);
        let w = Vector3::new(4.0, -9.0, 0.25);
        let (_, d) = map_of_a_constant_grad(&x, &w);
        for k in 0..3 {
            assert!((d[k] - 2.0 * w[k].abs().sqrt() * x[k]).abs() < 1e-15);
        }
    }

    // in f32: y = Σ sigmoid(m)  =>  dm = s (1 − s)
    #[differentiate]
    fn sigmoid_sum(m: &DMatrix<f32>) -> f32 {
        m.map(|v| 1.0 / (1.0 + (-v).exp())).sum()
    }

    #[test]
    fn maps_work_in_f32() {
        let m = DMatrix::from_fn(2, 3, |i, j| i as f32 - j as f32 * 0.5);
        let (_, d) = sigmoid_sum_grad(&m);
        for (dk, v) in d.iter().zip(m.iter()) {
            let s = 1.0 / (1.0 + (-v).exp());
            assert!((dk - s * (1.0 - s)).abs() < 1e-6);
        }
    }

    #[derive(Differentiable, Clone)]
    struct Layer {
        w: DMatrix<f64>,
        b: DVector<f64>,
    }

    // Σ tanh(W X + b 1ᵀ) over a parameter struct of matrices  =>  dW = (1 − H²) Xᵀ,
    // db = (1 − H²) 1, checked by finite differences
    #[differentiate(wrt(p))]
    fn layer_sum(p: &Layer, x: &DMatrix<f64>, ones: &DMatrix<f64>) -> f64 {
        let h: DMatrix<f64> = (&p.w * x + &p.b * ones).map(|v| v.tanh());
        h.sum()
    }

    #[test]
    fn parameter_structs_of_matrices_get_matrix_gradients() {
        let p = Layer {
            w: DMatrix::from_fn(3, 2, |i, j| (i as f64 + 2.0 * j as f64) * 0.3 - 0.5),
            b: DVector::from_fn(3, |i, _| 0.2 * i as f64 - 0.1),
        };
        let x = DMatrix::from_fn(2, 4, |i, j| (i as f64 * 0.5 - j as f64 * 0.25).sin());
        let ones = DMatrix::from_element(1, 4, 1.0);
        let (_, grad) = layer_sum_grad(&p, &x, &ones);
        let fd_w = finite_differences(&p.w, |w| {
            let q = Layer {
                w: w.clone(),
                b: p.b.clone(),
            };
            layer_sum(&q, &x, &ones)
        });
        assert_close(&grad.w, &fd_w);
        let b = DMatrix::from_column_slice(3, 1, p.b.as_slice());
        let fd_b = finite_differences(&b, |b| {
            let q = Layer {
                w: p.w.clone(),
                b: DVector::from_column_slice(b.as_slice()),
            };
            layer_sum(&q, &x, &ones)
        });
        assert_close(&DMatrix::from_column_slice(3, 1, grad.b.as_slice()), &fd_b);
    }

    #[test]
    fn the_pullback_keeps_one_saved_value_per_element() {
        // tanh's pullback keeps tanh(v): one f64 per element of the 5×4 hidden layer
        let m = DMatrix::from_element(5, 4, 0.3);
        let (_, pullback) = shapes_of_closures_pullback(&m);
        assert!(pullback.saved_bytes() > 0);
        let (_, pullback) = mlp_loss_pullback(
            &DMatrix::from_element(5, 3, 0.1),
            &DVector::from_element(5, 0.0),
            &DMatrix::from_element(2, 5, 0.1),
            &DVector::from_element(2, 0.0),
            &DMatrix::from_element(3, 4, 1.0),
            &DMatrix::from_element(2, 4, 1.0),
            &DMatrix::from_element(1, 4, 1.0),
        );
        let _ = pullback.backward(1.0);
    }

    // closures reading variables of the function: a float computed before (`s2`), a float
    // parameter (`scale`), an integer (`n`), one variable twice; their cotangents are summed
    // over the elements
    #[differentiate]
    fn closures_reading_variables(m: &DMatrix<f64>, scale: f64, n: i32) -> f64 {
        let s2 = scale * 2.0;
        let y = m.map(|v| (v * s2).tanh().powi(n) + scale * scale);
        let mut shift = 0.5;
        shift = shift * scale;
        let z = y.map(|v| (v - shift).exp());
        z.sum()
    }

    // in a loop, reading a number the loop changes and one converted from its counter
    #[differentiate]
    fn closures_in_a_loop(m: &DMatrix<f64>, scale: f64) -> f64 {
        let mut acc = 0.0;
        let mut s = scale;
        for k in 0..3 {
            let kf = k as f64;
            let y = m.map(|v| (v * s).sin() + kf);
            acc += y.sum();
            s = s * 1.5;
        }
        acc
    }

    // only the captured number varies: d/dscale = Σ m, d/dm = scale everywhere
    #[differentiate(wrt(scale))]
    fn constant_matrix_scaled(m: &DMatrix<f64>, scale: f64) -> f64 {
        m.map(|v| v * scale).sum()
    }

    #[test]
    fn closures_reading_variables_match_finite_differences() {
        let m = DMatrix::from_fn(2, 3, |i, j| 0.3 * i as f64 - 0.2 * j as f64 + 0.1);
        for (scale, n) in [(0.8, 3), (-1.3, 2)] {
            let (value, (dm, dscale)) = closures_reading_variables_grad(&m, scale, n);
            assert_eq!(
                value.to_bits(),
                closures_reading_variables(&m, scale, n).to_bits()
            );
            assert_close(
                &dm,
                &finite_differences(&m, |m| closures_reading_variables(m, scale, n)),
            );
            let h = 1e-6;
            let fd = (closures_reading_variables(&m, scale + h, n)
                - closures_reading_variables(&m, scale - h, n))
                / (2.0 * h);
            assert!(
                autodiff::relative_error(dscale, fd) < 1e-6,
                "{dscale} vs {fd}"
            );
        }
        let (value, (dm, dscale)) = closures_in_a_loop_grad(&m, 0.7);
        assert_eq!(value.to_bits(), closures_in_a_loop(&m, 0.7).to_bits());
        assert_close(&dm, &finite_differences(&m, |m| closures_in_a_loop(m, 0.7)));
        let h = 1e-6;
        let fd = (closures_in_a_loop(&m, 0.7 + h) - closures_in_a_loop(&m, 0.7 - h)) / (2.0 * h);
        assert!(
            autodiff::relative_error(dscale, fd) < 1e-6,
            "{dscale} vs {fd}"
        );
        let (value, dscale) = constant_matrix_scaled_grad(&m, 2.5);
        assert_eq!(value, constant_matrix_scaled(&m, 2.5));
        assert!(autodiff::relative_error(dscale, m.sum()) < 1e-12);
    }

    // two outputs: `jacobian` runs the rows' backward passes together, each summing its own
    // cotangent of `scale`: row 0 is d/d(m, scale) of Σ sin(m scale), row 1 of 2 scale
    #[differentiate]
    fn map_and_scale(m: &DMatrix<f64>, scale: f64) -> [f64; 2] {
        let y = m.map(|v| (v * scale).sin());
        [y.sum(), scale * 2.0]
    }

    #[test]
    fn jacobian_rows_sum_their_own_captured_cotangents() {
        let m = DMatrix::from_fn(2, 2, |i, j| 0.4 * i as f64 - 0.3 * j as f64 + 0.1);
        let (_, pullback) = map_and_scale_pullback(&m, 0.7);
        let rows = pullback.jacobian();
        assert_eq!(rows[0], pullback.backward([1.0, 0.0]));
        assert_eq!(rows[1], pullback.backward([0.0, 1.0]));
        let want_scale: f64 = m.iter().map(|v| v * (v * 0.7).cos()).sum();
        assert!(autodiff::relative_error(rows[0].1, want_scale) < 1e-14);
        assert_eq!(rows[1].1, 2.0);
        assert!(rows[1].0.iter().all(|&d| d == 0.0));
    }
}

// `let (rows, cols) = m.shape();`: two integers, through which no derivative passes
// value = mean(m) · rows  =>  dm = rows / (rows cols) = 1 / cols everywhere
#[differentiate]
fn scaled_mean(m: &DMatrix<f64>) -> f64 {
    let (rows, cols) = m.shape();
    m.sum() / (rows * cols) as f64 * rows as f64
}

#[test]
fn matrix_shapes_destructured_are_constants() {
    let m = DMatrix::from_fn(2, 4, |i, j| (i as f64 + 0.5) * (j as f64 - 1.0));
    let (value, dm) = scaled_mean_grad(&m);
    assert_eq!(value.to_bits(), scaled_mean(&m).to_bits());
    assert!(dm.iter().all(|&d| (d - 0.25).abs() < 1e-15), "{dm}");
}

// a recurrent loop on nalgebra values: the state passed on (`tanh`'s result, rebuilt from by
// the map's pullback) is read from the next iteration's record, which holds it as the state
// the product reads
#[differentiate(wrt(w))]
fn recurrent_matrix(w: &DMatrix<f64>, x: &DVector<f64>) -> f64 {
    let mut h = x.clone();
    for _ in 0..3 {
        let z: DVector<f64> = w * &h;
        h = z.map(|v| v.tanh());
    }
    h.dot(&h)
}

#[test]
fn recurrent_matrix_loops_match_finite_differences() {
    let w = DMatrix::from_fn(3, 3, |i, j| ((i * 3 + j) as f64 * 0.7).sin() * 0.9);
    let x = DVector::from_fn(3, |i, _| 0.6 * i as f64 - 0.4);
    let (value, dw) = recurrent_matrix_grad(&w, &x);
    assert_eq!(value.to_bits(), recurrent_matrix(&w, &x).to_bits());
    let h = 1e-6;
    for k in 0..9 {
        let (mut up, mut down) = (w.clone(), w.clone());
        up[k] += h;
        down[k] -= h;
        let fd = (recurrent_matrix(&up, &x) - recurrent_matrix(&down, &x)) / (2.0 * h);
        assert!(
            autodiff::relative_error(dw[k], fd) < 1e-6,
            "{k}: {} vs {fd}",
            dw[k]
        );
    }
}

// Fixed-size vectors built with `new` and read by named coordinates.
mod coordinates {
    use autodiff::nalgebra::{Matrix2, RowVector2, Vector2, Vector3};
    use autodiff::prelude::*;

    // t = r × f;  g = t.x r.y + t.z² + sin f.x
    #[differentiate]
    fn torque(r: &Vector3<f64>, f: &Vector3<f64>) -> f64 {
        let t = r.cross(f);
        t.x * r.y + t.z * t.z + f.x.sin()
    }

    #[test]
    fn coordinates_of_parameters_and_results_match_finite_differences() {
        let (r, f) = (Vector3::new(1.0, 2.0, 3.0), Vector3::new(0.5, -1.0, 0.2));
        let (value, (d_r, d_f)) = torque_grad(&r, &f);
        assert_eq!(value, torque(&r, &f));
        let at = [r.x, r.y, r.z, f.x, f.y, f.z];
        let ours = [d_r.x, d_r.y, d_r.z, d_f.x, d_f.y, d_f.z];
        let error = check_gradient(
            |v: &[f64]| {
                torque(
                    &Vector3::new(v[0], v[1], v[2]),
                    &Vector3::new(v[3], v[4], v[5]),
                )
            },
            &at,
            &ours,
        );
        assert!(error < 1e-8, "error {error:e}: {ours:?}");
    }

    #[differentiate]
    fn doubled(r: &Vector3<f64>) -> Vector3<f64> {
        r * 2.0
    }

    // f = (2r).x r.y = 2 r.x r.y  =>  ∇f = (2 r.y, 2 r.x, 0)
    #[differentiate]
    fn typed_result(r: &Vector3<f64>) -> f64 {
        let t: Vector3<f64> = doubled(r);
        t.x * r.y
    }

    #[test]
    fn a_coordinate_of_a_typed_call_result_matches_the_analytic_gradient() {
        let r = Vector3::new(0.5, -1.5, 2.0);
        let (value, gradient) = typed_result_grad(&r);
        assert_eq!(value, 2.0 * r.x * r.y);
        assert_eq!(gradient, Vector3::new(2.0 * r.y, 2.0 * r.x, 0.0));
    }

    // p ← (p.y, -p.x / 2 + sin p.y), `steps` times; f = p.x + p.y
    #[differentiate]
    fn iterated(p0: Vector2<f64>, steps: usize) -> f64 {
        let mut p = p0;
        for _ in 0..steps {
            p = Vector2::new(p.y, -p.x * 0.5 + p.y.sin());
        }
        p.x + p.y
    }

    #[test]
    fn a_vector_built_with_new_and_carried_through_a_loop_matches_finite_differences() {
        let p0 = Vector2::new(0.3, 0.7);
        let (value, gradient) = iterated_grad(p0, 4);
        assert_eq!(value, iterated(p0, 4));
        let error = check_gradient(
            |v: &[f64]| iterated(Vector2::new(v[0], v[1]), 4),
            &[p0.x, p0.y],
            gradient.as_slice(),
        );
        assert!(error < 1e-8, "error {error:e}: {gradient:?}");
    }

    // matrices and row vectors from numbers, in row-major order; `m.m12` read back
    #[differentiate]
    fn built(a: f64, b: f64) -> f64 {
        let v = Vector3::new(a, b * a, 2.0);
        let m = Matrix2::new(a, b, a * b, 1.0);
        let r = RowVector2::new(b, a);
        let w = m * Vector2::new(v.x, v.z);
        v.norm() + w.dot(&Vector2::new(1.0, b)) + (r * m)[(0, 1)] + m.m12 * m.m21
    }

    #[test]
    fn matrices_built_from_numbers_match_finite_differences() {
        for (a, b) in [(0.7, -1.3), (-0.4, 0.9)] {
            let (value, (d_a, d_b)) = built_grad(a, b);
            assert_eq!(value, built(a, b));
            let error = check_gradient(|v: &[f64]| built(v[0], v[1]), &[a, b], &[d_a, d_b]);
            assert!(error < 1e-8, "error {error:e} at ({a}, {b})");
        }
    }

    // a projectile with drag: a parameter set holding a vector, methods, `new`, coordinates,
    // and a loop left when the height drops below zero
    #[derive(Differentiable, Clone, Debug)]
    struct Launch {
        gravity: f64,
        drag: f64,
        v0: Vector2<f64>,
    }

    #[differentiate]
    impl Launch {
        #[differentiate]
        fn accel(&self, v: Vector2<f64>) -> Vector2<f64> {
            Vector2::new(-self.drag * v.x, -self.gravity - self.drag * v.y)
        }

        #[differentiate]
        fn range(&self, dt: f64, steps: usize) -> f64 {
            let mut p = Vector2::new(0.0, 0.0);
            let mut v: Vector2<f64> = self.v0;
            for _ in 0..steps {
                let a: Vector2<f64> = self.accel(v);
                v = v + a * dt;
                p = p + v * dt;
                if p.y < 0.0 {
                    break;
                }
            }
            p.x
        }
    }

    #[test]
    fn a_projectile_in_a_parameter_set_matches_finite_differences() {
        let launch = Launch {
            gravity: 9.81,
            drag: 0.1,
            v0: Vector2::new(10.0, 10.0),
        };
        let (value, (d, _d_dt)) = Launch::range_grad(&launch, 0.01, 1000);
        assert_eq!(value, launch.range(0.01, 1000));
        // central differences with a step small enough that the landing step (where the
        // loop stops) stays the same: the range is smooth in the drag and the launch speed
        let f = |drag: f64, vx: f64| {
            let l = Launch {
                drag,
                v0: Vector2::new(vx, launch.v0.y),
                ..launch.clone()
            };
            l.range(0.01, 1000)
        };
        let h = 1e-6;
        let fd_drag =
            (f(launch.drag + h, launch.v0.x) - f(launch.drag - h, launch.v0.x)) / (2.0 * h);
        let fd_vx = (f(launch.drag, launch.v0.x + h) - f(launch.drag, launch.v0.x - h)) / (2.0 * h);
        assert!(
            (d.drag - fd_drag).abs() < 1e-6 * fd_drag.abs(),
            "{} {fd_drag}",
            d.drag
        );
        assert!(
            (d.v0.x - fd_vx).abs() < 1e-6 * fd_vx.abs(),
            "{} {fd_vx}",
            d.v0.x
        );
        // the horizontal motion does not depend on gravity or the vertical speed but through
        // the step at which the loop stops, which has no derivative
        assert_eq!((d.gravity, d.v0.y), (0.0, 0.0));
    }

    // |(a, b, ab)|² = a² + b² + a²b²  =>  ∇ = (2a + 2ab², 2b + 2a²b), in f64 and f32
    #[differentiate]
    fn generic<T: Float + autodiff::nalgebra::RealField>(a: T, b: T) -> T {
        let v = Vector3::new(a, b, a * b);
        v.norm_squared()
    }

    #[test]
    fn a_generic_vector_built_with_new_takes_the_float_type() {
        let (a, b) = (0.5, 2.0);
        let (_, (d_a, d_b)) = generic_grad(a, b);
        assert!((d_a - (2.0 * a + 2.0 * a * b * b)).abs() < 1e-14);
        assert!((d_b - (2.0 * b + 2.0 * a * a * b)).abs() < 1e-14);
        let (_, (d_a32, d_b32)) = generic_grad(a as f32, b as f32);
        assert!((d_a32 - (2.0 * a + 2.0 * a * b * b) as f32).abs() < 1e-5);
        assert!((d_b32 - (2.0 * b + 2.0 * a * a * b) as f32).abs() < 1e-5);
    }
}

/// Code generic over nalgebra's `RealField` alone, as nalgebra code is usually written: the
/// generated items add the `Float` bound they compute with, and the body's float methods stay
/// nalgebra's (`ComplexField::sin`), unambiguous.
mod real_field_generics {
    use autodiff::nalgebra::{DMatrix, DVector, RealField, Vector2};
    use autodiff::prelude::*;

    #[differentiate(wrt(w))]
    fn layer<T>(w: &DMatrix<T>, x: &DVector<T>, scale: T) -> T
    where
        T: RealField + Copy,
    {
        let h = (w * x).map(|v| (v * scale).tanh());
        // a map of a constant: not differentiated, called as written
        let weights = x.map(|v| v.abs().sqrt());
        let mut s = weights.sum();
        for i in 0..h.len() {
            s += T::sin(h[i]) + h[i].max(T::zero()) + h[i].exp() * scale.sqrt();
        }
        s
    }

    #[test]
    fn a_layer_generic_over_real_field_matches_finite_differences() {
        let w = DMatrix::from_fn(3, 2, |i, j| (i as f64 + 0.5) * (j as f64 - 0.7) * 0.3);
        let x = DVector::from_vec(vec![0.4, -1.1]);
        let (value, d_w) = layer_grad(&w, &x, 1.3);
        assert_eq!(value, layer(&w, &x, 1.3));
        let flat: Vec<f64> = w.iter().copied().collect();
        let error = check_gradient(
            |p: &[f64]| layer(&DMatrix::from_column_slice(3, 2, p), &x, 1.3),
            &flat,
            d_w.as_slice(),
        );
        assert!(error < 1e-7, "relative error {error}");
        let (_, d_w32) = layer_grad(&w.cast::<f32>(), &x.cast::<f32>(), 1.3f32);
        for (a, b) in d_w32.iter().zip(d_w.iter()) {
            assert!((*a as f64 - b).abs() < 1e-4, "{a} against {b}");
        }
    }

    // q = R(θ) p;  f = |q| + |q_x| q_y²
    #[differentiate]
    fn spin<T: RealField + Copy>(p: &Vector2<T>, theta: T) -> T {
        let (s, c) = theta.sin_cos();
        let q = Vector2::new(c * p.x - s * p.y, s * p.x + c * p.y);
        q.norm() + q.x.abs() * q.y.powi(2)
    }

    #[test]
    fn a_rotation_generic_over_real_field_matches_finite_differences() {
        let (p, theta) = (Vector2::new(0.3, -0.8), 0.6);
        let (_, (d_p, d_theta)) = spin_grad(&p, theta);
        let h = 1e-6;
        let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
        let want = [
            fd(&|e| spin(&Vector2::new(p.x + e, p.y), theta)),
            fd(&|e| spin(&Vector2::new(p.x, p.y + e), theta)),
            fd(&|e| spin(&p, theta + e)),
        ];
        for (got, want) in [d_p.x, d_p.y, d_theta].into_iter().zip(want) {
            assert!(
                (got - want).abs() < 1e-7 * (1.0 + want.abs()),
                "{got} against {want}"
            );
        }
    }

    // forward-over-reverse: the generated gradient run on duals gives a Hessian-vector
    // product, checked against central differences of the gradient
    #[differentiate(wrt(w))]
    fn energy<T: RealField + Copy>(w: &DMatrix<T>, x: &DVector<T>) -> T {
        let h = (w * x).map(|v| v.tanh());
        let a = w.transpose() * &h;
        a.dot(&a) + h.sum()
    }

    #[test]
    fn gradients_of_real_field_code_run_on_duals() {
        let w = DMatrix::from_fn(3, 2, |i, j| (i as f64 + 0.5) * (j as f64 - 0.7) * 0.3);
        let x = DVector::from_vec(vec![0.4, -1.1]);
        let direction = DMatrix::from_fn(3, 2, |i, j| ((i + 2 * j) as f64).cos());
        let seeded = DMatrix::from_fn(3, 2, |i, j| Dual::new(w[(i, j)], direction[(i, j)]));
        let (value, d_w) = energy_grad(&seeded, &x.map(Dual::constant));
        assert_eq!(value.re, energy(&w, &x));
        let h = 1e-5;
        let plus = energy_grad(&(&w + &direction * h), &x).1;
        let minus = energy_grad(&(&w - &direction * h), &x).1;
        let hessian_direction = (plus - minus) / (2.0 * h);
        for (got, want) in d_w.iter().zip(hessian_direction.iter()) {
            assert!(
                (got.eps - want).abs() < 1e-7 * (1.0 + want.abs()),
                "{} against {want}",
                got.eps
            );
        }
        let first = energy_grad(&w, &x).1;
        for (got, want) in d_w.iter().zip(first.iter()) {
            assert_eq!(got.re, *want);
        }
    }
}

/// Matrices and vectors filled from slices and `Vec`s: a flat parameter vector unpacked into
/// a layer, as optimizers over `&[f64]` want it.
mod filled_from_data {
    use autodiff::nalgebra::{DMatrix, DVector, Matrix2x3, Vector2};
    use autodiff::prelude::*;

    // ‖W x + b 1ᵀ - Y‖² + ‖v‖ + ‖M‖² f_x + Σ M, with W (row by row), b, v, M (column by
    // column) and f taken from θ
    #[differentiate(wrt(theta))]
    fn unpacked(theta: &[f64], x: &DMatrix<f64>, y: &DMatrix<f64>) -> f64 {
        let w = DMatrix::from_row_slice(2, 3, &theta[0..6]);
        let b = DVector::from_column_slice(&theta[6..8]);
        // a call's result, its type unwritten: the product with it is named by the sum
        let ones = DMatrix::from_element(1, x.ncols(), 1.0);
        let pred = &w * x + &b * ones;
        let v = DVector::from_vec(vec![theta[8], theta[9] * theta[8]]);
        let m = Matrix2x3::from_column_slice(&theta[10..16]);
        let f = Vector2::from_vec(vec![theta[0], theta[1]]);
        (pred - y).norm_squared() + v.norm() + m.norm_squared() * f.x + m.sum()
    }

    #[test]
    fn a_flat_parameter_vector_unpacked_into_matrices_matches_finite_differences() {
        let theta: Vec<f64> = (0..16).map(|k| (k as f64 * 0.37).sin()).collect();
        let x = DMatrix::from_fn(3, 4, |i, j| ((i + 2 * j) as f64 * 0.5).cos());
        let y = DMatrix::from_fn(2, 4, |i, j| ((i * j) as f64 * 0.3).sin());
        let (value, d_theta) = unpacked_grad(&theta, &x, &y);
        assert_eq!(value, unpacked(&theta, &x, &y));
        let error = check_gradient(|p: &[f64]| unpacked(p, &x, &y), &theta, &d_theta);
        assert!(error < 1e-7, "relative error {error}");
    }

    #[differentiate]
    fn sine(x: f64) -> f64 {
        x.sin()
    }

    // a matrix times a call's result that nothing else names is the matrix scaled:
    // f = Σ 2 (k m)² with k = sin x  =>  ∂f/∂x = 4 k cos x Σ m², ∂f/∂m = 4 k² m
    #[differentiate]
    fn scaled(m: &DMatrix<f64>, x: f64) -> f64 {
        let k = sine(x);
        let y = m * k;
        let z = &y * 2.0;
        z.component_mul(&y).sum()
    }

    #[test]
    fn a_matrix_scaled_by_a_call_result_matches_the_analytic_gradient() {
        let m = DMatrix::from_fn(2, 2, |i, j| (i + j) as f64 * 0.3 + 0.1);
        let x = 0.7f64;
        let (_, (d_m, d_x)) = scaled_grad(&m, x);
        let k = x.sin();
        let want_x = 4.0 * k * x.cos() * m.norm_squared();
        assert!(
            (d_x - want_x).abs() < 1e-12 * want_x.abs(),
            "{d_x} against {want_x}"
        );
        assert!((d_m - &m * (4.0 * k * k)).norm() < 1e-12);
    }

    // fixed-size and vector forms of `from_fn`, the closure reading numbers and a slice
    #[differentiate]
    fn filled(a: f64, w: &[f64]) -> f64 {
        let m = Matrix2x3::from_fn(|i, j| a * (i as f64) + w[j]);
        let v = autodiff::nalgebra::Vector3::from_fn(|i, _| w[i] * a);
        let d = DVector::from_fn(3, |i: usize, _j: usize| w[i].sin());
        let r = autodiff::nalgebra::RowDVector::from_fn(2, |_, j| w[j + 1] * w[j]);
        (m * v).norm() + d.sum() + r.sum()
    }

    #[test]
    fn fixed_size_and_vector_from_fn_match_finite_differences() {
        let w = [0.3, -0.7, 1.1];
        let (_, (d_a, d_w)) = filled_grad(0.4, &w);
        let h = 1e-6;
        let fd_a = (filled(0.4 + h, &w) - filled(0.4 - h, &w)) / (2.0 * h);
        assert!(
            (d_a - fd_a).abs() < 1e-6 * (1.0 + fd_a.abs()),
            "{d_a} against {fd_a}"
        );
        let error = check_gradient(|p: &[f64]| filled(0.4, p), &w, &d_w);
        assert!(error < 1e-7, "relative error {error}");
    }
}

/// The Cholesky factorisation and what is computed from it. nalgebra reads the lower
/// triangle only, so finite differences move the entries on and below the diagonal.
mod cholesky {
    use autodiff::nalgebra::{DMatrix, DVector, Matrix2, Vector2};
    use autodiff::prelude::*;

    fn lower_triangle_differences(
        a: &DMatrix<f64>,
        f: impl Fn(&DMatrix<f64>) -> f64,
    ) -> DMatrix<f64> {
        let h = 1e-6;
        DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| {
            if i < j {
                return 0.0;
            }
            let (mut plus, mut minus) = (a.clone(), a.clone());
            plus[(i, j)] += h;
            minus[(i, j)] -= h;
            (f(&plus) - f(&minus)) / (2.0 * h)
        })
    }

    // ‖A⁻¹ b‖² + Σ L + tr A⁻¹ + √det A
    #[differentiate]
    fn every_method(a: &DMatrix<f64>, b: &DVector<f64>) -> f64 {
        let c = a.clone().cholesky().expect("positive definite");
        let x = c.solve(b);
        let l = c.l();
        let inv = c.inverse();
        x.norm_squared() + l.sum() + inv.trace() + c.determinant().sqrt()
    }

    #[test]
    fn every_method_matches_finite_differences_on_the_lower_triangle() {
        let m = DMatrix::from_fn(3, 3, |i, j| ((i * 3 + j) as f64 * 0.7).sin());
        let a = &m * m.transpose() + DMatrix::identity(3, 3) * 3.0;
        let b = DVector::from_vec(vec![1.0, -0.5, 0.25]);
        let (value, (d_a, d_b)) = every_method_grad(&a, &b);
        assert_eq!(value, every_method(&a, &b));
        let want = lower_triangle_differences(&a, |a| every_method(a, &b));
        assert!(
            (&d_a - &want).norm() < 1e-7 * (1.0 + want.norm()),
            "{d_a} against {want}"
        );
        let flat: Vec<f64> = b.iter().copied().collect();
        let error = check_gradient(
            |p: &[f64]| every_method(&a, &DVector::from_vec(p.to_vec())),
            &flat,
            d_b.as_slice(),
        );
        assert!(error < 1e-7, "relative error {error}");
    }

    // a Gaussian process's negative log marginal likelihood ½ yᵀ K⁻¹ y + ½ ln det K, its RBF
    // kernel built by `from_fn`, through the factorisation or through LU and the determinant
    #[differentiate(wrt(log_l, log_s))]
    fn gp_nll(log_l: f64, log_s: f64, x: &[f64], y: &DVector<f64>, cholesky: bool) -> f64 {
        let n = x.len();
        let l = log_l.exp();
        let s2 = (2.0 * log_s).exp();
        let k = DMatrix::from_fn(n, n, |i, j| {
            let d = (x[i] - x[j]) / l;
            s2 * (-0.5 * d * d).exp() + if i == j { 0.1 } else { 0.0 }
        });
        if cholesky {
            let chol = k.cholesky().unwrap();
            let alpha = chol.solve(y);
            0.5 * y.dot(&alpha) + 0.5 * chol.ln_determinant()
        } else {
            let alpha = k.clone().lu().solve(y).unwrap();
            0.5 * y.dot(&alpha) + 0.5 * k.determinant().ln()
        }
    }

    #[test]
    fn a_gaussian_process_likelihood_matches_finite_differences() {
        let x = [0.1, 0.5, 0.9, 1.4, 2.0];
        let y = DVector::from_vec(vec![0.3, -0.2, 0.5, 0.1, -0.4]);
        let h = 1e-6;
        for cholesky in [true, false] {
            let nll = |l: f64, s: f64| gp_nll(l, s, &x, &y, cholesky);
            let (value, (d_l, d_s)) = gp_nll_grad(-0.3, 0.2, &x, &y, cholesky);
            assert_eq!(value, nll(-0.3, 0.2));
            let fd_l = (nll(-0.3 + h, 0.2) - nll(-0.3 - h, 0.2)) / (2.0 * h);
            let fd_s = (nll(-0.3, 0.2 + h) - nll(-0.3, 0.2 - h)) / (2.0 * h);
            assert!(
                (d_l - fd_l).abs() < 1e-6 * (1.0 + fd_l.abs()),
                "{d_l} against {fd_l}"
            );
            assert!(
                (d_s - fd_s).abs() < 1e-6 * (1.0 + fd_s.abs()),
                "{d_s} against {fd_s}"
            );
        }
        // both ways compute the same likelihood
        let (a, b) = (
            gp_nll(-0.3, 0.2, &x, &y, true),
            gp_nll(-0.3, 0.2, &x, &y, false),
        );
        assert!((a - b).abs() < 1e-12 * a.abs());
    }

    // the same likelihood generic over `RealField`, its constants converted by nalgebra
    #[differentiate(wrt(log_l))]
    fn generic_nll<T: autodiff::nalgebra::RealField + Copy>(
        log_l: T,
        x: &[T],
        y: &DVector<T>,
    ) -> T {
        let n = x.len();
        let l = log_l.exp();
        let half: T = autodiff::nalgebra::convert(0.5);
        let noise: T = autodiff::nalgebra::convert(0.1);
        let k = DMatrix::from_fn(n, n, |i, j| {
            let d = (x[i] - x[j]) / l;
            (-half * d * d).exp() + if i == j { noise } else { T::zero() }
        });
        let chol = k.cholesky().unwrap();
        half * y.dot(&chol.solve(y)) + half * chol.ln_determinant()
    }

    #[test]
    fn its_second_derivative_by_forward_over_reverse_matches_differences_of_the_gradient() {
        let x = [0.1, 0.5, 0.9, 1.4];
        let y = DVector::from_vec(vec![0.3, -0.2, 0.5, 0.1]);
        let dual_x: Vec<Dual<f64>> = x.iter().map(|&v| Dual::constant(v)).collect();
        let (_, d) = generic_nll_grad(Dual::variable(-0.3), &dual_x, &y.map(Dual::constant));
        let (_, first) = generic_nll_grad(-0.3, &x, &y);
        assert_eq!(d.re, first);
        let h = 1e-5;
        let want = (generic_nll_grad(-0.3 + h, &x, &y).1 - generic_nll_grad(-0.3 - h, &x, &y).1)
            / (2.0 * h);
        assert!(
            (d.eps - want).abs() < 1e-6 * (1.0 + want.abs()),
            "{} against {want}",
            d.eps
        );
    }

    // fixed size, the matrix by reference and the right-hand side by value
    #[differentiate]
    fn fixed(a: &Matrix2<f64>, b: Vector2<f64>) -> f64 {
        let c = a.cholesky().unwrap();
        c.solve(&b).sum() + c.ln_determinant()
    }

    #[test]
    fn fixed_size_factorisations_match_finite_differences() {
        let a = Matrix2::new(2.0, 0.5, 0.5, 1.5);
        let b = Vector2::new(1.0, 2.0);
        let (_, (d_a, d_b)) = fixed_grad(&a, b);
        let dynamic = DMatrix::from_iterator(2, 2, a.iter().copied());
        let want = lower_triangle_differences(&dynamic, |m| {
            fixed(&Matrix2::from_iterator(m.iter().copied()), b)
        });
        for (got, want) in d_a.iter().zip(want.iter()) {
            assert!((got - want).abs() < 1e-7, "{d_a} against {want}");
        }
        // b̄ = A⁻¹ 1
        let want_b = a.try_inverse().expect("invertible") * Vector2::new(1.0, 1.0);
        assert!((d_b - want_b).norm() < 1e-12);
    }
}

/// Columns, rows and diagonals read as vectors, their cotangents added into the matrix's.
mod parts {
    use autodiff::nalgebra::{DMatrix, DVector, Matrix3, Vector3};
    use autodiff::prelude::*;

    // Σⱼ log(1 + exp(-yⱼ w·xⱼ)) over the columns of a data matrix, and a penalty on a row
    #[differentiate(wrt(w, x))]
    fn logistic(w: &DVector<f64>, x: &DMatrix<f64>, y: &[f64]) -> f64 {
        let mut loss = 0.0;
        for j in 0..x.ncols() {
            let z = w.dot(&x.column(j));
            loss += (1.0 + (-y[j] * z).exp()).ln();
        }
        loss + x.row(0).norm_squared() * w[0]
    }

    #[test]
    fn columns_and_rows_of_a_data_matrix_match_finite_differences() {
        let x = DMatrix::from_fn(3, 5, |i, j| ((i * 5 + j) as f64 * 0.61).sin());
        let y = [1.0, -1.0, 1.0, 1.0, -1.0];
        let w = DVector::from_vec(vec![0.2, -0.4, 0.9]);
        let (value, (d_w, d_x)) = logistic_grad(&w, &x, &y);
        assert_eq!(value, logistic(&w, &x, &y));
        let flat: Vec<f64> = w.iter().copied().collect();
        let error = check_gradient(
            |p: &[f64]| logistic(&DVector::from_vec(p.to_vec()), &x, &y),
            &flat,
            d_w.as_slice(),
        );
        assert!(error < 1e-7, "relative error {error}");
        let flat: Vec<f64> = x.iter().copied().collect();
        let error = check_gradient(
            |p: &[f64]| logistic(&w, &DMatrix::from_column_slice(3, 5, p), &y),
            &flat,
            d_x.as_slice(),
        );
        assert!(error < 1e-7, "relative error {error}");
    }

    // tr-like sums on a fixed-size matrix: Σ diag(M)² + M[:, 1]·v + Σ M[2, :]
    #[differentiate]
    fn fixed(m: &Matrix3<f64>, v: &Vector3<f64>) -> f64 {
        let d = m.diagonal();
        d.norm_squared() + m.column(1).dot(v) + m.row(2).sum()
    }

    #[test]
    fn parts_of_a_fixed_size_matrix_match_the_analytic_gradient() {
        let m = Matrix3::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0);
        let v = Vector3::new(0.5, -1.0, 2.0);
        let (_, (d_m, d_v)) = fixed_grad(&m, &v);
        // ∂/∂M = 2 diag(M) on the diagonal + v in column 1 + 1 in row 2; ∂/∂v = M[:, 1]
        let mut want = Matrix3::zeros();
        for k in 0..3 {
            want[(k, k)] += 2.0 * m[(k, k)];
            want[(k, 1)] += v[k];
            want[(2, k)] += 1.0;
        }
        assert_eq!(d_m, want);
        assert_eq!(d_v, m.column(1).into_owned());
    }

    // a state vector split into position and velocity, blocks of columns and rows
    #[differentiate]
    fn segments(state: &DVector<f64>, m: &DMatrix<f64>) -> f64 {
        let pos = state.rows(0, 2);
        let vel = state.rows(2, 2);
        let block = m.columns(1, 2);
        let top = m.rows(0, 1);
        pos.norm_squared() * vel.sum() + (block * vel).sum() + top.sum()
    }

    #[test]
    fn rows_and_columns_blocks_match_finite_differences() {
        let s = DVector::from_vec(vec![0.3, -0.5, 1.2, 0.7]);
        let m = DMatrix::from_fn(2, 3, |i, j| (i + 2 * j) as f64 * 0.3 - 0.4);
        let (value, (d_s, d_m)) = segments_grad(&s, &m);
        assert_eq!(value, segments(&s, &m));
        let flat: Vec<f64> = s.iter().copied().collect();
        let error = check_gradient(
            |p: &[f64]| segments(&DVector::from_vec(p.to_vec()), &m),
            &flat,
            d_s.as_slice(),
        );
        assert!(error < 1e-7, "relative error {error}");
        let flat: Vec<f64> = m.iter().copied().collect();
        let error = check_gradient(
            |p: &[f64]| segments(&s, &DMatrix::from_column_slice(2, 3, p)),
            &flat,
            d_m.as_slice(),
        );
        assert!(error < 1e-7, "relative error {error}");
    }
}

/// Elements written into matrices: `m[(i, j)] = e`, `+=`, `*=`, on a copy of a parameter and
/// on a matrix made by a constructor.
mod element_writes {
    use autodiff::nalgebra::{DMatrix, Matrix3, Vector3};
    use autodiff::prelude::*;

    #[differentiate]
    fn writes(w: &DMatrix<f64>, x: f64) -> f64 {
        let mut a = w.clone();
        a[(0, 0)] = x * x;
        a[(1, 0)] += x.sin();
        for i in 0..a.nrows() {
            a[(i, 1)] *= 2.0;
        }
        let b = &a * a.transpose();
        b.trace() + a[(1, 1)]
    }

    #[test]
    fn writes_into_a_copy_of_a_parameter_match_finite_differences() {
        let w = DMatrix::from_fn(2, 2, |i, j| (i + 3 * j) as f64 * 0.2 + 0.1);
        let (value, (d_w, d_x)) = writes_grad(&w, 0.7);
        assert_eq!(value, writes(&w, 0.7));
        let flat: Vec<f64> = w.iter().copied().collect();
        let error = check_gradient(
            |p: &[f64]| writes(&DMatrix::from_column_slice(2, 2, p), 0.7),
            &flat,
            d_w.as_slice(),
        );
        assert!(error < 1e-7, "relative error {error}");
        // the overwritten element takes no part: ∂/∂w₀₀ is zero
        assert_eq!(d_w[(0, 0)], 0.0);
        let fd = (writes(&w, 0.7 + 1e-6) - writes(&w, 0.7 - 1e-6)) / 2e-6;
        assert!(
            (d_x - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "{d_x} against {fd}"
        );
    }

    // m = I with m₀₂ = x, m₂₀ = -x; f = |m v|²
    #[differentiate]
    fn rotation_like(x: f64, v: &Vector3<f64>) -> f64 {
        let mut m = Matrix3::identity();
        m[(0, 2)] = x;
        m[(2, 0)] = -x;
        (m * v).norm_squared()
    }

    #[test]
    fn writes_into_a_constructed_matrix_match_the_analytic_gradient() {
        let (x, v) = (0.3, Vector3::new(0.5, -1.0, 2.0));
        let (_, (d_x, d_v)) = rotation_like_grad(x, &v);
        // m v = (v₀ + x v₂, v₁, v₂ − x v₀)
        let (a, c) = (v[0] + x * v[2], v[2] - x * v[0]);
        let want_x = 2.0 * a * v[2] - 2.0 * c * v[0];
        let want_v = Vector3::new(2.0 * a - 2.0 * x * c, 2.0 * v[1], 2.0 * x * a + 2.0 * c);
        assert!((d_x - want_x).abs() < 1e-12, "{d_x} against {want_x}");
        assert!((d_v - want_v).norm() < 1e-12, "{d_v} against {want_v}");
    }

    // a kernel matrix filled element by element in a matrix from `DMatrix::zeros`
    #[differentiate(wrt(l))]
    fn kernel_sum(l: f64, x: &[f64]) -> f64 {
        let n = x.len();
        let mut k = DMatrix::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                let d = (x[i] - x[j]) / l;
                k[(i, j)] = (-0.5 * d * d).exp();
            }
        }
        let ones = DMatrix::from_element(n, 1, 1.0);
        (ones.transpose() * k * ones)[(0, 0)]
    }

    #[test]
    fn a_matrix_filled_element_by_element_matches_finite_differences() {
        let x = [0.1, 0.5, 0.9];
        let (_, d_l) = kernel_sum_grad(0.7, &x);
        let fd = (kernel_sum(0.7 + 1e-6, &x) - kernel_sum(0.7 - 1e-6, &x)) / 2e-6;
        assert!(
            (d_l - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "{d_l} against {fd}"
        );
    }
}

/// A regression's data in a struct that derives only `Clone`: the design matrix read from a
/// field times the coefficients is a `DVector`, typed without an annotation.
mod data_in_a_struct {
    use autodiff::nalgebra::{DMatrix, DVector};
    use autodiff::prelude::*;

    #[derive(Clone)]
    struct Design {
        x: DMatrix<f64>,
        y: DVector<f64>,
    }

    // l(β) = Σ exp(Xβ) - y·Xβ + ½|β|²  =>  ∇l = Xᵀ (exp(Xβ) - y) + β
    #[differentiate(wrt(beta))]
    fn poisson_nll(beta: &DVector<f64>, data: &Design) -> f64 {
        let eta = &data.x * beta;
        let mu = eta.map(|e| e.exp());
        mu.sum() - data.y.dot(&eta) + 0.5 * beta.norm_squared()
    }

    #[test]
    fn a_poisson_regression_matches_its_analytic_gradient() {
        let data = Design {
            x: DMatrix::from_row_slice(
                4,
                3,
                &[
                    1.0, 0.2, -0.5, 1.0, -1.0, 0.3, 1.0, 0.7, 0.9, 1.0, 0.0, -0.2,
                ],
            ),
            y: DVector::from_vec(vec![1.0, 0.0, 3.0, 2.0]),
        };
        let beta = DVector::from_vec(vec![0.1, -0.2, 0.3]);
        let (value, d_beta) = poisson_nll_grad(&beta, &data);
        assert_eq!(value.to_bits(), poisson_nll(&beta, &data).to_bits());
        let mu = (&data.x * &beta).map(f64::exp);
        let expected = data.x.transpose() * (mu - &data.y) + &beta;
        assert!(
            (&d_beta - &expected).norm() < 1e-12,
            "{d_beta} against {expected}"
        );
        let error = check_gradient(
            |b: &[f64]| poisson_nll(&DVector::from_column_slice(b), &data),
            beta.as_slice(),
            d_beta.as_slice(),
        );
        assert!(error < 1e-8, "relative error {error}");
    }
}

/// Products whose operand is a scaled matrix: the scaling's type is known only after the
/// walk over the function, and the product's type follows from it.
mod products_of_scaled_matrices {
    use autodiff::nalgebra::{Matrix3, Vector3};
    use autodiff::prelude::*;

    // e(M, w) = ½ wᵀ S w + ln|det S| + ¼ wᵀ M w with S = (M + Mᵀ) / 2 (the last term through
    // H = M / 2 scaled back, `half * 2.0 * w`)
    //   => ∂e/∂w = S w + ½ S w, ∂e/∂M = sym(½ w wᵀ + S⁻ᵀ) + ¼ w wᵀ
    #[differentiate]
    fn quadratic_energy(m: &Matrix3<f64>, w: &Vector3<f64>) -> f64 {
        let sym = (m + m.transpose()) * 0.5;
        let half = m * 0.5;
        0.5 * w.dot(&(sym * w)) + sym.determinant().abs().ln() + 0.25 * w.dot(&(half * 2.0 * w))
    }

    #[test]
    fn a_scaled_matrix_times_a_vector_matches_the_analytic_gradient() {
        let m = Matrix3::new(2.0, 0.3, 0.1, 0.2, 1.5, -0.4, 0.0, 0.1, 1.0);
        let w = Vector3::new(0.3, -0.2, 0.9);
        let (value, (d_m, d_w)) = quadratic_energy_grad(&m, &w);
        assert_eq!(value.to_bits(), quadratic_energy(&m, &w).to_bits());
        let s = (m + m.transpose()) * 0.5;
        let want_w = s * w * 1.5;
        let d_s = w * w.transpose() * 0.5 + s.try_inverse().unwrap().transpose();
        let want_m = (d_s + d_s.transpose()) * 0.5 + w * w.transpose() * 0.25;
        assert!((d_w - want_w).norm() < 1e-12, "{d_w} against {want_w}");
        assert!((d_m - want_m).norm() < 1e-12, "{d_m} against {want_m}");
    }
}
