// requant: the ISA's requantization in integer logic, bit-exact with
// `isa::numerics::requantize(acc, scale, zp, qmin, qmax)` (docs/DESIGN.md §2):
//
//   x = f32(acc)                  int32 -> float32, round to nearest even
//   p = x * f32::from_bits(scale) one IEEE float32 multiply, nearest even,
//                                 subnormal operands and results exact
//   r = round_half_even(p)        NaN -> 0, +-inf and huge values saturate
//   q = min(max(r + zp, qmin), qmax)   (so qmax when qmin > qmax)
//
// No floating-point IP and no `real`: the datapath is a 32-bit
// leading-zero count and rounding (the conversion), a 24x24-bit integer
// multiplier (the product's significand), two round-to-nearest-even steps at
// the bit positions the float32 format and the integer grid dictate, and a
// saturating add and clamp.
//
// Why the datapath can be narrower than a full float unit, exactly:
// - Only |r| < 2^QW matters. zp, qmin and qmax are QW-bit two's complement,
//   so once |r| >= 2^QW the sum r + zp lies beyond every representable bound
//   and the clamp returns qmax (r > 0) or min(qmin, qmax) (r < 0) whatever
//   r is. So every product with |p| >= 2^(QW+1) -- finite, huge or +-inf
//   after float32 overflow -- is carried as r = +-2^(QW+1), and the
//   saturating add of the contract cannot overflow in QW+3 bits.
// - Every product with |p| < 1/2 rounds to r = 0. Float32 rounding of such
//   a product gives at most 1/2, and 1/2 rounds half-to-even to 0. This
//   covers every product in float32's subnormal range and every product
//   with a subnormal scale (|acc| <= 2^31 and |scale| < 2^-126 give
//   |p| < 2^-95). The scale is still decoded as IEEE says (hidden bit 0,
//   exponent 1-127, significand normalised by a leading-zero count): there
//   is no flush to zero anywhere, the narrow range is a consequence.
// - In between, 1/2 <= |p| < 2^(QW+1), the float32 result is a normal
//   number: its 24-bit significand is the product's top 24 bits rounded to
//   nearest even (guard bit, sticky bits), then r is that significand shifted
//   onto the integer grid and rounded to nearest even again. Two roundings,
//   in that order, as the contract's f32 multiply and round_ties_even do.
//
// Special scales: NaN -> r = 0; +-0 -> r = 0 (IEEE gives +-0); +-inf ->
// r = +-inf saturated unless acc == 0 (0 * inf = NaN -> r = 0).
//
// Parameters:
//   QW      width of zp, qmin, qmax and q (two's complement), 2..24. The
//           default is the ISA's field width (9: covers int8 and uint8).
//   LATENCY 0: combinational (q follows the inputs; clk and ce unused).
//           1: q is registered: inputs sampled at a clock edge with ce = 1
//              give q after that edge.
//           2: also a register after the multiplier: the result of inputs
//              sampled at edge n appears after edge n + 1 (two edges with
//              ce = 1). A new input every cycle; ce = 0 holds every stage.
//   Registers have no reset: they hold data only; whoever issues work
//   tracks which stages hold valid data.
//
// Constructs: only what both Verilator 5.006 (lint-clean under -Wall) and
// yosys 0.23 accept (docs/DESIGN.md §6): no packages, no functions, constants from
// the generated header (rtl/include/systole_isa.vh, pass -I rtl/include).

`include "systole_isa.vh"

module requant #(
    parameter int QW      = `SYS_REQUANT_ZP_W,
    parameter int LATENCY = 0
) (
    input  logic          clk,
    input  logic          ce,     // advance the pipeline (LATENCY >= 1)
    input  logic [31:0]   acc,    // int32 accumulator, two's complement
    input  logic [31:0]   scale,  // float32 bits
    input  logic [QW-1:0] zp,     // zero point, two's complement
    input  logic [QW-1:0] qmin,   // clamp lower bound, two's complement
    input  logic [QW-1:0] qmax,   // clamp upper bound, two's complement
    output logic [QW-1:0] q       // result, two's complement
);
  // Left-shift amount width for the integer rounding (0..QW+1).
  localparam int SW = $clog2(QW + 2);
  // Width of r (+-2^(QW+1) at most) and of r + zp.
  localparam int RW = QW + 3;
  // Evaluate the datapath: always when combinational, else only in a cycle
  // that advances the pipeline (nothing else reads it). Both stages are
  // procedural blocks under it, so a simulator skips them while idle.
  logic en;
  assign en = (LATENCY == 0) || ce;

  // ===================================================================
  // Stage A: decode both operands, multiply the significands.
  // ===================================================================

  logic        x_neg;
  logic        x_zero;
  logic [31:0] x_abs;  // |acc|, 2^31 for acc = -2^31
  logic [ 4:0] x_lz;   // leading zeros of x_abs (x_abs != 0)
  logic [31:0] x_norm;  // x_abs << x_lz: bit 31 set
  logic        x_up;  // round the conversion up (nearest, ties to even)
  logic [24:0] x_sig_r;  // rounded significand, 2^24 on carry
  logic [23:0] x_sig;
  logic        x_carry;
  logic        s_neg;
  logic [ 7:0] s_exp;
  logic [22:0] s_frac;
  logic        s_nan;
  logic        s_inf;
  logic        s_zero;
  logic [ 7:0] s_exp_eff;  // subnormals: exponent 1 without hidden bit
  logic [23:0] s_sig_raw;
  logic [ 4:0] s_lz;  // leading zeros of s_sig_raw (0 for normals)
  logic [23:0] s_sig;  // normalised: bit 23 set
  logic        [47:0] a_prod;
  logic signed [ 9:0] a_exp;
  logic               a_neg;
  logic               a_zero;  // r = 0: NaN, 0 * inf, or a zero operand
  logic               a_inf;  // r = +-inf (saturate)

  // Stage A under `en` (see the header): skipped by a simulator when idle.
  always_comb begin
    if (en) begin
      // ---- acc -> float32: |x| = mx * 2^(xe) with mx in [2^23, 2^24) --------

      x_neg  = acc[31];
      x_zero = (acc == 32'd0);
      x_abs  = x_neg ? (~acc + 32'd1) : acc;

      begin
        x_lz = 5'd0;
        for (int i = 0; i < 32; i++) if (x_abs[i]) x_lz = 5'(31 - i);
      end

      x_norm  = x_abs << x_lz;
      // Bits 7..0 are the part below float32 precision (all zero when
      // |acc| < 2^24: the conversion is exact there).
      x_up    = x_norm[7] & ((|x_norm[6:0]) | x_norm[8]);
      x_sig_r = {1'b0, x_norm[31:8]} + {24'd0, x_up};
      x_carry = x_sig_r[24];
      x_sig   = x_carry ? 24'h80_0000 : x_sig_r[23:0];
      // |x| = x_sig * 2^(8 - x_lz + x_carry), exponent in [-23, 8].

      // ---- scale: |s| = s_sig * 2^(s_exp_eff - 150 - s_lz) ------------------

      s_neg     = scale[31];
      s_exp     = scale[30:23];
      s_frac    = scale[22:0];
      s_nan     = (&s_exp) & (|s_frac);
      s_inf     = (&s_exp) & ~(|s_frac);
      s_zero    = ~(|s_exp) & ~(|s_frac);
      s_exp_eff = (|s_exp) ? s_exp : 8'd1;
      s_sig_raw = {|s_exp, s_frac};

      begin
        s_lz = 5'd0;
        for (int i = 0; i < 24; i++) if (s_sig_raw[i]) s_lz = 5'(23 - i);
      end

      s_sig = s_sig_raw << s_lz;

      // ---- product: |x * s| = a_prod * 2^(a_exp), a_prod in [2^46, 2^48) -----
      // a_exp = (8 - x_lz + x_carry) + (s_exp_eff - 150 - s_lz), in [-195, 112].

      a_prod = {24'd0, x_sig} * {24'd0, s_sig};
      a_exp = $signed({2'b00, s_exp_eff}) - $signed({5'd0, s_lz}) - $signed({5'd0, x_lz})
                   + $signed({9'd0, x_carry}) - 10'sd142;
      a_neg = x_neg ^ s_neg;
      a_zero = s_nan | s_zero | x_zero;
      a_inf = s_inf & ~x_zero;
    end else begin
      {x_neg, x_zero, x_abs, x_lz, x_norm, x_up, x_sig_r, x_sig, x_carry, s_neg, s_exp, s_frac,
       s_nan, s_inf, s_zero, s_exp_eff, s_sig_raw, s_lz, s_sig, a_prod, a_exp, a_neg, a_zero, a_inf} = '0;
    end
  end

  // ---- optional pipeline register A -> B --------------------------------
  logic        [  47:0] b_prod;
  logic signed [   9:0] b_exp;
  logic                 b_neg;
  logic                 b_zero;
  logic                 b_inf;
  logic        [QW-1:0] b_zp;
  logic        [QW-1:0] b_qmin;
  logic        [QW-1:0] b_qmax;

  // ===================================================================
  // Stage B: float32 rounding, integer rounding, zero point, clamp.
  // ===================================================================

  logic                 b_top;  // product bit 47 set
  logic        [  23:0] b_sig_t;  // top 24 bits
  logic                 b_guard;
  logic                 b_sticky;
  logic        [  24:0] b_sig;  // rounded, 2^24 on carry
  logic signed [   9:0] b_k;  // floor(log2 |exact product|)
  logic                 b_small;  // |p| < 1/2: r = 0
  logic                 b_big;  // |p| >= 2^(QW+1): saturate
  logic [  SW-1:0] b_shift;  // b_k + 1 in 0..QW+1 (low bits suffice)
  logic [QW+25:0] b_fix;
  logic [  QW+1:0] b_int;
  logic            b_half;
  logic            b_rest;
  logic [  QW+1:0] b_mag;  // |r|, at most 2^(QW+1)
  logic [  RW-1:0] b_r;  // r, two's complement
  logic [  RW-1:0] b_sum;  // r + zp (cannot overflow)
  logic [  RW-1:0] b_lo;  // max(r + zp, qmin)
  logic [  QW-1:0] b_q;

  // Stage B under `en` (see the header): skipped by a simulator when idle.
  always_comb begin
    if (en) begin
      // ---- float32 rounding of the product: |p| = b_sig * 2^(b_k - 23) -----

      b_top    = b_prod[47];
      b_sig_t  = b_top ? b_prod[47:24] : b_prod[46:23];
      b_guard  = b_top ? b_prod[23] : b_prod[22];
      b_sticky = b_top ? (|b_prod[22:0]) : (|b_prod[21:0]);
      b_sig    = {1'b0, b_sig_t} + {24'd0, b_guard & (b_sticky | b_sig_t[0])};
      b_k      = b_exp + 10'sd46 + $signed({9'd0, b_top});
      b_small  = (b_k < -10'sd1);
      b_big    = (b_k > 10'(QW));

      // ---- round half to even onto the integers (-1 <= b_k <= QW) ----------
      // |p| = (b_sig << (b_k + 1)) * 2^-24: 24 fraction bits below the integer
      // part, the first of which is the half bit.

      b_shift = b_k[SW-1:0] + {{(SW - 1) {1'b0}}, 1'b1};
      b_fix   = {{(QW + 1) {1'b0}}, b_sig} << b_shift;
      b_int   = b_fix[QW+25:24];
      b_half  = b_fix[23];
      b_rest  = |b_fix[22:0];

      begin
        if (b_zero | (b_small & ~b_inf)) b_mag = '0;
        else if (b_inf | b_big) b_mag = {1'b1, {(QW + 1) {1'b0}}};
        else b_mag = b_int + {{(QW + 1) {1'b0}}, b_half & (b_rest | b_int[0])};
      end

      b_r   = b_neg ? -{1'b0, b_mag} : {1'b0, b_mag};
      b_sum = b_r + {{3{b_zp[QW-1]}}, b_zp};
      b_lo  = ($signed(b_sum) < $signed({{3{b_qmin[QW-1]}}, b_qmin})) ? {{3{b_qmin[QW-1]}}, b_qmin} : b_sum;
      b_q   = ($signed(b_lo) > $signed({{3{b_qmax[QW-1]}}, b_qmax})) ? b_qmax : b_lo[QW-1:0];
    end else begin
      {b_top, b_sig_t, b_guard, b_sticky, b_sig, b_k, b_small, b_big, b_shift, b_fix, b_int, b_half,
       b_rest, b_mag, b_r, b_sum, b_lo, b_q} = '0;
    end
  end

  // ===================================================================
  // Pipeline registers.
  // ===================================================================
  generate
    if (QW < 2 || QW > 24) begin : g_bad_qw
      $error("requant: QW must be in 2..24");
    end
    if (LATENCY == 2) begin : g_reg_ab
      always_ff @(posedge clk) begin
        if (ce) begin
          b_prod <= a_prod;
          b_exp  <= a_exp;
          b_neg  <= a_neg;
          b_zero <= a_zero;
          b_inf  <= a_inf;
          b_zp   <= zp;
          b_qmin <= qmin;
          b_qmax <= qmax;
        end
      end
    end else begin : g_comb_ab
      assign b_prod = a_prod;
      assign b_exp  = a_exp;
      assign b_neg  = a_neg;
      assign b_zero = a_zero;
      assign b_inf  = a_inf;
      assign b_zp   = zp;
      assign b_qmin = qmin;
      assign b_qmax = qmax;
    end
    if (LATENCY >= 1 && LATENCY <= 2) begin : g_reg_out
      always_ff @(posedge clk) begin
        if (ce) q <= b_q;
      end
    end else if (LATENCY == 0) begin : g_comb_out
      assign q = b_q;
      // clk and ce are not used by the combinational form.
      wire unused_clk_ce = &{1'b0, clk, ce};
    end else begin : g_bad_latency
      $error("requant: LATENCY must be 0, 1 or 2");
    end
  endgenerate

endmodule
