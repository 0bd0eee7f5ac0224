//! How tensors are laid out in device memory: the contract between the
//! compiler, which places them, and the host, which writes inputs and reads
//! outputs (every tensor-map entry and layer record carries its `Layout`).

use crate::codec::{DecodeError, Reader, Writer};

/// How a quantized value is laid out in device memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// NHWC with `halo` rows and columns of zero point around each image:
    /// element (h, w, c) of image `i` at `i * image_bytes + ((h + halo) *
    /// (w_dim + 2 halo) + w + halo) * c_dim + c`, `n` images (the batch of
    /// a program compiled for several inferences, `compile --batch`) one
    /// after the other, each with its own halo.
    Nhwc { n: usize, h: usize, w: usize, c: usize, halo: usize },
    /// Row-major `[rows, cols]`; `perm[i]` is the logical index of physical
    /// column `i` (after a Flatten of NHWC data), None for the identity.
    Flat { rows: usize, cols: usize, perm: Option<Vec<usize>> },
}

impl Layout {
    /// Bytes the buffer occupies.
    pub fn bytes(&self) -> usize {
        match self {
            Layout::Nhwc { n, h, w, c, halo } => n * (h + 2 * halo) * (w + 2 * halo) * c,
            Layout::Flat { rows, cols, .. } => rows * cols,
        }
    }

    /// Images the buffer holds (the batch): `n` of NHWC, 1 otherwise.
    pub fn images(&self) -> usize {
        match self {
            Layout::Nhwc { n, .. } => *n,
            Layout::Flat { .. } => 1,
        }
    }

    /// A short name of the layout for people (`disasm`, `compile`'s summary).
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
            Layout::Nhwc { n, h, w, c, halo } => {
                let wp = w + 2 * halo;
                let image = (h + 2 * halo) * wp * c;
                let mut out = Vec::with_capacity(n * h * w * c);
                for i in 0..*n {
                    for ch in 0..*c {
                        for y in 0..*h {
                            for x in 0..*w {
                                out.push(i * image + ((y + halo) * wp + x + halo) * c + ch);
                            }
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
    /// Bytes the buffer occupies, `None` on overflow (for untrusted layouts).
    pub fn checked_bytes(&self) -> Option<usize> {
        match self {
            Layout::Nhwc { n, h, w, c, halo } => {
                let pad = halo.checked_mul(2)?;
                h.checked_add(pad)?.checked_mul(w.checked_add(pad)?)?.checked_mul(*c)?.checked_mul(*n)
            }
            Layout::Flat { rows, cols, .. } => rows.checked_mul(*cols),
        }
    }

    /// Checks that the layout places a tensor of this (logical) shape:
    /// NHWC holds `[N, C, H, W]`, row-major `[cols]`, `[rows, cols]` or
    /// `[d0, .., dk, cols]` with `d0 · .. · dk = rows` (no permutation), and
    /// a column order is a permutation of the columns.
    pub fn check_shape(&self, shape: &[u64]) -> Result<(), String> {
        let dims = |v: &[usize]| v.iter().map(|&d| d as u64).collect::<Vec<_>>();
        let expected = match self {
            Layout::Nhwc { n, h, w, c, .. } => vec![dims(&[*n, *c, *h, *w])],
            Layout::Flat { rows, cols, perm } => {
                if let Some(p) = perm {
                    let mut seen = vec![false; p.len()];
                    let permutes =
                        p.len() == *cols && p.iter().all(|&i| i < *cols && !std::mem::replace(&mut seen[i], true));
                    if !permutes {
                        return Err(format!("its column order is not a permutation of its {cols} columns"));
                    }
                }
                let mut both = vec![dims(&[*rows, *cols])];
                if *rows == 1 {
                    both.push(dims(&[*cols]));
                }
                both
            }
        };
        // Row-major data of higher rank (a transformer's `[batch, seq,
        // hidden]`): the last dimension is the columns, the others the rows.
        let row_major = match self {
            Layout::Flat { rows, cols, .. } => {
                shape.len() > 2
                    && shape.last() == Some(&(*cols as u64))
                    && shape[..shape.len() - 1].iter().try_fold(1u64, |p, &d| p.checked_mul(d)) == Some(*rows as u64)
            }
            _ => false,
        };
        if !row_major && !expected.iter().any(|e| e == shape) {
            return Err(format!("layout {} does not hold shape {shape:?}", self.describe()));
        }
        if self.checked_bytes().is_none() {
            return Err(format!("layout {} is larger than the address space", self.describe()));
        }
        Ok(())
    }

    /// The binary encoding (see `isa::codec`).
    pub fn encode(&self, w: &mut Writer) {
        match self {
            // One image keeps tag 0 (the encoding before batches); a batch
            // is tag 2 with the image count first.
            Layout::Nhwc { n, h, w: width, c, halo } => {
                if *n != 1 {
                    w.u8(2);
                    w.len(*n);
                } else {
                    w.u8(0);
                }
                [*h, *width, *c, *halo].iter().for_each(|&d| w.len(d));
            }
            Layout::Flat { rows, cols, perm } => {
                w.u8(1);
                w.len(*rows);
                w.len(*cols);
                w.bool(perm.is_some());
                if let Some(p) = perm {
                    w.u64s(&p.iter().map(|&i| i as u64).collect::<Vec<_>>());
                }
            }
        }
    }

    /// Reads what [`Layout::encode`] wrote (the shape is checked by
    /// [`Layout::check_shape`]).
    pub fn decode(r: &mut Reader<'_>) -> Result<Layout, DecodeError> {
        Ok(match r.tag("layout", 3)? {
            tag @ (0 | 2) => Layout::Nhwc {
                n: if tag == 2 { r.usize("layout images")? } else { 1 },
                h: r.usize("layout height")?,
                w: r.usize("layout width")?,
                c: r.usize("layout channels")?,
                halo: r.usize("layout halo")?,
            },
            _ => {
                let rows = r.usize("layout rows")?;
                let cols = r.usize("layout columns")?;
                let perm =
                    if r.bool("layout column order present")? { Some(r.usizes("layout column order")?) } else { None };
                Layout::Flat { rows, cols, perm }
            }
        })
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

impl std::fmt::Display for Layout {
    /// The short name and the dimensions: `nhwc-halo1 (h 28, w 28, c 8)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layout::Nhwc { n: 1, h, w, c, .. } => write!(f, "{} (h {h}, w {w}, c {c})", self.describe()),
            Layout::Nhwc { n, h, w, c, .. } => write!(f, "{} (n {n}, h {h}, w {w}, c {c})", self.describe()),
            Layout::Flat { rows, cols, .. } => write!(f, "{} ({rows} x {cols})", self.describe()),
        }
    }
}
