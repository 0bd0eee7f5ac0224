// fp32_fma: the IEEE-754 binary32 fused multiply-add y = a * b + c, rounded
// once to nearest even (isa::numerics::vector::fma) -- the vector lane's one
// arithmetic unit: add is fma(a, 1, b), sub fma(a, 1, -b), mul fma(a, b, -0)
// (all three exactly the IEEE operation, signed zeros included).
//
// Exact for every input: subnormal operands and results are kept (no flush
// to zero), overflow rounds to +-inf, any NaN result is the canonical NaN
// 0x7fc00000 (NaN operands, inf * 0, inf - inf), inf operands otherwise give
// inf. An exact zero sum is +0 unless both addends are -0.
//
// Datapath (integer logic, combinational), qadd_fma.sv's widened to a 24 x 24
// product:
// - the product sig(a) * sig(b) is exact (48 bits);
// - both addends are normalised and placed in an 80-bit window whose bit 77
//   weighs 2^h, h the larger top-bit weight; bits falling below the window
//   become a sticky bit 0. Top bits within 1 of each other: both addends fit
//   exactly (48 + 2 bits), so a cancelling subtraction is exact; otherwise the
//   result's top bit is at >= 76 and 51 bits separate its rounding bit from
//   the sticky bit, which therefore cannot disturb the rounding;
// - normalise, shift further right for a subnormal result (sticky), round by
//   adding the round-up bit to the packed {exponent, fraction} (a carry moves
//   into the exponent: subnormal to normal, largest finite to inf).

module fp32_fma (
    input  logic        en,  // 0: y = 0, and nothing evaluates (see below)
    input  logic [31:0] a,
    input  logic [31:0] b,
    input  logic [31:0] c,
    output logic [31:0] y
);
  logic a_nan, a_inf, b_nan, b_inf, c_nan, c_inf;
  logic [23:0] a_sig, b_sig, c_sig;
  logic [7:0] a_e, b_e, c_e;
  logic [47:0] p_mag;
  logic p_neg, p_zero, c_zero;
  logic [5:0] p_lz;  // leading zeros of p_mag
  logic [4:0] c_lz;  // leading zeros of c_sig
  logic [47:0] p_n;  // top bit at 47
  logic [23:0] c_n;  // top bit at 23
  logic signed [11:0] hp, hc, h;
  logic [11:0] dp, dc;  // right shifts (>= 0 for a non-zero addend)
  logic [79:0] p_full, c_full, p_sh, c_sh, p_w, c_w;
  logic p_st, c_st;
  logic eff_sub, p_ge;
  logic [79:0] s;
  logic s_neg;
  logic [6:0] s_lz;
  logic [79:0] s_n;  // top bit at 79
  logic signed [11:0] lead;  // weight of the sum's top bit: h - 77 + 79 - s_lz
  logic [11:0] ds;
  logic [79:0] s_d;
  logic d_st;
  logic [22:0] frac;  // the hidden bit goes with the exponent field
  logic guard, sticky, up;
  logic [7:0] e_field;
  logic [30:0] packed_r;  // {exponent, fraction} after rounding
  logic a_zero, b_zero, p_inf, nan, overflow;

  // One procedural block under `en`: a simulator evaluates none of it while
  // the unit is idle (Verilator runs every assign each cycle, whatever its
  // inputs), and synthesis sees the same logic behind a mux.
  always_comb begin
    if (en) begin
      // ---- decode ------------------------------------------------------------
      a_nan = (&a[30:23]) & (|a[22:0]);
      a_inf = (&a[30:23]) & ~(|a[22:0]);
      b_nan = (&b[30:23]) & (|b[22:0]);
      b_inf = (&b[30:23]) & ~(|b[22:0]);
      c_nan = (&c[30:23]) & (|c[22:0]);
      c_inf = (&c[30:23]) & ~(|c[22:0]);

      // Significands (subnormals: no hidden bit, exponent field 1): value =
      // sig * 2^(e - 150).
      a_sig = {|a[30:23], a[22:0]};
      b_sig = {|b[30:23], b[22:0]};
      c_sig = {|c[30:23], c[22:0]};
      a_e   = (|a[30:23]) ? a[30:23] : 8'd1;
      b_e   = (|b[30:23]) ? b[30:23] : 8'd1;
      c_e   = (|c[30:23]) ? c[30:23] : 8'd1;

      // ---- exact product, both addends normalised -------------------------------
      p_mag  = {24'd0, a_sig} * {24'd0, b_sig};
      p_neg  = a[31] ^ b[31];
      p_zero = (p_mag == 48'd0);
      c_zero = (c_sig == 24'd0);

      begin
        p_lz = 6'd0;
        for (int i = 0; i < 48; i++) if (p_mag[i]) p_lz = 6'(47 - i);
        c_lz = 5'd0;
        for (int i = 0; i < 24; i++) if (c_sig[i]) c_lz = 5'(23 - i);
      end

      p_n = p_mag << p_lz;
      c_n = c_sig << c_lz;

      // Weights of the top bits: hp = e_a + e_b - 300 + 47 - p_lz,
      // hc = e_c - 150 + 23 - c_lz.
      hp = $signed({4'b0000, a_e}) + $signed({4'b0000, b_e}) - 12'sd253 - $signed({6'd0, p_lz});
      hc = $signed({4'b0000, c_e}) - 12'sd127 - $signed({7'd0, c_lz});
      h  = p_zero ? hc : (c_zero ? hp : ((hp > hc) ? hp : hc));

      // ---- the 80-bit window: bit 77 weighs 2^h -----------------------------------
      dp = 12'(h - hp);
      dc = 12'(h - hc);

      p_full = {2'b00, p_n, 30'd0};
      c_full = {2'b00, c_n, 54'd0};
      begin
        if (dp >= 12'd80) begin
          p_sh = 80'd0;
          p_st = 1'b1;
        end else begin
          p_sh = p_full >> dp[6:0];
          p_st = (p_sh << dp[6:0]) != p_full;
        end
        if (dc >= 12'd80) begin
          c_sh = 80'd0;
          c_st = 1'b1;
        end else begin
          c_sh = c_full >> dc[6:0];
          c_st = (c_sh << dc[6:0]) != c_full;
        end
      end
      p_w = p_zero ? 80'd0 : {p_sh[79:1], p_sh[0] | p_st};
      c_w = c_zero ? 80'd0 : {c_sh[79:1], c_sh[0] | c_st};

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
        s_lz = 7'd0;
        for (int i = 0; i < 80; i++) if (s[i]) s_lz = 7'(79 - i);
      end

      s_n  = s << s_lz;
      lead = h + 12'sd2 - $signed({5'd0, s_lz});

      // Subnormal results: further right shift by -126 - lead (capped).
      ds = (lead < -12'sd126) ? 12'(-12'sd126 - lead) : 12'd0;
      begin
        if (ds >= 12'd80) begin
          s_d  = 80'd0;
          d_st = 1'b1;
        end else begin
          s_d  = s_n >> ds[6:0];
          d_st = (s_d << ds[6:0]) != s_n;
        end
      end

      frac     = s_d[78:56];
      guard    = s_d[55];
      sticky   = (|s_d[54:0]) | d_st;
      up       = guard & (sticky | frac[0]);
      e_field  = (lead < -12'sd126) ? 8'd0 : 8'(lead + 12'sd127);
      packed_r = {e_field, frac} + {30'd0, up};

      // ---- specials and result -------------------------------------------------
      a_zero   = ~(|a[30:0]);
      b_zero   = ~(|b[30:0]);
      p_inf    = a_inf | b_inf;
      nan      = a_nan | b_nan | c_nan | (a_inf & b_zero) | (b_inf & a_zero) | (p_inf & c_inf & (p_neg != c[31]));
      overflow = lead > 12'sd127;

      begin
        if (nan) y = 32'h7fc0_0000;
        else if (p_inf) y = {p_neg, 8'hff, 23'd0};
        else if (c_inf) y = {c[31], 8'hff, 23'd0};
        else if (p_zero & c_zero) y = {p_neg & c[31], 31'd0};
        else if (s == 80'd0) y = 32'd0;
        else if (overflow) y = {s_neg, 8'hff, 23'd0};
        else y = {s_neg, packed_r};
      end


    end else begin
      {a_nan, a_inf, b_nan, b_inf, c_nan, c_inf, a_sig, b_sig, c_sig, a_e, b_e, c_e, p_mag, p_neg, p_zero, c_zero, p_lz, c_lz, p_n, c_n, hp, hc, h, dp, dc, p_full, c_full, p_sh, p_st, c_sh, c_st, p_w, c_w, eff_sub, p_ge, s, s_neg, s_lz, s_n, lead, ds, s_d, d_st, frac, guard, sticky, up, e_field, packed_r, a_zero, b_zero, p_inf, nan, overflow} = '0;
      y = 32'd0;
    end
  end

endmodule
