// fp32_div: IEEE-754 binary32 division y = a / b, correctly rounded to
// nearest even (isa::numerics::vector::div): subnormal operands and results
// kept, x / 0 = +-inf, 0 / 0 and inf / inf give the canonical NaN
// 0x7fc00000, as does any NaN operand.
//
// Datapath (integer logic): both significands normalised to [2^23, 2^24);
// the dividend doubled when it is the smaller, so the quotient lies in
// [1, 2); then a radix-2 restoring digit recurrence, one quotient bit per
// step, 27 steps (24 significand bits, guard and one more) over 4 cycles:
// 7 steps in each of stages 0..2 (registered), the last 6 in stage 3, whose
// result y is combinational. A non-zero final remainder is the sticky bit;
// fp32_round rounds (and denormalises).
//
// Use: drive a and b and count `stage` 0, 1, 2, 3 in consecutive cycles,
// holding a and b; y is valid while stage = 3 (isa::timing::VEC_DIV_CYCLES:
// the unit accepts one division every 4 cycles).

module fp32_div (
    input  logic        clk,
    input  logic        en,     // 0: the recurrence holds and nothing evaluates
    input  logic [ 1:0] stage,
    input  logic [31:0] a,
    input  logic [31:0] b,
    output logic [31:0] y
);
  logic a_nan, a_inf, a_zero, b_nan, b_inf, b_zero;
  assign a_nan  = (&a[30:23]) & (|a[22:0]);
  assign a_inf  = (&a[30:23]) & ~(|a[22:0]);
  assign a_zero = ~(|a[30:0]);
  assign b_nan  = (&b[30:23]) & (|b[22:0]);
  assign b_inf  = (&b[30:23]) & ~(|b[22:0]);
  assign b_zero = ~(|b[30:0]);

  logic [23:0] a_sig, b_sig, ma, mb;
  logic [4:0] a_lz, b_lz;
  assign a_sig = {|a[30:23], a[22:0]};
  assign b_sig = {|b[30:23], b[22:0]};
  // The loops are procedural blocks under `en`: a simulator evaluates them
  // only in a cycle the lane divides in (Verilator runs every assign each
  // cycle, whatever its inputs).
  always_comb begin
    a_lz = 5'd0;
    b_lz = 5'd0;
    if (en) begin
      for (int i = 0; i < 24; i++) if (a_sig[i]) a_lz = 5'(23 - i);
      for (int i = 0; i < 24; i++) if (b_sig[i]) b_lz = 5'(23 - i);
    end
  end
  assign ma = a_sig << a_lz;
  assign mb = b_sig << b_lz;

  // Top-bit weights: t = e - 127 - lz (subnormals: e = 1).
  logic signed [11:0] ta, tb, lead;
  logic ge;
  assign ta   = $signed({4'd0, (|a[30:23]) ? a[30:23] : 8'd1}) - 12'sd127 - $signed({7'd0, a_lz});
  assign tb   = $signed({4'd0, (|b[30:23]) ? b[30:23] : 8'd1}) - 12'sd127 - $signed({7'd0, b_lz});
  assign ge   = ma >= mb;
  assign lead = ta - tb - (ge ? 12'sd0 : 12'sd1);

  // The recurrence: r < 2 * mb before each step, quotient bit 1 (shifted
  // in at the bottom of q) when r >= mb.
  logic [26:0] q, q_reg;
  logic [25:0] r, r_reg;
  always_comb begin
    if (stage == 2'd0) begin
      r = ge ? {2'b00, ma} : {1'b0, ma, 1'b0};
      q = 27'd0;
    end else begin
      r = r_reg;
      q = q_reg;
    end
    for (int i = 0; i < 7; i++) begin
      if (en && (stage != 2'd3 || i < 6)) begin
        if (r >= {2'b00, mb}) begin
          q = {q[25:0], 1'b1};
          r = r - {2'b00, mb};
        end else begin
          q = {q[25:0], 1'b0};
        end
        r = r << 1;
      end
    end
  end
  always_ff @(posedge clk) begin
    if (en) begin
      r_reg <= r;
      q_reg <= q;
    end
  end

  logic [31:0] rounded;
  fp32_round u_round (
      .en(en),
      .sign(a[31] ^ b[31]),
      .lead(lead),
      .m(q),
      .sticky_in(r != 26'd0),
      .y(rounded)
  );

  always_comb begin
    if (a_nan | b_nan | (a_zero & b_zero) | (a_inf & b_inf)) y = 32'h7fc0_0000;
    else if (a_inf | b_zero) y = {a[31] ^ b[31], 8'hff, 23'd0};
    else if (a_zero | b_inf) y = {a[31] ^ b[31], 31'd0};
    else y = rounded;
  end
endmodule
