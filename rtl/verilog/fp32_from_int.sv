// fp32_from_int: a 33-bit two's complement integer to binary32, rounded to
// nearest even (Rust's `i64 as f32` for the values dequantize converts:
// q - zp of two int32, isa::numerics::dequantize). 0 gives +0.

module fp32_from_int (
    input  logic        en,  // 0: the leading-zero count is not evaluated
    input  logic [32:0] d,
    output logic [31:0] y
);
  logic [31:0] mag;  // |d| < 2^32
  assign mag = d[32] ? 32'(~d + 33'd1) : d[31:0];

  logic [4:0] lz;
  always_comb begin
    lz = 5'd0;
    if (en) for (int i = 0; i < 32; i++) if (mag[i]) lz = 5'(31 - i);
  end

  logic [31:0] n;  // top bit at 31
  assign n = mag << lz;

  logic [31:0] rounded;
  fp32_round u_round (
      .en(en),
      .sign(d[32]),
      .lead(12'sd31 - $signed({7'd0, lz})),
      .m(n[31:5]),
      .sticky_in(|n[4:0]),
      .y(rounded)
  );
  assign y = (mag == 32'd0) ? 32'd0 : rounded;
endmodule
