//! ADBench's Gaussian mixture model objective (Srajer et al. 2018, section 4.1): the
//! log-likelihood of `n` points under `k` Gaussians in `d` dimensions, each precision matrix
//! factored as `L L^T` with `L` given by the logs of its diagonal followed by its strictly
//! lower entries column by column, plus a Wishart prior on the precisions. The constants
//! (`-n d/2 ln 2π` and the Wishart normaliser) are included, as ADBench does.

use super::rng::Rng;
use super::Peer;
use autodiff::prelude::*;
use num_dual::Dual64;
use reverse::{Gradient, Tape};

pub struct Gmm {
    pub d: usize,
    pub k: usize,
    pub n: usize,
    pub alphas: Vec<f64>,
    pub means: Vec<f64>,
    pub icf: Vec<f64>,
    pub x: Vec<f64>,
    pub gamma: f64,
    pub m: f64,
}

impl Gmm {
    /// Inputs in the ranges of ADBench's generator: normal weights and points, uniform means,
    /// small normal inverse-covariance factors; Wishart `gamma = 1`, `m = 0`.
    pub fn new(d: usize, k: usize, n: usize) -> Self {
        let mut rng = Rng::new(0x6a3d_0000 + (d * 1000 + k) as u64);
        let icf_sz = d * (d + 1) / 2;
        Gmm {
            d,
            k,
            n,
            alphas: rng.normals(k),
            means: rng.uniforms(d * k, 0.0, 1.0),
            icf: rng.normals(icf_sz * k).iter().map(|v| 0.1 * v).collect(),
            x: rng.normals(d * n),
            gamma: 1.0,
            m: 0.0,
        }
    }

    pub fn params(&self) -> usize {
        self.alphas.len() + self.means.len() + self.icf.len()
    }

    /// All parameters in one vector: alphas, means, icf.
    pub fn flat(&self) -> Vec<f64> {
        [&self.alphas[..], &self.means, &self.icf].concat()
    }

    /// The inverse of `flat`.
    pub fn split<'a>(&self, p: &'a [f64]) -> (&'a [f64], &'a [f64], &'a [f64]) {
        let (a, rest) = p.split_at(self.k);
        let (m, q) = rest.split_at(self.k * self.d);
        (a, m, q)
    }

    /// The parts of the objective that depend on no parameter.
    pub fn constant(&self) -> f64 {
        let (d, k, n) = (self.d as f64, self.k as f64, self.n as f64);
        let wishart_n = d + self.m + 1.0;
        let c = wishart_n * d * (self.gamma.ln() - 0.5 * 2f64.ln())
            - log_gamma_distrib(0.5 * wishart_n, self.d);
        -n * d * 0.5 * (2.0 * std::f64::consts::PI).ln() - k * c
    }

    pub fn objective(&self) -> f64 {
        gmm_objective(
            self.d,
            self.k,
            self.n,
            &self.alphas,
            &self.means,
            &self.icf,
            &self.x,
            self.gamma,
            self.m,
            self.constant(),
        )
    }

    pub fn objective_at(&self, p: &[f64]) -> f64 {
        let (a, m, q) = self.split(p);
        let c = self.constant();
        gmm_objective(
            self.d, self.k, self.n, a, m, q, &self.x, self.gamma, self.m, c,
        )
    }

    /// Our generated gradient, flattened like `flat`.
    pub fn grad_ours(&self) -> (f64, Vec<f64>) {
        let (value, (da, dm, dq)) = gmm_objective_grad(
            self.d,
            self.k,
            self.n,
            &self.alphas,
            &self.means,
            &self.icf,
            &self.x,
            self.gamma,
            self.m,
            self.constant(),
        );
        (value, [da, dm, dq].concat())
    }
}

/// `ln Γ_p(a)`, the log of the multivariate gamma function, with a Lanczos `ln Γ`.
pub fn log_gamma_distrib(a: f64, p: usize) -> f64 {
    let pf = p as f64;
    let mut out = 0.25 * pf * (pf - 1.0) * std::f64::consts::PI.ln();
    for j in 1..=p {
        out += ln_gamma(a + 0.5 * (1.0 - j as f64));
    }
    out
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms; about 15 digits).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The objective as ADBench's C++ reference computes it, written for `#[differentiate]`:
/// `constant` carries the terms without parameters (see `Gmm::constant`).
#[allow(clippy::too_many_arguments)]
#[differentiate(wrt(alphas, means, icf))]
pub fn gmm_objective(
    d: usize,
    k: usize,
    n: usize,
    alphas: &[f64],
    means: &[f64],
    icf: &[f64],
    x: &[f64],
    gamma: f64,
    m: f64,
    constant: f64,
) -> f64 {
    let icf_sz = d * (d + 1) / 2;
    let mut qdiags = vec![0.0; d * k];
    let mut sum_qs = vec![0.0; k];
    for ik in 0..k {
        let mut s = 0.0;
        for id in 0..d {
            let q = icf[ik * icf_sz + id];
            s += q;
            qdiags[ik * d + id] = q.exp();
        }
        sum_qs[ik] = s;
    }

    let mut slse = 0.0;
    let mut main_term = vec![0.0; k];
    let mut xcentered = vec![0.0; d];
    let mut qx = vec![0.0; d];
    for ix in 0..n {
        for ik in 0..k {
            for id in 0..d {
                xcentered[id] = x[ix * d + id] - means[ik * d + id];
                qx[id] = qdiags[ik * d + id] * xcentered[id];
            }
            let mut li = ik * icf_sz + d;
            for i in 0..d {
                for j in i + 1..d {
                    qx[j] += icf[li] * xcentered[i];
                    li += 1;
                }
            }
            let mut sq = 0.0;
            for id in 0..d {
                sq += qx[id] * qx[id];
            }
            main_term[ik] = alphas[ik] + sum_qs[ik] - 0.5 * sq;
        }
        slse += logsumexp(&main_term);
    }

    let mut prior = 0.0;
    for ik in 0..k {
        let mut frobenius = 0.0;
        for id in 0..d {
            frobenius += qdiags[ik * d + id] * qdiags[ik * d + id];
        }
        for li in ik * icf_sz + d..(ik + 1) * icf_sz {
            frobenius += icf[li] * icf[li];
        }
        prior += 0.5 * gamma * gamma * frobenius - m * sum_qs[ik];
    }
    constant + slse - n as f64 * logsumexp(alphas) + prior
}

/// `ln sum exp v`, shifted by the maximum.
#[differentiate]
pub fn logsumexp(v: &[f64]) -> f64 {
    let mut mx = v[0];
    for i in 1..v.len() {
        if v[i] > mx {
            mx = v[i];
        }
    }
    let mut s = 0.0;
    for i in 0..v.len() {
        s += (v[i] - mx).exp();
    }
    s.ln() + mx
}

/// The adjoint written by hand: one sweep over the points that runs each component forward
/// and immediately back (the softmax weights of a point are known once its `k` terms are),
/// recomputing the centred point instead of storing it.
pub fn hand_grad(g: &Gmm) -> (f64, Vec<f64>) {
    let (d, k, n) = (g.d, g.k, g.n);
    let icf_sz = d * (d + 1) / 2;
    let (alphas, means, icf) = (&g.alphas, &g.means, &g.icf);
    let mut d_alphas = vec![0.0; k];
    let mut d_means = vec![0.0; d * k];
    let mut d_icf = vec![0.0; icf_sz * k];
    let mut d_qdiags = vec![0.0; d * k];
    let mut d_sum_qs = vec![0.0; k];

    let mut qdiags = vec![0.0; d * k];
    let mut sum_qs = vec![0.0; k];
    for ik in 0..k {
        let q = &icf[ik * icf_sz..ik * icf_sz + d];
        sum_qs[ik] = q.iter().sum();
        for id in 0..d {
            qdiags[ik * d + id] = q[id].exp();
        }
    }

    // Qx of every component for the current point, kept for the backward sweep of the point
    let mut qx = vec![0.0; d * k];
    let mut xc = vec![0.0; d];
    let mut main_term = vec![0.0; k];
    let mut slse = 0.0;
    for ix in 0..n {
        let xi = &g.x[ix * d..(ix + 1) * d];
        for ik in 0..k {
            let mu = &means[ik * d..(ik + 1) * d];
            let qd = &qdiags[ik * d..(ik + 1) * d];
            let lt = &icf[ik * icf_sz + d..(ik + 1) * icf_sz];
            let out = &mut qx[ik * d..(ik + 1) * d];
            for id in 0..d {
                xc[id] = xi[id] - mu[id];
                out[id] = qd[id] * xc[id];
            }
            let mut li = 0;
            for i in 0..d {
                for j in i + 1..d {
                    out[j] += lt[li] * xc[i];
                    li += 1;
                }
            }
            let sq: f64 = out.iter().map(|v| v * v).sum();
            main_term[ik] = alphas[ik] + sum_qs[ik] - 0.5 * sq;
        }
        let mx = main_term.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let se: f64 = main_term.iter().map(|t| (t - mx).exp()).sum();
        let lse = se.ln() + mx;
        slse += lse;

        for ik in 0..k {
            // d lse / d main_term[ik] is the softmax weight
            let w = (main_term[ik] - lse).exp();
            d_alphas[ik] += w;
            d_sum_qs[ik] += w;
            let mu = &means[ik * d..(ik + 1) * d];
            let qd = &qdiags[ik * d..(ik + 1) * d];
            let lt = &icf[ik * icf_sz + d..(ik + 1) * icf_sz];
            let out = &qx[ik * d..(ik + 1) * d];
            let dqd = &mut d_qdiags[ik * d..(ik + 1) * d];
            let dlt = &mut d_icf[ik * icf_sz + d..(ik + 1) * icf_sz];
            let dmu = &mut d_means[ik * d..(ik + 1) * d];
            // d(-0.5 |Qx|^2) / dQx = -Qx
            for id in 0..d {
                xc[id] = xi[id] - mu[id];
            }
            let mut li = 0;
            for i in 0..d {
                let mut dxc = -w * out[i] * qd[i];
                dqd[i] -= w * out[i] * xc[i];
                for j in i + 1..d {
                    let dout = -w * out[j];
                    dlt[li] += dout * xc[i];
                    dxc += dout * lt[li];
                    li += 1;
                }
                dmu[i] -= dxc;
            }
        }
    }

    // -n logsumexp(alphas)
    let mx = alphas.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let se: f64 = alphas.iter().map(|a| (a - mx).exp()).sum();
    let lse_alphas = se.ln() + mx;
    for ik in 0..k {
        d_alphas[ik] -= n as f64 * (alphas[ik] - lse_alphas).exp();
    }

    // the Wishart prior
    let mut prior = 0.0;
    let gg = g.gamma * g.gamma;
    for ik in 0..k {
        let qd = &qdiags[ik * d..(ik + 1) * d];
        let lt = &icf[ik * icf_sz + d..(ik + 1) * icf_sz];
        let frobenius: f64 =
            qd.iter().map(|v| v * v).sum::<f64>() + lt.iter().map(|v| v * v).sum::<f64>();
        prior += 0.5 * gg * frobenius - g.m * sum_qs[ik];
        for id in 0..d {
            d_qdiags[ik * d + id] += gg * qd[id];
        }
        for (li, v) in lt.iter().enumerate() {
            d_icf[ik * icf_sz + d + li] += gg * v;
        }
        d_sum_qs[ik] -= g.m;
    }

    // qdiags = exp(q), sum_qs = sum q
    for ik in 0..k {
        for id in 0..d {
            d_icf[ik * icf_sz + id] += d_qdiags[ik * d + id] * qdiags[ik * d + id] + d_sum_qs[ik];
        }
    }

    let value = g.constant() + slse - n as f64 * lse_alphas + prior;
    let mut grad = d_alphas;
    grad.extend(d_means);
    grad.extend(d_icf);
    (value, grad)
}

/// The objective for the peers' scalar types, the same operations in the same order.
fn objective_peer<S: Peer>(g: &Gmm, alphas: &[S], means: &[S], icf: &[S], zero: S) -> S {
    let (d, k, n) = (g.d, g.k, g.n);
    let icf_sz = d * (d + 1) / 2;
    let mut qdiags = vec![zero; d * k];
    let mut sum_qs = vec![zero; k];
    for ik in 0..k {
        let mut s = zero;
        for id in 0..d {
            let q = icf[ik * icf_sz + id];
            s = s + q;
            qdiags[ik * d + id] = q.exp();
        }
        sum_qs[ik] = s;
    }
    let lse = |v: &[S]| {
        let mut mx = v[0];
        for &t in &v[1..] {
            if t > mx {
                mx = t;
            }
        }
        let mut s = zero;
        for &t in v {
            s = s + (t - mx).exp();
        }
        s.ln() + mx
    };
    let mut slse = zero;
    let mut main_term = vec![zero; k];
    let mut xc = vec![zero; d];
    let mut qx = vec![zero; d];
    for ix in 0..n {
        for ik in 0..k {
            for id in 0..d {
                xc[id] = -means[ik * d + id] + g.x[ix * d + id];
                qx[id] = qdiags[ik * d + id] * xc[id];
            }
            let mut li = ik * icf_sz + d;
            for i in 0..d {
                for j in i + 1..d {
                    qx[j] = qx[j] + icf[li] * xc[i];
                    li += 1;
                }
            }
            let mut sq = zero;
            for id in 0..d {
                sq = sq + qx[id] * qx[id];
            }
            main_term[ik] = alphas[ik] + sum_qs[ik] - sq * 0.5;
        }
        slse = slse + lse(&main_term);
    }
    let mut prior = zero;
    for ik in 0..k {
        let mut frobenius = zero;
        for id in 0..d {
            frobenius = frobenius + qdiags[ik * d + id] * qdiags[ik * d + id];
        }
        for li in ik * icf_sz + d..(ik + 1) * icf_sz {
            frobenius = frobenius + icf[li] * icf[li];
        }
        prior = prior + frobenius * (0.5 * g.gamma * g.gamma) - sum_qs[ik] * g.m;
    }
    slse - lse(alphas) * n as f64 + prior + g.constant()
}

/// Forward mode, one pass per parameter; `passes` limits them to the first parameters.
pub fn dual_grad(g: &Gmm, passes: usize) -> (f64, Vec<f64>) {
    let mut p: Vec<Dual64> = g.flat().into_iter().map(Dual64::from).collect();
    let mut grad = vec![0.0; p.len()];
    let mut value = 0.0;
    let (k, dk) = (g.k, g.k * g.d);
    for (i, gi) in grad.iter_mut().enumerate().take(passes) {
        p[i].eps = 1.0;
        let zero = Dual64::from(0.0);
        let y = objective_peer(g, &p[..k], &p[k..k + dk], &p[k + dk..], zero);
        p[i].eps = 0.0;
        value = y.re;
        *gi = y.eps;
    }
    (value, grad)
}

pub fn tape_grad(tape: &Tape, g: &Gmm) -> (f64, Vec<f64>) {
    tape.clear();
    let p = tape.add_vars(&g.flat());
    let (k, dk) = (g.k, g.k * g.d);
    let zero = tape.add_var(0.0);
    let y = objective_peer(g, &p[..k], &p[k..k + dk], &p[k + dk..], zero);
    let grads = y.grad();
    (y.val(), grads.wrt(&p))
}
