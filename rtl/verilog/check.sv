// check: the dispatcher's decode and legality check of the instruction at the
// head of the fetch buffer (ISA.md §4 "Faults", "At dispatch"). It returns the
// fault the Rust model raises, in the model's order:
//   1. `Instr::decode` fails (unknown opcode; reserved bits 12..16 or any bit
//      from the opcode's SYS_<OP>_END up set; enum field out of range; a
//      ">= 1" count zero; a dependency flag toward a queue the instruction's
//      queue has no token path to)                 -> IllegalInstruction (1)
//   2. `isa::legal::check` against the configuration: per opcode, its checks
//      in that function's order, the first failing one deciding between
//      IllegalInstruction (wfmt not i8, nor i4 with INT4; meta not 0; zero point / clamp outside the type's
//      range; qmin > qmax; a transposed tile of k > COLS or not i8; trans
//      without preload) and BufferOutOfRange (3)
//   3. `isa::legal::check_window` (LOAD/STORE DRAM span outside
//      [win_base, win_limit))                       -> DmaOutOfWindow (2)
// All decode faults share one code, so step 1 is one OR of all of them; in
// steps 2 and 3 the order matters and is kept exactly.
//
// Timing: purely combinational. The dispatcher decides dispatch-or-fault in
// the cycle the head is available (ISA.md §4), so code, is_finish and queue
// must be valid in that same cycle from the head's bits.
//
// Arithmetic is exact (no wrap-around anywhere, as in the model's u64):
// every intermediate is sized to its largest possible value (the widths are
// noted where they are declared). The column-block index of a DMA
// (`DmaBlock::local_end`: last_col / COLS) is a shift when COLS is a power
// of two and a constant division otherwise.
//
// Parameters: the array shape and the buffer sizes in rows (HwConfig's
// array.rows/cols, spad_rows(), acc_rows(); rows <= 65536), and INT4: 1 when
// array.weight_precisions lists int4 (the i4 weight format is legal; its
// tile of k rows reads ceil(k / 2) scratchpad rows); SPARSE: 1 when
// array.sparsity_2_4 (the i8s24 format, its ceil(k / 4) position rows at
// meta, and matmul's a_bstride are legal).
`include "systole_isa.vh"

module check #(
    parameter int ROWS      = 4,
    parameter int COLS      = 4,
    parameter int SPAD_ROWS = 4096,
    parameter int ACC_ROWS  = 256,
    parameter int INT4      = 0,
    parameter int SPARSE    = 0
) (
    input  logic [255:0] instr,
    input  logic [ 31:0] win_base,
    input  logic [ 31:0] win_limit,
    output logic [  2:0] code,       // `SYS_ERR_*: 0 = legal
    output logic         is_finish,  // legal finish
    // The port name is the dispatcher's interface; `queue` is only a C++ word.
    /* verilator lint_off SYMRSVDWORD */
    output logic [  1:0] queue,      // `SYS_QUEUE_* (for a legal non-finish)
    /* verilator lint_on SYMRSVDWORD */
    // A legal matmul's input span end (one past `a_last`, <= SPAD_ROWS):
    // predecoded here, where the span is checked, for the COMPUTE unit's
    // interlock (the span needs a division).
    output logic [ 16:0] mm_in_end
);

  // Configuration limits, 32 bits (all are <= 65536).
  localparam logic [31:0] ROWS_L = ROWS;
  localparam logic [31:0] COLS_L = COLS;
  localparam logic [31:0] SPAD_L = SPAD_ROWS;
  localparam logic [31:0] ACC_L = ACC_ROWS;
  localparam bit COLS_POW2 = (COLS & (COLS - 1)) == 0;
  localparam int COLS_LOG2 = $clog2(COLS);

  localparam logic [2:0] E_NONE = `SYS_ERR_NONE;
  localparam logic [2:0] E_ILL = `SYS_ERR_ILLEGAL_INSTRUCTION;
  localparam logic [2:0] E_WIN = `SYS_ERR_DMA_OUT_OF_WINDOW;
  localparam logic [2:0] E_OOR = `SYS_ERR_BUFFER_OUT_OF_RANGE;

  localparam logic [7:0] OP_LOAD = `SYS_OP_LOAD;
  localparam logic [7:0] OP_STORE = `SYS_OP_STORE;
  localparam logic [7:0] OP_LDW = `SYS_OP_LDW;
  localparam logic [7:0] OP_MATMUL = `SYS_OP_MATMUL;
  localparam logic [7:0] OP_REQUANT = `SYS_OP_REQUANT;
  localparam logic [7:0] OP_VMAX = `SYS_OP_VMAX;
  localparam logic [7:0] OP_VADD = `SYS_OP_VADD;
  localparam logic [7:0] OP_VLUT = `SYS_OP_VLUT;
  localparam logic [7:0] OP_SYNC = `SYS_OP_SYNC;
  localparam logic [7:0] OP_VDEQ = `SYS_OP_VDEQ;
  localparam logic [7:0] OP_VQUANT = `SYS_OP_VQUANT;
  localparam logic [7:0] OP_VOP = `SYS_OP_VOP;
  localparam logic [7:0] OP_VRED = `SYS_OP_VRED;
  localparam logic [7:0] OP_VMASK = `SYS_OP_VMASK;
  localparam logic [7:0] OP_FINISH = `SYS_OP_FINISH;

  localparam logic [1:0] Q_LOAD = `SYS_QUEUE_LOAD;
  localparam logic [1:0] Q_COMPUTE = `SYS_QUEUE_COMPUTE;
  localparam logic [1:0] Q_STORE = `SYS_QUEUE_STORE;

  // ---------------------------------------------------------------- header
  wire [7:0] op = instr[`SYS_OPCODE_LO+:`SYS_OPCODE_W];
  wire pop_prev = instr[`SYS_DEP_POP_PREV];
  wire pop_next = instr[`SYS_DEP_POP_NEXT];
  wire push_prev = instr[`SYS_DEP_PUSH_PREV];
  wire push_next = instr[`SYS_DEP_PUSH_NEXT];
  wire any_dep = |instr[`SYS_DEPS_LO+:`SYS_DEPS_W];
  wire rsvd_hdr = |instr[`SYS_FIELDS_LO-1:`SYS_DEPS_LO+`SYS_DEPS_W];
  wire dep_prev = pop_prev | push_prev;
  wire dep_next = pop_next | push_next;

  // ------------------------------------------------------------ LOAD/STORE
  // The two share one datapath: same dram/stride/rows/cols positions in the
  // header, addr/col/padding selected by opcode (STORE has no padding).
  wire is_load = op == OP_LOAD;
  wire d_acc = is_load ? instr[`SYS_LOAD_BUF_LO] : instr[`SYS_STORE_BUF_LO];
  wire [31:0] d_dram = is_load ? instr[`SYS_LOAD_DRAM_HI:`SYS_LOAD_DRAM_LO]
                               : instr[`SYS_STORE_DRAM_HI:`SYS_STORE_DRAM_LO];
  wire [31:0] d_stride = is_load ? instr[`SYS_LOAD_STRIDE_HI:`SYS_LOAD_STRIDE_LO]
                                 : instr[`SYS_STORE_STRIDE_HI:`SYS_STORE_STRIDE_LO];
  wire [15:0] d_rows = is_load ? instr[`SYS_LOAD_ROWS_HI:`SYS_LOAD_ROWS_LO]
                               : instr[`SYS_STORE_ROWS_HI:`SYS_STORE_ROWS_LO];
  wire [15:0] d_cols = is_load ? instr[`SYS_LOAD_COLS_HI:`SYS_LOAD_COLS_LO]
                               : instr[`SYS_STORE_COLS_HI:`SYS_STORE_COLS_LO];
  wire [15:0] d_addr = is_load ? instr[`SYS_LOAD_ADDR_HI:`SYS_LOAD_ADDR_LO]
                               : instr[`SYS_STORE_ADDR_HI:`SYS_STORE_ADDR_LO];
  wire [15:0] d_col = is_load ? instr[`SYS_LOAD_COL_HI:`SYS_LOAD_COL_LO]
                              : instr[`SYS_STORE_COL_HI:`SYS_STORE_COL_LO];
  wire [7:0] d_pt = is_load ? instr[`SYS_LOAD_PAD_TOP_HI:`SYS_LOAD_PAD_TOP_LO] : 8'd0;
  wire [7:0] d_pb = is_load ? instr[`SYS_LOAD_PAD_BOTTOM_HI:`SYS_LOAD_PAD_BOTTOM_LO] : 8'd0;
  wire [7:0] d_pl = is_load ? instr[`SYS_LOAD_PAD_LEFT_HI:`SYS_LOAD_PAD_LEFT_LO] : 8'd0;
  wire [7:0] d_pr = is_load ? instr[`SYS_LOAD_PAD_RIGHT_HI:`SYS_LOAD_PAD_RIGHT_LO] : 8'd0;

  // DmaBlock::local_end: addr + (last_col / COLS + 1) * block_rows.
  // block_rows, block_cols <= 255 + 65535 + 255 (17 bits); last_col <= 65535
  // + block_cols - 1 (18 bits); the product <= 2^18 * 2^17 (35 bits).
  wire [16:0] blk_rows = {9'd0, d_pt} + {1'b0, d_rows} + {9'd0, d_pb};
  wire [16:0] blk_cols = {9'd0, d_pl} + {1'b0, d_cols} + {9'd0, d_pr};
  wire [17:0] last_col = {2'd0, d_col} + {1'b0, blk_cols} - 18'd1;
  logic [17:0] col_blk;
  generate
    if (COLS_POW2) begin : g_shift
      assign col_blk = last_col >> COLS_LOG2;
    end else begin : g_div
      assign col_blk = last_col / COLS_L[17:0];
    end
  endgenerate
  wire [34:0] blk_span = ({17'd0, col_blk} + 35'd1) * {18'd0, blk_rows};
  wire [35:0] local_end = {20'd0, d_addr} + {1'b0, blk_span};
  wire [31:0] d_limit = d_acc ? ACC_L : SPAD_L;
  wire dma_oor = local_end > {4'd0, d_limit};

  // DmaBlock::dram_span: [dram, dram + (rows - 1) * stride + cols * e).
  // (rows - 1) * stride < 2^48, cols * e < 2^18, sum < 2^49.
  wire [17:0] row_bytes = d_acc ? {d_cols, 2'b00} : {2'b00, d_cols};
  wire [15:0] rows_m1 = d_rows - 16'd1;
  wire [47:0] span_mul = {32'd0, rows_m1} * {16'd0, d_stride};
  wire [49:0] dram_hi = {18'd0, d_dram} + {2'd0, span_mul} + {32'd0, row_bytes};
  // An indexed load (idx = i64 / i32: a gather) is checked over its ids
  // [idx_addr, idx_addr + rows * 8 (or 4)) and its whole table of `limit`
  // rows (isa::legal::check_window): (limit - 1) * stride < 2^64.
  wire [1:0] d_idx = instr[`SYS_LOAD_IDX_HI:`SYS_LOAD_IDX_LO];
  wire d_gather = is_load & (d_idx != 2'(`SYS_IDX_NONE));
  wire [31:0] d_idx_addr = instr[`SYS_LOAD_IDX_ADDR_HI:`SYS_LOAD_IDX_ADDR_LO];
  wire [31:0] d_limit_rows = instr[`SYS_LOAD_LIMIT_HI:`SYS_LOAD_LIMIT_LO];
  wire [31:0] tab_m1 = d_limit_rows - 32'd1;
  wire [63:0] tab_mul = {32'd0, tab_m1} * {32'd0, d_stride};
  wire [65:0] tab_hi = {34'd0, d_dram} + {2'd0, tab_mul} + {48'd0, row_bytes};
  wire [19:0] id_bytes = (d_idx == 2'(`SYS_IDX_I64)) ? {1'b0, d_rows, 3'b000} : {2'b00, d_rows, 2'b00};
  wire [32:0] ids_hi = {1'b0, d_idx_addr} + {13'd0, id_bytes};
  wire gather_win_bad = (d_idx_addr < win_base) | (ids_hi > {1'b0, win_limit})
      | (d_dram < win_base) | (tab_hi > {34'd0, win_limit});
  // A compressed stream (zfmt = mask): `stride` bytes from dram, between
  // rows * ceil(cols / 8) and rows * (ceil(cols / 8) + cols)
  // (isa::legal::stream_bytes_range; < 2^33).
  wire [1:0] d_zfmt = instr[`SYS_LOAD_ZFMT_HI:`SYS_LOAD_ZFMT_LO];
  wire d_zm = is_load & (d_zfmt == 2'(`SYS_ZFMT_MASK));
  wire [16:0] z_mb = ({1'b0, d_cols} + 17'd7) >> 3;
  wire [32:0] z_lo = {17'd0, d_rows} * {16'd0, z_mb};
  wire [32:0] z_hi = {17'd0, d_rows} * ({16'd0, z_mb} + {17'd0, d_cols});
  wire z_stride_bad = d_zm & (({1'b0, d_stride} < z_lo) | ({1'b0, d_stride} > z_hi));
  wire [32:0] z_end = {1'b0, d_dram} + {1'b0, d_stride};
  wire win_bad = d_gather ? gather_win_bad
      : d_zm ? (d_dram < win_base) | (z_end > {1'b0, win_limit})
      : (d_dram < win_base) | (dram_hi > {18'd0, win_limit});

  // ------------------------------------------------------------------ LDW
  wire [15:0] l_addr = instr[`SYS_LDW_ADDR_HI:`SYS_LDW_ADDR_LO];
  wire [15:0] l_k = instr[`SYS_LDW_K_HI:`SYS_LDW_K_LO];
  wire [15:0] l_n = instr[`SYS_LDW_N_HI:`SYS_LDW_N_LO];
  wire [1:0] l_wfmt = instr[`SYS_LDW_WFMT_HI:`SYS_LDW_WFMT_LO];
  wire [15:0] l_meta = instr[`SYS_LDW_META_HI:`SYS_LDW_META_LO];
  // tile(): wfmt and meta first (illegal), then the shape, then in_spad(addr,
  // weight_tile_spad_rows(k, wfmt)).
  wire l_i4 = l_wfmt == 2'(`SYS_WFMT_I4);
  wire l_s24 = (l_wfmt == 2'(`SYS_WFMT_I8S24)) & (SPARSE != 0);
  wire l_fmt_ok = (l_wfmt == 2'(`SYS_WFMT_I8)) | (l_i4 & (INT4 != 0)) | l_s24;
  // Transposed (trans): i8 only and k <= COLS (illegal, after the shape),
  // reading n rows (Ldw::weight_rows).
  wire l_tr = instr[`SYS_LDW_TRANS_LO];
  wire l_tr_bad = l_tr & (({16'd0, l_k} > COLS_L) | (l_wfmt != 2'(`SYS_WFMT_I8)));
  wire [15:0] l_rows = l_tr ? l_n : l_i4 ? {1'b0, l_k[15:1]} + {15'd0, l_k[0]} : l_k;
  // i8s24: in_spad(meta, ceil(k / 4)) (a dense tile's meta must be 0).
  wire [31:0] l_meta_end = {16'd0, l_meta} + {18'd0, l_k[15:2]} + {31'd0, |l_k[1:0]};
  wire [2:0] ldw_code = (!l_fmt_ok | (!l_s24 & (l_meta != 16'd0))) ? E_ILL
      : (({16'd0, l_k} > ROWS_L) | ({16'd0, l_n} > COLS_L) | (l_s24 & (l_meta_end > SPAD_L))) ? E_OOR
      : l_tr_bad ? E_ILL
      : ({16'd0, l_addr} + {16'd0, l_rows} > SPAD_L) ? E_OOR : E_NONE;

  // --------------------------------------------------------------- MATMUL
  wire [15:0] m_a = instr[`SYS_MATMUL_A_HI:`SYS_MATMUL_A_LO];
  wire [15:0] m_m = instr[`SYS_MATMUL_M_HI:`SYS_MATMUL_M_LO];
  wire [15:0] m_acc = instr[`SYS_MATMUL_ACC_HI:`SYS_MATMUL_ACC_LO];
  wire m_pre = instr[`SYS_MATMUL_PRELOAD_LO];
  wire [15:0] m_w = instr[`SYS_MATMUL_W_HI:`SYS_MATMUL_W_LO];
  wire [15:0] m_k = instr[`SYS_MATMUL_K_HI:`SYS_MATMUL_K_LO];
  wire [15:0] m_n = instr[`SYS_MATMUL_N_HI:`SYS_MATMUL_N_LO];
  wire [1:0] m_wfmt = instr[`SYS_MATMUL_WFMT_HI:`SYS_MATMUL_WFMT_LO];
  wire [15:0] m_meta = instr[`SYS_MATMUL_META_HI:`SYS_MATMUL_META_LO];
  wire [7:0] m_as = instr[`SYS_MATMUL_A_STRIDE_HI:`SYS_MATMUL_A_STRIDE_LO];
  wire [15:0] m_ag = instr[`SYS_MATMUL_A_GROUP_HI:`SYS_MATMUL_A_GROUP_LO];
  wire [15:0] m_ags = instr[`SYS_MATMUL_A_GSTRIDE_HI:`SYS_MATMUL_A_GSTRIDE_LO];
  // 2:4-sparse inputs: without sparse PEs (array.sparsity_2_4 = false) a
  // second input block is illegal, checked before the span; with them the
  // span reaches a_bstride rows further.
  wire [15:0] m_abs = instr[`SYS_MATMUL_A_BSTRIDE_HI:`SYS_MATMUL_A_BSTRIDE_LO];
  // Matmul::input_span: a_last = a + ((m - 1) / g) * a_gstride
  // + (min(g, m) - 1) * s, g = a_group (0: m), s = a_stride (0: 1); for a
  // legal m >= 1. The products < 2^32 and 2^24, the sum + 1 < 2^33.
  wire [15:0] m_g = (m_ag == 16'd0) ? m_m : m_ag;
  wire [7:0] m_s = (m_as == 8'd0) ? 8'd1 : m_as;
  wire [15:0] m_gm = (m_g < m_m) ? m_g : m_m;
  wire [15:0] m_groups1 = (m_m - 16'd1) / ((m_g == 16'd0) ? 16'd1 : m_g);  // (g = 0 only if m = 0: illegal)
  wire [31:0] m_gspan = m_groups1 * m_ags;
  wire [15:0] m_gm1 = m_gm - 16'd1;
  wire [23:0] m_rspan = {8'd0, m_gm1} * {16'd0, m_s};
  wire [32:0] m_in_hi = {17'd0, m_a} + {1'b0, m_gspan} + {9'd0, m_rspan} + 33'd1 + {17'd0, m_abs};
  assign mm_in_end = m_in_hi[16:0];
  // in_spad(a, span), in_acc(acc, m), then (preload) tile() and in_spad(w,
  // weight_tile_spad_rows(k, wfmt)).
  wire m_i4 = m_wfmt == 2'(`SYS_WFMT_I4);
  wire m_s24 = (m_wfmt == 2'(`SYS_WFMT_I8S24)) & (SPARSE != 0);
  wire m_fmt_ok = (m_wfmt == 2'(`SYS_WFMT_I8)) | (m_i4 & (INT4 != 0)) | m_s24;
  wire m_tr = instr[`SYS_MATMUL_TRANS_LO];
  wire m_tr_bad = m_tr & (({16'd0, m_k} > COLS_L) | (m_wfmt != 2'(`SYS_WFMT_I8)));
  wire [15:0] m_wrows = m_tr ? m_n : m_i4 ? {1'b0, m_k[15:1]} + {15'd0, m_k[0]} : m_k;
  wire [31:0] m_meta_end = {16'd0, m_meta} + {18'd0, m_k[15:2]} + {31'd0, |m_k[1:0]};
  wire [2:0] matmul_code =
      ((m_abs != 16'd0) & (SPARSE == 0)) ? E_ILL
      : ((m_in_hi > {1'b0, SPAD_L}) | ({16'd0, m_acc} + {16'd0, m_m} > ACC_L)) ? E_OOR
      : !m_pre ? (m_tr ? E_ILL : E_NONE)  // trans is a preload field
      : (!m_fmt_ok | (!m_s24 & (m_meta != 16'd0))) ? E_ILL
      : (({16'd0, m_k} > ROWS_L) | ({16'd0, m_n} > COLS_L) | (m_s24 & (m_meta_end > SPAD_L))) ? E_OOR
      : m_tr_bad ? E_ILL
      : ({16'd0, m_w} + {16'd0, m_wrows} > SPAD_L) ? E_OOR : E_NONE;

  // -------------------------------------------------------------- REQUANT
  // A 9-bit value is in the i8 range iff bits 8 and 7 agree (it is an 8-bit
  // value sign-extended), in the u8 range iff bit 8 is clear: `top` is
  // bits 8..7 of the value.
  function automatic logic in_type(input logic [1:0] top, input logic u8);
    in_type = u8 ? !top[1] : (top[1] == top[0]);
  endfunction

  wire [15:0] r_acc = instr[`SYS_REQUANT_ACC_HI:`SYS_REQUANT_ACC_LO];
  wire [15:0] r_rows = instr[`SYS_REQUANT_ROWS_HI:`SYS_REQUANT_ROWS_LO];
  wire [15:0] r_dst = instr[`SYS_REQUANT_DST_HI:`SYS_REQUANT_DST_LO];
  wire [15:0] r_params = instr[`SYS_REQUANT_PARAMS_HI:`SYS_REQUANT_PARAMS_LO];
  wire r_u8 = instr[`SYS_REQUANT_OUT_TYPE_LO];
  wire [1:0] r_zp_top = instr[`SYS_REQUANT_ZP_HI-:2];  // bits 8..7
  wire [8:0] r_qmin = instr[`SYS_REQUANT_QMIN_HI:`SYS_REQUANT_QMIN_LO];
  wire [8:0] r_qmax = instr[`SYS_REQUANT_QMAX_HI:`SYS_REQUANT_QMAX_LO];
  // in_acc(acc, rows), in_acc(params, 2), in_spad(dst, rows); then zp, qmin,
  // qmax in the output type's range; then qmin <= qmax.
  wire [2:0] requant_code =
      (({16'd0, r_acc} + {16'd0, r_rows} > ACC_L) | ({16'd0, r_params} + 32'd2 > ACC_L)
       | ({16'd0, r_dst} + {16'd0, r_rows} > SPAD_L)) ? E_OOR
      : (!in_type(r_zp_top, r_u8) | !in_type(r_qmin[8:7], r_u8) | !in_type(r_qmax[8:7], r_u8)
         | ($signed(r_qmin) > $signed(r_qmax))) ? E_ILL : E_NONE;

  // ----------------------------------------------------------------- VMAX
  wire [15:0] x_a = instr[`SYS_VMAX_A_HI:`SYS_VMAX_A_LO];
  wire [15:0] x_as = instr[`SYS_VMAX_A_STRIDE_HI:`SYS_VMAX_A_STRIDE_LO];
  wire [15:0] x_b = instr[`SYS_VMAX_B_HI:`SYS_VMAX_B_LO];
  wire [15:0] x_bs = instr[`SYS_VMAX_B_STRIDE_HI:`SYS_VMAX_B_STRIDE_LO];
  wire [15:0] x_d = instr[`SYS_VMAX_DST_HI:`SYS_VMAX_DST_LO];
  wire [15:0] x_ds = instr[`SYS_VMAX_DST_STRIDE_HI:`SYS_VMAX_DST_STRIDE_LO];
  wire [15:0] x_n = instr[`SYS_VMAX_N_HI:`SYS_VMAX_N_LO];
  // strided(lo, stride, n): lo + (n - 1) * stride + 1 > SPAD (33 bits).
  wire [15:0] x_n1 = x_n - 16'd1;
  wire [31:0] x_am = x_n1 * x_as;
  wire [31:0] x_bm = x_n1 * x_bs;
  wire [31:0] x_dm = x_n1 * x_ds;
  wire [2:0] vmax_code =
      (({17'd0, x_a} + {1'b0, x_am} + 33'd1 > {1'b0, SPAD_L})
       | ({17'd0, x_b} + {1'b0, x_bm} + 33'd1 > {1'b0, SPAD_L})
       | ({17'd0, x_d} + {1'b0, x_dm} + 33'd1 > {1'b0, SPAD_L})) ? E_OOR : E_NONE;

  // ----------------------------------------------------------------- VADD
  wire [15:0] v_a = instr[`SYS_VADD_A_HI:`SYS_VADD_A_LO];
  wire [15:0] v_b = instr[`SYS_VADD_B_HI:`SYS_VADD_B_LO];
  wire [15:0] v_d = instr[`SYS_VADD_DST_HI:`SYS_VADD_DST_LO];
  wire [15:0] v_n = instr[`SYS_VADD_N_HI:`SYS_VADD_N_LO];
  wire [15:0] v_params = instr[`SYS_VADD_PARAMS_HI:`SYS_VADD_PARAMS_LO];
  wire v_out_u8 = instr[`SYS_VADD_OUT_TYPE_LO];
  wire [8:0] v_qmin = instr[`SYS_VADD_QMIN_HI:`SYS_VADD_QMIN_LO];
  wire [8:0] v_qmax = instr[`SYS_VADD_QMAX_HI:`SYS_VADD_QMAX_LO];
  // in_spad(a|b|dst, n), in_acc(params, 3); then qmin, qmax (output type);
  // then qmin <= qmax.
  wire [2:0] vadd_code =
      (({16'd0, v_a} + {16'd0, v_n} > SPAD_L) | ({16'd0, v_b} + {16'd0, v_n} > SPAD_L)
       | ({16'd0, v_d} + {16'd0, v_n} > SPAD_L) | ({16'd0, v_params} + 32'd3 > ACC_L)) ? E_OOR
      : (!in_type(v_qmin[8:7], v_out_u8) | !in_type(v_qmax[8:7], v_out_u8)
         | ($signed(v_qmin) > $signed(v_qmax))) ? E_ILL : E_NONE;

  // ----------------------------------------------------------------- SYNC
  wire [1:0] s_queue = instr[`SYS_SYNC_QUEUE_HI:`SYS_SYNC_QUEUE_LO];

  // ----------------------------------------------------------------- VLUT
  // The table's rows: isa::timing::lut_rows(cols) = ceil(256 / cols).
  localparam logic [31:0] LUT_ROWS = (32'(`SYS_LUT_ENTRIES) + COLS_L - 32'd1) / COLS_L;
  wire [15:0] u_src = instr[`SYS_VLUT_SRC_HI:`SYS_VLUT_SRC_LO];
  wire [15:0] u_dst = instr[`SYS_VLUT_DST_HI:`SYS_VLUT_DST_LO];
  wire [15:0] u_n = instr[`SYS_VLUT_N_HI:`SYS_VLUT_N_LO];
  wire [15:0] u_table = instr[`SYS_VLUT_TABLE_HI:`SYS_VLUT_TABLE_LO];
  // in_spad(src, n), in_spad(dst, n), in_spad(table, lut_rows).
  wire [2:0] vlut_code =
      (({16'd0, u_src} + {16'd0, u_n} > SPAD_L) | ({16'd0, u_dst} + {16'd0, u_n} > SPAD_L)
       | ({16'd0, u_table} + LUT_ROWS > SPAD_L)) ? E_OOR : E_NONE;

  // ------------------------------------------------- the vector unit's
  // vdeq / vquant / vop / vred / vmask: rows, len and up to three row
  // patterns (base, step, bstride) selected by opcode. A pattern's span end
  // (RowPattern::span) is base + (rows-1)*step + (blocks-1)*bstride + 1,
  // blocks = ceil(len / COLS) (< 2^34: exact in 35 bits).
  wire is_vdeq = op == OP_VDEQ;
  wire is_vquant = op == OP_VQUANT;
  wire is_vop = op == OP_VOP;
  wire is_vred = op == OP_VRED;
  logic [15:0] vx_rows, vx_len;
  logic [47:0] vp_base, vp_step, vp_bs;  // pattern k at bits 16k+15..16k
  always_comb begin
    vp_base = 48'd0;
    vp_step = 48'd0;
    vp_bs = 48'd0;
    // Pattern 0: the source (vdeq, vquant), a (vred), dst (vop, vmask);
    // 1: dst (vdeq, vquant), a (vop), vred's dst (bstride 0); 2: vop's b.
    if (is_vdeq) begin
      vx_rows = instr[`SYS_VDEQ_ROWS_HI:`SYS_VDEQ_ROWS_LO];
      vx_len = instr[`SYS_VDEQ_LEN_HI:`SYS_VDEQ_LEN_LO];
      vp_base[0+:16] = instr[`SYS_VDEQ_SRC_HI:`SYS_VDEQ_SRC_LO];
      vp_step[0+:16] = instr[`SYS_VDEQ_SRC_STEP_HI:`SYS_VDEQ_SRC_STEP_LO];
      vp_bs[0+:16] = instr[`SYS_VDEQ_SRC_BSTRIDE_HI:`SYS_VDEQ_SRC_BSTRIDE_LO];
      vp_base[16+:16] = instr[`SYS_VDEQ_DST_HI:`SYS_VDEQ_DST_LO];
      vp_step[16+:16] = instr[`SYS_VDEQ_DST_STEP_HI:`SYS_VDEQ_DST_STEP_LO];
      vp_bs[16+:16] = instr[`SYS_VDEQ_DST_BSTRIDE_HI:`SYS_VDEQ_DST_BSTRIDE_LO];
    end else if (is_vquant) begin
      vx_rows = instr[`SYS_VQUANT_ROWS_HI:`SYS_VQUANT_ROWS_LO];
      vx_len = instr[`SYS_VQUANT_LEN_HI:`SYS_VQUANT_LEN_LO];
      vp_base[0+:16] = instr[`SYS_VQUANT_SRC_HI:`SYS_VQUANT_SRC_LO];
      vp_step[0+:16] = instr[`SYS_VQUANT_SRC_STEP_HI:`SYS_VQUANT_SRC_STEP_LO];
      vp_bs[0+:16] = instr[`SYS_VQUANT_SRC_BSTRIDE_HI:`SYS_VQUANT_SRC_BSTRIDE_LO];
      vp_base[16+:16] = instr[`SYS_VQUANT_DST_HI:`SYS_VQUANT_DST_LO];
      vp_step[16+:16] = instr[`SYS_VQUANT_DST_STEP_HI:`SYS_VQUANT_DST_STEP_LO];
      vp_bs[16+:16] = instr[`SYS_VQUANT_DST_BSTRIDE_HI:`SYS_VQUANT_DST_BSTRIDE_LO];
    end else if (is_vop) begin
      vx_rows = instr[`SYS_VOP_ROWS_HI:`SYS_VOP_ROWS_LO];
      vx_len = instr[`SYS_VOP_LEN_HI:`SYS_VOP_LEN_LO];
      vp_base[0+:16] = instr[`SYS_VOP_DST_HI:`SYS_VOP_DST_LO];
      vp_step[0+:16] = instr[`SYS_VOP_DST_STEP_HI:`SYS_VOP_DST_STEP_LO];
      vp_bs[0+:16] = instr[`SYS_VOP_DST_BSTRIDE_HI:`SYS_VOP_DST_BSTRIDE_LO];
      vp_base[16+:16] = instr[`SYS_VOP_A_HI:`SYS_VOP_A_LO];
      vp_step[16+:16] = instr[`SYS_VOP_A_STEP_HI:`SYS_VOP_A_STEP_LO];
      vp_bs[16+:16] = instr[`SYS_VOP_A_BSTRIDE_HI:`SYS_VOP_A_BSTRIDE_LO];
      vp_base[32+:16] = instr[`SYS_VOP_B_HI:`SYS_VOP_B_LO];
      vp_step[32+:16] = instr[`SYS_VOP_B_STEP_HI:`SYS_VOP_B_STEP_LO];
      vp_bs[32+:16] = instr[`SYS_VOP_B_BSTRIDE_HI:`SYS_VOP_B_BSTRIDE_LO];
    end else if (is_vred) begin
      vx_rows = instr[`SYS_VRED_ROWS_HI:`SYS_VRED_ROWS_LO];
      vx_len = instr[`SYS_VRED_LEN_HI:`SYS_VRED_LEN_LO];
      vp_base[0+:16] = instr[`SYS_VRED_A_HI:`SYS_VRED_A_LO];
      vp_step[0+:16] = instr[`SYS_VRED_A_STEP_HI:`SYS_VRED_A_STEP_LO];
      vp_bs[0+:16] = instr[`SYS_VRED_A_BSTRIDE_HI:`SYS_VRED_A_BSTRIDE_LO];
      vp_base[16+:16] = instr[`SYS_VRED_DST_HI:`SYS_VRED_DST_LO];
      vp_step[16+:16] = instr[`SYS_VRED_DST_STEP_HI:`SYS_VRED_DST_STEP_LO];
    end else begin
      vx_rows = instr[`SYS_VMASK_ROWS_HI:`SYS_VMASK_ROWS_LO];
      vx_len = instr[`SYS_VMASK_LEN_HI:`SYS_VMASK_LEN_LO];
      vp_base[0+:16] = instr[`SYS_VMASK_DST_HI:`SYS_VMASK_DST_LO];
      vp_step[0+:16] = instr[`SYS_VMASK_DST_STEP_HI:`SYS_VMASK_DST_STEP_LO];
      vp_bs[0+:16] = instr[`SYS_VMASK_DST_BSTRIDE_HI:`SYS_VMASK_DST_BSTRIDE_LO];
    end
  end
  logic [16:0] vx_blocks;
  generate
    if (COLS_POW2) begin : g_vshift
      assign vx_blocks = ({1'b0, vx_len} + 17'(COLS - 1)) >> COLS_LOG2;
    end else begin : g_vdiv
      assign vx_blocks = ({1'b0, vx_len} + 17'(COLS - 1)) / COLS_L[16:0];
    end
  endgenerate
  wire [15:0] vx_rows1 = vx_rows - 16'd1;
  wire [16:0] vx_blk1 = vx_blocks - 17'd1;
  wire [34:0] vp_hi0, vp_hi1, vp_hi2;
  assign vp_hi0 = {19'd0, vp_base[0+:16]} + 35'({16'd0, vx_rows1} * {16'd0, vp_step[0+:16]})
      + 35'({17'd0, vx_blk1} * {18'd0, vp_bs[0+:16]}) + 35'd1;
  assign vp_hi1 = {19'd0, vp_base[16+:16]} + 35'({16'd0, vx_rows1} * {16'd0, vp_step[16+:16]})
      + 35'({17'd0, vx_blk1} * {18'd0, vp_bs[16+:16]}) + 35'd1;
  assign vp_hi2 = {19'd0, vp_base[32+:16]} + 35'({16'd0, vx_rows1} * {16'd0, vp_step[32+:16]})
      + 35'({17'd0, vx_blk1} * {18'd0, vp_bs[32+:16]}) + 35'd1;
  wire [34:0] v_acc_l = {3'd0, ACC_L};
  wire [34:0] v_spad_l = {3'd0, SPAD_L};
  // vdeq: src (its buffer), dst, the per-column scale rows [scale, scale + blocks).
  wire dq_acc = instr[`SYS_VDEQ_SRC_BUF_LO];
  wire dq_scale_imm = instr[`SYS_VDEQ_SCALE_IMM_LO];
  wire [15:0] dq_scale = instr[`SYS_VDEQ_SCALE_HI:`SYS_VDEQ_SCALE_LO];
  wire [2:0] vdeq_code =
      ((vp_hi0 > (dq_acc ? v_acc_l : v_spad_l)) | (vp_hi1 > v_acc_l)
       | (!dq_scale_imm & ({16'd0, dq_scale} + {15'd0, vx_blocks} > ACC_L))) ? E_OOR : E_NONE;
  // vquant: src (acc), dst (spad); then zp, qmin, qmax; then qmin <= qmax.
  wire vq_u8 = instr[`SYS_VQUANT_OUT_TYPE_LO];
  wire [1:0] vq_zp_top = instr[`SYS_VQUANT_ZP_HI-:2];  // bits 8..7
  wire [8:0] vq_qmin = instr[`SYS_VQUANT_QMIN_HI:`SYS_VQUANT_QMIN_LO];
  wire [8:0] vq_qmax = instr[`SYS_VQUANT_QMAX_HI:`SYS_VQUANT_QMAX_LO];
  wire [2:0] vquant_code =
      ((vp_hi0 > v_acc_l) | (vp_hi1 > v_spad_l)) ? E_OOR
      : (!in_type(vq_zp_top, vq_u8) | !in_type(vq_qmin[8:7], vq_u8) | !in_type(vq_qmax[8:7], vq_u8)
         | ($signed(vq_qmin) > $signed(vq_qmax))) ? E_ILL : E_NONE;
  // vop: dst, a, and b when it is a row pattern (a binary op without b_imm).
  wire [3:0] vo_op = instr[`SYS_VOP_OP_HI:`SYS_VOP_OP_LO];
  wire vo_unary = vo_op >= 4'(`SYS_VOP_EXP);
  wire vo_bimm = instr[`SYS_VOP_B_IMM_LO];
  wire vo_bpat = |instr[`SYS_VOP_B_BSTRIDE_HI:`SYS_VOP_B_LO];  // b, b_step, b_bstride
  wire vo_imm = |instr[`SYS_VOP_IMM_HI:`SYS_VOP_IMM_LO];
  wire [2:0] vop_code =
      ((vp_hi0 > v_acc_l) | (vp_hi1 > v_acc_l) | (!vo_unary & !vo_bimm & (vp_hi2 > v_acc_l))) ? E_OOR : E_NONE;
  // vred: a, and its results' rows (one block each: bstride 0 above).
  wire [2:0] vred_code = ((vp_hi0 > v_acc_l) | (vp_hi1 > v_acc_l)) ? E_OOR : E_NONE;
  wire [2:0] vmask_code = (vp_hi0 > v_acc_l) ? E_OOR : E_NONE;
  // Decoding: a zero count, an enum past its names, a field its other fields
  // leave unused set (Instr::unused_fields).
  wire v_zero = (vx_rows == 16'd0) | (vx_len == 16'd0);

  // --------------------------------------------------------------- decode
  // Instr::decode: reserved bits from the opcode's END up, then
  // check_fields (enum ranges, zero counts, dependency flags). Unsigned and
  // signed fields are in range by construction; enums of 2^W names too.
  logic dec_bad;
  always_comb begin
    unique case (op)
      // Index modes none / i64 / i32 (3 is no name); a plain load's
      // idx_addr and limit are 0, an indexed load's limit is not. A
      // compressed stream (zfmt none / mask) is neither indexed nor into acc.
      OP_LOAD:
      dec_bad = (|instr[255:`SYS_LOAD_END]) | (instr[`SYS_LOAD_BUF_HI:`SYS_LOAD_BUF_LO] > 2'(`SYS_BUF_ACC))
          | (d_zfmt > 2'(`SYS_ZFMT_MASK)) | (d_zm & (d_gather | d_acc))
          | (d_idx > 2'(`SYS_IDX_I32))
          | (d_gather ? (d_limit_rows == 32'd0) : ((d_idx_addr != 32'd0) | (d_limit_rows != 32'd0)))
          | (d_rows == 16'd0) | (d_cols == 16'd0) | dep_prev;
      OP_STORE:
      dec_bad = (|instr[255:`SYS_STORE_END]) | (instr[`SYS_STORE_BUF_HI:`SYS_STORE_BUF_LO] > 2'(`SYS_BUF_ACC))
          | (d_rows == 16'd0) | (d_cols == 16'd0) | dep_next;
      OP_LDW: dec_bad = (|instr[255:`SYS_LDW_END]) | (l_k == 16'd0) | (l_n == 16'd0);
      OP_MATMUL:
      dec_bad = (|instr[255:`SYS_MATMUL_END]) | (m_m == 16'd0)
          | (m_pre & ((m_k == 16'd0) | (m_n == 16'd0)));
      OP_REQUANT: dec_bad = (|instr[255:`SYS_REQUANT_END]) | (r_rows == 16'd0);
      OP_VMAX: dec_bad = (|instr[255:`SYS_VMAX_END]) | (x_n == 16'd0);
      OP_VADD: dec_bad = (|instr[255:`SYS_VADD_END]) | (v_n == 16'd0);
      OP_VLUT: dec_bad = (|instr[255:`SYS_VLUT_END]) | (u_n == 16'd0);
      OP_SYNC:
      dec_bad = (|instr[255:`SYS_SYNC_END]) | (s_queue > Q_STORE)
          | ((s_queue == Q_LOAD) & dep_prev) | ((s_queue == Q_STORE) & dep_next);
      OP_FINISH: dec_bad = (|instr[255:`SYS_FINISH_END]) | any_dep;
      OP_VDEQ:
      dec_bad = (|instr[255:`SYS_VDEQ_END]) | (instr[`SYS_VDEQ_SRC_BUF_HI:`SYS_VDEQ_SRC_BUF_LO] > 2'(`SYS_BUF_ACC))
          | v_zero | (dq_acc & instr[`SYS_VDEQ_IN_TYPE_LO])
          | (dq_scale_imm ? (dq_scale != 16'd0) : (|instr[`SYS_VDEQ_IMM_HI:`SYS_VDEQ_IMM_LO]));
      OP_VQUANT: dec_bad = (|instr[255:`SYS_VQUANT_END]) | v_zero;
      OP_VOP:
      dec_bad = (|instr[255:`SYS_VOP_END]) | (vo_op > 4'(`SYS_VOP_RSQRT)) | v_zero
          | (vo_unary ? (vo_bpat | vo_bimm | vo_imm) : vo_bimm ? vo_bpat : vo_imm);
      OP_VRED: dec_bad = (|instr[255:`SYS_VRED_END]) | v_zero;
      OP_VMASK: dec_bad = (|instr[255:`SYS_VMASK_END]) | v_zero;
      default: dec_bad = 1'b1;
    endcase
  end

  // ----------------------------------------------------------------- result
  always_comb begin
    code  = E_NONE;
    queue = Q_COMPUTE;
    unique case (op)
      OP_LOAD, OP_STORE: begin
        code  = z_stride_bad ? E_ILL : dma_oor ? E_OOR : win_bad ? E_WIN : E_NONE;
        queue = is_load ? Q_LOAD : Q_STORE;
      end
      OP_LDW: code = ldw_code;
      OP_MATMUL: code = matmul_code;
      OP_REQUANT: code = requant_code;
      OP_VMAX: code = vmax_code;
      OP_VADD: code = vadd_code;
      OP_VLUT: code = vlut_code;
      OP_VDEQ: code = vdeq_code;
      OP_VQUANT: code = vquant_code;
      OP_VOP: code = vop_code;
      OP_VRED: code = vred_code;
      OP_VMASK: code = vmask_code;
      OP_SYNC: queue = s_queue;
      default: ;
    endcase
    if (dec_bad | rsvd_hdr) code = E_ILL;
  end
  assign is_finish = (op == OP_FINISH) & !dec_bad & !rsvd_hdr;

endmodule
