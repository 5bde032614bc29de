//! The part of `onnx.proto` the runner reads, as prost messages. Field numbers are those
//! of the ONNX specification; fields not listed here (training info, functions, metadata,
//! documentation) are skipped by prost when decoding.

/// `ModelProto`: the file's root.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The IR version of the file.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// The operator sets the graph's nodes refer to.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// The tool that wrote the file.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// The graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Model-local functions (only their presence matters: nodes calling them are refused).
    #[prost(message, repeated, tag = "25")]
    pub functions: Vec<FunctionProto>,
}

/// `OperatorSetIdProto`: one operator set and its version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// Empty or `ai.onnx` for the default operator set.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// The operator set's version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `FunctionProto`, reduced to its name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionProto {
    /// The function's name (its op type).
    #[prost(string, tag = "1")]
    pub name: String,
    /// The function's domain.
    #[prost(string, tag = "10")]
    pub domain: String,
}

/// `GraphProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Nodes in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Weights and other constant tensors.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Sparse constant tensors (refused).
    #[prost(message, repeated, tag = "15")]
    pub sparse_initializer: Vec<SparseTensorProto>,
    /// Graph inputs (before IR version 4 these include the initializers).
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Graph outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input value names; an empty name is an omitted optional input.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names; an empty name is an unused optional output.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name (may be empty).
    #[prost(string, tag = "3")]
    pub name: String,
    /// The operator.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// The operator's domain; empty or `ai.onnx` for the default set.
    #[prost(string, tag = "7")]
    pub domain: String,
    /// The operator's attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto`. Graph-valued attributes (If/Loop bodies) are not decoded; their
/// `type` is enough to refuse them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// The attribute's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Set when the attribute refers to an attribute of an enclosing function.
    #[prost(string, tag = "21")]
    pub ref_attr_name: String,
    /// `AttributeType`: which of the value fields is in use.
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// FLOAT.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// INT.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// STRING (UTF-8 bytes).
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// TENSOR.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// FLOATS.
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    /// INTS.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    /// STRINGS.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
}

/// `AttributeProto.AttributeType` values the runner reads.
pub mod attribute_type {
    /// A float.
    pub const FLOAT: i32 = 1;
    /// An integer.
    pub const INT: i32 = 2;
    /// A string.
    pub const STRING: i32 = 3;
    /// A tensor.
    pub const TENSOR: i32 = 4;
    /// A list of floats.
    pub const FLOATS: i32 = 6;
    /// A list of integers.
    pub const INTS: i32 = 7;
}

/// `TensorProto`: a constant tensor.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Dimensions; empty for a scalar.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// `TensorProto.DataType`.
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Set when the tensor is a chunk of a larger one (refused).
    #[prost(message, optional, tag = "3")]
    pub segment: Option<Segment>,
    /// FLOAT values when not in `raw_data`.
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// INT32, INT16, INT8, UINT16, UINT8, BOOL, FLOAT16 and BFLOAT16 values (the last two
    /// as bit patterns) when not in `raw_data`.
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    /// STRING values (refused).
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_data: Vec<Vec<u8>>,
    /// INT64 values when not in `raw_data`.
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// The tensor's name.
    #[prost(string, tag = "8")]
    pub name: String,
    /// Values as little-endian bytes.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// DOUBLE values when not in `raw_data`.
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    /// UINT32 and UINT64 values when not in `raw_data`.
    #[prost(uint64, repeated, tag = "11")]
    pub uint64_data: Vec<u64>,
    /// Where the data lives when `data_location` is EXTERNAL.
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// 0: in this message; 1: EXTERNAL, in another file.
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// `TensorProto.DataType` values.
pub mod data_type {
    /// f32.
    pub const FLOAT: i32 = 1;
    /// u8.
    pub const UINT8: i32 = 2;
    /// i8.
    pub const INT8: i32 = 3;
    /// u16.
    pub const UINT16: i32 = 4;
    /// i16.
    pub const INT16: i32 = 5;
    /// i32.
    pub const INT32: i32 = 6;
    /// i64.
    pub const INT64: i32 = 7;
    /// Strings.
    pub const STRING: i32 = 8;
    /// bool.
    pub const BOOL: i32 = 9;
    /// f16.
    pub const FLOAT16: i32 = 10;
    /// f64.
    pub const DOUBLE: i32 = 11;
    /// u32.
    pub const UINT32: i32 = 12;
    /// u64.
    pub const UINT64: i32 = 13;
    /// bf16.
    pub const BFLOAT16: i32 = 16;
}

/// `TensorProto.Segment`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Segment {
    /// First element.
    #[prost(int64, tag = "1")]
    pub begin: i64,
    /// One past the last element.
    #[prost(int64, tag = "2")]
    pub end: i64,
}

/// `SparseTensorProto`, reduced to its dimensions (sparse tensors are refused).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SparseTensorProto {
    /// Dimensions of the dense tensor.
    #[prost(int64, repeated, tag = "3")]
    pub dims: Vec<i64>,
}

/// `StringStringEntryProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// Key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `ValueInfoProto`: a graph input or output.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// The value's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto`, tensor types only (the `oneof`'s other cases are skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// Set for a tensor.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

/// `TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    /// `TensorProto.DataType`.
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// The shape, when known.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// One entry per dimension.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a fixed size, a symbolic name, or neither.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// A fixed size.
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// A symbolic (dynamic) size.
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}
