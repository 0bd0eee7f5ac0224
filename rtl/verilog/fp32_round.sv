// fp32_round: rounds a normalised significand to binary32, to nearest even,
// with gradual underflow (subnormal results kept) and overflow to +-inf --
// the last stage of fp32_div, fp32_sqrt and the int32 -> float32
// conversion of fp32_from_int.
//
// The value is m * 2^(lead - 26) plus less than one unit of m's bit 0 when
// sticky_in is set; m[26] must be 1 (24 significand bits, a guard bit and
// one more). A subnormal result shifts m right by -126 - lead first, the
// bits shifted out joining the sticky bit.

module fp32_round (
    input  logic        en,  // 0: the outputs are 0, and nothing evaluates (see below)
    input  logic               sign,
    input  logic signed [11:0] lead,       // weight of m[26]
    input  logic        [26:0] m,
    input  logic               sticky_in,
    output logic        [31:0] y
);
  logic [11:0] ds;
  logic [26:0] m_d;
  logic d_st;
  logic [22:0] frac;
  logic guard, sticky, up;
  logic [7:0] e_field;
  logic [30:0] packed_r;

  // One procedural block under `en`: a simulator evaluates none of it while
  // the unit is idle (Verilator runs every assign each cycle, whatever its
  // inputs), and synthesis sees the same logic behind a mux.
  always_comb begin
    if (en) begin
      ds = (lead < -12'sd126) ? 12'(-12'sd126 - lead) : 12'd0;
      begin
        if (ds >= 12'd27) begin
          m_d  = 27'd0;
          d_st = 1'b1;
        end else begin
          m_d  = m >> ds[4:0];
          d_st = (m_d << ds[4:0]) != m;
        end
      end

      frac     = m_d[25:3];
      guard    = m_d[2];
      sticky   = (|m_d[1:0]) | d_st | sticky_in;
      up       = guard & (sticky | frac[0]);
      e_field  = (lead < -12'sd126) ? 8'd0 : 8'(lead + 12'sd127);
      packed_r = {e_field, frac} + {30'd0, up};
      y        = (lead > 12'sd127) ? {sign, 8'hff, 23'd0} : {sign, packed_r};

    end else begin
      {ds, m_d, d_st, frac, guard, sticky, up, e_field, packed_r} = '0;
      y = '0;
    end
  end

endmodule
