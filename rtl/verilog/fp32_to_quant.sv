// fp32_to_quant: the integer end of quantize (isa::numerics::quantize):
// p (the binary32 quotient x / scale) rounded to the nearest integer, ties
// to even, plus the zero point, clamped: min(max(round(p) + zp, qmin), qmax)
// (so qmax when qmin > qmax); a NaN p gives min(qmin, qmax).
//
// The model rounds to a saturating i64; here |p| >= 2^40 saturates to
// +-2^40 instead, which changes no result: with a 32-bit zp the sum is still
// beyond every 32-bit bound.

module fp32_to_quant (
    input  logic        en,  // 0: the outputs are 0, and nothing evaluates (see below)
    input  logic [31:0] p,
    input  logic [31:0] zp,
    input  logic [31:0] qmin,
    input  logic [31:0] qmax,
    output logic [31:0] q
);
  logic [7:0] e;
  logic [23:0] sig;
  logic [40:0] mag;
  logic [49:0] ext;  // sig * 2^26 >> (150 - e): integer part above bit 26
  logic [7:0] sh;
  logic up;
  logic signed [42:0] r, sum, lo, hi, clamped;
  logic p_nan;

  // One procedural block under `en`: a simulator evaluates none of it while
  // the unit is idle (Verilator runs every assign each cycle, whatever its
  // inputs), and synthesis sees the same logic behind a mux.
  always_comb begin
    if (en) begin
      e   = p[30:23];
      sig = {|e, p[22:0]};

      // |round(p)|, at most 2^40.
      begin
        sh  = 8'd0;
        ext = 50'd0;
        up  = 1'b0;
        if (e >= 8'd167) begin
          mag = 41'h100_0000_0000;  // |p| >= 2^40, inf included
        end else if (e >= 8'd150) begin
          mag = 41'({17'd0, sig} << (e - 8'd150));
        end else begin
          sh  = 8'd150 - e;
          ext = {sig, 26'd0} >> ((sh > 8'd26) ? 8'd26 : sh);
          up  = ext[25] & ((|ext[24:0]) | ext[26]);
          mag = {17'd0, ext[49:26]} + {40'd0, up};
        end
      end

      r       = p[31] ? -$signed({2'b00, mag}) : $signed({2'b00, mag});
      sum     = r + 43'(signed'(zp));
      lo      = 43'(signed'(qmin));
      hi      = 43'(signed'(qmax));
      clamped = (sum < lo) ? lo : sum;

      p_nan = (&e) & (|p[22:0]);
      begin
        if (p_nan) q = ($signed(qmin) < $signed(qmax)) ? qmin : qmax;
        else if (clamped > hi) q = qmax;
        else q = clamped[31:0];
      end

    end else begin
      {e, sig, sh, ext, up, mag, r, sum, lo, hi, clamped, p_nan} = '0;
      q = '0;
    end
  end

endmodule
