//! Several backward passes of one pullback interleaved statement by statement (`jacobian`).
//!
//! A backward pass without loops is a chain of dependent floating-point operations whose
//! length, not its count of operations, sets its time. The passes for different output
//! cotangents share every forward value they recompute and are otherwise independent, so
//! `jacobian` runs them as *lanes* of one body: each lane is the backward statements with its
//! cotangents renamed (`d_x` → `d_x_lane1`), and with them every name bound from one (a
//! callee's gradients, `call3_d0`); a statement that names none of these (a
//! recomputed forward value, a binding of saved values) is kept once, and the lanes' copies
//! of every other statement follow each other, so that the processor overlaps their chains.
//! Branches on a record (`match branch0 { .. }`, `if` on a recomputed condition) are taken
//! once and their arms interleaved the same way. Within a lane the statements keep their
//! order, so each lane computes exactly what `backward` does for its cotangent.

use std::collections::HashSet;

use proc_macro2::{Group, Ident, TokenStream, TokenTree};
use quote::{quote, ToTokens};

/// The body of a function returning `[gradients; lanes]`: `body` is `backward`'s body (its
/// statements, ending in the gradient expression), whose cotangent names are `cotangents`;
/// `seeds(k)` is the statement binding lane `k`'s output cotangent under its renamed name
/// (given as the argument). `None` when the body is not a block of statements this pass
/// understands; the caller then calls `backward` once per lane.
pub fn interleaved(
    body: TokenStream,
    cotangents: &HashSet<String>,
    lanes: usize,
    seeds: impl Fn(usize, &Ident) -> TokenStream,
    output: &Ident,
) -> Option<TokenStream> {
    let mut present = HashSet::new();
    collect_idents(body.clone(), &mut present);
    let parsed: syn::Block = syn::parse2(quote!({ #body })).ok()?;
    let cotangents = &lane_values(&parsed, cotangents);
    let suffix = lane_suffix(&present, cotangents);
    let mut lane_bodies = Vec::with_capacity(lanes);
    for k in 0..lanes {
        let renamed = rename(body.clone(), cotangents, &format!("{suffix}{k}"));
        let block: syn::Block = syn::parse2(quote!({ #renamed })).ok()?;
        lane_bodies.push(block.stmts);
    }
    // the last statement of every lane is its gradient expression
    let mut tails = Vec::with_capacity(lanes);
    for stmts in &mut lane_bodies {
        match stmts.pop()? {
            syn::Stmt::Expr(tail, None) => tails.push(tail),
            _ => return None,
        }
    }
    let merged = merge(&lane_bodies)?;
    let seed_statements = (0..lanes).map(|k| {
        let name = Ident::new(&format!("{output}{suffix}{k}"), output.span());
        seeds(k, &name)
    });
    Some(quote! {
        #(#seed_statements)*
        #(#merged)*
        [#(#tails),*]
    })
}

/// The names that hold a different value in every lane: the cotangents, and every name a
/// `let` binds from an expression that reads one (a callee's gradients, `let (call3_d0,
/// call3_d1) = call3.backward(d_v)`), in program order, so that names bound from those
/// count too.
fn lane_values(body: &syn::Block, cotangents: &HashSet<String>) -> HashSet<String> {
    struct Bindings {
        lane: HashSet<String>,
    }
    impl<'ast> syn::visit::Visit<'ast> for Bindings {
        fn visit_local(&mut self, local: &'ast syn::Local) {
            if let Some(init) = &local.init {
                let mut read = HashSet::new();
                collect_idents(init.expr.to_token_stream(), &mut read);
                if let Some((_, diverge)) = &init.diverge {
                    collect_idents(diverge.to_token_stream(), &mut read);
                }
                if read.iter().any(|name| self.lane.contains(name)) {
                    let mut bound = BoundNames(&mut self.lane);
                    syn::visit::Visit::visit_pat(&mut bound, &local.pat);
                }
            }
            syn::visit::visit_local(self, local);
        }
    }
    let mut bindings = Bindings {
        lane: cotangents.clone(),
    };
    syn::visit::Visit::visit_block(&mut bindings, body);
    bindings.lane
}

/// The names a pattern binds (not the types it annotates them with).
struct BoundNames<'a>(&'a mut HashSet<String>);

impl<'ast> syn::visit::Visit<'ast> for BoundNames<'_> {
    fn visit_pat_ident(&mut self, pat: &'ast syn::PatIdent) {
        self.0.insert(pat.ident.to_string());
        syn::visit::visit_pat_ident(self, pat);
    }

    fn visit_type(&mut self, _: &'ast syn::Type) {}
}

/// A suffix that makes no renamed cotangent equal to a name already in the body.
fn lane_suffix(present: &HashSet<String>, cotangents: &HashSet<String>) -> String {
    let mut suffix = "_lane".to_string();
    while cotangents.iter().any(|c| {
        present
            .iter()
            .any(|p| p.starts_with(&format!("{c}{suffix}")))
    }) {
        suffix.insert(0, '_');
    }
    suffix
}

fn collect_idents(tokens: TokenStream, out: &mut HashSet<String>) {
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => {
                out.insert(ident.to_string());
            }
            TokenTree::Group(group) => collect_idents(group.stream(), out),
            _ => {}
        }
    }
}

fn rename(tokens: TokenStream, cotangents: &HashSet<String>, suffix: &str) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Ident(ident) if cotangents.contains(&ident.to_string()) => {
                TokenTree::Ident(Ident::new(&format!("{ident}{suffix}"), ident.span()))
            }
            TokenTree::Group(group) => {
                let mut renamed = Group::new(
                    group.delimiter(),
                    rename(group.stream(), cotangents, suffix),
                );
                renamed.set_span(group.span());
                TokenTree::Group(renamed)
            }
            other => other,
        })
        .collect()
}

fn same<T: ToTokens>(items: &[&T]) -> bool {
    let first = items[0].to_token_stream().to_string();
    items[1..]
        .iter()
        .all(|item| item.to_token_stream().to_string() == first)
}

/// The lanes' statement lists as one: identical statements once, branches taken once with
/// their arms merged, every other statement once per lane, in lane order.
fn merge(lanes: &[Vec<syn::Stmt>]) -> Option<Vec<syn::Stmt>> {
    let count = lanes[0].len();
    if lanes.iter().any(|stmts| stmts.len() != count) {
        return None;
    }
    let mut merged = Vec::new();
    for i in 0..count {
        let stmts: Vec<&syn::Stmt> = lanes.iter().map(|stmts| &stmts[i]).collect();
        if same(&stmts) {
            merged.push(stmts[0].clone());
            continue;
        }
        if let Some(branch) = merge_branch(&stmts)? {
            merged.push(branch);
            continue;
        }
        merged.extend(stmts.into_iter().cloned());
    }
    Some(merged)
}

/// A `match` or `if` statement whose scrutinee or condition is the same in every lane, with
/// its arms merged; `Some(None)` when the statement is not such a branch.
fn merge_branch(stmts: &[&syn::Stmt]) -> Option<Option<syn::Stmt>> {
    let exprs: Vec<(&syn::Expr, &Option<syn::token::Semi>)> = match stmts
        .iter()
        .map(|stmt| match stmt {
            syn::Stmt::Expr(expr, semi) => Some((expr, semi)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
    {
        Some(exprs) => exprs,
        None => return Some(None),
    };
    let (first, semi) = exprs[0];
    match first {
        syn::Expr::Match(first_match) => {
            let matches = each_as(&exprs, |expr| match expr {
                syn::Expr::Match(m) => Some(m),
                _ => None,
            })?;
            let scrutinees: Vec<&syn::Expr> = matches.iter().map(|m| &*m.expr).collect();
            if !same(&scrutinees)
                || matches
                    .iter()
                    .any(|m| m.arms.len() != first_match.arms.len())
            {
                return Some(None);
            }
            let mut merged = first_match.clone();
            for (a, arm) in merged.arms.iter_mut().enumerate() {
                let arms: Vec<&syn::Arm> = matches.iter().map(|m| &m.arms[a]).collect();
                let pats: Vec<&syn::Pat> = arms.iter().map(|arm| &arm.pat).collect();
                if !same(&pats) || arms.iter().any(|arm| arm.guard.is_some()) {
                    return Some(None);
                }
                let bodies: Vec<&syn::Expr> = arms.iter().map(|arm| &*arm.body).collect();
                *arm.body = merge_block_expr(&bodies)?;
            }
            Some(Some(syn::Stmt::Expr(syn::Expr::Match(merged), *semi)))
        }
        syn::Expr::If(first_if) => {
            let ifs = each_as(&exprs, |expr| match expr {
                syn::Expr::If(e) => Some(e),
                _ => None,
            })?;
            let conditions: Vec<&syn::Expr> = ifs.iter().map(|e| &*e.cond).collect();
            if !same(&conditions) {
                return Some(None);
            }
            let mut merged = first_if.clone();
            let thens: Vec<Vec<syn::Stmt>> =
                ifs.iter().map(|e| e.then_branch.stmts.clone()).collect();
            merged.then_branch.stmts = merge(&thens)?;
            if let Some((_, otherwise)) = &mut merged.else_branch {
                let elses: Vec<&syn::Expr> = ifs
                    .iter()
                    .map(|e| e.else_branch.as_ref().map(|(_, other)| &**other))
                    .collect::<Option<_>>()?;
                **otherwise = merge_block_expr(&elses)?;
            }
            Some(Some(syn::Stmt::Expr(syn::Expr::If(merged), *semi)))
        }
        _ => Some(None),
    }
}

/// Every lane's expression as the same kind of expression (all lanes have the same shape).
fn each_as<'a, T>(
    exprs: &[(&'a syn::Expr, &Option<syn::token::Semi>)],
    kind: impl Fn(&'a syn::Expr) -> Option<&'a T>,
) -> Option<Vec<&'a T>> {
    exprs.iter().map(|(expr, _)| kind(expr)).collect()
}

/// Arms and `else` branches: blocks whose statements are merged.
fn merge_block_expr(bodies: &[&syn::Expr]) -> Option<syn::Expr> {
    let blocks: Vec<&syn::ExprBlock> = bodies
        .iter()
        .map(|body| match body {
            syn::Expr::Block(block) if block.label.is_none() => Some(block),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let stmts: Vec<Vec<syn::Stmt>> = blocks.iter().map(|b| b.block.stmts.clone()).collect();
    // a block's value (an arm yielding one) cannot be one per lane
    if stmts
        .iter()
        .any(|s| matches!(s.last(), Some(syn::Stmt::Expr(_, None))))
    {
        return None;
    }
    let mut merged = blocks[0].clone();
    merged.block.stmts = merge(&stmts)?;
    Some(syn::Expr::Block(merged))
}
