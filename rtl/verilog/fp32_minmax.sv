// fp32_minmax: IEEE-754-2019 maximum and minimum of two binary32 values
// (isa::numerics::vector::max / min): the canonical NaN 0x7fc00000 if either
// is NaN; max(-0, +0) = +0, min(-0, +0) = -0.
//
// Compared as integers after mapping the bits to an order-preserving key
// (negative: all bits inverted; positive: the sign bit set), under which
// -0 < +0 -- exactly the signed-zero rule above.

module fp32_minmax (
    input  logic        en,  // 0: the outputs are 0, and nothing evaluates (see below)
    input  logic [31:0] a,
    input  logic [31:0] b,
    output logic [31:0] max_y,
    output logic [31:0] min_y
);
  logic nan;
  logic [31:0] ka, kb;

  // One procedural block under `en`: a simulator evaluates none of it while
  // the unit is idle (Verilator runs every assign each cycle, whatever its
  // inputs), and synthesis sees the same logic behind a mux.
  always_comb begin
    if (en) begin
      nan   = ((&a[30:23]) & (|a[22:0])) | ((&b[30:23]) & (|b[22:0]));
      ka    = a[31] ? ~a : {1'b1, a[30:0]};
      kb    = b[31] ? ~b : {1'b1, b[30:0]};
      max_y = nan ? 32'h7fc0_0000 : ((ka >= kb) ? a : b);
      min_y = nan ? 32'h7fc0_0000 : ((ka <= kb) ? a : b);

    end else begin
      {nan, ka, kb} = '0;
      max_y = '0;
      min_y = '0;
    end
  end

endmodule
