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
