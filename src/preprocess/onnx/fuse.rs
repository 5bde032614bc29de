//! Graph rewrites before compiling: drop nodes no output depends on, fuse
//! `x * Sigmoid(x)` (SiLU as the exporters write it) into one node, and that SiLU into
//! the convolution before it.

use std::collections::{HashMap, HashSet};

use super::ops::{CONV_SILU, SILU};
use super::proto::NodeProto;

/// The nodes that some graph output depends on, in their order.
pub(crate) fn live_nodes(nodes: Vec<NodeProto>, outputs: &[String]) -> Vec<NodeProto> {
    let mut needed: HashSet<&str> = outputs.iter().map(|s| s.as_str()).collect();
    let mut keep = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate().rev() {
        if n.output.iter().any(|o| needed.contains(o.as_str())) {
            keep[i] = true;
            needed.extend(n.input.iter().filter(|s| !s.is_empty()).map(|s| s.as_str()));
        }
    }
    nodes
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(n, _)| n)
        .collect()
}

/// Replaces each `Mul(x, Sigmoid(x))` whose sigmoid feeds nothing else with one SiLU
/// node: one kernel and no intermediate tensor instead of two.
pub(crate) fn fuse_silu(nodes: Vec<NodeProto>, outputs: &[String]) -> Vec<NodeProto> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in &nodes {
        for i in n.input.iter().filter(|s| !s.is_empty()) {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    for o in outputs {
        *uses.entry(o.as_str()).or_default() += 1;
    }
    let default_domain = |n: &NodeProto| n.domain.is_empty() || n.domain == "ai.onnx";
    // Sigmoid output name -> (node index, its input).
    let sigmoids: HashMap<&str, (usize, &str)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            n.op_type == "Sigmoid"
                && default_domain(n)
                && n.input.len() == 1
                && n.output.len() == 1
                && uses.get(n.output[0].as_str()) == Some(&1)
        })
        .map(|(i, n)| (n.output[0].as_str(), (i, n.input[0].as_str())))
        .collect();
    let mut drop = HashSet::new();
    let mut fused: HashMap<usize, NodeProto> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.op_type != "Mul" || !default_domain(n) || n.input.len() != 2 || n.output.len() != 1 {
            continue;
        }
        let (a, b) = (n.input[0].as_str(), n.input[1].as_str());
        let hit = [(a, b), (b, a)].into_iter().find_map(|(x, s)| {
            sigmoids
                .get(s)
                .filter(|(_, sx)| *sx == x)
                .map(|(si, _)| (*si, x))
        });
        if let Some((si, x)) = hit
            && !drop.contains(&si)
        {
            drop.insert(si);
            fused.insert(
                i,
                NodeProto {
                    input: vec![x.to_string()],
                    output: n.output.clone(),
                    name: n.name.clone(),
                    op_type: SILU.to_string(),
                    domain: String::new(),
                    attribute: Vec::new(),
                },
            );
        }
    }
    nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(i, n)| fused.remove(&i).unwrap_or(n))
        .collect()
}

/// Replaces each Conv whose only reader is a SiLU (from [`fuse_silu`]) by one node that
/// applies the SiLU with the bias: one pass over the output instead of two.
pub(crate) fn fuse_conv_silu(nodes: Vec<NodeProto>, outputs: &[String]) -> Vec<NodeProto> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in &nodes {
        for i in n.input.iter().filter(|s| !s.is_empty()) {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    for o in outputs {
        *uses.entry(o.as_str()).or_default() += 1;
    }
    let default_domain = |n: &NodeProto| n.domain.is_empty() || n.domain == "ai.onnx";
    // Conv output name -> node index, for convolutions read once.
    let convs: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            n.op_type == "Conv"
                && default_domain(n)
                && n.output.len() == 1
                && uses.get(n.output[0].as_str()) == Some(&1)
        })
        .map(|(i, n)| (n.output[0].as_str(), i))
        .collect();
    let mut merged: HashMap<usize, String> = HashMap::new();
    let mut drop = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.op_type == SILU
            && let Some(&ci) = n.input.first().and_then(|x| convs.get(x.as_str()))
        {
            merged.insert(ci, n.output[0].clone());
            drop.insert(i);
        }
    }
    nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(i, mut n)| {
            if let Some(out) = merged.remove(&i) {
                n.op_type = CONV_SILU.to_string();
                n.output = vec![out];
            }
            n
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: outputs[0].to_string(),
            op_type: op.to_string(),
            domain: String::new(),
            attribute: Vec::new(),
        }
    }

    #[test]
    fn silu_is_fused_only_when_the_sigmoid_has_no_other_reader() {
        let nodes = vec![
            node("Conv", &["x", "w"], &["a"]),
            node("Sigmoid", &["a"], &["s"]),
            node("Mul", &["s", "a"], &["b"]),
            node("Sigmoid", &["b"], &["t"]),
            node("Mul", &["b", "t"], &["c"]),
            node("Add", &["c", "t"], &["y"]),
        ];
        let out = fuse_silu(nodes, &["y".to_string()]);
        let ops: Vec<&str> = out.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Conv", SILU, "Sigmoid", "Mul", "Add"]);
        assert_eq!(out[1].input, vec!["a".to_string()]);
        assert_eq!(out[1].output, vec!["b".to_string()]);
        // Then the SiLU joins the convolution.
        let out = fuse_conv_silu(out, &["y".to_string()]);
        let ops: Vec<&str> = out.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, [CONV_SILU, "Sigmoid", "Mul", "Add"]);
        assert_eq!(out[0].output, vec!["b".to_string()]);
    }

    #[test]
    fn dead_nodes_are_dropped() {
        let nodes = vec![
            node("Relu", &["x"], &["a"]),
            node("Einsum", &["x"], &["unused"]),
            node("Neg", &["a"], &["y"]),
        ];
        let out = live_nodes(nodes, &["y".to_string()]);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|n| n.op_type != "Einsum"));
    }
}
