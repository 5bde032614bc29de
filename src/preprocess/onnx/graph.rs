//! Loading: decode the file, check every node against what the runner implements,
//! compile the nodes, fold what depends only on constants, decide where each value lives
//! and when it can be freed.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use prost::Message;

use super::fuse::{fuse_conv_silu, fuse_silu, live_nodes};
use super::ops::{CONV_SILU, NodeCtx, Op, compile};
use super::proto::{ModelProto, NodeProto, ValueInfoProto};
use super::tensor::{dtype_of, read_tensor, type_name};

/// The opsets of the default domain whose operator forms the runner knows.
pub(crate) const OPSETS: std::ops::RangeInclusive<i64> = 7..=22;

/// Where a run-time value lives.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Place {
    /// The model's device: everything computed from the inputs' data.
    Device,
    /// The CPU: small i64 shape arithmetic (from Shape, Size).
    Host,
}

/// A node's input at run time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ValueRef {
    /// A slot filled while running.
    Slot(usize),
    /// An entry of the constant table.
    Const(usize),
}

/// One compiled node.
pub(crate) struct Step {
    /// "node 'name' (OpType)", for messages.
    pub label: String,
    /// The op type, with a Conv's kernel and groups: the bucket of [`super::OnnxModel::profile`].
    pub kind: String,
    pub op: Box<dyn Op>,
    /// Per input slot of the node: `None` for omitted inputs and constants the op took.
    pub inputs: Vec<Option<ValueRef>>,
    /// Per output: the slot it fills, `None` if nothing reads it.
    pub outputs: Vec<Option<usize>>,
    /// Slots whose last reader is this step.
    pub free: Vec<usize>,
}

/// A graph input the caller provides.
pub(crate) struct GraphInput {
    pub name: String,
    pub dims: Vec<Option<usize>>,
    pub dtype: DType,
    pub slot: usize,
}

/// A loaded, compiled graph.
pub(crate) struct Plan {
    /// The file, for messages.
    pub file: String,
    pub device: Device,
    pub inputs: Vec<GraphInput>,
    pub outputs: Vec<(String, ValueRef)>,
    pub steps: Vec<Step>,
    /// Constants that steps read at run time, each on the device its readers run on.
    pub consts: Vec<Tensor>,
    pub n_slots: usize,
}

/// A value known while loading.
enum Known {
    Const(Tensor),
    Slot(usize, Place),
}

fn value_info_dims(v: &ValueInfoProto) -> (Option<i32>, Option<Vec<Option<usize>>>) {
    let Some(tt) = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref()) else {
        return (None, None);
    };
    let dims = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| d.dim_value.and_then(|v| usize::try_from(v).ok()))
            .collect()
    });
    (Some(tt.elem_type), dims)
}

fn label(n: &NodeProto) -> String {
    if n.name.is_empty() {
        format!(
            "node {} ({})",
            n.output.first().map(|s| s.as_str()).unwrap_or("?"),
            n.op_type
        )
    } else {
        format!("node '{}' ({})", n.name, n.op_type)
    }
}

/// Reads and compiles `path` for `device`.
pub(crate) fn load(path: &Path, device: &Device) -> candle_core::Result<Plan> {
    let file = path.display().to_string();
    let fail = |m: String| candle_core::Error::Msg(format!("{file}: {m}"));
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| fail(format!("not an ONNX model (protobuf decoding failed: {e})")))?;
    drop(bytes);
    let graph = model
        .graph
        .ok_or_else(|| fail("the ONNX model has no graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| fail("the model imports no default-domain opset".into()))?;
    if !OPSETS.contains(&opset) {
        return Err(fail(format!(
            "opset {opset} is not implemented (the runner knows opsets {} to {}); \
             re-export the model with an opset in that range",
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    let mut errors: Vec<String> = Vec::new();
    if !graph.sparse_initializer.is_empty() {
        errors.push("sparse initializers are not implemented".into());
    }

    let mut known: HashMap<String, Known> = HashMap::new();
    for t in &graph.initializer {
        match read_tensor(t) {
            Ok(v) => {
                known.insert(t.name.clone(), Known::Const(v));
            }
            Err(e) => {
                errors.push(format!("initializer '{}': {e}", t.name));
                // A placeholder, so its readers do not report it missing as well.
                known.insert(t.name.clone(), Known::Slot(usize::MAX, Place::Device));
            }
        }
    }
    let mut n_slots = 0;
    let mut inputs = Vec::new();
    for vi in &graph.input {
        // Before IR version 4, initializers are listed among the inputs too.
        if known.contains_key(&vi.name) {
            continue;
        }
        let (elem, dims) = value_info_dims(vi);
        let dtype = match elem.and_then(dtype_of) {
            Some(d) => d,
            None => {
                errors.push(format!(
                    "graph input '{}' has type {}, which is not implemented",
                    vi.name,
                    elem.map(type_name)
                        .unwrap_or_else(|| "other than a tensor".into())
                ));
                DType::F32
            }
        };
        known.insert(vi.name.clone(), Known::Slot(n_slots, Place::Device));
        inputs.push(GraphInput {
            name: vi.name.clone(),
            dims: dims.unwrap_or_default(),
            dtype,
            slot: n_slots,
        });
        n_slots += 1;
    }
    let output_names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let nodes = fuse_silu(live_nodes(graph.node, &output_names), &output_names);
    let nodes = fuse_conv_silu(nodes, &output_names);

    let cpu = Device::Cpu;
    let mut steps: Vec<Step> = Vec::new();
    // Per step: where it runs (to place the constants it reads).
    let mut step_place: Vec<Place> = Vec::new();
    // Names of the constants steps read, per step input.
    let mut const_reads: Vec<(usize, usize, String)> = Vec::new();
    for node in &nodes {
        let lbl = label(node);
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            errors.push(format!(
                "{lbl}: operator {}::{} of a custom domain is not implemented",
                node.domain, node.op_type
            ));
            mark_outputs(node, &mut known, &mut n_slots);
            continue;
        }
        // Resolve inputs.
        let mut slots: Vec<Option<Option<&Tensor>>> = Vec::with_capacity(node.input.len());
        let mut missing = false;
        let mut any_device = false;
        for name in &node.input {
            if name.is_empty() {
                slots.push(None);
                continue;
            }
            match known.get(name) {
                Some(Known::Const(t)) => slots.push(Some(Some(t))),
                Some(Known::Slot(_, p)) => {
                    any_device |= *p == Place::Device;
                    slots.push(Some(None));
                }
                None => {
                    errors.push(format!(
                        "{lbl}: input '{name}' is not produced by any earlier node \
                         (the graph is not in topological order, or incomplete)"
                    ));
                    missing = true;
                    slots.push(Some(None));
                }
            }
        }
        if missing {
            mark_outputs(node, &mut known, &mut n_slots);
            continue;
        }
        let all_const = slots.iter().all(|s| !matches!(s, Some(None)));
        let shape_op = matches!(node.op_type.as_str(), "Shape" | "Size");
        let place = if shape_op || !any_device {
            Place::Host
        } else {
            Place::Device
        };
        let run_dev = if all_const || place == Place::Host {
            &cpu
        } else {
            device
        };
        let outputs_present: Vec<bool> = node.output.iter().map(|o| !o.is_empty()).collect();
        let (compiled, unread, taken) = {
            let ctx = NodeCtx::new(
                &node.op_type,
                opset,
                run_dev,
                &node.attribute,
                slots,
                outputs_present,
            );
            let compiled = compile(&ctx);
            let taken: Vec<bool> = (0..node.input.len()).map(|i| ctx.taken(i)).collect();
            (compiled, ctx.unread_attributes(), taken)
        };
        let op = match compiled {
            Err(e) => {
                errors.push(format!("{lbl}: {e}"));
                mark_outputs(node, &mut known, &mut n_slots);
                continue;
            }
            Ok(op) => op,
        };
        if !unread.is_empty() {
            errors.push(format!(
                "{lbl}: attribute{} {} not implemented",
                if unread.len() > 1 { "s" } else { "" },
                unread.join(", ")
            ));
            mark_outputs(node, &mut known, &mut n_slots);
            continue;
        }
        if all_const {
            // Fold now, on the CPU.
            let args: Vec<Option<Tensor>> = node
                .input
                .iter()
                .zip(&taken)
                .map(|(name, &t)| match known.get(name) {
                    Some(Known::Const(c)) if !t => Some(c.clone()),
                    _ => None,
                })
                .collect();
            match op.run(&args) {
                Ok(outs) => {
                    for (i, name) in node.output.iter().enumerate() {
                        if name.is_empty() {
                            continue;
                        }
                        match outs.get(i) {
                            Some(t) => {
                                known.insert(name.clone(), Known::Const(t.clone()));
                            }
                            None => errors.push(format!("{lbl}: output {i} is not produced")),
                        }
                    }
                }
                Err(e) => {
                    errors.push(format!("{lbl}: evaluating it at load failed: {e}"));
                    mark_outputs(node, &mut known, &mut n_slots);
                }
            }
            continue;
        }
        let step_index = steps.len();
        let mut refs = Vec::with_capacity(node.input.len());
        for (i, name) in node.input.iter().enumerate() {
            if name.is_empty() || taken[i] {
                refs.push(None);
                continue;
            }
            match known.get(name) {
                Some(Known::Slot(s, _)) => refs.push(Some(ValueRef::Slot(*s))),
                Some(Known::Const(_)) => {
                    // Filled in below, once each constant's device is known.
                    const_reads.push((step_index, i, name.clone()));
                    refs.push(None);
                }
                None => refs.push(None),
            }
        }
        let out_place = if shape_op { Place::Host } else { place };
        let mut outs = Vec::with_capacity(node.output.len());
        for name in &node.output {
            if name.is_empty() {
                outs.push(None);
            } else {
                known.insert(name.clone(), Known::Slot(n_slots, out_place));
                outs.push(Some(n_slots));
                n_slots += 1;
            }
        }
        steps.push(Step {
            label: lbl,
            kind: kind_of(node, &known),
            op,
            inputs: refs,
            outputs: outs,
            free: Vec::new(),
        });
        step_place.push(place);
    }

    let mut outputs = Vec::new();
    let mut const_outputs: Vec<(usize, String)> = Vec::new();
    for name in &output_names {
        match known.get(name) {
            Some(Known::Slot(s, _)) => outputs.push((name.clone(), ValueRef::Slot(*s))),
            Some(Known::Const(_)) => {
                const_outputs.push((outputs.len(), name.clone()));
                outputs.push((name.clone(), ValueRef::Const(0)));
            }
            None => errors.push(format!("graph output '{name}' is not produced by any node")),
        }
    }
    if !errors.is_empty() {
        return Err(fail(format!(
            "the ONNX runner cannot run this model (opset {opset}, producer '{}'):\n  - {}",
            model.producer_name,
            errors.join("\n  - ")
        )));
    }

    // The constant table: one copy per (constant, device) that steps read.
    let mut consts: Vec<Tensor> = Vec::new();
    let mut const_index: HashMap<(String, bool), usize> = HashMap::new();
    let mut place_const = |name: &str, on_device: bool| -> candle_core::Result<usize> {
        if let Some(&i) = const_index.get(&(name.to_string(), on_device)) {
            return Ok(i);
        }
        let Some(Known::Const(t)) = known.get(name) else {
            return Err(fail(format!("constant '{name}' vanished while loading")));
        };
        let t = if on_device {
            t.to_device(device)?
        } else {
            t.clone()
        };
        consts.push(t);
        const_index.insert((name.to_string(), on_device), consts.len() - 1);
        Ok(consts.len() - 1)
    };
    for (step, input, name) in const_reads {
        let on_device = step_place[step] == Place::Device;
        let i = place_const(&name, on_device)?;
        steps[step].inputs[input] = Some(ValueRef::Const(i));
    }
    for (pos, name) in const_outputs {
        let i = place_const(&name, true)?;
        outputs[pos].1 = ValueRef::Const(i);
    }

    // Free each slot after its last reader; graph outputs are kept.
    let mut last_use: Vec<Option<usize>> = vec![None; n_slots];
    for (i, s) in steps.iter().enumerate() {
        for r in s.inputs.iter().flatten() {
            if let ValueRef::Slot(slot) = r {
                last_use[*slot] = Some(i);
            }
        }
    }
    for (_, r) in &outputs {
        if let ValueRef::Slot(slot) = r {
            last_use[*slot] = Some(usize::MAX);
        }
    }
    for (slot, last) in last_use.iter().enumerate() {
        match last {
            Some(usize::MAX) => {}
            Some(i) => steps[*i].free.push(slot),
            None => {
                // Never read: free right after it is made (or never filled).
                if let Some(i) = steps.iter().position(|s| s.outputs.contains(&Some(slot))) {
                    steps[i].free.push(slot);
                }
            }
        }
    }

    Ok(Plan {
        file,
        device: device.clone(),
        inputs,
        outputs,
        steps,
        consts,
        n_slots,
    })
}

/// The profile bucket of `node`: its op type, and for a Conv the kernel size and whether
/// it is depthwise.
fn kind_of(node: &NodeProto, known: &HashMap<String, Known>) -> String {
    let silu = node.op_type == CONV_SILU;
    if node.op_type != "Conv" && !silu {
        return node.op_type.clone();
    }
    let group = node
        .attribute
        .iter()
        .find(|a| a.name == "group")
        .map(|a| a.i)
        .unwrap_or(1);
    let kernel = match node.input.get(1).and_then(|w| known.get(w)) {
        Some(Known::Const(w)) => w.dims()[2.min(w.rank())..]
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x"),
        _ => "?".into(),
    };
    let depthwise = match node.input.get(1).and_then(|w| known.get(w)) {
        Some(Known::Const(w)) => group > 1 && w.dims().get(1) == Some(&1),
        _ => false,
    };
    let act = if silu { "+SiLU" } else { "" };
    match (group, depthwise) {
        (1, _) => format!("Conv {kernel}{act}"),
        (_, true) => format!("Conv {kernel} depthwise{act}"),
        _ => format!("Conv {kernel} grouped{act}"),
    }
}

/// Gives a node that could not be compiled run-time outputs, so that its readers are
/// still checked (and only their own problems reported).
fn mark_outputs(node: &NodeProto, known: &mut HashMap<String, Known>, n_slots: &mut usize) {
    for name in node.output.iter().filter(|o| !o.is_empty()) {
        known.insert(name.clone(), Known::Slot(*n_slots, Place::Device));
        *n_slots += 1;
    }
}
