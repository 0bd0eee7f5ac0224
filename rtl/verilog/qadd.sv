// qadd: the post-processor's quantized add, bit-exact with
// `isa::numerics::qadd(a, b, QaddParams { ra, rb, k }, qmin, qmax)`, which is
// ONNX Runtime's QLinearAdd (docs/DESIGN.md §2, isa/ISA.md `vadd`):
//
//   t = fma(f32(b), rb, k)        binary32, rounded once to nearest even
//   y = fma(f32(a), ra, t)
//   v = cvt_rne_i32(y)            nearest even; NaN and |y| >= 2^31 give
//                                 INT_MIN (x86 cvtps2dq)
//   q = min(max(v, qmin), qmax)
//
// Two `qadd_fma` in series, then the conversion on the integer grid. Only the
// clamped value leaves the module, so the conversion needs the exact integer
// only while it lies within reach of the clamp bounds: every |y| >= 2^30 is
// either INT_MIN (qmin) or beyond every 9-bit bound (qmax), and 2^30 > 2^9.
//
// Parameters:
//   LATENCY 0: combinational (clk and ce unused); 1: q registered at a clock
//           edge with ce = 1 (no reset: it holds data only).
//
// Constructs: only what both Verilator 5.006 (lint-clean under -Wall) and
// yosys 0.23 accept (docs/DESIGN.md §6).

module qadd #(
    parameter int LATENCY = 0
) (
    input  logic        clk,
    input  logic        ce,
    input  logic [ 7:0] a,         // operand bytes
    input  logic [ 7:0] b,
    input  logic        unsigned_in,  // operands are uint8 (else int8)
    input  logic [31:0] ra,        // float32 bits
    input  logic [31:0] rb,
    input  logic [31:0] k,
    input  logic [ 8:0] qmin,      // two's complement
    input  logic [ 8:0] qmax,
    output logic [ 8:0] q          // two's complement
);
  logic [8:0] xa, xb;
  assign xa = {a[7] & ~unsigned_in, a};
  assign xb = {b[7] & ~unsigned_in, b};

  logic [31:0] t, y;
  // The fmas evaluate only in a cycle whose result is registered (LATENCY
  // 1 with ce); q does not depend on them otherwise.
  logic fma_en;
  assign fma_en = (LATENCY == 0) || ce;
  qadd_fma u_fb (
      .en(fma_en),
      .x(xb),
      .r(rb),
      .c(k),
      .y(t)
  );
  qadd_fma u_fa (
      .en(fma_en),
      .x(xa),
      .r(ra),
      .c(t),
      .y(y)
  );

  // ---- cvt_rne_i32, as far as the clamp can see it ---------------------------
  // |y| = sig * 2^(e - 150); e >= 157 (|y| >= 2^30) saturates, e <= 125
  // (|y| < 1/2) gives 0.
  logic [ 7:0] e;
  logic [23:0] sig;
  logic        y_neg;
  assign e     = y[30:23];
  assign sig   = {|e, y[22:0]};
  assign y_neg = y[31];

  logic        is_min;  // INT_MIN: NaN, +-inf or |y| >= 2^31
  logic        big;  // |y| >= 2^30: beyond every bound
  logic        tiny;  // |y| < 1/2: 0
  assign is_min = (&e) | (e >= 8'd158);
  assign big    = e >= 8'd157;
  assign tiny   = e <= 8'd125;

  // For 126 <= e <= 156: L = sig << (e - 126) weighs 2^-24 per unit, so the
  // integer part is L[53:24], the half bit L[23], the rest L[22:0].
  logic [ 4:0] sh;
  logic [53:0] l;
  logic [29:0] ip;
  logic        up;
  logic [30:0] mag;
  assign sh  = 5'(e - 8'd126);
  assign l   = {30'd0, sig} << sh;
  assign ip  = l[53:24];
  assign up  = l[23] & ((|l[22:0]) | ip[0]);
  assign mag = {1'b0, ip} + {30'd0, up};

  // v as a 32-bit signed value (|v| < 2^30, or a saturated stand-in).
  logic signed [31:0] v;
  always_comb begin
    if (is_min) v = 32'sh8000_0000;
    else if (big) v = y_neg ? 32'sh8000_0000 : 32'sh7fff_ffff;
    else if (tiny) v = 32'sd0;
    else v = y_neg ? -$signed({1'b0, mag}) : $signed({1'b0, mag});
  end

  // min(max(v, qmin), qmax), so qmax when qmin > qmax (as numerics).
  logic signed [31:0] lo, hi, m;
  logic [8:0] q_c;
  assign lo  = {{23{qmin[8]}}, qmin};
  assign hi  = {{23{qmax[8]}}, qmax};
  assign m   = (v < lo) ? lo : v;
  assign q_c = (m > hi) ? qmax : m[8:0];

  generate
    if (LATENCY == 1) begin : g_reg
      always_ff @(posedge clk) begin
        if (ce) q <= q_c;
      end
    end else if (LATENCY == 0) begin : g_comb
      assign q = q_c;
      wire unused_clk_ce = &{1'b0, clk, ce};
    end else begin : g_bad_latency
      $error("qadd: LATENCY must be 0 or 1");
    end
  endgenerate

endmodule
