// fp32_sqrt: IEEE-754 binary32 square root, correctly rounded to nearest
// even (the first step of isa::numerics::vector::rsqrt): sqrt(+-0) = +-0,
// sqrt(+inf) = +inf, a negative operand (-inf included) or a NaN gives the
// canonical NaN 0x7fc00000.
//
// Datapath (integer logic): x = f * 2^t with f in [1, 2);
// for odd t, 2f * 2^(t-1), so the root's significand lies in [1, 2) and its
// exponent is floor(t / 2). The radicand (f or 2f) scaled by 2^52 is a
// 54-bit integer; its integer square root, found by the restoring digit
// recurrence (one root bit per step, 27 steps over 4 cycles: 7 in each of
// stages 0..2, registered, the last 6 in stage 3, whose result y is
// combinational), is the root's significand with 26 bits after the point; a
// non-zero remainder is the sticky bit. A root is never halfway between two
// floats, and never subnormal or overflowing.
//
// Use: drive a and count `stage` 0, 1, 2, 3 in consecutive cycles, holding
// a; y is valid while stage = 3 (as fp32_div).

module fp32_sqrt (
    input  logic        clk,
    input  logic        en,     // 0: the recurrence holds and nothing evaluates
    input  logic [ 1:0] stage,
    input  logic [31:0] a,
    output logic [31:0] y
);
  logic a_nan, a_inf, a_zero;
  assign a_nan  = (&a[30:23]) & (|a[22:0]);
  assign a_inf  = (&a[30:23]) & ~(|a[22:0]);
  assign a_zero = ~(|a[30:0]);

  logic [23:0] a_sig, ma;
  logic [4:0] a_lz;
  assign a_sig = {|a[30:23], a[22:0]};
  // The loops are procedural blocks under `en` (see fp32_div).
  always_comb begin
    a_lz = 5'd0;
    if (en) for (int i = 0; i < 24; i++) if (a_sig[i]) a_lz = 5'(23 - i);
  end
  assign ma = a_sig << a_lz;

  logic signed [11:0] t, lead;
  assign t    = $signed({4'd0, (|a[30:23]) ? a[30:23] : 8'd1}) - 12'sd127 - $signed({7'd0, a_lz});
  assign lead = t >>> 1;

  // ma * 2^-23 = f: the radicand is f * 2^52 (t even) or 2f * 2^52.
  logic [53:0] radicand;
  assign radicand = t[0] ? {ma, 30'd0} : {1'b0, ma, 29'd0};

  // Stage s starts at root bit 26 - 7s: the radicand's bit pairs from
  // 53 - 14s down.
  logic [53:0] rad_s;
  logic [26:0] root, root_reg;
  logic [31:0] rem, rem_reg, trial;
  assign rad_s = radicand << (6'd14 * {4'd0, stage});
  always_comb begin
    if (stage == 2'd0) begin
      rem  = 32'd0;
      root = 27'd0;
    end else begin
      rem  = rem_reg;
      root = root_reg;
    end
    trial = 32'd0;
    for (int i = 0; i < 7; i++) begin
      if (en && (stage != 2'd3 || i < 6)) begin
        rem   = {rem[29:0], rad_s[53-2*i], rad_s[52-2*i]};
        trial = {3'd0, root[26:0], 2'b01};
        if (rem >= trial) begin
          rem  = rem - trial;
          root = {root[25:0], 1'b1};
        end else begin
          root = {root[25:0], 1'b0};
        end
      end
    end
  end
  always_ff @(posedge clk) begin
    if (en) begin
      rem_reg  <= rem;
      root_reg <= root;
    end
  end

  logic [31:0] rounded;
  fp32_round u_round (
      .en(en),
      .sign(1'b0),
      .lead(lead),
      .m(root),
      .sticky_in(rem != 32'd0),
      .y(rounded)
  );

  always_comb begin
    if (a_nan | (a[31] & ~a_zero)) y = 32'h7fc0_0000;
    else if (a_zero) y = a;
    else if (a_inf) y = a;
    else y = rounded;
  end
endmodule
