// array: the weight-stationary systolic array, ROWS x COLS processing
// elements (PEs) with double-buffered weights, bit-exact with
// `sim::array::matmul` (ISA §3 `ldw` / `matmul`, §4 COMPUTE).
//
//   out[c] = sum_{r < ROWS} x[r] * w_active[r][c]     (wrapping int32)
//
// x: int8 or uint8 (`in_unsigned`), widened to 9 bits at the port; w: int8.
//
// Dataflow (PE(r, c) = reduction row r, output column c):
// - an input row presented in cycle t (in_valid) enters row r skewed by r
//   cycles; x[r] moves right one PE per cycle, so PE(r, c) sees it in cycle
//   t + r + c. Partial sums move down one PE per cycle; the sum of column c
//   leaves the bottom row in the register written at the end of cycle
//   t + ROWS - 1 + c, and a de-skew of COLS - 1 - c registers aligns the
//   columns: the whole output row is on `out_data` with `out_valid` in cycle
//   t + LAT, LAT = ROWS + COLS - 1 (the accumulator write adds the ISA's
//   last cycle: "in the accumulator by t + i + rows + cols"). One output row
//   per cycle, back-to-back rows with no bubble. The outputs are registers
//   (no combinational path from any input).
// - `swap` travels with the row presented in the same cycle (Gemmini's
//   propagate bit, moving diagonally with the skewed x): PE(r, c) uses its
//   shadow weight for that row in cycle t + r + c and exchanges active and
//   shadow at the end of that cycle (the ISA's exchange). Rows already in
//   flight keep their weights. A swap in a cycle without in_valid still
//   travels and exchanges (a bubble row).
// - the weight-load port writes the shadow buffer: one row of COLS int8
//   per cycle (`w_valid`, row index `w_row`, `w_data`, column c in bits
//   8c+7..8c; columns >= n must be driven 0 by the issuer), and `w_clear`
//   zeroes the whole shadow buffer (ldw's zero fill; a row write in the same
//   cycle lands after the clear). The writes travel diagonally too: a write
//   or clear issued in cycle s reaches PE(r, c) at the end of cycle s + r + c,
//   the edge at which a swap issued in the same cycle s exchanges there, so a
//   load issued from the cycle of a swap on (the preload of a `matmul`, or an
//   `ldw` after it) never disturbs the weights the swap makes active, and a
//   load finished before the next swap is issued is complete when that swap
//   reaches each PE. At one edge of one PE: write > clear > exchange for the
//   shadow. w_row >= ROWS writes nothing.
// - the transposed-load port (ldw trans, ISA.md §3) writes one *column* of
//   the shadow buffer per cycle: `t_valid`, column index `t_col`, `t_data`
//   (row r in bits 8r+7..8r; rows the tile does not cover must be driven 0
//   by the issuer). Its bus runs horizontally, skewed by row like the
//   inputs: a column write issued in cycle s enters row r at cycle s + r
//   and moves right one PE per cycle, so it too reaches PE(r, c) at the end
//   of cycle s + r + c — the same diagonal as the row writes, the clear and
//   the swap, so every ordering argument above holds for it unchanged (a
//   transposed load is a clear plus column writes). t_col >= COLS writes
//   nothing; a column write gives a 2:4 PE position 0 (a dense tile).
//   The issuer never drives a row write and a column write in one cycle.
// - rst (synchronous) zeroes both weight buffers and the valid pipeline;
//   data registers have no reset (they carry data only).
//
// - SPARSE = 1 (array.sparsity_2_4) adds the 2:4-sparse PE (ISA.md §3
//   i8s24): each PE holds a 2-bit position beside each weight (active and
//   shadow, written with the weight from `w_pos`, zeroed by clear and
//   reset, exchanged by swap), and each row carries four 9-bit input lanes
//   instead of one. A row streamed with `in_sparse` fills row r's lanes l
//   with x[4 (r / 2) + l] of the 2 ROWS-wide `in_wide` (0 past it, and 0 on
//   rows r >= COLS: kept rows there see no input, as dense rows there do);
//   otherwise lane 0 is in_data[r] and lanes 1..3 are 0. The PE multiplies
//   its weight by lane[p] (a 4-to-1 select before the multiplier, same
//   stage), so a dense tile (positions 0) computes exactly as SPARSE = 0
//   and the latency is unchanged. With SPARSE = 0 the lanes, positions and
//   select are not generated (in_sparse, in_wide and w_pos are ignored).
//
// Constructs: only what both Verilator 5.006 (lint-clean under -Wall) and
// yosys 0.23 accept (docs/DESIGN.md §6): one module, no packages, no functions,
// arrays flattened into vectors.

module array #(
    parameter int ROWS = 4,
    parameter int COLS = 4,
    parameter int SPARSE = 0  // 1: 2:4-sparse PEs (position select)
) (
    input  logic                 clk,
    input  logic                 rst,
    // Weight load into the shadow buffer.
    input  logic                 w_clear,   // zero the shadow buffer
    input  logic                 w_valid,   // write shadow row w_row
    input  logic [         15:0] w_row,
    input  logic [   COLS*8-1:0] w_data,    // COLS int8
    input  logic [   COLS*2-1:0] w_pos,     // SPARSE: their 2-bit positions (0 for dense tiles)
    // Transposed weight load: one shadow column per cycle.
    input  logic                 t_valid,   // write shadow column t_col
    input  logic [         15:0] t_col,
    input  logic [   ROWS*8-1:0] t_data,    // ROWS int8, row r in bits 8r+7..8r
    // Streamed input rows.
    input  logic                 in_valid,
    input  logic                 in_unsigned,  // x is uint8 (else int8)
    input  logic                 swap,      // shadow weights active from this row
    input  logic [   ROWS*8-1:0] in_data,   // ROWS int8/uint8, x[r] in bits 8r+7..8r
    input  logic                 in_sparse, // SPARSE: the row meets a 2:4 tile: x is in_wide
    input  logic [ ROWS*16-1:0] in_wide,   // SPARSE: 2 ROWS values, x[j] in bits 8j+7..8j
    // Output rows, LAT cycles after their input row.
    output logic                 out_valid,
    output logic [  COLS*32-1:0] out_data   // COLS int32, column c in bits 32c+31..32c
);
  localparam int LAT = ROWS + COLS - 1;
  // Row index carried down the columns with a write.
  localparam int RIW = (ROWS > 1) ? $clog2(ROWS) : 1;
  // Input lanes per row: one, or the four candidates of a 2:4 group.
  localparam int NL = (SPARSE != 0) ? 4 : 1;
  // x lanes (9 bits each) and the swap bit.
  localparam int XW = 9 * NL + 1;
  // Position bits per weight.
  localparam int PB = (SPARSE != 0) ? 2 : 0;
  // Write bus: clear, valid, row index, one int8 (and its position).
  localparam int WB = 2 + RIW + 8 + PB;
  // Column index carried along the rows with a column write.
  localparam int CIW = (COLS > 1) ? $clog2(COLS) : 1;
  // Column-write bus: valid, column index, one int8.
  localparam int TB = 1 + CIW + 8;

  // x and swap entering PE(r, c), index r * COLS + c.
  // split_var: Verilator keeps each PE's slice its own variable instead of
  // rebuilding the whole bus once per PE every cycle (~5x faster models).
  logic [ROWS*COLS*XW-1:0] xbus  /*verilator split_var*/;
  // Write bus entering PE(r, c).
  logic [ROWS*COLS*WB-1:0] wbus  /*verilator split_var*/;
  // Column-write bus entering PE(r, c).
  logic [ROWS*COLS*TB-1:0] tbus  /*verilator split_var*/;
  // Partial sum leaving PE(r, c) (its register).
  logic [ROWS*COLS*32-1:0] psum  /*verilator split_var*/;

  // A write to a row that exists.
  logic           w_ok;
  logic [RIW-1:0] w_idx;
  assign w_ok  = w_valid & (w_row < 16'(ROWS));
  assign w_idx = w_row[RIW-1:0];
  // A column write to a column that exists.
  logic           t_ok;
  logic [CIW-1:0] t_idx;
  assign t_ok  = t_valid & (t_col < 16'(COLS));
  assign t_idx = t_col[CIW-1:0];

  generate
    if (ROWS < 2 || COLS < 2 || ROWS > 65535) begin : g_bad_size
      $error("array: ROWS and COLS must be at least 2");
    end

    // ---- input skew: row r delayed r cycles ---------------------------
    for (genvar r = 0; r < ROWS; r++) begin : g_in
      logic [XW-1:0] x0;
      if (SPARSE != 0) begin : g_sp
        // Lane l: x[4 (r / 2) + l] of a sparse row, else lane 0 = x[r].
        logic [4*9-1:0] lanes;
        for (genvar l = 0; l < 4; l++) begin : g_lane
          localparam int J = 4 * (r / 2) + l;
          logic [7:0] b;
          if (r < COLS && J < 2 * ROWS) begin : g_wide
            assign b = in_sparse ? in_wide[J*8+:8] : ((l == 0) ? in_data[r*8+:8] : 8'd0);
          end else begin : g_none
            assign b = (!in_sparse && l == 0) ? in_data[r*8+:8] : 8'd0;
          end
          assign lanes[l*9+:9] = {in_unsigned ? 1'b0 : b[7], b};
        end
        assign x0 = {swap, lanes};
      end else begin : g_dense
        assign x0 = {swap, in_unsigned ? 1'b0 : in_data[r*8+7], in_data[r*8+:8]};
      end
      if (r == 0) begin : g_d0
        assign xbus[0+:XW] = x0;
      end else if (r == 1) begin : g_d1
        logic [XW-1:0] sr;
        always_ff @(posedge clk) sr <= x0;
        assign xbus[(r*COLS)*XW+:XW] = sr;
      end else begin : g_dn
        logic [r*XW-1:0] sr;
        always_ff @(posedge clk) sr <= {sr[(r-1)*XW-1:0], x0};
        assign xbus[(r*COLS)*XW+:XW] = sr[r*XW-1-:XW];
      end
    end

    // ---- weight-write skew: column c delayed c cycles -----------------
    for (genvar c = 0; c < COLS; c++) begin : g_wskew
      logic [WB-1:0] w0;
      if (SPARSE != 0) begin : g_sp
        assign w0 = {w_clear, w_ok, w_idx, w_pos[c*2+:PB], w_data[c*8+:8]};
      end else begin : g_dense
        assign w0 = {w_clear, w_ok, w_idx, w_data[c*8+:8]};
      end
      if (c == 0) begin : g_d0
        assign wbus[0+:WB] = w0;
      end else if (c == 1) begin : g_d1
        logic [WB-1:0] sr;
        always_ff @(posedge clk) sr <= w0;
        assign wbus[c*WB+:WB] = sr;
      end else begin : g_dn
        logic [c*WB-1:0] sr;
        always_ff @(posedge clk) sr <= {sr[(c-1)*WB-1:0], w0};
        assign wbus[c*WB+:WB] = sr[c*WB-1-:WB];
      end
    end

    // ---- column-write skew: row r delayed r cycles ----------------------
    for (genvar r = 0; r < ROWS; r++) begin : g_tskew
      logic [TB-1:0] t0;
      assign t0 = {t_ok, t_idx, t_data[r*8+:8]};
      if (r == 0) begin : g_d0
        assign tbus[0+:TB] = t0;
      end else if (r == 1) begin : g_d1
        logic [TB-1:0] sr;
        always_ff @(posedge clk) sr <= t0;
        assign tbus[(r*COLS)*TB+:TB] = sr;
      end else begin : g_dn
        logic [r*TB-1:0] sr;
        always_ff @(posedge clk) sr <= {sr[(r-1)*TB-1:0], t0};
        assign tbus[(r*COLS)*TB+:TB] = sr[r*TB-1-:TB];
      end
    end

    // ---- the PEs -------------------------------------------------------
    for (genvar r = 0; r < ROWS; r++) begin : g_row
      for (genvar c = 0; c < COLS; c++) begin : g_col
        localparam int I = r * COLS + c;
        // x from the left neighbour (one register per hop).
        if (c > 0) begin : g_xreg
          logic [XW-1:0] xr;
          always_ff @(posedge clk) xr <= xbus[(I-1)*XW+:XW];
          assign xbus[I*XW+:XW] = xr;
        end
        // Writes from the PE above (one register per hop).
        if (r > 0) begin : g_wreg
          logic [WB-1:0] wr;
          always_ff @(posedge clk) wr <= wbus[(I-COLS)*WB+:WB];
          assign wbus[I*WB+:WB] = wr;
        end
        // Column writes from the left neighbour (one register per hop).
        if (c > 0) begin : g_treg
          logic [TB-1:0] tr;
          always_ff @(posedge clk) tr <= tbus[(I-1)*TB+:TB];
          assign tbus[I*TB+:TB] = tr;
        end
        // Partial sum from the PE above.
        logic [31:0] ps_in;
        if (r > 0) begin : g_ps
          assign ps_in = psum[(I-COLS)*32+:32];
        end else begin : g_ps0
          assign ps_in = 32'd0;
        end

        logic [XW-1:0] xv;
        logic [WB-1:0] wv;
        logic          sw;  // swap travelling with this x
        logic          clr;
        logic          wr_here;  // shadow write for this PE's row
        logic [TB-1:0] tv;
        logic          tw_here;  // shadow column write for this PE's column
        logic [7:0] wa;  // active weight
        logic [7:0] ws;  // shadow weight
        logic [7:0] wu;  // weight used this cycle
        logic signed [8:0] xs;
        logic signed [7:0] wsg;
        logic signed [16:0] prod;
        logic [31:0] sum;
        logic [31:0] pr;

        assign xv      = xbus[I*XW+:XW];
        assign wv      = wbus[I*WB+:WB];
        assign sw      = xv[XW-1];
        assign clr     = wv[WB-1];
        assign wr_here = wv[WB-2] & (wv[WB-3-:RIW] == RIW'(r));
        assign tv      = tbus[I*TB+:TB];
        assign tw_here = tv[TB-1] & (tv[TB-2-:CIW] == CIW'(c));
        assign wu      = sw ? ws : wa;
        assign wsg     = wu;
        if (SPARSE != 0) begin : g_sel
          // 2:4: the position selects the input lane (the active or, with
          // this row's swap, the shadow one, as for the weight).
          logic [1:0] pa, ps, pu;
          assign pu = sw ? ps : pa;
          assign xs = xv[pu*9+:9];
          always_ff @(posedge clk) begin
            if (rst) begin
              pa <= 2'd0;
              ps <= 2'd0;
            end else begin
              if (sw) pa <= ps;
              if (wr_here) ps <= wv[9:8];
              else if (tw_here || clr) ps <= 2'd0;
              else if (sw) ps <= pa;
            end
          end
        end else begin : g_x0
          assign xs = xv[8:0];
        end
        assign prod    = 17'(xs) * 17'(wsg);
        assign sum     = ps_in + {{15{prod[16]}}, prod};

        always_ff @(posedge clk) begin
          if (rst) begin
            wa <= 8'd0;
            ws <= 8'd0;
          end else begin
            if (sw) wa <= ws;
            if (wr_here) ws <= wv[7:0];
            else if (tw_here) ws <= tv[7:0];
            else if (clr) ws <= 8'd0;
            else if (sw) ws <= wa;
          end
        end

        always_ff @(posedge clk) pr <= sum;
        assign psum[I*32+:32] = pr;

      end
    end

    // ---- output de-skew: column c delayed COLS - 1 - c cycles ---------
    for (genvar c = 0; c < COLS; c++) begin : g_out
      localparam int D = COLS - 1 - c;
      logic [31:0] o0;
      assign o0 = psum[((ROWS-1)*COLS+c)*32+:32];
      if (D == 0) begin : g_d0
        assign out_data[c*32+:32] = o0;
      end else if (D == 1) begin : g_d1
        logic [31:0] sr;
        always_ff @(posedge clk) sr <= o0;
        assign out_data[c*32+:32] = sr;
      end else begin : g_dn
        logic [D*32-1:0] sr;
        always_ff @(posedge clk) sr <= {sr[(D-1)*32-1:0], o0};
        assign out_data[c*32+:32] = sr[D*32-1-:32];
      end
    end
  endgenerate

  // ---- valid: in_valid delayed LAT cycles ------------------------------
  logic [LAT-1:0] vq;
  always_ff @(posedge clk) begin
    if (rst) vq <= '0;
    else vq <= {vq[LAT-2:0], in_valid};
  end
  assign out_valid = vq[LAT-1];

  // SPARSE = 0: the 2:4 inputs meet no PE.
  logic unused_sparse;
  generate
    if (SPARSE != 0) begin : g_used
      // Inputs past 2 COLS meet no PE (ROWS > COLS).
      assign unused_sparse = ^in_wide;
    end else begin : g_unused
      assign unused_sparse = ^{in_sparse, in_wide, w_pos};
    end
  endgenerate

endmodule
