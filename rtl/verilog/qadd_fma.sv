// qadd_fma: one IEEE-754 binary32 fused multiply-add y = x * r + c, rounded
// once to nearest even, for an integer x (9-bit two's complement: every int8
// and uint8 value, whose conversion to float32 is exact) -- the building block
// of `qadd` (isa::numerics::qadd, ONNX Runtime's QLinearAdd).
//
// Exact for every r and c: subnormal operands and results are kept (no flush
// to zero), overflow rounds to +-inf, NaN operands, inf * 0 and inf - inf give
// a NaN (0x7fc00000), inf operands otherwise give inf. The sign of an exact
// zero sum is +0 unless both addends are -0 (IEEE's nearest-even rule).
//
// Datapath (integer logic, combinational):
// - the product |x| * sig(r) is exact (9 x 24 bits);
// - both addends are normalised (top bit known) and placed in a 64-bit window
//   whose bit 61 weighs 2^H, H the larger top-bit weight; an addend whose
//   bits fall below the window keeps them as a sticky bit in bit 0. When the
//   two top bits are within 1 of each other both addends fit the window
//   exactly (34 + 24 bits, the product's low 28 and c's low 38 bits are
//   zero), so a cancelling subtraction is exact; otherwise the result's top
//   bit is at bit >= 60 and 35 bits separate its rounding bit from the
//   sticky bit, so the sticky cannot disturb rounding;
// - the sum is normalised, shifted further right for a subnormal result
//   (sticky again), and rounded by adding the round-up bit to the packed
//   {exponent, fraction}: a carry moves into the exponent (subnormal to
//   normal, or the largest finite to inf) as IEEE requires.
//
// `en` = 0 gives y = 0: the whole datapath is one procedural block under it,
// so a simulator skips it in the cycles its owner does not use the result.
//
// Constructs: only what both Verilator 5.006 (lint-clean under -Wall) and
// yosys 0.23 accept (docs/DESIGN.md §6).

module qadd_fma (
    input  logic        en, // 0: y = 0 (see above)
    input  logic [ 8:0] x,  // integer, two's complement
    input  logic [31:0] r,  // float32 bits
    input  logic [31:0] c,  // float32 bits
    output logic [31:0] y   // float32 bits of fma(f32(x), r, c)
);
  logic x_neg;
  logic [8:0] x_mag;  // |x| <= 256
  logic r_nan, r_inf, c_nan, c_inf;
  logic [23:0] r_sig, c_sig;
  logic [7:0] r_e, c_e;
  logic [32:0] p_mag;  // |x| * sig(r) < 2^33
  logic p_neg, p_zero, c_zero;
  logic [5:0] p_lz;  // leading zeros of p_mag as a 34-bit number
  logic [4:0] c_lz;  // leading zeros of c_sig
  logic [33:0] p_n;  // top bit at 33
  logic [23:0] c_n;  // top bit at 23
  logic signed [10:0] hp, hc, h;
  logic [10:0] dp, dc;  // right shifts (>= 0)
  logic [63:0] p_full, c_full, p_sh, c_sh, p_w, c_w;
  logic p_st, c_st;
  logic eff_sub, p_ge;
  logic [63:0] s;
  logic s_neg;
  logic [5:0] s_lz;
  logic [63:0] s_n;  // top bit at 63
  logic signed [10:0] lead;  // weight of the sum's top bit: h - 61 + 63 - s_lz
  logic [10:0] ds;
  logic [63:0] s_d;
  logic d_st;
  logic [22:0] frac;  // the hidden bit goes with the exponent field
  logic guard, sticky, up;
  logic [7:0] e_field;
  logic [30:0] packed_r;  // {exponent, fraction} after rounding
  logic nan, inf, inf_neg, overflow;

  // One procedural block under `en`: a simulator evaluates none of it while
  // the unit is idle (Verilator runs every assign each cycle, whatever its
  // inputs), and synthesis sees the same logic behind a mux.
  always_comb begin
    if (en) begin
      // ---- decode ------------------------------------------------------------
      x_neg = x[8];
      x_mag = x_neg ? (~x + 9'd1) : x;

      r_nan = (&r[30:23]) & (|r[22:0]);
      r_inf = (&r[30:23]) & ~(|r[22:0]);
      c_nan = (&c[30:23]) & (|c[22:0]);
      c_inf = (&c[30:23]) & ~(|c[22:0]);

      // Significands (subnormals: no hidden bit, exponent field 1) and the
      // weight of their bit 0: value = sig * 2^(e - 150).
      r_sig = {|r[30:23], r[22:0]};
      c_sig = {|c[30:23], c[22:0]};
      r_e   = (|r[30:23]) ? r[30:23] : 8'd1;
      c_e   = (|c[30:23]) ? c[30:23] : 8'd1;

      // ---- exact product, both addends normalised -------------------------------
      p_mag  = {24'd0, x_mag} * {9'd0, r_sig};
      p_neg  = x_neg ^ r[31];
      p_zero = (p_mag == 33'd0);
      c_zero = (c_sig == 24'd0);

      begin
        p_lz = 6'd0;
        for (int i = 0; i < 33; i++) if (p_mag[i]) p_lz = 6'(33 - i);
        c_lz = 5'd0;
        for (int i = 0; i < 24; i++) if (c_sig[i]) c_lz = 5'(23 - i);
      end

      p_n = {1'b0, p_mag} << p_lz;
      c_n = c_sig << c_lz;

      // Weights of the top bits: hp = e_r - 150 + 33 - p_lz, hc = e_c - 150 + 23 - c_lz.
      hp = $signed({3'b000, r_e}) - 11'sd117 - $signed({5'd0, p_lz});
      hc = $signed({3'b000, c_e}) - 11'sd127 - $signed({6'd0, c_lz});
      h  = p_zero ? hc : (c_zero ? hp : ((hp > hc) ? hp : hc));

      // ---- the 64-bit window: bit 61 weighs 2^h -----------------------------------
      dp = 11'(h - hp);
      dc = 11'(h - hc);

      p_full = {2'b00, p_n, 28'd0};
      c_full = {2'b00, c_n, 38'd0};
      begin
        if (dp >= 11'd64) begin
          p_sh = 64'd0;
          p_st = 1'b1;
        end else begin
          p_sh = p_full >> dp[5:0];
          p_st = (p_sh << dp[5:0]) != p_full;
        end
        if (dc >= 11'd64) begin
          c_sh = 64'd0;
          c_st = 1'b1;
        end else begin
          c_sh = c_full >> dc[5:0];
          c_st = (c_sh << dc[5:0]) != c_full;
        end
      end
      p_w = p_zero ? 64'd0 : {p_sh[63:1], p_sh[0] | p_st};
      c_w = c_zero ? 64'd0 : {c_sh[63:1], c_sh[0] | c_st};

      // ---- add or subtract magnitudes -------------------------------------------
      eff_sub = p_neg ^ c[31];
      p_ge = p_w >= c_w;
      begin
        if (!eff_sub) begin
          s = p_w + c_w;
          s_neg = p_neg;
        end else if (p_ge) begin
          s = p_w - c_w;
          s_neg = p_neg;
        end else begin
          s = c_w - p_w;
          s_neg = c[31];
        end
      end

      // ---- normalise, round --------------------------------------------------
      begin
        s_lz = 6'd0;
        for (int i = 0; i < 64; i++) if (s[i]) s_lz = 6'(63 - i);
      end

      s_n  = s << s_lz;
      lead = h + 11'sd2 - $signed({5'd0, s_lz});

      // Subnormal results: further right shift by -126 - lead (capped).
      ds = (lead < -11'sd126) ? 11'(-11'sd126 - lead) : 11'd0;
      begin
        if (ds >= 11'd64) begin
          s_d  = 64'd0;
          d_st = 1'b1;
        end else begin
          s_d  = s_n >> ds[5:0];
          d_st = (s_d << ds[5:0]) != s_n;
        end
      end

      frac     = s_d[62:40];
      guard    = s_d[39];
      sticky   = (|s_d[38:0]) | d_st;
      up       = guard & (sticky | frac[0]);
      e_field  = (lead < -11'sd126) ? 8'd0 : 8'(lead + 11'sd127);
      packed_r = {e_field, frac} + {30'd0, up};

      // ---- specials and result -------------------------------------------------
      nan      = r_nan | c_nan | (r_inf & (x_mag == 9'd0)) | (r_inf & c_inf & (p_neg != c[31]));
      inf      = (r_inf & (x_mag != 9'd0)) | c_inf;
      inf_neg  = (r_inf & (x_mag != 9'd0)) ? p_neg : c[31];
      overflow = lead > 11'sd127;

      begin
        if (nan) y = 32'h7fc0_0000;
        else if (inf) y = {inf_neg, 8'hff, 23'd0};
        else if (p_zero & c_zero) y = {p_neg & c[31], 31'd0};
        else if (s == 64'd0) y = 32'd0;
        else if (overflow) y = {s_neg, 8'hff, 23'd0};
        else y = {s_neg, packed_r};
      end
    end else begin
      {x_neg, x_mag, r_nan, r_inf, c_nan, c_inf, r_sig, c_sig, r_e, c_e, p_mag, p_neg, p_zero, c_zero, p_lz,
       c_lz, p_n, c_n, hp, hc, h, dp, dc, p_full, c_full, p_sh, c_sh, p_w, c_w, p_st, c_st, eff_sub, p_ge, s,
       s_neg, s_lz, s_n, lead, ds, s_d, d_st, frac, guard, sticky, up, e_field, packed_r, nan, inf, inf_neg,
       overflow} = '0;
      y = 32'd0;
    end
  end

endmodule
