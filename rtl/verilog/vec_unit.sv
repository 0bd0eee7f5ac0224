// vec_unit: the vector unit (ISA.md §3 "The vector unit", §4 "COMPUTE"):
// vdeq, vquant, vop, vred and vmask on row patterns of the accumulator and
// the scratchpad, bit-exact with sim/src/vector.rs and cycle-exact with its
// busy cycles; `compute` issues it (after the drain, with the PPU idle) and
// owns the interlocks, pushes and trace.
//
// L = COLS lanes (the configuration's vector_lanes must equal array.cols:
// rtl::RtlDevice refuses others), lane c working on column c. A *chunk* is
// one column block of one logical row: element e = j*COLS + c of logical row
// r at row base + r*step + j*bstride, column c (only e < len is read or
// written). Chunks run row-major, (r, j) = (0, 0), (0, 1), ...
//
// Element-wise (vdeq, vquant, vop; each an op of the verified `vec_lane`):
// chunk k is read and started on the lanes in cycle t + 1 + k*C (C = the
// op's lane cycles: 1, 4 for vquant, VOP_CYCLES for vop), every lane finishes
// within C cycles, and its results are written (column enables) in cycle
// t + 1 + (k+1)*C + 1: the last at t + B*C + 2, inside the ISA's busy
// [t, t + B*C + VEC_LATENCY). vmask runs the same chunk pipeline with C = 1
// and writes imm under the mask (no read: the columns it keeps are not
// written).
// vred: chunk (r, j) in cycle t + 1 + r*blocks + j folds the row into the
// lane accumulators (j = 0 restarts them at -0 / -inf); after a row's last
// chunk the pairwise tree (combinational, ceil(log2 L) levels) writes the
// result to every column of dst + r*dst_step in the next cycle: the last at
// t + rows*blocks + 1, inside the ISA's busy.
// Within an instruction a chunk is read before any later chunk's write, so
// dst = a works in place (the ISA leaves other overlaps undefined).
//
// The busy cycles, the interlock spans (the accumulator rows' hull, vquant's
// scratchpad destination) and the counters (the model adds them when the
// instruction issues: bulk values in the issue cycle) come from the issuing
// instruction's fields.
//
// Constructs: only what both Verilator 5.006 (lint-clean under -Wall) and
// yosys 0.23 accept (docs/DESIGN.md §6): no packages, no functions.

`include "systole_isa.vh"

module vec_unit #(
    parameter int COLS = 4
) (
    input  logic               clk,
    input  logic               rst,
    input  logic               iss,         // the head issues to this unit this cycle
    input  logic [      255:0] instr,
    input  logic [       31:0] pc,
    output logic               run,         // busy after the issue cycle
    output logic               last,        // the last busy cycle
    output logic               last_pp,
    output logic               last_pn,
    output logic [       31:0] last_pc,
    // Interlock spans of the running instruction, [lo, hi).
    output logic [       15:0] acc_lo,
    output logic [       16:0] acc_hi,
    output logic [       15:0] sp_lo,
    output logic [       16:0] sp_hi,
    // Buffers: async read ports, one write port each (column enables).
    output logic [       15:0] ac_row_a,
    input  logic [COLS*32-1:0] ac_q_a,
    output logic [       15:0] ac_row_b,
    input  logic [COLS*32-1:0] ac_q_b,
    output logic [       15:0] sp_row,
    input  logic [ COLS*8-1:0] sp_q,
    output logic               ac_we,
    output logic [       15:0] ac_wrow,
    output logic [COLS*32-1:0] ac_wdata,
    output logic [   COLS-1:0] ac_be,
    output logic               sp_we,
    output logic [       15:0] sp_wrow,
    output logic [ COLS*8-1:0] sp_wdata,
    output logic [   COLS-1:0] sp_be,
    // Counter increments (in the issue cycle, as the model adds them).
    output logic [       39:0] c_busy,
    output logic [       31:0] c_elems,
    output logic [       39:0] c_lane,
    output logic [       31:0] c_acc_rd,
    output logic [       31:0] c_acc_wr,
    output logic [       31:0] c_sp_rd,
    output logic [       31:0] c_sp_wr
);
  localparam bit COLS_POW2 = (COLS & (COLS - 1)) == 0;
  localparam int COLS_LOG2 = COLS > 1 ? $clog2(COLS) : 1;
  // Levels of the reduction tree: ceil(log2 L).
  localparam int LV = COLS > 1 ? $clog2(COLS) : 0;
  localparam logic [2:0] K_DEQ = 3'd0, K_QUANT = 3'd1, K_VOP = 3'd2, K_RED = 3'd3, K_MASK = 3'd4;
  // vec_lane's op codes beyond the vop ones.
  localparam logic [3:0] LANE_DEQ = 4'd13, LANE_QUANT = 4'd14;
  localparam logic [31:0] ONE = 32'h3f80_0000, NEG_ZERO = 32'h8000_0000, NEG_INF = 32'hff80_0000;

  // =====================================================================
  // Decode of the issuing instruction (evaluated only in an issue cycle).
  // =====================================================================
  logic [7:0] op;
  assign op = instr[`SYS_OPCODE_LO+:`SYS_OPCODE_W];

  logic [2:0] i_kind;
  logic [3:0] i_lop;
  logic [4:0] i_c;
  logic [15:0] i_rows, i_len;
  logic [15:0] i_a, i_as, i_ab, i_b, i_bs, i_bb, i_d, i_ds, i_db;
  logic i_acc_src, i_u8, i_bimm, i_brow, i_scale_imm, i_red_max;
  logic [31:0] i_imm, i_zp, i_qmin, i_qmax;
  logic [15:0] i_scale;
  logic [16:0] i_blocks;
  logic [31:0] i_n;  // chunks: rows * blocks
  logic [39:0] i_busy;
  logic [15:0] i_acc_lo, i_sp_lo;
  logic [16:0] i_acc_hi, i_sp_hi;
  logic [31:0] i_acc_rd, i_acc_wr, i_sp_rd, i_sp_wr, i_elems;
  logic [39:0] i_lane;

  // A vop's cycles per element chunk, as a mux chain outside the decode
  // process: yosys' `proc` would turn a constant case there into a small
  // ROM, which the area report would count as a memory.
  logic [3:0] vop_op;
  logic [4:0] vop_c;
  assign vop_op = instr[`SYS_VOP_OP_LO+:4];
  assign vop_c = vop_op == 4'(`SYS_VOP_SUB)   ? 5'(`SYS_VOP_CYCLES_SUB)
               : vop_op == 4'(`SYS_VOP_MUL)   ? 5'(`SYS_VOP_CYCLES_MUL)
               : vop_op == 4'(`SYS_VOP_DIV)   ? 5'(`SYS_VOP_CYCLES_DIV)
               : vop_op == 4'(`SYS_VOP_MAX)   ? 5'(`SYS_VOP_CYCLES_MAX)
               : vop_op == 4'(`SYS_VOP_MIN)   ? 5'(`SYS_VOP_CYCLES_MIN)
               : vop_op == 4'(`SYS_VOP_EXP)   ? 5'(`SYS_VOP_CYCLES_EXP)
               : vop_op == 4'(`SYS_VOP_ERF)   ? 5'(`SYS_VOP_CYCLES_ERF)
               : vop_op == 4'(`SYS_VOP_TANH)  ? 5'(`SYS_VOP_CYCLES_TANH)
               : vop_op == 4'(`SYS_VOP_RECIP) ? 5'(`SYS_VOP_CYCLES_RECIP)
               : vop_op == 4'(`SYS_VOP_RSQRT) ? 5'(`SYS_VOP_CYCLES_RSQRT)
               :                                5'(`SYS_VOP_CYCLES_ADD);

  // A pattern's span end: base + (rows-1)*step + (blocks-1)*bstride + 1
  // (<= the buffer's rows for a legal instruction: 17 bits hold it).
  logic [16:0] hi_a, hi_b, hi_d;
  logic [16:0] blk_m1;
  logic [15:0] rows_m1;

  always_comb begin
    i_kind = K_VOP;
    i_lop = 4'd0;
    i_c = 5'd1;
    i_rows = 16'd1;
    i_len = 16'd1;
    i_a = 16'd0;
    i_as = 16'd0;
    i_ab = 16'd0;
    i_b = 16'd0;
    i_bs = 16'd0;
    i_bb = 16'd0;
    i_d = 16'd0;
    i_ds = 16'd0;
    i_db = 16'd0;
    i_acc_src = 1'b0;
    i_u8 = 1'b0;
    i_bimm = 1'b0;
    i_brow = 1'b0;
    i_scale_imm = 1'b0;
    i_red_max = 1'b0;
    i_imm = 32'd0;
    i_zp = 32'd0;
    i_qmin = 32'd0;
    i_qmax = 32'd0;
    i_scale = 16'd0;
    i_blocks = 17'd1;
    i_n = 32'd1;
    i_busy = 40'd0;
    hi_a = 17'd0;
    hi_b = 17'd0;
    hi_d = 17'd0;
    blk_m1 = 17'd0;
    rows_m1 = 16'd0;
    i_acc_lo = 16'd0;
    i_acc_hi = 17'd0;
    i_sp_lo = 16'd0;
    i_sp_hi = 17'd0;
    i_acc_rd = 32'd0;
    i_acc_wr = 32'd0;
    i_sp_rd = 32'd0;
    i_sp_wr = 32'd0;
    i_elems = 32'd0;
    i_lane = 40'd0;
    if (iss) begin
      // Fields: a = source / operand a, b = operand b, d = destination.
      if (op == 8'(`SYS_OP_VDEQ)) begin
        i_kind = K_DEQ;
        i_lop = LANE_DEQ;
        i_c = 5'(`SYS_VEC_SIMPLE_CYCLES);
        i_acc_src = instr[`SYS_VDEQ_SRC_BUF_LO] == 1'(`SYS_BUF_ACC);
        i_u8 = instr[`SYS_VDEQ_IN_TYPE_LO] == 1'(`SYS_ELEM_U8);
        i_a = instr[`SYS_VDEQ_SRC_LO+:16];
        i_as = instr[`SYS_VDEQ_SRC_STEP_LO+:16];
        i_ab = instr[`SYS_VDEQ_SRC_BSTRIDE_LO+:16];
        i_d = instr[`SYS_VDEQ_DST_LO+:16];
        i_ds = instr[`SYS_VDEQ_DST_STEP_LO+:16];
        i_db = instr[`SYS_VDEQ_DST_BSTRIDE_LO+:16];
        i_rows = instr[`SYS_VDEQ_ROWS_LO+:16];
        i_len = instr[`SYS_VDEQ_LEN_LO+:16];
        i_zp = {{16{instr[`SYS_VDEQ_ZP_HI]}}, instr[`SYS_VDEQ_ZP_LO+:16]};
        i_scale_imm = instr[`SYS_VDEQ_SCALE_IMM_LO];
        i_scale = instr[`SYS_VDEQ_SCALE_LO+:16];
        i_imm = instr[`SYS_VDEQ_IMM_LO+:32];
      end else if (op == 8'(`SYS_OP_VQUANT)) begin
        i_kind = K_QUANT;
        i_lop = LANE_QUANT;
        i_c = 5'(`SYS_VQUANT_CYCLES);
        i_u8 = instr[`SYS_VQUANT_OUT_TYPE_LO] == 1'(`SYS_ELEM_U8);
        i_a = instr[`SYS_VQUANT_SRC_LO+:16];
        i_as = instr[`SYS_VQUANT_SRC_STEP_LO+:16];
        i_ab = instr[`SYS_VQUANT_SRC_BSTRIDE_LO+:16];
        i_d = instr[`SYS_VQUANT_DST_LO+:16];
        i_ds = instr[`SYS_VQUANT_DST_STEP_LO+:16];
        i_db = instr[`SYS_VQUANT_DST_BSTRIDE_LO+:16];
        i_rows = instr[`SYS_VQUANT_ROWS_LO+:16];
        i_len = instr[`SYS_VQUANT_LEN_LO+:16];
        i_zp = {{23{instr[`SYS_VQUANT_ZP_HI]}}, instr[`SYS_VQUANT_ZP_LO+:9]};
        i_qmin = {{23{instr[`SYS_VQUANT_QMIN_HI]}}, instr[`SYS_VQUANT_QMIN_LO+:9]};
        i_qmax = {{23{instr[`SYS_VQUANT_QMAX_HI]}}, instr[`SYS_VQUANT_QMAX_LO+:9]};
        i_imm = instr[`SYS_VQUANT_SCALE_LO+:32];
      end else if (op == 8'(`SYS_OP_VOP)) begin
        i_kind = K_VOP;
        i_lop = instr[`SYS_VOP_OP_LO+:4];
        i_c = vop_c;
        i_d = instr[`SYS_VOP_DST_LO+:16];
        i_ds = instr[`SYS_VOP_DST_STEP_LO+:16];
        i_db = instr[`SYS_VOP_DST_BSTRIDE_LO+:16];
        i_a = instr[`SYS_VOP_A_LO+:16];
        i_as = instr[`SYS_VOP_A_STEP_LO+:16];
        i_ab = instr[`SYS_VOP_A_BSTRIDE_LO+:16];
        i_b = instr[`SYS_VOP_B_LO+:16];
        i_bs = instr[`SYS_VOP_B_STEP_LO+:16];
        i_bb = instr[`SYS_VOP_B_BSTRIDE_LO+:16];
        i_bimm = instr[`SYS_VOP_B_IMM_LO];
        i_imm = instr[`SYS_VOP_IMM_LO+:32];
        i_rows = instr[`SYS_VOP_ROWS_LO+:16];
        i_len = instr[`SYS_VOP_LEN_LO+:16];
        // Binary ops read b as a row pattern unless it is the immediate
        // (a unary op's b fields and imm are 0: decoding checks it).
        i_brow = instr[`SYS_VOP_OP_LO+:4] < 4'(`SYS_VOP_EXP) && !instr[`SYS_VOP_B_IMM_LO];
      end else if (op == 8'(`SYS_OP_VRED)) begin
        i_kind = K_RED;
        i_red_max = instr[`SYS_VRED_OP_LO] == 1'(`SYS_VRED_MAX);
        i_a = instr[`SYS_VRED_A_LO+:16];
        i_as = instr[`SYS_VRED_A_STEP_LO+:16];
        i_ab = instr[`SYS_VRED_A_BSTRIDE_LO+:16];
        i_d = instr[`SYS_VRED_DST_LO+:16];
        i_ds = instr[`SYS_VRED_DST_STEP_LO+:16];
        i_rows = instr[`SYS_VRED_ROWS_LO+:16];
        i_len = instr[`SYS_VRED_LEN_LO+:16];
      end else begin
        i_kind = K_MASK;
        i_d = instr[`SYS_VMASK_DST_LO+:16];
        i_ds = instr[`SYS_VMASK_DST_STEP_LO+:16];
        i_db = instr[`SYS_VMASK_DST_BSTRIDE_LO+:16];
        i_rows = instr[`SYS_VMASK_ROWS_LO+:16];
        i_len = instr[`SYS_VMASK_LEN_LO+:16];
        i_zp = {{16{instr[`SYS_VMASK_DIAG_HI]}}, instr[`SYS_VMASK_DIAG_LO+:16]};
        i_imm = instr[`SYS_VMASK_IMM_LO+:32];
      end
      // Column blocks: ceil(len / COLS).
      if (COLS_POW2) i_blocks = ({1'b0, i_len} + 17'(COLS - 1)) >> COLS_LOG2;
      else i_blocks = ({1'b0, i_len} + 17'(COLS - 1)) / 17'(COLS);
      i_n = i_rows * i_blocks[15:0];
      blk_m1 = i_blocks - 17'd1;
      rows_m1 = i_rows - 16'd1;
      hi_a = 17'({16'd0, i_a} + {16'd0, rows_m1} * {16'd0, i_as} + 32'(blk_m1) * {16'd0, i_ab} + 32'd1);
      hi_b = 17'({16'd0, i_b} + {16'd0, rows_m1} * {16'd0, i_bs} + 32'(blk_m1) * {16'd0, i_bb} + 32'd1);
      hi_d = 17'({16'd0, i_d} + {16'd0, rows_m1} * {16'd0, i_ds} + 32'(blk_m1) * {16'd0, i_db} + 32'd1);
      i_elems = 32'(i_rows) * 32'(i_len);
      // Busy, the accumulator hull, the rows each buffer sees (vector.rs).
      case (i_kind)
        K_DEQ: begin
          i_busy = 40'(i_n) * 40'(i_c) + 40'(`SYS_VEC_LATENCY);
          i_lane = 40'(i_elems) * 40'(i_c);
          i_acc_lo = i_d;
          i_acc_hi = hi_d;
          if (i_acc_src) begin
            if (i_a < i_acc_lo) i_acc_lo = i_a;
            if (hi_a > i_acc_hi) i_acc_hi = hi_a;
          end
          if (!i_scale_imm) begin
            if (i_scale < i_acc_lo) i_acc_lo = i_scale;
            if ({1'b0, i_scale} + i_blocks > i_acc_hi) i_acc_hi = {1'b0, i_scale} + i_blocks;
          end
          i_acc_rd = (i_acc_src ? i_n : 32'd0) + (i_scale_imm ? 32'd0 : 32'(i_blocks));
          i_acc_wr = i_n;
          i_sp_rd = i_acc_src ? 32'd0 : i_n;
        end
        K_QUANT: begin
          i_busy = 40'(i_n) * 40'(i_c) + 40'(`SYS_VEC_LATENCY);
          i_lane = 40'(i_elems) * 40'(i_c);
          i_acc_lo = i_a;
          i_acc_hi = hi_a;
          i_sp_lo = i_d;
          i_sp_hi = hi_d;
          i_acc_rd = i_n;
          i_sp_wr = i_n;
        end
        K_VOP: begin
          i_busy = 40'(i_n) * 40'(i_c) + 40'(`SYS_VEC_LATENCY);
          i_lane = 40'(i_elems) * 40'(i_c);
          i_acc_lo = (i_a < i_d) ? i_a : i_d;
          i_acc_hi = (hi_a > hi_d) ? hi_a : hi_d;
          if (i_brow) begin
            if (i_b < i_acc_lo) i_acc_lo = i_b;
            if (hi_b > i_acc_hi) i_acc_hi = hi_b;
          end
          i_acc_rd = i_brow ? {i_n[30:0], 1'b0} : i_n;
          i_acc_wr = i_n;
        end
        K_RED: begin
          // ceil(len / L) * max(rows, 4) + tree + latency.
          i_busy = 40'(i_blocks) * ((i_rows > 16'(`SYS_VEC_ADD_LATENCY)) ? 40'(i_rows) : 40'(`SYS_VEC_ADD_LATENCY))
              + 40'(LV * `SYS_VEC_ADD_LATENCY) + 40'(`SYS_VEC_LATENCY);
          i_lane = 40'(i_elems) * 40'(`SYS_VEC_SIMPLE_CYCLES);
          // The results' rows: dst + r*dst_step, one block each.
          hi_d = 17'({16'd0, i_d} + {16'd0, rows_m1} * {16'd0, i_ds} + 32'd1);
          i_acc_lo = (i_a < i_d) ? i_a : i_d;
          i_acc_hi = (hi_a > hi_d) ? hi_a : hi_d;
          i_acc_rd = i_n;
          i_acc_wr = 32'(i_rows);
        end
        default: begin  // K_MASK
          i_busy = 40'(i_n) * 40'(`SYS_VEC_SIMPLE_CYCLES) + 40'(`SYS_VEC_LATENCY);
          i_lane = 40'(i_elems) * 40'(`SYS_VEC_SIMPLE_CYCLES);
          i_acc_lo = i_d;
          i_acc_hi = hi_d;
          i_acc_rd = i_n;
          i_acc_wr = i_n;
        end
      endcase
    end
  end

  assign c_busy   = i_busy;
  assign c_elems  = i_elems;
  assign c_lane   = i_lane;
  assign c_acc_rd = i_acc_rd;
  assign c_acc_wr = i_acc_wr;
  assign c_sp_rd  = i_sp_rd;
  assign c_sp_wr  = i_sp_wr;

  // =====================================================================
  // Sequencer state.
  // =====================================================================
  logic [39:0] rem;  // busy cycles left after the current one
  logic [2:0] kind;
  logic [3:0] lop;
  logic [4:0] cyc, bt;  // lane cycles per chunk; cycle within the chunk
  logic [31:0] ck_left;  // chunks still to start
  logic [15:0] len_r, r_idx;
  logic [16:0] blocks_r, j_idx;
  logic [31:0] ebase;  // j * COLS
  // Patterns: the current logical row's first row and the current chunk's row.
  logic [15:0] a_rb, a_cur, a_st, a_bs;
  logic [15:0] b_rb, b_cur, b_st, b_bs;
  logic [15:0] d_rb, d_cur, d_st, d_bs;
  logic [15:0] s_cur;  // vdeq's per-column scale row (scale + j)
  logic acc_src, u8, bimm, scale_imm, red_max;
  logic [31:0] imm, zp, qmin, qmax;

  assign run  = rem != 40'd0;
  assign last = rem == 40'd1;

  // This cycle's chunk: it starts when a chunk is left and the previous
  // one's lane cycles are over.
  logic go, blk_last;
  logic [COLS-1:0] colv, maskv;
  assign go       = ck_left != 32'd0 && bt == 5'd0;
  assign blk_last = j_idx == blocks_r - 17'd1;
  for (genvar c = 0; c < COLS; c++) begin : g_colv
    logic [31:0] e;
    logic signed [33:0] thr;
    assign e = ebase + 32'(c);
    assign thr = $signed({18'd0, r_idx}) + $signed({{2{zp[31]}}, zp});
    assign colv[c] = e < {16'd0, len_r};
    // vmask: e > r + diag (zp holds diag).
    assign maskv[c] = colv[c] && ($signed({2'b00, e}) > thr);
  end

  // Reads.
  assign ac_row_a = a_cur;
  assign ac_row_b = (kind == K_DEQ) ? s_cur : b_cur;
  assign sp_row   = a_cur;

  // Writes of element-wise chunks: the chunk started last waits in `pend`
  // until the next chunk boundary (C cycles after its start), then in `wb`
  // one more cycle, when every lane's result is there.
  logic pend_v, wb_v, edge_now;
  logic [15:0] pend_row, wb_row;
  logic [COLS-1:0] pend_be, wb_be;
  logic [COLS*32-1:0] red_y;  // vred: the tree's result in every column
  logic [COLS*32-1:0] lane_y;  // lane c's result at bits 32c+31..32c
  assign edge_now = bt == 5'd0 && (ck_left != 32'd0 || pend_v);

  always_ff @(posedge clk) begin
    if (rst) begin
      rem <= 40'd0;
      ck_left <= 32'd0;
      bt <= 5'd0;
      pend_v <= 1'b0;
      wb_v <= 1'b0;
    end else if (iss) begin
      rem <= i_busy - 40'd1;
      ck_left <= i_n;
      bt <= 5'd0;
      pend_v <= 1'b0;
      wb_v <= 1'b0;
    end else begin
      if (run) rem <= rem - 40'd1;
      wb_v <= 1'b0;
      if (kind == K_RED) begin
        if (go) begin
          ck_left <= ck_left - 32'd1;
          if (blk_last) wb_v <= 1'b1;
        end
      end else begin
        if (edge_now) begin
          wb_v   <= pend_v;
          pend_v <= go;
          bt     <= (go && cyc != 5'd1) ? 5'd1 : 5'd0;
          if (go) ck_left <= ck_left - 32'd1;
        end else if (bt != 5'd0) begin
          bt <= (bt == cyc - 5'd1) ? 5'd0 : bt + 5'd1;
        end
      end
    end
  end

  always_ff @(posedge clk) begin
    if (iss) begin
      kind <= i_kind;
      lop <= i_lop;
      cyc <= i_c;
      len_r <= i_len;
      blocks_r <= i_blocks;
      r_idx <= 16'd0;
      j_idx <= 17'd0;
      ebase <= 32'd0;
      a_rb <= i_a;
      a_cur <= i_a;
      a_st <= i_as;
      a_bs <= i_ab;
      b_rb <= i_b;
      b_cur <= i_b;
      b_st <= i_bs;
      b_bs <= i_bb;
      d_rb <= i_d;
      d_cur <= i_d;
      d_st <= i_ds;
      d_bs <= i_db;
      s_cur <= i_scale;
      acc_src <= i_acc_src;
      u8 <= i_u8;
      bimm <= i_bimm;
      scale_imm <= i_scale_imm;
      red_max <= i_red_max;
      imm <= i_imm;
      zp <= i_zp;
      qmin <= i_qmin;
      qmax <= i_qmax;
      acc_lo <= i_acc_lo;
      acc_hi <= i_acc_hi;
      sp_lo <= i_sp_lo;
      sp_hi <= i_sp_hi;
      last_pp <= instr[`SYS_DEP_PUSH_PREV];
      last_pn <= instr[`SYS_DEP_PUSH_NEXT];
      last_pc <= pc;
    end else if (go) begin
      // The chunk's write (vred: its row's result row, after the last block).
      if (kind == K_RED) begin
        wb_row <= d_cur;
        wb_be  <= '1;
      end else begin
        pend_row <= d_cur;
        pend_be  <= (kind == K_MASK) ? maskv : colv;
      end
      // Next chunk: the next column block, or the next logical row.
      if (blk_last) begin
        j_idx <= 17'd0;
        ebase <= 32'd0;
        r_idx <= r_idx + 16'd1;
        a_rb  <= a_rb + a_st;
        a_cur <= a_rb + a_st;
        b_rb  <= b_rb + b_st;
        b_cur <= b_rb + b_st;
        d_rb  <= d_rb + d_st;
        d_cur <= d_rb + d_st;
        s_cur <= s_cur - 16'(blocks_r - 17'd1);
      end else begin
        j_idx <= j_idx + 17'd1;
        ebase <= ebase + 32'(COLS);
        a_cur <= a_cur + a_bs;
        b_cur <= b_cur + b_bs;
        // vred writes one row per logical row: its dst moves with r only.
        if (kind != K_RED) d_cur <= d_cur + d_bs;
        s_cur <= s_cur + 16'd1;
      end
    end
    if (!iss && kind != K_RED && edge_now && pend_v) begin
      wb_row <= pend_row;
      wb_be  <= pend_be;
    end
  end

  // =====================================================================
  // Lanes.
  // =====================================================================
  logic [COLS-1:0] lane_go;
  for (genvar c = 0; c < COLS; c++) begin : g_lane
    logic [31:0] la, lb, qa, qb;
    logic [7:0] byte_in;
    logic busy_unused, done_unused;
    assign qa = ac_q_a[c*32+:32];
    assign qb = ac_q_b[c*32+:32];
    assign byte_in = sp_q[c*8+:8];
    assign lane_go[c] = go && colv[c] && (kind == K_DEQ || kind == K_QUANT || kind == K_VOP);
    always_comb begin
      la = qa;
      lb = bimm ? imm : qb;
      if (kind == K_DEQ) begin
        if (!acc_src) la = u8 ? {24'd0, byte_in} : {{24{byte_in[7]}}, byte_in};
        lb = scale_imm ? imm : qb;
      end else if (kind == K_QUANT) begin
        lb = imm;
      end
    end
    vec_lane u_lane (
        .clk(clk),
        .rst(rst),
        .start(lane_go[c]),
        .op(lop),
        .a(la),
        .b(lb),
        .c(zp),
        .qmin(qmin),
        .qmax(qmax),
        .busy(busy_unused),
        .done(done_unused),
        .y(lane_y[c*32+:32])
    );
  end

  // =====================================================================
  // vred: lane accumulators and the pairwise tree.
  // =====================================================================
  logic [COLS*32-1:0] racc;  // lane c's accumulator at bits 32c+31..32c
  // The adders evaluate only when read: the fold in a vred chunk's cycle,
  // the tree in a vred result's write cycle.
  logic red_fold, red_out;
  assign red_fold = go && kind == K_RED;
  assign red_out  = wb_v && kind == K_RED;
  // Level l's values, value k at bits (l*COLS + k)*32 + 31.. (split: each
  // level reads only the one before it).
  logic [(LV+1)*COLS*32-1:0] tr  /* verilator split_var */;
  for (genvar c = 0; c < COLS; c++) begin : g_fold
    logic [31:0] prev, x, sum_y, max_y, min_unused;
    assign prev = (j_idx == 17'd0) ? (red_max ? NEG_INF : NEG_ZERO) : racc[c*32+:32];
    assign x = ac_q_a[c*32+:32];
    fp32_fma u_add (.en(red_fold), .a(x), .b(ONE), .c(prev), .y(sum_y));
    fp32_minmax u_max (.en(red_fold), .a(prev), .b(x), .max_y(max_y), .min_y(min_unused));
    always_ff @(posedge clk) begin
      if (red_fold) racc[c*32+:32] <= !colv[c] ? prev : (red_max ? max_y : sum_y);
    end
    assign tr[c*32+:32] = racc[c*32+:32];
  end
  // Level l has N(l) = ceil(COLS / 2^l) values; a[k] = a[2k] op a[2k+1], an
  // odd last one passing through.
  for (genvar l = 0; l < LV; l++) begin : g_lvl
    localparam int N = (COLS + (1 << l) - 1) >> l;
    for (genvar k = 0; k < COLS; k++) begin : g_node
      if (2 * k + 1 < N) begin : g_pair
        logic [31:0] s, m, mn_unused;
        fp32_fma u_add (.en(red_out), .a(tr[(l*COLS+2*k)*32+:32]), .b(ONE), .c(tr[(l*COLS+2*k+1)*32+:32]), .y(s));
        fp32_minmax u_max (.en(red_out), .a(tr[(l*COLS+2*k)*32+:32]), .b(tr[(l*COLS+2*k+1)*32+:32]), .max_y(m), .min_y(mn_unused));
        assign tr[((l+1)*COLS+k)*32+:32] = red_max ? m : s;
      end else if (2 * k < N) begin : g_pass
        assign tr[((l+1)*COLS+k)*32+:32] = tr[(l*COLS+2*k)*32+:32];
      end else begin : g_none
        assign tr[((l+1)*COLS+k)*32+:32] = 32'd0;
      end
    end
  end
  // sum_row's result is canonical (the fma's NaN already is).
  for (genvar c = 0; c < COLS; c++) begin : g_red_y
    assign red_y[c*32+:32] = tr[LV*COLS*32+:32];
  end

  // =====================================================================
  // Write ports.
  // =====================================================================
  assign ac_we   = wb_v && kind != K_QUANT;
  assign ac_wrow = wb_row;
  assign ac_be   = wb_be;
  assign sp_we   = wb_v && kind == K_QUANT;
  assign sp_wrow = wb_row;
  assign sp_be   = wb_be;
  for (genvar c = 0; c < COLS; c++) begin : g_wdata
    assign ac_wdata[c*32+:32] = (kind == K_RED) ? red_y[c*32+:32] : (kind == K_MASK) ? imm : lane_y[c*32+:32];
    assign sp_wdata[c*8+:8]   = lane_y[c*32+:8];
  end

  logic unused;
  // (tr: the tree's levels hold fewer values than COLS)
  assign unused = ^{instr[255:`SYS_VDEQ_END], instr[15:8], tr};
endmodule
