// vec_lane: one lane of the vector unit (ISA.md §3 "The vector unit"): every
// element function of isa::numerics::vector, bit for bit, as the sequence of
// binary32 operations vector.rs writes, on one fused multiply-add (fp32_fma:
// add, sub and mul are fmas too) and one divide / square-root unit
// (fp32_div, fp32_sqrt).
//
// Ops (`op`): 0..10 the `vop` codes (instr::VOP_NAMES: add sub mul div max
// min exp erf tanh recip rsqrt), then 11 fma(a, b, c), 12 sqrt(a),
// 13 dequantize (a = q and c = zp as int32, b = scale: f32(q - zp) * b),
// 14 quantize (a = x, b = scale, c = zp, qmin, qmax: an int32 in y).
//
// Timing: `start` in a cycle with `busy` low (or in the cycle of the running
// op's last step) takes the operands; the op then
// runs one step per cycle, a division or square root taking 4 (its digit
// recurrence runs over cycles wc = 0..3 on operands held in registers:
// isa::timing::VEC_DIV_CYCLES, the unit accepts one every 4), and y
// is written with `done` high in the cycle after the last step. Steps per op
// (isa::timing::VOP_CYCLES): 1 for add sub mul max min fma dequantize; 4 for
// div recip sqrt quantize; 8 rsqrt; 12 exp; 15 tanh; 20 erf (its larger-|x|
// path: 7 for |x| <= 0.921875, 1 for |x| >= 3.925 and every NaN result of a
// transcendental, as they need no step).
//
// Sequences (registers E, N, F, P; constants as vector.rs's bit patterns):
// - exp: E = clamp(x, -104, 89); N = fma(E, log2 e, C); N = fma(N, 1, -C);
//   F = fma(N, -ln2_hi, E); F = fma(N, -ln2_lo, F); P = fma(P0, F, P1);
//   P = fma(P, F, Pi) i = 2..4; P = fma(P, F, 1) twice; with n = int(N) and
//   h = n >>> 1: P = P * 2^h; y = P * 2^(n-h).
// - erf, |x| <= 0.921875: F = x * x; P = fma(S0, F, S1); P = fma(P, F, Si)
//   i = 2..5; y = fma(P, x, x). |x| >= 3.925: y = +-1. Otherwise
//   t = min(|x|, 3.725); P = fma(B0, t, B1); P = fma(P, t, Bi) i = 2..6;
//   P = fma(P, t, t); E = -P; the exp steps; y = (1 - P) with x's sign.
// - tanh: X = clamp(x, -9, 9); F = X * X; P = fma(F, A0, A1);
//   P = fma(P, F, Ai) i = 2..6; N = fma(F, B0, B1); N = fma(N, F, Bi)
//   i = 2..3; P = P / N; y = P * X.
// - rsqrt: P = sqrt(x); y = 1 / P. recip: y = 1 / x.
//
// Constructs: only what both Verilator 5.006 (lint-clean under -Wall) and
// yosys 0.23 accept (docs/DESIGN.md §6): no packages, no functions.

module vec_lane (
    input  logic        clk,
    input  logic        rst,
    input  logic        start,
    input  logic [ 3:0] op,
    input  logic [31:0] a,
    input  logic [31:0] b,
    input  logic [31:0] c,
    input  logic [31:0] qmin,
    input  logic [31:0] qmax,
    output logic        busy,
    output logic        done,
    output logic [31:0] y
);
  localparam logic [3:0] OP_ADD = 4'd0, OP_SUB = 4'd1, OP_MUL = 4'd2, OP_DIV = 4'd3, OP_MAX = 4'd4;
  localparam logic [3:0] OP_MIN = 4'd5, OP_EXP = 4'd6, OP_ERF = 4'd7, OP_TANH = 4'd8, OP_RECIP = 4'd9;
  localparam logic [3:0] OP_RSQRT = 4'd10, OP_FMA = 4'd11, OP_SQRT = 4'd12, OP_DEQ = 4'd13, OP_QUANT = 4'd14;

  localparam logic [31:0] ONE = 32'h3f80_0000, NEG_ZERO = 32'h8000_0000, NAN = 32'h7fc0_0000;
  // exp (MLAS Exp_* constants).
  localparam logic [31:0] LOG2E = 32'h3fb8_aa3b, LN2_HI_NEG = 32'hbf31_7200, LN2_LO_NEG = 32'hb5bf_be8e;
  localparam logic [31:0] ROUND_C = 32'h4b40_0000, ROUND_C_NEG = 32'hcb40_0000;
  localparam logic [31:0] EXP_LO = 32'hc2d0_0000, EXP_HI = 32'h42b2_0000;  // -104, 89
  // erf (Juffa, MLAS ErfSMALL_* / ErfBIG_*).
  localparam logic [31:0] ERF_SPLIT = 32'h3f6c_0000, ERF_CLAMP = 32'h406e_6666, ERF_ONE = 32'h407b_3333;
  // tanh (Eigen / MLAS).
  localparam logic [31:0] TANH_LO = 32'hc110_0000, TANH_HI = 32'h4110_0000;  // -9, 9

  // ---- operand registers and step state ----------------------------------------
  logic [3:0] op_r;
  logic [4:0] k;  // step
  logic [1:0] wc;  // cycles spent in a 4-cycle step
  logic [31:0] x_r, b_r, c_r, qmin_r, qmax_r, e_r, n_r, f_r, p_r;
  logic sgn_r, nan_r;
  logic [1:0] path_r;  // erf: 0 small |x|, 1 the exp path, 2 +-1

  // ---- what start latches ----------------------------------------------------
  logic a_nan;
  logic [31:0] a_abs, exp_lo_y, exp_in, tanh_lo_y, tanh_in, erf_t, unused_max0, unused_max1, unused_min0, unused_min1;
  assign a_nan = (&a[30:23]) & (|a[22:0]);
  assign a_abs = {1'b0, a[30:0]};
  // The clamps evaluate only when an op starts (they shape its operand).
  fp32_minmax u_exp_lo (.en(start), .a(a), .b(EXP_LO), .max_y(exp_lo_y), .min_y(unused_min0));
  fp32_minmax u_exp_hi (.en(start), .a(exp_lo_y), .b(EXP_HI), .max_y(unused_max0), .min_y(exp_in));
  fp32_minmax u_tanh_lo (.en(start), .a(a), .b(TANH_LO), .max_y(tanh_lo_y), .min_y(unused_min1));
  fp32_minmax u_tanh_hi (.en(start), .a(tanh_lo_y), .b(TANH_HI), .max_y(unused_max1), .min_y(tanh_in));
  // |x| as bits orders like its value (not NaN here).
  assign erf_t = (a_abs < ERF_CLAMP) ? a_abs : ERF_CLAMP;

  logic [31:0] x_in;
  logic [1:0] path_in;
  always_comb begin
    path_in = 2'd0;
    if (a_abs > ERF_SPLIT) path_in = (a_abs >= ERF_ONE) ? 2'd2 : 2'd1;
    case (op)
      OP_EXP:  x_in = exp_in;
      OP_TANH: x_in = tanh_in;
      OP_ERF:  x_in = (path_in == 2'd1) ? erf_t : a;
      default: x_in = a;
    endcase
  end

  // ---- the units ---------------------------------------------------------------
  logic [31:0] fa, fb, fc, fma_y, da, db, div_y, sqrt_y, max_y, min_y, quant_y, deq_f;
  // The fma evaluates only while an op runs (its steps are the only readers).
  fp32_fma u_fma (.en(busy), .a(fa), .b(fb), .c(fc), .y(fma_y));
  // The divider and the square root run (and their loops evaluate) only in
  // a 4-cycle step; the conversion only in a dequantize step.
  logic slow_en, deq_en;
  assign slow_en = busy && slow;
  assign deq_en  = busy && op_r == OP_DEQ;
  fp32_div u_div (.clk(clk), .en(slow_en), .stage(wc), .a(da), .b(db), .y(div_y));
  fp32_sqrt u_sqrt (.clk(clk), .en(slow_en), .stage(wc), .a(x_r), .y(sqrt_y));
  fp32_minmax u_minmax (.en(busy), .a(x_r), .b(b_r), .max_y(max_y), .min_y(min_y));
  fp32_to_quant u_quant (.en(slow_en), .p(div_y), .zp(c_r), .qmin(qmin_r), .qmax(qmax_r), .q(quant_y));
  fp32_from_int u_deq (.en(deq_en), .d({x_r[31], x_r} - {c_r[31], c_r}), .y(deq_f));

  // exp's n = int(N) (an integer in [-150, 128]) and its split h, n - h.
  logic [8:0] n_mag;
  logic signed [9:0] n_int, h1, h2;
  logic [31:0] pow_h1, pow_h2;
  assign n_mag  = (n_r[30:23] < 8'd127) ? 9'd0 : 9'({1'b1, n_r[22:0]} >> (8'd150 - n_r[30:23]));
  assign n_int  = n_r[31] ? -$signed({1'b0, n_mag}) : $signed({1'b0, n_mag});
  assign h1     = n_int >>> 1;
  assign h2     = n_int - h1;
  assign pow_h1 = {1'b0, 8'(h1 + 10'sd127), 23'd0};
  assign pow_h2 = {1'b0, 8'(h2 + 10'sd127), 23'd0};

  // Coefficient tables: entry 0 starts a Horner chain (a localparam), ci
  // selects the coefficient a step adds.
  localparam logic [31:0] EXP_P0 = 32'h3ab5_4c6d, ERF_S0 = 32'hba1d_0d41, ERF_B0 = 32'h3791_1480;
  localparam logic [31:0] TANH_A0 = 32'ha59f_25c0, TANH_B0 = 32'h35a0_d3d8;
  logic [2:0] ci;
  logic [31:0] exp_c, erf_s, erf_b, tanh_a, tanh_b;
  always_comb begin
    case (ci)
      3'd1: exp_c = 32'h3c09_3965;
      3'd2: exp_c = 32'h3d2a_ad10;
      3'd3: exp_c = 32'h3e2a_aa17;
      3'd4: exp_c = 32'h3eff_fffb;
      default: exp_c = 32'h3ab5_4c6d;
    endcase
    case (ci)
      3'd1: erf_s = 32'h3ba3_9fa4;
      3'd2: erf_s = 32'hbcdb_45e9;
      3'd3: erf_s = 32'h3de7_0d23;
      3'd4: erf_s = 32'hbec0_9370;
      3'd5: erf_s = 32'h3e03_75d3;
      default: erf_s = 32'hba1d_0d41;
    endcase
    case (ci)
      3'd1: erf_b = 32'hb9c8_e966;
      3'd2: erf_b = 32'h3b7e_899b;
      3'd3: erf_b = 32'hbcc6_b180;
      3'd4: erf_b = 32'h3dda_ae58;
      3'd5: erf_b = 32'h3f22_8550;
      3'd6: erf_b = 32'h3e03_ce86;
      default: erf_b = 32'h3791_1480;
    endcase
    case (ci)
      3'd1: tanh_a = 32'h2a61_337e;
      3'd2: tanh_a = 32'haebd_37ff;
      3'd3: tanh_a = 32'h335c_0041;
      3'd4: tanh_a = 32'h3779_434a;
      3'd5: tanh_a = 32'h3a27_0ded;
      3'd6: tanh_a = 32'h3ba0_59dc;
      default: tanh_a = 32'ha59f_25c0;
    endcase
    case (ci)
      3'd1: tanh_b = 32'h38f8_95d6;
      3'd2: tanh_b = 32'h3b14_aa05;
      3'd3: tanh_b = 32'h3ba0_59dd;
      default: tanh_b = 32'h35a0_d3d8;
    endcase
  end

  // ---- one step: the units' operands, what it writes, whether it is the last ----
  logic [4:0] j;  // the exp step (erf's exp path starts at step 7)
  logic w_e, w_n, w_f, w_p, p_from_div, p_from_sqrt, slow, last;
  logic [31:0] y_next;
  assign j = (op_r == OP_ERF) ? k - 5'd7 : k;
  always_comb begin
    fa = x_r;
    fb = ONE;
    fc = NEG_ZERO;
    da = x_r;
    db = b_r;
    ci = 3'd0;
    w_e = 1'b0;
    w_n = 1'b0;
    w_f = 1'b0;
    w_p = 1'b0;
    p_from_div = 1'b0;
    p_from_sqrt = 1'b0;
    slow = 1'b0;
    last = 1'b0;
    y_next = fma_y;
    // Idle, no step is decoded (a simulator skips the rest).
    if (!busy) begin
      y_next = fma_y;
    end else if (nan_r) begin
      last   = 1'b1;
      y_next = NAN;
    end else if (op_r == OP_EXP || (op_r == OP_ERF && path_r == 2'd1 && k >= 5'd7 && k < 5'd19)) begin
      case (j)
        5'd0: begin
          fa = e_r;
          fb = LOG2E;
          fc = ROUND_C;
          w_n = 1'b1;
        end
        5'd1: begin
          fa = n_r;
          fc = ROUND_C_NEG;
          w_n = 1'b1;
        end
        5'd2: begin
          fa = n_r;
          fb = LN2_HI_NEG;
          fc = e_r;
          w_f = 1'b1;
        end
        5'd3: begin
          fa = n_r;
          fb = LN2_LO_NEG;
          fc = f_r;
          w_f = 1'b1;
        end
        5'd4, 5'd5, 5'd6, 5'd7: begin
          ci = 3'(j - 5'd3);
          fa = (j == 5'd4) ? EXP_P0 : p_r;
          fb = f_r;
          fc = exp_c;
          w_p = 1'b1;
        end
        5'd8, 5'd9: begin
          fa = p_r;
          fb = f_r;
          fc = ONE;
          w_p = 1'b1;
        end
        5'd10: begin
          fa = p_r;
          fb = pow_h1;
          w_p = 1'b1;
        end
        default: begin
          fa = p_r;
          fb = pow_h2;
          w_p = 1'b1;
          last = (op_r == OP_EXP);
        end
      endcase
    end else begin
      case (op_r)
        OP_ADD: begin
          fb = ONE;
          fc = b_r;
          last = 1'b1;
        end
        OP_SUB: begin
          fc = {~b_r[31], b_r[30:0]};
          last = 1'b1;
        end
        OP_MUL: begin
          fb = b_r;
          last = 1'b1;
        end
        OP_FMA: begin
          fb = b_r;
          fc = c_r;
          last = 1'b1;
        end
        OP_MAX: begin
          y_next = max_y;
          last   = 1'b1;
        end
        OP_MIN: begin
          y_next = min_y;
          last   = 1'b1;
        end
        OP_DEQ: begin
          fa = deq_f;
          fb = b_r;
          last = 1'b1;
        end
        OP_DIV: begin
          slow = 1'b1;
          y_next = div_y;
          last = 1'b1;
        end
        OP_RECIP: begin
          da = ONE;
          db = x_r;
          slow = 1'b1;
          y_next = div_y;
          last = 1'b1;
        end
        OP_SQRT: begin
          slow = 1'b1;
          y_next = sqrt_y;
          last = 1'b1;
        end
        OP_QUANT: begin
          slow = 1'b1;
          y_next = quant_y;
          last = 1'b1;
        end
        OP_RSQRT: begin
          slow = 1'b1;
          da = ONE;
          db = p_r;
          if (k == 5'd0) begin
            w_p = 1'b1;
            p_from_sqrt = 1'b1;
          end else begin
            y_next = div_y;
            last   = 1'b1;
          end
        end
        OP_TANH: begin
          if (k == 5'd0) begin
            fb = x_r;
            w_f = 1'b1;
          end else if (k <= 5'd6) begin
            ci = 3'(k);
            fa = (k == 5'd1) ? f_r : p_r;
            fb = (k == 5'd1) ? TANH_A0 : f_r;
            fc = tanh_a;
            w_p = 1'b1;
          end else if (k <= 5'd9) begin
            ci = 3'(k - 5'd6);
            fa = (k == 5'd7) ? f_r : n_r;
            fb = (k == 5'd7) ? TANH_B0 : f_r;
            fc = tanh_b;
            w_n = 1'b1;
          end else if (k == 5'd10) begin
            da = p_r;
            db = n_r;
            slow = 1'b1;
            w_p = 1'b1;
            p_from_div = 1'b1;
          end else begin
            fa = p_r;
            fb = x_r;
            last = 1'b1;
          end
        end
        OP_ERF: begin
          if (path_r == 2'd2) begin
            y_next = {sgn_r, ONE[30:0]};
            last   = 1'b1;
          end else if (path_r == 2'd0) begin
            if (k == 5'd0) begin
              fb = x_r;
              w_f = 1'b1;
            end else if (k <= 5'd5) begin
              ci = 3'(k);
              fa = (k == 5'd1) ? ERF_S0 : p_r;
              fb = f_r;
              fc = erf_s;
              w_p = 1'b1;
            end else begin
              fa = p_r;
              fb = x_r;
              fc = x_r;
              last = 1'b1;
            end
          end else if (k <= 5'd5) begin
            ci = 3'(k + 5'd1);
            fa = (k == 5'd0) ? ERF_B0 : p_r;
            fb = x_r;
            fc = erf_b;
            w_p = 1'b1;
          end else if (k == 5'd6) begin
            fa = p_r;
            fb = x_r;
            fc = x_r;
            w_p = 1'b1;
            w_e = 1'b1;
          end else begin
            // k = 19: 1 - exp(-r), with x's sign.
            fa = {~p_r[31], p_r[30:0]};
            fc = ONE;
            y_next = {sgn_r, fma_y[30:0]};
            last = 1'b1;
          end
        end
        default: begin
          y_next = NAN;  // no such op
          last   = 1'b1;
        end
      endcase
    end
  end

  // ---- registers -----------------------------------------------------------------
  // A start is taken while idle or in the cycle of the running op's last step
  // (the next op's operands replace it as its result is written), so a lane
  // accepts one op every `steps` cycles (the vector unit's beats).
  logic step, accept;
  assign step   = busy && !(slow && wc != 2'd3);
  assign accept = start && (!busy || (step && last));
  always_ff @(posedge clk) begin
    done <= 1'b0;
    if (rst) begin
      busy <= 1'b0;
      y <= 32'd0;
    end else begin
      if (busy && !step) begin
        wc <= wc + 2'd1;
      end else if (step) begin
        wc <= 2'd0;
        k  <= k + 5'd1;
        if (w_e) e_r <= {~fma_y[31], fma_y[30:0]};
        if (w_n) n_r <= fma_y;
        if (w_f) f_r <= fma_y;
        if (w_p) p_r <= p_from_div ? div_y : (p_from_sqrt ? sqrt_y : fma_y);
        if (last) begin
          y <= y_next;
          done <= 1'b1;
          busy <= 1'b0;
        end
      end
      if (accept) begin
        busy <= 1'b1;
        op_r <= op;
        k <= 5'd0;
        wc <= 2'd0;
        x_r <= x_in;
        e_r <= x_in;
        b_r <= b;
        c_r <= c;
        qmin_r <= qmin;
        qmax_r <= qmax;
        sgn_r <= a[31];
        path_r <= path_in;
        nan_r <= a_nan & (op == OP_EXP || op == OP_ERF || op == OP_TANH);
      end
    end
  end
endmodule
