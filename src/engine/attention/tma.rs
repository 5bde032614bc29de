//! TMA descriptors for the warp-specialised attention kernels
//! (`kernels/flash_attention_ws.py`): each of q, k and v is described to the copy engine
//! as a 2-D `[rows, row_stride]` bf16 matrix, so one descriptor serves every (batch, head);
//! the 8-bit kernels' padded INT8 copies of q and k are dense byte matrices.

use candle_core::Result;
use candle_core::cuda::cudarc::driver::DeviceRepr;
use candle_core::cuda::cudarc::driver::sys;

use super::row_view::RowView;
use crate::engine::cuda_kernels::TmaBoxes;

/// A `CUtensorMap` as the kernel receives it: 128 opaque bytes, passed by value.
#[repr(C, align(128))]
pub struct TmaDescriptor {
    opaque: [u64; 16],
}

// SAFETY: plain bytes with the alignment the driver requires of a tensor map parameter.
unsafe impl DeviceRepr for TmaDescriptor {}

impl RowView {
    /// The descriptor of this view at `base` (a device address, 16-byte aligned) for boxes of
    /// `box_rows` rows × `boxes.cols` columns.
    pub fn descriptor(&self, base: u64, box_rows: u32, boxes: &TmaBoxes) -> Result<TmaDescriptor> {
        encode(
            sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
            "bf16",
            base,
            [self.row_stride as u64, self.rows as u64],
            (self.row_stride * 2) as u64,
            [boxes.cols, box_rows],
        )
    }
}

/// The descriptor of a dense `[rows, cols]` matrix of bytes (the 8-bit kernels' INT8 q and k)
/// at `base`, read in boxes of `box_rows` rows × 128 bytes.
pub fn int8_rows_descriptor(
    base: u64,
    rows: usize,
    cols: usize,
    box_rows: u32,
) -> Result<TmaDescriptor> {
    encode(
        sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_UINT8,
        "int8",
        base,
        [cols as u64, rows as u64],
        cols as u64,
        [128, box_rows],
    )
}

/// `cuTensorMapEncodeTiled` for a 2-D matrix (`dims` innermost first), 128-byte swizzled.
fn encode(
    dtype: sys::CUtensorMapDataType,
    dtype_name: &str,
    base: u64,
    dims: [u64; 2],
    row_bytes: u64,
    box_dims: [u32; 2],
) -> Result<TmaDescriptor> {
    let mut map = TmaDescriptor { opaque: [0; 16] };
    let strides = [row_bytes];
    let element_strides = [1u32, 1];
    // SAFETY: `map` is 128 writable bytes aligned to 128; the arrays hold `rank` (2)
    // entries, `rank - 1` for the strides; the driver only reads the memory at `base`
    // when a kernel copies through the descriptor.
    let status = unsafe {
        sys::cuTensorMapEncodeTiled(
            (&mut map as *mut TmaDescriptor).cast(),
            dtype,
            2,
            base as *mut std::ffi::c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            box_dims.as_ptr(),
            element_strides.as_ptr(),
            sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
            sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    };
    if status != sys::CUresult::CUDA_SUCCESS {
        candle_core::bail!(
            "cuTensorMapEncodeTiled failed ({status:?}) for {} rows of {} {dtype_name} at {base:#x}, box {}x{}",
            dims[1],
            dims[0],
            box_dims[1],
            box_dims[0]
        );
    }
    Ok(map)
}
