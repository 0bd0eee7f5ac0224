//! How tensors are laid out in device memory: the contract between the
//! compiler, which places them, and the host, which writes inputs and reads
//! outputs (the `layout` string of a tensor-map entry names it).

use crate::program::TensorInfo;

/// How a quantized value is laid out in device memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// NHWC with `halo` rows and columns of zero point around each image
    /// (batch 1): element (h, w, c) at `((h + halo) * (w_dim + 2 halo) + w + halo) * c_dim + c`.
    Nhwc { h: usize, w: usize, c: usize, halo: usize },
    /// Row-major `[rows, cols]`; `perm[i]` is the logical index of physical
    /// column `i` (after a Flatten of NHWC data), None for the identity.
    Flat { rows: usize, cols: usize, perm: Option<Vec<usize>> },
}

impl Layout {
    /// Bytes the buffer occupies.
    pub fn bytes(&self) -> usize {
        match self {
            Layout::Nhwc { h, w, c, halo } => (h + 2 * halo) * (w + 2 * halo) * c,
            Layout::Flat { rows, cols, .. } => rows * cols,
        }
    }

    /// The tensor-map name of the layout.
    pub fn describe(&self) -> String {
        match self {
            Layout::Nhwc { halo: 0, .. } => "nhwc".into(),
            Layout::Nhwc { halo, .. } => format!("nhwc-halo{halo}"),
            Layout::Flat { perm: None, .. } => "row-major".into(),
            Layout::Flat { perm: Some(_), .. } => "row-major, columns in nhwc order".into(),
        }
    }

    /// Physical byte offset of every logical element (in the logical
    /// row-major order of the IR value).
    pub fn offsets(&self) -> Vec<usize> {
        match self {
            Layout::Nhwc { h, w, c, halo } => {
                let wp = w + 2 * halo;
                let mut out = Vec::with_capacity(h * w * c);
                for ch in 0..*c {
                    for y in 0..*h {
                        for x in 0..*w {
                            out.push(((y + halo) * wp + x + halo) * c + ch);
                        }
                    }
                }
                out
            }
            Layout::Flat { rows, cols, perm } => {
                let mut inv = vec![0; *cols];
                match perm {
                    Some(p) => p.iter().enumerate().for_each(|(phys, &logical)| inv[logical] = phys),
                    None => inv.iter_mut().enumerate().for_each(|(i, v)| *v = i),
                }
                (0..*rows).flat_map(|r| inv.iter().map(move |&i| r * cols + i)).collect()
            }
        }
    }
}

impl Layout {
    /// The layout a tensor-map entry describes (`describe` in reverse).
    pub fn of_tensor(t: &TensorInfo) -> Result<Layout, String> {
        let dims: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
        let halo = match t.layout.as_str() {
            "row-major" => {
                let (rows, cols) = match dims[..] {
                    [c] => (1, c),
                    [r, c] => (r, c),
                    _ => return Err(format!("tensor `{}`: row-major needs rank 1 or 2, shape {:?}", t.name, dims)),
                };
                return Ok(Layout::Flat { rows, cols, perm: None });
            }
            "nhwc" => 0,
            other => other
                .strip_prefix("nhwc-halo")
                .and_then(|h| h.parse().ok())
                .ok_or_else(|| format!("tensor `{}`: unknown layout `{other}`", t.name))?,
        };
        match dims[..] {
            [1, c, h, w] => Ok(Layout::Nhwc { h, w, c, halo }),
            _ => Err(format!("tensor `{}`: nhwc needs shape [1, C, H, W], got {:?}", t.name, dims)),
        }
    }

    /// Places logical values (IR order) into a device buffer image, the
    /// rest (halo) filled with `fill`.
    pub fn pack(&self, values: &[u8], fill: u8) -> Vec<u8> {
        let mut out = vec![fill; self.bytes()];
        for (v, off) in values.iter().zip(self.offsets()) {
            out[off] = *v;
        }
        out
    }

    /// Reads logical values (IR order) out of a device buffer image.
    pub fn unpack(&self, image: &[u8]) -> Vec<u8> {
        self.offsets().into_iter().map(|off| image[off]).collect()
    }
}
