//! ADBench's LSTM objective (Srajer et al. 2018, section 4.3): a stack of `l` diagonal LSTM
//! layers of hidden size `b` reads a sequence of `c` characters (each a vector of `b`
//! values) and predicts the next one; the loss is the mean cross-entropy of the predictions
//! (the log-normaliser carries ADBench's `+ 2`). Differentiated with respect to the main
//! parameters (per layer: four gate weights, then four gate biases, `b` each) and the extra
//! parameters (input weights, output weights, output biases).

use super::rng::Rng;
use super::Peer;
use autodiff::prelude::*;
use num_dual::Dual64;
use reverse::{Gradient, Tape};

pub struct Lstm {
    pub l: usize,
    pub c: usize,
    pub b: usize,
    pub main: Vec<f64>,
    pub extra: Vec<f64>,
    pub state: Vec<f64>,
    pub sequence: Vec<f64>,
}

impl Lstm {
    pub fn new(l: usize, c: usize, b: usize) -> Self {
        let mut rng = Rng::new(0x1575_0000 + (l * 100_000 + c * 100 + b) as u64);
        Lstm {
            l,
            c,
            b,
            main: rng.uniforms(8 * b * l, -1.0, 1.0),
            extra: rng.uniforms(3 * b, -1.0, 1.0),
            state: rng.uniforms(2 * b * l, -1.0, 1.0),
            sequence: rng.uniforms(c * b, 0.0, 1.0),
        }
    }

    pub fn params(&self) -> usize {
        self.main.len() + self.extra.len()
    }

    /// The differentiated parameters in one vector: main, then extra.
    pub fn flat(&self) -> Vec<f64> {
        [&self.main[..], &self.extra].concat()
    }

    pub fn objective(&self) -> f64 {
        let s = self;
        lstm_objective(s.l, s.c, s.b, &s.main, &s.extra, &s.state, &s.sequence)
    }

    pub fn objective_at(&self, p: &[f64]) -> f64 {
        let (main, extra) = p.split_at(self.main.len());
        let s = self;
        lstm_objective(s.l, s.c, s.b, main, extra, &s.state, &s.sequence)
    }

    pub fn grad_ours(&self) -> (f64, Vec<f64>) {
        let s = self;
        let (value, (d_main, d_extra)) =
            lstm_objective_grad(s.l, s.c, s.b, &s.main, &s.extra, &s.state, &s.sequence);
        (value, [d_main, d_extra].concat())
    }
}

#[differentiate(wrt(main, extra))]
pub fn lstm_objective(
    l: usize,
    c: usize,
    b: usize,
    main: &[f64],
    extra: &[f64],
    state: &[f64],
    sequence: &[f64],
) -> f64 {
    let mut st = state.to_vec();
    let mut ypred = vec![0.0; b];
    let mut total = 0.0;
    let mut count = 0;
    for t in 0..c - 1 {
        for i in 0..b {
            ypred[i] = sequence[t * b + i] * extra[i];
        }
        for layer in 0..l {
            let p = 8 * b * layer;
            let s = 2 * b * layer;
            for i in 0..b {
                let input = if layer == 0 {
                    ypred[i]
                } else {
                    st[s - 2 * b + i]
                };
                let hidden = st[s + i];
                let forget = 1.0 / (1.0 + (-(input * main[p + i] + main[p + 4 * b + i])).exp());
                let ingate =
                    1.0 / (1.0 + (-(hidden * main[p + b + i] + main[p + 5 * b + i])).exp());
                let outgate =
                    1.0 / (1.0 + (-(input * main[p + 2 * b + i] + main[p + 6 * b + i])).exp());
                let change = (hidden * main[p + 3 * b + i] + main[p + 7 * b + i]).tanh();
                let cell = st[s + b + i] * forget + ingate * change;
                st[s + b + i] = cell;
                st[s + i] = outgate * cell.tanh();
            }
        }
        let top = 2 * b * (l - 1);
        let mut sum_exp = 0.0;
        for i in 0..b {
            ypred[i] = st[top + i] * extra[b + i] + extra[2 * b + i];
            sum_exp += ypred[i].exp();
        }
        let lse = (sum_exp + 2.0).ln();
        for i in 0..b {
            total += sequence[(t + 1) * b + i] * (ypred[i] - lse);
        }
        count += b;
    }
    -total / count as f64
}

/// What the hand-written backward pass reads of one cell at one step.
#[derive(Clone, Copy, Default)]
struct Cell {
    input: f64,
    hidden: f64,
    cell: f64,
    forget: f64,
    ingate: f64,
    outgate: f64,
    change: f64,
    tanh_cell: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Back-propagation through time written by hand: the forward pass keeps the gates of every
/// cell at every step in one preallocated buffer, the backward pass walks it in reverse.
pub fn hand_grad(s: &Lstm) -> (f64, Vec<f64>) {
    let (l, c, b) = (s.l, s.c, s.b);
    let (main, extra, seq) = (&s.main, &s.extra, &s.sequence);
    let steps = c - 1;
    let mut cells = vec![Cell::default(); steps * l * b];
    // per step: the predictions and exp(ypred) / (sum + 2)
    let mut ypred = vec![0.0; steps * b];
    let mut soft = vec![0.0; steps * b];
    let mut st = s.state.clone();
    let mut input = vec![0.0; b];
    let mut total = 0.0;
    for t in 0..steps {
        for i in 0..b {
            input[i] = seq[t * b + i] * extra[i];
        }
        for layer in 0..l {
            let (p, so) = (8 * b * layer, 2 * b * layer);
            for i in 0..b {
                let x = if layer == 0 {
                    input[i]
                } else {
                    st[so - 2 * b + i]
                };
                let h = st[so + i];
                let f = sigmoid(x * main[p + i] + main[p + 4 * b + i]);
                let ig = sigmoid(h * main[p + b + i] + main[p + 5 * b + i]);
                let og = sigmoid(x * main[p + 2 * b + i] + main[p + 6 * b + i]);
                let ch = (h * main[p + 3 * b + i] + main[p + 7 * b + i]).tanh();
                let old = st[so + b + i];
                let cell = old * f + ig * ch;
                let tc = cell.tanh();
                st[so + b + i] = cell;
                st[so + i] = og * tc;
                cells[(t * l + layer) * b + i] = Cell {
                    input: x,
                    hidden: h,
                    cell: old,
                    forget: f,
                    ingate: ig,
                    outgate: og,
                    change: ch,
                    tanh_cell: tc,
                };
            }
        }
        let top = 2 * b * (l - 1);
        let y = &mut ypred[t * b..(t + 1) * b];
        let mut sum_exp = 0.0;
        for i in 0..b {
            y[i] = st[top + i] * extra[b + i] + extra[2 * b + i];
            sum_exp += y[i].exp();
        }
        let norm = sum_exp + 2.0;
        let lse = norm.ln();
        for i in 0..b {
            soft[t * b + i] = y[i].exp() / norm;
            total += seq[(t + 1) * b + i] * (y[i] - lse);
        }
    }
    let count = (steps * b) as f64;
    let value = -total / count;

    let mut d_main = vec![0.0; main.len()];
    let mut d_extra = vec![0.0; extra.len()];
    // cotangents of the state: hidden and cell of every layer
    let mut dh = vec![0.0; l * b];
    let mut dc = vec![0.0; l * b];
    let d_total = -1.0 / count;
    for t in (0..steps).rev() {
        let gold = &seq[(t + 1) * b..(t + 2) * b];
        let gold_sum: f64 = gold.iter().sum();
        let top = l - 1;
        for i in 0..b {
            // total += gold (y - lse), lse = ln(sum exp y + 2)
            let dy = d_total * (gold[i] - gold_sum * soft[t * b + i]);
            let k = &cells[(t * l + top) * b + i];
            let h_top = k.outgate * k.tanh_cell;
            d_extra[b + i] += dy * h_top;
            d_extra[2 * b + i] += dy;
            dh[top * b + i] += dy * extra[b + i];
        }
        for layer in (0..l).rev() {
            let p = 8 * b * layer;
            for i in 0..b {
                let k = &cells[(t * l + layer) * b + i];
                let d_hidden = dh[layer * b + i];
                let d_og = d_hidden * k.tanh_cell;
                let d_cell =
                    dc[layer * b + i] + d_hidden * k.outgate * (1.0 - k.tanh_cell * k.tanh_cell);
                let d_zf = d_cell * k.cell * k.forget * (1.0 - k.forget);
                let d_zi = d_cell * k.change * k.ingate * (1.0 - k.ingate);
                let d_zo = d_og * k.outgate * (1.0 - k.outgate);
                let d_zc = d_cell * k.ingate * (1.0 - k.change * k.change);
                d_main[p + i] += d_zf * k.input;
                d_main[p + 4 * b + i] += d_zf;
                d_main[p + b + i] += d_zi * k.hidden;
                d_main[p + 5 * b + i] += d_zi;
                d_main[p + 2 * b + i] += d_zo * k.input;
                d_main[p + 6 * b + i] += d_zo;
                d_main[p + 3 * b + i] += d_zc * k.hidden;
                d_main[p + 7 * b + i] += d_zc;
                // the state before this step
                dh[layer * b + i] = d_zi * main[p + b + i] + d_zc * main[p + 3 * b + i];
                dc[layer * b + i] = d_cell * k.forget;
                let d_input = d_zf * main[p + i] + d_zo * main[p + 2 * b + i];
                if layer == 0 {
                    d_extra[i] += d_input * seq[t * b + i];
                } else {
                    dh[(layer - 1) * b + i] += d_input;
                }
            }
        }
    }
    let mut grad = d_main;
    grad.extend(d_extra);
    (value, grad)
}

/// The objective for the peers' scalar types; `constant` lifts the inputs that are not
/// differentiated (the initial state, the sequence).
fn objective_peer<S: Peer>(s: &Lstm, main: &[S], extra: &[S], constant: impl Fn(f64) -> S) -> S {
    let (l, c, b) = (s.l, s.c, s.b);
    let seq = &s.sequence;
    let sigmoid = |x: S| (x.exp() + 1.0).recip() * -1.0 + 1.0;
    let mut st: Vec<S> = s.state.iter().map(|&v| constant(v)).collect();
    let zero = constant(0.0);
    let mut ypred = vec![zero; b];
    let mut total = zero;
    for t in 0..c - 1 {
        for i in 0..b {
            ypred[i] = extra[i] * seq[t * b + i];
        }
        for layer in 0..l {
            let (p, so) = (8 * b * layer, 2 * b * layer);
            for i in 0..b {
                let x = if layer == 0 {
                    ypred[i]
                } else {
                    st[so - 2 * b + i]
                };
                let h = st[so + i];
                let f = sigmoid(x * main[p + i] + main[p + 4 * b + i]);
                let ig = sigmoid(h * main[p + b + i] + main[p + 5 * b + i]);
                let og = sigmoid(x * main[p + 2 * b + i] + main[p + 6 * b + i]);
                let ch = (h * main[p + 3 * b + i] + main[p + 7 * b + i]).tanh();
                let cell = st[so + b + i] * f + ig * ch;
                st[so + b + i] = cell;
                st[so + i] = og * cell.tanh();
            }
        }
        let top = 2 * b * (l - 1);
        let mut sum_exp = zero;
        for i in 0..b {
            ypred[i] = st[top + i] * extra[b + i] + extra[2 * b + i];
            sum_exp = sum_exp + ypred[i].exp();
        }
        let lse = (sum_exp + 2.0).ln();
        for i in 0..b {
            total = total + (ypred[i] - lse) * seq[(t + 1) * b + i];
        }
    }
    total * (-1.0 / ((c - 1) * b) as f64)
}

/// Forward mode, one pass per parameter; `passes` limits them to the first parameters.
pub fn dual_grad(s: &Lstm, passes: usize) -> (f64, Vec<f64>) {
    let mut p: Vec<Dual64> = s.flat().into_iter().map(Dual64::from).collect();
    let mut grad = vec![0.0; p.len()];
    let mut value = 0.0;
    let m = s.main.len();
    for (i, gi) in grad.iter_mut().enumerate().take(passes) {
        p[i].eps = 1.0;
        let y = objective_peer(s, &p[..m], &p[m..], Dual64::from);
        p[i].eps = 0.0;
        value = y.re;
        *gi = y.eps;
    }
    (value, grad)
}

pub fn tape_grad(tape: &Tape, s: &Lstm) -> (f64, Vec<f64>) {
    tape.clear();
    let p = tape.add_vars(&s.flat());
    let m = s.main.len();
    let y = objective_peer(s, &p[..m], &p[m..], |v| tape.add_var(v));
    let grads = y.grad();
    (y.val(), grads.wrt(&p))
}
