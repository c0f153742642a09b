//! Constant parameters that are tables of integers or, left out by `wrt`, nested containers of
//! floats (a batch of samples); tables of integers (a mesh's edges and triangles, index
//! pairs), read whole, by element, by tuple field and by pattern; gradients against central
//! finite differences and, for the spring energy, its analytic gradient.

use autodiff::prelude::*;

const TOLERANCE: f64 = 1e-6;

/// Points on a line (six coordinates) and the edges between some of them.
fn points() -> Vec<f64> {
    vec![1.0, 2.0, 4.0, 0.5, -1.0, 0.3]
}

fn edges() -> Vec<(usize, usize)> {
    vec![(0, 1), (1, 2), (2, 5), (3, 4), (5, 0)]
}

#[differentiate(wrt(x))]
fn spring_energy(x: &[f64], edges: &[(usize, usize)], rest: f64) -> f64 {
    let mut e = 0.0;
    for k in 0..edges.len() {
        let (a, b) = edges[k];
        let d = x[a] - x[b];
        e += (d * d - rest).powi(2);
    }
    e
}

#[test]
fn a_tuple_taken_apart_by_a_let_reads_the_table() {
    let (x, edges) = (points(), edges());
    let (value, gradient) = spring_energy_grad(&x, &edges, 1.0);
    assert_eq!(value, spring_energy(&x, &edges, 1.0));
    // e = Σ (d² - r)², d = x_a - x_b  =>  ∂e/∂x_a = 4 (d² - r) d, ∂e/∂x_b = -4 (d² - r) d
    let mut expected = vec![0.0; x.len()];
    for &(a, b) in &edges {
        let d = x[a] - x[b];
        expected[a] += 4.0 * (d * d - 1.0) * d;
        expected[b] -= 4.0 * (d * d - 1.0) * d;
    }
    for (g, e) in gradient.iter().zip(&expected) {
        assert!(
            (g - e).abs() < 1e-12 * e.abs().max(1.0),
            "{gradient:?} {expected:?}"
        );
    }
}

#[differentiate]
fn by_array_pattern(x: &[f64], edges: &[[usize; 2]]) -> f64 {
    let mut e = 0.0;
    for &[a, b] in edges {
        let d = x[a] - x[b];
        e += d * d * x[a].cos();
    }
    e
}

// a `&Vec` as users write it
#[allow(clippy::ptr_arg)]
#[differentiate]
fn by_tuple_pattern(x: &[f64], edges: &Vec<(usize, usize)>) -> f64 {
    let mut e = 0.0;
    for &(a, b) in edges.iter() {
        e += (x[a] * x[b]).sin();
    }
    e
}

#[differentiate]
fn in_a_map_closure(x: &[f64], edges: &[(usize, usize)]) -> f64 {
    edges.iter().map(|&(a, b)| (x[a] - x[b]).powi(2)).sum()
}

#[differentiate]
fn by_field(x: &[f64], edges: &[(usize, usize)]) -> f64 {
    let mut e = 0.0;
    for k in 0..edges.len() {
        e += x[edges[k].0] * x[edges[k].1].exp();
    }
    e
}

#[differentiate]
fn composed(x: &[f64], edges: &[(usize, usize)]) -> f64 {
    in_a_map_closure(x, edges) * 2.0 + by_field(x, &edges[1..])
}

#[test]
fn edges_read_by_pattern_field_closure_and_call_match_finite_differences() {
    let (x, edges) = (points(), edges());
    let arrays: Vec<[usize; 2]> = edges.iter().map(|&(a, b)| [a, b]).collect();
    let cases: [(&str, f64, Vec<f64>, Box<dyn Fn(&[f64]) -> f64>); 5] = [
        {
            let (v, g) = by_array_pattern_grad(&x, &arrays);
            let arrays = arrays.clone();
            (
                "array pattern",
                v,
                g,
                Box::new(move |x| by_array_pattern(x, &arrays)),
            )
        },
        {
            let (v, g) = by_tuple_pattern_grad(&x, &edges);
            let edges = edges.clone();
            (
                "tuple pattern",
                v,
                g,
                Box::new(move |x| by_tuple_pattern(x, &edges)),
            )
        },
        {
            let (v, g) = in_a_map_closure_grad(&x, &edges);
            let edges = edges.clone();
            (
                "closure",
                v,
                g,
                Box::new(move |x| in_a_map_closure(x, &edges)),
            )
        },
        {
            let (v, g) = by_field_grad(&x, &edges);
            let edges = edges.clone();
            ("field", v, g, Box::new(move |x| by_field(x, &edges)))
        },
        {
            let (v, g) = composed_grad(&x, &edges);
            let edges = edges.clone();
            ("composed", v, g, Box::new(move |x| composed(x, &edges)))
        },
    ];
    for (name, value, gradient, f) in cases {
        assert_eq!(value, f(&x), "{name}");
        let error = check_gradient(&f, &x, &gradient);
        assert!(
            error < TOLERANCE,
            "{name}: error {error:e}, gradient {gradient:?}"
        );
    }
}

/// Signed area of triangles in the plane, point `i` at `(p[2i], p[2i + 1])`, weighted by
/// the triangle's position in the list.
#[differentiate]
fn weighted_area(p: &[f64], triangles: &[[usize; 3]]) -> f64 {
    let mut area = 0.0;
    for (t, [i, j, k]) in triangles.iter().enumerate() {
        let w = (t + 1) as f64;
        let (ax, ay) = (p[2 * i], p[2 * i + 1]);
        let (bx, by) = (p[2 * j], p[2 * j + 1]);
        let (cx, cy) = (p[2 * k], p[2 * k + 1]);
        area += w * 0.5 * ((bx - ax) * (cy - ay) - (cx - ax) * (by - ay));
    }
    area
}

#[test]
fn triangles_enumerated_and_taken_apart_match_finite_differences() {
    let p = points();
    let triangles = [[0, 1, 2], [0, 2, 1], [2, 1, 0]];
    let (value, gradient) = weighted_area_grad(&p, &triangles);
    assert_eq!(value, weighted_area(&p, &triangles));
    let error = check_gradient(|p: &[f64]| weighted_area(p, &triangles), &p, &gradient);
    assert!(error < TOLERANCE, "error {error:e}, gradient {gradient:?}");
}

#[differentiate]
fn fixed_tables(x: &[f64; 3], pair: (usize, usize), table: [[usize; 2]; 2]) -> f64 {
    let (a, b) = pair;
    x[a] * x[b] + x[table[1][0]] * x[table[0][1]].sin()
}

#[test]
fn a_tuple_and_a_nested_array_by_value_are_constants() {
    let x = [1.0, 2.0, 3.0];
    let (value, gradient) = fixed_tables_grad(&x, (0, 2), [[0, 1], [2, 0]]);
    assert_eq!(value, fixed_tables(&x, (0, 2), [[0, 1], [2, 0]]));
    // f = x0 x2 + x2 sin x1  =>  ∇f = (x2, x2 cos x1, x0 + sin x1)
    let expected = [x[2], x[2] * x[1].cos(), x[0] + x[1].sin()];
    for (g, e) in gradient.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-12, "{gradient:?} {expected:?}");
    }
}

#[differentiate]
fn nested_tuples(x: &[f64], stencil: &[(usize, (usize, usize))]) -> f64 {
    let mut e = 0.0;
    for k in 0..stencil.len() {
        let (centre, (left, right)) = stencil[k];
        e += x[centre] * (x[left] - x[right]).tanh();
    }
    e
}

#[test]
fn nested_tuples_taken_apart_match_finite_differences() {
    let x = points();
    let stencil = [(1, (0, 2)), (4, (3, 5)), (2, (1, 3))];
    let (value, gradient) = nested_tuples_grad(&x, &stencil);
    assert_eq!(value, nested_tuples(&x, &stencil));
    let error = check_gradient(|x: &[f64]| nested_tuples(x, &stencil), &x, &gradient);
    assert!(error < TOLERANCE, "error {error:e}, gradient {gradient:?}");
}

// A table of constants built in the function is read like a parameter table.
#[differentiate]
fn local_table(x: &[f64]) -> f64 {
    let pairs = [[0usize, 1], [1, 2], [2, 0]];
    let mut e = 0.0;
    for k in 0..pairs.len() {
        e += x[pairs[k][0]] * x[pairs[k][1]];
    }
    e
}

#[test]
fn a_local_table_of_constants_matches_the_analytic_gradient() {
    let x = [0.5, -1.5, 2.0];
    let (value, gradient) = local_table_grad(&x);
    assert_eq!(value, local_table(&x));
    // e = x0 x1 + x1 x2 + x2 x0  =>  ∇e = (x1 + x2, x0 + x2, x1 + x0)
    assert_eq!(gradient, vec![x[1] + x[2], x[0] + x[2], x[1] + x[0]]);
}

// Data that `wrt` leaves out may be nested containers of floats: a batch of samples.
#[derive(Differentiable, Clone, Debug)]
struct Linear {
    w: Vec<f64>,
    b: f64,
}

#[differentiate(wrt(p))]
fn predict(p: &Linear, x: &[f64]) -> f64 {
    let dot: f64 = p.w.iter().zip(x).map(|(a, b)| a * b).sum();
    (dot + p.b).tanh()
}

#[differentiate(wrt(p))]
fn batch_loss(p: &Linear, xs: &[Vec<f64>], ys: &[f64]) -> f64 {
    let mut s = 0.0;
    for (k, x) in xs.iter().enumerate() {
        s += (predict(p, x) - ys[k]).powi(2);
    }
    for i in 0..xs.len() {
        s += predict(p, &xs[i]) * xs[i][0] * 0.1;
    }
    s + xs.iter().map(|x| predict(p, x)).sum::<f64>()
}

#[differentiate(wrt(w))]
fn on_points(w: &[f64; 2], points: &[[f64; 2]]) -> f64 {
    let mut s = 0.0;
    for q in points {
        s += (w[0] * q[0] + w[1] * q[1]).sin();
    }
    for &[a, b] in points {
        s += w[0] * a * b;
    }
    s
}

#[test]
fn a_batch_of_samples_passed_as_data_matches_finite_differences() {
    let p = Linear {
        w: vec![0.5, -1.0],
        b: 0.3,
    };
    let xs = vec![vec![1.0, 2.0], vec![-0.5, 0.3], vec![0.2, 0.1]];
    let ys = [0.1, -0.2, 0.4];
    let (value, d) = batch_loss_grad(&p, &xs, &ys);
    assert_eq!(value, batch_loss(&p, &xs, &ys));
    let f = |v: &[f64]| {
        let p = Linear {
            w: v[..2].to_vec(),
            b: v[2],
        };
        batch_loss(&p, &xs, &ys)
    };
    let error = check_gradient(f, &[p.w[0], p.w[1], p.b], &[d.w[0], d.w[1], d.b]);
    assert!(error < TOLERANCE, "error {error:e}: {d:?}");

    let w = [0.3, -0.7];
    let points = [[1.0, 2.0], [3.0, -4.0], [0.5, 0.25]];
    let (value, d_w) = on_points_grad(&w, &points);
    assert_eq!(value, on_points(&w, &points));
    let error = check_gradient(|v: &[f64]| on_points(&[v[0], v[1]], &points), &w, &d_w);
    assert!(error < TOLERANCE, "error {error:e}: {d_w:?}");
}
