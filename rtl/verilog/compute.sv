// compute: the COMPUTE unit (ISA.md §3 ldw / matmul / requant / vmax / vadd /
// vlut / sync, §3 "Hazards", §4 "COMPUTE"), cycle-exact with `issue_compute` of
// sim/src/machine.rs and bit-exact with sim/src/array.rs.
//
// One instruction issues per cycle, in order, to one of two sub-units: the
// array (ldw, matmul: the verified `array`) and the post-processor (PPU:
// requant, vmax, vadd: one verified `requant` and one verified `qadd` per
// column, both LATENCY 1). The
// head issues in cycle t (`start`) when it is valid, its tokens are there,
// its sub-unit is free (busy windows below are [t, t + span)), and the
// interlocks allow it. Everything the issue cycle does (the first
// scratchpad / accumulator read, the first streamed row, the swap, the
// weight clear) is combinational from head_instr; later cycles run from
// registers. Cycle t + s of an instruction does (s = 0 is the issue cycle):
// - ldw (busy k): s < k: read weight row addr+s, write shadow row s
//   (s = 0 also clears the shadow buffer). Pushes and finish at t + k.
//   An i4 tile (wfmt = i4, INT4): s reads row addr + s/2 and writes its
//   low (s even) or high (s odd) nibbles, sign-extended; a row is read
//   (and counted) on even s only. An i8s24 tile (SPARSE) also writes
//   each weight's 2-bit position: s % 4 == 0 reads position row
//   meta + s/4 (counted) and holds it for s + 1..s + 3.
//   A transposed tile (trans, busy n): s < n reads row addr + s and writes
//   its first k bytes as shadow *column* s (the array's column-write bus;
//   s = 0 also clears). Pushes and finish at t + n.
// - matmul (busy max(m, preload ? k : 0)): s < m: read input row row(s) of
//   the input-row pattern (a + (s / g) * a_gstride + (s % g) * a_stride,
//   stepped: a_stride inside a group, a_gstride from a group's first row to
//   the next's) and stream it (the swap rides the first row; with a nonzero
//   a_bstride also row(s) + a_bstride, the second block of a 2:4 input,
//   read and counted whatever the tile); s < k
//   (preload): weight row w+s as ldw does. The array returns row s at t + s + ROWS + COLS - 1, the
//   cycle it is written (accumulate: read, add, write) to acc + s, so it is
//   visible at t + s + ROWS + COLS; push_prev at the end of busy,
//   push_next and finish at t + m + ROWS + COLS (the cycle after the last
//   row is visible, ISA §4). In-flight matmuls wait in a descriptor FIFO
//   (depth >= ROWS + COLS - 1, the most that can be in flight) whose head
//   names the accumulator rows of the rows leaving the array.
// - requant (busy rows + 3): s = 0 bias row (acc `params`), s = 1 scale row
//   (params + 1), s = 2 + i acc row acc + i (bias added, into the
//   requantizers), s = 3 + i their registered result written to dst + i.
// - vmax (busy n + 1): s = i reads rows a + i*sa, b + i*sb, s = i + 1
//   writes the registered maximum to dst + i*sd.
// - vadd (busy n + 4): s = 0, 1, 2 read ra, rb, k (acc params..+2, float32
//   bits); s = 3 + i reads rows a + i, b + i (into the `qadd`s), s = 4 + i
//   writes their registered result to dst + i.
// - sync: issues on tokens alone, finishes and pushes at t + 1.
// - vdeq, vquant, vop, vred, vmask: the vector unit (vec_unit.sv), which
//   shares the post-processor's slot: it issues when the PPU and the vector
//   unit are idle and the array is drained (as requant), and a PPU
//   instruction waits for it; ldw / matmul interlock against its spans
//   (vquant's scratchpad destination, the hull of its accumulator rows) as
//   against the PPU's. Pushes and finish at the end of its busy.
// - vlut (post-processor too; busy T + n + 1, T = ceil(256 / COLS)): s < T
//   reads table row table + s into the 256-entry table register (a
//   snapshot: the rows it writes later never change it); s = T + i reads
//   row src + i, s = T + i + 1 writes the registered lookup to dst + i.
// A PPU write and a read of the same row in one cycle (vmax / vadd whose
// destination feeds a later row of the same instruction) forwards the
// written row: the model applies iterations in order.
// Interlocks (exactly machine.rs): while the PPU is busy, ldw waits if
// [addr, addr+k) meets the PPU's destination rows ([dst, dst+n), vmax
// [dst, dst+(n-1)*sd+1)); matmul if its input span [a, a_last] (predecoded
// by the dispatch check: head_mm_in_end), preload [w, w+k) do, or
// [acc, acc+m) meets the accumulator rows a running requant reads; requant
// waits for the PPU and for the drain (every issued matmul finished).
// Outputs asserted in cycle p-1 for an event at p (pushes, trace), as the
// top registers them. Pushes are counts: toward STORE an ldw's end, a
// matmul's completion, a PPU end and a sync can land in one cycle (0..4),
// toward LOAD all but the matmul (0..3). Counters are per-cycle events whose run totals equal
// the model's bulk sums (MACs at issue).
//
// Constructs: only what both Verilator 5.006 (lint-clean under -Wall) and
// yosys 0.23 accept (docs/DESIGN.md §6): no packages, no functions; constants and
// field positions from the generated header (pass -I rtl/include).

`include "systole_isa.vh"

module compute #(
    parameter int ROWS = 4,
    parameter int COLS = 4,
    parameter int SPAD_ROWS = 4096,
    parameter int ACC_ROWS = 256,
    parameter int INT4 = 0,  // 1: the i4 weight format (check.sv refuses it otherwise)
    parameter int SPARSE = 0  // 1: the i8s24 weight format, 2:4-sparse PEs (array.sparsity_2_4)
) (
    input  logic               clk,
    input  logic               rst,
    input  logic               head_valid,
    input  logic [      255:0] head_instr,
    input  logic [       31:0] head_pc,
    input  logic               tok_ok,
    input  logic [       16:0] head_mm_in_end,  // a matmul's input span end (check.sv)
    output logic               start,
    output logic [        1:0] push_prev_n,   // to LOAD: 0..3
    output logic [        2:0] push_next_n,   // to STORE: 0..4
    // scratchpad: async read ports, one write port
    output logic [       15:0] sp_row_x,
    input  logic [ COLS*8-1:0] sp_q_x,
    output logic [       15:0] sp_row_w,
    input  logic [ COLS*8-1:0] sp_q_w,
    output logic [       15:0] sp_row_a,
    input  logic [ COLS*8-1:0] sp_q_a,
    output logic [       15:0] sp_row_b,
    input  logic [ COLS*8-1:0] sp_q_b,
    // SPARSE: a 2:4 input's second row and an i8s24 tile's position row
    output logic [       15:0] sp_row_x2,
    input  logic [ COLS*8-1:0] sp_q_x2,
    output logic [       15:0] sp_row_m,
    input  logic [ COLS*8-1:0] sp_q_m,
    output logic               sp_we,
    output logic [       15:0] sp_wrow,
    output logic [ COLS*8-1:0] sp_wdata,
    // accumulator: async read ports, one write port
    output logic [       15:0] ac_row_mm,
    input  logic [COLS*32-1:0] ac_q_mm,
    output logic [       15:0] ac_row_pp,
    input  logic [COLS*32-1:0] ac_q_pp,
    output logic               ac_we,
    output logic [       15:0] ac_wrow,
    output logic [COLS*32-1:0] ac_wdata,
    // the vector unit's buffer ports (vec_unit.sv)
    output logic [       15:0] vu_ac_row_a,
    input  logic [COLS*32-1:0] vu_ac_q_a,
    output logic [       15:0] vu_ac_row_b,
    input  logic [COLS*32-1:0] vu_ac_q_b,
    output logic [       15:0] vu_sp_row,
    input  logic [ COLS*8-1:0] vu_sp_q,
    output logic               vu_ac_we,
    output logic [       15:0] vu_ac_wrow,
    output logic [COLS*32-1:0] vu_ac_wdata,
    output logic [   COLS-1:0] vu_ac_be,
    output logic               vu_sp_we,
    output logic [       15:0] vu_sp_wrow,
    output logic [ COLS*8-1:0] vu_sp_wdata,
    output logic [   COLS-1:0] vu_sp_be,
    // trace (each asserted in cycle finish-1)
    output logic               fin_arr_valid,
    output logic [       31:0] fin_arr_pc,
    output logic               fin_mm_valid,
    output logic [       31:0] fin_mm_pc,
    output logic               fin_ppu_valid,
    output logic [       31:0] fin_ppu_pc,
    output logic               fin_sync_valid,
    output logic [       31:0] fin_sync_pc,
    output logic               idle,
    output logic               c_busy,
    output logic               c_stall,
    output logic               c_array_busy,
    output logic               c_ppu_busy,
    output logic [       31:0] c_macs,
    output logic               c_weight_rows,
    output logic [        2:0] c_spad_rd,
    output logic               c_spad_wr,
    output logic [        1:0] c_acc_rd,
    output logic               c_acc_wr,
    output logic [       15:0] c_ppu_elems,
    // the vector unit's counters, added in its issue cycle as the model does
    output logic [       39:0] vc_busy,
    output logic [       31:0] vc_elems,
    output logic [       39:0] vc_lane,
    output logic [       31:0] vc_acc_rd,
    output logic [       31:0] vc_acc_wr,
    output logic [       31:0] vc_sp_rd,
    output logic [       31:0] vc_sp_wr
);
  // Tile shape widths (k <= ROWS, n <= COLS).
  localparam int KW = $clog2(ROWS + 1);
  localparam int NW = $clog2(COLS + 1);
  // m * k * n.
  localparam int MW = 16 + KW + NW;
  // Matmul descriptor FIFO: at most ROWS + COLS - 1 matmuls are in flight.
  localparam int FAW = $clog2(ROWS + COLS);
  localparam int FD = 1 << FAW;

  // =====================================================================
  // Decode of the head.
  // =====================================================================
  logic [7:0] op;
  logic is_ldw, is_mm, is_rq, is_vmax, is_vadd, is_vlut, is_sync;
  logic d_pp, d_pn;  // push_prev, push_next

  assign op      = head_instr[`SYS_OPCODE_LO+:`SYS_OPCODE_W];
  assign is_ldw  = op == 8'(`SYS_OP_LDW);
  assign is_mm   = op == 8'(`SYS_OP_MATMUL);
  assign is_rq   = op == 8'(`SYS_OP_REQUANT);
  assign is_vmax = op == 8'(`SYS_OP_VMAX);
  assign is_vadd = op == 8'(`SYS_OP_VADD);
  assign is_vlut = op == 8'(`SYS_OP_VLUT);
  assign is_sync = op == 8'(`SYS_OP_SYNC);
  // The vector unit: vdeq, vquant, vop, vred, vmask (opcodes 0x0b..0x0f).
  logic is_vec;
  assign is_vec  = op >= 8'(`SYS_OP_VDEQ) && op <= 8'(`SYS_OP_VMASK);
  assign d_pp    = head_instr[`SYS_DEP_PUSH_PREV];
  assign d_pn    = head_instr[`SYS_DEP_PUSH_NEXT];

  // ldw
  logic [15:0] l_addr, l_k, l_n;
  assign l_addr = head_instr[`SYS_LDW_ADDR_LO+:16];
  assign l_k    = head_instr[`SYS_LDW_K_LO+:16];
  assign l_n    = head_instr[`SYS_LDW_N_LO+:16];
  logic l_i4;
  assign l_i4   = (INT4 != 0) && head_instr[`SYS_LDW_WFMT_LO+:2] == 2'(`SYS_WFMT_I4);
  // 2:4-sparse tile and its first position row.
  logic l_s24;
  logic [15:0] l_meta;
  assign l_s24  = (SPARSE != 0) && head_instr[`SYS_LDW_WFMT_LO+:2] == 2'(`SYS_WFMT_I8S24);
  assign l_meta = head_instr[`SYS_LDW_META_LO+:16];
  // Transposed tile: one scratchpad row per tile column (i8 only: check.sv).
  logic l_tr;
  assign l_tr   = head_instr[`SYS_LDW_TRANS_LO];
  // matmul
  logic [15:0] m_a, m_m, m_acc, m_w, m_k, m_n;
  logic m_accum, m_swap, m_uns, m_pre;
  assign m_a     = head_instr[`SYS_MATMUL_A_LO+:16];
  assign m_m     = head_instr[`SYS_MATMUL_M_LO+:16];
  assign m_acc   = head_instr[`SYS_MATMUL_ACC_LO+:16];
  assign m_accum = head_instr[`SYS_MATMUL_ACCUMULATE_LO];
  assign m_swap  = head_instr[`SYS_MATMUL_SWAP_LO];
  assign m_uns   = head_instr[`SYS_MATMUL_IN_TYPE_LO] == 1'(`SYS_ELEM_U8);
  assign m_pre   = head_instr[`SYS_MATMUL_PRELOAD_LO];
  assign m_w     = head_instr[`SYS_MATMUL_W_LO+:16];
  assign m_k     = head_instr[`SYS_MATMUL_K_LO+:16];
  assign m_n     = head_instr[`SYS_MATMUL_N_LO+:16];
  logic m_i4;
  assign m_i4    = (INT4 != 0) && head_instr[`SYS_MATMUL_WFMT_LO+:2] == 2'(`SYS_WFMT_I4);
  logic m_s24;
  logic [15:0] m_meta, m_bs;
  assign m_s24   = (SPARSE != 0) && head_instr[`SYS_MATMUL_WFMT_LO+:2] == 2'(`SYS_WFMT_I8S24);
  assign m_meta  = head_instr[`SYS_MATMUL_META_LO+:16];
  logic m_tr;
  assign m_tr    = m_pre && head_instr[`SYS_MATMUL_TRANS_LO];
  // Rows from an input's first block to its second (0: none).
  assign m_bs    = (SPARSE != 0) ? head_instr[`SYS_MATMUL_A_BSTRIDE_LO+:16] : 16'd0;
  // Scratchpad rows of the ldw's / preload's tile (Ldw::weight_rows: n when
  // transposed, else isa weight_tile_spad_rows), one per busy cycle but an
  // i4 tile's (which takes k).
  logic [15:0] l_rows, m_wrows;
  assign l_rows  = l_tr ? l_n : l_i4 ? {1'b0, l_k[15:1]} + {15'd0, l_k[0]} : l_k;
  assign m_wrows = m_tr ? m_n : m_i4 ? {1'b0, m_k[15:1]} + {15'd0, m_k[0]} : m_k;
  // matmul input-row pattern: stride in a group (0: 1), rows per group (0:
  // m), step between groups' first rows.
  logic [15:0] m_s, m_g, m_gs;
  assign m_s     = (head_instr[`SYS_MATMUL_A_STRIDE_LO+:8] == 8'd0) ? 16'd1 :
                   {8'd0, head_instr[`SYS_MATMUL_A_STRIDE_LO+:8]};
  assign m_g     = (head_instr[`SYS_MATMUL_A_GROUP_LO+:16] == 16'd0) ? m_m : head_instr[`SYS_MATMUL_A_GROUP_LO+:16];
  assign m_gs    = head_instr[`SYS_MATMUL_A_GSTRIDE_LO+:16];
  // requant
  logic [15:0] r_acc, r_rows, r_dst, r_params;
  logic [8:0] r_zp, r_qmin, r_qmax;
  assign r_acc    = head_instr[`SYS_REQUANT_ACC_LO+:16];
  assign r_rows   = head_instr[`SYS_REQUANT_ROWS_LO+:16];
  assign r_dst    = head_instr[`SYS_REQUANT_DST_LO+:16];
  assign r_params = head_instr[`SYS_REQUANT_PARAMS_LO+:16];
  assign r_zp     = head_instr[`SYS_REQUANT_ZP_LO+:9];
  assign r_qmin   = head_instr[`SYS_REQUANT_QMIN_LO+:9];
  assign r_qmax   = head_instr[`SYS_REQUANT_QMAX_LO+:9];
  // vmax
  logic [15:0] v_a, v_sa, v_b, v_sb, v_d, v_sd, v_n;
  logic v_uns;
  assign v_a   = head_instr[`SYS_VMAX_A_LO+:16];
  assign v_sa  = head_instr[`SYS_VMAX_A_STRIDE_LO+:16];
  assign v_b   = head_instr[`SYS_VMAX_B_LO+:16];
  assign v_sb  = head_instr[`SYS_VMAX_B_STRIDE_LO+:16];
  assign v_d   = head_instr[`SYS_VMAX_DST_LO+:16];
  assign v_sd  = head_instr[`SYS_VMAX_DST_STRIDE_LO+:16];
  assign v_n   = head_instr[`SYS_VMAX_N_LO+:16];
  assign v_uns = head_instr[`SYS_VMAX_ELEM_LO] == 1'(`SYS_ELEM_U8);
  // vadd
  logic [15:0] e_a, e_b, e_dst, e_n, e_params;
  logic e_uns;
  logic [8:0] e_qmin, e_qmax;
  assign e_a      = head_instr[`SYS_VADD_A_LO+:16];
  assign e_b      = head_instr[`SYS_VADD_B_LO+:16];
  assign e_dst    = head_instr[`SYS_VADD_DST_LO+:16];
  assign e_n      = head_instr[`SYS_VADD_N_LO+:16];
  assign e_params = head_instr[`SYS_VADD_PARAMS_LO+:16];
  assign e_uns    = head_instr[`SYS_VADD_IN_TYPE_LO] == 1'(`SYS_ELEM_U8);
  assign e_qmin   = head_instr[`SYS_VADD_QMIN_LO+:9];
  assign e_qmax   = head_instr[`SYS_VADD_QMAX_LO+:9];
  // vlut
  logic [15:0] u_src, u_dst, u_n, u_table;
  assign u_src   = head_instr[`SYS_VLUT_SRC_LO+:16];
  assign u_dst   = head_instr[`SYS_VLUT_DST_LO+:16];
  assign u_n     = head_instr[`SYS_VLUT_N_LO+:16];
  assign u_table = head_instr[`SYS_VLUT_TABLE_LO+:16];
  // Its table's rows, isa::timing::lut_rows(COLS).
  localparam int LUT_T = (`SYS_LUT_ENTRIES + COLS - 1) / COLS;
  localparam int LTW = $clog2(LUT_T + 1);

  // =====================================================================
  // State.
  // =====================================================================
  // Array sequencer: busy cycles left after the current one, input rows
  // and weight rows still to go.
  logic [15:0] ar_rem;
  logic [15:0] x_left, x_row;
  // The input-row pattern: the next row's group's first row, rows of its
  // group after it, and the pattern's steps.
  logic [15:0] x_gbase, x_gleft, x_g, x_s, x_gs;
  logic        x_uns;
  logic [15:0] w_left, w_src, w_idx, w_n;
  logic        w_i4;
  // A transposed load: its tile's k (the bytes of a row it writes).
  logic        w_tr;
  logic [15:0] w_k;
  // i8s24 load: the next position row, and the one read at s % 4 == 0.
  logic        w_s24;
  logic [15:0] w_meta;
  logic [COLS*8-1:0] w_pos_row;
  // The stream's 2:4 inputs: the active tile is i8s24; second-block stride.
  logic        x_s24;
  logic [15:0] x_bs;
  // Active and shadow tiles are i8s24.
  logic        act_s24, sh_s24;
  logic        ar_pp, ar_pn, ar_ldw;
  logic [31:0] ar_pc;
  // Shapes of the active and shadow tiles (for the MAC count).
  logic [KW-1:0] act_k, sh_k;
  logic [NW-1:0] act_n, sh_n;
  // Matmuls in flight: descriptor FIFO, rows of the head already written,
  // and the completion one cycle after the last row's write.
  logic [15:0] f_acc[FD];
  logic [15:0] f_m[FD];
  logic [31:0] f_pc[FD];
  logic f_accum[FD];
  logic f_pn[FD];
  logic [FAW:0] f_wp, f_rp;
  logic [15:0] o_cnt;
  logic fin_p, fin_p_pn;
  logic [31:0] fin_p_pc;
  // PPU: busy cycles left after the current one; parameter-row reads and
  // data-row reads to go; row pointers and strides; the write stage.
  localparam logic [1:0] OP_RQ = 2'd0, OP_VMAX = 2'd1, OP_VADD = 2'd2, OP_VLUT = 2'd3;
  logic [16:0] pp_rem;
  logic [1:0] pp_op;
  logic [1:0] pp_pleft, pp_pidx;
  logic [15:0] pp_prow;
  logic [15:0] pp_dleft, pp_ra, pp_rb, pp_sa, pp_sb;
  logic pp_wv;
  logic [15:0] pp_wrow, pp_sd;
  logic pp_uns;
  logic [8:0] pp_zp, pp_qmin, pp_qmax;
  logic pp_pp, pp_pn;
  logic [31:0] pp_pc;
  // Interlock ranges of the running PPU instruction, [lo, hi).
  logic [15:0] pp_dst_lo, pp_acc_lo;
  logic [16:0] pp_dst_hi, pp_acc_hi;
  logic pp_acc_v;
  // Parameter rows (requant: bias, scale; vadd: ra, rb, k) and the
  // vmax result stage.
  logic [COLS*32-1:0] p_k0, p_k1, p_scale;
  logic [COLS*8-1:0] vm_res;
  // vlut: table-row reads to go and the next one's row and index; the
  // table, entry e in bits 8e+7..8e.
  logic [LTW-1:0] pp_tleft, pp_tidx;
  logic [15:0] pp_trow;
  logic [`SYS_LUT_ENTRIES*8-1:0] lut_tab;

  // =====================================================================
  // Issue.
  // =====================================================================
  logic ar_free, pp_run, drained;
  assign ar_free = ar_rem == 16'd0;
  assign pp_run  = pp_rem != 17'd0;
  assign drained = (f_wp == f_rp) && !fin_p;

  // overlaps(lo, n, [rlo, rhi)) while the PPU runs (17-bit: rows are legal).
  logic [16:0] l_end, mx_end, mw_end, ma_end;
  logic ov_l, ov_ma, ov_mw, ov_macc;
  assign l_end   = {1'b0, l_addr} + {1'b0, l_rows};
  assign mx_end  = head_mm_in_end;
  assign mw_end  = {1'b0, m_w} + {1'b0, m_wrows};
  assign ma_end  = {1'b0, m_acc} + {1'b0, m_m};
  assign ov_l    = pp_run && ({1'b0, l_addr} < pp_dst_hi) && ({1'b0, pp_dst_lo} < l_end);
  assign ov_ma   = pp_run && ({1'b0, m_a} < pp_dst_hi) && ({1'b0, pp_dst_lo} < mx_end);
  assign ov_mw   = pp_run && m_pre && ({1'b0, m_w} < pp_dst_hi) && ({1'b0, pp_dst_lo} < mw_end);
  assign ov_macc = pp_run && pp_acc_v && ({1'b0, m_acc} < pp_acc_hi) && ({1'b0, pp_acc_lo} < ma_end);
  // An i8s24 tile's position rows [meta, meta + ceil(k / 4)) too.
  logic [16:0] lm_end, mm_end;
  logic ov_lm, ov_mm;
  assign lm_end  = {1'b0, l_meta} + {3'd0, l_k[15:2]} + {16'd0, |l_k[1:0]};
  assign mm_end  = {1'b0, m_meta} + {3'd0, m_k[15:2]} + {16'd0, |m_k[1:0]};
  assign ov_lm   = pp_run && l_s24 && ({1'b0, l_meta} < pp_dst_hi) && ({1'b0, pp_dst_lo} < lm_end);
  assign ov_mm   = pp_run && m_pre && m_s24 && ({1'b0, m_meta} < pp_dst_hi) && ({1'b0, pp_dst_lo} < mm_end);
  // The same against a running vector instruction: vquant's scratchpad
  // destination, the hull of the accumulator rows it touches.
  logic vu_run, vu_last, vu_pp, vu_pn;
  logic [31:0] vu_pc;
  logic [15:0] vu_acc_lo, vu_sp_lo;
  logic [16:0] vu_acc_hi, vu_sp_hi;
  logic vov_l, vov_ma, vov_mw, vov_macc;
  assign vov_l    = vu_run && ({1'b0, l_addr} < vu_sp_hi) && ({1'b0, vu_sp_lo} < l_end);
  assign vov_ma   = vu_run && ({1'b0, m_a} < vu_sp_hi) && ({1'b0, vu_sp_lo} < mx_end);
  assign vov_mw   = vu_run && m_pre && ({1'b0, m_w} < vu_sp_hi) && ({1'b0, vu_sp_lo} < mw_end);
  assign vov_macc = vu_run && ({1'b0, m_acc} < vu_acc_hi) && ({1'b0, vu_acc_lo} < ma_end);
  // And a 2:4 tile's position rows against vquant's destination.
  logic vov_lm, vov_mm;
  assign vov_lm   = vu_run && l_s24 && ({1'b0, l_meta} < vu_sp_hi) && ({1'b0, vu_sp_lo} < lm_end);
  assign vov_mm   = vu_run && m_pre && m_s24 && ({1'b0, m_meta} < vu_sp_hi) && ({1'b0, vu_sp_lo} < mm_end);

  logic can;
  always_comb begin
    can = 1'b0;
    if (is_ldw) can = ar_free && !ov_l && !ov_lm && !vov_l && !vov_lm;
    else if (is_mm) can = ar_free && !ov_ma && !ov_mw && !ov_macc && !ov_mm && !vov_ma && !vov_mw && !vov_macc && !vov_mm;
    else if (is_rq || is_vec) can = !pp_run && !vu_run && drained;
    else if (is_vmax || is_vadd || is_vlut) can = !pp_run && !vu_run;
    else if (is_sync) can = 1'b1;
  end
  assign start = head_valid && tok_ok && can;

  logic iss_ldw, iss_mm, iss_arr, iss_pp, iss_sync;
  assign iss_ldw  = start && is_ldw;
  assign iss_mm   = start && is_mm;
  assign iss_arr  = iss_ldw || iss_mm;
  assign iss_pp   = start && (is_rq || is_vmax || is_vadd || is_vlut);
  assign iss_sync = start && is_sync;
  logic iss_vec;
  assign iss_vec  = start && is_vec;

  vec_unit #(
      .COLS(COLS)
  ) u_vec (
      .clk(clk),
      .rst(rst),
      .iss(iss_vec),
      .instr(head_instr),
      .pc(head_pc),
      .run(vu_run),
      .last(vu_last),
      .last_pp(vu_pp),
      .last_pn(vu_pn),
      .last_pc(vu_pc),
      .acc_lo(vu_acc_lo),
      .acc_hi(vu_acc_hi),
      .sp_lo(vu_sp_lo),
      .sp_hi(vu_sp_hi),
      .ac_row_a(vu_ac_row_a),
      .ac_q_a(vu_ac_q_a),
      .ac_row_b(vu_ac_row_b),
      .ac_q_b(vu_ac_q_b),
      .sp_row(vu_sp_row),
      .sp_q(vu_sp_q),
      .ac_we(vu_ac_we),
      .ac_wrow(vu_ac_wrow),
      .ac_wdata(vu_ac_wdata),
      .ac_be(vu_ac_be),
      .sp_we(vu_sp_we),
      .sp_wrow(vu_sp_wrow),
      .sp_wdata(vu_sp_wdata),
      .sp_be(vu_sp_be),
      .c_busy(vc_busy),
      .c_elems(vc_elems),
      .c_lane(vc_lane),
      .c_acc_rd(vc_acc_rd),
      .c_acc_wr(vc_acc_wr),
      .c_sp_rd(vc_sp_rd),
      .c_sp_wr(vc_sp_wr)
  );

  // =====================================================================
  // Array sub-unit.
  // =====================================================================
  logic [15:0] iss_wk;  // weight rows of the issuing ldw / matmul
  logic [15:0] iss_span;
  // Weight-load cycles: k, or n for a transposed tile (one column each).
  assign iss_wk   = is_ldw ? (l_tr ? l_n : l_k) : (m_pre ? (m_tr ? m_n : m_k) : 16'd0);
  assign iss_span = is_ldw ? iss_wk : ((iss_wk > m_m) ? iss_wk : m_m);

  // This cycle's array activity.
  logic cx_v, cx_uns, c_swap, cw_v, cw_clr, cw_i4, cw_rd, arr_busy, arr_last;
  logic [15:0] cx_row, cw_src, cw_idx, cw_n;
  logic last_pp, last_pn, last_ldw;
  logic [31:0] last_pc;
  assign cx_v     = iss_mm || x_left != 16'd0;
  assign cx_row   = iss_mm ? m_a : x_row;
  assign cx_uns   = iss_mm ? m_uns : x_uns;
  assign c_swap   = iss_mm && m_swap;
  assign cw_clr   = iss_ldw || (iss_mm && m_pre);
  assign cw_v     = cw_clr || w_left != 16'd0;
  assign cw_src   = iss_arr ? (is_ldw ? l_addr : m_w) : w_src;
  assign cw_idx   = iss_arr ? 16'd0 : w_idx;
  assign cw_n     = iss_arr ? (is_ldw ? l_n : m_n) : w_n;
  assign cw_i4    = iss_arr ? (is_ldw ? l_i4 : m_i4) : w_i4;
  logic cw_tr;
  logic [15:0] cw_k;
  assign cw_tr    = iss_arr ? (is_ldw ? l_tr : m_tr) : w_tr;
  assign cw_k     = iss_arr ? (is_ldw ? l_k : m_k) : w_k;
  // An i4 tile's odd rows come from the row its even row read.
  assign cw_rd    = cw_v && !(cw_i4 && cw_idx[0]);
  // i8s24: a position row every four weight rows; a 2:4 input's second row.
  logic cw_s24, cm_rd, cx2_v, cx_s24;
  logic [15:0] cw_meta, cx_bs;
  assign cw_s24   = iss_arr ? (is_ldw ? l_s24 : m_s24) : w_s24;
  assign cw_meta  = iss_arr ? (is_ldw ? l_meta : m_meta) : w_meta;
  assign cm_rd    = cw_v && cw_s24 && cw_idx[1:0] == 2'd0;
  assign cx_bs    = iss_mm ? m_bs : x_bs;
  assign cx2_v    = cx_v && cx_bs != 16'd0;
  assign cx_s24   = iss_mm ? (m_swap ? sh_s24 : act_s24) : x_s24;
  assign sp_row_x2 = cx2_v ? cx_row + cx_bs : 16'd0;
  assign sp_row_m  = cm_rd ? cw_meta : 16'd0;
  assign arr_busy = iss_arr || !ar_free;
  assign arr_last = iss_arr ? (iss_span == 16'd1) : (ar_rem == 16'd1);
  assign last_pp  = iss_arr ? d_pp : ar_pp;
  assign last_pn  = iss_arr ? (is_ldw && d_pn) : ar_pn;
  assign last_ldw = iss_arr ? is_ldw : ar_ldw;
  assign last_pc  = iss_arr ? head_pc : ar_pc;

  assign sp_row_x = cx_v ? cx_row : 16'd0;
  assign sp_row_w = cw_v ? cw_src : 16'd0;

  // Input row: x[r] = byte r of the scratchpad row (none past COLS);
  // weight row: columns >= n are zero; an i4 row is the nibble this row
  // index selects, sign-extended.
  logic [ROWS*8-1:0] x_data;
  logic [COLS*8-1:0] w_data;
  for (genvar r = 0; r < ROWS; r++) begin : g_x
    if (r < COLS) begin : g_in
      assign x_data[r*8+:8] = sp_q_x[r*8+:8];
    end else begin : g_zero
      assign x_data[r*8+:8] = 8'd0;
    end
  end
  for (genvar c = 0; c < COLS; c++) begin : g_w
    logic [3:0] nib;
    assign nib = cw_idx[0] ? sp_q_w[c*8+4+:4] : sp_q_w[c*8+:4];
    assign w_data[c*8+:8] = !(16'(c) < cw_n) ? 8'd0 : cw_i4 ? {{4{nib[3]}}, nib} : sp_q_w[c*8+:8];
  end
  // Transposed: the row's byte r is weight (r, s) for r < k (<= COLS);
  // rows past k are zero.
  logic [ROWS*8-1:0] t_data;
  for (genvar r = 0; r < ROWS; r++) begin : g_t
    if (r < COLS) begin : g_in
      assign t_data[r*8+:8] = (16'(r) < cw_k) ? sp_q_w[r*8+:8] : 8'd0;
    end else begin : g_zero
      assign t_data[r*8+:8] = 8'd0;
    end
  end
  // 2:4 (SPARSE): each weight's position (bits 2 (s % 4).. of its position
  // byte; 0 for dense tiles), and the 2 ROWS-wide input: x[j] is column j
  // of row(s) for j < COLS, column j - COLS of row(s) + a_bstride for
  // j < 2 COLS (0 when a_bstride = 0), 0 past that.
  logic [COLS*2-1:0] w_pos;
  logic [ROWS*16-1:0] x_wide;
  if (SPARSE != 0) begin : g_sparse
    logic [COLS*8-1:0] pos_row;
    assign pos_row = cm_rd ? sp_q_m : w_pos_row;
    for (genvar c = 0; c < COLS; c++) begin : g_pos
      assign w_pos[c*2+:2] = (cw_s24 && 16'(c) < cw_n) ? pos_row[c*8+{cw_idx[1:0], 1'b0}+:2] : 2'd0;
    end
    for (genvar j = 0; j < 2 * ROWS; j++) begin : g_xw
      if (j < COLS) begin : g_lo
        assign x_wide[j*8+:8] = sp_q_x[j*8+:8];
      end else if (j < 2 * COLS) begin : g_hi
        assign x_wide[j*8+:8] = cx2_v ? sp_q_x2[(j-COLS)*8+:8] : 8'd0;
      end else begin : g_zero
        assign x_wide[j*8+:8] = 8'd0;
      end
    end
    always_ff @(posedge clk) if (cm_rd) w_pos_row <= sp_q_m;
  end else begin : g_dense
    assign w_pos  = '0;
    assign x_wide = '0;
    always_ff @(posedge clk) w_pos_row <= '0;
  end

  logic a_ov;
  logic [COLS*32-1:0] a_od;
  array #(
      .ROWS(ROWS),
      .COLS(COLS),
      .SPARSE(SPARSE)
  ) u_array (
      .clk(clk),
      .rst(rst),
      .w_clear(cw_clr),
      .w_valid(cw_v && !cw_tr),
      .w_row(cw_idx),
      .w_data(w_data),
      .w_pos(w_pos),
      .t_valid(cw_v && cw_tr),
      .t_col(cw_idx),
      .t_data(t_data),
      .in_valid(cx_v),
      .in_unsigned(cx_uns),
      .swap(c_swap),
      .in_data(x_data),
      .in_sparse(cx_s24),
      .in_wide(x_wide),
      .out_valid(a_ov),
      .out_data(a_od)
  );

  always_ff @(posedge clk) begin
    if (rst) begin
      ar_rem <= 16'd0;
      x_left <= 16'd0;
      w_left <= 16'd0;
      act_k  <= '0;
      act_n  <= '0;
      sh_k   <= '0;
      sh_n   <= '0;
      act_s24 <= 1'b0;
      sh_s24 <= 1'b0;
    end else if (iss_arr) begin
      ar_rem <= iss_span - 16'd1;
      x_left <= is_mm ? m_m - 16'd1 : 16'd0;
      w_left <= (iss_wk != 16'd0) ? iss_wk - 16'd1 : 16'd0;
      if (is_ldw) begin
        sh_k <= l_k[KW-1:0];
        sh_n <= l_n[NW-1:0];
        sh_s24 <= l_s24;
      end else begin
        if (m_swap) begin
          act_k <= sh_k;
          act_n <= sh_n;
          sh_k  <= act_k;
          sh_n  <= act_n;
          act_s24 <= sh_s24;
          sh_s24 <= act_s24;
        end
        if (m_pre) begin
          sh_k <= m_k[KW-1:0];
          sh_n <= m_n[NW-1:0];
          sh_s24 <= m_s24;
        end
      end
    end else begin
      if (!ar_free) ar_rem <= ar_rem - 16'd1;
      if (x_left != 16'd0) x_left <= x_left - 16'd1;
      if (w_left != 16'd0) w_left <= w_left - 16'd1;
    end
  end

  // Data registers of the sequencer (meaningful only while counting).
  always_ff @(posedge clk) begin
    if (iss_arr) begin
      // Row 1 of the pattern: the next group's first row if groups are of
      // one row, else a + a_stride.
      x_row   <= (m_g == 16'd1) ? m_a + m_gs : m_a + m_s;
      x_gbase <= (m_g == 16'd1) ? m_a + m_gs : m_a;
      x_gleft <= (m_g == 16'd1) ? 16'd0 : m_g - 16'd2;
      x_g     <= m_g;
      x_s     <= m_s;
      x_gs    <= m_gs;
      x_uns  <= m_uns;
      w_src  <= cw_i4 ? cw_src : cw_src + 16'd1;
      w_idx  <= 16'd1;
      w_i4   <= cw_i4;
      w_n    <= cw_n;
      w_tr   <= cw_tr;
      w_k    <= cw_k;
      w_s24  <= cw_s24;
      w_meta <= cw_meta + 16'(cm_rd);
      x_s24  <= cx_s24;
      x_bs   <= cx_bs;
      ar_pp  <= d_pp;
      ar_pn  <= is_ldw && d_pn;
      ar_ldw <= is_ldw;
      ar_pc  <= head_pc;
    end else begin
      if (x_gleft == 16'd0) begin
        x_row   <= x_gbase + x_gs;
        x_gbase <= x_gbase + x_gs;
        x_gleft <= x_g - 16'd1;
      end else begin
        x_row   <= x_row + x_s;
        x_gleft <= x_gleft - 16'd1;
      end
      w_src <= (w_i4 && !w_idx[0]) ? w_src : w_src + 16'd1;
      w_idx <= w_idx + 16'd1;
      w_meta <= w_meta + 16'(cm_rd);
    end
  end

  // MACs of the issuing matmul: m * k * n of the active tile after the swap.
  logic [KW-1:0] mac_k;
  logic [NW-1:0] mac_n;
  logic [MW-1:0] mac_full;
  assign mac_k    = m_swap ? sh_k : act_k;
  assign mac_n    = m_swap ? sh_n : act_n;
  assign mac_full = MW'(m_m) * MW'(mac_k) * MW'(mac_n);
  assign c_macs   = iss_mm ? 32'(mac_full) : 32'd0;

  // ---- results leaving the array -------------------------------------
  logic [FAW-1:0] f_wi, f_ri;
  logic [15:0] o_row;
  logic o_accum, o_last;
  assign f_wi    = f_wp[FAW-1:0];
  assign f_ri    = f_rp[FAW-1:0];
  assign o_row   = f_acc[f_ri] + o_cnt;
  assign o_accum = f_accum[f_ri];
  assign o_last  = o_cnt == f_m[f_ri] - 16'd1;

  assign ac_row_mm = o_row;
  assign ac_we     = a_ov;
  assign ac_wrow   = o_row;
  for (genvar c = 0; c < COLS; c++) begin : g_acc
    assign ac_wdata[c*32+:32] = o_accum ? a_od[c*32+:32] + ac_q_mm[c*32+:32] : a_od[c*32+:32];
  end

  always_ff @(posedge clk) begin
    if (iss_mm) begin
      f_acc[f_wi]   <= m_acc;
      f_m[f_wi]     <= m_m;
      f_pc[f_wi]    <= head_pc;
      f_accum[f_wi] <= m_accum;
      f_pn[f_wi]    <= d_pn;
    end
    fin_p_pc <= f_pc[f_ri];
    fin_p_pn <= f_pn[f_ri];
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      f_wp  <= '0;
      f_rp  <= '0;
      o_cnt <= 16'd0;
      fin_p <= 1'b0;
    end else begin
      if (iss_mm) f_wp <= f_wp + 1'b1;
      fin_p <= a_ov && o_last;
      if (a_ov) begin
        if (o_last) begin
          f_rp  <= f_rp + 1'b1;
          o_cnt <= 16'd0;
        end else begin
          o_cnt <= o_cnt + 16'd1;
        end
      end
    end
  end

  // =====================================================================
  // Post-processing unit.
  // =====================================================================
  logic [1:0] cur_op;
  logic pp_busy, pp_last;
  logic cp_v, cd_v, cd_sp, cd_uns;
  logic [15:0] cp_row, cd_ra, cd_rb;
  logic [1:0] cp_idx;
  logic ct_v, cd_b;
  logic [15:0] ct_row;
  logic [LTW-1:0] ct_idx;
  assign cur_op  = iss_pp ? (is_rq ? OP_RQ : (is_vmax ? OP_VMAX : (is_vlut ? OP_VLUT : OP_VADD))) : pp_op;
  assign pp_busy = iss_pp || pp_run;
  assign pp_last = pp_rem == 17'd1;  // never the issue cycle: busy >= 2
  // Parameter-row read (acc), data-row read (requant: acc; vmax, vadd: spad).
  assign cp_v    = iss_pp ? (is_rq || is_vadd) : pp_pleft != 2'd0;
  assign cp_row  = iss_pp ? (is_rq ? r_params : e_params) : pp_prow;
  assign cp_idx  = iss_pp ? 2'd0 : pp_pidx;
  assign cd_v    = iss_pp ? is_vmax : (pp_pleft == 2'd0 && pp_tleft == '0 && pp_dleft != 16'd0);
  assign cd_ra   = iss_pp ? v_a : pp_ra;
  assign cd_rb   = iss_pp ? v_b : pp_rb;
  assign cd_uns  = iss_pp ? v_uns : pp_uns;
  assign cd_sp   = cd_v && cur_op != OP_RQ;
  assign cd_b    = cd_sp && cur_op != OP_VLUT;  // vlut reads one row
  // vlut table-row read (port a, before any of its data rows).
  assign ct_v    = iss_pp ? is_vlut : pp_tleft != '0;
  assign ct_row  = iss_pp ? u_table : pp_trow;
  assign ct_idx  = iss_pp ? '0 : pp_tidx;

  assign ac_row_pp = cp_v ? cp_row : ((cd_v && cur_op == OP_RQ) ? cd_ra : 16'd0);
  assign sp_row_a  = cd_sp ? cd_ra : (ct_v ? ct_row : 16'd0);
  assign sp_row_b  = cd_b ? cd_rb : 16'd0;

  // Operands, with the row this cycle's write replaces forwarded.
  logic [COLS*8-1:0] opa, opb;
  assign opa = (pp_wv && pp_wrow == sp_row_a) ? sp_wdata : sp_q_a;
  assign opb = (pp_wv && pp_wrow == sp_row_b) ? sp_wdata : sp_q_b;

  logic [COLS*8-1:0] vm_now;  // vmax of this cycle's rows
  logic [COLS*8-1:0] lut_now;  // this cycle's row through the table
  logic [COLS*8-1:0] rq_q;  // requantizer results (registered)
  logic [COLS*9-1:0] rq_q9;
  logic [COLS*8-1:0] qa_q;  // quantized-add results (registered)
  logic [COLS*9-1:0] qa_q9;
  // Each result is registered only in a cycle that reads its data row (its
  // write is the next cycle's, pp_wv): idle, the units' logic is not
  // evaluated in simulation (their `ce` gates it) and their outputs hold.
  logic qa_ce, rq_ce;
  assign qa_ce = cd_v && cur_op == OP_VADD;
  assign rq_ce = cd_v && cur_op == OP_RQ;
  for (genvar c = 0; c < COLS; c++) begin : g_ppu
    logic [7:0] ab, bb;
    logic signed [10:0] ea, eb;
    logic [31:0] v_rq;
    assign ab = opa[c*8+:8];
    assign bb = opb[c*8+:8];
    assign ea = cd_uns ? {3'b000, ab} : {{3{ab[7]}}, ab};
    assign eb = cd_uns ? {3'b000, bb} : {{3{bb[7]}}, bb};
    // vmax: the larger as elem (ties keep a).
    assign vm_now[c*8+:8] = (ea >= eb) ? ab : bb;
    // vlut: the byte as an unsigned index.
    assign lut_now[c*8+:8] = lut_tab[{ab, 3'b000}+:8];
    // vadd: ONNX Runtime's QLinearAdd (ra, rb, k in the parameter rows).
    qadd #(
        .LATENCY(1)
    ) u_qa (
        .clk(clk),
        .ce(qa_ce),
        .a(ab),
        .b(bb),
        .unsigned_in(cd_uns),
        .ra(p_k0[c*32+:32]),
        .rb(p_k1[c*32+:32]),
        .k(p_scale[c*32+:32]),
        .qmin(pp_qmin),
        .qmax(pp_qmax),
        .q(qa_q9[c*9+:9])
    );
    assign qa_q[c*8+:8] = qa_q9[c*9+:8];
    // requant: acc row + bias, wrapping int32.
    assign v_rq = ac_q_pp[c*32+:32] + p_k0[c*32+:32];
    requant #(
        .QW(9),
        .LATENCY(1)
    ) u_rq (
        .clk(clk),
        .ce(rq_ce),
        .acc(v_rq),
        .scale(p_scale[c*32+:32]),
        .zp(pp_zp),
        .qmin(pp_qmin),
        .qmax(pp_qmax),
        .q(rq_q9[c*9+:9])
    );
    assign rq_q[c*8+:8] = rq_q9[c*9+:8];
  end

  assign sp_we    = pp_wv;
  assign sp_wrow  = pp_wrow;
  assign sp_wdata = (pp_op == OP_VMAX || pp_op == OP_VLUT) ? vm_res : ((pp_op == OP_VADD) ? qa_q : rq_q);

  // Parameter rows and the vmax stage.
  always_ff @(posedge clk) begin
    if (cp_v) begin
      if (cp_idx == 2'd0) p_k0 <= ac_q_pp;
      if (cp_idx == 2'd1) begin
        if (cur_op == OP_RQ) p_scale <= ac_q_pp;
        else p_k1 <= ac_q_pp;
      end
      if (cp_idx == 2'd2) p_scale <= ac_q_pp;
    end
    vm_res <= (cur_op == OP_VLUT) ? lut_now : vm_now;
  end

  // The vlut table: row j holds entries j*COLS .. j*COLS+COLS-1.
  always_ff @(posedge clk) begin
    if (ct_v) begin
      for (int e = 0; e < `SYS_LUT_ENTRIES; e++) begin
        if (ct_idx == LTW'(e / COLS)) lut_tab[e*8+:8] <= sp_q_a[(e%COLS)*8+:8];
      end
    end
  end

  // vmax destination span: [dst, dst + (n-1)*sd + 1), at most SPAD_ROWS
  // for a legal instruction, so 17 bits hold it exactly.
  logic [16:0] vm_hi;
  assign vm_hi = {1'b0, v_d} + 17'(v_n - 16'd1) * 17'(v_sd) + 17'd1;

  always_ff @(posedge clk) begin
    if (rst) begin
      pp_rem   <= 17'd0;
      pp_pleft <= 2'd0;
      pp_dleft <= 16'd0;
      pp_tleft <= '0;
      pp_wv    <= 1'b0;
    end else if (iss_pp) begin
      pp_rem   <= is_rq ? {1'b0, r_rows} + 17'(`SYS_REQUANT_OVERHEAD - 1) :
                  is_vmax ? {1'b0, v_n} + 17'(`SYS_VMAX_OVERHEAD - 1) :
                  is_vlut ? {1'b0, u_n} + 17'(LUT_T + `SYS_VLUT_OVERHEAD - 1) :
                  {1'b0, e_n} + 17'(`SYS_VADD_OVERHEAD - 1);
      pp_pleft <= is_rq ? 2'd1 : (is_vadd ? 2'd2 : 2'd0);
      pp_dleft <= is_rq ? r_rows : (is_vmax ? v_n - 16'd1 : (is_vlut ? u_n : e_n));
      pp_tleft <= is_vlut ? LTW'(LUT_T - 1) : '0;
      pp_wv    <= cd_v;
    end else begin
      if (pp_run) pp_rem <= pp_rem - 17'd1;
      if (cp_v) pp_pleft <= pp_pleft - 2'd1;
      else if (ct_v) pp_tleft <= pp_tleft - 1'b1;
      else if (cd_v) pp_dleft <= pp_dleft - 16'd1;
      pp_wv <= cd_v;
    end
  end

  always_ff @(posedge clk) begin
    if (iss_pp) begin
      pp_op     <= cur_op;
      pp_prow   <= cp_row + 16'd1;
      pp_pidx   <= 2'd1;
      pp_trow   <= u_table + 16'd1;
      pp_tidx   <= LTW'(1);
      pp_ra     <= is_rq ? r_acc : (is_vmax ? v_a + v_sa : (is_vlut ? u_src : e_a));
      pp_rb     <= is_vmax ? v_b + v_sb : e_b;
      pp_sa     <= is_vmax ? v_sa : 16'd1;
      pp_sb     <= is_vmax ? v_sb : 16'd1;
      pp_wrow   <= is_rq ? r_dst : (is_vmax ? v_d : (is_vlut ? u_dst : e_dst));
      pp_sd     <= is_vmax ? v_sd : 16'd1;
      pp_uns    <= is_vmax ? v_uns : e_uns;
      pp_zp     <= r_zp;
      pp_qmin   <= is_rq ? r_qmin : e_qmin;
      pp_qmax   <= is_rq ? r_qmax : e_qmax;
      pp_pp     <= d_pp;
      pp_pn     <= d_pn;
      pp_pc     <= head_pc;
      pp_dst_lo <= is_rq ? r_dst : (is_vmax ? v_d : (is_vlut ? u_dst : e_dst));
      pp_dst_hi <= is_rq ? {1'b0, r_dst} + {1'b0, r_rows} :
                   is_vmax ? vm_hi : is_vlut ? {1'b0, u_dst} + {1'b0, u_n} : {1'b0, e_dst} + {1'b0, e_n};
      pp_acc_lo <= r_acc;
      pp_acc_hi <= {1'b0, r_acc} + {1'b0, r_rows};
      pp_acc_v  <= is_rq;
    end else begin
      if (cp_v) begin
        pp_prow <= pp_prow + 16'd1;
        pp_pidx <= pp_pidx + 2'd1;
      end else if (ct_v) begin
        pp_trow <= pp_trow + 16'd1;
        pp_tidx <= pp_tidx + 1'b1;
      end else if (cd_v) begin
        pp_ra <= pp_ra + pp_sa;
        pp_rb <= pp_rb + pp_sb;
      end
      if (pp_wv) pp_wrow <= pp_wrow + pp_sd;
    end
  end

  // =====================================================================
  // Tokens, trace, status, counters.
  // =====================================================================
  logic arr_push_p, arr_push_n, pp_push_p, pp_push_n, mm_push_n, sy_push_p, sy_push_n;
  assign arr_push_p  = arr_last && last_pp;
  assign arr_push_n  = arr_last && last_pn;
  // The PPU and the vector unit share the post-processor's slot: they never
  // end in one cycle.
  assign pp_push_p   = (pp_last && pp_pp) || (vu_last && vu_pp);
  assign pp_push_n   = (pp_last && pp_pn) || (vu_last && vu_pn);
  assign mm_push_n   = fin_p && fin_p_pn;
  assign sy_push_p   = iss_sync && d_pp;
  assign sy_push_n   = iss_sync && d_pn;
  assign push_prev_n = 2'(arr_push_p) + 2'(pp_push_p) + 2'(sy_push_p);
  assign push_next_n = 3'(arr_push_n) + 3'(mm_push_n) + 3'(pp_push_n) + 3'(sy_push_n);

  assign fin_arr_valid  = arr_last && last_ldw;
  assign fin_arr_pc     = last_pc;
  assign fin_mm_valid   = fin_p;
  assign fin_mm_pc      = fin_p_pc;
  assign fin_ppu_valid  = pp_last || vu_last;
  assign fin_ppu_pc     = vu_last ? vu_pc : pp_pc;
  assign fin_sync_valid = iss_sync;
  assign fin_sync_pc    = head_pc;

  assign idle      = ar_free && !pp_run && drained && !vu_run;

  assign c_busy        = arr_busy || pp_busy || iss_sync || iss_vec || vu_run;
  assign c_stall       = head_valid && !start && ar_free && !pp_run && !vu_run;
  assign c_array_busy  = arr_busy;
  assign c_ppu_busy    = pp_busy;
  assign c_weight_rows = cw_v;
  assign c_spad_rd     = 3'(cx_v) + 3'(cw_rd) + 3'(cd_sp) + 3'(cd_b) + 3'(ct_v) + 3'(cx2_v) + 3'(cm_rd);
  assign c_spad_wr     = pp_wv;
  assign c_acc_rd      = 2'(a_ov && o_accum) + 2'(cp_v || (cd_v && cur_op == OP_RQ));
  assign c_acc_wr      = a_ov;
  assign c_ppu_elems   = pp_wv ? 16'(COLS) : 16'd0;

  // ---- parameter checks and unused bits -------------------------------
  generate
    if (SPAD_ROWS < 1 || SPAD_ROWS > 65536 || ACC_ROWS < 1 || ACC_ROWS > 65536) begin : g_bad_rows
      $error("compute: SPAD_ROWS and ACC_ROWS must be in 1..65536");
    end
    if (COLS > 65535 || ROWS * COLS > 65536) begin : g_bad_size
      $error("compute: the MAC count of a matmul must fit in 32 bits");
    end
  endgenerate
  logic unused;
  // Pops are the top's (tok_ok); bits past matmul's last field (the last
  // of any COMPUTE instruction's) are reserved; `meta` and `a_bstride`
  // matter only with SPARSE (check.sv refuses them otherwise); input bytes
  // past ROWS meet no PE (COLS > ROWS), nor does a dense array's second
  // input row or position row.
  assign unused = ^{head_instr[255:`SYS_MATMUL_END], head_instr[`SYS_MATMUL_META_HI:`SYS_MATMUL_META_LO],
                    head_instr[`SYS_MATMUL_A_BSTRIDE_HI:`SYS_MATMUL_A_BSTRIDE_LO],
                    head_instr[15:12], head_instr[`SYS_DEP_POP_NEXT],
                    head_instr[`SYS_DEP_POP_PREV], rq_q9, qa_q9, sp_q_x, sp_q_x2, sp_q_m, w_pos_row};
endmodule
